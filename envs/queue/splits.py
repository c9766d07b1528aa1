"""Stratified train/test splits of an experiment dataset (by the success label), shared by the
evaluation protocol and the training of queue agents. Needs scikit-learn (the ``queue`` extra)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labsched.envs._lib.validation import check_int

__all__ = ["stratified_splits"]


def stratified_splits(
    labels: Sequence[bool], n_splits: int, test_size: float = 0.1, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` stratified random train/test splits (``StratifiedShuffleSplit``).

    Args:
        labels: ``(n,)`` success labels the splits keep the shares of.
        n_splits: number of splits (>= 1).
        test_size: test share of each split.
        seed: ``random_state`` of the splitter.

    Returns:
        ``(train_indices, test_indices)`` pairs, each sorted.
    """
    from sklearn.model_selection import StratifiedShuffleSplit  # optional heavy dependency

    y = np.asarray(labels, dtype=bool)
    n_splits = check_int("n_splits", n_splits, 1)
    sss = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in sss.split(np.zeros((y.size, 1)), y)]
