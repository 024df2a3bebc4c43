"""The agent's page-heat scanner: several idle_pages scans per period, refs per page, a decaying heat.

As the seed's memory-optimizer does, a page's `refs` in a period is the number of scans that found its
Accessed bit set (each scan test-and-clears it). At the end of a period refs are folded into `heat`, a
decaying average (memtierd's idea) so that a burst neither promotes a page nor a short lull demotes it:

    heat <- (heat + HEAT_ONE * round(15 * refs / nr_scans)) / 2      (fixed point, uint8; rounded up
                                                                       while rising, down while falling)

so heat // HEAT_ONE is a page's average share of scans that saw it accessed, on a 0..15 scale whatever
nr_scans is, and reports bin pages by `heat >> 4` into HEAT_BINS bins. State: one byte of refs and one of
heat per page, beside the host model's six.

The scanner walks each tenant with the vectorised fast path of `idle_pages` (proven equal to decoding the
byte stream in tests/test_idle_pages.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pagetide.agent.chunks import first_matches
from pagetide.agent.idle_pages import scan_fast
from pagetide.agent.pageflags import pages_per_node

if TYPE_CHECKING:       # the fold and the picking below are shared with real hosts, which never load the model
    from pagetide.agent.host import Host, Tenant

# The kernel's idle_pages walk: the 2018 RFC's 1 TiB of 4 KiB pages in 2 s of system time, 134 M pages/s on
# one core (DESIGN.md section 1.2) -- what a tracker's walk of N pages costs in host CPU seconds.
KERNEL_WALK_PAGES_PER_S = 134e6

HEAT_ONE = 16
HEAT_BINS = 16
MAX_LEVEL = 15


@dataclass
class Candidates:
    """A bounded list of one tenant's pages: page offsets within the tenant, their heat and node."""
    pages: np.ndarray
    heat: np.ndarray
    node: np.ndarray


@dataclass
class TenantHeat:
    tenant: Tenant    # the model's Tenant, or a real host's tenant
    hist: np.ndarray          # [nr_nodes, HEAT_BINS] resident pages per node and heat bin
    hot_slow: Candidates      # hottest pages on slow nodes, hottest first
    cold_fast: Candidates     # coldest pages on DRAM nodes, coldest first
    hot_fast: Candidates      # hottest pages on DRAM nodes, hottest first
    # on more than two memory tiers, per boundary b = 1, 2, ... (all tiers but the top and the lowest):
    # (b, hottest pages on tiers below b, coldest on tier b, hottest on tier b)
    lower: list[tuple[int, Candidates, Candidates, Candidates]] = field(default_factory=list)


class Scanner:
    """The idle_pages tracker (agent/backend.py Tracker): refs per period from idle_pages scans, folded into
    a decaying heat."""
    name = "idle_pages"
    BIN_LEVEL: tuple[float, ...] = ()   # the linear scale: bin b holds levels b..b+1 (reports leave it out)
    PAGE_ARRAYS = ("refs", "heat")      # per-page state

    def __init__(self, host: Host, nr_scans: int = 5, open_flags: int = 0):
        if not 1 <= nr_scans <= MAX_LEVEL:
            raise ValueError(f"nr_scans must be within 1..{MAX_LEVEL}, got {nr_scans}")
        self.host = host
        self.nr_scans = nr_scans
        self.open_flags = open_flags
        self.refs = np.zeros(host.nr_pages, dtype=np.uint8)
        self.heat = np.zeros(host.nr_pages, dtype=np.uint8)
        self.scans_in_period = 0
        self.period = 0
        self.pages_scanned = 0
        self.period_refs = np.zeros(len(host.tenants), dtype=np.int64)   # per tenant, last period

    def scan(self) -> None:
        """One scan of every tenant: refs += accessed."""
        h = self.host
        for t in h.tenants:
            rep = scan_fast([h.vma(t)], self.open_flags)[0]
            self.refs[t.start:t.end] += rep.accessed
            self.pages_scanned += t.npages
        self.scans_in_period += 1

    def observe(self, tick_samples) -> None:
        """A tick's sampled accesses: idle_pages sees only A bits, which the host model sets itself."""

    def cost_seconds(self) -> float:
        """Host CPU so far, modelled: every page walked at KERNEL_WALK_PAGES_PER_S."""
        return self.pages_scanned / KERNEL_WALK_PAGES_PER_S

    def relayout(self, change) -> None:
        """The host's tenant set changed (agent/churn.py Relayout): surviving pages keep refs and heat, new
        pages start cold."""
        for name in self.PAGE_ARRAYS:
            setattr(self, name, change.pages(getattr(self, name), 0))
        self.period_refs = change.tenants(self.period_refs, 0)

    def window_scans(self, tenant_index: int) -> float:
        """Scans a tenant's heat averages over: halving each period weighs periods as an average over
        (2 - 1/2) / (1/2) = 3 of them, so 3 x nr_scans."""
        return 3.0 * self.nr_scans

    def end_period(self) -> None:
        """Fold this period's refs into heat (`period_heat`) and start a new period."""
        self.heat = self.period_heat()
        self.period_refs = np.array([int(self.refs[t.start:t.end].sum(dtype=np.int64)) for t in self.host.tenants])
        self.refs[:] = 0
        self.scans_in_period = 0
        self.period += 1

    def period_heat(self) -> np.ndarray:
        """The heat at the end of a period from the period's refs and the heat before: the seed's halving fold.
        Trackers of other signals override this (updating their own per-period state there), not `end_period`."""
        return fold(self.heat, self.refs, self.scans_in_period)

    def tenant_heat(self, t: Tenant, max_candidates: int, max_hot_fast: int | None = None) -> TenantHeat:
        h = self.host
        return tenant_heat(t, self.heat[t.start:t.end], h.node[t.start:t.end], h.is_fast, max_candidates,
                           max_hot_fast, tier=h.tier if h.nr_tiers > 2 else None)


