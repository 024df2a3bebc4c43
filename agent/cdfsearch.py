"""Inverse-CDF draws in a few memory reads per key: `GuideSearch(cum)(u)` equals `np.searchsorted(cum, u,
side="right")` exactly, for keys u in [0, cum[-1]), but avoids the binary search's ~22 dependent, mispredicted
steps per key over a cumulative array of millions of entries.

A guide table (Chen and Asau, 1974) splits the key range into m equal buckets, m a power of two near
len(cum) / PER_BUCKET, and records for each bucket edge the first index whose cumulative weight exceeds it. A
key's answer lies between its bucket's two guide entries; a fixed number of branch-free bisection steps over
that window, each one vectorised gather and compare for all keys at once, finds it. Bucket edges are exact:
j / m for a float CDF ending at 1.0 (a power-of-two divisor), j << shift for integer cumulative weights, so the
bucket of a key is computed without rounding and the answer is the searchsorted one bit for bit. The table
costs 4 bytes per PER_BUCKET entries of `cum` (int32 indices), built once by one searchsorted of m keys.

Zipf ranks (`agent/workloads.py`) draw through it, from partial sums shared by every size (`normalise`): their
table is built once and searched every tick. Trace replay keeps `np.searchsorted`: a trace epoch's table
often serves one tick, less than the table would cost.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GuideSearch", "PER_BUCKET"]

PER_BUCKET = 8      # entries of `cum` per guide bucket: 0.5 bytes of table per entry, at most a few steps


class GuideSearch:
    """`np.searchsorted(cum, u, side="right")` for keys in [0, cum[-1]), by a guide table and bisection.
    `cum` is nondecreasing and not copied (keep it unchanged): float64 ending at exactly 1.0, or integer with
    cum[-1] > 0.

    A float `cum` may also be unnormalised partial sums with `normalise=True`: the search then answers for
    the CDF cum / cum[-1] (each entry divided as it is read, so the CDF is never stored), bit for bit what
    `np.searchsorted(cum / cum[-1], u, side="right")` gives. Several CDFs can so share one array of partial
    sums: a CDF over the first n entries is the search over cum[:n]."""

    def __init__(self, cum: np.ndarray, per_bucket: int = PER_BUCKET, normalise: bool = False):
        if cum.ndim != 1 or cum.size == 0:
            raise ValueError(f"GuideSearch: cum must be a non-empty 1-d array, got shape {cum.shape}")
        n = cum.size
        self.cum = cum
        self._integer = np.issubdtype(cum.dtype, np.integer)
        self._scale = None
        if normalise:
            if self._integer or not cum[-1] > 0:
                raise ValueError(f"GuideSearch: normalise needs float partial sums ending above 0, got "
                                 f"{cum.dtype} ending at {cum[-1]!r}")
            self._scale = float(cum[-1])
            cum = cum / self._scale                 # for the table only: the search divides as it reads
        want = max(1, n // max(1, per_bucket))
        if self._integer:
            total = int(cum[-1])
            if total <= 0:
                raise ValueError(f"GuideSearch: integer weights must sum to more than 0, got {total}")
            # buckets of 2**shift keys, about `want` of them over [0, total)
            self._shift = max(0, (total - 1).bit_length() - max(0, (want - 1).bit_length()))
            m = ((total - 1) >> self._shift) + 1
            edges = np.arange(m + 1, dtype=np.int64) << self._shift
        else:
            if cum[-1] != 1.0:
                raise ValueError(f"GuideSearch: a float CDF must end at exactly 1.0, got {cum[-1]!r}")
            m = 1 << max(0, (want - 1).bit_length())
            self._m = float(m)
            edges = np.arange(m + 1, dtype=np.float64) / m
        index = np.int32 if n < 2**31 else np.int64
        guide = np.searchsorted(cum, edges, side="right")
        np.minimum(guide, n - 1, out=guide)         # every key is below cum[-1]: no answer is past the end
        self._guide = guide.astype(index)
        width = int((guide[1:] - guide[:-1]).max()) + 1   # candidates in the widest bucket
        self._steps = max(0, (width - 1).bit_length())  # bisection halvings that cover it
        self._last = n - 1
        self._short = n < 1 << self._steps      # shorter than one window (a few entries): nothing to guide

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """The first index i with cum[i] > u, for each key (intp, the shape of u)."""
        if self._short:
            return np.searchsorted(self.cdf(), u, side="right")
        if self._integer:
            bucket = np.right_shift(u, self._shift)
        else:
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
        at, key, cum, scale = base[wide], u[wide], self.cum, self._scale
        half = 1 << self._steps
        # start each window early enough that it ends inside cum: it still holds the answer (which is at most
        # the last index), and no probe needs clamping
        np.minimum(at, self._last + 1 - half, out=at)
        while half > 1:
            half >>= 1
            # a probe past the bucket's end reads a weight above u (cum is nondecreasing): it never moves `at`
            value = cum[at + (half - 1)]
            if scale is not None:
                value /= scale
            at += (value <= key) * half
        base[wide] = at
        return base

    def cdf(self) -> np.ndarray:
        """The CDF searched: `cum` itself, or with `normalise` a fresh cum / cum[-1]."""
        return self.cum if self._scale is None else self.cum / self._scale
