"""What a policy sees of one host in one round: its NUMA nodes, its tenants' heat histograms and candidate
pages, the heat scale they are measured on, and the node tables derived from them.

A `HostView` is validated when it is built and carries its `Topology`, so a view that exists is a consistent
one and no policy validates it or derives the node tables again. Pure: numpy only, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["HEAT_BINS", "HEAT_SHIFT", "MAX_LEVEL", "heat_bins", "NodeView", "Candidates", "TenantHeat", "Topology",
           "HostView"]

# heat is fixed point: heat // 16 = average refs level per period on a 0..15 scale; bins are heat >> 4
HEAT_BINS = 16
HEAT_SHIFT = 4
MAX_LEVEL = HEAT_BINS - 1        # the agent's refs scale: 15 = accessed in every scan of the period


def heat_bins(heat: np.ndarray) -> np.ndarray:
    """Heat bin (0..HEAT_BINS-1) of fixed-point heat values."""
    return np.minimum(np.asarray(heat).astype(np.int64) >> HEAT_SHIFT, HEAT_BINS - 1)


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
    footprint_bytes: int = 0             # memory it maps (the topology's); 0: unknown, its resident bytes
    window_scans: float = 0.0            # scans its heat averages over (0: unknown, the seed's tracker)


@dataclass(frozen=True)
class Topology:
    """Node tables indexed by node id (NUMA ids are small), so page arrays map to nodes without loops."""
    fast_ids: np.ndarray         # DRAM node ids, in view order
    slow_ids: np.ndarray         # slow-tier node ids, in view order
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
        return cls(np.array([n.id for n in fast], dtype=np.int64), np.array([n.id for n in slow], dtype=np.int64),
                   fast_pos, demote_to, promote_to)


@dataclass(frozen=True)
class HostView:
    """One host for one round. Building one validates it (ValueError naming the host or tenant) and derives
    its `topology` once; tests build views the same way, from plain nodes and tenants."""
    host_id: str
    nodes: tuple[NodeView, ...]
    tenants: tuple[TenantHeat, ...]
    # the refs level (0..MAX_LEVEL) each heat bin stands for, as the host's tracker reports it; () for the
    # seed's linear scale (bin b = levels b..b+1)
    bin_level: tuple[float, ...] = ()
    topology: Topology = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        object.__setattr__(self, "topology", Topology.of(self.nodes))


def _validate(view: HostView) -> None:
    if view.bin_level and (len(view.bin_level) != HEAT_BINS or any(not 0 <= x <= MAX_LEVEL for x in view.bin_level)
                           or any(b < a for a, b in zip(view.bin_level, view.bin_level[1:]))):
        raise ValueError(f"host {view.host_id}: bin_level must be {HEAT_BINS} non-decreasing levels in "
                         f"0..{MAX_LEVEL}, got {list(view.bin_level)}")
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
        for name, allowed in (("hot_slow", is_slow), ("cold_fast", is_fast), ("hot_fast", is_fast)):
            c: Candidates = getattr(t, name)
            n = np.asarray(c.addresses).size
            if np.asarray(c.heat).size != n or np.asarray(c.node).size != n:
                raise ValueError(f"tenant {t.name!r}: {name} arrays differ in length")
            node = np.asarray(c.node)
            if n and not allowed[np.clip(node, -1, allowed.size - 1)].all():
                tier = "slow" if name == "hot_slow" else "fast"
                raise ValueError(f"tenant {t.name!r}: {name} lists pages that are not on a {tier} node")
