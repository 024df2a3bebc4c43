"""Accounting of a simulated run: where accesses were served, what they cost, and the reference placements
computed from the same access stream (DESIGN.md section 4).

The access stream of a scenario does not depend on placement (workloads are seeded), so one run yields the
placement-independent references exactly:
- all-DRAM: every access at the tenant's home DRAM node's latency (the ceiling);
- all-slow: every access at the slow tier's latency;
- per-epoch oracle: each epoch, DRAM holds the pages most accessed in that epoch, migration free (an upper
  bound that no online policy reaches);
- static oracle: the best fixed placement for the whole run;
- lag-one oracle: each epoch, DRAM holds the pages the per-epoch oracle chose for the *previous* epoch,
  migration free -- what a reactive policy with a perfect signal reaches (the first epoch, before any
  signal exists, is credited with what the run itself served from DRAM);
- lag-one oracle with migration cost: the same placements, paying the model's copy + unmap/TLB-shootdown
  time (`Host.migrate_pages`' formula) for every page that enters DRAM (from the run's placement at the
  end of the first epoch, then from the previous choice) and every page that leaves it.
The gap between the per-epoch and lag-one oracles is what reacting one epoch late costs; the gap between
lag-one and a policy is what its signal and its policy lose.
On a host of more than two memory tiers, results also give the share of accesses each tier served and the
per-epoch oracle's per tier: it fills the top tier with the densest pages, the next tier with the next, the
rest on the lowest, and its modelled time charges each tier's latency (the node of that tier on the way
down from the tenant's home node). The lag-one oracle is per tier there too (its
placements are the per-epoch oracle's of the previous epoch, each page changing tier paying its copy). The
static oracle and the all-slow reference stay DRAM against the rest (all-slow: the home node's slow node).
The oracles share DRAM across the host's tenants (greedy by accesses per base page, which is optimal for
equal page sizes): DRAM capacity above the min watermarks, less page tables. The first-touch reference
needs its own run of the model (see `sim.reference_runs`).

The oracles rank pages by their *expected* accesses (each workload's exact sampling distribution,
`Workload.expected`: the sum of its `probabilities` over the epoch's ticks, each distinct distribution once
times the ticks it holds) and are credited with the accesses actually sampled
on the pages they chose. Ranking by the samples themselves would let an oracle exploit sampling noise: with
a few thousand samples per tick over millions of pages, every page sampled in an epoch fits in DRAM.
Sampled accesses are kept per epoch as each tenant's list of sampled pages and counted per distinct page
(sorting the epoch's samples, not every page); the static oracle keeps two float32 per page (expected and
sampled totals) and the lag-one oracle its previous choice (one bool per page): accounting state, separate
from the model's 6 bytes per page. The per-epoch oracle still ranks every page's expected accesses: it finds
the k-th density (a strided sample brackets it and the densities inside the bracket are partitioned: no
index array, no copy of every page) and keeps every page denser than it and, of the pages exactly at it, the
lowest slots (`_smallest`). Ties are common (hotset's cold pages, equal-size
tenants' Zipf pmfs) and any choice among them gives the per-epoch and static oracles the same expected
accesses; the lowest-slot rule makes it deterministic, and the lag-one oracle, which serves the previous
epoch's choice, depends on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from pagetide.agent.chunks import first_matches
from pagetide.agent.host import Host
from pagetide.agent.pageflags import PAGE_SIZE, pages_per_node


@dataclass
class TenantResult:
    name: str
    kind: str
    workload: str
    footprint: int
    accesses: float
    dram_share: float               # share of accesses served by DRAM nodes
    oracle_share: float             # per-epoch oracle's DRAM share
    static_oracle_share: float
    amat_ns: float                  # modelled average memory access time
    slowdown: float                 # (access + migration + reclaim + swap-in time) / all-DRAM time
    oracle_slowdown: float
    all_slow_slowdown: float
    lag_oracle_share: float         # lag-one oracle's DRAM share (migration free)
    lag_oracle_slowdown: float      # its modelled slowdown, migration free
    lag_cost_slowdown: float        # the lag-one oracle's slowdown paying the model's migration cost
    migrated_bytes: int
    promoted_bytes: int
    demoted_bytes: int
    pingpong: int
    resident_bytes: list[int]       # per node
    node_reads: list[float]         # accesses served per node
    node_writes: list[float]
    series_dram_share: list[float] = field(default_factory=list)    # per epoch
    series_oracle_share: list[float] = field(default_factory=list)
    labels: tuple[tuple[str, str], ...] = ()
    first_epoch: int = 0            # the epoch its series start at (a tenant that arrived later starts later)
    arrived_time: float = 0.0       # seconds of simulated time when it started
    departed_time: float | None = None   # seconds when it left the host (None: still there)
    tier_share: list[float] = field(default_factory=list)          # share of accesses served per memory tier
    oracle_tier_share: list[float] = field(default_factory=list)   # the per-epoch oracle's, per tier
    lag_oracle_tier_share: list[float] = field(default_factory=list)   # the lag-one oracle's, per tier


@dataclass
class HostResult:
    name: str
    time: float
    tenants: list[TenantResult]
    vmstat: dict[str, int]
    node_used_bytes: list[int]
    node_capacity_bytes: list[int]
    dram_share: float
    oracle_share: float
    slowdown: float
    tiering: str = "none"           # the kernel's promotion mode
    lag_oracle_share: float = 1.0
    lag_cost_slowdown: float = 1.0
    tier_share: list[float] = field(default_factory=list)          # share of accesses served per memory tier
    oracle_tier_share: list[float] = field(default_factory=list)   # the per-epoch oracle's, per tier
    lag_oracle_tier_share: list[float] = field(default_factory=list)   # the lag-one oracle's, per tier


class Recorder:
    """Collects a host's sampled accesses per epoch and computes results next to the oracles.

    With `oracles` off (the scenario's `oracles: false`) it keeps only what the run itself served, per epoch:
    no samples, no per-page state, no ranking; every oracle figure of the results is NaN."""

    def __init__(self, host: Host, static_oracle: bool = True, oracles: bool | None = None):
        self.host = host
        self.oracles = host.scenario.oracles if oracles is None else oracles
        static_oracle = static_oracle and self.oracles
        self.epoch_ticks = host.scenario.ticks_per_epoch
        nt = len(host.tenants)
        self._samples: list[list[np.ndarray]] = [[] for _ in range(nt)]   # this epoch's sampled pages per tenant
        self._pending = False                      # samples recorded since the last close_epoch
        self.total_expected = np.zeros(host.nr_pages, dtype=np.float32) if static_oracle else None
        self.total_sampled = np.zeros(host.nr_pages, dtype=np.float32) if static_oracle else None
        self._epoch_start = host.tick_no
        self._unknown = 0.0 if self.oracles else np.nan     # what an oracle's sums start at
        self.oracle_hits = np.full(nt, self._unknown)
        self.oracle_tier_hits = np.full((nt, host.nr_tiers), self._unknown)   # the per-epoch oracle's per tier
        self.lag_hits = np.full(nt, self._unknown)
        self.lag_migration_time = np.zeros(nt)    # seconds the lag-one oracle's moves would cost
        self._lag_chosen: np.ndarray | None = None  # the previous epoch's oracle choice (a mask of slots)
        self._prev_fast = np.zeros(nt)
        # on more than two tiers, the lag-one oracle per tier: its hits, its moves' cost, last epoch's choice
        self.lag_tier_hits = np.full((nt, host.nr_tiers), self._unknown)
        self.lag_tier_migration_time = np.zeros(nt)
        self._lag_tier: np.ndarray | None = None
        self._prev_tier = np.zeros((nt, host.nr_tiers))
        self._prev_all = np.zeros(nt)
        self.series_dram = [[] for _ in range(nt)]
        self.series_oracle = [[] for _ in range(nt)]
        self.epochs = 0                            # epochs closed
        self.first_epoch = [0] * nt
        self.arrived = [0.0] * nt
        self.departed: list[tuple[TenantResult, tuple]] = []   # tenants that left: result and totals

    def depart(self, t) -> None:
        """Tenant t is about to leave the host: close a partial epoch and keep its result (call before the
        host frees its pages)."""
        self.close_epoch()
        static = self.static_oracle_hits() if self.total_expected is not None else None
        res, totals = self._tenant_result(t.index, t, np.nan if static is None else static[t.index])
        self.departed.append((dataclasses.replace(res, departed_time=self.host.time,
                                                  resident_bytes=[0] * self.host.nr_nodes), totals))

    def relayout(self, change) -> None:
        """Follow a change of the host's tenant set (agent/churn.py Relayout), after the host laid its arrays
        out again; a partial epoch must have been closed first (`close_epoch`)."""
        assert not self._pending, "close the epoch before the tenant set changes"
        h = self.host
        if self.total_expected is not None:
            self.total_expected = change.pages(self.total_expected, 0)
            self.total_sampled = change.pages(self.total_sampled, 0)
        self._samples = [[] for _ in h.tenants]
        if self._lag_chosen is not None:
            self._lag_chosen = change.pages(self._lag_chosen, False)
        if self._lag_tier is not None:
            self._lag_tier = change.pages(self._lag_tier, h.nr_tiers - 1)
        for name in ("oracle_hits", "oracle_tier_hits", "lag_hits", "lag_tier_hits"):
            setattr(self, name, change.tenants(getattr(self, name), self._unknown))
        for name in ("lag_migration_time", "_prev_fast", "_prev_all", "lag_tier_migration_time", "_prev_tier"):
            setattr(self, name, change.tenants(getattr(self, name), 0))
        self.series_dram = change.tenant_list(self.series_dram, list)
        self.series_oracle = change.tenant_list(self.series_oracle, list)
        self.first_epoch = change.tenant_list(self.first_epoch, lambda: self.epochs)
        self.arrived = change.tenant_list(self.arrived, lambda: h.time)

    def record(self, samples: list[np.ndarray]) -> None:
        """Take one tick's samples (page offsets per tenant, as Host.run_tick returns them)."""
        self._pending = self._pending or bool(samples)
        if self.oracles:
            for t, kept, pages in zip(self.host.tenants, self._samples, samples):
                kept.append(pages.astype(np.int32 if t.npages <= np.iinfo(np.int32).max else np.int64))   # sorts faster
        if self.host.tick_no % self.epoch_ticks == 0:
            self.close_epoch()

    def dram_budget(self) -> int:
        """Base pages of DRAM the oracles may fill."""
        return int(self.tier_budgets()[0])

    def tier_budgets(self) -> np.ndarray:
        """Base pages the oracles may fill on each memory tier but the lowest (which takes the rest): its
        capacity above the min watermarks, less page tables."""
        h = self.host
        room = h.capacity - h.wmark_min - h.node_pgtable
        return np.array([room[h.tier == r].sum() for r in range(max(1, h.nr_tiers - 1))], dtype=np.int64)

    def _choose(self, expected: np.ndarray, scratch: bool = False) -> np.ndarray:
        """Mask of the pages a clairvoyant placement keeps in DRAM (`_assign`'s top tier); scratch=True lets it
        overwrite `expected`."""
        h = self.host
        if h.nr_tiers <= 2 and (h.tenant_page_nr == 1).all():
            # base pages only, one budget: the k densest all fit, in any order
            return self._densest(expected, self.tier_budgets(), scratch)[0]
        return self._assign(expected, scratch) == 0

    def _assign(self, expected: np.ndarray, scratch: bool = False) -> np.ndarray:
        """The memory tier (rank) of each page in a clairvoyant placement: densest expected accesses per base
        page first, the top tier filled within its budget, then the next, the rest on the lowest. scratch=True
        lets it overwrite `expected`."""
        h = self.host
        last = max(1, h.nr_tiers - 1)
        tier = np.full(h.nr_pages, last, dtype=np.int8)
        budgets = self.tier_budgets()
        dense, neg = self._densest(expected, budgets, scratch)
        cand = np.flatnonzero(dense)                       # slot order, so equal densities go lowest slot first
        del dense
        if cand.size:
            cand = cand[np.argsort(neg[cand], kind="stable")]
            bounds = np.cumsum(np.maximum(budgets, 0))
            tier[cand] = np.searchsorted(bounds, np.cumsum(h.page_weight(cand)), side="left")
        return tier

    def _densest(self, expected: np.ndarray, budgets: np.ndarray, scratch: bool) -> tuple[np.ndarray, np.ndarray]:
        """A mask of the k densest pages by expected accesses per base page (`_smallest` of the negated
        densities: of equal densities the lowest slots), k the base pages of all the budgets (at most every
        page), and the negated densities (float32 per page; `expected` itself when scratch)."""
        h = self.host
        total = int(np.maximum(budgets, 0).sum())
        if (h.tenant_page_nr == 1).all():
            neg = np.negative(expected, out=expected if scratch else None)
        else:
            neg = expected if scratch else np.empty_like(expected)
            for t in h.tenants:
                np.divide(expected[t.start:t.end], np.float32(t.page_nr), out=neg[t.start:t.end])
            np.negative(neg, out=neg)
        return _smallest(neg, min(h.nr_pages, max(total, 0))), neg   # no more pages than base pages of budget

    def _expected(self, n_ticks: int) -> np.ndarray:
        """Expected accesses per page slot over the n_ticks just recorded: the distribution at their middle
        tick, or the sum over every tick for a workload whose distribution moves each tick."""
        exp = np.empty(self.host.nr_pages, dtype=np.float32)
        for t in self.host.tenants:
            t.workload.expected(self._epoch_start, n_ticks, exp[t.start:t.end])
        return exp

    def _epoch_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This epoch's distinct sampled slots (ascending), the accesses they stand for and their tenants; the
        recorded samples are dropped. A tenant's samples all stand for the same accesses w, so a slot sampled n
        times is credited the sequential sum of n w (a cumulative sum), bit for bit what adding each
        sample's weight gives."""
        h = self.host
        uniq, counts, owner = [np.empty(0, dtype=np.int64)], [np.empty(0)], [np.empty(0, dtype=np.int64)]
        for i, (t, kept) in enumerate(zip(h.tenants, self._samples)):
            pages = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
            if pages.size:
                u, n = np.unique(pages, return_counts=True)
                sums = np.cumsum(np.full(int(n.max()), t.workload.accesses_per_sample, dtype=np.float64))
                uniq.append(u.astype(np.int64) + t.start)
                counts.append(sums[n - 1])
                owner.append(np.full(u.size, i, dtype=np.int64))
        self._samples = [[] for _ in h.tenants]
        self._pending = False
        return np.concatenate(uniq), np.concatenate(counts), np.concatenate(owner)

    def close_epoch(self) -> None:
        if not self._pending:
            return
        h = self.host
        if not self.oracles:
            self._pending = False
            self._epoch_start = h.tick_no
            d_fast, d_all = self._served_since()
            for i in range(len(h.tenants)):
                self.series_dram[i].append(float(d_fast[i] / d_all[i]) if d_all[i] else 1.0)
                self.series_oracle[i].append(np.nan)
            self.epochs += 1
            return
        n_ticks = h.tick_no - self._epoch_start
        uniq, counts, owner = self._epoch_counts()
        expected = self._expected(n_ticks)
        self._epoch_start = h.tick_no
        if self.total_expected is not None:
            self.total_expected += expected
            self.total_sampled[uniq] += counts.astype(np.float32)
        assigned = self._assign(expected, scratch=True) if h.nr_tiers > 2 else None
        full = assigned == 0 if assigned is not None else self._choose(expected, scratch=True)
        del expected                                       # overwritten by the ranking
        chosen = full[uniq]
        nt = len(h.tenants)
        hits = np.bincount(owner[chosen], weights=counts[chosen], minlength=nt)
        per_tenant = np.bincount(owner, weights=counts, minlength=nt)
        self.oracle_hits += hits
        if assigned is not None:
            self.oracle_tier_hits += np.bincount(owner * h.nr_tiers + assigned[uniq], weights=counts,
                                                 minlength=nt * h.nr_tiers).reshape(nt, h.nr_tiers)
        else:
            self.oracle_tier_hits[:, 0] += hits
            self.oracle_tier_hits[:, -1] += per_tenant - hits
        d_fast, d_all = self._served_since()
        self._lag_one(full, uniq, owner, counts, d_fast)
        if assigned is not None:
            self._lag_one_tiers(assigned, uniq, owner, counts)
        for i in range(nt):
            self.series_dram[i].append(float(d_fast[i] / d_all[i]) if d_all[i] else 1.0)
            self.series_oracle[i].append(float(hits[i] / per_tenant[i]) if per_tenant[i] else 1.0)
        self.epochs += 1

    def _served_since(self) -> tuple[np.ndarray, np.ndarray]:
        """Each tenant's accesses served by DRAM, and all its accesses, since the last call."""
        h = self.host
        fast_now = np.array([t.stats.reads[h.is_fast].sum() + t.stats.writes[h.is_fast].sum() for t in h.tenants])
        all_now = np.array([t.stats.accesses for t in h.tenants])
        d_fast, d_all = fast_now - self._prev_fast, all_now - self._prev_all
        self._prev_fast, self._prev_all = fast_now, all_now
        return d_fast, d_all

    def _lag_one(self, full: np.ndarray, uniq: np.ndarray, owner: np.ndarray, counts: np.ndarray,
                 d_fast: np.ndarray) -> None:
        """Credit this epoch's accesses to the lag-one oracle (DRAM = last epoch's choice) and charge the
        moves that would bring DRAM to this epoch's choice for the next one."""
        h = self.host
        nt = len(h.tenants)
        if self._lag_chosen is None:
            self.lag_hits += d_fast                        # no signal yet: the run's own first epoch
            before = (h.node >= 0) & h.is_fast[np.maximum(h.node, 0)]
        else:
            lag = self._lag_chosen[uniq]
            self.lag_hits += np.bincount(owner[lag], weights=counts[lag], minlength=nt)
            before = self._lag_chosen
        changed = np.flatnonzero(full != before)
        into = full[changed]
        up, down = changed[into], changed[~into]
        fast = np.flatnonzero(h.is_fast)
        slow = np.flatnonzero(~h.is_fast)
        if fast.size and slow.size:
            f, s = fast[0], slow[0]
            up_s = PAGE_SIZE / min(h.read_bw[s], h.write_bw[f])
            down_s = PAGE_SIZE / min(h.read_bw[f], h.write_bw[s])
            over = h.k.migration_overhead
            for moved, per_page in ((up, up_s), (down, down_s)):
                who = h.owner(moved)
                w = h.tenant_page_nr[who].astype(np.float64)
                self.lag_migration_time += np.bincount(who, weights=w * per_page + over, minlength=nt)
        self._lag_chosen = full

    def _lag_one_tiers(self, assigned: np.ndarray, uniq: np.ndarray, owner: np.ndarray, counts: np.ndarray) -> None:
        """`_lag_one` per tier, on more than two: each tier holds what the per-epoch oracle put there last epoch,
        and every page changing tier pays a copy at the lesser of the source tier's read and the destination
        tier's write bandwidth (each tier's first node) plus the unmap/TLB shootdown."""
        h = self.host
        nt, nr = len(h.tenants), h.nr_tiers
        now = np.array([[t.stats.reads[h.tier == r].sum() + t.stats.writes[h.tier == r].sum() for r in range(nr)]
                        for t in h.tenants]).reshape(nt, nr)
        if self._lag_tier is None:
            self.lag_tier_hits += now - self._prev_tier          # no signal yet: the run's own first epoch
            before = np.where(h.node >= 0, h.tier[np.maximum(h.node, 0)], nr - 1)
        else:
            self.lag_tier_hits += np.bincount(owner * nr + self._lag_tier[uniq], weights=counts,
                                              minlength=nt * nr).reshape(nt, nr)
            before = self._lag_tier
        self._prev_tier = now
        moved = np.flatnonzero(before != assigned)
        if moved.size:
            first = np.array([np.flatnonzero(h.tier == r)[0] for r in range(nr)])
            src, dst = first[before[moved]], first[assigned[moved]]
            per_page = PAGE_SIZE / np.minimum(h.read_bw[src], h.write_bw[dst])
            who = h.owner(moved)
            cost = h.tenant_page_nr[who].astype(np.float64) * per_page + h.k.migration_overhead
            self.lag_tier_migration_time += np.bincount(who, weights=cost, minlength=nt)
        self._lag_tier = assigned

    def static_oracle_hits(self) -> np.ndarray:
        chosen = self._choose(self.total_expected)
        h = self.host
        return np.array([self.total_sampled[t.start:t.end][chosen[t.start:t.end]].sum() for t in h.tenants],
                        dtype=np.float64)

    def _tenant_result(self, i: int, t, static: float) -> tuple[TenantResult, tuple]:
        """Tenant t's (index i) result so far, and its totals (accesses, DRAM-served, oracle hits, stall,
        all-DRAM time, lag-one hits, lag-one time with migration cost) for the host's."""
        h = self.host
        st = t.stats
        acc = st.accesses
        fast = float(st.reads[h.is_fast].sum() + st.writes[h.is_fast].sum())
        stall = st.access_time + st.migration_time + st.reclaim_time + st.swapin_time + st.hint_fault_time
        fast_lat = st.dram_time / acc if acc else 0.0
        slow_lat = st.slow_time / acc if acc else 0.0
        o = self.oracle_hits[i]
        oracle_time = o * fast_lat + (acc - o) * slow_lat
        tier_served = np.array([st.reads[h.tier == r].sum() + st.writes[h.tier == r].sum()
                                for r in range(h.nr_tiers)])
        tier_oracle = self.oracle_tier_hits[i]
        if h.nr_tiers > 2:
            # the same accesses served by each tier's node on the way down from the home node
            lat = [fast_lat, slow_lat] + [(st.reads.sum() * h.read_latency[n] + st.writes.sum() * h.write_latency[n])
                                          / acc if acc else 0.0 for n in _tier_nodes(h, t.spec.home_node)[2:]]
            oracle_time = float(sum(x * y for x, y in zip(tier_oracle, lat)))
        lag = self.lag_hits[i]
        lag_time = lag * fast_lat + (acc - lag) * slow_lat
        lag_cost_time = lag_time + self.lag_migration_time[i]
        tier_lag = self.lag_tier_hits[i]
        if h.nr_tiers > 2:
            lag_time = float(sum(x * y for x, y in zip(tier_lag, lat)))
            lag_cost_time = lag_time + self.lag_tier_migration_time[i]
        else:
            tier_lag = np.array([lag, acc - lag])[:h.nr_tiers]
        nd = h.node[t.start:t.end]
        resident = pages_per_node(nd, h.nr_nodes) * t.page_nr * PAGE_SIZE
        res = TenantResult(
            name=t.name, kind=t.spec.kind, workload=t.workload.name, footprint=t.spec.footprint,
            accesses=acc,
            dram_share=fast / acc if acc else 1.0,
            oracle_share=o / acc if acc else 1.0,
            static_oracle_share=float(static / acc) if acc else 1.0,
            amat_ns=st.access_time / acc * 1e9 if acc else 0.0,
            slowdown=stall / st.dram_time if st.dram_time else 1.0,
            oracle_slowdown=oracle_time / st.dram_time if st.dram_time else 1.0,
            all_slow_slowdown=st.slow_time / st.dram_time if st.dram_time else 1.0,
            lag_oracle_share=lag / acc if acc else 1.0,
            lag_oracle_slowdown=lag_time / st.dram_time if st.dram_time else 1.0,
            lag_cost_slowdown=lag_cost_time / st.dram_time if st.dram_time else 1.0,
            migrated_bytes=st.migrated_bytes,
            promoted_bytes=st.promoted_pages * PAGE_SIZE,
            demoted_bytes=st.demoted_pages * PAGE_SIZE,
            pingpong=st.pingpong,
            resident_bytes=[int(x) for x in resident],
            node_reads=st.reads.tolist(), node_writes=st.writes.tolist(),
            series_dram_share=list(self.series_dram[i]), series_oracle_share=list(self.series_oracle[i]),
            labels=t.spec.labels, first_epoch=self.first_epoch[i], arrived_time=self.arrived[i],
            tier_share=(tier_served / acc).tolist() if acc else [1.0] + [0.0] * (h.nr_tiers - 1),
            oracle_tier_share=(tier_oracle / acc).tolist() if acc else [1.0] + [0.0] * (h.nr_tiers - 1),
            lag_oracle_tier_share=(tier_lag / acc).tolist() if acc else [1.0] + [0.0] * (h.nr_tiers - 1))
        return res, (acc, fast, o, stall, st.dram_time, lag, lag_cost_time, tier_served, tier_oracle, tier_lag)

    def results(self, final: bool = False) -> HostResult:
        """Results so far, of the tenants there now and then of those that left; final=True first closes a
        partial last epoch (at the end of a run)."""
        if final:
            self.close_epoch()
        h = self.host
        static = (self.static_oracle_hits() if self.total_expected is not None
                  else np.full(len(h.tenants), np.nan))
        now = [self._tenant_result(i, t, static[i]) for i, t in enumerate(h.tenants)]
        every = now + self.departed
        tot_acc, tot_fast, tot_oracle, tot_time, tot_dram, tot_lag, tot_lag_time = (
            float(sum(x)) for x in zip(*(tot[:7] for _, tot in every))) if every else (0.0,) * 7
        tiers = h.nr_tiers
        tot_tier = sum((tot[7] for _, tot in every), np.zeros(tiers))
        tot_tier_oracle = sum((tot[8] for _, tot in every), np.zeros(tiers))
        tot_tier_lag = sum((tot[9] for _, tot in every), np.zeros(tiers))
        unserved = [1.0] + [0.0] * (tiers - 1)
        return HostResult(
            name=h.scenario.name, time=h.time, tenants=[r for r, _ in every], vmstat=dict(h.vmstat),
            node_used_bytes=[int(x) for x in (h.node_used + h.node_pgtable) * PAGE_SIZE],
            node_capacity_bytes=[int(x) for x in h.capacity * PAGE_SIZE],
            dram_share=tot_fast / tot_acc if tot_acc else 1.0,
            oracle_share=tot_oracle / tot_acc if tot_acc else 1.0,
            slowdown=tot_time / tot_dram if tot_dram else 1.0, tiering=h.scenario.kernel.tiering.mode,
            lag_oracle_share=tot_lag / tot_acc if tot_acc else 1.0,
            lag_cost_slowdown=tot_lag_time / tot_dram if tot_dram else 1.0,
            tier_share=(tot_tier / tot_acc).tolist() if tot_acc else unserved,
            oracle_tier_share=(tot_tier_oracle / tot_acc).tolist() if tot_acc else unserved,
            lag_oracle_tier_share=(tot_tier_lag / tot_acc).tolist() if tot_acc else unserved)


def _kth_smallest(values: np.ndarray, k: int, stride: int = 64) -> tuple:
    """The k-th smallest of `values` (1 <= k < size, no NaN) and, when at hand, the mask of the values below it
    (else None). A strided sample brackets it (two of the sample's order statistics around rank k); the values
    inside the bracket, a few per sample point, are partitioned. If the sample's two bounds are equal, that
    value is returned unchecked (`_smallest` checks that its tie reaches k); if the bracket misses or the
    values are few, the whole array is partitioned (a float copy)."""
    n = values.size
    sample = values[::stride]
    m = sample.size
    if m >= 1024:
        at = k * m / n
        margin = 4.0 * np.sqrt(m) + 16
        lo_r, hi_r = int(max(0, at - margin)), int(min(m - 1, at + margin))
        part = np.partition(sample, (lo_r, hi_r))
        lo, hi = part[lo_r], part[hi_r]
        under = values < lo
        below = int(np.count_nonzero(under))
        if below < k:
            if lo == hi:
                return lo, under
            del under
            band = values[(values >= lo) & (values <= hi)]
            if below + band.size >= k:
                return np.partition(band, k - below - 1)[k - below - 1], None
    return np.partition(values, k - 1)[k - 1], None


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k smallest of `values` (float, no NaN), exactly k: every value below the k-th smallest, and of
    the values equal to it the lowest slots. The cut is `_kth_smallest` (no index array)."""
    n = values.size
    if k <= 0 or k >= n:
        return np.full(n, k > 0, dtype=bool)
    cut, under = _kth_smallest(values, k)
    chosen = _lowest_tied(values, k, cut, values < cut if under is None else under)
    if chosen is None:                                  # the sample's unchecked cut was below the k-th smallest
        cut = np.partition(values, k - 1)[k - 1]
        chosen = _lowest_tied(values, k, cut, values < cut)
    return chosen


def _lowest_tied(values: np.ndarray, k: int, cut, chosen: np.ndarray) -> np.ndarray | None:
    """`chosen` (the mask of the values below `cut`) with the lowest slots equal to `cut` added up to k in all,
    or None if fewer than k values are at most `cut`. The tie is read from the front only as far as it needs
    (agent/chunks.py)."""
    need = k - int(np.count_nonzero(chosen))
    if need <= 0:
        return chosen if need == 0 else None
    tied = first_matches(values.size, need, lambda a, b: np.flatnonzero(values[a:b] == cut))
    if tied.size < need:
        return None
    chosen[tied] = True
    return chosen


def _tier_nodes(h: Host, home: int) -> list[int]:
    """The node of each memory tier a home DRAM node's pages would go to, top first: the home node, its slow
    node (the accounting's all-slow reference), then down the demotion targets, else the nearest node of the
    tier."""
    out = [home]
    for r in range(1, h.nr_tiers):
        nxt = h.slow_node_of(home) if r == 1 else int(h.demotion_target[out[-1]])
        if nxt < 0 or h.tier[nxt] != r:
            nxt = min(np.flatnonzero(h.tier == r), key=lambda n: (h.distance[out[-1]][n], n))
        out.append(int(nxt))
    return out
