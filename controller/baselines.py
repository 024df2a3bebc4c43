"""Placement policies behind one interface, chosen by name: pagetide's own and the user-space daemons it is
compared with (DESIGN.md section 4), so the same simulator, proxy and accounting run every one of them.

A policy is an object with `plan(view, policies, params) -> Plan`: pure -- no I/O, no clock -- and it
returns the `Plan` that `plan_host` returns, so proxy.py executes any of them unchanged (batches of at most
`params.batch_bytes`, one target node each, demotions before promotions). A policy may keep state between
rounds in its own object (memtierd's heat map); time comes only as rounds of `period_seconds`, so one
object serves one host for the whole run. `params.max_bytes_per_round` is the host's migration limit and
every policy stays within it; the other `PolicyParams` fields are pagetide's own knobs and the baselines
ignore them (they model daemons that had no such knob).

- "pagetide": `plan_host` (DESIGN.md section 7).
- "memory-optimizer": Intel's 2018-19 daemon in its 1:1 mode (DESIGN.md 1.5). Every VM alone gets the same
  `dram_percent` of its scanned memory -- no per-VM utility split, which is the point of the comparison.
- "memtierd": memtierd's heat policy: a decaying per-page heat, heat classes mapped to nodes, and a mover
  limited to bandwidth x time.
- "none": no moves at all, for the kernel-only reference runs.

The semantics follow the projects' documentation and published defaults; the code is pagetide's own.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from pagetide.controller.placement import (
    HEAT_BINS, HostView, Plan, PolicyParams, Topology, VmPolicy, cut_batches, place, resolve_policies,
    sorted_candidates, threshold_bin, validate_params, validate_view,
)
from pagetide.controller.policy import plan_host

__all__ = ["PlacementPolicy", "PagetidePolicy", "MemoryOptimizer", "MemtierdHeat", "NoMigration", "POLICIES",
           "make_policy"]

MAX_LEVEL = HEAT_BINS - 1        # the agent's refs scale: 15 = accessed in every scan of the period


class PlacementPolicy(Protocol):
    """What the controller calls once per host and round."""
    name: str

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan: ...


def _dram_room(view: HostView) -> np.ndarray:
    """Bytes each DRAM node can take before kswapd starts reclaiming (free above the high watermark), in the
    order of `Topology.fast_ids`. The daemons know no reserve beyond the kernel's watermark."""
    return np.array([n.free_bytes - n.wmark_high_bytes for n in view.nodes if n.fast], dtype=np.int64)


def _tenant_bytes(view: HostView, topo: Topology) -> tuple[np.ndarray, np.ndarray]:
    """(pages per heat bin [tenant, bin] over all nodes, bytes on DRAM per tenant)."""
    bins = np.zeros((len(view.tenants), HEAT_BINS), dtype=np.int64)
    dram = np.zeros(len(view.tenants), dtype=np.int64)
    for v, t in enumerate(view.tenants):
        for nid, h in t.hist.items():
            h = np.asarray(h, dtype=np.int64)
            bins[v] += h
            if topo.fast_pos[nid] >= 0:
                dram[v] += int(h.sum()) * t.page_size
    return bins, dram


def _assemble(view: HostView, topo: Topology, params: PolicyParams,
              demote: tuple[np.ndarray, np.ndarray, np.ndarray],
              promote: tuple[np.ndarray, np.ndarray, np.ndarray],
              targets: Mapping[str, int] | None = None) -> Plan:
    """The Plan for chosen moves. demote/promote: (tenant index, address, current node), each in priority
    order. Demotions go to the DRAM node's peer; promotions to the slow node's DRAM peer while it has room,
    else to the DRAM node with most room; a promotion no node has room for waits for the next round.
    `targets`: the policy's DRAM target per tenant (default: where this plan leaves each tenant)."""
    names = [t.name for t in view.tenants]
    page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
    d_tenant, d_addr, d_node = demote
    d_target = topo.demote_to[d_node] if d_node.size else np.zeros(0, np.int64)
    ok = d_target >= 0
    d_tenant, d_addr, d_node, d_target = d_tenant[ok], d_addr[ok], d_node[ok], d_target[ok]
    d_size = page_size[d_tenant]

    room = _dram_room(view)
    np.add.at(room, topo.fast_pos[d_node], d_size)
    p_tenant, p_addr, p_node = promote
    p_size = page_size[p_tenant]
    p_target = place(topo.promote_to[p_node], p_size, topo.fast_ids, room)
    placed = p_target >= 0
    p_tenant, p_addr, p_target, p_size = p_tenant[placed], p_addr[placed], p_target[placed], p_size[placed]

    batches = cut_batches(names, d_tenant, d_addr, d_target, d_size, "demote", params.batch_bytes)
    batches += cut_batches(names, p_tenant, p_addr, p_target, p_size, "promote", params.batch_bytes)
    if targets is None:
        _, dram = _tenant_bytes(view, topo)
        dram = dram + np.bincount(p_tenant, p_size, len(names)).astype(np.int64) \
            - np.bincount(d_tenant, d_size, len(names)).astype(np.int64)
        targets = {name: int(dram[v]) for v, name in enumerate(names)}
    return Plan(host_id=view.host_id, dram_target_bytes=dict(targets), batches=tuple(batches),
                promote_bytes=int(p_size.sum()), demote_bytes=int(d_size.sum()))


