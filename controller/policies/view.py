"""What a policy sees of one host in one round: its NUMA nodes and their memory tiers, its tenants' heat
histograms and candidate pages, the heat scale they are measured on, and the node tables derived from them.

A `HostView` is validated when it is built and carries its `Topology`, so a view that exists is a consistent
one and no policy validates it or derives the node tables again. Pure: numpy only, no I/O.

Memory tiers. Every policy decides between two tiers: the fast one (DRAM) and the slow one. A host of more
tiers (DRAM, CXL, PMEM: `NodeView.tier`) is that decision once per boundary between a tier and those below
it: `HostView.boundary(b)` is the two-tier view of boundary b -- tier b's nodes fast, the lower tiers' slow,
the higher tiers' left out, with the candidate lists the agent sent for that boundary -- and `after(plan)`
is the view as it will be once a plan's moves are done (free memory, histograms, candidates), so the next
boundary plans on top of the one above it. This is where "DRAM against the rest" is decided, for every
policy (`base.PlacementPolicy.plan` runs the boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["HEAT_BINS", "HEAT_SHIFT", "MAX_LEVEL", "heat_bins", "NodeView", "Candidates", "TenantHeat",
           "TierCandidates", "Topology", "HostView"]

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
    tier: int = -1               # rank of its memory tier: 0 the top (DRAM), 1 the next ...; -1: 0 if fast else 1
    demotion_node: int = -1      # where the kernel demotes its pages (-1: unknown or none)
    latency_ns: float = 0.0      # read latency its accesses pay under their load (the last period's; 0: unknown)
    idle_latency_ns: float = 0.0  # its read latency unloaded (the topology's; 0: unknown)

    def __post_init__(self) -> None:
        if self.tier < 0:
            object.__setattr__(self, "tier", 0 if self.fast else 1)


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
    lower: tuple[TierCandidates, ...] = ()   # on more than two tiers: the lists of boundaries 1, 2, ...


@dataclass(frozen=True)
class TierCandidates:
    """A tenant's candidate lists at the boundary below tier `tier` (a rank >= 1), as hot_slow, cold_fast
    and hot_fast are at DRAM's."""
    tier: int
    hot_below: Candidates                # hottest pages on the tiers below, hottest first
    cold: Candidates                     # coldest pages on tier `tier`, coldest first
    hot: Candidates                      # hottest pages on tier `tier` (SW_YOUNG marks)


