"""Finding the first few matches in a long array without a pass over all of it: chunks read from the front,
each twice the last, until enough are found. The trackers' lists and the accounting's oracle cuts use it."""

from __future__ import annotations

from typing import Callable

import numpy as np

FIRST_CHUNK = 1 << 16      # slots read first; then 2x, 4x, ... as far as needed


def first_matches(n: int, m: int, matches: Callable[[int, int], np.ndarray],
                  first: int = FIRST_CHUNK) -> np.ndarray:
    """The first m offsets in [0, n) that match (fewer if fewer do), ascending: `matches(a, b)` gives the
    ascending offsets within [a, b) that match, relative to a."""
    found, start, step = [], 0, first
    while m > 0 and start < n:
        end = min(n, start + step)
        hit = matches(start, end)[:m]
        found.append(hit + start)
        m -= hit.size
        start, step = end, step * 2
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)
