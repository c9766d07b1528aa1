"""Which baselines are defined on which problems (failures, heterogeneous labs).

The offline plans (OfStaged's staged plan, OfIL's independent-lab plan) are computed from one
duration law for ``l`` identical labs. Failures leave them defined: a failure does not change
when an experiment ends, so a plan's safety probability (every experiment *ended* by ``h``) is
unchanged, and an offline schedule, which does not react to failures, loses the same factor
``(1 - q)^2`` of its expected CPE under any plan with a failure probability ``q`` common to all
labs (its argmax is unchanged). Labs that differ are another problem, for which those plans
are not defined: :func:`require_identical_labs` refuses them and names the baselines that are.
"""

from __future__ import annotations

from labsched.envs.labs.spec import LabSpec

__all__ = ["HETEROGENEOUS_BASELINES", "require_identical_labs"]

#: Baselines that run on heterogeneous labs (and with failures).
HETEROGENEOUS_BASELINES = (
    "ps",
    "ps-calibrated",
    "onmel",
    "keep-busy-calibrated",
    "onfcp",
    "sequential",
    "random",
)


def require_identical_labs(spec: LabSpec, name: str) -> None:
    """Raise ``ValueError`` when ``spec`` has heterogeneous labs (``lab_durations`` or
    ``lab_speeds``), saying which baselines are defined there.

    Args:
        spec: the problem.
        name: the refusing baseline's registry name.
    """
    if spec.heterogeneous:
        raise ValueError(
            f"baseline {name!r} is not defined for heterogeneous labs (LabSpec.lab_durations / "
            f"lab_speeds): its offline plan assumes identical labs; use one of "
            f"{', '.join(HETEROGENEOUS_BASELINES)}"
        )
