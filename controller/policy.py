"""pagetide's placement policy: one host's heat statistics and the users' VM policies in, a migration plan
out (DESIGN.md section 7). A pure function -- no Ray, no gRPC, no clock, no I/O -- so the controller's Ray
actor only converts agent reports into a `HostView`, calls `plan_host` and ships the batches back.

Each round is level-triggered (desired state vs actual state, as a Kubernetes controller does): a plan that
was cut short by the migration budget, a lost batch or pages that no longer fit are healed by the next
round, never by special cases here. A host whose placement already matches its targets gets a plan that
moves zero bytes, so the stable state is a fixed point.

The round, in four steps:

1. Utility curves. A tenant's pages sorted by heat give U_v(k), the accesses served from DRAM if its k
   hottest bytes sit there. The access rate of a heat bin is its centre on the scanner's 0..15 level scale
   (`BIN_RATE`); bin 0 counts as never accessed. Sorted by heat, every curve is concave, so greedy by
   marginal utility is optimal (utility-based partitioning, Qureshi & Patt, MICRO'06).
2. DRAM split. The host's DRAM budget (fast capacity minus the high watermark, minus a reserve, minus DRAM
   held by anyone not in the view) goes first to every VM's `min_dram_bytes`, then bin by bin to the highest
   weighted marginal utility, capped at `max_dram_bytes`. DRAM whose marginal utility is zero is left
   unassigned: cold pages already there may keep it (moving them would be churn), none are promoted into it.
3. Per tenant: fill up to the target with the hottest slow pages, demote the coldest DRAM pages down to it,
   and swap hot slow pages for cold DRAM pages while they differ by at least `hysteresis_bins` (the seed
   daemon's anti-thrash gap). Promotions never exceed the room above watermark + reserve that free memory and
   this plan's demotions provide.
4. Budget. Demotions that bring tenants down to their targets come first (they make the room), then fills
   and swaps by weighted heat gain per byte moved, within `max_bytes_per_round`. Batches of at most
   `batch_bytes` and one target node each, in execution order: demotions, promotions, then MPOL_MF_SW_YOUNG
   marks on hot pages already in DRAM so that kernel reclaim between rounds spares them (the 2018 RFC's
   flag; newly promoted pages are not marked: they must prove hotness on the LRU).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HEAT_BINS", "BIN_RATE", "NodeView", "Candidates", "TenantHeat", "HostView", "VmPolicy", "PolicyParams",
    "MoveBatch", "Plan", "plan_host", "heat_bins",
]

# heat is fixed point: heat // 16 = average refs level per period on a 0..15 scale; bins are heat >> 4
HEAT_BINS = 16
HEAT_SHIFT = 4

# Estimated access rate of a page in each heat bin, in scanner levels (15 = accessed in every scan): the bin
# centre. Bin 0 holds pages whose decayed heat is below one level -- a page seen even once in the last
# period lands in bin >= 1 -- so it is taken as never accessed: the DRAM split stops there instead of filling
# DRAM with idle memory. The curve only ranks bytes, so any increasing estimate with rate(0) = 0 would do.
BIN_RATE = np.array([0.0] + [b + 0.5 for b in range(1, HEAT_BINS)])
BIN_RATE.setflags(write=False)

# Equal weighted slopes compare equal after rounding away float noise (w=2, rate 2.5 vs w=1, rate 5.0 ...)
_SLOPE_DIGITS = 9


# ---------------------------------------------------------------------------------------------- inputs

@dataclass(frozen=True)
class NodeView:
    """One NUMA node of a host."""
    id: int
    fast: bool                   # DRAM (fast) or slow tier (PMEM/CXL)
    capacity_bytes: int
    free_bytes: int
    wmark_high_bytes: int        # kswapd reclaims until this much is free (plus TPP's demote margin)
    peer_node: int               # DRAM node -> its slow peer, slow node -> its DRAM peer (-1 none)


@dataclass(frozen=True)
class Candidates:
    """A bounded list of one tenant's pages, as parallel numpy arrays."""
    addresses: np.ndarray        # uint64 virtual addresses (page aligned)
    heat: np.ndarray             # uint8 heat (fixed point, see HEAT_BINS)
    node: np.ndarray             # int current node

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint8), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(np.asarray(self.addresses).size)


