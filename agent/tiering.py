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
- `damos`: Linux 6.11+ DAMON-based tiering after HMSDK's (SK hynix) setup: one kdamond per DRAM node,
  monitoring the tenants homed there, with two DAMOS schemes for the node and its slow peer --
  `migrate_hot` (slow -> DRAM) and `migrate_cold` (DRAM -> slow) -- each under a size quota per quota
  interval whose effective size is auto-tuned to a DRAM-used goal; on a host of more than two tiers the
  same pair of schemes for each next pair down the demotion chain (DRAM -> CXL, CXL -> PMEM), each goal
  on the pair's upper node. Details below.

With more than two memory tiers (scenario.NodeSpec.tier), NUMA-balancing tiering and TPP arm pages on every
tier below the top and promote a hot one straight to the faulting task's DRAM node, as Linux does (only
top-tier nodes are promotion targets: node_is_toptier); reclaim demotes tier by tier (host).

DAMOS tiering, as modelled (mm/damon/core.c, ops-common.c; DESIGN.md section 2):
- Regions. Each tenant is a DAMON target whose address space (its one VMA) is tiled by regions, initially
  `min_nr_regions` equal pieces. Every `sample_interval` each region's sampling address is a new random page
  of it; at the end of the interval the page's access is checked and the region's `nr_accesses` counts it.
  Every `aggr_interval`: merge (adjacent regions whose nr_accesses differ by <= max nr_accesses / 10, the
  result nr_accesses and age being size-weighted averages, no region above total size / min_nr_regions;
  the threshold doubles while the context has more than `max_nr_regions`), age update (age + 1, or 0 when
  nr_accesses moved by more than the threshold or between zero and non-zero), schemes, reset
  (last_nr_accesses = nr_accesses = 0), then split (each region into 2 -- or 3 if the count did not change
  and is below max / 3 -- random pieces of 10-90%, only while the context has at most max / 2 regions).
  Region bounds are in the tenant's pages (a 2 MiB THP tenant's region never splits a THP).
- Access check. DAMON's mkold test-and-clears the sampled PTE's Accessed bit and moves it into the page's
  PG_young (PG_idle set), which reclaim's page_referenced() still counts; so DAMON never changes what
  kswapd sees. The model keeps that state inside the mode and leaves `host.flags` alone: reclaim sees what
  it would see, and the idle_pages scanner is disturbed *less* than on a real kernel, where up to one page
  per region per sample interval has its PTE A bit cleared under the scanner (DAMON and page-idle tracking
  are not meant to run together). DAMON's mkold does not flush the TLB; that under-counting is not modelled.
- Per-sample access probability. The host's tick (100 ms) is far coarser than 5 ms; what is known is how
  many sampled accesses each page received this tick, each standing for `accesses_per_sample` real ones. A
  page with a real accesses in a tick of length T is taken as a Poisson process of rate a / T, so a sample
  interval dt finds it accessed with probability 1 - exp(-a dt / T); every sample of the tick uses the
  tick's rates (samples straddling ticks are cut at the tick boundary). Pages not present are never young.
- Schemes. `migrate_hot`: regions with nr_accesses >= `hot_min_accesses` (default 1 of 20 samples, a 5%
  access rate), any age, to the DRAM node. `migrate_cold`: regions with nr_accesses
  0 and age >= `cold_min_age`, to the slow peer. A scheme sees a region only through its pages on the
  scheme's source node and charges their size -- what the per-node physical-address kdamond of HMSDK sees
  of that range; the model's regions are per tenant virtual address space (DAMON's vaddr operations set)
  so that one sampled page stands for a tenant's neighbouring pages.
- Young-page filters, as samples/damon/mtier.c and HMSDK's damo set-up add them: migrate_hot migrates only
  the young pages of a region it applies to, migrate_cold only the old ones; young is a sampled access
  since the filter last checked the page (the check clears it, damon_folio_mkold). The region's pages on
  the source node are charged whether or not the filter passes them, as the kernel charges the region.
