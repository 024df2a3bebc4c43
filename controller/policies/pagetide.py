"""pagetide's placement policy: one host's heat statistics and the users' VM policies in, a migration plan
out (DESIGN.md section 7). `plan_host` is the algorithm, a pure function -- no Ray, no gRPC, no clock, no I/O;
`PagetidePolicy` is the same algorithm as a peer of the baselines behind `PlacementPolicy`: its options, its
SW_YOUNG marking rounds and the hot_fast list it asks the agent for.

Each round is level-triggered (desired state vs actual state, as a Kubernetes controller does): a plan that
was cut short by the migration budget, a lost batch or pages that no longer fit are healed by the next
round, never by special cases here. A host whose placement already matches its targets gets a plan that
moves zero bytes, so the stable state is a fixed point.

The round, in four steps:

1. Utility curves. A tenant's pages sorted by heat give U_v(k), the accesses served from DRAM if its k
   hottest bytes sit there. The access rate of a heat bin is an estimate in accesses per scan interval
   (`bin_rates`): the bin's refs level -- its centre on the seed's 0..15 scale, or the level the host's
   tracker reports for it -- is the share of scans that found a page accessed, inverted as a Poisson
   rate, so saturated bins of two VMs stand for equal rates and weights multiply rates, not bin numbers;
   bin 0 counts as never accessed. Sorted by heat, every curve is concave, so greedy by marginal utility
   is optimal (utility-based partitioning, Qureshi & Patt, MICRO'06).
2. DRAM split. The host's DRAM budget (fast capacity minus the high watermark, minus a reserve, minus DRAM
   held by anyone not in the view) goes first to every VM's `min_dram_bytes`, then bin by bin to the highest
   weighted marginal utility, capped at `max_dram_bytes`. DRAM whose marginal utility is zero is left
   unassigned: cold pages already there may keep it (moving them would be churn), none are promoted into it.
   A VM's rules fix its bounds: pinned to DRAM, min = max = its footprint (and any heat is promoted, never
   demoted); pinned to the slow tier, max = 0 (nothing promoted or marked); migration off, min = max = what
   it holds now, and none of its pages is moved or marked.
3. Per tenant: fill up to the target with the hottest slow pages, demote the coldest DRAM pages down to it,
   and swap hot slow pages for cold DRAM pages while they differ by at least `hysteresis_bins` (the seed
   daemon's anti-thrash gap) -- or PHASE_GAP levels for a tenant whose working set just moved off DRAM
   (its DRAM-resident share of estimated accesses fell by PHASE_DROP since the last round), so a phase
   change is followed in one round instead of two; a stable set keeps the gap and does not churn. Then narrow
   swaps, one bin less than the gap, where the DRAM page has heat -- a DRAM page at heat 0 keeps the full
   gap -- once the tenant's heat has folded NARROW_AFTER periods (a tenant resident in full when first seen has
   no first-touch heat to wait out), and where the tenant's DRAM holds a steady idle pool (`IdlePool`) a DRAM
   page at heat 0 takes the narrow gap too; then idle swaps, without the gap: DRAM
   pages idle for good (thrash.py says which) for the next slow pages of IDLE_SWAP_BIN or hotter. Promotions
   never exceed the room above watermark + reserve that free memory and this plan's demotions provide; the
   reserve, kept for pages still to be faulted in, is 0 on a host where every tenant is resident in full and
   no node is loaded (`PagetidePolicy`).
4. Budget. Demotions that bring tenants down to their targets come first (they make the room), then fills
   and swaps by weighted heat gain per byte moved, within `max_bytes_per_round`. Batches of at most
   `batch_bytes` and one target node each, in execution order: demotions, promotions, then MPOL_MF_SW_YOUNG
   marks on hot pages already in DRAM so that kernel reclaim between rounds spares them (the 2018 RFC's
   flag; newly promoted pages are not marked: they must prove hotness on the LRU).

Loaded latency. A DRAM node whose accesses now pay more than those of the slow node it demotes to (its
`NodeView.latency_ns`, the last period's loaded latency: a DRAM node saturated by bandwidth -- Colloid,
SOSP'24) takes no promotions, neither fills nor swaps, until its latency drops below the slow node's again;
demotions down to the targets go on. Idle latencies (an agent that does not measure load) never trigger it.
Beyond stopping, `PagetidePolicy` balances the tiers' loaded latencies (Colloid's principle; our search): it
bisects the share of the host's estimated accesses DRAM should serve -- an upper bound where DRAM was the
slower, a lower bound where it was the faster -- and `plan_host(dram_cap=...)` demotes DRAM's hottest pages
(its hot_fast list) while DRAM's share is above the cap, or promotes at most up to it. The search starts when
DRAM is first seen the slower and ends when the upper bound has reopened to all of the accesses (DRAM the
faster at every share tried); a host whose DRAM is never the slower (any lightly loaded one) is placed by
heat alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from pagetide.common.options import Option, flag, integer, number, ratio
from pagetide.controller.policies.base import (
    PlacementPolicy, Plan, PolicyParams, ReportRequest, VmPolicy, validate_params,
)
from pagetide.controller.policies.placement import (
    cut_batches, place, resolve_policies, sorted_candidates, threshold_bin,
)
from pagetide.controller.policies.thrash import IdleAge, Moved, ThrashGuard, member
from pagetide.controller.policies.view import HEAT_BINS, MAX_LEVEL, HostView, TenantHeat, heat_bins

__all__ = ["BIN_RATE", "bin_rates", "plan_host", "PagetidePolicy"]

# Estimated access rate of a page in each heat bin, in scanner levels (15 = accessed in every scan): the bin
# centre. Bin 0 holds pages whose decayed heat is below one level -- a page seen even once in the last
# period lands in bin >= 1 -- so it is taken as never accessed: the DRAM split stops there instead of filling
# DRAM with idle memory. The curve only ranks bytes, so any increasing estimate with rate(0) = 0 would do.
BIN_RATE = np.array([0.0] + [b + 0.5 for b in range(1, HEAT_BINS)])
BIN_RATE.setflags(write=False)

# A page accessed in every scan has an access rate the A bit cannot tell apart from saturation: its share of
# scans is capped here before inversion, so the hottest bin stands for ~3.5 accesses per scan interval.
_SHARE_CAP = 0.97


def bin_rates(view: HostView) -> np.ndarray:
    """Estimated accesses per scan interval of a page in each heat bin, comparable across tenants and
    trackers: the bin's refs level (the tracker's `bin_level`, else the seed's bin centre) is a share p of
    scans that found the page accessed, and a page touched at Poisson rate lam per interval is found with
    p = 1 - exp(-lam), so lam = -ln(1 - p). Bins of two VMs with equal saturated levels then stand for equal
    rates, and the marginal utilities the DRAM split compares are rates, not bin numbers. Bin 0 is 0."""
    level = np.asarray(view.bin_level, dtype=np.float64) if view.bin_level else BIN_RATE
    share = np.minimum(level / MAX_LEVEL, _SHARE_CAP)
    out = -np.log1p(-share)
    out[0] = 0.0
    return out


def dram_heat_share(view: HostView) -> dict[str, float]:
    """Per tenant, the share of its estimated accesses (pages x `bin_rates`) that its DRAM-resident pages
    take; 1.0 for a tenant with no heat."""
    rate = bin_rates(view)
    out = {}
    for t in view.tenants:
        total = fast = 0.0
        for nid, h in t.hist.items():
            x = float(np.asarray(h, dtype=np.float64) @ rate)
            total += x
            if view.topology.fast_pos[nid] >= 0:
                fast += x
        out[t.name] = fast / total if total > 0 else 1.0
    return out


# Phase changes. A tenant whose DRAM-resident share of its estimated accesses (`dram_heat_share`) fell by at
# least PHASE_DROP since the last round has a working set that moved off DRAM (a phase ended, a hot set jumped):
# its old pages decay while the new ones rise, and after one period both sit near half their level -- within
# the hysteresis of each other -- so the seed's rule would wait a second period to swap. For that round its
# swaps need only PHASE_GAP levels. A stable working set keeps its share, so nothing changes for it.
PHASE_DROP = 0.3
PHASE_GAP = 1.0

# Idle swaps. A DRAM page whose decayed heat is exactly 0 was not accessed in the last several periods (the
# halving fold takes 5 idle periods to bring one touch to 0, 8 from the hottest level). Where that means idle
# for good -- an idle VM's boot-time memory, whose listed idle pages stay idle round after round -- such a page
# gives way to a slow page of IDLE_SWAP_BIN or hotter without the hysteresis (the seed's 3-bin gap leaves the
# idle VM's active tail, bins 1-2, in the slow tier behind its never-touched DRAM). Bin 2, not 1: a page seen
# in one scan only (a streaming scan's, once per loop) reads bin 1. Which VMs and pages: thrash.py.
IDLE_SWAP_BIN = 2

# Narrow swaps. Where DRAM is scarce its coldest pages are warm: the DRAM cut falls mid-scale, where the seed's
# gap leaves slow pages two bins hotter than DRAM pages in the slow tier (DRAM 1/8 of a drifting Zipf: 0.339 of
# the per-epoch oracle with the gap, 0.357 with one bin less). Past the gap, pairs
# whose DRAM page has heat (bin >= 1) also swap at NARROW_GAP_LESS bins less than the gap. A DRAM page at heat
# 0 keeps the full gap (or an idle swap): it is the coldest in DRAM, and in a drifting or cyclic ranking the
# longest-idle pages are the next to turn hot (a drifting Zipf at DRAM 1/2 where those are demoted for pages
# two bins warmer: 0.620 -> 0.592). Only after a tenant's first NARROW_AFTER rounds: until the halving fold
# has folded that many periods, its heat still ranks its start (first touch sets every page's A bit; sort's and
# sqlite-index's trace hosts at DRAM 1/2 lose 0.010 and 0.008 to narrow swaps in their first rounds).
NARROW_GAP_LESS = 1
NARROW_AFTER = 3

# Narrow swaps of idle DRAM pages. Where a tenant's DRAM holds a steady pool of pages at heat 0 -- at least
# IDLE_POOL of its DRAM pages in each of the last POOL_ROUNDS rounds (QUICK_POOL_ROUNDS for a tenant resident in
# full when first seen, whose pool is its boot memory from the start) -- and they do not wake hot -- of those
# its reports listed at heat 0, at most HOT_WAKE_MAX were among its hottest DRAM pages (HOT_WAKE_BIN or hotter)
# the round after -- its DRAM pages at heat 0 take the narrow gap too. A Zipf's or a write-heavy VM's at DRAM 1/2
# (~45% of DRAM at heat 0, 0.1 hot wakes a round): the 3-bin gap left slow pages of bin 2, seen in two periods
# running, behind DRAM pages not seen in five (0.954 of the per-epoch oracle against memory-optimizer's 0.962).
# A drifting ranking's longest-idle pages re-enter as its hottest (~15 hot wakes a round at DRAM 1/2): they keep
# the full gap. So does a pool that comes and goes (python-dict's trace at DRAM 1/8, faulting its memory in, has
# one for 2-8 rounds at a time and reuses it: -0.004 with 4 rounds, nothing lost with 5 or 6), a tenant whose
# idle swaps run (thrash.py: they take its idle-for-good pages without any gap), and a host under bandwidth
# load, which the loaded-latency search places (hotset-bw at DRAM 1/4: 0.8532 -> 0.8526 of the oracle's share
# with them, at 8.56x all-DRAM memory time for 8.61x).
IDLE_POOL = 0.3
POOL_ROUNDS = 6
QUICK_POOL_ROUNDS = 2
HOT_WAKE_BIN = 6
HOT_WAKE_MAX = 0.001

MIN_GAP_LEVELS = 0.25     # a swap's least level difference, whatever the window: about one bin of the log scale

# Equal weighted slopes compare equal after rounding away float noise (w=2, rate 2.5 vs w=1, rate 5.0 ...)
_SLOPE_DIGITS = 9


# ------------------------------------------------------------------------------------------- DRAM split

def _split_dram(bin_bytes: np.ndarray, page_size: np.ndarray, weight: np.ndarray, lo: list[int],
                hi: list[int], budget: int, rate: np.ndarray = BIN_RATE) -> list[int]:
    """Bytes of DRAM per tenant maximising sum w_v * U_v(k_v) within [lo_v, hi_v] and the budget.

    bin_bytes[v, b] is tenant v's resident bytes in heat bin b; lo/hi are already clipped to the footprint
    and rounded to pages. A tenant's min covers its hottest bytes first, so the greedy continues each
    curve where its min left it. The loop runs over (tenant, bin) segments -- at most 16 per tenant -- in
    Python ints, because byte products overflow int64."""
    nt = len(page_size)
    ps = [int(p) for p in page_size]
    lo = [int(x) for x in lo]
    if sum(lo) > budget:
        # mins overbook the host: scale them down proportionally, as a guarantee cannot be met in full
        total = sum(lo)
        lo = [(x * budget // total) // p * p for x, p in zip(lo, ps)]
    given = list(lo)
    remaining = budget - sum(given)

    # bytes of each bin above the min and below the max, walking each curve from the hottest bin down
    segments = []
    for v in range(nt):
        skip, room = given[v], int(hi[v]) - given[v]
        for b in range(HEAT_BINS - 1, 0, -1):        # bin 0 has no utility: never assigned
            size = int(bin_bytes[v, b])
            taken = min(skip, size)
            skip -= taken
            avail = min(size - taken, room)
            room -= avail
            if avail > 0:
                slope = round(float(weight[v]) * float(rate[b]), _SLOPE_DIGITS)
                segments.append((slope, v, b, avail))
    # highest weighted marginal utility first; ties by tenant order then hotter bin (deterministic)
    segments.sort(key=lambda s: (-s[0], s[1], -s[2]))

    i = 0
    while i < len(segments) and remaining > 0:
        j = i
        while j < len(segments) and segments[j][0] == segments[i][0]:
            j += 1
        group = segments[i:j]
        total = sum(s[3] for s in group)
        if total <= remaining:
            for _, v, _, avail in group:
                given[v] += avail
            remaining -= total
        else:
            # The budget ends inside a group of equal marginal value: split it in proportion to the
            # segments' sizes (two identical VMs get equal halves, not first-come-first-served), then hand
            # out whole pages lost to rounding in group order.
            share = [(avail * remaining // total) // ps[v] * ps[v] for _, v, _, avail in group]
            left = remaining - sum(share)
            progress = True
            while progress:
                progress = False
                for k, (_, v, _, avail) in enumerate(group):
                    if left >= ps[v] and share[k] + ps[v] <= avail:
                        share[k] += ps[v]
                        left -= ps[v]
                        progress = True
            for k, (_, v, _, _) in enumerate(group):
                given[v] += share[k]
            remaining = left
            break
        i = j
    return given


def _retain_slack(util: list[int], current: np.ndarray, hi: list[int], page_size: np.ndarray,
                  budget: int) -> list[int]:
    """Final targets: the utility share, plus leftover DRAM (budget nobody's hot pages claimed) for tenants
    already holding more than their share. Demoting idle pages from DRAM that nobody else wants would be
    churn; under pressure the leftover is small and they are demoted. Capped at max, so a VM above its max
    is always brought down."""
    excess = [max(0, min(int(c), int(h)) - u) for u, c, h in zip(util, current, hi)]
    leftover = budget - sum(util)
    total = sum(excess)
    if total <= 0 or leftover <= 0:
        return list(util)
    if total <= leftover:
        return [u + e for u, e in zip(util, excess)]
    return [u + (e * leftover // total) // int(p) * int(p) for u, e, p in zip(util, excess, page_size)]


# ------------------------------------------------------------------------------------------------ plan

def _concat(parts: list[dict[str, np.ndarray]], dtypes: dict[str, type]) -> dict[str, np.ndarray]:
    return {k: (np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)).astype(dt)
            for k, dt in dtypes.items()}


_DOWN = {"tenant": np.int64, "addr": np.uint64, "node": np.int64, "loss": np.float64}
_MOVE = {"tenant": np.int64, "hot_addr": np.uint64, "hot_node": np.int64, "cold_addr": np.uint64,
         "cold_node": np.int64, "swap": bool, "gain": np.float64, "rate": np.float64, "waived": bool}


def _tenant_moves(v: int, t: TenantHeat, weight: float, gap: int, can_demote: bool,
                  params: PolicyParams, can_promote: bool = True, min_bin: int | None = None,
                  rate: np.ndarray = BIN_RATE, level: np.ndarray | None = None,
                  swap_gap: float | None = None, idle_pages: np.ndarray | None = None,
                  narrow: bool = False, narrow_idle: bool = False) -> tuple[dict, dict]:
    """What would bring tenant v to its target, before the budget and room limits: demotions down to the
    target (`gap` < 0), and fills up to it (`gap` > 0) plus hysteresis-guarded swaps. `min_bin`: the
    coldest bin promoted (default params.min_promote_bin). `narrow`: past the hysteresis, pairs whose DRAM
    page has heat (`narrow_idle`: or is at heat 0) also swap at NARROW_GAP_LESS bins less (with the seed's fixed
    gap). `idle_pages`: sorted
    addresses of DRAM pages idle long enough (thrash.IdleAge) to give way to slow pages of IDLE_SWAP_BIN or
    hotter without the hysteresis."""
    ps = t.page_size
    h_addr, h_bin, h_node = sorted_candidates(t.hot_slow, hottest=True)
    h_lvl = _levels(h_bin, level)
    keep = h_bin >= (params.min_promote_bin if min_bin is None else min_bin)
    if not can_promote:
        keep[:] = False
    h_addr, h_bin, h_node, h_lvl = h_addr[keep], h_bin[keep], h_node[keep], h_lvl[keep]
    c_addr, c_bin, c_node = sorted_candidates(t.cold_fast, hottest=False)
    c_lvl = _levels(c_bin, level)
    if not can_demote:
        c_addr, c_bin, c_node, c_lvl = c_addr[:0], c_bin[:0], c_node[:0], c_lvl[:0]
    n_fill = min(h_addr.size, max(gap, 0) // ps)
    n_down = min(c_addr.size, -(-max(-gap, 0) // ps))
    # pair the hottest remaining slow page with the coldest remaining DRAM page; the bin difference only
    # shrinks along the pairs, so the swaps are the prefix where it is still >= the hysteresis gap
    m = min(h_addr.size - n_fill, c_addr.size - n_down)
    ok = _differ(h_lvl[n_fill:n_fill + m], c_lvl[n_down:n_down + m], t.window_scans, params, swap_gap)
    n_swap = m if ok.all() else int(np.argmin(ok))
    if narrow and swap_gap is None and n_swap < m:
        # narrow swaps: the pairs go on while one bin less separates them and the DRAM page has heat (the
        # differences only shrink along the pairs, so they are a prefix too)
        hs, cs = slice(n_fill + n_swap, n_fill + m), slice(n_down + n_swap, n_down + m)
        less = max(1, params.hysteresis_bins - NARROW_GAP_LESS)
        ok = _differ(h_lvl[hs], c_lvl[cs], t.window_scans, params, less) & ((c_bin[cs] >= 1) | narrow_idle)
        n_swap += ok.size if ok.all() else int(np.argmin(ok))
    h_sw = np.arange(n_fill, n_fill + n_swap)
    c_sw = np.arange(n_down, n_down + n_swap)
    if idle_pages is not None and idle_pages.size:
        # idle swaps: the next slow pages of IDLE_SWAP_BIN or hotter, each for one of the long-idle DRAM pages
        # that neither the demotions nor the swaps above took (their own order is left as it is: the longest
        # idle pages of a drifting ranking are the next to turn hot, and need the gap)
        h_more = np.flatnonzero(h_bin[n_fill + n_swap:] >= IDLE_SWAP_BIN) + n_fill + n_swap
        c_more = np.flatnonzero(member(c_addr[n_down + n_swap:], idle_pages) & (c_bin[n_down + n_swap:] == 0))
        n_waived = min(h_more.size, c_more.size)
        h_sw = np.concatenate([h_sw, h_more[:n_waived]])
        c_sw = np.concatenate([c_sw, c_more[:n_waived] + n_down + n_swap])
    down = dict(tenant=np.full(n_down, v), addr=c_addr[:n_down], node=c_node[:n_down],
                loss=weight * rate[c_bin[:n_down]])
    n_sw = h_sw.size
    moves = dict(
        tenant=np.full(n_fill + n_sw, v),
        hot_addr=np.concatenate([h_addr[:n_fill], h_addr[h_sw]]),
        hot_node=np.concatenate([h_node[:n_fill], h_node[h_sw]]),
        cold_addr=np.concatenate([np.zeros(n_fill, np.uint64), c_addr[c_sw]]),
        cold_node=np.concatenate([np.full(n_fill, -1), c_node[c_sw]]),
        swap=np.concatenate([np.zeros(n_fill, bool), np.ones(n_sw, bool)]),
        # weighted heat gain per byte copied: a fill gains the page's rate for one copy, a swap gains the
        # difference of the two rates for two copies
        gain=weight * np.concatenate([rate[h_bin[:n_fill]], (rate[h_bin[h_sw]] - rate[c_bin[c_sw]]) / 2]),
        rate=np.concatenate([rate[h_bin[:n_fill]], rate[h_bin[h_sw]] - rate[c_bin[c_sw]]]),   # DRAM accesses added
        waived=np.arange(n_fill + n_sw) >= n_fill + n_swap,      # an idle swap: allowed without the gap
    )
    return down, moves


def _levels(bins: np.ndarray, level: np.ndarray | None) -> np.ndarray:
    """Refs levels of candidates' bins: the bin itself on the seed's linear scale (so the hysteresis keeps
    the seed daemon's meaning), else the level the tracker gives the bin."""
    return bins.astype(np.float64) if level is None else level[bins]


def _differ(hot: np.ndarray, cold: np.ndarray, window_scans: float, params: PolicyParams,
            gap: float | None = None) -> np.ndarray:
    """Whether a hot slow page is worth swapping for a cold DRAM page: its refs level (0..15) exceeds the
    cold one's by the hysteresis. With the seed's tracker (window unknown) that is the seed daemon's gap,
    `hysteresis_bins` levels (`gap` for a tenant whose working set is moving). With `hysteresis_z` > 0 and a
    tracker that says how many scans its heat averages over, the gap is a test instead: the levels are shares of n scans, so their difference has standard error
    15 sqrt((p_h (1 - p_h) + p_c (1 - p_c)) / n), and a swap needs `hysteresis_z` of them (and at least
    MIN_GAP_LEVELS) -- a long average separates two tail pages a fraction of a level apart, a short one
    needs the seed's gap or more for pages near half their scans."""
    if window_scans <= 0 or params.hysteresis_z <= 0:
        return (hot - cold) >= (params.hysteresis_bins if gap is None else gap)
    ph, pc = hot / MAX_LEVEL, cold / MAX_LEVEL
    se = MAX_LEVEL * np.sqrt((ph * (1 - ph) + pc * (1 - pc)) / window_scans)
    return (hot - cold) >= np.maximum(params.hysteresis_z * se, MIN_GAP_LEVELS)


def slower_fast_nodes(view: HostView) -> np.ndarray:
    """Per DRAM node (in `Topology.fast_ids` order): whether its loaded latency exceeds that of the slow node
    it demotes to, so that promoting into it would slow the pages promoted. False where either is unknown."""
    topo = view.topology
    lat = {n.id: n.latency_ns for n in view.nodes}
    out = np.zeros(topo.fast_ids.size, dtype=bool)
    for j, f in enumerate(topo.fast_ids.tolist()):
        slow = int(topo.demote_to[f])
        out[j] = slow >= 0 and lat[f] > 0 and lat.get(slow, 0) > 0 and lat[f] > lat[slow]
    return out


def resident(t: TenantHeat) -> bool:
    """Whether the tenant's footprint is resident in full (known, and none of it left to fault in)."""
    pages = sum(int(np.asarray(h, dtype=np.int64).sum()) for h in t.hist.values())
    return bool(t.footprint_bytes) and pages * t.page_size >= t.footprint_bytes


def loaded_nodes(view: HostView) -> bool:
    """Whether any node's accesses paid more than BALANCED over its idle latency last period (where both are
    known): bandwidth load, under which the loaded-latency search places the host."""
    return any(n.idle_latency_ns > 0 and n.latency_ns > (1 + BALANCED) * n.idle_latency_ns for n in view.nodes)


def idle_dram_share(t: TenantHeat, view: HostView) -> float:
    """The share of the tenant's DRAM pages at heat bin 0 (0.0 with none in DRAM)."""
    dram = [np.asarray(h, dtype=np.int64) for nid, h in t.hist.items() if view.topology.fast_pos[nid] >= 0]
    total = sum(int(h.sum()) for h in dram)
    return sum(int(h[0]) for h in dram) / total if total else 0.0


class IdlePool:
    """Per tenant, whether its DRAM holds a steady pool of idle pages that stay cold (IDLE_POOL's block): in
    each of the last `rounds` rounds (`quick_rounds` for the tenants `update` is told are quick), at least
    IDLE_POOL of its DRAM pages at heat 0, and of the DRAM pages its reports listed at heat 0 (the cold_fast
    list) at most HOT_WAKE_MAX among its hottest DRAM pages (the hot_fast list at HOT_WAKE_BIN or hotter) the
    round after. Soft state: one round's listed idle addresses and `rounds` counts per tenant; a tenant that
    leaves is forgotten, one that arrives is watched that many rounds before it passes."""

    def __init__(self, rounds: int = POOL_ROUNDS, quick_rounds: int = QUICK_POOL_ROUNDS) -> None:
        if not 1 <= quick_rounds <= rounds:
            raise ValueError("IdlePool: rounds and quick_rounds must be >= 1, quick_rounds at most rounds")
        self.rounds, self.quick_rounds = rounds, quick_rounds
        self.listed: dict[str, np.ndarray] = {}      # tenant -> last round's listed idle DRAM addresses
        self.seen: dict[str, deque] = {}             # tenant -> (idle share, listed, woken hot) per round

    def update(self, view: HostView, quick: frozenset[str] = frozenset()) -> frozenset[str]:
        """A new round's view; returns the tenants whose idle pool is steady and cold (over `quick_rounds` rounds
        for the tenants in `quick`)."""
        names = {t.name for t in view.tenants}
        for n in [n for n in self.listed if n not in names]:
            del self.listed[n]
            del self.seen[n]
        out = []
        for t in view.tenants:
            cold = np.asarray(t.cold_fast.addresses, dtype=np.uint64)[heat_bins(t.cold_fast.heat) == 0]
            hot = np.asarray(t.hot_fast.addresses, dtype=np.uint64)[heat_bins(t.hot_fast.heat) >= HOT_WAKE_BIN]
            before = self.listed.get(t.name, cold[:0])
            seen = self.seen.setdefault(t.name, deque(maxlen=self.rounds))
            seen.append((idle_dram_share(t, view), before.size, int(member(before, hot).sum())))
            self.listed[t.name] = cold
            if (len(seen) >= (self.quick_rounds if t.name in quick else self.rounds)
                    and min(x for x, _, _ in seen) >= IDLE_POOL
                    and sum(w for _, _, w in seen) <= HOT_WAKE_MAX * sum(n for _, n, _ in seen)):
                out.append(t.name)
        return frozenset(out)


# Loaded-latency balancing: latencies within BALANCED of each other hold the placement; a bound found wrong
# (the load changed) is moved REOPEN of the access share away rather than reset, so noise cannot undo the search.
BALANCED = 0.05
REOPEN = 0.05


def _estimated_accesses(view: HostView) -> tuple[float, float]:
    """The host's estimated accesses (pages x `bin_rates`, unweighted): on DRAM, and in all."""
    rate = bin_rates(view)
    fast = total = 0.0
    for t in view.tenants:
        for nid, h in t.hist.items():
            x = float(np.asarray(h, dtype=np.float64) @ rate)
            total += x
            fast += x if view.topology.fast_pos[nid] >= 0 else 0.0
    return fast, total


def dram_access_share(view: HostView) -> float:
    """The share of the host's estimated accesses its DRAM pages take (1.0 with no heat)."""
    fast, total = _estimated_accesses(view)
    return fast / total if total > 0 else 1.0


def _balance_demotions(view: HostView, excess: float, rate: np.ndarray, weight: np.ndarray) -> dict:
    """DRAM's hottest pages (the tenants' hot_fast lists, hottest first) carrying `excess` estimated
    accesses, to be demoted to their nodes' slow nodes: what brings DRAM's share down to the cap."""
    topo = view.topology
    parts = []
    for v, t in enumerate(view.tenants):
        a, b, n = sorted_candidates(t.hot_fast, hottest=True)
        parts.append(dict(tenant=np.full(a.size, v), addr=a, node=n, r=rate[b],
                          loss=float(weight[v]) * rate[b]))
    c = _concat(parts, {**_DOWN, "r": np.float64})
    order = np.argsort(-c["r"], kind="stable")
    c = {k: x[order] for k, x in c.items()}
    take = (np.cumsum(c["r"]) - c["r"]) < excess
    take &= topo.demote_to[c["node"]] >= 0
    return {k: c[k][take] for k in _DOWN}


def plan_host(view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams = PolicyParams(),
              moving: frozenset[str] = frozenset(), dram_cap: float | None = None,
              idle_swaps: Mapping[str, np.ndarray] | None = None, narrow: frozenset[str] = frozenset(),
              narrow_idle: frozenset[str] = frozenset()) -> Plan:
    """The migration plan for one host this round. `moving`: tenants whose working set is moving (see
    `PagetidePolicy`), swapped with a gap of PHASE_GAP levels instead of the hysteresis. `narrow`: tenants
    that also make narrow swaps (NARROW_GAP_LESS bins less than the hysteresis, DRAM pages with heat only;
    `PagetidePolicy` names those past their first NARROW_AFTER rounds); `narrow_idle`: those of them whose narrow
    swaps also take DRAM pages at heat 0 (`IdlePool`). `idle_swaps`: per tenant, sorted
    addresses of DRAM pages idle long enough to give way to slow pages of IDLE_SWAP_BIN or hotter without the
    hysteresis (`PagetidePolicy` asks thrash.py which). `dram_cap`: the most of the host's
    estimated accesses DRAM should serve (loaded-latency balancing; None: no cap). Raises
    ValueError on an invalid policy (naming the VM), a policy for a tenant not in the view, or params the
    view's pages do not fit."""
    return _plan_host(view, policies, params, moving, dram_cap, idle_swaps or {}, narrow, narrow_idle)[0]


def _plan_host(view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams, moving: frozenset[str],
               dram_cap: float | None,
               idle_swaps: Mapping[str, np.ndarray],
               narrow: frozenset[str] = frozenset(),
               narrow_idle: frozenset[str] = frozenset()) -> tuple[Plan, dict[str, Moved], dict[str, Moved]]:
    """`plan_host`, and per tenant the pages it promotes and demotes: all of them, and those of the swaps that
    only `idle_swaps` allowed (for the thrash guard)."""
    validate_params(params, view)
    pols = resolve_policies(view, policies)
    names = [t.name for t in view.tenants]
    nt = len(view.tenants)
    topo = view.topology
    fast = [n for n in view.nodes if n.fast]
    can_demote = topo.slow_ids.size > 0

    page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
    weight = np.array([p.weight for p in pols], dtype=np.float64)
    bin_pages = np.zeros((nt, HEAT_BINS), dtype=np.int64)
    dram_pages = np.zeros(nt, dtype=np.int64)
    for v, t in enumerate(view.tenants):
        for nid, h in t.hist.items():
            h = np.asarray(h, dtype=np.int64)
            bin_pages[v] += h
            if topo.fast_pos[nid] >= 0:
                dram_pages[v] += int(h.sum())
    bin_bytes = bin_pages * page_size[:, None]
    footprint = bin_bytes.sum(axis=1)
    current = dram_pages * page_size

    # --- step 2: the host's DRAM budget and its split
    reserve = [int(params.reserve * n.capacity_bytes) for n in fast]
    used = sum(n.capacity_bytes - n.free_bytes for n in fast)
    unowned = max(0, used - int(current.sum()))       # kernel, page tables, processes outside the view
    budget = max(0, sum(n.capacity_bytes - n.wmark_high_bytes for n in fast) - sum(reserve) - unowned)
    # [min, max] per tenant in whole pages, clipped to the footprint: DRAM a VM cannot use is not reserved
    hi = [int(f) if p.max_dram_bytes is None else min(int(f), p.max_dram_bytes // ps * ps)
          for p, f, ps in zip(pols, footprint.tolist(), page_size.tolist())]
    lo = [min(-(-p.min_dram_bytes // ps) * ps, h) for p, h, ps in zip(pols, hi, page_size.tolist())]
    # the VMs' rules: pinned to DRAM = all of its footprint guaranteed, pinned to the slow tier = none of it,
    # migration off = exactly what it holds now (it keeps its DRAM; nothing of it moves)
    frozen = [not p.migrate for p in pols]
    for v, p in enumerate(pols):
        if frozen[v]:
            lo[v] = hi[v] = int(current[v])
        elif p.pinned_tier == "dram":
            lo[v] = hi[v] = int(footprint[v])
        elif p.pinned_tier == "slow":
            lo[v] = hi[v] = 0
    rate = bin_rates(view)
    level = np.asarray(view.bin_level, dtype=np.float64) if view.bin_level else None
    util = _split_dram(bin_bytes, page_size, weight, lo, hi, budget, rate)
    target = _retain_slack(util, current, hi, page_size, budget)

    # --- step 3: per tenant, the moves that would bring it to its target
    parts = [_tenant_moves(v, t, float(weight[v]), 0 if frozen[v] else target[v] - int(current[v]),
                           can_demote and not frozen[v] and pols[v].pinned_tier != "dram", params,
                           can_promote=not frozen[v] and pols[v].pinned_tier != "slow",
                           min_bin=0 if pols[v].pinned_tier == "dram" else None, rate=rate, level=level,
                           swap_gap=PHASE_GAP if t.name in moving else None, idle_pages=idle_swaps.get(t.name),
                           narrow=t.name in narrow, narrow_idle=t.name in narrow_idle)
             for v, t in enumerate(view.tenants)]
    down = _concat([p[0] for p in parts], _DOWN)
    mv = _concat([p[1] for p in parts], _MOVE)
    # a DRAM node slower than its slow node under load takes no promotions: no swaps into it, no fill room
    slower = slower_fast_nodes(view)
    if slower.any():
        into_slower = mv["swap"] & slower[np.maximum(topo.fast_pos[np.maximum(mv["cold_node"], 0)], 0)]
        mv = {k: a[~into_slower] for k, a in mv.items()}
    promote_rate = np.inf           # estimated accesses promotions may add to DRAM (the cap's room)
    if dram_cap is not None:
        fast_acc, total = _estimated_accesses(view)
        excess = fast_acc - dram_cap * total
        promote_rate = max(0.0, -excess)
        if excess > 0:
            bal = _balance_demotions(view, excess, rate, weight)
            dup = np.zeros(bal["addr"].size, dtype=bool)
            for v in np.unique(bal["tenant"]):
                sel = bal["tenant"] == v
                dup[sel] = member(bal["addr"][sel], down["addr"][down["tenant"] == v])
            down = {k: np.concatenate([down[k], bal[k][~dup].astype(down[k].dtype)]) for k in _DOWN}

    # --- step 4a: demotions down to target come first -- they make the room -- least weighted loss first
    # (stable sorts: ties keep tenant order, then the candidate order, so the plan is deterministic)
    order = np.argsort(down["loss"], kind="stable")
    down = {k: a[order] for k, a in down.items()}
    d_size = page_size[down["tenant"]]
    take = np.cumsum(d_size) <= params.max_bytes_per_round
    down, d_size = {k: a[take] for k, a in down.items()}, d_size[take]
    budget_left = params.max_bytes_per_round - int(d_size.sum())
    # DRAM room above watermark + reserve, per DRAM node, plus what this plan's demotions free there
    room = np.array([n.free_bytes - n.wmark_high_bytes - r for n, r in zip(fast, reserve)], dtype=np.int64)
    np.add.at(room, topo.fast_pos[down["node"]], d_size)
    room[slower] = np.minimum(room[slower], 0)

    # --- step 4b: fills and swaps by gain per byte copied; fills only into room, swaps bring their own
    order = np.argsort(-mv["gain"], kind="stable")
    mv = {k: a[order] for k, a in mv.items()}
    if np.isfinite(promote_rate):
        within = (np.cumsum(mv["rate"]) - mv["rate"]) < promote_rate
        mv = {k: a[within] for k, a in mv.items()}
    size = page_size[mv["tenant"]]
    fill = ~mv["swap"]
    fits = ~fill | (np.cumsum(np.where(fill, size, 0)) <= int(np.maximum(room, 0).sum()))
    accepted = np.flatnonzero(fits)
    accepted = accepted[np.cumsum(np.where(fill, size, 2 * size)[accepted]) <= budget_left]
    mv, size = {k: a[accepted] for k, a in mv.items()}, size[accepted]
    swap = mv["swap"]
    np.add.at(room, topo.fast_pos[mv["cold_node"][swap]], size[swap])
    # what does not fit on any node (page-size fragmentation) waits for the next round
    p_target = place(topo.promote_to[mv["hot_node"]], size, topo.fast_ids, room)
    placed = p_target >= 0

    # --- batches in execution order: demotions, promotions, marks
    dem_tenant = np.concatenate([down["tenant"], mv["tenant"][swap]])
    dem_addr = np.concatenate([down["addr"], mv["cold_addr"][swap]])
    dem_target = topo.demote_to[np.concatenate([down["node"], mv["cold_node"][swap]])]
    batches = cut_batches(names, dem_tenant, dem_addr, dem_target, page_size[dem_tenant], "demote",
                       params.batch_bytes)
    batches += cut_batches(names, mv["tenant"][placed], mv["hot_addr"][placed], p_target[placed], size[placed],
                        "promote", params.batch_bytes)

    if params.sw_young:
        # Mark the DRAM pages inside each tenant's utility share (bins at least as hot as the coldest bin
        # its share reaches), so reclaim between rounds demotes the pages pagetide would demote.
        marks = []
        for v, t in enumerate(view.tenants):
            if frozen[v] or pols[v].pinned_tier == "slow":
                continue
            thr = max(threshold_bin(bin_bytes[v], util[v]), params.min_promote_bin)
            f_addr, f_bin, f_node = sorted_candidates(t.hot_fast, hottest=True)
            keep = f_bin >= thr
            demoted_here = dem_addr[dem_tenant == v]
            if demoted_here.size:
                keep &= ~member(f_addr, demoted_here)
            marks.append((np.full(int(keep.sum()), v), f_addr[keep], f_node[keep], f_bin[keep]))
        m_tenant, m_addr, m_node, m_bin = (np.concatenate(a) for a in zip(*marks)) if marks else ((),) * 4
        if len(m_addr):
            top = np.argsort(-m_bin.astype(np.int64), kind="stable")[:params.max_mark_pages]
            top = np.sort(top)     # keep each tenant's pages together, in the agent's order
            batches += cut_batches(names, m_tenant[top], m_addr[top], m_node[top], page_size[m_tenant[top]],
                                "mark", params.batch_bytes, sw_young=True)

    waived = swap & mv["waived"]
    pro_tenant, pro_addr = mv["tenant"][placed], mv["hot_addr"][placed]
    moved = {n: (pro_addr[pro_tenant == v], dem_addr[dem_tenant == v]) for v, n in enumerate(names)}
    idle_moved = {names[v]: (mv["hot_addr"][waived & placed & (mv["tenant"] == v)],
                             mv["cold_addr"][waived & (mv["tenant"] == v)])
                  for v in np.unique(mv["tenant"][waived]).tolist()}
    return Plan(host_id=view.host_id,
                dram_target_bytes={name: int(target[v]) for v, name in enumerate(names)},
                batches=tuple(batches),
                promote_bytes=int(size[placed].sum()),
                demote_bytes=int(page_size[dem_tenant].sum())), moved, idle_moved


# ------------------------------------------------------------------------------------- as a policy object

class PagetidePolicy(PlacementPolicy):
    """pagetide's own policy: `plan_host`. Its options override the controller's `PolicyParams` of the same
    name for this host (the migration budget and batch size stay the controller's), and `mark_every` spaces
    the MPOL_MF_SW_YOUNG marking rounds: PG_referenced stays set until reclaim scans the page, so re-marking
    the same hot pages every period only costs page walks. State: the round count, each tenant's last
    `dram_heat_share` (a drop of PHASE_DROP marks its working set as moving for the round) and its rounds
    since it was first seen (narrow swaps wait NARROW_AFTER of them unless it was resident in full then), its
    idle pool's last rounds (`IdlePool`), and the idle swaps' address histories (thrash.py: which idle pages
    stay idle, which idle swaps were moved back). The reserve is dropped on a host where every VM is resident
    in full, no node is loaded and the loaded-latency search is off (`resident_reserve` keeps it)."""
    name = "pagetide"
    OPTIONS = {
        "reserve": Option(ratio(), None, "DRAM kept free above the high watermark, a fraction of each DRAM node "
                                         "(default: the controller's)"),
        "hysteresis_bins": Option(integer(1), None, "swap only pages at least this many heat bins apart "
                                                    "(default: the controller's)"),
        "hysteresis_z": Option(number(0.0), None, "with a tracker that reports its window: swap only pages whose "
                                                  "levels differ by this many standard errors "
                                                  "(default: the controller's)"),
        "min_promote_bin": Option(integer(1, HEAT_BINS - 1), None, "never promote pages colder than this heat "
                                                                   "bin (default: the controller's)"),
        "sw_young": Option(flag(), None, "mark hot DRAM pages with MPOL_MF_SW_YOUNG (default: the controller's)"),
        "max_mark_pages": Option(integer(0), None, "SW_YOUNG marks per host per marking round "
                                                   "(default: the controller's)"),
        "mark_every": Option(integer(1), 4, "mark on every n-th round"),
        "idle_swaps": Option(flag(), True, "swap idle DRAM pages (heat 0) for slow pages of heat bin "
                                           f"{IDLE_SWAP_BIN} or hotter without the hysteresis, in VMs whose idle "
                                           "pages stay idle (thrash.py)"),
        "idle_rounds": Option(integer(0), 2, "rounds a DRAM page must stay at heat 0 before an idle swap takes it"),
        "thrash_guard": Option(flag(), True, "stop a VM's idle swaps for a while when the pages they moved are "
                                             "moved back (thrash.py)"),
        "narrow_swaps": Option(flag(), True, f"also swap pages {NARROW_GAP_LESS} bin less apart than the hysteresis "
                                             "where the DRAM page has heat, after a VM's first "
                                             f"{NARROW_AFTER} rounds (from its first where it was resident in full)"),
        "narrow_idle": Option(flag(), True, "narrow swaps also take DRAM pages at heat 0 in VMs whose DRAM holds a "
                                            "steady pool of idle pages that do not wake hot"),
        "resident_reserve": Option(flag(), False, "keep the reserve on a host where every VM is resident in full "
                                                  "and no node is loaded (default: none there)"),
    }
    _PARAMS = ("reserve", "hysteresis_bins", "hysteresis_z", "min_promote_bin", "sw_young", "max_mark_pages")

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.overrides = {k: self.options[k] for k in self._PARAMS if self.options[k] is not None}
        if self.overrides:
            # validated now, so a bad option fails at start-up rather than in the first round
            try:
                validate_params(replace(PolicyParams(), **self.overrides), HostView("", (), ()))
            except ValueError as e:
                raise self.invalid(str(e)) from None
        self.mark_every = self.options["mark_every"]
        self.rounds = 0
        self.dram_share: dict[str, float] = {}     # per tenant, last round's `dram_heat_share`
        self.tenant_rounds: dict[str, int] = {}    # per tenant, rounds planned since it was first seen
        self.born_resident: dict[str, bool] = {}   # per tenant, whether it was resident in full when first seen
        self.idle_pool = IdlePool()
        self.cap_lo, self.cap_hi = 0.0, 1.0        # the loaded-latency search's bounds on DRAM's access share
        self.guard = ThrashGuard()
        self.idle_age = IdleAge(self.options["idle_rounds"])

    def _overridden(self, params: PolicyParams) -> PolicyParams:
        return replace(params, **self.overrides) if self.overrides else params

    def _params(self, params: PolicyParams) -> PolicyParams:
        p = self._overridden(params)
        return p if self.rounds % self.mark_every == 0 else replace(p, sw_young=False)

    def place(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        share = dram_heat_share(view)
        moving = frozenset(n for n, s in share.items() if self.dram_share.get(n, s) - s >= PHASE_DROP)
        idle = self.idle_age.update({t.name: np.asarray(t.cold_fast.addresses)[np.asarray(t.cold_fast.heat) == 0]
                                     for t in view.tenants})
        if not self.options["idle_swaps"]:
            idle = {}
        elif self.options["thrash_guard"]:
            idle = {n: a for n, a in idle.items() if not self.guard.throttled(n)}
        self.tenant_rounds = {t.name: self.tenant_rounds.get(t.name, 0) for t in view.tenants}
        full = {t.name: resident(t) for t in view.tenants}
        self.born_resident = {n: self.born_resident.get(n, r) for n, r in full.items()}
        narrow = frozenset(n for n, r in self.tenant_rounds.items()
                           if self.options["narrow_swaps"] and (r >= NARROW_AFTER or self.born_resident[n]))
        cap = self._dram_cap(view)
        by_heat = cap is None and self.cap_hi >= 1.0 and not loaded_nodes(view)    # no loaded-latency search
        narrow_idle = frozenset()
        if self.options["narrow_idle"]:
            pool = self.idle_pool.update(view, frozenset(n for n, r in self.born_resident.items() if r))
            if by_heat:
                narrow_idle = frozenset(n for n in narrow if n in pool and n not in idle)
        p = self._params(params)
        if not self.options["resident_reserve"] and by_heat and all(full.values()):
            p = replace(p, reserve=0.0)      # nothing left to fault in: nothing to keep DRAM free for
        plan, moved, idle_moved = _plan_host(view, policies, p, moving, cap, idle, narrow, narrow_idle)
        self.guard.end_round(moved, idle_moved)
        self.idle_age.note_demoted({n: d for n, (_, d) in moved.items()})
        self.dram_share = share
        self.tenant_rounds = {n: r + 1 for n, r in self.tenant_rounds.items()}
        self.rounds += 1
        return plan

    def _dram_cap(self, view: HostView) -> float | None:
        """This round's cap on DRAM's share of the estimated accesses, bisected between the shares at which
        DRAM was last seen the faster (lo) and the slower (hi) tier under load; None while DRAM has not been
        the slower (or the upper bound has reopened to 1) and while latencies are unknown."""
        topo = view.topology
        lat = {n.id: n.latency_ns for n in view.nodes}
        pairs = [(lat[f], lat.get(int(topo.demote_to[f]), 0.0)) for f in topo.fast_ids.tolist()
                 if topo.demote_to[f] >= 0]
        if not pairs or any(f <= 0 or s <= 0 for f, s in pairs):
            self.cap_lo, self.cap_hi = 0.0, 1.0
            return None
        p = dram_access_share(view)
        if all(abs(f - s) <= BALANCED * s for f, s in pairs):
            return p if self.cap_hi < 1.0 else None    # balanced: hold the placement the search found
        if slower_fast_nodes(view).any():
            self.cap_hi = min(self.cap_hi, p)
            if self.cap_lo >= self.cap_hi:         # the load grew since the lower bound was found
                self.cap_lo = max(0.0, self.cap_hi - REOPEN)
        else:
            self.cap_lo = max(self.cap_lo, p)
            if self.cap_hi <= self.cap_lo:         # the load fell since the upper bound was found
                self.cap_hi = min(1.0, self.cap_lo + REOPEN)
        # no cap until DRAM has been seen the slower (a middle tier above a slower one is never capped idle)
        return (self.cap_lo + self.cap_hi) / 2 if self.cap_hi < 1.0 else None

    def mark_candidates(self, tenants: int, params: PolicyParams) -> int:
        """hot_fast pages to ask each tenant for: an equal share of a marking round's `max_mark_pages` rather
        than full candidate lists. The same on every round, marking or not, so the report the agent built
        ahead for the last request is the one asked for (a few KiB per tenant more on other rounds)."""
        p = self._overridden(params)
        return -(-p.max_mark_pages // max(1, tenants)) if p.sw_young else 0

    def report_request(self, n_tenants: int, params: PolicyParams, max_candidates: int) -> ReportRequest:
        """The default report, with the hot_fast list cut to `mark_candidates`."""
        return replace(super().report_request(n_tenants, params, max_candidates),
                       max_hot_fast=self.mark_candidates(n_tenants, params))