@dataclass(frozen=True)
class TenantHeat:
    """One VM or task on one host, for the last period."""
    name: str
    page_size: int                       # 4096 or 2 MiB
    hist: dict[int, np.ndarray]          # node id -> resident pages per heat bin (len HEAT_BINS, int64)
    hot_slow: Candidates                 # hottest pages on slow nodes, hottest first (bounded)
    cold_fast: Candidates                # coldest pages on DRAM nodes, coldest first
    hot_fast: Candidates                 # hottest pages on DRAM nodes, hottest first (SW_YOUNG marks)


@dataclass(frozen=True)
class HostView:
    host_id: str
    nodes: tuple[NodeView, ...]
    tenants: tuple[TenantHeat, ...]


@dataclass(frozen=True)
class VmPolicy:
    """User-set per VM; a tenant without one gets the defaults."""
    min_dram_bytes: int = 0
    max_dram_bytes: int | None = None    # None: unlimited
    weight: float = 1.0                  # multiplies the VM's marginal utility in the DRAM split


@dataclass(frozen=True)
class PolicyParams:
    reserve: float = 0.02                 # DRAM kept free above the high watermark (TPP's demote margin, 2%)
    hysteresis_bins: int = 2              # swap only pages >= this many bins apart (the seed's 2-refs gap)
    min_promote_bin: int = 1              # never promote pages colder than this bin
    max_bytes_per_round: int = 256 << 20  # per-host migration budget per round (seed: one_period_migration_size)
    batch_bytes: int = 4 << 20            # pages per move_pages call (the seed daemon's 4 MiB batch)
    sw_young: bool = True                 # emit MPOL_MF_SW_YOUNG mark batches
    max_mark_pages: int = 4096            # SW_YOUNG marks per host per round, hottest first: each mark costs a
                                          # page walk in move_pages, and PG_referenced only needs renewing as
                                          # fast as reclaim clears it


# --------------------------------------------------------------------------------------------- outputs

@dataclass(frozen=True)
class MoveBatch:
    tenant: str
    target_node: int
    addresses: np.ndarray        # uint64, at most batch_bytes of pages
    sw_young: bool               # MPOL_MF_SW_YOUNG marking batch (pages already on target_node)
    kind: str                    # "demote" | "promote" | "mark"


@dataclass(frozen=True)
class Plan:
    host_id: str
    dram_target_bytes: dict[str, int]    # per tenant: DRAM share decided this round
    batches: tuple[MoveBatch, ...]       # demotions first (make room), then promotions, then SW_YOUNG marks
    promote_bytes: int
    demote_bytes: int


def heat_bins(heat: np.ndarray) -> np.ndarray:
    """Heat bin (0..HEAT_BINS-1) of fixed-point heat values."""
    return np.minimum(np.asarray(heat).astype(np.int64) >> HEAT_SHIFT, HEAT_BINS - 1)


# ------------------------------------------------------------------------------------------ validation

def _validate_params(params: PolicyParams, view: HostView) -> None:
    if not 0.0 <= params.reserve < 1.0:
        raise ValueError(f"reserve must be a fraction in [0, 1), got {params.reserve!r}")
    if params.hysteresis_bins < 1:
        # a gap of 0 would swap pages of equal heat back and forth every round
        raise ValueError(f"hysteresis_bins must be >= 1, got {params.hysteresis_bins!r}")
    if not 1 <= params.min_promote_bin < HEAT_BINS:
        raise ValueError(f"min_promote_bin must be within 1..{HEAT_BINS - 1}, got {params.min_promote_bin!r}")
    if params.max_bytes_per_round < 0:
        raise ValueError(f"max_bytes_per_round must not be negative, got {params.max_bytes_per_round!r}")
    for t in view.tenants:
        if params.batch_bytes < t.page_size:
            raise ValueError(f"batch_bytes {params.batch_bytes} cannot hold one {t.page_size}-byte page "
                             f"of tenant {t.name!r}")


