"""Kernel promotion modes of the host model (DESIGN.md sections 2 and 4), registered by name and chosen by a
scenario's `host.kernel.tiering: {mode: ..., ...params}`.

- `none`: no promotion; the RFC / Linux 5.15 reclaim-time demotion of `host` is all the kernel does.
- `nbt`: Linux 6.1 NUMA balancing in memory-tiering mode (`kernel.numa_balancing=2`). A per-task scanner
  arms slow-tier pages with PROT_NONE, `scan_size` of address space every `scan_period`, stamping the scan
  time on the page; the next access takes a NUMA hint fault whose latency (fault time - scan time) marks the
  page hot when below the hot threshold. Hot pages are promotion candidates, promoted within
  `promote_rate_limit`; the threshold adapts every 60 s so candidates stay within +-10% of rate x 60 s; a
  fast node with plenty free memory promotes every faulting page.
- `tpp`: NBT plus TPP's filter (ASPLOS'23): a faulting slow page is promoted only if it is on the active
  LRU, else it is activated so its next fault promotes it; and TPP's decoupled demotion watermark
  (`demote_scale_factor` 2% unless the scenario sets it).
DAMOS-based tiering (Linux 6.11+) is not modelled yet.

A mode is a `Tiering` object the host calls at two points: `on_access` with the slots a tenant accessed
this tick (after the hardware A/D bits are set) and `on_tick` at the end of every tick (after kswapd).
Promotions go through `Host._migrate`, so node usage, ping-pong and migration counters stay exact.
Time inside a mode is counted in ticks: a hint-fault latency is (fault tick - scan tick) x tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from pagetide.agent import units
from pagetide.agent.pageflags import PAGE_SIZE, PG_ACTIVE, PG_PINNED, PG_TLB_CACHED

if TYPE_CHECKING:
    from pagetide.agent.host import Host, Tenant

SCAN_TIME_MASK = 0xFFFF         # scan time is kept in 16 bits of ticks, compared modulo 2^16 (as the kernel
                                # keeps a truncated ms timestamp in the page's last_cpupid bits)
NUMA_SCAN_MAX_SKIP = 8          # task_numa_work walks up to 8x scan_size of address space to find pages to arm
THRESHOLD_ADJUST_PERIOD = 60.0  # the hot threshold adapts every numa_balancing_scan_period_max (60 s)
THRESHOLD_ADJUST_STEPS = 16     # ... by 2 x default threshold / 16 (NUMA_MIGRATION_ADJUST_STEPS)
RATE_LIMIT_WINDOW = 1.0         # promotion rate limit is counted per 1 s window
FREE_ENOUGH_MIN = 1 << 30       # pgdat_free_space_enough: free > promo wmark + max(1 GiB, node / 16)
TPP_DEMOTE_SCALE_FACTOR = 0.02  # TPP's WMARK_DEMOTE: 2% of a top-tier node


@dataclass(frozen=True)
class Param:
    """One tunable of a mode: a `units` parser and the range it must fall in."""
    parse_unit: Callable
    lo: float
    hi: float
    fmt: Callable[[float], str]

    def parse(self, value) -> float:
        x = self.parse_unit(value)
        if not self.lo <= x <= self.hi:
            raise ValueError(f"must be within [{self.fmt(self.lo)}, {self.fmt(self.hi)}], got {value!r}")
        return x


@dataclass(frozen=True)
class TieringSpec:
    mode: str = "none"
    scan_size: int = 256 << 20           # numa_balancing_scan_size_mb: address space armed per scan period
    scan_period: float = 1.0             # numa_balancing_scan_period_min (1 s; the kernel adapts up to 60 s)
    hot_threshold: float = 1.0           # numa_balancing_hot_threshold_ms (1000)
    promote_rate_limit: float = float(65536 << 20)  # numa_balancing_promote_rate_limit_MBps (65536, MiB/s)
    hint_fault_cost: float = 1e-6        # a NUMA hint fault is a minor fault: ~1 us of the faulting task


NBT_PARAMS = {
    "scan_size": Param(units.parse_size, PAGE_SIZE, 1 << 40, units.format_size),
    "scan_period": Param(units.parse_duration, 1.0, 60.0, units.format_duration),
    "hot_threshold": Param(units.parse_duration, 1e-3, 3600.0, units.format_duration),
    "promote_rate_limit": Param(units.parse_bandwidth, PAGE_SIZE, float(1 << 50), units.format_bandwidth),
    "hint_fault_cost": Param(units.parse_duration, 0.0, 1e-3, units.format_duration),
}


class Tiering:
    """Mode `none`: nothing promotes. The base of every mode."""
    name = "none"
    params: dict[str, Param] = {}
    default_demote_scale_factor: float | None = None   # a mode's own default for the kernel setting
    balance_to_promo = False           # kswapd balances nodes to WMARK_PROMO (memory-tiering mode)

    def __init__(self, host: Host, spec: TieringSpec):
        self.spec = spec

    def on_access(self, host: Host, t: Tenant, slots: np.ndarray) -> None:
        """Slots (with repeats) tenant t accessed this tick, all present, A/D bits already set."""

    def on_tick(self, host: Host) -> None:
        """End of a tick, after kswapd; host.tick_no is still the tick that ran."""

    def state_bytes_per_page(self) -> int:
        return 0


class NumaBalancingTiering(Tiering):
    """Linux 6.1 NUMA-balancing memory tiering. Per page: `prot_none` (the PTE is armed for a hint fault)
    and `scan_time` (tick of arming, mod 2^16); per tenant a scan cursor; per target node the hot
    threshold, rate-limit window and candidate counts (the kernel keeps them in pglist_data)."""
    name = "nbt"
    params = NBT_PARAMS
    balance_to_promo = True

    def __init__(self, host: Host, spec: TieringSpec):
        super().__init__(host, spec)
        tick = host.scenario.tick
        self.prot_none = np.zeros(host.nr_pages, dtype=bool)
        self.scan_time = np.zeros(host.nr_pages, dtype=np.uint16)
        # indexed by a page's node; the two extra entries make NODE_NONE (-1) and NODE_SWAP (-2) not slow
        self.is_slow = np.concatenate([~host.is_fast, [False, False]])
        nt, nn = len(host.tenants), host.nr_nodes
        self.period_ticks = max(1, int(round(spec.scan_period / tick)))
        self.scan_offset = np.zeros(nt, dtype=np.int64)          # mm->numa_scan_offset, in pages
        self.next_scan = np.full(nt, self.period_ticks - 1)       # first scan one period after start
        self.rate_limit = spec.promote_rate_limit / PAGE_SIZE     # base pages per second
        self.window_ticks = max(1, int(round(RATE_LIMIT_WINDOW / tick)))
        self.adjust_ticks = max(1, int(round(THRESHOLD_ADJUST_PERIOD / tick)))
        self.threshold = np.full(nn, spec.hot_threshold)
        self.candidates = np.zeros(nn, dtype=np.int64)            # pgpromote_candidate per target node
        self.rl_start, self.rl_cand = np.zeros(nn, dtype=np.int64), np.zeros(nn, dtype=np.int64)
        self.th_start, self.th_cand = np.zeros(nn, dtype=np.int64), np.zeros(nn, dtype=np.int64)
        self.free_enough = np.maximum(FREE_ENOUGH_MIN // PAGE_SIZE, host.capacity // 16)

    def state_bytes_per_page(self) -> int:
        return self.prot_none.itemsize + self.scan_time.itemsize

    # ---- the scanner (task_numa_work) -----------------------------------------------------------------
    def on_tick(self, host: Host) -> None:
        tick = host.tick_no
        for i in np.flatnonzero(self.next_scan <= tick):
            self._scan(host, host.tenants[i], tick)
            self.next_scan[i] = tick + self.period_ticks
        self._adjust_thresholds(tick)

    def _scan(self, host: Host, t: Tenant, tick: int) -> None:
        """Arm the next scan_size of t's address space: present, unpinned slow-tier pages not yet armed
        (in tiering mode top-tier pages are skipped). A window with nothing to arm does not use up the
        pass; the walk goes on, up to 8 windows, and a pass stops at the end of the address space."""
        n = max(1, self.spec.scan_size // t.spec.page_size)
        off = int(self.scan_offset[t.index])
        for _ in range(NUMA_SCAN_MAX_SKIP):
            lo, hi = t.start + off, t.start + min(off + n, t.npages)
            arm = (self.is_slow[host.node[lo:hi]] & ~self.prot_none[lo:hi]
                   & ((host.flags[lo:hi] & PG_PINNED) == 0))
            idx = np.flatnonzero(arm) + lo
            self.prot_none[idx] = True
            self.scan_time[idx] = tick & SCAN_TIME_MASK
            host.flags[idx] &= ~PG_TLB_CACHED            # change_prot_numa flushes the range from the TLB
            host.vmstat["numa_pte_updates"] += idx.size * t.page_nr
            off = hi - t.start if hi < t.end else 0
            if idx.size or off == 0:
                break
        self.scan_offset[t.index] = off

    # ---- hint faults (do_numa_page) -------------------------------------------------------------------
    def on_access(self, host: Host, t: Tenant, slots: np.ndarray) -> None:
        faulted = np.unique(slots[self.prot_none[slots]])
        if faulted.size == 0:
            return
        self.prot_none[faulted] = False                   # the fault restores the PTE's protection
        host.vmstat["numa_hint_faults"] += faulted.size
        t.stats.hint_fault_time += faulted.size * self.spec.hint_fault_cost
        pages = faulted[self.is_slow[host.node[faulted]]]
        if pages.size == 0:
            return
        latency = ((host.tick_no - self.scan_time[pages].astype(np.int64)) & SCAN_TIME_MASK) * host.scenario.tick
        pages, latency = self.promotion_filter(host, pages, latency)
        if pages.size:
            self._promote(host, t, self._select(host, t, pages, latency))

    def promotion_filter(self, host: Host, pages: np.ndarray, latency: np.ndarray):
        """Which faulting slow pages go on to the hot-page test; NBT lets every one through."""
        return pages, latency

    def _select(self, host: Host, t: Tenant, pages: np.ndarray, latency: np.ndarray) -> np.ndarray:
        """should_numa_migrate_memory() in tiering mode, for a batch of faulting slow pages."""
        dst, pw, tick = t.spec.home_node, t.page_nr, host.tick_no
        spare = host.free_pages(dst) - int(host.wmark_promo[dst]) - int(self.free_enough[dst])
        n_free = int(min(pages.size, max(0, spare // pw)))
        if n_free:
            self.threshold[dst] = self.spec.hot_threshold    # the workload changed: reset the threshold
        if tick - self.rl_start[dst] >= self.window_ticks:
            self.rl_start[dst], self.rl_cand[dst] = tick, self.candidates[dst]
        hot = pages[n_free:][latency[n_free:] < self.threshold[dst]]
        in_window = self.candidates[dst] - self.rl_cand[dst] + pw * np.arange(1, hot.size + 1)
        self.candidates[dst] += hot.size * pw
        host.vmstat["pgpromote_candidate"] += hot.size * pw
        return np.concatenate([pages[:n_free], hot[in_window < self.rate_limit]])

    def _promote(self, host: Host, t: Tenant, pages: np.ndarray) -> None:
        """migrate_misplaced_page(): the target must stay above its high watermark (migrate_balanced_pgdat);
        where it would not, the promotion fails and kswapd is woken to demote."""
        dst, pw = t.spec.home_node, t.page_nr
        k = int(min(pages.size, max(0, (host.free_pages(dst) - int(host.wmark_high[dst])) // pw)))
        if k < pages.size:
            host.kswapd_wake[dst] = True
        if k == 0:
            return
        ok = pages[:k]
        tm = host._migrate(ok, np.full(k, pw, dtype=np.int64), host.node[ok].astype(np.int64), dst)
        host.vmstat["pgpromote_success"] += k * pw
        t.stats.migration_time += tm                      # the faulting task copies the page

    def _adjust_thresholds(self, tick: int) -> None:
        """Every 60 s, step each node's hot threshold by 2 x default / 16 so that the candidates of the last
        period stay within +-10% of rate limit x period; bounds [step, 2 x default]."""
        due = tick - self.th_start >= self.adjust_ticks
        if not due.any():
            return
        ref = self.spec.hot_threshold
        unit = 2 * ref / THRESHOLD_ADJUST_STEPS
        target = self.rate_limit * THRESHOLD_ADJUST_PERIOD
        diff = self.candidates - self.th_cand
        th = self.threshold
        th = np.where(due & (diff > target * 1.1), np.maximum(th - unit, unit), th)
        th = np.where(due & (diff < target * 0.9), np.minimum(th + unit, 2 * ref), th)
        self.threshold = th
        self.th_start = np.where(due, tick, self.th_start)
        self.th_cand = np.where(due, self.candidates, self.th_cand)


class TppTiering(NumaBalancingTiering):
    """TPP: NBT with the active-LRU promotion filter and WMARK_DEMOTE 2% by default."""
    name = "tpp"
    default_demote_scale_factor = TPP_DEMOTE_SCALE_FACTOR

    def promotion_filter(self, host: Host, pages: np.ndarray, latency: np.ndarray):
        """Only pages on the active LRU may be promoted; an inactive one is activated (moved to the active
        list's head) so that its next hint fault promotes it."""
        active = (host.flags[pages] & PG_ACTIVE) != 0
        inactive = pages[~active]
        if inactive.size:
            host.flags[inactive] |= PG_ACTIVE
            host._lru_add(inactive)
        return pages[active], latency[active]


MODES: dict[str, type[Tiering]] = {cls.name: cls for cls in (Tiering, NumaBalancingTiering, TppTiering)}


def make_tiering(host: Host) -> Tiering:
    spec = host.scenario.kernel.tiering
    return MODES[spec.mode](host, spec)
