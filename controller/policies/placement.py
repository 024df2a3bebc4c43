"""The placement mechanics policies share: checking the users' VM policies against a view (shares of the
footprint resolved to bytes) and the filter that keeps any policy's plan within a VM's rules (pinned tier,
migration off); reading a view's heat (per-tenant bin bytes, candidate lists in order, every listed page
once), the host's DRAM room and budget, and the steps that turn chosen pages into a `Plan` of move_pages
batches -- placing promotions on DRAM nodes with room, fitting promotions and the demotions that make room
for them into a migration budget, and cutting batches. Per-page sample counters (HeMem's and MEMTIS's) live
here too. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from pagetide.common.sampled_heat import SAMPLED_TRACKERS, decode_samples
from pagetide.controller.policies.base import TIERS, MoveBatch, Plan, PolicyParams, VmPolicy
from pagetide.controller.policies.view import (
    HEAT_BINS, HEAT_SHIFT, MAX_LEVEL, Candidates, HostView, TenantHeat, heat_bins,
)

__all__ = [
    "Moves", "resolve_policies", "footprint_bytes", "honour_vm_rules", "threshold_bin", "place", "cut_batches", "sorted_candidates", "dram_room",
    "tenant_bytes", "usable_dram", "listed", "assemble", "empty_moves", "concat_moves", "fit_promotions",
    "ordered_moves", "hot_and_cold_moves", "PageCounts",
]

Moves = tuple[np.ndarray, np.ndarray, np.ndarray]     # (tenant index int64, address uint64, current node int64)


# ------------------------------------------------------------------------------------------ VM policies

def resolve_policies(view: HostView, policies: Mapping[str, VmPolicy]) -> list[VmPolicy]:
    """One policy per tenant, in view order, its shares of the footprint turned into bytes (`VmPolicy`
    with `min_dram_share` and `max_dram_share` None). A policy naming a tenant the host does not run is an
    error, not ignored: the controller validates policies against its inventory before calling, so reaching
    here means the controller's view and the user's policy disagree and the user would silently lose a
    guarantee. A minimum in bytes above a maximum that is a share (checked by the controller against the
    footprint it knew) is capped to the maximum rather than failing the host's round."""
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
        for key in ("min_dram_share", "max_dram_share"):
            x = getattr(p, key)
            if x is not None and (isinstance(x, bool) or not isinstance(x, numbers.Real) or not 0 <= x <= 1):
                raise ValueError(f"policy for VM {name!r}: {key} must be in [0, 1], got {x!r}")
        if p.min_dram_share is not None and p.min_dram_bytes:
            raise ValueError(f"policy for VM {name!r}: min_dram_bytes and min_dram_share are both set")
        if p.max_dram_share is not None and p.max_dram_bytes is not None:
            raise ValueError(f"policy for VM {name!r}: max_dram_bytes and max_dram_share are both set")
        if p.min_dram_share is not None and p.max_dram_share is not None and p.min_dram_share > p.max_dram_share:
            raise ValueError(f"policy for VM {name!r}: min_dram_share {p.min_dram_share} exceeds "
                             f"max_dram_share {p.max_dram_share}")
        if p.pinned_tier not in (None, *TIERS):
            raise ValueError(f"policy for VM {name!r}: pinned_tier must be one of {', '.join(TIERS)} or None, "
                             f"got {p.pinned_tier!r}")
    out = []
    for t in view.tenants:
        p = policies.get(t.name, VmPolicy())
        if p.min_dram_share is not None or p.max_dram_share is not None:
            fp = footprint_bytes(t)
            hi = p.max_dram_bytes if p.max_dram_share is None else int(p.max_dram_share * fp)
            lo = p.min_dram_bytes if p.min_dram_share is None else math.ceil(p.min_dram_share * fp)
            p = replace(p, min_dram_bytes=lo if hi is None else min(lo, hi), max_dram_bytes=hi,
                        min_dram_share=None, max_dram_share=None)
        out.append(p)
    return out


def footprint_bytes(t: TenantHeat) -> int:
    """The memory a tenant maps: the topology's figure, else (unknown) its resident pages."""
    if t.footprint_bytes:
        return int(t.footprint_bytes)
    return sum(int(np.asarray(h, dtype=np.int64).sum()) for h in t.hist.values()) * t.page_size


