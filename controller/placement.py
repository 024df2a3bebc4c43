"""The mechanism every placement policy shares (pagetide's own in policy.py and the baselines in
baselines.py): the per-host inputs and outputs of a round, their validation, the node tables, and the
steps that turn chosen pages into move_pages batches. Pure: no Ray, no gRPC, no clock, no I/O."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HEAT_BINS", "HEAT_SHIFT", "NodeView", "Candidates", "TenantHeat", "HostView", "VmPolicy", "PolicyParams",
    "MoveBatch", "Plan", "Topology", "heat_bins", "validate_params", "validate_view", "resolve_policies",
    "threshold_bin", "place", "cut_batches", "sorted_candidates",
]

# heat is fixed point: heat // 16 = average refs level per period on a 0..15 scale; bins are heat >> 4
HEAT_BINS = 16
HEAT_SHIFT = 4


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
    reserve: float = 0.005                # DRAM kept free above the high watermark for new allocations
    hysteresis_bins: int = 3              # swap only pages >= this many bins apart (the seed daemon used 2
                                          # refs; heat from 5 scans is noisier than that: see BENCHMARKS.md)
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

def validate_params(params: PolicyParams, view: HostView) -> None:
    if not 0.0 <= params.reserve < 1.0:
        raise ValueError(f"reserve must be a fraction in [0, 1), got {params.reserve!r}")
    if params.hysteresis_bins < 1:
        # a gap of 0 would swap pages of equal heat back and forth every round
        raise ValueError(f"hysteresis_bins must be >= 1, got {params.hysteresis_bins!r}")
    if not 1 <= params.min_promote_bin < HEAT_BINS:
        raise ValueError(f"min_promote_bin must be within 1..{HEAT_BINS - 1}, got {params.min_promote_bin!r}")
    if params.max_mark_pages < 0:
        raise ValueError(f"max_mark_pages must not be negative, got {params.max_mark_pages!r}")
    if params.max_bytes_per_round < 0:
        raise ValueError(f"max_bytes_per_round must not be negative, got {params.max_bytes_per_round!r}")
    for t in view.tenants:
        if params.batch_bytes < t.page_size:
            raise ValueError(f"batch_bytes {params.batch_bytes} cannot hold one {t.page_size}-byte page "
                             f"of tenant {t.name!r}")


def validate_view(view: HostView) -> None:
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


def resolve_policies(view: HostView, policies: Mapping[str, VmPolicy]) -> list[VmPolicy]:
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


def threshold_bin(bin_bytes: np.ndarray, target: int) -> int:
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

def place(pref: np.ndarray, size: np.ndarray, fast_ids: np.ndarray, room: np.ndarray) -> np.ndarray:
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


def cut_batches(names: list[str], tenant: np.ndarray, addresses: np.ndarray, target: np.ndarray,
             page_size: np.ndarray, kind: str, batch_bytes: int, sw_young: bool = False) -> list[MoveBatch]:
    """Group pages by (tenant, target node) in order of first appearance -- keeping the caller's priority
    order -- and cut each group into move_pages calls of at most batch_bytes."""
    out: list[MoveBatch] = []
    if not addresses.size:
        return out
    key = tenant.astype(np.int64) * (int(target.max()) + 2) + (target.astype(np.int64) + 1)
    order = np.argsort(key, kind="stable")            # each group's pages stay in the caller's order
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    ends = np.r_[starts[1:], order.size]
    for g in np.argsort(order[starts], kind="stable"):  # groups by first appearance
        idx = order[starts[g]:ends[g]]
        v, node = int(tenant[idx[0]]), int(target[idx[0]])
        per = max(1, batch_bytes // int(page_size[idx[0]]))
        for s in range(0, idx.size, per):
            out.append(MoveBatch(tenant=names[v], target_node=node,
                                 addresses=addresses[idx[s:s + per]].astype(np.uint64),
                                 sw_young=sw_young, kind=kind))
    return out


def sorted_candidates(c: Candidates, hottest: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, bins, nodes) hottest or coldest first. The agent already orders them; sorting again
    (stably) makes the plan independent of that promise."""
    heat = np.asarray(c.heat).astype(np.int64)
    addresses, node = np.asarray(c.addresses).astype(np.uint64), np.asarray(c.node).astype(np.int64)
    step = np.diff(heat)
    if (step <= 0).all() if hottest else (step >= 0).all():
        return addresses, heat_bins(heat), node           # already in order (the usual case): no sort
    order = np.argsort(-heat if hottest else heat, kind="stable")
    return addresses[order], heat_bins(heat[order]), node[order]


@dataclass(frozen=True)
class Topology:
    """Node tables indexed by node id (NUMA ids are small), so page arrays map to nodes without loops."""
    fast_ids: np.ndarray         # DRAM node ids, in view order
    fast_pos: np.ndarray         # node id -> position in fast_ids, -1 for slow nodes
    demote_to: np.ndarray        # DRAM node id -> slow node its pages are demoted to (-1 none)
    promote_to: np.ndarray       # slow node id -> preferred DRAM node for its pages (-1 none)

    @classmethod
    def of(cls, nodes: tuple[NodeView, ...]) -> Topology:
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