- Priority under the quota (damos_adjust_quota): scores 0..99 from access frequency (weight 10) and log2
  age (weight 1; the size weight is ignored by the kernel's scoring), cold score = 99 - hot score; a size
  histogram by score sets the minimum score whose cumulative size fills the effective quota; regions at or
  above it are applied in address order until `quota` bytes are charged in the `quota_reset_interval`
  window; the next window resumes past the last charged page.
- Quota goals (damos_set_effective_quota, damon_feed_loop_next_input): per window, score = current /
  target x 10000; esz_bp grows by esz_bp x (10000 - score) / 10000 below the goal, shrinks by as much above
  it, drops to the minimum (10000 bp = 1 byte) at twice the goal, and starts from that minimum -- so a
  scheme ramps up over tens of windows, as on a real kernel. migrate_hot's goal is `node_mem_used_bp` of
  the DRAM node at `dram_used_goal` (99.7%), migrate_cold's is `node_mem_free_bp` at 1 - goal + 0.2% (free
  0.5%, mtier.c's 50 bp): between the two both act, exchanging cold DRAM pages for hot slow ones. The
  authors start the kdamonds before the workload (damo start, then the benchmark): `kdamond_lead` is how
  long they ran before the tenants faulted their memory in; each of its windows feeds the goals the empty
  nodes (migrate_hot's quota doubles, migrate_cold's stays at its minimum), so 60 s gives migrate_hot its
  whole quota at boot. The default 0 starts them with the boot's already-faulted memory. esz
  never exceeds `quota`; unlike the kernel, esz_bp is also capped at quota x 10000 so a long stretch under
  the goal does not wind the loop up beyond the quota.
- Migration. Pages move in address order through `Host.migrate_pages` while the destination stays above its
  min watermark (DAMON allocates with GFP_NOWAIT: no reclaim, kswapd woken below low); pinned pages and
  pages that do not fit fail (pgmigrate_fail) but stay charged, as the kernel charges the region's size.
  Promotions count in pgpromote_success (the model's convention, as move_pages); kdamond's copy time is
  `kdamond_time`, and each scheme keeps the kernel's stats (nr/sz tried and applied, qt_exceeds). NUMA
  balancing is off in this mode, so kswapd balances to the high watermark.
- Consequences worth knowing when reading results. (1) The goals are absolute: kswapd keeps a node's free
  memory near its high watermark, so with pagetide's default watermarks (high 1.5%) DRAM never reaches the
  99.7% used goal, migrate_hot's quota grows ~1% per window from 1 byte and promotes nothing for minutes,
  and migrate_cold stays dormant; give a DAMOS scenario watermarks like a large real node (e.g. min 0.1%,
  low 0.2%, high 0.3%) or a `dram_used_goal` below 1 - high; even then a scheme near its goal grows its
  quota by only (goal - current) / goal per window: at 98.5% used (free at the 1.5% high watermark) that is
  1.2% a 1 s window, 692 windows to one 4 KiB page and 1593 to the 200 MiB quota -- so with `kdamond_lead`
  0 a DRAM node full at boot promotes nothing for 11 minutes; `pagetide bench` runs DAMOS with a 60 s lead.
  (2) DAMON finds hot and cold memory only where it is spatially clustered; the synthetic workloads
  scatter pages by a random permutation, so at 4 KiB granularity almost every region is mixed and
  migrate_hot applies to mixed regions, where the young filter picks their accessed pages; no region is
  idle long enough for migrate_cold (2 MiB-page tenants fare better).

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

from pagetide.common import units
from pagetide.common.options import Option, bandwidth, count, duration, ratio, size
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

DAMON_MAX_SUBSCORE = 100        # mm/damon/ops-common.c damon_hot_score(): subscores are 0..100,
DAMON_MAX_AGE_IN_LOG = 32       # ... age counts as log2(seconds), at most 32,
DAMOS_MAX_SCORE = 99            # ... and a region's priority score is 0..99
DAMOS_WEIGHT_NR_ACCESSES = 100  # quota weights of samples/damon/mtier.c (weight_nr_accesses 100, weight_age 100;
DAMOS_WEIGHT_AGE = 100          # its weight_sz 0 -- the kernel's scoring ignores the size weight anyway)
QUOTA_GOAL_BP = 10000           # damon_feed_loop_next_input(): score at the goal, and the minimum esz_bp
COLD_GOAL_GAP = 0.002           # migrate_cold's free goal is 0.2 point more than 1 - the used goal: 0.5%
                                # free at the 99.7% used goal, as samples/damon/mtier.c (node0_mem_free_bp 50)
MIN_NR_REGIONS_LOWEST = 3       # damon_set_attrs() rejects min_nr_regions < 3


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


@dataclass
class DamonTarget:
    """struct damon_target: one tenant's address space, tiled by regions [start[i], start[i + 1]) of its
    pages (the last one ends at the tenant's end)."""
    tenant: Tenant
    start: np.ndarray             # int64, ascending, start[0] == 0
    nr_accesses: np.ndarray       # samples that found the region's sampled page young, this aggregation
    last_nr_accesses: np.ndarray  # nr_accesses of the previous aggregation
    age: np.ndarray               # aggregations since the region's access frequency last changed

    @property
    def end(self) -> np.ndarray:
        return np.append(self.start[1:], self.tenant.npages)

    @property
    def nr_regions(self) -> int:
        return self.start.size

    def split_at(self, cut: int) -> None:
        """damon_split_region_at(): the region holding page offset `cut` becomes two at it, both with its state."""
        if not 0 < cut < self.tenant.npages:
            return
        i = int(np.searchsorted(self.start, cut, side="right")) - 1
        if self.start[i] != cut:
            self.take(np.insert(self.start, i + 1, cut), np.insert(np.arange(self.nr_regions), i + 1, i))

    def take(self, start: np.ndarray, parent: np.ndarray) -> None:
        """Replace the regions by `start`, each inheriting the state of region `parent` (a split)."""
        self.start = start
        self.nr_accesses = self.nr_accesses[parent]
        self.last_nr_accesses = self.last_nr_accesses[parent]
        self.age = self.age[parent]


@dataclass
class DamosStat:
    """A scheme's sysfs stats/: regions and bytes it was tried on (charged) and applied to (moved)."""
    nr_tried: int = 0
    sz_tried: int = 0
    nr_applied: int = 0
    sz_applied: int = 0
    qt_exceeds: int = 0           # quota windows that ended with the quota used up


@dataclass
class Damos:
    """One scheme of a context: an access pattern, a migrate action from `src` to `dst`, and its quota
    with one goal (struct damos, damos_quota, damos_quota_goal)."""
    action: str                   # "migrate_hot" or "migrate_cold"
    src: int
    dst: int
    min_nr_accesses: int
    max_nr_accesses: int
    min_age: int                  # in aggregation intervals
    goal_metric: str              # "node_mem_used_bp" or "node_mem_free_bp", of node `goal_nid`
    goal_nid: int
    goal_bp: int                  # target value, basis points
    quota_sz: int                 # bytes per reset interval
    esz_bp: int = 0               # effective quota x 10000, fed back from the goal
    esz: int = 0                  # effective quota of the current window, bytes
    charged_sz: int = 0
    charged_from: int | None = None   # sample count the current window started at
    min_score: int = 0            # regions scoring below it wait (damos_adjust_quota's histogram)
    charge_target_from: int | None = None   # target index and page offset the next window's walk starts
    charge_addr_from: int = 0               # from (the end of the region that used the quota up)
    next_apply: int = 0           # sample count of the next application (next_apply_sis)
    last_score: int = 0           # goal score of the last window (10000 = on the goal)
    stat: DamosStat = None

    def __post_init__(self):
        self.stat = DamosStat()


@dataclass
class DamonContext:
    """One kdamond: the tenants homed on DRAM node `dram` as targets, and the schemes of its node pairs."""
    dram: int
    slow: int
    targets: list[DamonTarget]
    schemes: list[Damos]
    rng: np.random.Generator
    last_nr_regions: int = 0      # kdamond_split_regions() remembers the count of its last call

    @property
    def nr_regions(self) -> int:
        return sum(tg.nr_regions for tg in self.targets)


class DamosTiering(Tiering):
    """Linux 6.11+ DAMON-based tiering (see the module docstring): DAMON region sampling per tenant, and per
    DRAM/slow node pair the DAMOS schemes migrate_hot and migrate_cold with goal-tuned quotas."""
    name = "damos"
    OPTIONS = DAMOS_OPTIONS

    @classmethod
    def check(cls, spec: TieringSpec) -> tuple[str, str] | None:
        if spec.aggr_interval < spec.sample_interval:
            fmt = units.format_duration
            return ("aggr_interval", f"must be at least sample_interval ({fmt(spec.sample_interval)}), "
                    f"got {fmt(spec.aggr_interval)}")
        if spec.max_nr_regions < spec.min_nr_regions:
            return ("max_nr_regions", f"must be at least min_nr_regions ({spec.min_nr_regions}), "
                    f"got {spec.max_nr_regions}")
        max_acc = cls.samples_per_aggr(spec)
        if spec.hot_min_accesses > max_acc:
            return ("hot_min_accesses", f"must be at most aggr_interval / sample_interval = {max_acc} samples, "
                    f"got {spec.hot_min_accesses}")
        return None

    @staticmethod
    def samples_per_aggr(spec: TieringSpec) -> int:
        return max(1, int(round(spec.aggr_interval / spec.sample_interval)))

    def __init__(self, host: Host, spec: TieringSpec):
        super().__init__(host, spec)
        self.tick = host.scenario.tick
        self.aggr_samples = self.samples_per_aggr(spec)       # damon_max_nr_accesses()
        self.reset_samples = max(1, int(round(spec.quota_reset_interval / spec.sample_interval)))
        self.apply_samples = (max(1, int(round(spec.apply_interval / spec.sample_interval)))
                              if spec.apply_interval else self.aggr_samples)
        self.aggr_us = int(round(spec.aggr_interval * 1e6))
        self.passed_samples = 0
        self.next_aggr = self.aggr_samples
        self.kdamond_time = 0.0
        # real accesses each page received this tick (from the host's sampled accesses)
        self.tick_accesses = np.zeros(host.nr_pages, dtype=np.float32)
        self._touched: list[np.ndarray] = []
        # the page's PTE Accessed bit or PG_young as the schemes' young filter reads it: set by an access,
        # cleared when a filter checks the page (damon_folio_mkold)
        self.young = np.zeros(host.nr_pages, dtype=bool)
        cold_age = int(spec.cold_min_age / spec.aggr_interval + 1e-9)
        used_bp = int(round(spec.dram_used_goal * QUOTA_GOAL_BP))
        free_bp = max(1, int(round((1 - spec.dram_used_goal + COLD_GOAL_GAP) * QUOTA_GOAL_BP)))
        self.contexts: list[DamonContext] = []
        for dram in np.flatnonzero(host.is_fast):
            dram = int(dram)
            slow = host.slow_node_of(dram)
            tenants = [t for t in host.tenants if t.spec.home_node == dram]
            if slow == dram or host.is_fast[slow] or not tenants:
                continue
            # the node pairs down the tiers (DRAM -> its slow node -> that node's demotion target ...), each
            # with a migrate_cold and a migrate_hot scheme; migrate_cold first, from the lowest pair up: it
            # makes the room migrate_hot fills
            pairs = [(dram, slow)]
            while host.demotion_target[pairs[-1][1]] >= 0 and len(pairs) < host.nr_tiers - 1:
                pairs.append((pairs[-1][1], int(host.demotion_target[pairs[-1][1]])))
            schemes = [Damos("migrate_cold", src=up, dst=low, min_nr_accesses=0, max_nr_accesses=0,
                             min_age=cold_age, goal_metric="node_mem_free_bp", goal_nid=up, goal_bp=free_bp,
                             quota_sz=spec.quota, next_apply=self.apply_samples)
                       for up, low in reversed(pairs)]
            schemes += [Damos("migrate_hot", src=low, dst=up, min_nr_accesses=spec.hot_min_accesses,
                              max_nr_accesses=self.aggr_samples, min_age=0, goal_metric="node_mem_used_bp",
                              goal_nid=up, goal_bp=used_bp, quota_sz=spec.quota, next_apply=self.apply_samples)
                        for up, low in pairs]
            rng = np.random.default_rng([host.scenario.seed, 0xDA305, dram])
            # damon_va_init_regions() gives every target min_nr_regions; with many targets the model caps the
            # context's total at max_nr_regions so that it starts within bounds (the kernel's first merge
            # would bring it there)
            total = min(len(tenants) * spec.min_nr_regions, spec.max_nr_regions)
            targets = [self._init_target(t, total // len(tenants) + (i < total % len(tenants)))
                       for i, t in enumerate(tenants)]
            self.contexts.append(DamonContext(dram, slow, targets, schemes, rng))
        self._lead(host)

    def _lead(self, host: Host) -> None:
        """The quota windows the kdamonds ran before the tenants faulted their memory in (`kdamond_lead`):
        each fed its goal the nodes as they were then, empty."""
        for _ in range(int(self.spec.kdamond_lead / self.spec.quota_reset_interval + 1e-9)):
            for ctx in self.contexts:
                for s in ctx.schemes:
                    self._set_effective_quota(host, s, empty=True)

    def state_bytes_per_page(self) -> int:
        return self.tick_accesses.itemsize + self.young.itemsize

    def relayout(self, host: Host, change) -> None:
        """A departed tenant's target is dropped, a shrunk one loses its regions past the new end, an arrival
        becomes a target of its home node's context with min_nr_regions regions (a tenant homed where no
        context runs stays unmonitored); schemes restart their walk at the first target."""
        self.tick_accesses = change.pages(self.tick_accesses, 0)
        self.young = change.pages(self.young, False)
        live = {id(t) for t in host.tenants}
        for ctx in self.contexts:
            known = {id(tg.tenant) for tg in ctx.targets}
            ctx.targets = [tg for tg in ctx.targets if id(tg.tenant) in live]
            for tg in ctx.targets:
                keep = tg.start < tg.tenant.npages
                if not keep.all():
                    tg.start, tg.nr_accesses = tg.start[keep], tg.nr_accesses[keep]
                    tg.last_nr_accesses, tg.age = tg.last_nr_accesses[keep], tg.age[keep]
            ctx.targets += [self._init_target(t, self.spec.min_nr_regions) for t in host.tenants
                            if t.spec.home_node == ctx.dram and id(t) not in known]
            for sc in ctx.schemes:
                sc.charge_target_from, sc.charge_addr_from = None, 0

    @staticmethod
    def _init_target(t: Tenant, nr_pieces: int) -> DamonTarget:
        """damon_va_evenly_split_region(): the VMA split into nr_pieces equal pieces (the last one takes the
        remainder); a tenant of fewer pages gets one region per page."""
        piece = max(1, t.npages // nr_pieces)
        start = np.arange(min(nr_pieces, t.npages), dtype=np.int64) * piece
        z = np.zeros(start.size, dtype=np.int64)
        return DamonTarget(t, start, z.copy(), z.copy(), z.copy())

    # ---- what the host tells the mode --------------------------------------------------------------------
    def on_access(self, host: Host, t: Tenant, slots: np.ndarray) -> None:
        if slots.size == 0:
            return
        uniq, counts = np.unique(slots, return_counts=True)
        self.tick_accesses[uniq] += (counts * t.workload.accesses_per_sample).astype(np.float32)
        self.young[uniq] = True
        self._touched.append(uniq)

    def on_tick(self, host: Host) -> None:
        """The kdamond's work during the tick that ran: its sample intervals, with an aggregation (merge,
        schemes, reset, split) at each aggregation boundary."""
        end = int((host.tick_no + 1) * self.tick / self.spec.sample_interval + 1e-6)
        while self.passed_samples < end:
            n = min(end, self.next_aggr) - self.passed_samples
            for ctx in self.contexts:
                self._sample(host, ctx, n)
            self.passed_samples += n
            if self.passed_samples == self.next_aggr:
                for ctx in self.contexts:
                    self._aggregate(host, ctx)
                self.next_aggr += self.aggr_samples
        for u in self._touched:
            self.tick_accesses[u] = 0
        self._touched.clear()

    # ---- monitoring --------------------------------------------------------------------------------------
    def _sample(self, host: Host, ctx: DamonContext, n: int) -> None:
        """n sample intervals: each checks one random page per region (damon_va_prepare_access_checks picks
        it, damon_va_check_accesses reads it back)."""
        k = self.spec.sample_interval / self.tick
        for tg in ctx.targets:
            t = tg.tenant
            size = tg.end - tg.start
            off = tg.start + (ctx.rng.random((n, tg.nr_regions)) * size).astype(np.int64)
            slots = off + t.start
            p_young = -np.expm1(-self.tick_accesses[slots].astype(np.float64) * k)
            young = (ctx.rng.random(slots.shape) < p_young) & (host.node[slots] >= 0)
            tg.nr_accesses += young.sum(axis=0)

    def _aggregate(self, host: Host, ctx: DamonContext) -> None:
        max_nr_accesses = max(int(tg.nr_accesses.max()) for tg in ctx.targets)
        self._merge(ctx, max_nr_accesses // 10)
        due = [s for s in ctx.schemes if self.passed_samples >= s.next_apply]
        if due:                                                  # kdamond_apply_schemes()
            for s in due:
                self._adjust_quota(host, ctx, s)
            self._apply_schemes(host, ctx, due)
            for s in due:
                s.next_apply = self.passed_samples + self.apply_samples
        for tg in ctx.targets:                                   # kdamond_reset_aggregated()
            tg.last_nr_accesses = tg.nr_accesses
            tg.nr_accesses = np.zeros_like(tg.nr_accesses)
        self._split(ctx)

    def _merge(self, ctx: DamonContext, threshold: int) -> None:
        """kdamond_merge_regions(): merge passes, doubling the threshold while there are too many regions."""
        total = sum(tg.tenant.spec.footprint for tg in ctx.targets)
        sz_limit = max(PAGE_SIZE, total // self.spec.min_nr_regions)    # damon_region_sz_limit()
        while True:
            for tg in ctx.targets:
                self._merge_target(tg, threshold, sz_limit)
            threshold = max(1, threshold * 2)
            if not (ctx.nr_regions > self.spec.max_nr_regions and threshold // 2 < self.aggr_samples):
                break

    @staticmethod
    def _merge_target(tg: DamonTarget, thres: int, sz_limit: int) -> None:
        """damon_merge_regions_of(): age each region, then merge it into its left neighbour when their
        nr_accesses differ by at most `thres` and the two fit in sz_limit bytes. The walk is sequential (the
        left neighbour may already be a merge), so it is a loop per region."""
        nr, last = tg.nr_accesses, tg.last_nr_accesses
        changed = (np.abs(nr - last) > thres) | ((nr == 0) != (last == 0))
        age = np.where(changed, 0, tg.age + 1)
        psz = tg.tenant.spec.page_size
        sizes = ((tg.end - tg.start) * psz).tolist()
        keep = [0]
        out_nr, out_age, out_sz = [int(nr[0])], [int(age[0])], [sizes[0]]
        for i, (a, g, z) in enumerate(zip(nr[1:].tolist(), age[1:].tolist(), sizes[1:]), start=1):
            pa, pz = out_nr[-1], out_sz[-1]
            if abs(pa - a) <= thres and pz + z <= sz_limit:
                out_nr[-1] = (pa * pz + a * z) // (pz + z)
                out_age[-1] = (out_age[-1] * pz + g * z) // (pz + z)
                out_sz[-1] = pz + z
            else:
                keep.append(i)
                out_nr.append(a)
                out_age.append(g)
                out_sz.append(z)
        keep = np.array(keep, dtype=np.int64)
        tg.start = tg.start[keep]
        tg.nr_accesses = np.array(out_nr, dtype=np.int64)
        tg.last_nr_accesses = tg.last_nr_accesses[keep]      # a merge keeps the left region's
        tg.age = np.array(out_age, dtype=np.int64)

    def _split(self, ctx: DamonContext) -> None:
        """kdamond_split_regions(): while the context has at most max / 2 regions, split each region into
        2 pieces (3 if the count did not change since the last call and is below max / 3), each cut leaving
        10-90% of the piece on its left; a region of 2 pages or less is not split."""
        nr = ctx.nr_regions
        if nr > self.spec.max_nr_regions // 2:
            return
        nr_subs = 3 if ctx.last_nr_regions == nr and nr < self.spec.max_nr_regions // 3 else 2
        for tg in ctx.targets:
            start, size = tg.start, tg.end - tg.start
            cuts = [start]
            for _ in range(nr_subs - 1):
                sub = ctx.rng.integers(1, 10, size=size.size) * size // 10
                ok = (size > 2) & (sub > 0) & (sub < size)
                cuts.append(start[ok] + sub[ok])
                size = np.where(ok, sub, size)
            new = np.unique(np.concatenate(cuts))
            tg.take(new, np.searchsorted(start, new, side="right") - 1)
        ctx.last_nr_regions = nr

    # ---- schemes -----------------------------------------------------------------------------------------
    def _hot_score(self, nr_accesses: np.ndarray, age: np.ndarray) -> np.ndarray:
        """damon_hot_score(): 0..99 from access frequency and log2 of the age in seconds (an idle region's
        age counts against it)."""
        freq = nr_accesses * DAMON_MAX_SUBSCORE // self.aggr_samples
        age_sec = age * self.aggr_us // 1_000_000
        age_log = np.zeros_like(age_sec)
        nz = age_sec > 0
        age_log[nz] = np.minimum(np.floor(np.log2(age_sec[nz])).astype(np.int64) + 1, DAMON_MAX_AGE_IN_LOG)
        age_log = np.where(freq == 0, -age_log, age_log) + DAMON_MAX_AGE_IN_LOG
        age_sub = age_log * DAMON_MAX_SUBSCORE // DAMON_MAX_AGE_IN_LOG // 2
        hot = ((DAMOS_WEIGHT_NR_ACCESSES * freq + DAMOS_WEIGHT_AGE * age_sub)
               // (DAMOS_WEIGHT_NR_ACCESSES + DAMOS_WEIGHT_AGE))
        return hot * DAMOS_MAX_SCORE // DAMON_MAX_SUBSCORE

    def _goal_current(self, host: Host, s: Damos, empty: bool = False) -> int:
        """damos_get_node_mem_bp(): the goal node's used or free memory in basis points (of the node
        before any tenant memory was faulted in, if `empty`)."""
        cap = int(host.capacity[s.goal_nid])
        free = cap if empty else host.free_pages(s.goal_nid)
        value = cap - free if s.goal_metric == "node_mem_used_bp" else free
        return value * QUOTA_GOAL_BP // cap

    def _set_effective_quota(self, host: Host, s: Damos, empty: bool = False) -> None:
        """damos_set_effective_quota() with damon_feed_loop_next_input()."""
        score = self._goal_current(host, s, empty) * QUOTA_GOAL_BP // s.goal_bp
        last = max(s.esz_bp, QUOTA_GOAL_BP)
        if score >= 2 * QUOTA_GOAL_BP:
            nxt = QUOTA_GOAL_BP
        elif score > QUOTA_GOAL_BP:
            nxt = max(last - last * (score - QUOTA_GOAL_BP) // QUOTA_GOAL_BP, QUOTA_GOAL_BP)
        else:
            nxt = last + last * (QUOTA_GOAL_BP - score) // QUOTA_GOAL_BP
        s.esz_bp = min(nxt, s.quota_sz * QUOTA_GOAL_BP)
        s.esz = min(s.esz_bp // QUOTA_GOAL_BP, s.quota_sz)
        s.last_score = score

    def _score(self, s: Damos, nr_accesses: np.ndarray, age: np.ndarray) -> np.ndarray:
        """The paddr operations' get_scheme_score(): damon_hot_score for migrate_hot, damon_cold_score
        (99 - hot) for migrate_cold."""
        hot = self._hot_score(nr_accesses, age)
        return DAMOS_MAX_SCORE - hot if s.action == "migrate_cold" else hot

    @staticmethod
    def min_score(hist: np.ndarray, esz: int) -> int:
        """damos_adjust_quota()'s threshold: summing the histogram's sizes from the highest score down, the
        score at which they first reach the effective quota (0 if they never do)."""
        present = np.flatnonzero(hist)
        if present.size == 0:
            return 0
        reach = np.flatnonzero(np.cumsum(hist[present[-1]::-1]) >= esz)
        return int(present[-1] - reach[0]) if reach.size else 0

    def _region_view(self, host: Host, tg: DamonTarget, s: Damos):
        """A target's regions as scheme `s` sees them: valid for its access pattern (__damos_valid_target,
        with min_sz_region one page of the source node), their scores, and their bytes on the source node."""
        t = tg.tenant
        on_src = host.node[t.start:t.end] == s.src
        src_pages = np.add.reduceat(on_src.astype(np.int64), tg.start)
        valid = ((tg.nr_accesses >= s.min_nr_accesses) & (tg.nr_accesses <= s.max_nr_accesses)
                 & (tg.age >= s.min_age) & (src_pages > 0))
        return valid, self._score(s, tg.nr_accesses, tg.age), src_pages * t.spec.page_size

    def _adjust_quota(self, host: Host, ctx: DamonContext, s: Damos) -> None:
        """damos_adjust_quota(): a new charge window resets the charge and tunes the effective quota; then the
        regions' sizes by score (the score histogram) set min_score, below which a region waits."""
        if s.charged_from is None or self.passed_samples >= s.charged_from + self.reset_samples:
            if s.esz and s.charged_sz >= s.esz:
                s.stat.qt_exceeds += 1
            s.charged_from, s.charged_sz = self.passed_samples, 0
            self._set_effective_quota(host, s)
        hist = np.zeros(DAMOS_MAX_SCORE + 1)
        for tg in ctx.targets:
            valid, score, sz = self._region_view(host, tg, s)
            hist += np.bincount(score[valid], weights=sz[valid], minlength=DAMOS_MAX_SCORE + 1)
        s.min_score = self.min_score(hist, s.esz)

    def _walk_start(self, ctx: DamonContext, s: Damos) -> tuple[int, int] | None:
        """damos_skip_charged_region(), settled before the walk: where scheme `s` starts this pass -- (target
        index, page offset) -- or None if its quota of this window is already used up. A window after the one
        that used up the quota starts one byte past the region that did (the kernel's r->ar.end + 1, so the
        next region's first page is split off and skipped), without wrapping: if that falls in the target's
        last region, the target is done."""
        if s.charged_sz >= s.esz:
            return None
        ti, addr = s.charge_target_from, s.charge_addr_from
        s.charge_target_from, s.charge_addr_from = None, 0
        if ti is None:
            return (0, 0)
        tg = ctx.targets[ti]
        if addr >= tg.start[-1]:
            return (ti + 1, 0)
        tg.split_at(addr)
        return (ti, addr)

    def _apply_schemes(self, host: Host, ctx: DamonContext, due: list[Damos]) -> None:
        """kdamond_apply_schemes()'s walk: every target's regions in address order, each offered to every due
        scheme in turn (damon_do_apply_schemes); a scheme takes a region past its walk start, valid for its
        access pattern and scoring at least its min_score, until its quota is used up. The model visits only
        the regions valid for some scheme at the start of the walk (acting on a region resets its age, which
        only makes it less eligible for the next scheme) and checks each again when it comes to it."""
        starts = [self._walk_start(ctx, s) for s in due]
        for ti, tg in enumerate(ctx.targets):
            live = [(s, st) for s, st in zip(due, starts)
                    if st is not None and st[0] <= ti and s.charged_sz < s.esz]
            if not live:
                continue
            visit = np.zeros(tg.nr_regions, dtype=bool)
            for s, st in live:
                valid, score, _ = self._region_view(host, tg, s)
                visit |= valid & (score >= s.min_score) & (tg.start >= (st[1] if st[0] == ti else 0))
            for a in tg.start[visit].tolist():
                i = int(np.searchsorted(tg.start, a))          # a split in the walk keeps a region's start
                for s, st in live:
                    if s.charged_sz >= s.esz or (st[0] == ti and a < st[1]):
                        continue
                    nr, age = tg.nr_accesses[i:i + 1], tg.age[i:i + 1]
                    if not (s.min_nr_accesses <= nr[0] <= s.max_nr_accesses and age[0] >= s.min_age
                            and self._score(s, nr, age)[0] >= s.min_score):
                        continue
                    self._apply_region(host, s, ti, tg, i)

    def _apply_region(self, host: Host, s: Damos, ti: int, tg: DamonTarget, i: int) -> None:
        """damos_apply_scheme() on region i: its pages on the source node, the region split where they would
        overfill the quota (damon_split_region_at), all of them charged; the young filter (an ops-layer filter,
        so after the charge) picks what migrates; the region's age restarts."""
        t = tg.tenant
        psz, pw = t.spec.page_size, t.page_nr
        a, b = int(tg.start[i]), int(tg.end[i])
        offs = a + np.flatnonzero(host.node[t.start + a:t.start + b] == s.src)
        if offs.size == 0:
            return                                              # below min_sz_region: not a valid target
        if s.charged_sz + offs.size * psz > s.esz:
            n = (s.esz - s.charged_sz) // psz                  # ALIGN_DOWN to the page
            if n == 0:
                s.stat.nr_tried += 1                            # damos_update_stat() of a zero-size try
                return
            offs = offs[:n]
            b = int(offs[-1]) + 1
            tg.split_at(b)
        sz = offs.size * psz
        s.charged_sz += sz
        if s.charged_sz >= s.esz:
            s.charge_target_from, s.charge_addr_from = ti, b + 1
        tg.age[i] = 0
        slots = offs + t.start
        # the young filter (mtier.c, HMSDK): migrate_hot allows only young pages, migrate_cold rejects them;
        # the check clears the page's young state
        young = self.young[slots]
        self.young[slots] = False
        slots = slots[young] if s.action == "migrate_hot" else slots[~young]
        movable = slots[(host.flags[slots] & PG_PINNED) == 0]
        fit = int(min(movable.size, max(0, (host.free_pages(s.dst) - int(host.wmark_min[s.dst])) // pw)))
        host.vmstat["pgmigrate_fail"] += (slots.size - fit) * pw
        s.stat.nr_tried += 1
        s.stat.sz_tried += sz
        if fit:
            self.kdamond_time += host.migrate_pages(movable[:fit], np.full(fit, pw, dtype=np.int64), s.src, s.dst)
            if s.action == "migrate_hot":
                host.vmstat["pgpromote_success"] += fit * pw
            s.stat.nr_applied += 1
            s.stat.sz_applied += fit * psz
        if host.free_pages(s.dst) < host.wmark_low[s.dst]:
            host.wakeup_kswapd(s.dst)

MODES: dict[str, type[Tiering]] = {cls.name: cls for cls in (Tiering, NumaBalancingTiering, TppTiering,
                                                             DamosTiering)}


def make_tiering(host: Host) -> Tiering:
    spec = host.scenario.kernel.tiering
    return MODES[spec.mode](host, spec)