def _empty_moves() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int64)


def _cat(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not parts:
        return _empty_moves()
    t, a, n = zip(*parts)
    return (np.concatenate(t).astype(np.int64), np.concatenate(a).astype(np.uint64),
            np.concatenate(n).astype(np.int64))


# ---------------------------------------------------------------------------------------------- pagetide

class PagetidePolicy:
    """pagetide's own policy (controller/policy.py); stateless."""
    name = "pagetide"

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        return plan_host(view, policies, params)


# -------------------------------------------------------------------------------------- memory-optimizer

class MemoryOptimizer:
    """Intel's memory-optimizer daemon (2018-19) in its 1:1 migration mode, per VM (DESIGN.md 1.5).

    Refs levels are the agent's heat bins (heat >> 4: the decayed share of a period's scans that found a page
    accessed, 0..15), read from the report's histograms and candidate lists. Per VM and period:

    - DRAM target = `dram_percent` of the VM's scanned memory. Walking levels from the hottest down until that
      target is used gives the budget threshold: colder pages are not in the hot set and never promoted
      (nor is level 0, never accessed).
    - The budget L = `one_period_migration_size` is split by the distance to the target, delta clamped to
      [-L, L]: promote (L + delta) / 2, demote (L - delta) / 2 -- the daemon's formula.
    - Hot candidates are slow pages hottest level first, cold candidates DRAM pages from level 0 up. Below
      target the hottest are promoted into the gap, above it the coldest demoted down to it; the rest of the
      budget swaps hot for cold pages while they are at least `anti_thrash_threshold` levels apart, so the
      hot threshold always stays that far above the cold one (the daemon raises its hot threshold to
      cold + gap).
    - Where the daemon, with fewer cold pages than half its budget (a small VM), moves its cold threshold to
      the top level and demotes the whole of DRAM, this model demotes only pages paired with a hotter page or
      needed to reach the target: the daemon was sized for VMs of hundreds of GiB, and its thrashing on small
      ones would only measure the simulator's scale.

    `dram_percent` None (the default) means the host's usable DRAM over all VMs' scanned memory: the single
    percentage an operator would pick so that the VMs together fill DRAM. The host's migration limit
    (`params.max_bytes_per_round`) is split evenly among the VMs, as the daemon's one bandwidth throttle
    serves them all. Moves leave room only down to the kernel's high watermark; batches are 4 MiB
    (`params.batch_bytes`), all cold batches before the hot ones."""
    name = "memory-optimizer"

    def __init__(self, dram_percent: float | None = None, one_period_migration_size: int = 256 << 20,
                 anti_thrash_threshold: int = 2):
        if dram_percent is not None and not 0 < dram_percent <= 100:
            raise ValueError(f"dram_percent must be within (0, 100], got {dram_percent!r}")
        if one_period_migration_size < 0:
            raise ValueError(f"one_period_migration_size must not be negative, got {one_period_migration_size!r}")
        if anti_thrash_threshold < 1:
            raise ValueError(f"anti_thrash_threshold must be >= 1, got {anti_thrash_threshold!r}")
        self.dram_percent = dram_percent
        self.one_period_migration_size = int(one_period_migration_size)
        self.anti_thrash_threshold = int(anti_thrash_threshold)

    def dram_fraction(self, view: HostView) -> float:
        """The fraction of its scanned memory every VM may keep in DRAM this round."""
        if self.dram_percent is not None:
            return self.dram_percent / 100
        topo = Topology.of(view.nodes)
        bins, dram = _tenant_bytes(view, topo)
        footprint = int((bins.sum(axis=1) * [t.page_size for t in view.tenants]).sum())
        fast = [n for n in view.nodes if n.fast]
        unowned = max(0, sum(n.capacity_bytes - n.free_bytes for n in fast) - int(dram.sum()))
        usable = max(0, sum(n.capacity_bytes - n.wmark_high_bytes for n in fast) - unowned)
        return min(1.0, usable / footprint) if footprint else 0.0

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_view(view)
        validate_params(params, view)
        resolve_policies(view, policies)          # validated; the daemon has no per-VM policy
        topo = Topology.of(view.nodes)
        bins, dram = _tenant_bytes(view, topo)
        fraction = self.dram_fraction(view)
        nt = max(1, len(view.tenants))
        can_demote = any(not n.fast for n in view.nodes)

        targets, downs, fills, swaps = {}, [], [], []
        for v, t in enumerate(view.tenants):
            ps = t.page_size
            bin_bytes = bins[v] * ps
            target = int(fraction * int(bin_bytes.sum())) // ps * ps
            targets[t.name] = target
            floor = max(1, threshold_bin(bin_bytes, target))
            limit = min(self.one_period_migration_size, params.max_bytes_per_round // nt)
            delta = max(-limit, min(limit, target - int(dram[v])))
            n_promote, n_demote = (limit + delta) // 2 // ps, (limit - delta) // 2 // ps

            h_addr, h_lvl, h_node = sorted_candidates(t.hot_slow, hottest=True)
            keep = h_lvl >= floor
            h_addr, h_lvl, h_node = h_addr[keep], h_lvl[keep], h_node[keep]
            c_addr, c_lvl, c_node = sorted_candidates(t.cold_fast, hottest=False)
            if not can_demote:
                c_addr, c_lvl, c_node = c_addr[:0], c_lvl[:0], c_node[:0]
            n_fill = min(h_addr.size, n_promote, max(delta, 0) // ps)
            n_down = min(c_addr.size, n_demote, -(-max(-delta, 0) // ps))
            m = min(h_addr.size - n_fill, c_addr.size - n_down, n_promote - n_fill, n_demote - n_down)
            # hottest remaining slow page against coldest remaining DRAM page: the level gap only shrinks
            # along the pairs, so the swaps are the prefix where it is still >= the anti-thrash threshold
            ok = (h_lvl[n_fill:n_fill + m] - c_lvl[n_down:n_down + m]) >= self.anti_thrash_threshold
            n_swap = m if ok.all() else int(np.argmin(ok))
            downs.append((np.full(n_down + n_swap, v), c_addr[:n_down + n_swap], c_node[:n_down + n_swap]))
            fills.append((np.full(n_fill, v), h_addr[:n_fill], h_node[:n_fill], h_lvl[:n_fill]))
            swaps.append((np.full(n_swap, v), h_addr[n_fill:n_fill + n_swap], h_node[n_fill:n_fill + n_swap]))

        # fills need free DRAM (plus what this round's demotions free): hottest first across VMs; swaps
        # bring their own room
        f_tenant, f_addr, f_node = _cat([f[:3] for f in fills])
        f_lvl = np.concatenate([f[3] for f in fills]) if fills else np.zeros(0, np.int64)
        order = np.argsort(-f_lvl, kind="stable")
        f_tenant, f_addr, f_node = f_tenant[order], f_addr[order], f_node[order]
        down = _cat(downs)
        page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
        free = int(np.maximum(_dram_room(view), 0).sum()) + int(page_size[down[0]].sum())
        s_tenant, s_addr, s_node = _cat(swaps)
        free -= int(page_size[s_tenant].sum())              # the swaps' own room is spoken for
        fit = np.cumsum(page_size[f_tenant]) <= free
        promote = (np.concatenate([s_tenant, f_tenant[fit]]), np.concatenate([s_addr, f_addr[fit]]),
                   np.concatenate([s_node, f_node[fit]]))
        return _assemble(view, topo, params, down, promote, targets)


# ----------------------------------------------------------------------------------------------- memtierd

class MemtierdHeat:
    """memtierd's "heat" policy with its idle-page tracker, per page (DESIGN.md section 4).

    Every round each page in the report's candidate lists is observed: `new` = its refs level / 15, the share
    of the period's scans that found it accessed (memtierd's idlepage tracker counts accessed scans per page).
    Heat h <- min(HeatMax, new + h * R^dt), dt the seconds since that page's last observation, so a page no
    longer reported keeps cooling. Class = min(C - 1, int(C * h / HeatMax)); the top class maps to DRAM,
    every other class to the slow tier. Slow pages in the top class are promoted, hottest first, while DRAM
    has room above the high watermark (memtierd's fill-fast-free mode with NumaSize = DRAM); DRAM pages
    below it are demoted, coldest first. The mover moves `bandwidth x mover_interval` bytes per step, so
    `bandwidth x period` per round (and never more than the host's `params.max_bytes_per_round`); in it,
    the demotions that make room for the hottest promotions come first, then the rest of the demotions.

    Defaults are memtierd's: HeatRetention R = 0.9513 per second (5% of the heat left after 60 s idle),
    HeatMax = 1.0, HeatClasses C = 10 (pkg/memtier heatmap defaults); mover Bandwidth 100 MB/s and
    IntervalMs 10 (its mover defaults). With them a page found accessed in every scan is top class at
    once, and one never seen again leaves the top class after ln(0.9) / ln(R) = 2.1 s.

    State: per tenant, the heat and observation round of every address ever reported, dropped once its
    heat falls below 1e-3 HeatMax or its tenant leaves the host -- memory bounded by the candidate lists.
    Time is `round x period_seconds`; one object per host."""
    name = "memtierd"

    def __init__(self, period_seconds: float = 1.0, heat_retention: float = 0.9513, heat_max: float = 1.0,
                 heat_classes: int = 10, bandwidth: float = 100e6, mover_interval: float = 0.010):
        if not period_seconds > 0:
            raise ValueError(f"period_seconds must be positive, got {period_seconds!r}")
        if not 0 <= heat_retention <= 1:
            raise ValueError(f"heat_retention must be within [0, 1], got {heat_retention!r}")
        if not heat_max > 0:
            raise ValueError(f"heat_max must be positive, got {heat_max!r}")
        if heat_classes < 2:
            raise ValueError(f"heat_classes must be >= 2 (one for DRAM, one for the slow tier), got {heat_classes!r}")
        if not bandwidth >= 0 or not mover_interval > 0:
            raise ValueError(f"bandwidth must be >= 0 and mover_interval > 0, got {bandwidth!r}, {mover_interval!r}")
        self.period_seconds = float(period_seconds)
        self.heat_retention = float(heat_retention)
        self.heat_max = float(heat_max)
        self.heat_classes = int(heat_classes)
        self.bandwidth = float(bandwidth)
        self.mover_interval = float(mover_interval)
        self.round = 0
        # tenant -> (sorted addresses uint64, heat float64, round of last observation int64)
        self.heatmap: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @property
    def bytes_per_round(self) -> int:
        chunk = self.bandwidth * self.mover_interval           # the mover's bytes per step
        return int(chunk * round(self.period_seconds / self.mover_interval))

    def heat(self, tenant: str, addresses: np.ndarray) -> np.ndarray:
        """Current heat of addresses (0 for never observed), cooled to this round."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        out = np.zeros(addresses.size)
        if tenant not in self.heatmap:
            return out
        addr, h, seen = self.heatmap[tenant]
        if not addr.size:
            return out
        i = np.minimum(np.searchsorted(addr, addresses), addr.size - 1)
        hit = addr[i] == addresses
        out[hit] = h[i[hit]] * self.heat_retention ** ((self.round - seen[i[hit]]) * self.period_seconds)
        return out

    def heat_class(self, tenant: str, addresses: np.ndarray) -> np.ndarray:
        h = self.heat(tenant, addresses)
        return np.minimum((self.heat_classes * h / self.heat_max).astype(np.int64), self.heat_classes - 1)

    def _observe(self, tenant: str, addresses: np.ndarray, new: np.ndarray) -> None:
        new_heat = np.minimum(new + self.heat(tenant, addresses), self.heat_max)
        old = self.heatmap.get(tenant)
        if old is not None:
            keep = ~np.isin(old[0], addresses)
            addresses = np.concatenate([old[0][keep], addresses])
            new_heat = np.concatenate([old[1][keep], new_heat])
            seen = np.concatenate([old[2][keep], np.full(new.size, self.round)])
        else:
            seen = np.full(new.size, self.round)
        alive = new_heat * self.heat_retention ** ((self.round - seen) * self.period_seconds) \
            >= 1e-3 * self.heat_max
        order = np.argsort(addresses[alive], kind="stable")
        self.heatmap[tenant] = (addresses[alive][order], new_heat[alive][order], seen[alive][order])

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_view(view)
        validate_params(params, view)
        resolve_policies(view, policies)           # validated; memtierd has no per-VM policy
        topo = Topology.of(view.nodes)
        self.round += 1
        for gone in set(self.heatmap) - {t.name for t in view.tenants}:
            del self.heatmap[gone]
        top = self.heat_classes - 1

        ups, downs = [], []
        for v, t in enumerate(view.tenants):
            lists = (t.hot_slow, t.cold_fast, t.hot_fast)
            addr = np.concatenate([np.asarray(c.addresses, dtype=np.uint64) for c in lists])
            lvl = np.concatenate([np.asarray(c.heat).astype(np.int64) >> 4 for c in lists])
            node = np.concatenate([np.asarray(c.node, dtype=np.int64) for c in lists])
            addr, first = np.unique(addr, return_index=True)
            lvl, node = np.minimum(lvl[first], MAX_LEVEL), node[first]
            self._observe(t.name, addr, lvl / MAX_LEVEL)
            h = self.heat(t.name, addr)
            cls = np.minimum((self.heat_classes * h / self.heat_max).astype(np.int64), top)
            on_dram = topo.fast_pos[node] >= 0
            up, down = ~on_dram & (cls == top), on_dram & (cls < top)
            ups.append((np.full(int(up.sum()), v), addr[up], node[up], h[up]))
            downs.append((np.full(int(down.sum()), v), addr[down], node[down], h[down]))

        # hottest promotions first, coldest demotions first; ties by tenant, then address (deterministic)
        def ordered(parts, hottest):
            tenant, addr, node = _cat([p[:3] for p in parts])
            h = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0)
            order = np.lexsort((addr, tenant, -h if hottest else h))
            return tenant[order], addr[order], node[order]

        up, down = ordered(ups, True), ordered(downs, False)
        if not any(not n.fast for n in view.nodes):
            down = _empty_moves()
        page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
        cp = np.concatenate([[0], np.cumsum(page_size[up[0]])])
        cd = np.concatenate([[0], np.cumsum(page_size[down[0]])])
        budget = min(self.bytes_per_round, params.max_bytes_per_round)
        # k promotions need the demotions that free what the room above the watermark lacks
        need = np.maximum(cp - int(np.maximum(_dram_room(view), 0).sum()), 0)
        m_need = np.searchsorted(cd, need, side="left")
        cost = cp + cd[np.minimum(m_need, cd.size - 1)]
        feasible = (m_need < cd.size) & (cost <= budget)
        k = int(np.flatnonzero(feasible)[-1])                # k = 0 is always feasible
        m = max(int(m_need[k]), int(np.searchsorted(cd, budget - cp[k], side="right")) - 1)
        return _assemble(view, topo, params, tuple(a[:m] for a in down), tuple(a[:k] for a in up))


# -------------------------------------------------------------------------------------------- none

class NoMigration:
    """Moves nothing: the kernel alone places pages (its demotion or tiering mode). The reference runs of
    `pagetide bench` for the kernel-only modes use it, so the same controller loop measures them."""
    name = "none"

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_view(view)
        return _assemble(view, Topology.of(view.nodes), params, _empty_moves(), _empty_moves())


# -------------------------------------------------------------------------------------------- registry

POLICIES: dict[str, type] = {
    PagetidePolicy.name: PagetidePolicy,
    MemoryOptimizer.name: MemoryOptimizer,
    MemtierdHeat.name: MemtierdHeat,
    NoMigration.name: NoMigration,
}


def make_policy(name: str, period_seconds: float | None = None, **options) -> PlacementPolicy:
    """A fresh policy object for one host. `period_seconds` (the host's period) goes to the policies that
    keep time and is ignored by the others; any other option must be one the policy declares. Raises
    ValueError naming the valid policies or options."""
    cls = POLICIES.get(name)
    if cls is None:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(sorted(POLICIES))}")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"policy {name!r}: unknown option(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(accepted) or 'none'}")
    if period_seconds is not None and "period_seconds" in accepted:
        options["period_seconds"] = period_seconds
    return cls(**options)
