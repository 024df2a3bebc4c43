"""Tenants arriving, leaving and resizing while the host model runs: VM churn.

A host's tenants own contiguous slices of its page arrays (agent/host.py). A change of the tenant set lays
the arrays out again: every surviving page keeps its state (node, flags, LRU position) at its new slot, and
a `Relayout` -- runs of (old slot, new slot, pages) and the old-to-new tenant index map -- lets every other
holder of per-page or per-tenant state (the tiering mode, the tracker, the accounting) follow with the
same slice copies, never a loop per page.

- `add_tenant`: the new tenant's slice goes at the end; with `prefault` it first-touches all its memory in
  address order, in 64 MiB steps with kswapd between them, as a booting VM does at start: where its pages
  land is the host's allocation policy (separate zonelists: DRAM, then reclaim demotes; unified: falls back
  to a slow node).
- `remove_tenant`: its pages are freed on every node and in swap, its page tables on DRAM.
- `resize_tenant`: growing appends never-touched pages to its slice (first-touched at once with
  `prefault`, as a balloon deflating or hot-plugged guest memory being zeroed); shrinking unmaps and frees
  the pages past the new end (a balloon inflating) and the page tables no longer needed. Its workload is
  rebuilt for the new footprint with the same seed: its popularity ranking over the pages is drawn afresh,
  so its hot pages move (the model has no notion of which pages a guest keeps using across a resize).

Every operation is checked before anything changes: `BadRequest` NOT_FOUND for an unknown tenant,
ALREADY_EXISTS for a name taken, INVALID_ARGUMENT for a bad size, RESOURCE_EXHAUSTED when the host's
tenants would map more than all its memory plus swap (the scenario's own limit) or no address slot is free.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pagetide.agent.backend import BadRequest
from pagetide.agent.host import Host, Tenant
from pagetide.agent.pageflags import HPAGE_PMD_NR, NODE_NONE, NODE_SWAP, PAGE_SIZE, PG_PINNED, pages_per_node
from pagetide.agent.scenario import TenantSpec
from pagetide.agent.workloads import make_workload
from pagetide.common import units

PREFAULT_STEP = 64 << 20      # bytes first-touched between kswapd runs (as Host.boot)


@dataclass(frozen=True)
class Relayout:
    """How the host's page slots and tenant indices moved: `runs` of (old slot, new slot, pages) for the pages
    that survive, `tenant_map[old index]` = new index or -1 (departed)."""
    runs: tuple[tuple[int, int, int], ...]
    nr_pages: int
    tenant_map: np.ndarray
    nr_tenants: int

    def pages(self, arr: np.ndarray, fill=0) -> np.ndarray:
        """A per-page array in the new layout: surviving pages keep their values, new ones get `fill`."""
        out = np.full((self.nr_pages, *arr.shape[1:]), fill, dtype=arr.dtype)
        for old, new, n in self.runs:
            out[new:new + n] = arr[old:old + n]
        return out

    def tenants(self, arr: np.ndarray, fill=0) -> np.ndarray:
        """A per-tenant array in the new order: surviving tenants keep their values, new ones get `fill`."""
        out = np.full((self.nr_tenants, *arr.shape[1:]), fill, dtype=arr.dtype)
        keep = self.tenant_map >= 0
        out[self.tenant_map[keep]] = arr[keep]
        return out

    def tenant_list(self, items: list, new) -> list:
        """A per-tenant list in the new order; `new()` makes the entry of a tenant that arrived."""
        out = [None] * self.nr_tenants
        for old, i in enumerate(self.tenant_map):
            if i >= 0:
                out[i] = items[old]
        return [new() if x is None else x for x in out]


def _lay_out(host: Host, tenants: list[Tenant], kept: dict[int, int]) -> Relayout:
    """Give `tenants` (new order, specs already updated) consecutive slices; `kept[id(t)]` pages of each
    survivor's old slice (from its start) keep their state. Updates the host's arrays and indices."""
    old_index = {id(t): t.index for t in host.tenants}
    runs, start = [], 0
    tenant_map = np.full(len(host.tenants), -1, dtype=np.int64)
    for i, t in enumerate(tenants):
        if id(t) in kept:
            runs.append((t.start, start, kept[id(t)]))
            tenant_map[old_index[id(t)]] = i
        t.start, t.index = start, i
        start += t.spec.npages
    change = Relayout(runs=tuple(runs), nr_pages=start, tenant_map=tenant_map, nr_tenants=len(tenants))
    host.node = change.pages(host.node, NODE_NONE)
    host.flags = change.pages(host.flags, 0)
    host.lru_seq = change.pages(host.lru_seq, 0)
    host.tenants = list(tenants)
    host.nr_pages = start
    host._index_tenants()
    host.lru_relayout()
    host.generation += 1
    host.tiering.relayout(host, change)
    return change


def _fits(host: Host, extra: int, what: str) -> None:
    mapped = sum(t.spec.footprint for t in host.tenants) + extra
    room = int(host.capacity.sum()) * PAGE_SIZE + host.k.swap
    if mapped > room:
        raise BadRequest(f"{what}: the host's tenants would map {units.format_size(mapped)}, more than all its "
                         f"memory plus swap ({units.format_size(room)})", code="RESOURCE_EXHAUSTED")


def _pin(host: Host, t: Tenant, lo: int) -> None:
    """Pin the tenant's share of its pages from offset `lo` on (new memory), seeded by the host and slice."""
    n = t.npages - lo
    k = int(round(t.spec.pinned * n))
    if k:
        rng = np.random.default_rng([host.scenario.seed, host.tenants_added, lo])
        host.flags[t.start + lo + rng.choice(n, k, replace=False)] |= PG_PINNED