def honour_vm_rules(view: HostView, policies: Mapping[str, VmPolicy], plan: Plan) -> Plan:
    """The plan without the batches a VM's rules forbid: none for a VM whose migration is off, no demotions
    of a VM pinned to DRAM, no promotions or SW_YOUNG marks of a VM pinned to the slow tier. Any policy's
    plan goes through it (the baselines know no per-VM rules); pagetide's own already keeps them, and the
    plan comes back unchanged when nothing is dropped."""
    def allowed(b: MoveBatch) -> bool:
        p = policies.get(b.tenant)
        if p is None:
            return True
        if not p.migrate:
            return False
        if p.pinned_tier == "dram":
            return b.kind != "demote"
        if p.pinned_tier == "slow":
            return b.kind == "demote"
        return True

    kept = tuple(b for b in plan.batches if allowed(b))
    if len(kept) == len(plan.batches):
        return plan
    page_size = {t.name: t.page_size for t in view.tenants}
    moved = {kind: sum(len(b.addresses) * page_size.get(b.tenant, 0) for b in kept if b.kind == kind)
             for kind in ("promote", "demote")}
    return replace(plan, batches=kept, promote_bytes=moved["promote"], demote_bytes=moved["demote"])


# ------------------------------------------------------------------------------------- reading the view

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


def dram_room(view: HostView) -> np.ndarray:
    """Bytes each DRAM node can take before kswapd starts reclaiming (free above the high watermark), in the
    order of `Topology.fast_ids`. The daemons know no reserve beyond the kernel's watermark."""
    return np.array([n.free_bytes - n.wmark_high_bytes for n in view.nodes if n.fast], dtype=np.int64)


def tenant_bytes(view: HostView) -> tuple[np.ndarray, np.ndarray]:
    """(pages per heat bin [tenant, bin] over all nodes, bytes on DRAM per tenant)."""
    topo = view.topology
    bins = np.zeros((len(view.tenants), HEAT_BINS), dtype=np.int64)
    dram = np.zeros(len(view.tenants), dtype=np.int64)
    for v, t in enumerate(view.tenants):
        for nid, h in t.hist.items():
            h = np.asarray(h, dtype=np.int64)
            bins[v] += h
            if topo.fast_pos[nid] >= 0:
                dram[v] += int(h.sum()) * t.page_size
    return bins, dram


def usable_dram(view: HostView, dram: np.ndarray) -> int:
    """DRAM the host's tenants can hold in all: DRAM capacity above the high watermarks, minus what processes
    outside the view hold (kernel, page tables, other tasks). `dram`: bytes on DRAM per tenant
    (`tenant_bytes`)."""
    fast = [n for n in view.nodes if n.fast]
    unowned = max(0, sum(n.capacity_bytes - n.free_bytes for n in fast) - int(dram.sum()))
    return max(0, sum(n.capacity_bytes - n.wmark_high_bytes for n in fast) - unowned)


def listed(t: TenantHeat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, refs levels 0..15, nodes) of every page in a tenant's candidate lists, once each, in address
    order."""
    addr, heat, node = listed_heat(t)
    return addr, np.minimum(heat >> HEAT_SHIFT, MAX_LEVEL), node


def listed_heat(t: TenantHeat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, heat bytes as int64, nodes) of every page in a tenant's candidate lists, once each, in
    address order."""
    lists = (t.hot_slow, t.cold_fast, t.hot_fast)
    addr = np.concatenate([np.asarray(c.addresses, dtype=np.uint64) for c in lists])
    heat = np.concatenate([np.asarray(c.heat).astype(np.int64) for c in lists])
    node = np.concatenate([np.asarray(c.node, dtype=np.int64) for c in lists])
    addr, first = np.unique(addr, return_index=True)
    return addr, heat[first], node[first]


# the sample count a sampled tracker's heat byte stands for (the wire's scale, shared with the agent)
sample_counts = decode_samples