def fold(heat: np.ndarray, refs: np.ndarray, scans: int) -> np.ndarray:
    """A period's refs (of `scans` scans) folded into the decaying heat (the module docstring's formula)."""
    n = max(1, scans)
    if refs.dtype == np.uint8 and n <= 16 and int(refs.max(initial=0)) <= n:
        # the same numbers in bytes: refs x 15 + n // 2 <= 247 and level x 16 <= 240 do not overflow
        target = refs * np.uint8(MAX_LEVEL)
        target += np.uint8(n // 2)
        target //= np.uint8(n)
        target *= np.uint8(HEAT_ONE)
        return fold_target(heat, target)
    level = (refs.astype(np.uint16) * MAX_LEVEL + n // 2) // n          # 0..15 whatever nr_scans is
    return fold_target(heat, level * HEAT_ONE)


def fold_target(heat: np.ndarray, target: np.ndarray) -> np.ndarray:
    """heat <- (heat + target) / 2, target a period's level x HEAT_ONE (0..240): rounded up while rising, down
    while falling. A uint8 target is folded in bytes: the floor of the mean is (a & b) + ((a ^ b) >> 1), plus
    the odd sum's 1 while rising."""
    if target.dtype != np.uint8 or heat.dtype != np.uint8:
        old = heat.astype(np.uint16)
        target = target.astype(np.uint16)
        return ((old + target + (target > old)) // 2).astype(np.uint8)
    old = heat
    odd = old ^ target
    out = old & target
    out += odd >> 1
    odd &= np.uint8(1)
    odd &= target > old
    out += odd
    return out


def tenant_heat(tenant, heat: np.ndarray, node: np.ndarray, is_fast: np.ndarray, max_candidates: int,
                max_hot_fast: int | None = None, tier: np.ndarray | None = None) -> TenantHeat:
    """One tenant's histogram [nodes, HEAT_BINS] and candidate lists from its pages' heat and node (< 0: not
    present); is_fast[n]: node n is DRAM. With `tier` (node -> tier rank, on a host of more than two tiers)
    also the lists of every boundary below DRAM's.

    One pass codes every page as node x 256 + heat and counts the codes: the histogram and every list's cut
    (the heat level where its k pages end) follow from those counts, and each list is read from the codes
    as ranges of values, its pages at the cut level only as far as it needs them."""
    nr_nodes = is_fast.size
    codes = _Codes(heat, node, nr_nodes)
    hist = codes.counts.reshape(nr_nodes, HEAT_BINS, 256 // HEAT_BINS).sum(axis=2)
    fast_nodes, slow_nodes = np.flatnonzero(is_fast), np.flatnonzero(~is_fast)
    n_hot = max_candidates if max_hot_fast is None else min(max_hot_fast, max_candidates)
    lower = []
    if tier is not None:
        for b in range(1, int(tier.max())):
            on, below = np.flatnonzero(tier == b), np.flatnonzero(tier > b)
            lower.append((b, codes.pick(below, max_candidates, hottest=True),
                          codes.pick(on, max_candidates, hottest=False),
                          codes.pick(on, n_hot, hottest=True)))
    return TenantHeat(
        tenant=tenant, hist=hist,
        hot_slow=codes.pick(slow_nodes, max_candidates, hottest=True),
        cold_fast=codes.pick(fast_nodes, max_candidates, hottest=False),
        hot_fast=codes.pick(fast_nodes, n_hot, hottest=True), lower=lower)


class _Codes:
    """A tenant's pages coded node x 256 + heat (absent pages past every node), the count of each code, and
    the candidate lists read from them (`pick`).

    Where at most 1 / SPARSE of the pages have heat, only those are coded (`index`: their offsets, ascending)
    and the heat-0 pages of each node are counted as the node's pages less its heated ones: a mostly idle
    tenant costs a pass that finds its heated pages and a compare per node, not a code and a count per page.
    Heat-0 pages are then read from `heat` and `node` themselves (cold lists only: a hot list has none)."""

    SPARSE = 2

    def __init__(self, heat: np.ndarray, node: np.ndarray, nr_nodes: int):
        self.heat, self.node = heat, node
        heated = np.flatnonzero(heat)
        if heated.size * self.SPARSE <= heat.size:
            self.index: np.ndarray | None = heated
            heat, node = heat[heated], node[heated]
        else:
            self.index = None
        if node.dtype == np.int8:          # the model's: as uint8, absent pages (< 0) are rows 128..255
            row = node.view(np.uint8)
            self.code = np.left_shift(row, 8, dtype=np.uint16)
        else:
            row = np.where(node >= 0, node, nr_nodes).astype(np.uint16 if nr_nodes < 255 else np.uint32)
            self.code = np.left_shift(row, 8, out=row)
        np.bitwise_or(self.code, heat, out=self.code)
        self.counts = np.bincount(self.code, minlength=(nr_nodes + 1) * 256)[:nr_nodes * 256]
        self.levels = self.counts.reshape(nr_nodes, 256)
        if self.index is not None:          # heat-0 pages: each node's pages less its heated ones
            self.levels[:, 0] = pages_per_node(self.node, nr_nodes) - self.levels.sum(axis=1)

    def pick(self, nodes: np.ndarray, k: int, hottest: bool) -> Candidates:
        """The k hottest (or coldest) pages on `nodes`, hottest (coldest) first, ties by page offset; a hot list
        keeps no page of heat 0. The counts give the cut level and how many pages of it fit."""
        per_level = self.levels[nodes].sum(axis=0)       # pages on these nodes per heat level
        if hottest:                                       # heat 0 is never a hot candidate
            by_key = per_level[:0:-1]                     # key 0..254 = heat 255..1
        else:
            by_key = per_level
        cum = np.cumsum(by_key)
        total = int(cum[-1]) if cum.size else 0
        if total <= k:
            cut, need = by_key.size, 0                    # every level fits
        else:
            cut = int(np.searchsorted(cum, k))            # keys < cut all fit; key == cut partly
            need = k - (int(cum[cut - 1]) if cut else 0)
        heat_of = (lambda key: 255 - key) if hottest else (lambda key: key)
        parts = []
        if cut:                                           # the levels that fit whole
            lo, hi = sorted((heat_of(0), heat_of(cut - 1)))
            parts += [self._find(n, lo, hi, None) for n in nodes if self.levels[n, lo:hi + 1].any()]
        if need:
            level = heat_of(cut)
            at = [self._find(n, level, level, need) for n in nodes if self.levels[n, level]]
            parts.append(np.sort(np.concatenate(at))[:need])
        pages = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
        h = self.heat[pages]
        key = (255 - h) if hottest else h
        pages = pages[np.argsort(key, kind="stable")]    # pages are ascending, so ties stay in page order
        return Candidates(pages=pages, heat=self.heat[pages].copy(), node=self.node[pages].astype(np.int64))

    def _find(self, n: int, lo: int, hi: int, m: int | None) -> np.ndarray:
        """Ascending offsets of the pages on node n with heat lo..hi; with m, only the first m of them."""
        if self.index is None:
            return self._find_coded(n, lo, hi, m)
        if lo > 0:
            return self.index[self._find_coded(n, lo, hi, m)]
        if hi == 0:
            return self._find_idle(n, m)
        # heat 0..hi, whole levels (a cold list that takes every idle page of the node): one pass, ascending
        return np.flatnonzero((self.node == n) & (self.heat <= hi))[:m]

    def _find_coded(self, n: int, lo: int, hi: int, m: int | None) -> np.ndarray:
        """`_find` among the coded pages: positions in `code`."""
        code = self.code
        t = code.dtype.type
        base, span = t(n * 256 + lo), t(hi - lo)
        if m is None or m >= int(self.levels[n, lo:hi + 1].sum()):
            return np.flatnonzero(code == base if not span else (code - base) <= span)

        def matches(a: int, b: int) -> np.ndarray:
            seg = code[a:b]
            return np.flatnonzero(seg == base if not span else (seg - base) <= span)

        return first_matches(code.size, m, matches)

    def _find_idle(self, n: int, m: int | None) -> np.ndarray:
        """`_find` of heat 0 when only heated pages are coded: read from heat and node."""
        heat, node = self.heat, self.node

        def matches(a: int, b: int) -> np.ndarray:
            return np.flatnonzero((node[a:b] == n) & (heat[a:b] == 0))

        if m is None or m >= int(self.levels[n, 0]):
            return matches(0, heat.size)
        return first_matches(heat.size, m, matches)
