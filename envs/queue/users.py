"""The simulated users of the synthetic search world: how they browse a result page.

The offline click-model features are computed with the simplified DBN (sDBN) of Chapelle &
Zhang (:mod:`labsched.envs.queue.click_model`): one cascade user who never abandons the page
before a satisfying click. The *true* users of the world, by default, are of a different
family, so that the sDBN fitted to their click log is informative but misspecified
(``QueueWorldSpec.user_model``):

* ``"browsing"`` (default): a mixture of two kinds of users. A share ``1 - browser_share`` are
  **cascade users with abandonment** (a DBN with rank-dependent perseverance): they examine the
  page top-down; an examined document is clicked with its attractiveness ``a``; a click
  satisfies with probability ``s`` and ends the session; after an unsatisfying click the user
  stops with probability ``abandon_click * r^-abandon_decay`` and after an examined document
  that was not clicked with probability ``abandon_skip * r^-abandon_decay`` (``r`` = rank, 1 at
  the top: leaving is likeliest at the top of the page, and users who got deep persevere). The
  other ``browser_share`` are **position-based browsers** (PBM): they examine rank ``r`` with
  probability ``r^-examination_decay``, independently of everything else, click an examined
  document with probability ``a`` and are never stopped by a click.
* ``"sdbn"``: every user is the features' own sDBN (no abandonment): the click-through rate
  of a page then depends only on *which* documents it shows, not on their order, and the
  features' click model is the true one (the earlier world of labsched; an oracle-like CM).

Under ``"browsing"`` both kinds of users see order, so an A/B test on the click-through rate
responds to re-ranking as well as to new documents. Every quantity stays exact: the outcome law
of an interleaved session is a mixture of two dynamic programmes over the credit difference
(:func:`~labsched.envs.queue.interleaving.interleaving_outcome_distribution` with stopping
probabilities, :func:`~labsched.envs.queue.interleaving.independent_clicks_outcome_distribution`)
and the click-through rate a mixture of two closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labsched.envs._lib.validation import check_generator, check_int, check_real
from labsched.envs.queue.interleaving import (
    cascade_clicks,
    independent_clicks_outcome_distribution,
    interleaving_outcome_distribution,
)

__all__ = ["USER_MODELS", "BrowsingModel"]

USER_MODELS = ("browsing", "sdbn")
"""Values of ``QueueWorldSpec.user_model``."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class BrowsingModel:
    """The true users: a mixture of cascade users with abandonment and position-based browsers.

    Build it with :meth:`from_spec` (or :meth:`sdbn` for the features' own model). Arrays have
    one entry per rank of the shown list (``L``), top first, and are read-only.

    Attributes:
        cascade_share: share of cascade users (the rest are position-based browsers).
        stop_skip: ``(L,)`` probability that a cascade user stops after an examined document
            at rank ``r`` that was not clicked.
        stop_click: ``(L,)`` probability that a cascade user stops after an unsatisfying click
            at rank ``r``.
        examination: ``(L,)`` probability that a browser examines rank ``r``.
    """

    cascade_share: float
    stop_skip: np.ndarray
    stop_click: np.ndarray
    examination: np.ndarray

    @classmethod
    def sdbn(cls, length: int) -> BrowsingModel:
        """The sDBN with ``gamma = 1`` (cascade users only, who never abandon)."""
        length = check_int("length", length, 1)
        z = np.zeros(length)
        return cls(1.0, _readonly(z), _readonly(z), _readonly(np.ones(length)))

    @classmethod
    def from_spec(cls, spec: Any) -> BrowsingModel:
        """The users of a :class:`~labsched.envs.queue.world_spec.QueueWorldSpec` (see the
        module docstring for ``user_model`` and its parameters)."""
        m = spec.list_length
        if spec.user_model == "sdbn":
            return cls.sdbn(m)
        rank = np.arange(1, m + 1, dtype=float)
        decay = rank ** (-spec.abandon_decay)
        return cls(
            cascade_share=check_real("cascade_share", 1.0 - spec.browser_share, 0.0, 1.0),
            stop_skip=_readonly(spec.abandon_skip * decay),
            stop_click=_readonly(spec.abandon_click * decay),
            examination=_readonly(rank ** (-spec.examination_decay)),
        )

    @property
    def is_sdbn(self) -> bool:
        """Whether these are the features' own sDBN users (no abandonment, no browsers)."""
        return self.cascade_share == 1.0 and not self.stop_skip.any() and not self.stop_click.any()

    def _stops(self, length: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        if length > self.stop_skip.size:
            raise ValueError(f"pages of {length} results are longer than the model's {self.stop_skip.size}")
        if not self.stop_skip.any() and not self.stop_click.any():
            return None, None
        return self.stop_skip[:length], self.stop_click[:length]

    # ------------------------------------------------------------------ exact laws
    def outcome_distribution(self, attractiveness: Any, satisfaction: Any, credit_teams: Any) -> np.ndarray:
        """``(..., 3)`` exact probabilities (A wins, B wins, tie) of one interleaved session.

        Arguments as :func:`~labsched.envs.queue.interleaving.interleaving_outcome_distribution`
        (``(..., L)`` parameters of the shown documents and credited teams).
        """
        a = np.asarray(attractiveness, dtype=float)
        skip, click = self._stops(a.shape[-1])
        out = interleaving_outcome_distribution(
            a, satisfaction, credit_teams, stop_skip=skip, stop_click=click
        )
        if self.cascade_share < 1.0:
            pbm = independent_clicks_outcome_distribution(a * self.examination[: a.shape[-1]], credit_teams)
            out = self.cascade_share * out + (1.0 - self.cascade_share) * pbm
        return out

    def click_probability(self, attractiveness: Any, satisfaction: Any) -> np.ndarray:
        """``(...)`` exact probability that a page (``(..., L)`` parameters, top first) gets at
        least one click: its click-through rate."""
        a = np.asarray(attractiveness, dtype=float)
        length = a.shape[-1]
        skip, _ = self._stops(length)
        if skip is None:
            cascade = 1.0 - np.prod(1.0 - a, axis=-1)
        else:
            # P(rank r examined with no click before) = prod_{j < r} (1 - a_j)(1 - stop_skip_j).
            keep = (1.0 - a) * (1.0 - skip)
            reach = np.concatenate([np.ones_like(a[..., :1]), np.cumprod(keep[..., :-1], axis=-1)], axis=-1)
            cascade = (reach * a).sum(axis=-1)
        if self.cascade_share == 1.0:
            return cascade
        browse = 1.0 - np.prod(1.0 - a * self.examination[:length], axis=-1)
        return self.cascade_share * cascade + (1.0 - self.cascade_share) * browse

    # ------------------------------------------------------------------ simulation
    def sample_clicks(self, attractiveness: Any, satisfaction: Any, rng: np.random.Generator) -> np.ndarray:
        """``(N, L)`` boolean clicks of ``N`` sessions on pages of the given parameters; each
        session's user kind is drawn first (cascade with probability ``cascade_share``)."""
        check_generator("rng", rng)
        a = np.asarray(attractiveness, dtype=float)
        skip, click = self._stops(a.shape[-1])
        if self.cascade_share == 1.0:
            return cascade_clicks(a, satisfaction, rng, stop_skip=skip, stop_click=click)
        browser = rng.random(a.shape[0]) >= self.cascade_share
        clicks = cascade_clicks(a, satisfaction, rng, stop_skip=skip, stop_click=click)
        pbm = rng.random(a.shape) < a * self.examination[: a.shape[-1]]
        clicks[browser] = pbm[browser]
        return clicks
