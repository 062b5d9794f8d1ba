"""Arrays of row numbers, as segments, snapshots and searches handle them: ranges expanded, the best k, unions."""

from __future__ import annotations

import numpy as np


def expand_ranges(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The integers of every range [first[i], last[i]), concatenated in order (without a Python loop)."""
    sizes = last - first
    starts = np.cumsum(sizes) - sizes  # where each range's run begins in the result
    return np.repeat(first - starts, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first (ties in position order)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def sorted_union(*arrays: np.ndarray) -> np.ndarray:
    """The distinct values of the arrays, ascending (np.union1d / np.unique of their concatenation). A sort is used:
    np.unique's hashing path costs several times as much on the few hundred rows a query handles."""
    values = np.sort(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values
