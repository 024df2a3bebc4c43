"""Synthetic workloads: the memory accesses of one tenant (VM or task), sampled once per simulated tick.

DESIGN.md section 5. A workload owns *which* pages of a tenant's footprint are accessed and how often; the host
model owns everything else (placement, A bits, latencies). Each tick a workload returns `samples` page numbers
(with repeats) drawn from its access distribution, and every sample stands for `accesses_per_sample` real
accesses (rate x tick / samples). The order of samples within a tick carries no meaning.

Every workload is deterministic: `sample(tick)` is a pure function of (seed, parameters, tick); each tick draws
from its own random stream, so replaying a tick, or skipping one, gives the same arrays. Popular pages are
scattered over the address space by a seeded permutation (rank -> page), as in a real heap, never pages 0..k.
Sampling costs a few memory reads per sample: popularity ranks come from a precomputed Zipf CDF searched
through a guide table (`agent/cdfsearch.py`, the answer of `np.searchsorted` without its binary search), and
are mapped to pages through the permutation. Construction is O(npages) time and memory: an int32 permutation,
a 0.5 byte-per-rank guide shared by the workloads of one size and exponent, and the float64 partial sums of the
Zipf weights, one array per exponent for every size in the process (`zipf_sums`; the CDF is never stored).

`probabilities(tick)` gives the distribution `sample(tick)` draws from, exactly (a Zipf rank's probability is the
step of the same CDF the draw searches): the per-epoch oracle ranks pages by it, since a tick's samples are far
too sparse to rank the cold pages of a large footprint. It is O(npages) per call and returns a fresh float64
array: ~40 ms at 4M pages for the Zipf-ranked workloads (mostly scattering ranks to pages through the
permutation), under 10 ms for hotset, scan+hot and phases. `expected(start, n_ticks, out)` is what the oracle
reads: the same numbers times ticks and rate, written as float32 into the caller's array (where a workload
overrides `_expected`, without an npages float64 array: ~1.5 ms per 256 Ki-page zipf tenant, ~0.7 ms per
1 Mi-page hotset one; scan+hot, whose distribution moves every tick, sums its ticks sparsely in
`_expected_sum`: 4.3 ms instead of the generic sum's 77 ms for a 1 Mi-page tenant over 10 ticks).

Workloads are registered by name in `WORKLOADS` (`@register`) and built from the scenario's YAML mapping by
`make_workload`. Each declares its tunables once as `OPTIONS` (`pagetide.common.options`), beside the
`COMMON_OPTIONS` every workload takes; values may be human units. A bad spec raises `ValueError` naming the key
(`workload.hot_fraction: must be within [0.0%, 100.0%], got 1.5`). Trace replay of real programs, the `trace`
workload, is a peer that lives with its file format in `pagetide.agent.traces` and registers itself here; the
scenario parser imports it, so a scenario may name it like any other.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from pagetide.agent.cdfsearch import GuideSearch
from pagetide.common import units
from pagetide.common.options import (
    Option, count, duration, number, parse_options, positive, rate, ratio, ratio_per_second,
)

__all__ = ["Workload", "WORKLOADS", "COMMON_OPTIONS", "register", "make_workload", "zipf_cdf", "ZipfWorkload",
           "HotsetWorkload", "DriftWorkload", "ScanHotWorkload", "IdleVmWorkload", "WriteHeavyWorkload",
           "PhasesWorkload"]

# Independent random streams of one seed: the layout (permutations, fixed sets) drawn at construction, the
# samples of each tick, and the sets that change per epoch (hotset moves). SeedSequence entropy is always three
# words long: [seed, stream, index] (entropies differing only by trailing zeros would collide).
_STREAM_LAYOUT, _STREAM_TICK, _STREAM_EPOCH = 0, 1, 2


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def _floor(x: float) -> int:
    """floor() that forgives float noise: 50 ticks x 0.1 s / 5 s is epoch 1, not 0.9999999999."""
    return math.floor(round(x, 9))


def _pages_for(fraction: float, npages: int) -> int:
    """Pages in `fraction` of the footprint: at least 1, rounded down so that disjoint fractions fit."""
    return min(npages, max(1, _floor(fraction * npages)))


def _scaled(p: np.ndarray, n: int, scale: float) -> np.ndarray:
    """(p x n) x scale in place, as `Workload._expected` computes it."""
    p *= n
    return np.multiply(p, scale, out=p)


def _permutation(seed: int, npages: int) -> np.ndarray:
    """The tenant's seeded layout: position i -> page. int32 halves the memory of a 4M-page tenant."""
    pages = np.arange(npages, dtype=np.int32 if npages < 2**31 else np.int64)
    _rng(seed, _STREAM_LAYOUT, 0).shuffle(pages)
    return pages


