"""The "memtierd" policy: memtierd's heat policy with its idle-page tracker -- a decaying per-page heat, heat
classes mapped to nodes, and a mover limited to bandwidth x time. The semantics follow memtierd's
documentation and defaults; the code is pagetide's own."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pagetide.common.options import Option, bandwidth, duration, integer, number, ratio
from pagetide.controller.policies.base import PlacementPolicy, Plan, PolicyParams, VmPolicy, validate_params
from pagetide.controller.policies.placement import (
    assemble, concat_moves, empty_moves, fit_promotions, listed, resolve_policies,
)
from pagetide.controller.policies.view import MAX_LEVEL, HostView

__all__ = ["MemtierdHeat"]


class MemtierdHeat(PlacementPolicy):
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
    OPTIONS = {
        "period_seconds": Option(duration(), 1.0, "the host's period (the controller passes it)"),
        "heat_retention": Option(ratio(), 0.9513, "HeatRetention: share of a page's heat left after one second"),
        "heat_max": Option(number(0), 1.0, "HeatMax: the heat a page saturates at"),
        "heat_classes": Option(integer(2), 10, "HeatClasses: the top one maps to DRAM, the others to the slow "
                                               "tier"),
        "bandwidth": Option(bandwidth(), 100e6, "the mover's Bandwidth, bytes per second"),
        "mover_interval": Option(duration(), 0.010, "the mover's IntervalMs, seconds between its steps"),
    }

    def __init__(self, **options) -> None:
        super().__init__(**options)
        o = self.options
        for key in ("period_seconds", "heat_max", "mover_interval"):
            if not o[key] > 0:
                raise self.invalid(f"must be positive, got {o[key]!r}", key)
        self.period_seconds = float(o["period_seconds"])
        self.heat_retention = float(o["heat_retention"])
        self.heat_max = float(o["heat_max"])
        self.heat_classes = int(o["heat_classes"])
        self.bandwidth = float(o["bandwidth"])
        self.mover_interval = float(o["mover_interval"])
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

    def place(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_params(params, view)
        resolve_policies(view, policies)           # validated; memtierd has no per-VM policy
        topo = view.topology
        self.round += 1
        for gone in set(self.heatmap) - {t.name for t in view.tenants}:
            del self.heatmap[gone]
        top = self.heat_classes - 1

        ups, downs = [], []
        for v, t in enumerate(view.tenants):
            addr, lvl, node = listed(t)
            self._observe(t.name, addr, lvl / MAX_LEVEL)
            h = self.heat(t.name, addr)
            cls = np.minimum((self.heat_classes * h / self.heat_max).astype(np.int64), top)
            on_dram = topo.fast_pos[node] >= 0
            up, down = ~on_dram & (cls == top), on_dram & (cls < top)
            ups.append((np.full(int(up.sum()), v), addr[up], node[up], h[up]))
            downs.append((np.full(int(down.sum()), v), addr[down], node[down], h[down]))

        # hottest promotions first, coldest demotions first; ties by tenant, then address (deterministic)
        def ordered(parts, hottest):
            tenant, addr, node = concat_moves([p[:3] for p in parts])
            h = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0)
            order = np.lexsort((addr, tenant, -h if hottest else h))
            return tenant[order], addr[order], node[order]

        up, down = ordered(ups, True), ordered(downs, False)
        if not topo.slow_ids.size:
            down = empty_moves()
        page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
        budget = min(self.bytes_per_round, params.max_bytes_per_round)
        # k promotions need the demotions that free what the room above the watermark lacks; the rest of the
        # budget demotes more cold pages
        k, m_need = fit_promotions(view, page_size[up[0]], page_size[down[0]], budget)
        cd = np.concatenate([[0], np.cumsum(page_size[down[0]])])
        spent = int(page_size[up[0][:k]].sum())
        m = max(m_need, int(np.searchsorted(cd, budget - spent, side="right")) - 1)
        return assemble(view, params, tuple(a[:m] for a in down), tuple(a[:k] for a in up))
