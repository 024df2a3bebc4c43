"""Inverse-CDF draws in a few memory reads per key: `GuideSearch(sums)(u)` equals `np.searchsorted(sums /
sums[-1], u, side="right")` exactly, for keys u in [0, 1), but avoids the binary search's ~22 dependent,
mispredicted steps per key over arrays of millions of entries, and never stores the CDF: each entry of the
partial sums is divided as it is read, so CDFs of every length share one array (a CDF over the first n
entries is the search over sums[:n]).

A guide table (Chen and Asau, 1974) splits [0, 1) into m equal buckets, m a power of two near
len(sums) / PER_BUCKET, and records for each bucket edge the first index whose CDF value exceeds it. A key's
answer lies between its bucket's two guide entries; a fixed number of branch-free bisection steps over that
window, each one vectorised gather and compare for all keys at once, finds it. Bucket edges j / m are exact (a
power-of-two divisor), so the bucket of a key is computed without rounding and the answer is the searchsorted
one bit for bit. The table costs 4 bytes per PER_BUCKET entries (int32 indices), built once by one
searchsorted of m keys.

Zipf ranks (`agent/workloads.py`) draw through it: their table is built once and searched every tick. Trace
replay keeps `np.searchsorted`: a trace epoch's table often serves one tick, less than the table would cost.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GuideSearch", "PER_BUCKET"]

PER_BUCKET = 8      # entries of `cum` per guide bucket: 0.5 bytes of table per entry, at most a few steps


class GuideSearch:
    """`np.searchsorted(sums / sums[-1], u, side="right")` for keys in [0, 1), by a guide table and bisection.
    `sums` is float, nondecreasing, ends above 0, and is not copied (keep it unchanged)."""

    def __init__(self, sums: np.ndarray, per_bucket: int = PER_BUCKET):
        if sums.ndim != 1 or sums.size == 0:
            raise ValueError(f"GuideSearch: sums must be a non-empty 1-d array, got shape {sums.shape}")
        if not np.issubdtype(sums.dtype, np.floating) or not sums[-1] > 0:
            raise ValueError(f"GuideSearch: needs float partial sums ending above 0, got {sums.dtype} ending at "
                             f"{sums[-1]!r}")
        n = sums.size
        self.sums, self._scale = sums, float(sums[-1])
        m = 1 << max(0, (max(1, n // max(1, per_bucket)) - 1).bit_length())
        self._m = float(m)
        guide = np.searchsorted(self.cdf(), np.arange(m + 1, dtype=np.float64) / m, side="right")
        np.minimum(guide, n - 1, out=guide)         # every key is below 1.0: no answer is past the end
        self._guide = guide.astype(np.int32 if n < 2**31 else np.int64)
        width = int((guide[1:] - guide[:-1]).max()) + 1   # candidates in the widest bucket
        self._steps = max(0, (width - 1).bit_length())  # bisection halvings that cover it
        self._last = n - 1
        self._short = n < 1 << self._steps      # shorter than one window (a few entries): nothing to guide

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """The first index i with sums[i] / sums[-1] > u, for each key (intp, the shape of u)."""
        if self._short:
            return np.searchsorted(self.cdf(), u, side="right")
        bucket = np.multiply(u, self._m).astype(np.intp)
        lo = self._guide[bucket]
        base = lo.astype(np.intp)
        if self._steps == 0:
            return base
        # only keys whose bucket holds more than one candidate need the bisection: in a skewed distribution
        # most keys fall in the head, where a bucket is one index wide
        wide = np.flatnonzero(self._guide[bucket + 1] != lo)
        if wide.size == 0:
            return base
        at, key, sums, scale = base[wide], u[wide], self.sums, self._scale
        half = 1 << self._steps
        # start each window early enough that it ends inside sums: it still holds the answer (which is at most
        # the last index), and no probe needs clamping
        np.minimum(at, self._last + 1 - half, out=at)
        while half > 1:
            half >>= 1
            # a probe past the bucket's end reads a value above u (the CDF is nondecreasing): it never moves `at`
            at += (sums[at + (half - 1)] / scale <= key) * half
        base[wide] = at
        return base

    def cdf(self) -> np.ndarray:
        """The CDF searched, a fresh sums / sums[-1]."""
        return self.sums / self._scale