def _validate_view(view: HostView) -> None:
    ids = [n.id for n in view.nodes]
    if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
        raise ValueError(f"host {view.host_id}: node ids must be distinct and non-negative, got {ids}")
    # node id -> tier lookup tables (cheaper than np.isin on every candidate list)
    is_fast = np.zeros(max(ids, default=-1) + 2, dtype=bool)
    is_slow = np.zeros_like(is_fast)
    for n in view.nodes:
        (is_fast if n.fast else is_slow)[n.id] = True
    names = [t.name for t in view.tenants]
    if len(set(names)) != len(names):
        raise ValueError(f"host {view.host_id}: duplicate tenant names {names}")
    for t in view.tenants:
        if t.page_size <= 0:
            raise ValueError(f"tenant {t.name!r}: page_size must be positive, got {t.page_size}")
        for nid, h in t.hist.items():
            if nid not in ids:
                raise ValueError(f"tenant {t.name!r}: histogram for unknown node {nid}")
            h = np.asarray(h)
            if h.shape != (HEAT_BINS,) or (h < 0).any():
                raise ValueError(f"tenant {t.name!r}: node {nid} histogram must be {HEAT_BINS} "
                                 f"non-negative page counts, got shape {h.shape}")
        for field, allowed in (("hot_slow", is_slow), ("cold_fast", is_fast), ("hot_fast", is_fast)):
            c: Candidates = getattr(t, field)
            n = np.asarray(c.addresses).size
            if np.asarray(c.heat).size != n or np.asarray(c.node).size != n:
                raise ValueError(f"tenant {t.name!r}: {field} arrays differ in length")
            node = np.asarray(c.node)
            if n and not allowed[np.clip(node, -1, allowed.size - 1)].all():
                tier = "slow" if field == "hot_slow" else "fast"
                raise ValueError(f"tenant {t.name!r}: {field} lists pages that are not on a {tier} node")


def _resolve_policies(view: HostView, policies: Mapping[str, VmPolicy]) -> list[VmPolicy]:
    """One policy per tenant, in view order. A policy naming a tenant the host does not run is an error, not
    ignored: the controller validates policies against its inventory before calling, so reaching here means
    the controller's view and the user's policy disagree and the user would silently lose a guarantee."""
    names = {t.name for t in view.tenants}
    for name, p in policies.items():
        if name not in names:
            raise ValueError(f"policy for VM {name!r}: no such tenant on host {view.host_id}")
        if (isinstance(p.weight, bool) or not isinstance(p.weight, numbers.Real) or not math.isfinite(p.weight)
                or p.weight <= 0):
            raise ValueError(f"policy for VM {name!r}: weight must be a positive finite number, got {p.weight!r}")
        if p.min_dram_bytes < 0:
            raise ValueError(f"policy for VM {name!r}: min_dram_bytes must not be negative, "
                             f"got {p.min_dram_bytes}")
        if p.max_dram_bytes is not None and p.min_dram_bytes > p.max_dram_bytes:
            raise ValueError(f"policy for VM {name!r}: min_dram_bytes {p.min_dram_bytes} exceeds "
                             f"max_dram_bytes {p.max_dram_bytes}")
    return [policies.get(t.name, VmPolicy()) for t in view.tenants]


# ------------------------------------------------------------------------------------------- DRAM split

def _split_dram(bin_bytes: np.ndarray, page_size: np.ndarray, weight: np.ndarray, lo: list[int],
                hi: list[int], budget: int) -> list[int]:
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
                slope = round(float(weight[v]) * float(BIN_RATE[b]), _SLOPE_DIGITS)
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


