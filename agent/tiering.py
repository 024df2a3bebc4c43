"""Kernel promotion modes of the host model (DESIGN.md sections 2 and 4), registered by name and chosen by a
scenario's `host.kernel.tiering: {mode: ..., ...options}`.

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
- `damos`: Linux 6.11+ DAMON-based tiering with samples/damon/mtier.c's schemes: kdamonds monitoring the
  tenants homed on each DRAM node (one for all its schemes, or one per scheme watching its source node, as
  mtier.c and HMSDK run them), with two DAMOS schemes for the node and its slow peer -- `migrate_hot`
  (slow -> DRAM) and `migrate_cold` (DRAM -> slow) -- each under a size quota per quota interval whose
  effective size is auto-tuned to a DRAM-used (free) goal; on a host of more than two tiers the same pair
  of schemes for each next pair down the demotion chain (DRAM -> CXL, CXL -> PMEM), each goal on the
  pair's upper node. Details in agent/damon.py.

With more than two memory tiers (scenario.NodeSpec.tier), NUMA-balancing tiering and TPP arm pages on every
tier below the top and promote a hot one straight to the faulting task's DRAM node, as Linux does (only
top-tier nodes are promotion targets: node_is_toptier); reclaim demotes tier by tier (host).

DAMOS tiering is agent/damon.py's model of DAMON and DAMOS (its docstring says what is modelled, how,
and what follows from it when reading results); `DamosTiering` below is that model as the `damos` mode.

A mode is a `Tiering` object the host calls at two points: `on_access` with the slots a tenant accessed
this tick (after the hardware A/D bits are set) and `on_tick` at the end of every tick (after kswapd). A mode
reads the host's page arrays, watermarks and free pages, keeps its own per-page state, and acts through the
host's kernel-named operations only: NBT and TPP promote with `migrate_misplaced_folio`, DAMOS migrates with
`migrate_pages`, TPP activates with `folio_activate`, the NUMA scan flushes with `flush_tlb_pages`, and a
full target gets `wakeup_kswapd`. All migrations thus go through `Host.migrate_pages`, so node usage,
ping-pong and migration counters stay exact. A mode's tunables are its `OPTIONS`, the keys of
`host.kernel.tiering` besides `mode` (parsed by `pagetide.common.options`); their defaults are TieringSpec's.
Time inside NBT/TPP is counted in ticks: a hint-fault latency is (fault tick - scan tick) x tick; DAMOS
counts DAMON sample intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from pagetide.common.options import Option, bandwidth, count, duration, flag, ratio, size
from pagetide.agent.damon import MIN_NR_REGIONS_LOWEST, Damon
from pagetide.agent.pageflags import PAGE_SIZE, PG_ACTIVE, PG_PINNED

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
class TieringSpec:
    """A scenario's `host.kernel.tiering`: the mode and every mode's tunables (a mode reads its own)."""
    mode: str = "none"
    scan_size: int = 256 << 20           # numa_balancing_scan_size_mb: address space armed per scan period
    scan_period: float = 1.0             # numa_balancing_scan_period_min (1 s; the kernel adapts up to 60 s)
    hot_threshold: float = 1.0           # numa_balancing_hot_threshold_ms (1000)
    promote_rate_limit: float = float(65536 << 20)  # numa_balancing_promote_rate_limit_MBps (65536, MiB/s)
    hint_fault_cost: float = 1e-6        # a NUMA hint fault is a minor fault: ~1 us of the faulting task
    sample_interval: float = 5e-3        # DAMON monitoring_attrs: sample_us 5000
    aggr_interval: float = 0.1           # ... aggr_us 100000
    min_nr_regions: int = 10             # ... nr_regions/min
    max_nr_regions: int = 1000           # ... nr_regions/max
    quota: int = 200 << 20               # DAMOS quotas/bytes per reset interval (pagetide's default)
    quota_reset_interval: float = 1.0    # ... quotas/reset_interval_ms
    apply_interval: float = 0.0          # DAMOS apply_interval_us; 0: every aggregation (mtier.c: 1 s)
    hot_min_accesses: int = 1            # migrate_hot access_pattern nr_accesses/min (5% of 20 samples)
    cold_min_age: float = 1.0            # migrate_cold access_pattern age/min (10 aggregations)
    dram_used_goal: float = 0.997        # migrate_hot quota goal node_mem_used_bp 9970 (DESIGN.md section 2)
    kdamond_lead: float = 0.0            # how long the kdamonds ran before the tenants faulted their memory in
    intervals_aggrs: int = 0             # monitoring_attrs intervals_goal aggrs; 0: no intervals auto-tuning
    intervals_access_bp: float = 0.04    # ... access_bp 400 (mtier.c): the access ratio DAMON aims to observe
    intervals_min_sample: float = 5e-3   # ... min_sample_us 5000 (mtier.c)
    intervals_max_sample: float = 10.0   # ... max_sample_us 10000000 (mtier.c)
    per_node_kdamonds: bool = False      # one kdamond per scheme watching its source node (mtier.c, HMSDK)


NBT_OPTIONS: dict[str, Option] = {
    "scan_size": Option(size(PAGE_SIZE, 1 << 40), TieringSpec.scan_size,
                        "address space armed for hint faults per scan period (numa_balancing_scan_size_mb)"),
    "scan_period": Option(duration(1.0, 60.0), TieringSpec.scan_period,
                          "period of a task's NUMA scan (numa_balancing_scan_period_min_ms)"),
    "hot_threshold": Option(duration(1e-3, 3600.0), TieringSpec.hot_threshold,
                            "hint-fault latency below which a page is hot, before it adapts "
                            "(numa_balancing_hot_threshold_ms)"),
    "promote_rate_limit": Option(bandwidth(PAGE_SIZE, float(1 << 50)), TieringSpec.promote_rate_limit,
                                 "bytes of promotion candidates per second per node "
                                 "(numa_balancing_promote_rate_limit_MBps)"),
    "hint_fault_cost": Option(duration(0.0, 1e-3), TieringSpec.hint_fault_cost,
                              "time a NUMA hint fault costs the faulting task"),
}

DAMOS_OPTIONS: dict[str, Option] = {
    "sample_interval": Option(duration(1e-4, 1.0), TieringSpec.sample_interval, "DAMON sampling interval (sample_us)"),
    "aggr_interval": Option(duration(1e-3, 60.0), TieringSpec.aggr_interval, "DAMON aggregation interval (aggr_us)"),
    "min_nr_regions": Option(count(MIN_NR_REGIONS_LOWEST, 1 << 20), TieringSpec.min_nr_regions,
                             "fewest regions of a context (nr_regions/min)"),
    "max_nr_regions": Option(count(MIN_NR_REGIONS_LOWEST, 1 << 20), TieringSpec.max_nr_regions,
                             "most regions of a context (nr_regions/max)"),
    "quota": Option(size(PAGE_SIZE, 1 << 50), TieringSpec.quota, "bytes a scheme may migrate per reset interval"),
    "quota_reset_interval": Option(duration(1e-3, 3600.0), TieringSpec.quota_reset_interval,
                                   "the quota's charge window (quotas/reset_interval_ms)"),
    "apply_interval": Option(duration(0.0, 3600.0), TieringSpec.apply_interval,
                             "how often the schemes are applied (apply_interval_us); 0: every aggregation"),
    "hot_min_accesses": Option(count(1, 1 << 20), TieringSpec.hot_min_accesses,
                               "migrate_hot: fewest samples per aggregation that found a region accessed"),
    "cold_min_age": Option(duration(0.0, 86400.0), TieringSpec.cold_min_age, "migrate_cold: how long a region is idle"),
    "dram_used_goal": Option(ratio(0.01, 0.999), TieringSpec.dram_used_goal,
                             "migrate_hot's quota goal: the DRAM node's used share (node_mem_used_bp)"),
    "kdamond_lead": Option(duration(0.0, 3600.0), TieringSpec.kdamond_lead,
                           "how long the kdamonds ran, on empty nodes, before the tenants faulted their memory in"),
    "intervals_aggrs": Option(count(0, 1 << 20), TieringSpec.intervals_aggrs,
                              "intervals auto-tuning: aggregations between tunings (intervals_goal/aggrs); 0: off"),
    "intervals_access_bp": Option(ratio(1e-4, 1.0), TieringSpec.intervals_access_bp,
                                  "intervals auto-tuning: the share of samples DAMON aims to find accessed "
                                  "(intervals_goal/access_bp)"),
    "intervals_min_sample": Option(duration(1e-4, 3600.0), TieringSpec.intervals_min_sample,
                                   "intervals auto-tuning: the shortest sampling interval "
                                   "(intervals_goal/min_sample_us)"),
    "intervals_max_sample": Option(duration(1e-4, 3600.0), TieringSpec.intervals_max_sample,
                                   "intervals auto-tuning: the longest sampling interval "
                                   "(intervals_goal/max_sample_us)"),
    "per_node_kdamonds": Option(flag(), TieringSpec.per_node_kdamonds,
                                "one kdamond per scheme, watching the scheme's source node (samples/damon/mtier.c, "
                                "HMSDK); false: one per DRAM node for all its schemes"),
}


class Tiering:
    """Mode `none`: nothing promotes. The base of every mode."""
    name = "none"
    OPTIONS: ClassVar[dict[str, Option]] = {}   # the mode's keys of `host.kernel.tiering`, besides `mode`
    default_demote_scale_factor: float | None = None   # a mode's own default for the kernel setting
    balance_to_promo = False           # kswapd balances nodes to WMARK_PROMO (memory-tiering mode)

    def __init__(self, host: Host, spec: TieringSpec):
        self.spec = spec

    def on_access(self, host: Host, t: Tenant, slots: np.ndarray) -> None:
        """Slots (with repeats) tenant t accessed this tick, all present, A/D bits already set."""

    def on_tick(self, host: Host) -> None:
        """End of a tick, after kswapd; host.tick_no is still the tick that ran."""

    @classmethod
    def check(cls, spec: TieringSpec) -> tuple[str, str] | None:
        """Consistency of the mode's parameters together: (parameter, reason) of the first problem, or None."""
        return None

    def state_bytes_per_page(self) -> int:
        return 0

    def relayout(self, host: Host, change) -> None:
        """The host's tenant set changed (agent/churn.py Relayout): follow it in the mode's state."""


