"""A simulated host as an agent runs it: the host model, its scanner on a schedule, accounting, and an
idempotent move_pages front.

Simulated time advances only through `advance(ticks)`. Within each period (the scenario's epoch) the
scanner makes `nr_scans` evenly spaced idle_pages scans and folds refs into heat at the period's end, so a
heat report always describes the last complete period. Kernel reclaim and demotion run inside the ticks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from pagetide.agent.accounting import HostResult, Recorder
from pagetide.agent.host import MOVE_PAGES_FLAGS, Host, MoveResult
from pagetide.agent.scanner import Scanner, TenantHeat
from pagetide.agent.scenario import Scenario

MAX_MOVE_BYTES = 4 << 20       # one move_pages call moves at most 4 MiB (the seed daemon's batch size)
REMEMBERED_BATCHES = 1024      # answers kept for retried batch ids
MAX_CALLS = 64                 # move_pages calls per MovePages request (256 MiB of 4 KiB pages)


class BadRequest(ValueError):
    """A request the host refuses as a whole (maps to gRPC INVALID_ARGUMENT / NOT_FOUND)."""

    def __init__(self, message: str, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


@dataclass
class HeatReport:
    period: int               # number of complete periods so far
    nr_scans: int
    time: float               # simulated seconds at the end of the period
    tenants: list[TenantHeat]


class SimHost:
    def __init__(self, scenario: Scenario, host_id: str | None = None, nr_scans: int = 5):
        self.scenario = scenario
        self.host_id = host_id or scenario.name
        self.host = Host(scenario)
        self.scanner = Scanner(self.host, nr_scans)
        self.recorder = Recorder(self.host)
        self.host.boot()
        per = scenario.ticks_per_epoch
        n = min(nr_scans, per)
        # scan after these ticks of each period (1-based offsets), evenly spaced, the last at the period's end
        self.scan_offsets = {int(round(per * (i + 1) / n)) for i in range(n)}
        self.period_time = self.host.time
        self._batches: OrderedDict[str, list[MoveResult]] = OrderedDict()
        self.moves_applied = 0      # move_pages requests run so far (with `host.tick_no`, the state version)

    @property
    def time(self) -> float:
        return self.host.time

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever what a heat report shows may have changed (a tick ran or pages moved)."""
        return self.host.tick_no, self.moves_applied

    def advance(self, ticks: int) -> None:
        if ticks < 0:
            raise BadRequest("ticks must be >= 0")
        per = self.scenario.ticks_per_epoch
        for _ in range(ticks):
            self.recorder.record(self.host.run_tick())
            offset = (self.host.tick_no - 1) % per + 1
            if offset in self.scan_offsets:
                self.scanner.scan()
            if offset == per:
                self.scanner.end_period()
                self.period_time = self.host.time

    def heat_report(self, max_candidates: int, max_hot_fast: int | None = None) -> HeatReport:
        if max_candidates < 0 or (max_hot_fast is not None and max_hot_fast < 0):
            raise BadRequest("max_candidates and max_hot_fast must be >= 0")
        return HeatReport(period=self.scanner.period, nr_scans=self.scanner.nr_scans, time=self.period_time,
                          tenants=[self.scanner.tenant_heat(t, max_candidates, max_hot_fast)
                                   for t in self.host.tenants])

    def move_calls(self, calls: list[tuple[str, np.ndarray, np.ndarray, int]], batch_id: str = "") -> list[MoveResult]:
        """Run move_pages calls (tenant, addresses, nodes, flags) in order. The whole sequence is validated
        first -- unknown tenant, length mismatch, over 4 MiB in a call, unaligned address, bad flags, too
        many calls -- so a bad request changes nothing. A batch id seen before returns the first answer
        without moving again."""
        if batch_id and batch_id in self._batches:
            return self._batches[batch_id]
        if len(calls) > MAX_CALLS:
            raise BadRequest(f"{len(calls)} calls in one request, at most {MAX_CALLS}")
        checked = [self._check_call(i, *c) for i, c in enumerate(calls)]
        try:
            results = [self.host.move_pages(t.index, a, n, f) for t, a, n, f in checked]
        except ValueError as e:
            raise BadRequest(str(e)) from None
        finally:
            self.moves_applied += 1
        if batch_id:
            self._batches[batch_id] = results
            while len(self._batches) > REMEMBERED_BATCHES:
                self._batches.popitem(last=False)
        return results

    def move_pages(self, tenant: str, addresses, nodes, flags: int, batch_id: str = "") -> MoveResult:
        """One move_pages call (see move_calls)."""
        return self.move_calls([(tenant, addresses, nodes, flags)], batch_id)[0]

    def _check_call(self, i: int, tenant: str, addresses, nodes, flags: int):
        where = f"call {i}: "
        if tenant not in self.host.by_name:
            raise BadRequest(f"{where}no tenant {tenant!r} on host {self.host_id}", not_found=True)
        t = self.host.by_name[tenant]
        addresses = np.asarray(addresses, dtype=np.uint64)
        nodes = np.asarray(nodes, dtype=np.int64)
        if addresses.shape != nodes.shape:
            raise BadRequest(f"{where}{addresses.size} addresses but {nodes.size} target nodes")
        if addresses.size * t.spec.page_size > MAX_MOVE_BYTES:
            raise BadRequest(f"{where}{addresses.size} pages of {t.spec.page_size} bytes is over the "
                             f"{MAX_MOVE_BYTES >> 20} MiB limit per move_pages call")
        unaligned = addresses % np.uint64(t.spec.page_size) != 0
        if unaligned.any():
            raise BadRequest(f"{where}address {int(addresses[np.argmax(unaligned)]):#x} is not aligned to the "
                             f"tenant's page size ({t.spec.page_size} bytes)")
        if flags & ~MOVE_PAGES_FLAGS:
            raise BadRequest(f"{where}invalid flags {flags:#x}")
        return t, addresses, nodes, flags

    def results(self) -> HostResult:
        return self.recorder.results()
