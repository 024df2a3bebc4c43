"""The "memory-optimizer" policy: Intel's 2018-19 memory-optimizer daemon in its 1:1 mode (DESIGN.md 1.5).
Every VM alone gets the same `dram_percent` of its scanned memory -- no per-VM utility split, which is the
point of the comparison. The semantics follow the daemon's documentation and defaults; the code is pagetide's
own."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pagetide.common.options import Option, integer, number, size
from pagetide.controller.policies.base import PlacementPolicy, Plan, PolicyParams, VmPolicy, validate_params
from pagetide.controller.policies.placement import (
    assemble, concat_moves, dram_room, resolve_policies, sorted_candidates, tenant_bytes, threshold_bin, usable_dram,
)
from pagetide.controller.policies.view import HostView

__all__ = ["MemoryOptimizer"]


class MemoryOptimizer(PlacementPolicy):
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
    OPTIONS = {
        "dram_percent": Option(number(0, 100), None, "percent of its scanned memory each VM keeps in DRAM, in "
                                                     "(0, 100] (default: the host's usable DRAM share)"),
        "one_period_migration_size": Option(size(), 256 << 20, "bytes each VM may migrate per period"),
        "anti_thrash_threshold": Option(integer(1), 2, "swap only pages at least this many refs levels apart"),
    }

    def __init__(self, **options) -> None:
        super().__init__(**options)
        dram_percent = self.options["dram_percent"]
        if dram_percent is not None and not 0 < dram_percent <= 100:
            raise self.invalid(f"must be within (0, 100], got {dram_percent!r}", "dram_percent")
        self.dram_percent = dram_percent
        self.one_period_migration_size = int(self.options["one_period_migration_size"])
        self.anti_thrash_threshold = int(self.options["anti_thrash_threshold"])

    def dram_fraction(self, view: HostView) -> float:
        """The fraction of its scanned memory every VM may keep in DRAM this round."""
        if self.dram_percent is not None:
            return self.dram_percent / 100
        bins, dram = tenant_bytes(view)
        footprint = int((bins.sum(axis=1) * [t.page_size for t in view.tenants]).sum())
        return min(1.0, usable_dram(view, dram) / footprint) if footprint else 0.0

    def place(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_params(params, view)
        resolve_policies(view, policies)          # validated; the daemon has no per-VM policy
        bins, dram = tenant_bytes(view)
        fraction = self.dram_fraction(view)
        nt = max(1, len(view.tenants))
        can_demote = view.topology.slow_ids.size > 0

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
        f_tenant, f_addr, f_node = concat_moves([f[:3] for f in fills])
        f_lvl = np.concatenate([f[3] for f in fills]) if fills else np.zeros(0, np.int64)
        order = np.argsort(-f_lvl, kind="stable")
        f_tenant, f_addr, f_node = f_tenant[order], f_addr[order], f_node[order]
        down = concat_moves(downs)
        page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
        free = int(np.maximum(dram_room(view), 0).sum()) + int(page_size[down[0]].sum())
        s_tenant, s_addr, s_node = concat_moves(swaps)
        free -= int(page_size[s_tenant].sum())              # the swaps' own room is spoken for
        fit = np.cumsum(page_size[f_tenant]) <= free
        promote = (np.concatenate([s_tenant, f_tenant[fit]]), np.concatenate([s_addr, f_addr[fit]]),
                   np.concatenate([s_node, f_node[fit]]))
        return assemble(view, params, down, promote, targets)