def _prefault(host: Host, t: Tenant, lo: int) -> None:
    """First-touch (write) pages [lo, npages) of t in address order, kswapd between steps."""
    chunk = max(1, (PREFAULT_STEP // PAGE_SIZE) // t.page_nr)
    for a in range(lo, t.npages, chunk):
        b = min(t.npages, a + chunk)
        host._fault_in(t, np.arange(t.start + a, t.start + b), write=True)
        if t.pmd_young is not None:
            t.pmd_young[a // HPAGE_PMD_NR:-(-b // HPAGE_PMD_NR)] = 1
        host._kswapd()


def _free(host: Host, t: Tenant, lo: int) -> None:
    """Unmap and free pages [lo, npages) of t: on every node and in swap."""
    nd = host.node[t.start + lo:t.end]
    host.node_used -= pages_per_node(nd, host.nr_nodes) * t.page_nr
    host.swap_used -= int((nd == NODE_SWAP).sum()) * t.page_nr
    t.mapped -= int((nd != NODE_NONE).sum())
    nd[:] = NODE_NONE


def _free_page_tables(host: Host, t: Tenant) -> None:
    """Free the page-table pages t no longer needs for what it maps (most-used DRAM node first)."""
    excess = t.pgtable_pages - t.pgtable_target()
    for nid in np.argsort(-t.pgtable_by_node, kind="stable"):
        if excess <= 0:
            break
        k = int(min(excess, t.pgtable_by_node[nid]))
        t.pgtable_by_node[nid] -= k
        host.node_pgtable[nid] -= k
        t.pgtable_pages -= k
        excess -= k


def add_tenant(host: Host, spec: TenantSpec) -> Relayout:
    """Start tenant `spec` (validated against this host's nodes by scenario.parse_tenant) at the end of the
    host's arrays; with spec.prefault it first-touches its memory now."""
    if spec.name in host.by_name:
        raise BadRequest(f"tenant {_shown(spec.name)} already exists on this host", code="ALREADY_EXISTS")
    _fits(host, spec.footprint, f"tenant {_shown(spec.name)}")
    used = {(t.vma_start - host.VMA_BASE) // host.VMA_STRIDE for t in host.tenants}
    free = [s for s in range(host.VMA_SLOTS) if s not in used]
    if not free:
        raise BadRequest(f"tenant {_shown(spec.name)}: at most {host.VMA_SLOTS} tenants per host",
                         code="RESOURCE_EXHAUSTED")
    t = host._new_tenant(spec, host.tenants_added, free[0])
    kept = {id(x): x.npages for x in host.tenants}
    host.tenants_added += 1
    change = _lay_out(host, host.tenants + [t], kept)
    _pin(host, t, 0)
    if spec.prefault:
        _prefault(host, t, 0)
    return change


def remove_tenant(host: Host, name: str) -> tuple[Relayout, Tenant]:
    """Stop tenant `name`: free its pages everywhere and its page tables. Returns the layout change and the
    departed tenant (its statistics, for accounting)."""
    t = _get(host, name)
    _free(host, t, 0)
    t.pgtable_pages -= int(t.pgtable_by_node.sum())
    host.node_pgtable -= t.pgtable_by_node
    t.pgtable_by_node[:] = 0
    rest = [x for x in host.tenants if x is not t]
    return _lay_out(host, rest, {id(x): x.npages for x in rest}), t


def resize_tenant(host: Host, name: str, footprint: int) -> Relayout | None:
    """Grow or shrink tenant `name` to `footprint` bytes (None: it already has that size)."""
    t = _get(host, name)
    ps = t.spec.page_size
    if footprint <= 0 or footprint % ps:
        raise BadRequest(f"footprint_bytes: must be a positive multiple of tenant {_shown(name)}'s page size ({ps} "
                         f"bytes), got {footprint}")
    if footprint == t.spec.footprint:
        return None
    if footprint > t.spec.footprint:
        _fits(host, footprint - t.spec.footprint, f"tenant {_shown(name)}")
    old_n, new_n = t.npages, footprint // ps
    try:
        workload = make_workload(t.spec.workload, new_n, t.workload.seed, host.scenario.tick, where="workload")
    except ValueError as e:
        raise BadRequest(f"footprint_bytes: tenant {_shown(name)}'s workload does not fit {footprint} bytes: "
                         f"{e}") from None
    if new_n < old_n:
        _free(host, t, new_n)
        _free_page_tables(host, t)
    t.spec = dataclasses.replace(t.spec, footprint=footprint)
    t.workload = workload
    if t.pmd_young is not None:
        young = np.zeros(-(-new_n // HPAGE_PMD_NR), np.uint8)
        keep = min(young.size, t.pmd_young.size)
        young[:keep] = t.pmd_young[:keep]
        t.pmd_young = young
    change = _lay_out(host, host.tenants, {id(x): (min(old_n, new_n) if x is t else x.npages)
                                           for x in host.tenants})
    if new_n > old_n:
        _pin(host, t, old_n)
        if t.spec.prefault:
            _prefault(host, t, old_n)
    return change


def _get(host: Host, name: str) -> Tenant:
    if name not in host.by_name:
        raise BadRequest(f"no tenant {_shown(name)} on this host", not_found=True)
    return host.by_name[name]


def _shown(name: str, limit: int = 64) -> str:
    """A name as an error echoes it, cut short (a status message travels in a header)."""
    return repr(name if len(name) <= limit else name[:limit] + "...")