# ---- Zipf ranks --------------------------------------------------------------------------------------------

_ZIPF_BLOCK = 1 << 16
_zipf_sums: weakref.WeakValueDictionary[float, np.ndarray] = weakref.WeakValueDictionary()


def zipf_sums(n: int, s: float) -> np.ndarray:
    """The partial sums of (r+1)**-s for r = 0..n-1; read-only. One array per exponent serves every size
    (a prefix of it), shared while in use and grown (doubling) when a larger size asks. The weights are raised
    to the power in blocks of a fixed length, so an entry never depends on how long the array is."""
    sums = _zipf_sums.get(float(s))
    if sums is None or sums.size < n:
        size = max(n, 2 * sums.size if sums is not None else 0)
        size = -(-size // _ZIPF_BLOCK) * _ZIPF_BLOCK
        sums = np.empty(size)
        for lo in range(0, size, _ZIPF_BLOCK):
            np.power(np.arange(lo + 1, lo + _ZIPF_BLOCK + 1, dtype=np.float64), -s, out=sums[lo:lo + _ZIPF_BLOCK])
        np.cumsum(sums, out=sums)
        sums.flags.writeable = False
        _zipf_sums[float(s)] = sums
    return sums[:n]


def zipf_cdf(n: int, s: float) -> np.ndarray:
    """P(rank <= r) for r = 0..n-1 when rank r has weight (r+1)**-s (a fresh array; the draws never store it)."""
    sums = zipf_sums(n, s)
    return sums / sums[-1]


_zipf_guides: weakref.WeakValueDictionary[tuple[int, float], GuideSearch] = weakref.WeakValueDictionary()


def _zipf_guide(n: int, s: float) -> GuideSearch:
    """The guide-table search of zipf_cdf(n, s) over the shared partial sums, shared like them."""
    key = (n, float(s))
    guide = _zipf_guides.get(key)
    if guide is None:
        guide = _zipf_guides[key] = GuideSearch(zipf_sums(n, s))
    return guide


class _ZipfRanks:
    """Draws popularity ranks 0..n-1 (0 the hottest) with P(r) proportional to (r+1)**-s; s = 0 is uniform."""

    def __init__(self, n: int, s: float):
        self.n = n
        self._search = _zipf_guide(n, s) if s > 0 else None

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self._search is None:
            return rng.integers(0, self.n, size)
        u = rng.random(size)
        u.sort()  # sorted keys make the search's gathers from the sums run forward through memory
        return self._search(u)  # np.searchsorted(zipf_cdf(n, s), u, side="right"), exactly

    def pmf(self) -> np.ndarray:
        """P(draw == r) for r = 0..n-1, as `draw` realises it: with u uniform in [0, 1), rank r is drawn when
        cdf[r-1] <= u < cdf[r], so its probability is the CDF's step there (not the formula's (r+1)**-s / H,
        which differs by float rounding). A fresh float64 array summing to 1."""
        if self._search is None:
            return np.full(self.n, 1.0 / self.n)
        cdf = self._search.cdf()
        p = np.empty(self.n)
        p[0] = cdf[0]
        np.subtract(cdf[1:], cdf[:-1], out=p[1:])
        return p


# ---- arguments and options ------------------------------------------------------------------------------------

def _int_arg(v: Any, what: str, lo: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {v!r}")
    if v < lo:
        raise ValueError(f"{what} must be >= {lo}, got {v}")
    return int(v)


COMMON_OPTIONS: dict[str, Option] = {
    "rate": Option(positive(rate()), 50e6, "memory accesses per second"),
    "samples": Option(count(1), 16384, "sampled accesses per tick"),
    "write_ratio": Option(ratio(), None, "fraction of accesses that are writes (default per workload)"),
}


# ---- the base class ----------------------------------------------------------------------------------------

class Workload:
    """The accesses of one tenant. Subclasses declare `name`, `OPTIONS` and implement `_setup`, `_draw`,
    `_probabilities` and `_hot_pages` (or `_draw_accesses` instead of `_draw`, to draw the write mix too);
    parsing, defaults, validation and the write mix live here."""

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[dict[str, Option]] = {}
    # None: the workload sets `write_ratio` itself in `_setup` unless the spec gives one
    DEFAULT_WRITE_RATIO: ClassVar[float | None] = 0.1
    # True where the distribution moves materially from one tick to the next (a streaming scan, a trace), so
    # an epoch's expected accesses sum every tick's distribution (`_expected_sum`) instead of runs of equal
    # ones (`_distribution`)
    MOVES_EVERY_TICK: ClassVar[bool] = False

    npages: int                   # footprint in pages of the tenant's page size (4 KiB or 2 MiB)
    seed: int
    tick_s: float                 # simulated seconds per tick
    rate: float                   # accesses per second
    samples: int                  # samples per tick
    write_ratio: float
    accesses_per_sample: float    # real accesses each sample stands for: rate * tick_s / samples
    options: dict[str, Any]       # the workload's own OPTIONS after defaults, in declaration order

    def __init__(self, npages: int, seed: int, tick_s: float, spec: Mapping[str, Any] | None = None, *,
                 where: str = "workload"):
        self.npages = _int_arg(npages, f"{where}: npages", 1)
        self.seed = _int_arg(seed, f"{where}: seed", 0)
        if isinstance(tick_s, (bool, np.bool_)) or not isinstance(tick_s, (int, float, np.integer, np.floating)) \
                or not math.isfinite(tick_s) or tick_s <= 0:
            raise ValueError(f"{where}: tick_s must be a positive number of seconds, got {tick_s!r}")
        self.tick_s = float(tick_s)
        self._where = where
        values = self._parse_spec({} if spec is None else spec)
        self.rate = values.pop("rate")
        self.samples = values.pop("samples")
        wr = values.pop("write_ratio")
        self.write_ratio = self.DEFAULT_WRITE_RATIO if wr is None else wr
        self.accesses_per_sample = self.rate * self.tick_s / self.samples
        self.options = values
        self._setup(**values)

    @classmethod
    def valid_keys(cls) -> list[str]:
        return ["type", *COMMON_OPTIONS, *cls.OPTIONS]

    def _parse_spec(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(spec, Mapping) and "type" in spec and spec["type"] != self.name:
            raise ValueError(f"{self._where}.type: this is a {self.name!r} workload, got type {spec['type']!r}")
        return parse_options({**COMMON_OPTIONS, **self.OPTIONS}, spec, self._where,
                             owner=f"workload type {self.name!r}", ignore=("type",))

    def _fail(self, key: str, reason: str) -> ValueError:
        return ValueError(f"{self._where}.{key}: {reason}")

    def _check_tick(self, tick: int) -> int:
        return _int_arg(tick, f"{self.name}: tick", 0)

    # -- the interface the host model uses --

    def sample(self, tick: int) -> tuple[np.ndarray, np.ndarray]:
        """Pages accessed during tick `tick` (0-based) and whether each access is a write.

        Returns (pages: int64 in [0, npages), with repeats; is_write: bool, same length); `samples` of them."""
        tick = self._check_tick(tick)
        pages, is_write = self._draw_accesses(tick, _rng(self.seed, _STREAM_TICK, tick))
        return pages.astype(np.int64, copy=False), is_write

    def probabilities(self, tick: int) -> np.ndarray:
        """Expected share of this tenant's accesses that each page receives during tick `tick` (float64, length
        npages, sums to 1): the distribution `sample(tick)` draws from.

        Exact with respect to `sample`: pages `sample` can never return get exactly 0, and where `sample` is
        deterministic (the scan+hot scan) this is its exact share of the samples. A fresh array the caller may
        modify; O(npages) time and memory, vectorised."""
        tick = self._check_tick(tick)
        return self._probabilities(tick)

    def expected(self, start: int, n_ticks: int, out: np.ndarray) -> None:
        """Expected accesses per page over the n_ticks ticks from `start`, written into `out` (float32, npages):
        the sum of every tick's distribution -- each distinct one (`_distribution`) once, times the ticks it
        holds; one that holds the whole window is the distribution at the middle tick times n_ticks -- times
        rate x tick_s, in float64, rounded once. The per-epoch oracle ranks pages by it."""
        start = self._check_tick(start)
        scale = self.rate * self.tick_s
        if self.MOVES_EVERY_TICK:
            self._expected_sum(start, n_ticks, scale, out)
            return
        runs = self._runs(start, n_ticks)
        if len(runs) == 1:
            self._expected(start + n_ticks // 2, n_ticks, scale, out)
        else:
            self._expected_runs(runs, scale, out)

    def _runs(self, start: int, n: int) -> list[tuple[int, int]]:
        """The window's ticks as runs of one distribution: (first tick, ticks), in order."""
        runs: list[list[int]] = []
        last = object()
        for tick in range(start, start + n):
            key = self._distribution(tick)
            if runs and key == last:
                runs[-1][1] += 1
            else:
                runs.append([tick, 1])
            last = key
        return [(t, k) for t, k in runs] or [(start, n)]

    def hot_pages(self, tick: int, k: int) -> np.ndarray:
        """The k distinct pages most likely to be accessed around tick `tick`, hottest first (ties in a fixed
        arbitrary order): the ground truth a placement policy tries to find. int64."""
        tick = self._check_tick(tick)
        k = _int_arg(k, f"{self.name}: hot_pages(k)", 0)
        if k > self.npages:
            raise ValueError(f"{self.name}: hot_pages k must be <= npages ({self.npages}), got {k}")
        return np.asarray(self._hot_pages(tick, k), dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        """The spec after defaults (plain numbers in SI units); `make_workload` accepts it back."""
        return {"type": self.name, "rate": self.rate, "samples": self.samples, "write_ratio": self.write_ratio,
                **self.options}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "type")
        return f"{type(self).__name__}(npages={self.npages}, seed={self.seed}, tick_s={self.tick_s}, {args})"

    # -- implemented by each workload --

    def _setup(self, **params: Any) -> None:
        raise NotImplementedError

    def _draw_accesses(self, tick: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """This tick's sampled pages and whether each is a write, drawn from `rng` only: `_draw`'s pages, each
        a write with probability `write_ratio`."""
        pages = self._draw(tick, rng)
        return pages, rng.random(pages.size) < self.write_ratio

    def _draw(self, tick: int, rng: np.random.Generator) -> np.ndarray:
        """`self.samples` pages (any integer dtype) for this tick, drawn from `rng` only."""
        raise NotImplementedError

    def _probabilities(self, tick: int) -> np.ndarray:
        """A fresh float64 array of npages probabilities: the distribution `_draw(tick, ...)` draws from."""
        raise NotImplementedError

    def _expected_sum(self, start: int, n: int, scale: float, out: np.ndarray) -> None:
        """`expected` where the distribution moves every tick: the sum of the n ticks' probabilities from
        `start` (left to right), times scale, into out. Workloads may override it with the same numbers."""
        probs = sum(self._probabilities(start + i) for i in range(n))
        out[:] = np.multiply(probs, scale, out=probs)

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        raise NotImplementedError

    def _distribution(self, tick: int) -> Any:
        """What tick `tick`'s distribution depends on besides the workload's constants: ticks with equal values
        draw from the same one (`expected` adds each distinct one once). A workload whose distribution changes
        over time returns its state (a hot set's epoch, a phase, a rotation); static ones None."""
        return None

    def _expected_runs(self, runs: list[tuple[int, int]], scale: float, out: np.ndarray) -> None:
        """`expected` over runs of distinct distributions: the sum, left to right, of each run's probabilities
        times its ticks, times scale, into out. Workloads may override it with the same numbers."""
        probs = sum(self._probabilities(tick) * n for tick, n in runs)
        out[:] = np.multiply(probs, scale, out=probs)

    def _expected(self, tick: int, n: int, scale: float, out: np.ndarray) -> None:
        """`expected` of the distribution at `tick` held for n ticks: (p x n) x scale per page in float64, into
        out. A workload may override it to write the same numbers without its npages float64 arrays."""
        probs = self._probabilities(tick)
        probs *= n
        out[:] = np.multiply(probs, scale, out=probs)


WORKLOADS: dict[str, type[Workload]] = {}


def register(cls: type[Workload]) -> type[Workload]:
    """Class decorator: make the workload buildable by `make_workload` under its `name`."""
    if WORKLOADS.get(cls.name, cls) is not cls:
        raise ValueError(f"workload type {cls.name!r} is registered twice")
    WORKLOADS[cls.name] = cls
    return cls


def make_workload(spec: Mapping[str, Any], npages: int, seed: int, tick_s: float, *,
                  where: str = "workload") -> Workload:
    """Build a workload from a scenario mapping such as {"type": "hotset", "hot_fraction": "10%"}.

    `where` is the dotted key errors are reported under (e.g. "tenants[2].workload")."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a mapping with a 'type' key, got {type(spec).__name__} {spec!r}")
    types = ", ".join(WORKLOADS)
    if "type" not in spec:
        raise ValueError(f"{where}.type: missing; valid types: {types}")
    kind = spec["type"]
    if not isinstance(kind, str) or kind not in WORKLOADS:
        raise ValueError(f"{where}.type: unknown workload type {kind!r}; valid types: {types}")
    return WORKLOADS[kind](npages, seed, tick_s, spec, where=where)


# ---- the suite ---------------------------------------------------------------------------------------------

_ZIPF_S = Option(number(0.0), 0.99, "Zipf exponent: the page of popularity rank r (1-based) gets weight r**-s")


@register
class ZipfWorkload(Workload):
    """Static Zipf popularity: a fixed ranking of pages, scattered by the seeded permutation."""

    name = "zipf"
    OPTIONS = {"s": _ZIPF_S}

    def _setup(self, s: float) -> None:
        self._rank_to_page = _permutation(self.seed, self.npages)
        self._ranks = _ZipfRanks(self.npages, s)

    def _draw(self, tick: int, rng: np.random.Generator) -> np.ndarray:
        return self._rank_to_page[self._ranks.draw(rng, self.samples)]

    def _probabilities(self, tick: int) -> np.ndarray:
        probs = np.empty(self.npages)
        probs[self._rank_to_page] = self._ranks.pmf()
        return probs

    def _expected(self, tick: int, n: int, scale: float, out: np.ndarray) -> None:
        out[self._rank_to_page] = _scaled(self._ranks.pmf(), n, scale)     # scattered as float32

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        return self._rank_to_page[:k]


@register
class WriteHeavyWorkload(ZipfWorkload):
    """Zipf with mostly writes: stresses slow-tier write bandwidth (Optane writes ~1/3 of its reads)."""

    name = "write-heavy"
    DEFAULT_WRITE_RATIO = 0.7


@register
class HotsetWorkload(Workload):
    """GUPS-like: `hot_share` of the accesses go uniformly to a hot set of `hot_fraction` of the pages, the rest
    uniformly to all pages (so the hot set gets hot_share + (1 - hot_share) x hot_fraction of them). Every
    `move_every` seconds the hot set jumps to a fresh random set of pages (0 = never)."""

    name = "hotset"
    OPTIONS = {
        "hot_fraction": Option(positive(ratio()), 0.10, "fraction of the pages in the hot set"),
        "hot_share": Option(ratio(), 0.90, "fraction of the accesses that target the hot set"),
        "move_every": Option(duration(), 30.0, "seconds between hot-set moves; 0 = never"),
    }

    def _setup(self, hot_fraction: float, hot_share: float, move_every: float) -> None:
        self._nhot = _pages_for(hot_fraction, self.npages)
        self._cached_epoch = -1
        self._cached_hot = np.empty(0, dtype=np.int64)

    def _epoch(self, tick: int) -> int:
        move_every = self.options["move_every"]
        return 0 if move_every == 0 else _floor(tick * self.tick_s / move_every)

    def _distribution(self, tick: int) -> int:
        return self._epoch(tick)

    def _hot_set(self, tick: int) -> np.ndarray:
        epoch = self._epoch(tick)
        if epoch != self._cached_epoch:  # ticks come in order, so one cached epoch is enough
            rng = _rng(self.seed, _STREAM_EPOCH, epoch)
            self._cached_hot = rng.choice(self.npages, self._nhot, replace=False)
            self._cached_epoch = epoch
        return self._cached_hot

    def _draw(self, tick: int, rng: np.random.Generator) -> np.ndarray:
        hot = self._hot_set(tick)
        in_hot = rng.random(self.samples) < self.options["hot_share"]
        pages = rng.integers(0, self.npages, self.samples)
        pages[in_hot] = hot[rng.integers(0, hot.size, int(np.count_nonzero(in_hot)))]
        return pages

    def _probabilities(self, tick: int) -> np.ndarray:
        hot_share = self.options["hot_share"]
        hot = self._hot_set(tick)  # distinct pages
        probs = np.full(self.npages, (1.0 - hot_share) / self.npages)
        probs[hot] += hot_share / hot.size
        return probs

    def _expected(self, tick: int, n: int, scale: float, out: np.ndarray) -> None:
        """Two values: the cold pages' and the hot set's, computed as `_probabilities` gives them."""
        hot_share = self.options["hot_share"]
        hot = self._hot_set(tick)
        cold = (1.0 - hot_share) / self.npages
        out[:] = (cold * n) * scale
        out[hot] = ((cold + hot_share / hot.size) * n) * scale

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        hot = self._hot_set(tick)
        if k <= hot.size:
            return hot[:k]
        is_hot = np.zeros(self.npages, dtype=bool)
        is_hot[hot] = True
        return np.concatenate([hot, np.flatnonzero(~is_hot)[:k - hot.size]])


@register
class DriftWorkload(Workload):
    """Zipf whose ranking rotates: every second each page moves `drift` x npages ranks colder, and the pages
    falling off the cold end re-enter as the hottest. So new hot pages appear abruptly (a policy must find them
    quickly) and then cool gradually (it must let them go); the top-k set loses drift x npages pages/s."""

    name = "drift"
    OPTIONS = {
        "s": _ZIPF_S,
        "drift": Option(ratio_per_second(), 0.01, "fraction of the footprint the ranking shifts per second"),
    }

    def _setup(self, s: float, drift: float) -> None:
        self._slot_to_page = _permutation(self.seed, self.npages)
        self._ranks = _ZipfRanks(self.npages, s)

    def _offset(self, tick: int) -> int:
        return _floor(self.options["drift"] * self.npages * tick * self.tick_s) % self.npages

    _distribution = _offset       # the ranking rotates a little every tick

    def _expected_runs(self, runs: list[tuple[int, int]], scale: float, out: np.ndarray) -> None:
        """The generic sum, run by run, in layout order: the page at layout position i has rank (i + offset) mod
        n, so each run's share is the pmf rotated left by its offset (the same products and sums, page by page)."""
        pmf = self._ranks.pmf()
        acc = None
        for tick, n in runs:
            term = np.roll(pmf, -self._offset(tick))
            term *= n
            acc = term if acc is None else np.add(acc, term, out=acc)
        acc *= scale
        out[self._slot_to_page] = acc

    def _draw(self, tick: int, rng: np.random.Generator) -> np.ndarray:
        ranks = self._ranks.draw(rng, self.samples)
        return self._slot_to_page[(ranks - self._offset(tick)) % self.npages]

    def _probabilities(self, tick: int) -> np.ndarray:
        # rank r lands on slot (r - offset) mod n: ranks offset.. fill slots 0.., ranks 0..offset-1 the last slots
        split = self.npages - self._offset(tick)
        pmf = self._ranks.pmf()
        probs = np.empty(self.npages)
        probs[self._slot_to_page[:split]] = pmf[self.npages - split:]
        probs[self._slot_to_page[split:]] = pmf[:self.npages - split]
        return probs

    def _expected(self, tick: int, n: int, scale: float, out: np.ndarray) -> None:
        split = self.npages - self._offset(tick)
        v = _scaled(self._ranks.pmf(), n, scale)
        out[self._slot_to_page[:split]] = v[self.npages - split:]
        out[self._slot_to_page[split:]] = v[:self.npages - split]

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        return self._slot_to_page[(np.arange(k) - self._offset(tick)) % self.npages]


_DEFAULT_SCAN_LOOP_S = 20.0  # the default scan sweeps all cold pages once every 20 s


@register
class ScanHotWorkload(Workload):
    """Scan resistance: `hot_share` of the accesses go uniformly to a small hot set, the rest to a sequential
    scan that streams through the other (cold) pages in address order at `scan_rate` pages/s and wraps. A
    policy that promotes whatever was touched recently fills DRAM with scan pages touched once per loop.

    The scan's samples are spread evenly over the pages the scan pointer passes during the tick; when it passes
    more pages than it has samples, each sample stands for its neighbours (as every sample stands for
    `accesses_per_sample` accesses)."""

    name = "scan+hot"
    MOVES_EVERY_TICK = True
    OPTIONS = {
        "hot_fraction": Option(positive(ratio()), 0.05, "fraction of the pages in the hot set"),
        "hot_share": Option(ratio(), 0.50, "fraction of the accesses that target the hot set; the rest scan"),
        "scan_rate": Option(positive(rate()), None,
                            f"cold pages the scan passes per second; default: one loop every "
                            f"{_DEFAULT_SCAN_LOOP_S:g} s"),
    }

    def _setup(self, hot_fraction: float, hot_share: float, scan_rate: float | None) -> None:
        nhot = _pages_for(hot_fraction, self.npages)
        if nhot >= self.npages:
            raise self._fail("hot_fraction", f"leaves no cold pages to scan ({self.npages} pages in all)")
        layout = _permutation(self.seed, self.npages)
        self._hot = layout[:nhot].copy()    # the rest of the layout is not kept: 4 B per page
        # the cold pages ascending (the scan's order) are the complement of the hot set: cold page i is
        # i + (hot pages below it), found by `_cold` from the sorted hot set less its positions (nondecreasing)
        self._hot_gaps = np.sort(self._hot) - np.arange(nhot, dtype=self._hot.dtype)
        self._ncold = self.npages - nhot
        if scan_rate is None:
            scan_rate = self._ncold / _DEFAULT_SCAN_LOOP_S
            self.options["scan_rate"] = scan_rate
        self._nhot_samples = round(hot_share * self.samples)
        nscan = self.samples - self._nhot_samples
        self._advance = scan_rate * self.tick_s  # cold pages the pointer passes per tick
        self._scan_offsets = (np.arange(nscan) + 0.5) * (self._advance / max(nscan, 1))

    @property
    def scan_loop_s(self) -> float:
        """Seconds the scan takes to pass every cold page once."""
        return self._ncold / self.options["scan_rate"]

    def _cold(self, positions: np.ndarray) -> np.ndarray:
        """The cold pages at these positions of the ascending cold pages (the complement of the hot set)."""
        positions = np.asarray(positions, dtype=np.int64)
        return (positions + np.searchsorted(self._hot_gaps, positions, side="right")).astype(self._hot.dtype)

    def _scan_positions(self, tick: int) -> np.ndarray:
        return np.floor(tick * self._advance + self._scan_offsets).astype(np.int64) % self._ncold

    def _draw(self, tick: int, rng: np.random.Generator) -> np.ndarray:
        hot = self._hot[rng.integers(0, self._hot.size, self._nhot_samples)]
        return np.concatenate([hot, self._cold(self._scan_positions(tick))])

    def _probabilities(self, tick: int) -> np.ndarray:
        """Hot pages share the hot samples evenly; each cold page gets the scan samples that land on it this
        tick. When the pointer passes more pages than it has samples, the pages between samples get 0, exactly
        as in `sample` (whose samples stand for their neighbours)."""
        probs = np.zeros(self.npages)
        if self._nhot_samples:
            probs[self._hot] = self._nhot_samples / self.samples / self._hot.size
        if self._scan_offsets.size:
            positions, counts = np.unique(self._scan_positions(tick), return_counts=True)
            probs[self._cold(positions)] = counts / self.samples
        return probs

    def _expected_sum(self, start: int, n: int, scale: float, out: np.ndarray) -> None:
        """The generic sum without an npages float64 array per tick: a hot page's n equal shares added one by
        one, and each cold page's scan shares added in tick order (a weighted `bincount` adds in the order
        given) to the 0 every tick it was not passed adds nothing to -- the generic sum's numbers, bit for bit."""
        out[:] = 0.0
        if self._nhot_samples:
            share, total = self._nhot_samples / self.samples / self._hot.size, 0.0
            for _ in range(n):
                total += share
            out[self._hot] = total * scale
        if self._scan_offsets.size and n:
            ticks = [np.unique(self._scan_positions(start + i), return_counts=True) for i in range(n)]
            where, inverse = np.unique(np.concatenate([p for p, _ in ticks]), return_inverse=True)
            shares = np.concatenate([c for _, c in ticks]) / self.samples
            out[self._cold(where)] = np.bincount(inverse, weights=shares, minlength=where.size) * scale

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        """The hot set, then the cold pages in the order the scan reaches them from this tick on."""
        if k <= self._hot.size:
            return self._hot[:k]
        start = _floor(tick * self._advance)
        ahead = (start + np.arange(k - self._hot.size)) % self._ncold
        return np.concatenate([self._hot, self._cold(ahead)])


@register
class IdleVmWorkload(Workload):
    """A VM that uses only part of its memory: after boot (the host models the boot-time touch of every page)
    only `active_fraction` of the pages is ever accessed, Zipf(s) within that part, scattered over the footprint.
    Azure's Pond: the median VM never touches ~50% of its memory."""

    name = "idle-vm"
    OPTIONS = {
        "active_fraction": Option(positive(ratio()), 0.50, "fraction of the pages accessed after boot"),
        "s": _ZIPF_S,
    }

    def _setup(self, active_fraction: float, s: float) -> None:
        self._rank_to_page = _permutation(self.seed, self.npages)  # ranks >= nactive: never accessed
        self.nactive = _pages_for(active_fraction, self.npages)
        self._ranks = _ZipfRanks(self.nactive, s)

    def _draw(self, tick: int, rng: np.random.Generator) -> np.ndarray:
        return self._rank_to_page[self._ranks.draw(rng, self.samples)]

    def _probabilities(self, tick: int) -> np.ndarray:
        probs = np.zeros(self.npages)
        probs[self._rank_to_page[:self.nactive]] = self._ranks.pmf()
        return probs

    def _expected(self, tick: int, n: int, scale: float, out: np.ndarray) -> None:
        out[:] = 0.0
        out[self._rank_to_page[:self.nactive]] = _scaled(self._ranks.pmf(), n, scale)

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        return self._rank_to_page[:k]


@register
class PhasesWorkload(Workload):
    """Alternating working sets: `sets` disjoint sets of `set_fraction` of the pages each; during each `period`
    one set takes all accesses, then the next one (round robin). Within the active set accesses are uniform by
    default (s = 0: a phase sweeps its whole working set, like a batch job switching tables) or Zipf(s)."""

    name = "phases"
    OPTIONS = {
        "sets": Option(count(1), 2, "number of disjoint working sets"),
        "set_fraction": Option(positive(ratio()), 0.20, "fraction of the pages in each working set"),
        "period": Option(positive(duration()), 20.0, "seconds each working set stays active"),
        "s": Option(number(0.0), 0.0, "Zipf exponent within the active set; 0 = uniform"),
    }

    def _setup(self, sets: int, set_fraction: float, period: float, s: float) -> None:
        if sets * set_fraction > 1 + 1e-9:
            raise self._fail("set_fraction", f"{sets} disjoint sets of {units.format_ratio(set_fraction)} do not "
                                             f"fit in the footprint (sets x set_fraction must be <= 100%)")
        self._set_pages = _pages_for(set_fraction, self.npages)
        if sets * self._set_pages > self.npages:
            raise self._fail("sets", f"{sets} disjoint sets do not fit in {self.npages} pages")
        self._layout = _permutation(self.seed, self.npages)  # set j = layout[j*m : (j+1)*m]
        self._ranks = _ZipfRanks(self._set_pages, s)

    def active_set(self, tick: int) -> int:
        """Index of the working set that takes the accesses of tick `tick`."""
        return _floor(self._check_tick(tick) * self.tick_s / self.options["period"]) % self.options["sets"]

    def _set(self, j: int) -> np.ndarray:
        return self._layout[j * self._set_pages:(j + 1) * self._set_pages]

    def _distribution(self, tick: int) -> int:
        return self.active_set(tick)

    def _draw(self, tick: int, rng: np.random.Generator) -> np.ndarray:
        return self._set(self.active_set(tick))[self._ranks.draw(rng, self.samples)]

    def _probabilities(self, tick: int) -> np.ndarray:
        probs = np.zeros(self.npages)
        probs[self._set(self.active_set(tick))] = self._ranks.pmf()
        return probs

    def _expected(self, tick: int, n: int, scale: float, out: np.ndarray) -> None:
        out[:] = 0.0
        out[self._set(self.active_set(tick))] = _scaled(self._ranks.pmf(), n, scale)

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        """The active set, then the others in the order they become active, then pages in no set."""
        sets = self.options["sets"]
        first = self.active_set(tick)
        order = [self._set((first + i) % sets) for i in range(sets)]
        order.append(self._layout[sets * self._set_pages:])
        return np.concatenate(order)[:k]

