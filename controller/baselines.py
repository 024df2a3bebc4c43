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
- "hemem": HeMem (SOSP'21): per-page sample counts against fixed hot thresholds, all counts halved whenever
  one reaches the cooling threshold; hot pages promoted, cold ones demoted only to make room for them.
- "memtis": MEMTIS (SOSP'23): per-page access counts in 16 log2 bins, the hot bin fitted to the DRAM budget
  minus a 3% promotion watermark, a warm band below it that stays put, counts halved periodically.
- "none": no moves at all, for the kernel-only reference runs.

The semantics follow the projects' documentation and published defaults; the code is pagetide's own.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

import numpy as np

from pagetide.controller.placement import (
    HEAT_BINS, HEAT_SHIFT, HostView, Plan, PolicyParams, TenantHeat, Topology, VmPolicy, cut_batches, place,
    resolve_policies, sorted_candidates, threshold_bin, validate_params, validate_view,
)
from pagetide.controller.policy import plan_host

__all__ = ["PlacementPolicy", "PagetidePolicy", "MemoryOptimizer", "MemtierdHeat", "HeMem", "Memtis", "NoMigration",
           "POLICIES", "make_policy"]

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


def _usable_dram(view: HostView, dram: np.ndarray) -> int:
    """DRAM the host's tenants can hold in all: DRAM capacity above the high watermarks, minus what processes
    outside the view hold (kernel, page tables, other tasks). `dram`: bytes on DRAM per tenant
    (`_tenant_bytes`)."""
    fast = [n for n in view.nodes if n.fast]
    unowned = max(0, sum(n.capacity_bytes - n.free_bytes for n in fast) - int(dram.sum()))
    return max(0, sum(n.capacity_bytes - n.wmark_high_bytes for n in fast) - unowned)


def _listed(t: TenantHeat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, refs levels 0..15, nodes) of every page in a tenant's candidate lists, once each, in address
    order."""
    lists = (t.hot_slow, t.cold_fast, t.hot_fast)
    addr = np.concatenate([np.asarray(c.addresses, dtype=np.uint64) for c in lists])
    lvl = np.concatenate([np.asarray(c.heat).astype(np.int64) >> HEAT_SHIFT for c in lists])
    node = np.concatenate([np.asarray(c.node, dtype=np.int64) for c in lists])
    addr, first = np.unique(addr, return_index=True)
    return addr, np.minimum(lvl[first], MAX_LEVEL), node[first]


def _fit_promotions(view: HostView, up_size: np.ndarray, down_size: np.ndarray, budget: int) -> tuple[int, int]:
    """(k, m): the most promotions k, in priority order, that fit in `budget` bytes of migration together with
    the m demotions (coldest first) that free the DRAM room above the high watermark they lack. (0, 0) always
    fits; the cost grows with k, so the feasible k are a prefix."""
    cp = np.concatenate([[0], np.cumsum(up_size)])
    cd = np.concatenate([[0], np.cumsum(down_size)])
    need = np.maximum(cp - int(np.maximum(_dram_room(view), 0).sum()), 0)
    m_need = np.searchsorted(cd, need, side="left")
    cost = cp + cd[np.minimum(m_need, cd.size - 1)]
    feasible = (m_need < cd.size) & (cost <= budget)
    k = int(np.flatnonzero(feasible)[-1])
    return k, int(m_need[k])


def _int_option(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class _PageCounts:
    """Per tenant, a row of sample counters per page reported so far (HeMem's and MEMTIS's per-page access
    counts), kept as arrays sorted by address so a lookup is one searchsorted. A row whose counters are all
    zero is dropped -- it holds no information -- so memory stays bounded by the pages with samples."""

    def __init__(self, columns: int):
        self.columns = columns
        self.tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # tenant -> (addresses, counts [n, columns])

    def get(self, tenant: str, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(counts [n, columns], known [n]) of addresses; zero where not tracked."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        out = np.zeros((addresses.size, self.columns), dtype=np.int64)
        known = np.zeros(addresses.size, dtype=bool)
        addr, counts = self.tables.get(tenant, (np.zeros(0, np.uint64), None))
        if addr.size and addresses.size:
            i = np.minimum(np.searchsorted(addr, addresses), addr.size - 1)
            known = addr[i] == addresses
            out[known] = counts[i[known]]
        return out, known

    def put(self, tenant: str, addresses: np.ndarray, counts: np.ndarray) -> None:
        """Set the counters of `addresses` (unique), keeping every other tracked page of the tenant."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        old_addr, old_counts = self.tables.get(tenant, (np.zeros(0, np.uint64),
                                                        np.zeros((0, self.columns), np.int64)))
        if old_addr.size and addresses.size:
            srt = np.sort(addresses)
            i = np.minimum(np.searchsorted(srt, old_addr), srt.size - 1)
            keep = srt[i] != old_addr
            old_addr, old_counts = old_addr[keep], old_counts[keep]
        addr = np.concatenate([old_addr, addresses])
        counts = np.concatenate([old_counts, np.asarray(counts, dtype=np.int64).reshape(-1, self.columns)])
        order = np.argsort(addr, kind="stable")
        self._store(tenant, addr[order], counts[order])

    def halve(self, tenant: str, times: int = 1) -> None:
        if tenant in self.tables and times > 0:
            addr, counts = self.tables[tenant]
            self._store(tenant, addr, counts >> min(times, 63))

    def max(self, tenant: str) -> int:
        counts = self.tables.get(tenant, (None, np.zeros((0, 1), np.int64)))[1]
        return int(counts.max()) if counts.size else 0

    def retain(self, tenants: set[str]) -> None:
        for gone in set(self.tables) - tenants:
            del self.tables[gone]

    def _store(self, tenant: str, addr: np.ndarray, counts: np.ndarray) -> None:
        alive = counts.any(axis=1)
        self.tables[tenant] = (addr[alive], counts[alive])