def _threshold_bin(bin_bytes: np.ndarray, target: int) -> int:
    """The coldest heat bin with bytes inside a tenant's hottest `target` bytes (HEAT_BINS if none)."""
    above = 0
    coldest = HEAT_BINS
    for b in range(HEAT_BINS - 1, -1, -1):
        if above >= target:
            break
        if bin_bytes[b] > 0:
            coldest = b
        above += int(bin_bytes[b])
    return coldest


# ------------------------------------------------------------------------------------------ placement

def _place(pref: np.ndarray, size: np.ndarray, fast_ids: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Target DRAM node per promotion (in priority order), -1 where nothing fits. A page goes to its preferred
    node (the DRAM peer of its slow node) while that has room, else to the DRAM node with the most room.
    `room` is updated in place."""
    target = np.full(pref.size, -1, dtype=np.int64)
    for j, d in enumerate(fast_ids):
        idx = np.flatnonzero(pref == d)
        if idx.size:
            fit = np.cumsum(size[idx]) <= room[j]
            target[idx[fit]] = d
            room[j] -= int(size[idx[fit]].sum())
    left = np.flatnonzero(target < 0)
    for j in np.argsort(-room, kind="stable"):
        if not left.size:
            break
        fit = np.cumsum(size[left]) <= room[j]
        target[left[fit]] = fast_ids[j]
        room[j] -= int(size[left[fit]].sum())
        left = left[~fit]
    return target


def _batches(names: list[str], tenant: np.ndarray, addresses: np.ndarray, target: np.ndarray,
             page_size: np.ndarray, kind: str, batch_bytes: int, sw_young: bool = False) -> list[MoveBatch]:
    """Group pages by (tenant, target node) in order of first appearance -- keeping the caller's priority
    order -- and cut each group into move_pages calls of at most batch_bytes."""
    out: list[MoveBatch] = []
    if not addresses.size:
        return out
    key = tenant.astype(np.int64) * (int(target.max()) + 2) + (target.astype(np.int64) + 1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    for g in np.argsort(first, kind="stable"):
        idx = np.flatnonzero(inverse.reshape(-1) == g)
        v, node = int(tenant[idx[0]]), int(target[idx[0]])
        per = max(1, batch_bytes // int(page_size[idx[0]]))
        for s in range(0, idx.size, per):
            out.append(MoveBatch(tenant=names[v], target_node=node,
                                 addresses=addresses[idx[s:s + per]].astype(np.uint64),
                                 sw_young=sw_young, kind=kind))
    return out


def _sorted(c: Candidates, hottest: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, bins, nodes) hottest or coldest first. The agent already orders them; sorting again
    (stably) makes the plan independent of that promise."""
    heat = np.asarray(c.heat).astype(np.int64)
    order = np.argsort(-heat if hottest else heat, kind="stable")
    return (np.asarray(c.addresses).astype(np.uint64)[order], heat_bins(heat[order]),
            np.asarray(c.node).astype(np.int64)[order])


# ------------------------------------------------------------------------------------------------ plan

@dataclass(frozen=True)
class _Topology:
    """Node tables indexed by node id (NUMA ids are small), so page arrays map to nodes without loops."""
    fast_ids: np.ndarray         # DRAM node ids, in view order
    fast_pos: np.ndarray         # node id -> position in fast_ids, -1 for slow nodes
    demote_to: np.ndarray        # DRAM node id -> slow node its pages are demoted to (-1 none)
    promote_to: np.ndarray       # slow node id -> preferred DRAM node for its pages (-1 none)

    @classmethod
    def of(cls, nodes: tuple[NodeView, ...]) -> _Topology:
        size = max((n.id for n in nodes), default=-1) + 1
        fast = [n for n in nodes if n.fast]
        slow = [n for n in nodes if not n.fast]
        is_fast = {n.id: n.fast for n in nodes}
        fast_pos = np.full(size, -1, dtype=np.int64)
        demote_to = np.full(size, -1, dtype=np.int64)
        promote_to = np.full(size, -1, dtype=np.int64)
        for j, n in enumerate(fast):
            fast_pos[n.id] = j
            # the RFC's peer_node, else the first slow node
            demote_to[n.id] = n.peer_node if is_fast.get(n.peer_node) is False else (slow[0].id if slow else -1)
        for n in slow:
            # the DRAM node paired with this slow node, from either side of the pairing
            paired = [f.id for f in fast if f.peer_node == n.id]
            promote_to[n.id] = n.peer_node if is_fast.get(n.peer_node) else (paired[0] if paired else -1)
        return cls(np.array([n.id for n in fast], dtype=np.int64), fast_pos, demote_to, promote_to)


def _concat(parts: list[dict[str, np.ndarray]], dtypes: dict[str, type]) -> dict[str, np.ndarray]:
    return {k: (np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)).astype(dt)
            for k, dt in dtypes.items()}