class NumaBalancingTiering(Tiering):
    """Linux 6.1 NUMA-balancing memory tiering. Per page: `prot_none` (the PTE is armed for a hint fault)
    and `scan_time` (tick of arming, mod 2^16); per tenant a scan cursor; per target node the hot
    threshold, rate-limit window and candidate counts (the kernel keeps them in pglist_data)."""
    name = "nbt"
    OPTIONS = NBT_OPTIONS
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

    def relayout(self, host: Host, change) -> None:
        """Armed PTEs stay armed; a new tenant's first scan comes one scan period after it arrived; a cursor past
        a shrunk tenant's end starts over."""
        self.prot_none = change.pages(self.prot_none, False)
        self.scan_time = change.pages(self.scan_time, 0)
        npages = np.array([t.npages for t in host.tenants], dtype=np.int64)
        off = change.tenants(self.scan_offset, 0)
        self.scan_offset = np.where(off < npages, off, 0)
        self.next_scan = change.tenants(self.next_scan, host.tick_no + self.period_ticks - 1)

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
            host.flush_tlb_pages(idx)                    # change_prot_numa flushes the range from the TLB
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
            host.migrate_misplaced_folio(t, self._select(host, t, pages, latency), t.spec.home_node)

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
            host.folio_activate(inactive)
        return pages[active], latency[active]


class DamosTiering(Damon, Tiering):
    """Linux 6.11+ DAMON-based tiering: agent/damon.py's kdamonds and schemes as the `damos` mode."""
    name = "damos"
    OPTIONS = DAMOS_OPTIONS


MODES: dict[str, type[Tiering]] = {cls.name: cls for cls in (Tiering, NumaBalancingTiering, TppTiering,
                                                             DamosTiering)}


def make_tiering(host: Host) -> Tiering:
    spec = host.scenario.kernel.tiering
    return MODES[spec.mode](host, spec)