# ---------------------------------------------------------------------------------------------- pagetide

class PagetidePolicy:
    """pagetide's own policy (controller/policy.py). Its options override the controller's `PolicyParams` of
    the same name for this host (the migration budget and batch size stay the controller's), and
    `mark_every` spaces the MPOL_MF_SW_YOUNG marking rounds: PG_referenced stays set until reclaim scans the
    page, so re-marking the same hot pages every period only costs page walks. The one state kept is the
    round count."""
    name = "pagetide"

    def __init__(self, reserve: float | None = None, hysteresis_bins: int | None = None,
                 min_promote_bin: int | None = None, sw_young: bool | None = None,
                 max_mark_pages: int | None = None, mark_every: int = 4):
        given = dict(reserve=reserve, hysteresis_bins=hysteresis_bins, min_promote_bin=min_promote_bin,
                     sw_young=sw_young, max_mark_pages=max_mark_pages)
        self.overrides = {k: v for k, v in given.items() if v is not None}
        if self.overrides:
            # validated now, so a bad option fails at start-up rather than in the first round
            validate_params(replace(PolicyParams(), **self.overrides), HostView("", (), ()))
        self.mark_every = _int_option("mark_every", mark_every, 1)
        self.rounds = 0

    def _overridden(self, params: PolicyParams) -> PolicyParams:
        return replace(params, **self.overrides) if self.overrides else params

    def _params(self, params: PolicyParams) -> PolicyParams:
        p = self._overridden(params)
        return p if self.rounds % self.mark_every == 0 else replace(p, sw_young=False)

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        plan = plan_host(view, policies, self._params(params))
        self.rounds += 1
        return plan

    def mark_candidates(self, tenants: int, params: PolicyParams) -> int:
        """hot_fast pages to ask each tenant for: an equal share of a marking round's `max_mark_pages` rather
        than full candidate lists. The same on every round, marking or not, so the report the agent built
        ahead for the last request is the one asked for (a few KiB per tenant more on other rounds)."""
        p = self._overridden(params)
        return -(-p.max_mark_pages // max(1, tenants)) if p.sw_young else 0


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
        return min(1.0, _usable_dram(view, dram) / footprint) if footprint else 0.0

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
            addr, lvl, node = _listed(t)
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
        budget = min(self.bytes_per_round, params.max_bytes_per_round)
        # k promotions need the demotions that free what the room above the watermark lacks; the rest of the
        # budget demotes more cold pages
        k, m_need = _fit_promotions(view, page_size[up[0]], page_size[down[0]], budget)
        cd = np.concatenate([[0], np.cumsum(page_size[down[0]])])
        spent = int(page_size[up[0][:k]].sum())
        m = max(m_need, int(np.searchsorted(cd, budget - spent, side="right")) - 1)
        return _assemble(view, topo, params, tuple(a[:m] for a in down), tuple(a[:k] for a in up))


# ------------------------------------------------------------------------------------------------ HeMem

def _ordered_moves(parts: list[tuple], hottest: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tenant, address, node) of per-tenant move lists (tenant, address, node, count), ordered by count --
    hottest or coldest first -- ties in tenant order, then by address (deterministic)."""
    tenant, addr, node = _cat([p[:3] for p in parts])
    count = np.concatenate([p[3] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    order = np.argsort(-count if hottest else count, kind="stable")
    return tenant[order], addr[order], node[order]


def _hot_and_cold_moves(view: HostView, topo: Topology, params: PolicyParams, ups: list[tuple],
                        downs: list[tuple]) -> Plan:
    """HeMem's and MEMTIS's mover: hot slow pages promoted hottest first, each taking free DRAM above the high
    watermark or, once there is none, the room of a cold DRAM page demoted coldest first; within the host's
    migration limit. Cold pages are demoted only to make room, never to empty DRAM."""
    up, down = _ordered_moves(ups, hottest=True), _ordered_moves(downs, hottest=False)
    if not any(not n.fast for n in view.nodes):
        down = _empty_moves()
    page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
    k, m = _fit_promotions(view, page_size[up[0]], page_size[down[0]], params.max_bytes_per_round)
    return _assemble(view, topo, params, tuple(a[:m] for a in down), tuple(a[:k] for a in up))


class HeMem:
    """HeMem's policy (Raybuck et al., SOSP'21): PEBS samples counted per page, fixed hot thresholds, cooling by
    halving (DESIGN.md section 4).

    Samples. HeMem counts PEBS samples (about one per 5000 loads/stores) per page; the agent reports A-bit
    scans instead. A page at refs level L (found accessed in L of 15 scans, 0..15, the agent's heat >> 4)
    is taken to have yielded `samples_per_level * L` read samples this round, and pages not in the report's
    candidate lists none. So a page accessed in every scan gets 15 samples a round -- at HeMem's sampling
    rate that stands for >= 75 000 accesses -- and with the defaults a page at level >= 8 is hot in its first
    round, one at 4..7 in its second unless cooling intervenes. An A bit saturates at one access per scan, so
    the mapping keeps the order of pages and how fast counts cross the thresholds, not HeMem's absolute
    rates. The agent's report carries no dirty bit, so every sample is a read; the write counter and its
    threshold are kept (see `observe`) for a report that does.

    Per round and VM: counts += samples; while any page's read or write count is >= `cooling_threshold`,
    every count of the VM is halved (HeMem advances a global cooling clock when a count reaches the
    threshold and halves counts lazily as pages are next sampled; halving at once gives the same counts at
    decision time). Then a page is hot at >= `hot_read_threshold` reads or >= `hot_write_threshold` writes.
    Hot pages on the slow tier are promoted, highest count first; a promotion takes free DRAM above the
    high watermark or, when there is none, the room of a cold DRAM page, demoted lowest count first --
    HeMem demotes only when DRAM is needed. HeMem's own migration limit (10 GB per 10 ms) is far above any
    host's, so `params.max_bytes_per_round` is the limit.

    Defaults are the paper's: hot at 8 read or 4 write samples, cooling at 18.

    Approximations. HeMem is a per-process library: here each VM has its own counters and cooling clock,
    and the VMs share the host's DRAM and migration limit (promotions hottest first across VMs). HeMem
    manages 2 MiB pages; here a page is whatever the tenant reports (often 4 KiB), which gives HeMem a finer
    placement than it had, and each page's samples come from its own level rather than 512 pages' worth.
    State: per VM, the counters of every page with a non-zero count; one object per host."""
    name = "hemem"

    def __init__(self, hot_read_threshold: int = 8, hot_write_threshold: int = 4, cooling_threshold: int = 18,
                 samples_per_level: int = 1):
        self.hot_read_threshold = _int_option("hot_read_threshold", hot_read_threshold, 1)
        self.hot_write_threshold = _int_option("hot_write_threshold", hot_write_threshold, 1)
        self.cooling_threshold = _int_option("cooling_threshold", cooling_threshold, 2)
        self.samples_per_level = _int_option("samples_per_level", samples_per_level, 1)
        if self.cooling_threshold <= max(self.hot_read_threshold, self.hot_write_threshold):
            # counts would be halved before any page could become hot
            raise ValueError(f"cooling_threshold {cooling_threshold!r} must exceed hot_read_threshold "
                             f"{hot_read_threshold!r} and hot_write_threshold {hot_write_threshold!r}")
        self.counts = _PageCounts(2)              # per page: read samples, write samples
        self.coolings: dict[str, int] = {}        # per VM: how many times its counts were halved

    def samples(self, tenant: str, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(read samples, write samples) of addresses, 0 for pages without samples."""
        counts, _ = self.counts.get(tenant, addresses)
        return counts[:, 0], counts[:, 1]

    def is_hot(self, reads: np.ndarray, writes: np.ndarray) -> np.ndarray:
        return (reads >= self.hot_read_threshold) | (writes >= self.hot_write_threshold)

    def observe(self, tenant: str, addresses: np.ndarray, reads: np.ndarray, writes: np.ndarray) -> None:
        """Add one round's samples of distinct addresses, then cool the VM's counts while one is at or above
        the cooling threshold."""
        counts, _ = self.counts.get(tenant, addresses)
        counts += np.stack([np.asarray(reads, np.int64), np.asarray(writes, np.int64)], axis=1)
        self.counts.put(tenant, addresses, counts)
        top, times = self.counts.max(tenant), 0
        while top >= self.cooling_threshold:
            top >>= 1
            times += 1
        self.counts.halve(tenant, times)
        self.coolings[tenant] = self.coolings.get(tenant, 0) + times

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_view(view)
        validate_params(params, view)
        resolve_policies(view, policies)           # validated; HeMem has no per-VM policy
        topo = Topology.of(view.nodes)
        names = {t.name for t in view.tenants}
        self.counts.retain(names)
        self.coolings = {k: c for k, c in self.coolings.items() if k in names}

        ups, downs = [], []
        for v, t in enumerate(view.tenants):
            addr, lvl, node = _listed(t)
            self.observe(t.name, addr, lvl * self.samples_per_level, np.zeros(addr.size, np.int64))
            reads, writes = self.samples(t.name, addr)
            hot = self.is_hot(reads, writes)
            on_dram = topo.fast_pos[node] >= 0
            up, down = ~on_dram & hot, on_dram & ~hot
            ups.append((np.full(int(up.sum()), v), addr[up], node[up], (reads + writes)[up]))
            downs.append((np.full(int(down.sum()), v), addr[down], node[down], (reads + writes)[down]))
        return _hot_and_cold_moves(view, topo, params, ups, downs)


# ----------------------------------------------------------------------------------------------- MEMTIS

class Memtis:
    """MEMTIS's policy (Lee et al., SOSP'23): per-page access counts in a log2 histogram, the hot threshold
    fitted to the fast tier, a warm band, periodic cooling (DESIGN.md section 4).

    Counts. MEMTIS counts PEBS samples per page; as for `HeMem`, a page at refs level L yields
    `samples_per_level * L` samples a round. A page's bin is floor(log2(count + 1)), capped at 15: bin 0
    holds pages never sampled, bin b counts of 2^b - 1 .. 2^(b+1) - 2. Every `cooling_rounds` rounds all
    counts are halved (MEMTIS cools every 2M samples and adapts its thresholds every 100k, 20 adaptations
    per cooling; here the thresholds adapt every round, so the default cools every 20 rounds). Between
    coolings a page at constant level L holds (N + p + 1) * L, N = cooling_rounds, p = rounds since the last
    cooling, so a page first seen in the report starts there: the agent's heat already carries its history.

    The host's VMs form one memcg (MEMTIS's unit): one histogram, one threshold, one cooling clock. The
    histogram covers every page of every VM: the report's per-bin page counts give each level's pages the
    count a page at that level holds, in bytes (VMs may mix 4 KiB and 2 MiB pages). Candidate pages carry
    their own tracked counts, which lag a change of level until the next cooling, as MEMTIS's do.

    Threshold (MEMTIS's adaptation): walking bins from 15 down, the hot bin is the coldest one such that the
    bytes in it and above fit in the DRAM budget minus the promotion watermark -- the fast tier MEMTIS keeps
    free for promotions, `promotion_watermark` (3%) of the budget; the budget is the DRAM the host's tenants
    can hold (capacity above the high watermarks, minus memory held outside the view). It is never below
    bin 1 (MEMTIS's minimum hot threshold), never falls between coolings and falls by at most one bin at a
    cooling. If the hot bytes use less than 75% of what fits, the bin below is the warm band (else there is
    none): warm pages stay where they are. Pages never sampled (bin 0) are never warm -- without that, a
    DRAM full of idle pages would block every promotion when everything sampled fits.

    Moves: hot slow pages promoted, highest count first, into free DRAM above the high watermark or into
    the room of cold DRAM pages demoted lowest count first, within `params.max_bytes_per_round` (MEMTIS
    migrates every 500 ms at a rate limit; the host's limit stands in for it).

    Not modelled: MEMTIS's huge-page splitting (pages are the tenant's), its sampling-rate control, and
    the extra cooling on memcg growth. State: the tracked counts, the round, the thresholds; one object
    per host."""
    name = "memtis"

    def __init__(self, cooling_rounds: int = 20, promotion_watermark: float = 0.03, samples_per_level: int = 1):
        self.cooling_rounds = _int_option("cooling_rounds", cooling_rounds, 1)
        if (isinstance(promotion_watermark, bool) or not isinstance(promotion_watermark, numbers.Real)
                or not 0 <= promotion_watermark < 1):
            raise ValueError(f"promotion_watermark must be a fraction in [0, 1), got {promotion_watermark!r}")
        self.promotion_watermark = float(promotion_watermark)
        self.samples_per_level = _int_option("samples_per_level", samples_per_level, 1)
        self.counts = _PageCounts(1)
        self.round = 0
        self.coolings = 0
        self.hot_threshold = 1                     # MEMTIS's active threshold, a bin
        self.warm_threshold = 1
        self.hot_budget = 0                        # bytes the hot bins had to fit in, last round
        self.histogram = np.zeros(HEAT_BINS, dtype=np.int64)   # bytes per count bin, last round

    @staticmethod
    def count_bin(counts: np.ndarray) -> np.ndarray:
        """Histogram bin of access counts: floor(log2(count + 1)), at most 15."""
        _, exp = np.frexp(np.asarray(counts, dtype=np.float64) + 1)
        return np.minimum(exp.astype(np.int64) - 1, HEAT_BINS - 1)

    def access_counts(self, tenant: str, addresses: np.ndarray) -> np.ndarray:
        """Tracked access counts of addresses (0 for pages without samples)."""
        return self.counts.get(tenant, addresses)[0][:, 0]

    def steady_count(self, samples: np.ndarray, phase: int) -> np.ndarray:
        """The count of a page that has had `samples` a round for ever, `phase` rounds after a cooling."""
        return (self.cooling_rounds + phase + 1) * np.asarray(samples, dtype=np.int64)

    def fitted_bin(self, bin_bytes: np.ndarray, budget: int) -> tuple[int, int]:
        """(coldest bin whose bytes and all hotter bins' fit in `budget`, or 15 if even bin 15 does not;
        the bytes that fit)."""
        above = np.cumsum(bin_bytes[::-1])[::-1]          # above[b]: bytes in bins >= b
        fits = np.flatnonzero(above <= budget)
        if not fits.size:
            return HEAT_BINS - 1, 0
        return int(fits[0]), int(above[fits[0]])

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_view(view)
        validate_params(params, view)
        resolve_policies(view, policies)           # validated; MEMTIS has no per-VM policy
        topo = Topology.of(view.nodes)
        self.counts.retain({t.name for t in view.tenants})
        self.round += 1
        phase = (self.round - 1) % self.cooling_rounds
        cooled = self.round > 1 and phase == 0
        if cooled:
            for tenant in list(self.counts.tables):
                self.counts.halve(tenant)
            self.coolings += 1

        # the histogram over every page: each level's pages at the count a page at that level holds
        bins, dram = _tenant_bytes(view, topo)    # pages per level [tenant, level], DRAM bytes per tenant
        page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
        level_bin = self.count_bin(self.steady_count(np.arange(HEAT_BINS) * self.samples_per_level, phase))
        self.histogram = np.zeros(HEAT_BINS, dtype=np.int64)
        np.add.at(self.histogram, level_bin, (bins * page_size[:, None]).sum(axis=0))

        budget = _usable_dram(view, dram)
        self.hot_budget = budget - int(self.promotion_watermark * budget)
        fitted, hot_bytes = self.fitted_bin(self.histogram, self.hot_budget)
        fitted = max(fitted, 1)
        if cooled:
            if fitted < self.hot_threshold and self.hot_threshold > 1:
                self.hot_threshold -= 1
        elif fitted > self.hot_threshold:
            self.hot_threshold = fitted
        need_warm = hot_bytes < 0.75 * self.hot_budget
        self.warm_threshold = max(1, self.hot_threshold - 1) if need_warm else self.hot_threshold

        ups, downs = [], []
        for v, t in enumerate(view.tenants):
            addr, lvl, node = _listed(t)
            samples = lvl * self.samples_per_level
            counts, known = self.counts.get(t.name, addr)
            counts = counts[:, 0]
            # a page first seen starts where its level would have brought it by the end of the last round
            counts[~known] = self.steady_count(samples[~known], phase - 1)
            counts += samples
            self.counts.put(t.name, addr, counts)
            b = self.count_bin(counts)
            on_dram = topo.fast_pos[node] >= 0
            up, down = ~on_dram & (b >= self.hot_threshold), on_dram & (b < self.warm_threshold)
            ups.append((np.full(int(up.sum()), v), addr[up], node[up], counts[up]))
            downs.append((np.full(int(down.sum()), v), addr[down], node[down], counts[down]))
        return _hot_and_cold_moves(view, topo, params, ups, downs)


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
    HeMem.name: HeMem,
    Memtis.name: Memtis,
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