@dataclass(frozen=True)
class Topology:
    """Node tables indexed by node id (NUMA ids are small), so page arrays map to nodes without loops."""
    fast_ids: np.ndarray         # DRAM node ids, in view order
    slow_ids: np.ndarray         # slow-tier node ids, in view order
    fast_pos: np.ndarray         # node id -> position in fast_ids, -1 for slow nodes
    demote_to: np.ndarray        # DRAM node id -> slow node its pages are demoted to (-1 none)
    promote_to: np.ndarray       # slow node id -> preferred DRAM node for its pages (-1 none)
    tier: np.ndarray             # node id -> tier rank (-1: no such node)
    nr_tiers: int

    @classmethod
    def of(cls, nodes: tuple[NodeView, ...]) -> Topology:
        size = max((n.id for n in nodes), default=-1) + 1
        fast = [n for n in nodes if n.fast]
        slow = [n for n in nodes if not n.fast]
        is_fast = {n.id: n.fast for n in nodes}
        fast_pos = np.full(size, -1, dtype=np.int64)
        demote_to = np.full(size, -1, dtype=np.int64)
        promote_to = np.full(size, -1, dtype=np.int64)
        tier = np.full(size, -1, dtype=np.int64)
        for n in nodes:
            tier[n.id] = n.tier
        for j, n in enumerate(fast):
            fast_pos[n.id] = j
            # the kernel's demotion target, else the RFC's peer_node, else the first slow node
            if is_fast.get(n.demotion_node) is False:
                demote_to[n.id] = n.demotion_node
            else:
                demote_to[n.id] = n.peer_node if is_fast.get(n.peer_node) is False else (slow[0].id if slow else -1)
        for n in slow:
            # the DRAM node paired with this slow node, from either side of the pairing
            paired = [f.id for f in fast if f.peer_node == n.id]
            promote_to[n.id] = n.peer_node if is_fast.get(n.peer_node) else (paired[0] if paired else -1)
        return cls(np.array([n.id for n in fast], dtype=np.int64), np.array([n.id for n in slow], dtype=np.int64),
                   fast_pos, demote_to, promote_to, tier, int(tier.max()) + 1 if size else 0)


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
    # the tracker that measured the heat (HeatReport.tracker): "pebs" heat is a log scale of the period's
    # samples (placement.sample_counts decodes it); "" or another name: refs levels
    tracker: str = ""
    topology: Topology = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        object.__setattr__(self, "topology", Topology.of(self.nodes))

    @property
    def nr_boundaries(self) -> int:
        """Boundaries between memory tiers a plan decides: 1 on a host of two tiers (or one)."""
        return max(1, self.topology.nr_tiers - 1)

    def boundary(self, b: int) -> HostView:
        """The two-tier view of boundary b: tier b's nodes fast, the lower tiers' slow, the higher tiers'
        left out (with the tenants' pages on them), and the candidate lists of that boundary. On a host of
        two tiers, boundary 0 is the view itself."""
        if self.topology.nr_tiers <= 2 and b == 0:
            return self
        if not 0 <= b < self.nr_boundaries:
            raise ValueError(f"host {self.host_id}: no tier boundary {b} (tiers: {self.topology.nr_tiers})")
        nodes = tuple(replace(n, fast=n.tier == b, tier=0 if n.tier == b else 1,
                              peer_node=n.peer_node if n.peer_node in self._ids_at_or_below(b) else -1)
                      for n in self.nodes if n.tier >= b)
        keep = {n.id for n in nodes}
        tenants = []
        for t in self.tenants:
            hist = {nid: h for nid, h in t.hist.items() if nid in keep}
            if b == 0:
                lists = dict(hot_slow=t.hot_slow, cold_fast=t.cold_fast, hot_fast=t.hot_fast)
            else:
                lower = next((c for c in t.lower if c.tier == b), None)
                lists = (dict(hot_slow=lower.hot_below, cold_fast=lower.cold, hot_fast=lower.hot) if lower
                         else dict(hot_slow=Candidates.empty(), cold_fast=Candidates.empty(),
                                   hot_fast=Candidates.empty()))
            # below the top the footprint is what the tiers here hold (nothing else is this boundary's)
            tenants.append(replace(t, hist=hist, lower=(), footprint_bytes=t.footprint_bytes if b == 0 else 0,
                                   **lists))
        return HostView(self.host_id, nodes, tuple(tenants), self.bin_level, self.tracker)

    def _ids_at_or_below(self, b: int) -> set[int]:
        return {n.id for n in self.nodes if n.tier >= b}

    def after(self, batches) -> HostView:
        """The view once `batches` (a plan's MoveBatches; SW_YOUNG marks move nothing) are done: free bytes
        and histograms follow each moved page (its heat bin and node from the candidate lists it came from),
        and a moved page leaves the candidate lists of its old node for those of its new one -- a page demoted
        from DRAM to CXL is a CXL demotion candidate at the next boundary (`base.PlacementPolicy.plan` then
        sends it straight to where that boundary puts it)."""
        moves = [b for b in batches if not b.sw_young and len(b.addresses)]
        if not moves:
            return self
        free = {n.id: n.free_bytes for n in self.nodes}
        rank = self.topology.tier
        by_tenant: dict[str, list] = {}
        for b in moves:
            by_tenant.setdefault(b.tenant, []).append(b)
        tenants = []
        for t in self.tenants:
            if t.name not in by_tenant:
                tenants.append(t)
                continue
            lists = [t.hot_slow, t.cold_fast, t.hot_fast] + [c for low in t.lower
                                                              for c in (low.hot_below, low.cold, low.hot)]
            addr = np.concatenate([np.asarray(c.addresses, dtype=np.uint64) for c in lists])
            heat = np.concatenate([np.asarray(c.heat, dtype=np.uint8) for c in lists])
            node = np.concatenate([np.asarray(c.node, dtype=np.int64) for c in lists])
            addr, first = np.unique(addr, return_index=True)
            heat, node = heat[first], node[first]
            hist = {nid: np.asarray(h, dtype=np.int64).copy() for nid, h in t.hist.items()}
            m_addr, m_heat, m_node = [], [], []
            for b in by_tenant[t.name]:
                a = np.asarray(b.addresses, dtype=np.uint64)
                i = np.minimum(np.searchsorted(addr, a), max(addr.size - 1, 0))
                known = (addr[i] == a) if addr.size else np.zeros(a.size, bool)
                src, bins = node[i[known]], heat_bins(heat[i[known]])
                for nid in np.unique(src):
                    sel = src == nid
                    h = hist.setdefault(int(nid), np.zeros(HEAT_BINS, np.int64))
                    np.subtract.at(h, bins[sel], 1)
                    np.maximum(h, 0, out=h)
                    free[int(nid)] = free.get(int(nid), 0) + int(sel.sum()) * t.page_size
                dst = hist.setdefault(b.target_node, np.zeros(HEAT_BINS, np.int64))
                np.add.at(dst, bins, 1)
                free[b.target_node] = free.get(b.target_node, 0) - int(known.sum()) * t.page_size
                m_addr.append(a[known])
                m_heat.append(heat[i[known]])
                m_node.append(np.full(int(known.sum()), b.target_node, dtype=np.int64))
            gone = np.unique(np.concatenate([np.asarray(b.addresses, dtype=np.uint64) for b in by_tenant[t.name]]))
            arrived = Candidates(np.concatenate(m_addr), np.concatenate(m_heat), np.concatenate(m_node))
            arrived_rank = rank[arrived.node]

            def relisted(c: Candidates, on: np.ndarray, hottest: bool) -> Candidates:
                """c without the moved pages, plus those that arrived on a node `on` selects, in c's order."""
                a = np.asarray(c.addresses, dtype=np.uint64)
                k = np.ones(a.size, bool)
                if a.size:
                    i = np.minimum(np.searchsorted(gone, a), gone.size - 1)
                    k = gone[i] != a
                new = on & ((arrived.heat > 0) if hottest else True)
                a = np.concatenate([a[k], arrived.addresses[new]])
                h = np.concatenate([np.asarray(c.heat, dtype=np.uint8)[k], arrived.heat[new]])
                n = np.concatenate([np.asarray(c.node, dtype=np.int64)[k], arrived.node[new]])
                order = np.argsort(-h.astype(np.int64) if hottest else h, kind="stable")
                return Candidates(a[order], h[order], n[order])
            top, below = arrived_rank == 0, arrived_rank > 0
            tenants.append(replace(
                t, hist=hist, hot_slow=relisted(t.hot_slow, below, True),
                cold_fast=relisted(t.cold_fast, top, False), hot_fast=relisted(t.hot_fast, top, True),
                lower=tuple(replace(low, hot_below=relisted(low.hot_below, arrived_rank > low.tier, True),
                                    cold=relisted(low.cold, arrived_rank == low.tier, False),
                                    hot=relisted(low.hot, arrived_rank == low.tier, True)) for low in t.lower)))
        nodes = tuple(replace(n, free_bytes=free[n.id]) for n in self.nodes)
        return HostView(self.host_id, nodes, tuple(tenants), self.bin_level, self.tracker)


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
    tier_of = np.full(is_fast.size, -1, dtype=np.int64)      # the last entry stands for node -1: no tier
    for n in view.nodes:
        (is_fast if n.fast else is_slow)[n.id] = True
        tier_of[n.id] = n.tier
        if n.fast != (n.tier == 0):
            raise ValueError(f"host {view.host_id}: node {n.id} is {'fast' if n.fast else 'slow'} but in tier "
                             f"{n.tier}; the top tier (0) is the fast one")
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
        for low in t.lower:
            for name, ok in (("hot_below", lambda r: r > low.tier), ("cold", lambda r: r == low.tier),
                             ("hot", lambda r: r == low.tier)):
                c = getattr(low, name)
                n = np.asarray(c.addresses).size
                if np.asarray(c.heat).size != n or np.asarray(c.node).size != n:
                    raise ValueError(f"tenant {t.name!r}: tier {low.tier} {name} arrays differ in length")
                rank = tier_of[np.clip(np.asarray(c.node), -1, tier_of.size - 1)]
                if n and not ok(rank).all():
                    raise ValueError(f"tenant {t.name!r}: tier {low.tier} {name} lists pages on the wrong tier")
