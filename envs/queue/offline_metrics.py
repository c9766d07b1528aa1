"""Offline effectiveness metrics of result lists against graded assessor labels (Precision@k,
DCG@k, ERR@k; ``-1`` marks an unlabelled document)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MAX_GRADE",
    "METRICS",
    "dcg_at",
    "err_at",
    "labelled_to_depth",
    "offline_metric",
    "precision_at",
]

METRICS = ("P@1", "P@3", "DCG@3", "DCG@5", "ERR@3", "ERR@5")
"""The six offline metrics (each under the ``irrel`` and ``skip`` policies)."""
MAX_GRADE = 4


def _grades(grades: Any, k: int) -> np.ndarray:
    g = np.asarray(grades)
    if g.ndim == 1:
        g = g[None, :]
    if g.shape[-1] < k:
        pad = np.full((*g.shape[:-1], k - g.shape[-1]), 0, dtype=g.dtype)
        g = np.concatenate([g, pad], axis=-1)
    return np.where(g[..., :k] < 0, 0, g[..., :k]).astype(float)


def precision_at(grades: Any, k: int, relevant_grade: int = 2) -> np.ndarray:
    """Precision@k of each row of ``grades`` (``-1`` = unlabelled, counted irrelevant)."""
    return (_grades(grades, k) >= relevant_grade).mean(axis=-1)


def dcg_at(grades: Any, k: int) -> np.ndarray:
    """DCG@k with gain ``2^g - 1`` and discount ``log2(1 + rank)`` (unlabelled = 0)."""
    g = _grades(grades, k)
    return ((2.0**g - 1.0) / np.log2(np.arange(2, k + 2))).sum(axis=-1)


def err_at(grades: Any, k: int, max_grade: int = MAX_GRADE) -> np.ndarray:
    """Expected Reciprocal Rank at k (Chapelle et al. 2009); unlabelled = 0."""
    r = (2.0 ** _grades(grades, k) - 1.0) / 2.0**max_grade
    reach = np.cumprod(np.concatenate([np.ones_like(r[..., :1]), 1.0 - r[..., :-1]], axis=-1), axis=-1)
    return (reach * r / np.arange(1, k + 1)).sum(axis=-1)


def offline_metric(name: str, grades: Any, relevant_grade: int = 2) -> np.ndarray:
    """One of :data:`METRICS` by name (e.g. ``"DCG@3"``) for each row of ``grades``."""
    if name not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {name!r}")
    kind, k = name.split("@")
    if kind == "P":
        return precision_at(grades, int(k), relevant_grade)
    if kind == "DCG":
        return dcg_at(grades, int(k))
    return err_at(grades, int(k))


def labelled_to_depth(grades: Any, k: int) -> np.ndarray:
    """Whether each row's top ``k`` documents are all labelled (the ``skip`` policy's filter)."""
    g = np.asarray(grades)
    if g.ndim == 1:
        g = g[None, :]
    return (g[..., :k] >= 0).all(axis=-1) & (g.shape[-1] >= k)