def listed_samples(view: HostView, t: TenantHeat, per_level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, samples this round, nodes) of a tenant's listed pages, as a sampling policy (HeMem, MEMTIS)
    counts them: on a host whose tracker samples loads, its own counts; else a stand-in from A-bit scans,
    `per_level` samples per refs level."""
    if view.tracker in SAMPLED_TRACKERS:
        addr, heat, node = listed_heat(t)
        return addr, sample_counts(heat), node
    addr, lvl, node = listed(t)
    return addr, lvl * per_level, node


def bin_samples(view: HostView, per_level: int) -> np.ndarray:
    """Samples a round of a page in each heat bin, on the same footing as `listed_samples` (bin 0: none)."""
    if view.tracker in SAMPLED_TRACKERS:       # bin b holds counts 2^(b/2) - 1 .. 2^((b+1)/2) - 1: their middle
        b = np.arange(HEAT_BINS, dtype=np.float64)
        out = np.rint((2 ** (b / 2) + 2 ** ((b + 1) / 2)) / 2 - 1).astype(np.int64)
        out[0] = 0
        return out
    return np.arange(HEAT_BINS, dtype=np.int64) * per_level


# -------------------------------------------------------------------------------------- moves to a plan

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


def assemble(view: HostView, params: PolicyParams, demote: Moves, promote: Moves,
             targets: Mapping[str, int] | None = None) -> Plan:
    """The Plan for chosen moves. demote/promote: (tenant index, address, current node), each in priority
    order. Demotions go to the DRAM node's peer; promotions to the slow node's DRAM peer while it has room,
    else to the DRAM node with most room; a promotion no node has room for waits for the next round.
    `targets`: the policy's DRAM target per tenant (default: where this plan leaves each tenant)."""
    topo = view.topology
    names = [t.name for t in view.tenants]
    page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
    d_tenant, d_addr, d_node = demote
    d_target = topo.demote_to[d_node] if d_node.size else np.zeros(0, np.int64)
    ok = d_target >= 0
    d_tenant, d_addr, d_node, d_target = d_tenant[ok], d_addr[ok], d_node[ok], d_target[ok]
    d_size = page_size[d_tenant]

    room = dram_room(view)
    np.add.at(room, topo.fast_pos[d_node], d_size)
    p_tenant, p_addr, p_node = promote
    p_size = page_size[p_tenant]
    p_target = place(topo.promote_to[p_node], p_size, topo.fast_ids, room)
    placed = p_target >= 0
    p_tenant, p_addr, p_target, p_size = p_tenant[placed], p_addr[placed], p_target[placed], p_size[placed]

    batches = cut_batches(names, d_tenant, d_addr, d_target, d_size, "demote", params.batch_bytes)
    batches += cut_batches(names, p_tenant, p_addr, p_target, p_size, "promote", params.batch_bytes)
    if targets is None:
        _, dram = tenant_bytes(view)
        dram = dram + np.bincount(p_tenant, p_size, len(names)).astype(np.int64) \
            - np.bincount(d_tenant, d_size, len(names)).astype(np.int64)
        targets = {name: int(dram[v]) for v, name in enumerate(names)}
    return Plan(host_id=view.host_id, dram_target_bytes=dict(targets), batches=tuple(batches),
                promote_bytes=int(p_size.sum()), demote_bytes=int(d_size.sum()))


def empty_moves() -> Moves:
    return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int64)


def concat_moves(parts: list[tuple[np.ndarray, ...]]) -> Moves:
    """Per-tenant (tenant, address, node) arrays joined into one `Moves`, in list order."""
    if not parts:
        return empty_moves()
    t, a, n = zip(*parts)
    return (np.concatenate(t).astype(np.int64), np.concatenate(a).astype(np.uint64),
            np.concatenate(n).astype(np.int64))


def fit_promotions(view: HostView, up_size: np.ndarray, down_size: np.ndarray, budget: int) -> tuple[int, int]:
    """(k, m): the most promotions k, in priority order, that fit in `budget` bytes of migration together with
    the m demotions (coldest first) that free the DRAM room above the high watermark they lack. (0, 0) always
    fits; the cost grows with k, so the feasible k are a prefix."""
    cp = np.concatenate([[0], np.cumsum(up_size)])
    cd = np.concatenate([[0], np.cumsum(down_size)])
    need = np.maximum(cp - int(np.maximum(dram_room(view), 0).sum()), 0)
    m_need = np.searchsorted(cd, need, side="left")
    cost = cp + cd[np.minimum(m_need, cd.size - 1)]
    feasible = (m_need < cd.size) & (cost <= budget)
    k = int(np.flatnonzero(feasible)[-1])
    return k, int(m_need[k])


def ordered_moves(parts: list[tuple], hottest: bool) -> Moves:
    """(tenant, address, node) of per-tenant move lists (tenant, address, node, count), ordered by count --
    hottest or coldest first -- ties in tenant order, then by address (deterministic)."""
    tenant, addr, node = concat_moves([p[:3] for p in parts])
    count = np.concatenate([p[3] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    order = np.argsort(-count if hottest else count, kind="stable")
    return tenant[order], addr[order], node[order]


def hot_and_cold_moves(view: HostView, params: PolicyParams, ups: list[tuple], downs: list[tuple]) -> Plan:
    """HeMem's and MEMTIS's mover: hot slow pages promoted hottest first, each taking free DRAM above the high
    watermark or, once there is none, the room of a cold DRAM page demoted coldest first; within the host's
    migration limit. Cold pages are demoted only to make room, never to empty DRAM."""
    up, down = ordered_moves(ups, hottest=True), ordered_moves(downs, hottest=False)
    if not view.topology.slow_ids.size:
        down = empty_moves()
    page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
    k, m = fit_promotions(view, page_size[up[0]], page_size[down[0]], params.max_bytes_per_round)
    return assemble(view, params, tuple(a[:m] for a in down), tuple(a[:k] for a in up))


# ------------------------------------------------------------------------------------ per-page counters

class PageCounts:
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