_DOWN = {"tenant": np.int64, "addr": np.uint64, "node": np.int64, "loss": np.float64}
_MOVE = {"tenant": np.int64, "hot_addr": np.uint64, "hot_node": np.int64, "cold_addr": np.uint64,
         "cold_node": np.int64, "swap": bool, "gain": np.float64}


def _tenant_moves(v: int, t: TenantHeat, weight: float, gap: int, can_demote: bool,
                  params: PolicyParams) -> tuple[dict, dict]:
    """What would bring tenant v to its target, before the budget and room limits: demotions down to the
    target (`gap` < 0), and fills up to it (`gap` > 0) plus hysteresis-guarded swaps."""
    ps = t.page_size
    h_addr, h_bin, h_node = _sorted(t.hot_slow, hottest=True)
    keep = h_bin >= params.min_promote_bin
    h_addr, h_bin, h_node = h_addr[keep], h_bin[keep], h_node[keep]
    c_addr, c_bin, c_node = _sorted(t.cold_fast, hottest=False)
    if not can_demote:
        c_addr, c_bin, c_node = c_addr[:0], c_bin[:0], c_node[:0]
    n_fill = min(h_addr.size, max(gap, 0) // ps)
    n_down = min(c_addr.size, -(-max(-gap, 0) // ps))
    # pair the hottest remaining slow page with the coldest remaining DRAM page; the bin difference only
    # shrinks along the pairs, so the swaps are the prefix where it is still >= the hysteresis gap
    m = min(h_addr.size - n_fill, c_addr.size - n_down)
    ok = (h_bin[n_fill:n_fill + m] - c_bin[n_down:n_down + m]) >= params.hysteresis_bins
    n_swap = m if ok.all() else int(np.argmin(ok))
    hs, cs = slice(n_fill, n_fill + n_swap), slice(n_down, n_down + n_swap)
    down = dict(tenant=np.full(n_down, v), addr=c_addr[:n_down], node=c_node[:n_down],
                loss=weight * BIN_RATE[c_bin[:n_down]])
    moves = dict(
        tenant=np.full(n_fill + n_swap, v),
        hot_addr=np.concatenate([h_addr[:n_fill], h_addr[hs]]),
        hot_node=np.concatenate([h_node[:n_fill], h_node[hs]]),
        cold_addr=np.concatenate([np.zeros(n_fill, np.uint64), c_addr[cs]]),
        cold_node=np.concatenate([np.full(n_fill, -1), c_node[cs]]),
        swap=np.concatenate([np.zeros(n_fill, bool), np.ones(n_swap, bool)]),
        # weighted heat gain per byte copied: a fill gains the page's rate for one copy, a swap gains the
        # difference of the two rates for two copies
        gain=weight * np.concatenate([BIN_RATE[h_bin[:n_fill]], (BIN_RATE[h_bin[hs]] - BIN_RATE[c_bin[cs]]) / 2]),
    )
    return down, moves


def plan_host(view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams = PolicyParams()) -> Plan:
    """The migration plan for one host this round. Raises ValueError on an invalid policy (naming the VM),
    a policy for a tenant not in the view, or inconsistent inputs."""
    _validate_view(view)
    _validate_params(params, view)
    pols = _resolve_policies(view, policies)
    names = [t.name for t in view.tenants]
    nt = len(view.tenants)
    topo = _Topology.of(view.nodes)
    fast = [n for n in view.nodes if n.fast]
    can_demote = any(not n.fast for n in view.nodes)

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
    util = _split_dram(bin_bytes, page_size, weight, lo, hi, budget)
    target = _retain_slack(util, current, hi, page_size, budget)

    # --- step 3: per tenant, the moves that would bring it to its target
    parts = [_tenant_moves(v, t, float(weight[v]), target[v] - int(current[v]), can_demote, params)
             for v, t in enumerate(view.tenants)]
    down = _concat([p[0] for p in parts], _DOWN)
    mv = _concat([p[1] for p in parts], _MOVE)

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

    # --- step 4b: fills and swaps by gain per byte copied; fills only into room, swaps bring their own
    order = np.argsort(-mv["gain"], kind="stable")
    mv = {k: a[order] for k, a in mv.items()}
    size = page_size[mv["tenant"]]
    fill = ~mv["swap"]
    fits = ~fill | (np.cumsum(np.where(fill, size, 0)) <= int(np.maximum(room, 0).sum()))
    accepted = np.flatnonzero(fits)
    accepted = accepted[np.cumsum(np.where(fill, size, 2 * size)[accepted]) <= budget_left]
    mv, size = {k: a[accepted] for k, a in mv.items()}, size[accepted]
    swap = mv["swap"]
    np.add.at(room, topo.fast_pos[mv["cold_node"][swap]], size[swap])
    # what does not fit on any node (page-size fragmentation) waits for the next round
    p_target = _place(topo.promote_to[mv["hot_node"]], size, topo.fast_ids, room)
    placed = p_target >= 0

    # --- batches in execution order: demotions, promotions, marks
    dem_tenant = np.concatenate([down["tenant"], mv["tenant"][swap]])
    dem_addr = np.concatenate([down["addr"], mv["cold_addr"][swap]])
    dem_target = topo.demote_to[np.concatenate([down["node"], mv["cold_node"][swap]])]
    batches = _batches(names, dem_tenant, dem_addr, dem_target, page_size[dem_tenant], "demote",
                       params.batch_bytes)
    batches += _batches(names, mv["tenant"][placed], mv["hot_addr"][placed], p_target[placed], size[placed],
                        "promote", params.batch_bytes)

    if params.sw_young:
        # Mark the DRAM pages inside each tenant's utility share (bins at least as hot as the coldest bin
        # its share reaches), so reclaim between rounds demotes the pages pagetide would demote.
        marks = []
        for v, t in enumerate(view.tenants):
            thr = max(_threshold_bin(bin_bytes[v], util[v]), params.min_promote_bin)
            f_addr, f_bin, f_node = _sorted(t.hot_fast, hottest=True)
            keep = f_bin >= thr
            demoted_here = dem_addr[dem_tenant == v]
            if demoted_here.size:
                keep &= ~np.isin(f_addr, demoted_here, kind="sort")
            marks.append((np.full(int(keep.sum()), v), f_addr[keep], f_node[keep], f_bin[keep]))
        m_tenant, m_addr, m_node, m_bin = (np.concatenate(a) for a in zip(*marks)) if marks else ((),) * 4
        if len(m_addr):
            top = np.argsort(-m_bin.astype(np.int64), kind="stable")[:params.max_mark_pages]
            top = np.sort(top)     # keep each tenant's pages together, in the agent's order
            batches += _batches(names, m_tenant[top], m_addr[top], m_node[top], page_size[m_tenant[top]],
                                "mark", params.batch_bytes, sw_young=True)

    return Plan(host_id=view.host_id,
                dram_target_bytes={name: int(target[v]) for v, name in enumerate(names)},
                batches=tuple(batches),
                promote_bytes=int(size[placed].sum()),
                demote_bytes=int(page_size[dem_tenant].sum()))
