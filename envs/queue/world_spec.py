"""The parameters of the synthetic search world and of its experiment dataset.

:class:`QueueWorldSpec` is a frozen, validated dataclass; the generative model it parametrises
is documented in :mod:`labsched.envs.queue.search_world`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from labsched.envs._lib.validation import check_bool, check_choice, check_int, check_real

__all__ = ["GROUP_NAMES", "USER_MODELS", "ExperimentType", "QueueWorldSpec"]

USER_MODELS = ("browsing", "sdbn")
"""Values of ``QueueWorldSpec.user_model`` (see :mod:`labsched.envs.queue.users`)."""

GROUP_NAMES = ("len1", "len2", "len3+")
"""Query-length groups (one, two, three or more terms); ``SearchWorld.query_group`` indexes them."""

ExperimentType = Literal["interleaving", "ab"]

#: Calibrated ``(effect_mean, effect_sd, effect_df, hidden_effect_sd)`` per experiment type (see
#: QueueWorldSpec and docs/results/queue_calibration/): with them the paper's UpperBound of
#: Tables 4 and 5 comes out near its published values (about 2.4 and 0.9) and the single
#: features' AUCs well below the oracle's.
EFFECT_DEFAULTS: dict[str, tuple[float, float, float, float]] = {
    "interleaving": (0.0, 0.03, 3.0, 0.03),
    "ab": (0.0, 0.6, 3.0, 0.8),
}

# Paper-shaped defaults per experiment type (Table 1 of the paper; see QueueWorldSpec).
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "interleaving": {
        "n_experiments": 82,
        "success_share": 31 / 82,
        "interactions_median": 1_000_000,
        "interactions_sigma": 1.18,
        "interactions_min": 178_000,
        "interactions_max": 39_000_000,
        "effect_mean": EFFECT_DEFAULTS["interleaving"][0],
        "effect_sd": EFFECT_DEFAULTS["interleaving"][1],
        "effect_df": EFFECT_DEFAULTS["interleaving"][2],
        "hidden_effect_sd": EFFECT_DEFAULTS["interleaving"][3],
    },
    "ab": {
        "n_experiments": 35,
        "success_share": 10 / 35,
        "interactions_median": 42_000_000,
        "interactions_sigma": 0.71,
        "interactions_min": 1_400_000,
        "interactions_max": 196_000_000,
        "effect_mean": EFFECT_DEFAULTS["ab"][0],
        "effect_sd": EFFECT_DEFAULTS["ab"][1],
        "effect_df": EFFECT_DEFAULTS["ab"][2],
        "hidden_effect_sd": EFFECT_DEFAULTS["ab"][3],
    },
}
_TYPE_FIELDS = tuple(_TYPE_DEFAULTS["interleaving"])

# Scalar fields, checked in this order: (name, integer?, low, high, low open?, high open?).
# ``docs_per_query`` (bounded by ``list_length``), ``query_length_probs``, ``affected_share``
# and the ordering of the interaction sizes are checked separately.
_SCALAR_RULES: tuple[tuple[str, bool, float, float | None, bool, bool], ...] = (
    ("n_experiments", True, 1, None, False, False),
    ("success_share", False, 0.0, 1.0, False, False),
    ("n_queries", True, 3, None, False, False),
    ("list_length", True, 5, 16, False, False),
    ("popularity_sigma", False, 0.0, 10.0, False, False),
    ("length_popularity_decay", False, 0.0, 10.0, False, False),
    ("user_noise", False, 0.0, 10.0, False, False),
    ("production_noise", False, 0.0, 10.0, True, False),
    ("effect_mean", False, -10.0, 10.0, False, False),
    ("effect_sd", False, 0.0, 10.0, False, False),
    ("hidden_effect_sd", False, 0.0, 10.0, False, False),
    ("hidden_utility", False, 0.0, 10.0, False, False),
    ("browser_share", False, 0.0, 1.0, False, False),
    ("examination_decay", False, 0.0, 5.0, False, False),
    ("abandon_skip", False, 0.0, 1.0, False, False),
    ("abandon_click", False, 0.0, 1.0, False, False),
    ("abandon_decay", False, 0.0, 5.0, False, False),
    ("change_noise", False, 0.0, 10.0, False, False),
    ("user_signal", False, 0.0, 1.0, False, False),
    ("focus_prob", False, 0.0, 1.0, False, False),
    ("label_query_share", False, 0.0, 1.0, True, False),
    ("label_coverage", False, 0.0, 1.0, False, False),
    ("label_coverage_tail", False, 0.0, 1.0, False, False),
    ("label_noise", False, 0.0, 10.0, False, False),
    ("relevant_grade", True, 1, 4, False, False),
    ("log_sessions", True, 1, None, False, False),
    ("log_noise", False, 0.0, 10.0, False, False),
    ("click_drift", False, 0.0, 10.0, False, False),
    ("interactions_median", True, 1, None, False, False),
    ("interactions_sigma", False, 0.0, 5.0, False, False),
    ("interactions_min", True, 1, None, False, False),
    ("interactions_max", True, 1, None, False, False),
    ("significance_level", False, 0.0, 1.0, True, True),
)


def _field(name: str) -> str:
    return f"QueueWorldSpec.{name}"


@dataclass(frozen=True)
class QueueWorldSpec:
    """Parameters of the synthetic world and of the generated experiment dataset.

    Frozen and validated; invalid values raise ``ValueError`` (or ``TypeError`` for a wrong
    type) naming the field. The fields marked *type default* may be left ``None``: they are then
    filled from the paper's Table 1 for the chosen ``experiment_type``:

    | field | interleaving | ab |
    |---|---|---|
    | ``n_experiments`` | 82 | 35 |
    | ``success_share`` | 31/82 (0.378) | 10/35 (0.286) |
    | ``interactions_median`` | 1,000,000 | 42,000,000 |
    | ``interactions_sigma`` | 1.18 (mean 2M) | 0.71 (mean 54M) |
    | ``interactions_min`` / ``_max`` | 178K / 39M | 1.4M / 196M |
    | ``effect_mean``, ``effect_sd``, ``effect_df`` | 0, 0.03, 3 | 0, 0.6, 3 |
    | ``hidden_effect_sd`` | 0.03 | 0.8 |

    The effect defaults are calibrated (``docs/results/queue_calibration/``), not from Table 1.

    :meth:`replace` with a new ``experiment_type`` re-applies that type's defaults to the
    type-default fields it does not set explicitly.

    Attributes:
        experiment_type: ``"interleaving"`` (Team Draft, deduplicated binary credit) or ``"ab"``
            (click-through rate).
        n_experiments: experiments in the dataset (type default).
        success_share: share of successful experiments (B significantly better than A at the
            experiment's full size) in the dataset (type default).
        fix_success_count: if true, the dataset holds exactly ``round(success_share *
            n_experiments)`` successful experiments: candidates are drawn from the generative
            model and kept until both the successful and the unsuccessful quota are full (a
            stratified draw; features are untouched). If false, the first ``n_experiments``
            candidates are kept and the share is whatever the model produces.
        n_queries: queries in the world (>= 3).
        docs_per_query: documents in each query's pool (>= list_length).
        list_length: results shown per page ``m`` (>= 5, the deepest metric cut-off; <= 16).
        query_length_probs: probabilities of query lengths 1, 2, 3, ... terms.
        popularity_sigma: log-normal spread of query popularity (>= 0).
        length_popularity_decay: how much rarer each extra query term makes a query (>= 0).
        user_noise: standard deviation of the users' private utility signal (>= 0).
        production_noise: noise of the production ranker A's scores (> 0).
        effect_mean, effect_sd, effect_df: each candidate's visible ``effect`` (the weight of
            its change towards what assessors and the historical log see, in score units) is
            ``effect_mean + effect_sd * t``, ``t`` a Student-t variable with ``effect_df``
            degrees of freedom (heavy tailed; ``inf``: the normal). Type defaults, calibrated
            (``EFFECT_DEFAULTS``).
        hidden_effect_sd: scale of each candidate's hidden effect ``hidden_effect_sd * t`` (same
            ``effect_df``): the weight of its change along the experiment-period users' utility
            component ``eta`` that no pre-experiment feature sees (type default). The two scales
            set the size of the true effects; their ratio, with ``label_*``, ``log_*``,
            ``click_drift`` and the users, sets how well the features predict them.
        hidden_utility: weight of ``eta`` (standard normal per query and document) in the
            experiment-period users' utility (>= 0; the log's users do not have it).
        change_noise: each candidate reshuffles its affected queries with noise
            ``U(0, change_noise)`` (>= 0).
        user_signal: each candidate's share of the users' private signal in its change
            direction is ``U(0, user_signal)`` (in [0, 1]).
        affected_share: ``(low, high)``, the share of (focus-group) queries a candidate changes
            is ``U(low, high)`` (0 < low <= high <= 1).
        focus_prob: probability that a candidate focuses on one query-length group.
        label_query_share: share of queries with relevance judgements (drawn by popularity).
        label_coverage: probability that a judged query's document in A's top ``m`` is labelled.
        label_coverage_tail: same for the query's other documents.
        label_noise: assessor noise: a label is ``clip(round(r + label_noise * N(0, 1)), 0, 4)``.
        relevant_grade: lowest label counted as relevant by Precision@k (1..4).
        log_sessions: sessions in the historical click log used to train the sDBN (>= 1).
        log_noise: the historical log shows the top ``m`` of ``score_A + log_noise * N(0, 1)``,
            drawn afresh per session (past production variants; >= 0).
        click_drift: users change between the log period and the experiments: the log's users
            have utility ``u + click_drift * N(0, 1)`` (fixed per query and document; >= 0).
        user_model: the true users, ``"browsing"`` (default: cascade users who may abandon the
            page, mixed with position-based browsers; not the features' sDBN) or ``"sdbn"``
            (the features' own click model); see :mod:`labsched.envs.queue.users`.
        browser_share: share of position-based browsers among the users (``"browsing"``).
        examination_decay: a browser examines rank ``r`` with probability ``r^-decay``.
        abandon_skip, abandon_click: a cascade user stops after a skipped document (after an
            unsatisfying click) at rank ``r`` with probability ``abandon_* * r^-abandon_decay``.
        abandon_decay: how fast the stopping probabilities decay with the rank.
        interactions_median, interactions_sigma, interactions_min, interactions_max: each
            experiment's deployment size (the user interactions it consumes) is
            ``clip(round(median * exp(sigma * N(0, 1))), min, max)`` (type defaults).
        significance_level: ``alpha`` of the success test (0 < alpha < 1; the paper's 0.05).
    """

    experiment_type: ExperimentType = "interleaving"
    n_experiments: int | None = None
    success_share: float | None = None
    fix_success_count: bool = True
    n_queries: int = 1000
    docs_per_query: int = 20
    list_length: int = 10
    query_length_probs: tuple[float, ...] = (0.30, 0.35, 0.20, 0.10, 0.05)
    popularity_sigma: float = 1.5
    length_popularity_decay: float = 0.5
    user_noise: float = 0.8
    production_noise: float = 1.0
    effect_mean: float | None = None
    effect_sd: float | None = None
    effect_df: float | None = None
    hidden_effect_sd: float | None = None
    hidden_utility: float = 1.0
    change_noise: float = 0.3
    user_signal: float = 0.6
    affected_share: tuple[float, float] = (0.02, 0.3)
    focus_prob: float = 0.5
    label_query_share: float = 0.3
    label_coverage: float = 0.9
    label_coverage_tail: float = 0.4
    label_noise: float = 0.7
    relevant_grade: int = 2
    log_sessions: int = 100_000
    log_noise: float = 0.5
    click_drift: float = 0.7
    user_model: str = "browsing"
    browser_share: float = 0.3
    examination_decay: float = 1.0
    abandon_skip: float = 0.3
    abandon_click: float = 0.4
    abandon_decay: float = 0.5
    interactions_median: int | None = None
    interactions_sigma: float | None = None
    interactions_min: int | None = None
    interactions_max: int | None = None
    significance_level: float = 0.05

    def __post_init__(self) -> None:
        kind = check_choice(_field("experiment_type"), self.experiment_type, ("interleaving", "ab"))
        for name in _TYPE_FIELDS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, _TYPE_DEFAULTS[kind][name])
        object.__setattr__(
            self, "fix_success_count", check_bool(_field("fix_success_count"), self.fix_success_count)
        )
        for name, integer, low, high, low_open, high_open in _SCALAR_RULES:
            value = getattr(self, name)
            if integer:
                checked: float = check_int(_field(name), value, int(low), None if high is None else int(high))
            else:
                checked = check_real(_field(name), value, low, high, low_open=low_open, high_open=high_open)
            object.__setattr__(self, name, checked)
        object.__setattr__(
            self,
            "docs_per_query",
            check_int(_field("docs_per_query"), self.docs_per_query, self.list_length, 1000),
        )
        object.__setattr__(
            self,
            "effect_df",
            check_real(_field("effect_df"), self.effect_df, 0.0, low_open=True, finite=False),
        )
        check_choice(_field("user_model"), self.user_model, USER_MODELS)
        object.__setattr__(self, "query_length_probs", self._checked_length_probs())
        object.__setattr__(self, "affected_share", self._checked_affected_share())
        if not self.interactions_min <= self.interactions_median <= self.interactions_max:
            raise ValueError(
                "QueueWorldSpec.interactions_median must lie in [interactions_min, interactions_max], got "
                f"min={self.interactions_min}, median={self.interactions_median}, max={self.interactions_max}"
            )

    def _checked_length_probs(self) -> tuple[float, ...]:
        probs = self.query_length_probs
        if not isinstance(probs, (tuple, list)) or len(probs) == 0:
            raise TypeError("QueueWorldSpec.query_length_probs must be a non-empty tuple of probabilities")
        probs = tuple(check_real(_field("query_length_probs"), p, 0.0, 1.0) for p in probs)
        if abs(sum(probs) - 1.0) > 1e-6:
            raise ValueError(f"QueueWorldSpec.query_length_probs must sum to 1, got sum {sum(probs)!r}")
        return probs

    def _checked_affected_share(self) -> tuple[float, float]:
        share = self.affected_share
        if not isinstance(share, (tuple, list)) or len(share) != 2:
            raise TypeError("QueueWorldSpec.affected_share must be a (low, high) pair")
        lo, hi = (check_real(_field("affected_share"), s, 0.0, 1.0, low_open=True) for s in share)
        if lo > hi:
            raise ValueError(f"QueueWorldSpec.affected_share must satisfy low <= high, got {tuple(share)!r}")
        return lo, hi

    def replace(self, **changes: Any) -> QueueWorldSpec:
        """A validated copy with some fields changed; unknown names raise ``TypeError``.

        Changing ``experiment_type`` resets the type-default fields not given in ``changes``
        to the new type's defaults.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"QueueWorldSpec has no field(s) {unknown}; fields are {sorted(names)}")
        if "experiment_type" in changes and changes["experiment_type"] != self.experiment_type:
            for name in _TYPE_FIELDS:
                changes.setdefault(name, None)
        return dataclasses.replace(self, **changes)

    @property
    def n_successful(self) -> int:
        """Successful experiments in a dataset generated with ``fix_success_count``."""
        return int(round(self.success_share * self.n_experiments))

    @property
    def n_rounds(self) -> int:
        """Team Draft rounds ``ceil(m / 2)``; an interleaving draws ``2^n_rounds`` coin sequences."""
        return (self.list_length + 1) // 2
