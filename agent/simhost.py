"""The simulated host backend: the host model, its idle_pages tracker on a schedule, accounting, and the
mover -- one implementation of the agent's host seam (agent/backend.py), plus the `Simulated` clock.

Simulated time advances only through `advance(ticks)`. Within each period (the scenario's epoch) the
tracker makes `nr_scans` evenly spaced idle_pages scans and folds refs into heat at the period's end, so a
heat report always describes the last complete period. Kernel reclaim and demotion run inside the ticks.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from pagetide.agent.accounting import Recorder
from pagetide.agent.backend import (
    BadRequest, HeatReport, HostUsage, MoveCall, MoveResult, NodeInfo, PageList, SimulationStats, TenantInfo,
    TenantReport, TierLists, Topology, tracker_class,
)
from pagetide.agent.host import Host
from pagetide.agent.mover import BatchMover
from pagetide.agent.pageflags import PAGE_SIZE, pages_per_node
from pagetide.agent.scanner import Candidates
from pagetide.agent import churn
from pagetide.agent.scenario import Scenario, ScenarioError, parse_tenant


SCAN_SECONDS_KEPT = 1024   # scan durations kept until usage() reads them (the oldest go first)


class SimHost:
    backend = "sim"

    def __init__(self, scenario: Scenario, host_id: str | None = None, nr_scans: int = 5):
        self.scenario = scenario
        self.host_id = host_id or scenario.name
        self.host = Host(scenario)
        self.tracker = tracker_class(scenario.tracker)(self.host, nr_scans, **dict(scenario.tracker_options))
        self.recorder = Recorder(self.host)
        self.host.boot()
        self.page_sizes = {t.name: t.spec.page_size for t in self.host.tenants}
        self.mover = BatchMover(self.host_id, self.page_sizes, self.host.move_pages)
        self.tick = scenario.tick
        per = scenario.ticks_per_epoch
        n = min(nr_scans, per)
        # scan after these ticks of each period (1-based offsets), evenly spaced, the last at the period's end
        self.scan_offsets = {int(round(per * (i + 1) / n)) for i in range(n)}
        self.period_time = self.host.time
        self._load_at = self.host.load.sums()      # the node load's running sums when the period started
        self.period_load = ([], [])                # the last complete period's utilization, loaded latency
        self._tenants_changed()
        self.scan_seconds: deque[float] = deque(maxlen=SCAN_SECONDS_KEPT)

    def _tenants_changed(self) -> None:
        self.tenant_infos = tuple(TenantInfo(
            name=t.name, kind=t.spec.kind, page_size=t.spec.page_size, footprint=t.spec.footprint,
            home_node=t.spec.home_node, address_start=t.vma_start, address_end=t.vma_end, labels=t.spec.labels)
            for t in self.host.tenants)
        self.page_sizes.clear()
        self.page_sizes.update((t.name, t.spec.page_size) for t in self.host.tenants)

    # ---- churn (SimulationService; agent/churn.py) ----

    @property
    def generation(self) -> int:
        """The tenant set's generation: bumped by every arrival, departure and resize."""
        return self.host.generation

    def add_tenant(self, spec: dict) -> TenantInfo:
        """Start a tenant described as a scenario's `tenants[]` entry (BadRequest naming the key if invalid,
        RESOURCE_EXHAUSTED if it does not fit); nothing changes on a refusal."""
        try:
            tenant = parse_tenant(spec, list(self.scenario.nodes), key="tenant")
        except ScenarioError as e:
            raise BadRequest(str(e)) from None
        self.recorder.close_epoch()
        change = churn.add_tenant(self.host, tenant)
        self._follow(change)
        return self.tenant_infos[-1]

    def remove_tenant(self, name: str) -> None:
        t = churn._get(self.host, name)
        self.recorder.depart(t)
        change, _ = churn.remove_tenant(self.host, name)
        self._follow(change)

    def resize_tenant(self, name: str, footprint: int) -> TenantInfo:
        churn._get(self.host, name)
        self.recorder.close_epoch()
        change = churn.resize_tenant(self.host, name, footprint)
        if change is not None:
            self._follow(change)
        return next(x for x in self.tenant_infos if x.name == name)

    def _follow(self, change: churn.Relayout) -> None:
        self.tracker.relayout(change)
        self.recorder.relayout(change)
        self._tenants_changed()

    # ---- the host seam ----

    @property
    def time(self) -> float:
        return self.host.time

    @property
    def period(self) -> int:
        return self.tracker.period

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever what a heat report shows may have changed (a tick ran, pages moved, tenants
        changed)."""
        return self.host.tick_no, self.mover.requests, self.host.generation

    def topology(self) -> Topology:
        h, sc = self.host, self.scenario
        free = h.free()
        nodes = tuple(NodeInfo(
            id=n.id, type=n.type, capacity=n.capacity, free=int(free[n.id]) * PAGE_SIZE,
            used=int(h.node_used[n.id]) * PAGE_SIZE, page_tables=int(h.node_pgtable[n.id]) * PAGE_SIZE,
            read_latency=n.read_latency, write_latency=n.write_latency, read_bandwidth=n.read_bandwidth,
            write_bandwidth=n.write_bandwidth, peer_node=n.peer_node, distances=tuple(sc.distances[n.id]),
            wmark_min=int(h.wmark_min[n.id]) * PAGE_SIZE, wmark_low=int(h.wmark_low[n.id]) * PAGE_SIZE,
            wmark_high=int(h.wmark_high[n.id]) * PAGE_SIZE, demote_margin=int(h.demote_extra[n.id]) * PAGE_SIZE,
            memory_tier=n.memory_tier, demotion_node=n.demotion_target)
            for n in sc.nodes)
        return Topology(host_id=self.host_id, backend=self.backend, nodes=nodes, tenants=self.tenant_infos,
                        time=self.time, tick=sc.tick, period=sc.epoch, demotion_enabled=sc.kernel.demotion_enabled,
                        zonelist=sc.kernel.zonelist, generation=h.generation)

    def heat_report(self, max_candidates: int, max_hot_fast: int | None = None) -> HeatReport:
        if max_candidates < 0 or (max_hot_fast is not None and max_hot_fast < 0):
            raise BadRequest("max_candidates and max_hot_fast must be >= 0")
        tenants = []
        memory_tier = {n.tier: n.memory_tier for n in self.scenario.nodes}     # rank -> memory_tierN
        for t, info in zip(self.host.tenants, self.tenant_infos):
            th = self.tracker.tenant_heat(t, max_candidates, max_hot_fast)
            tenants.append(TenantReport(
                tenant=info, histograms=th.hist, hot_slow=self._pages(t, th.hot_slow),
                cold_fast=self._pages(t, th.cold_fast), hot_fast=self._pages(t, th.hot_fast),
                accessed_page_scans=int(self.tracker.period_refs[t.index]),
                window_scans=float(self.tracker.window_scans(t.index)),
                lower_tiers=tuple(TierLists(memory_tier[b], self._pages(t, up), self._pages(t, cold),
                                            self._pages(t, hot)) for b, up, cold, hot in th.lower)))
        return HeatReport(period=self.tracker.period, nr_scans=self.tracker.nr_scans, time=self.period_time,
                          tenants=tenants, node_free=[int(x) * PAGE_SIZE for x in self.host.free()],
                          vmstat=dict(self.host.vmstat), tracker=self.tracker.name,
                          bin_level=list(self.tracker.BIN_LEVEL), generation=self.host.generation,
                          node_utilization=self.period_load[0], node_loaded_read_latency=self.period_load[1])

    @staticmethod
    def _pages(t, c: Candidates) -> PageList:
        addrs = np.uint64(t.vma_start) + c.pages.astype(np.uint64) * np.uint64(t.spec.page_size)
        return PageList(addresses=addrs, heat=c.heat, nodes=c.node)

    def move_pages(self, calls: list[MoveCall], batch_id: str = "") -> list[MoveResult]:
        return self.mover.move(calls, batch_id)

    def usage(self) -> HostUsage:
        h = self.host
        resident = {}
        for t in h.tenants:
            nd = h.node[t.start:t.end]
            resident[t.name] = [int(x) * t.page_nr * PAGE_SIZE
                                for x in pages_per_node(nd, h.nr_nodes)]
        scans = list(self.scan_seconds)
        self.scan_seconds.clear()
        return HostUsage(topology=self.topology(), resident=resident, vmstat=dict(h.vmstat),
                         migrated_pages=h.migrated_pages.tolist(),
                         move_pages_migrated=h.move_pages_migrated.tolist(), scan_seconds=scans)

    # ---- Simulated ----

    @property
    def ticks_run(self) -> int:
        return self.host.tick_no

    @property
    def pages(self) -> int:
        return self.host.nr_pages

    def advance(self, ticks: int) -> None:
        if ticks < 0:
            raise BadRequest("ticks must be >= 0")
        per = self.scenario.ticks_per_epoch
        for _ in range(ticks):
            samples = self.host.run_tick()
            self.recorder.record(samples)
            self.tracker.observe(samples)
            offset = (self.host.tick_no - 1) % per + 1
            if offset in self.scan_offsets:
                t0 = time.perf_counter()
                self.tracker.scan()
                self.scan_seconds.append(time.perf_counter() - t0)
            if offset == per:
                self.tracker.end_period()
                self.period_time = self.host.time
                self._end_load_period()

    def _end_load_period(self) -> None:
        """The period's mean utilization and loaded read latency per node, for the heat reports."""
        now = self.host.load.sums()
        (b0, f0, e0), (b1, f1, e1) = self._load_at, now
        self._load_at = now
        if e1 > e0:
            self.period_load = (((b1 - b0) / (e1 - e0)).tolist(),
                                (self.host.read_latency * (f1 - f0) / (e1 - e0)).tolist())

    def stats(self) -> SimulationStats:
        try:
            self.host.check_invariants()
            broken = ""
        except AssertionError as e:
            broken = str(e) or "inconsistent state"
        return SimulationStats(result=self.recorder.results(),
                               node_used=[int(x) * PAGE_SIZE for x in self.host.node_used],
                               node_free=[int(x) * PAGE_SIZE for x in self.host.free()], invariant_error=broken)
