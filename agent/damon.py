"""DAMON and DAMOS as the host model runs them: the `damos` tiering mode's kdamonds (agent/tiering.py
DamosTiering), after mm/damon/core.c, ops-common.c and the paddr operations set.

What is modelled (DESIGN.md section 2):
- Kdamonds. By default one per DRAM node, monitoring the tenants homed there, with both schemes of each
  node pair; with `per_node_kdamonds` one per scheme, watching only the scheme's source node -- the layout
  of samples/damon/mtier.c (a kdamond for node 1's memory running migrate_hot, one for node 0's running
  migrate_cold), of damo's tiering example script and of HMSDK's gen_config.py (`--numa_node SRC` per
  scheme). Each kdamond has its own regions, sampling and (tuned) intervals.
- Regions. Each tenant is a DAMON target whose address space (its one VMA) is tiled by regions, initially
  `min_nr_regions` equal pieces. Every `sample_interval` each region's sampling address is a new random page
  of it (of its pages on the watched node, for a per-node kdamond; a region with none is not sampled); at
  the end of the interval the page's access is checked and the region's `nr_accesses` counts it.
  Every `aggr_interval`: merge (adjacent regions whose nr_accesses differ by <= max nr_accesses / 10, the
  result nr_accesses and age being size-weighted averages, no region above total size / min_nr_regions;
  the threshold doubles while the context has more than `max_nr_regions`), age update (age + 1, or 0 when
  nr_accesses moved by more than the threshold or between zero and non-zero -- the latter a 2025 patch),
  the schemes due (every aggregation, or every `apply_interval`; one due between aggregations -- once tuned
  aggregation intervals outgrow apply_interval -- waits for the next, where the kernel applies it at the due
  sample on the moving-sum nr_accesses_bp), intervals tuning (below), reset
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
  tick's rates. A sample interval that runs past the tick (tuned intervals reach seconds) keeps its sampled
  pages and adds each tick's expected accesses a x (its part of the tick) / T until it ends, and finds the
  page accessed with probability 1 - exp(-their sum). Pages not present are never young.
- Schemes. `migrate_hot`: regions with nr_accesses >= `hot_min_accesses` (default 1 of 20 samples, a 5%
  access rate), any age, to the DRAM node. `migrate_cold`: regions with nr_accesses
  0 and age >= `cold_min_age`, to the slow peer. A scheme sees a region only through its pages on the
  scheme's source node and charges their size -- what the per-node physical-address kdamond of HMSDK sees
  of that range; the model's regions are per tenant virtual address space (DAMON's vaddr operations set)
  so that one sampled page stands for a tenant's neighbouring pages.
- Young-page filters, as samples/damon/mtier.c and HMSDK's damo set-up add them: migrate_hot migrates only
  the young pages of a region it applies to, migrate_cold only the old ones; young is a sampled access
  since the filter last checked the page (the check clears it, damon_folio_mkold). The young filter is an
  operations-layer filter: damos_apply_scheme() charges the region first (core-layer filters, address and
  target, would act before the charge), so the region's pages on the source node are charged whether or not
  the filter passes them.
- Priority under the quota (damos_adjust_quota, kdamond_apply_schemes): when schemes are due, each one's
  charge window is renewed if `quota_reset_interval` has passed and its regions' sizes are summed by score
  -- 0..99 from access frequency and log2 age in seconds, weighted 100 and 100 as samples/damon/mtier.c
  sets them (the kernel's scoring ignores the size weight), cold score = 99 - hot score -- and the
  minimum score is the one at which those sizes, from the highest score down, first reach the effective
  quota. All of that is settled before any scheme acts. Then one walk offers each target's regions, in
  address order, to every due scheme in turn (damon_do_apply_schemes): a scheme takes a region valid for
  its access pattern and scoring at least its minimum, so under a tight quota the hottest regions go first
  wherever they are, and regions of equal score in address order. A region whose source pages would
  overfill the quota is split where they do (damon_split_region_at) and charged up to it; acting resets the
  region's age (a region acted on ranks lower next time). The window after the one that used the quota up
  starts one byte past the charged region (r->ar.end + 1, so the next region's first page is split off and
  skipped; damos_skip_charged_region) and does not wrap: regions before it wait for the window after.
- Intervals auto-tuning (Linux 6.15 `monitoring_attrs/intervals_goal`, off unless `intervals_aggrs` is set;
  samples/damon/mtier.c sets access_bp 400, aggrs 3, min_sample_us 5000, max_sample_us 10 s, the options'
  defaults): every `intervals_aggrs` aggregations, kdamond_tune_intervals() scores the last aggregation's
  size-weighted share of samples that found their region accessed against `intervals_access_bp`, feeds it
  to the feedback loop below (from 10^8), halves reductions (so an interval at most doubles or halves per
  tuning) and scales the sampling interval within [`intervals_min_sample`, `intervals_max_sample`], the
  aggregation interval staying 20 (aggr / sample) samples; damon_set_attrs() keeps the regions' ages in
  time (age x old / new aggregation interval) and re-times the schemes' next application. Quiet memory
  thus gets longer intervals -- a sample then spans enough accesses to tell warm from cold -- and busy
  memory the 5 ms minimum. A kdamond's share counts the memory it watches: its tenants' whole address
  space, or (`per_node_kdamonds`, as in mtier.c) the pages on its node, so the promotion kdamond tunes on
  the slow node alone.
- Quota goals (damos_set_effective_quota, damon_feed_loop_next_input): per window, score = current /
  target x 10000; esz_bp grows by esz_bp x (10000 - score) / 10000 below the goal, shrinks by as much above
  it, drops to the minimum (10000 bp = 1 byte) at twice the goal, and starts from that minimum -- so a
  scheme ramps up over tens of windows, as on a real kernel. migrate_hot's goal is `node_mem_used_bp` of
  the DRAM node at `dram_used_goal` (99.7%), migrate_cold's is `node_mem_free_bp` at 1 - goal + 0.2% (free
  0.5%, mtier.c's 50 bp): between the two both act, exchanging cold DRAM pages for hot slow ones (the node goal
  metrics and samples/damon/mtier.c are Linux 6.16's, the migrate actions 6.11's). The
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
  idle long enough for migrate_cold (2 MiB-page tenants fare better). (3) A DRAM node full at boot gives
  each application only the room kswapd made (the high - min watermark gap, 1.5% of DRAM with the default
  watermarks), since migrate_cold is dormant at 1.5% free: promotion per second scales with how often
  the schemes run -- 10 times a second at every aggregation, once with mtier.c's 1 s apply_interval (the
  model's kswapd runs once a tick, not alongside the migration). (4) Intervals tuning and apply_interval
  interact as the kernel's code has it: every tuning whose adaptation is not exactly 1 calls
  damon_set_attrs(), which sets each scheme's next application apply_interval from now (even when the
  sampling interval stays clamped at its minimum). With mtier.c's values a tuning comes every 60 samples
  and a 1 s application 1 s / sample_interval samples away, so a kdamond sampling faster than 16.7 ms
  never applies its scheme: busy memory (5 ms) never demotes or promotes, quiet memory does, about once per
  tuning. Read from core.c as of the 6.15-6.19 sources; not verified on a running kernel (the qemu guest's
  6.12 kernel predates intervals_goal). (5) On `pagetide bench`'s hosts migrate_hot's effective quota,
  once ramped up, is its whole 200 MiB, more than the eligible slow memory, so the score histogram's
  minimum is 0 in every application (zipf and drift at DRAM 1/2, 1/4, 1/8: 350 of 350) and the hotness
  order never binds; what limits promotion is the room of (3), taken by the first young pages in walk
  order, the rest failing (pgmigrate_fail 0.9-2.0 GiB a 35 s run). The quota orders regions by hotness
  only where it is smaller than the memory eligible for the scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pagetide.common import units
from pagetide.agent.pageflags import PAGE_SIZE, PG_PINNED

if TYPE_CHECKING:
    from pagetide.agent.host import Host, Tenant
    from pagetide.agent.tiering import TieringSpec

DAMON_MAX_SUBSCORE = 100        # mm/damon/ops-common.c damon_hot_score(): subscores are 0..100,
DAMON_MAX_AGE_IN_LOG = 32       # ... age counts as log2(seconds), at most 32,
DAMOS_MAX_SCORE = 99            # ... and a region's priority score is 0..99
DAMOS_WEIGHT_NR_ACCESSES = 100  # quota weights of samples/damon/mtier.c (weight_nr_accesses 100, weight_age 100;
DAMOS_WEIGHT_AGE = 100          # its weight_sz 0 -- the kernel's scoring ignores the size weight anyway)
QUOTA_GOAL_BP = 10000           # damon_feed_loop_next_input(): score at the goal, and the minimum esz_bp
COLD_GOAL_GAP = 0.002           # migrate_cold's free goal is 0.2 point more than 1 - the used goal: 0.5%
                                # free at the 99.7% used goal, as samples/damon/mtier.c (node0_mem_free_bp 50)
MIN_NR_REGIONS_LOWEST = 3       # damon_set_attrs() rejects min_nr_regions < 3


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
    charged_from: int | None = None   # kdamond time (us) the current window started at (jiffies)
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
    """One kdamond: the tenants homed on DRAM node `dram` as targets, and the schemes of its node pairs --
    all of them, or (`per_node_kdamonds`) one, the kdamond then watching only the pages on that scheme's
    source node `node`."""
    dram: int
    slow: int
    targets: list[DamonTarget]
    schemes: list[Damos]
    rng: np.random.Generator
    sample_us: int                # its monitoring intervals (attrs.sample_interval, aggr_interval), which
    aggr_us: int                  # the intervals auto-tuning changes
    next_aggr: int                # sample count of the next aggregation (next_aggregation_sis)
    next_tune: int                # ... and of the next intervals tuning (next_intervals_tune_sis)
    passed_samples: int = 0
    clock_us: int = 0             # time at the end of the last finished sample interval
    pending: list[tuple[np.ndarray, np.ndarray]] | None = None   # the sample interval running past the
                                  # tick: per target its sampled slots and their expected accesses so far
    last_nr_regions: int = 0      # kdamond_split_regions() remembers the count of its last call
    node: int | None = None       # the node whose memory it watches; None: its targets' pages on any node

    @property
    def nr_regions(self) -> int:
        return sum(tg.nr_regions for tg in self.targets)


def damon_feed_loop_next_input(last: int, score: int) -> int:
    """mm/damon/core.c damon_feed_loop_next_input(): the next input for a score of 10000 at the goal, the
    input and the score taken as proportional -- last x (1 + (goal - score) / goal), at least 10000; the
    minimum at twice the goal."""
    if score >= 2 * QUOTA_GOAL_BP:
        return QUOTA_GOAL_BP
    if score > QUOTA_GOAL_BP:
        return max(last - last * (score - QUOTA_GOAL_BP) // QUOTA_GOAL_BP, QUOTA_GOAL_BP)
    return last + last * (QUOTA_GOAL_BP - score) // QUOTA_GOAL_BP


class Damon:
    """DAMON and DAMOS in the host model (see the module docstring): per DRAM node, kdamonds sampling the
    regions of the tenants homed there, and the node pairs' migrate_hot and migrate_cold schemes with
    goal-tuned quotas. The `damos` tiering mode (agent/tiering.py DamosTiering) is this class as a mode:
    it takes the host's calls (on_access, on_tick, relayout) and reads its own options from the spec."""

    @classmethod
    def check(cls, spec: TieringSpec) -> tuple[str, str] | None:
        fmt = units.format_duration
        if spec.aggr_interval < spec.sample_interval:
            return ("aggr_interval", f"must be at least sample_interval ({fmt(spec.sample_interval)}), "
                    f"got {fmt(spec.aggr_interval)}")
        if spec.max_nr_regions < spec.min_nr_regions:
            return ("max_nr_regions", f"must be at least min_nr_regions ({spec.min_nr_regions}), "
                    f"got {spec.max_nr_regions}")
        if spec.intervals_aggrs:                         # damon_valid_intervals_goal()
            if spec.intervals_max_sample < spec.intervals_min_sample:
                return ("intervals_max_sample", f"must be at least intervals_min_sample "
                        f"({fmt(spec.intervals_min_sample)}), got {fmt(spec.intervals_max_sample)}")
            if not spec.intervals_min_sample <= spec.sample_interval <= spec.intervals_max_sample:
                return ("sample_interval", f"must be within [intervals_min_sample, intervals_max_sample] = "
                        f"[{fmt(spec.intervals_min_sample)}, {fmt(spec.intervals_max_sample)}], "
                        f"got {fmt(spec.sample_interval)}")
        max_acc = cls.samples_per_aggr(spec)
        if spec.hot_min_accesses > max_acc:
            return ("hot_min_accesses", f"must be at most aggr_interval / sample_interval = {max_acc} samples, "
                    f"got {spec.hot_min_accesses}")
        return None

    @staticmethod
    def samples_per_aggr(spec: TieringSpec) -> int:
        return max(1, int(round(spec.aggr_interval / spec.sample_interval)))

    def __init__(self, host: Host, spec: TieringSpec):
        self.spec = spec
        self.tick_us = int(round(host.scenario.tick * 1e6))
        self.aggr_samples = self.samples_per_aggr(spec)       # attrs.aggr_samples, damon_max_nr_accesses()
        self.reset_us = int(round(spec.quota_reset_interval * 1e6))
        self.apply_us = int(round(spec.apply_interval * 1e6))
        sample_us = int(round(spec.sample_interval * 1e6))
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
                             quota_sz=spec.quota)
                       for up, low in reversed(pairs)]
            schemes += [Damos("migrate_hot", src=low, dst=up, min_nr_accesses=spec.hot_min_accesses,
                              max_nr_accesses=self.aggr_samples, min_age=0, goal_metric="node_mem_used_bp",
                              goal_nid=up, goal_bp=used_bp, quota_sz=spec.quota)
                        for up, low in pairs]
            # damon_va_init_regions() gives every target min_nr_regions; with many targets the model caps the
            # context's total at max_nr_regions so that it starts within bounds (the kernel's first merge
            # would bring it there)
            total = min(len(tenants) * spec.min_nr_regions, spec.max_nr_regions)
            groups = ([([s], s.src) for s in schemes] if spec.per_node_kdamonds else [(schemes, None)])
            for k, (group, node) in enumerate(groups):
                rng = np.random.default_rng([host.scenario.seed, 0xDA305, dram] + ([k] if k else []))
                targets = [self._init_target(t, total // len(tenants) + (i < total % len(tenants)))
                           for i, t in enumerate(tenants)]
                ctx = DamonContext(dram, slow, targets, group, rng, sample_us, sample_us * self.aggr_samples,
                                   next_aggr=self.aggr_samples, next_tune=self.aggr_samples * spec.intervals_aggrs,
                                   node=node)
                for s in group:                                  # kdamond_init_ctx()
                    self._set_next_apply(ctx, s)
                self.contexts.append(ctx)
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
            if ctx.pending is not None:                     # the running sample restarts on the new layout
                ctx.pending = [(slots, np.zeros(slots.shape)) for slots in self._pick(host, ctx, 1)]

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
        """Each kdamond's work during the tick that ran: its sample intervals (the last may run on into the
        next tick), with an aggregation at each aggregation boundary."""
        t0, t1 = host.tick_no * self.tick_us, (host.tick_no + 1) * self.tick_us
        for ctx in self.contexts:
            self._monitor(host, ctx, t0, t1)
        for u in self._touched:
            self.tick_accesses[u] = 0
        self._touched.clear()

    def _monitor(self, host: Host, ctx: DamonContext, t0: int, t1: int) -> None:
        """Sample intervals through the tick [t0, t1) (microseconds). Those wholly inside it take the tick's
        access rates at once; one that began in an earlier tick adds this tick's expected accesses of its
        sampled pages to the earlier ones', and is checked when it ends."""
        while True:
            end = ctx.clock_us + ctx.sample_us
            if ctx.pending is not None:
                self._expect(ctx.pending, min(end, t1) - max(ctx.clock_us, t0))
                if end > t1:
                    return
                self._check(host, ctx, ctx.pending)
                ctx.pending, n = None, 1
            elif end > t1:
                if ctx.clock_us < t1:                   # an interval starting in this tick, ending later
                    ctx.pending = [(slots, np.zeros(slots.shape)) for slots in self._pick(host, ctx, 1)]
                    self._expect(ctx.pending, t1 - ctx.clock_us)
                return
            else:
                n = min((t1 - ctx.clock_us) // ctx.sample_us, ctx.next_aggr - ctx.passed_samples)
                self._sample(host, ctx, n)
            ctx.passed_samples += n
            ctx.clock_us += n * ctx.sample_us
            if ctx.passed_samples >= ctx.next_aggr:
                self._aggregate(host, ctx)

    def _pick(self, host: Host, ctx: DamonContext, n: int) -> list[np.ndarray]:
        """damon_va_prepare_access_checks() for n sample intervals: a random page of each region, per target."""
        return [self._pick_target(host, ctx, tg, n) for tg in ctx.targets]

    @staticmethod
    def _pick_target(host: Host, ctx: DamonContext, tg: DamonTarget, n: int) -> np.ndarray:
        """Slots of n random pages per region, shape (n, regions); a kdamond watching one node picks among the
        region's pages on it (-1 where it has none: nothing to sample)."""
        t = tg.tenant
        u = ctx.rng.random((n, tg.nr_regions))
        if ctx.node is None:
            return t.start + tg.start + (u * (tg.end - tg.start)).astype(np.int64)
        cum = np.cumsum(host.node[t.start:t.end] == ctx.node)
        before = np.where(tg.start > 0, cum[tg.start - 1], 0)
        have = cum[tg.end - 1] - before
        rank = before + (u * have).astype(np.int64) + 1          # the k-th of the region's pages on the node
        off = np.searchsorted(cum, rank)
        return np.where(have > 0, t.start + np.minimum(off, t.npages - 1), -1)

    def _expect(self, pending: list[tuple[np.ndarray, np.ndarray]], us: int) -> None:
        """A running sample interval's sampled pages' expected accesses over `us` of this tick."""
        for slots, lam in pending:
            lam += self.tick_accesses[slots].astype(np.float64) * (us / self.tick_us)

    def _check(self, host: Host, ctx: DamonContext, sampled: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """damon_va_check_accesses(): a sampled page is found accessed with probability 1 - exp(-expected
        accesses), never if not present; each region counts its finds."""
        for tg, (slots, lam) in zip(ctx.targets, sampled):
            self._check_target(host, ctx, tg, slots, lam)

    @staticmethod
    def _check_target(host: Host, ctx: DamonContext, tg: DamonTarget, slots: np.ndarray,
                      lam: np.ndarray) -> None:
        young = (ctx.rng.random(slots.shape) < -np.expm1(-lam)) & (host.node[slots] >= 0) & (slots >= 0)
        tg.nr_accesses += young.sum(axis=0)

    def _sample(self, host: Host, ctx: DamonContext, n: int) -> None:
        """n sample intervals inside the tick, each one random page per region, checked at the tick's rates."""
        k = ctx.sample_us / self.tick_us
        for tg in ctx.targets:
            slots = self._pick_target(host, ctx, tg, n)
            self._check_target(host, ctx, tg, slots, self.tick_accesses[slots].astype(np.float64) * k)

    def _aggregate(self, host: Host, ctx: DamonContext) -> None:
        max_nr_accesses = max(int(tg.nr_accesses.max()) for tg in ctx.targets)
        self._merge(ctx, max_nr_accesses // 10)
        due = [s for s in ctx.schemes if ctx.passed_samples >= s.next_apply]
        if due:                                                  # kdamond_apply_schemes()
            for s in due:
                self._adjust_quota(host, ctx, s)
            self._apply_schemes(host, ctx, due)
            for s in due:
                self._set_next_apply(ctx, s)
        if self.spec.intervals_aggrs and ctx.passed_samples >= ctx.next_tune:
            ctx.next_tune += self.aggr_samples * self.spec.intervals_aggrs
            self._tune_intervals(host, ctx)
        ctx.next_aggr += self.aggr_samples
        for tg in ctx.targets:                                   # kdamond_reset_aggregated()
            tg.last_nr_accesses = tg.nr_accesses
            tg.nr_accesses = np.zeros_like(tg.nr_accesses)
        self._split(ctx)

    def _set_next_apply(self, ctx: DamonContext, s: Damos) -> None:
        """damos_set_next_apply_sis(): the scheme's next application apply_interval (or, if 0, the aggregation
        interval) from now, in sample intervals."""
        s.next_apply = ctx.passed_samples + (self.apply_us or ctx.aggr_us) // ctx.sample_us

    @staticmethod
    def _watched_bytes(host: Host, ctx: DamonContext, tg: DamonTarget) -> np.ndarray:
        """damon_sz_region() of each region: its bytes, or those on the node a per-node kdamond watches."""
        t = tg.tenant
        if ctx.node is None:
            return (tg.end - tg.start) * t.spec.page_size
        on = host.node[t.start:t.end] == ctx.node
        return np.add.reduceat(on.astype(np.int64), tg.start) * t.spec.page_size

    def _tune_intervals(self, host: Host, ctx: DamonContext) -> None:
        """kdamond_tune_intervals(): the share of this aggregation's samples that found their region accessed
        (size-weighted) against intervals_access_bp scores the intervals; the feedback loop's answer, with
        reductions halved (at most 2x longer, at most 2x shorter), scales the sampling interval within
        [intervals_min_sample, intervals_max_sample], the aggregation interval keeping its aggr_samples.
        damon_set_attrs() then keeps the regions' ages in time and re-times the schemes' next application."""
        sizes = [self._watched_bytes(host, ctx, tg) for tg in ctx.targets]
        events = sum(int((sz * tg.nr_accesses).sum()) for sz, tg in zip(sizes, ctx.targets))
        most = sum(int(sz.sum()) for sz in sizes) * self.aggr_samples
        target = most * int(round(self.spec.intervals_access_bp * QUOTA_GOAL_BP)) // QUOTA_GOAL_BP or 1
        adaptation = damon_feed_loop_next_input(100_000_000, events * QUOTA_GOAL_BP // target) // QUOTA_GOAL_BP
        if adaptation <= QUOTA_GOAL_BP:
            adaptation = 5000 + adaptation // 2
        if adaptation == QUOTA_GOAL_BP:
            return
        lo, hi = (int(round(x * 1e6)) for x in (self.spec.intervals_min_sample, self.spec.intervals_max_sample))
        sample_us = max(lo, min(hi, ctx.sample_us * adaptation // QUOTA_GOAL_BP))
        old_aggr = ctx.aggr_us
        ctx.sample_us, ctx.aggr_us = sample_us, sample_us * self.aggr_samples
        for tg in ctx.targets:                                   # damon_update_monitoring_results()
            tg.age = tg.age * old_aggr // ctx.aggr_us
        for s in ctx.schemes:
            self._set_next_apply(ctx, s)

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
    def _hot_score(self, ctx: DamonContext, nr_accesses: np.ndarray, age: np.ndarray) -> np.ndarray:
        """damon_hot_score(): 0..99 from access frequency and log2 of the age in seconds (an idle region's
        age counts against it)."""
        freq = nr_accesses * DAMON_MAX_SUBSCORE // self.aggr_samples
        age_sec = age * ctx.aggr_us // 1_000_000
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
        s.esz_bp = min(damon_feed_loop_next_input(max(s.esz_bp, QUOTA_GOAL_BP), score), s.quota_sz * QUOTA_GOAL_BP)
        s.esz = min(s.esz_bp // QUOTA_GOAL_BP, s.quota_sz)
        s.last_score = score

    def _score(self, ctx: DamonContext, s: Damos, nr_accesses: np.ndarray, age: np.ndarray) -> np.ndarray:
        """The paddr operations' get_scheme_score(): damon_hot_score for migrate_hot, damon_cold_score
        (99 - hot) for migrate_cold."""
        hot = self._hot_score(ctx, nr_accesses, age)
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

    def _region_view(self, host: Host, ctx: DamonContext, tg: DamonTarget, s: Damos):
        """A target's regions as scheme `s` sees them: valid for its access pattern (__damos_valid_target,
        with min_sz_region one page of the source node), their scores, and their bytes on the source node."""
        t = tg.tenant
        on_src = host.node[t.start:t.end] == s.src
        src_pages = np.add.reduceat(on_src.astype(np.int64), tg.start)
        valid = ((tg.nr_accesses >= s.min_nr_accesses) & (tg.nr_accesses <= s.max_nr_accesses)
                 & (tg.age >= s.min_age) & (src_pages > 0))
        return valid, self._score(ctx, s, tg.nr_accesses, tg.age), src_pages * t.spec.page_size

    def _adjust_quota(self, host: Host, ctx: DamonContext, s: Damos) -> None:
        """damos_adjust_quota(): a new charge window resets the charge and tunes the effective quota; then the
        regions' sizes by score (the score histogram) set min_score, below which a region waits."""
        if s.charged_from is None or ctx.clock_us >= s.charged_from + self.reset_us:
            if s.esz and s.charged_sz >= s.esz:
                s.stat.qt_exceeds += 1
            s.charged_from, s.charged_sz = ctx.clock_us, 0
            self._set_effective_quota(host, s)
        hist = np.zeros(DAMOS_MAX_SCORE + 1)
        for tg in ctx.targets:
            valid, score, sz = self._region_view(host, ctx, tg, s)
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
                valid, score, _ = self._region_view(host, ctx, tg, s)
                visit |= valid & (score >= s.min_score) & (tg.start >= (st[1] if st[0] == ti else 0))
            for a in tg.start[visit].tolist():
                i = int(np.searchsorted(tg.start, a))          # a split in the walk keeps a region's start
                for s, st in live:
                    if s.charged_sz >= s.esz or (st[0] == ti and a < st[1]):
                        continue
                    nr, age = tg.nr_accesses[i:i + 1], tg.age[i:i + 1]
                    if not (s.min_nr_accesses <= nr[0] <= s.max_nr_accesses and age[0] >= s.min_age
                            and self._score(ctx, s, nr, age)[0] >= s.min_score):
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
