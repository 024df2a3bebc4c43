"""The agent's gRPC server: AgentService over the hosts an agent serves, SimulationService for simulated ones,
with health checking and server reflection.

The servicers talk to hosts only through the host seam (agent/backend.py): AgentService through
`HostBackend`, SimulationService through `Simulated`. Calls on one host are serialised by a per-host lock;
long work runs in a worker thread so that health checks and other hosts stay responsive, and a call whose
client gave up keeps the lock until its work is done (a cancelled RPC never lets a second one run on the same
host at once). Clocks: with `driven` only SimulationService.AdvanceClock moves a simulated host's time (as
fast as the machine allows); with `realtime` a background task advances every simulated host with the wall
clock and AdvanceClock answers FAILED_PRECONDITION. Whenever a host completes a scan period, its next heat
report is built at once (with the sizes last asked for) and long polls waiting on the host are woken.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np

from pagetide.agent.backend import (
    BadRequest, HeatReport, HostBackend, MoveCall, PageList, Sampling, Simulated, SimulationStats, TenantInfo,
    Topology,
)
from pagetide.agent.heaptrim import HeapTrim
from pagetide.agent.mempolicy import MPOL_MF_MOVE, MPOL_MF_SW_YOUNG
from pagetide.agent.metrics import AgentMetrics
from pagetide.common import keepalive
from pagetide.common.limits import MAX_CANDIDATES, MAX_PAGE_TICKS, MAX_QUEUED, MAX_TICKS, MAX_WAIT_SECONDS
from pagetide.common.security import ServerSecurity
from pagetide.common.serve import start_server
from pagetide.v1 import agent_pb2, agent_pb2_grpc, simulation_pb2, simulation_pb2_grpc, types_pb2

NODE_TYPES = {"dram": types_pb2.NODE_TYPE_DRAM, "pmem": types_pb2.NODE_TYPE_PMEM, "cxl": types_pb2.NODE_TYPE_CXL}
KINDS = {"vm": types_pb2.TENANT_KIND_VM, "task": types_pb2.TENANT_KIND_TASK}
ZONELIST_MODES = {"separate": types_pb2.ZONELIST_MODE_SEPARATE, "unified": types_pb2.ZONELIST_MODE_UNIFIED}
CLOCKS = ("realtime", "driven")

Sizes = tuple[int, "int | None"]


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


# ---- encoding the seam's values ------------------------------------------------------------------------

def vmstat_pb(vmstat: dict[str, int]) -> types_pb2.Vmstat:
    return types_pb2.Vmstat(**{f.name: int(vmstat.get(f.name, 0)) for f in types_pb2.Vmstat.DESCRIPTOR.fields})


def topology_pb(t: Topology) -> agent_pb2.GetTopologyResponse:
    nodes = [types_pb2.Node(
        id=n.id, type=NODE_TYPES[n.type], capacity_bytes=n.capacity, free_bytes=n.free, used_bytes=n.used,
        page_table_bytes=n.page_tables, read_latency_ns=n.read_latency * 1e9, write_latency_ns=n.write_latency * 1e9,
        read_bandwidth_bytes_per_second=n.read_bandwidth, write_bandwidth_bytes_per_second=n.write_bandwidth,
        peer_node=n.peer_node, distances=list(n.distances), wmark_min_bytes=n.wmark_min, wmark_low_bytes=n.wmark_low,
        wmark_high_bytes=n.wmark_high, demote_margin_bytes=n.demote_margin, memory_tier=n.memory_tier,
        demotion_node=n.demotion_node) for n in t.nodes]
    return agent_pb2.GetTopologyResponse(
        host_id=t.host_id, nodes=nodes, tenants=[tenant_pb(x) for x in t.tenants], time_ns=_ns(t.time),
        tick_ns=_ns(t.tick), period_ns=_ns(t.period), demotion_enabled=t.demotion_enabled,
        zonelist_mode=ZONELIST_MODES[t.zonelist], backend=t.backend, tenant_generation=t.generation)


def tenant_pb(x: TenantInfo) -> types_pb2.Tenant:
    return types_pb2.Tenant(name=x.name, kind=KINDS[x.kind], page_size_bytes=x.page_size, footprint_bytes=x.footprint,
                            home_node=x.home_node, address_start=x.address_start, address_end=x.address_end,
                            labels=dict(x.labels))


def _pages_pb(p: PageList) -> agent_pb2.PageList:
    return agent_pb2.PageList(count=p.count, addresses=p.addresses.astype("<u8").tobytes(),
                              heat=p.heat.astype(np.uint8).tobytes(), nodes=p.nodes.astype("<i2").tobytes())


def heat_pb(host_id: str, rep: HeatReport) -> agent_pb2.GetHeatReportResponse:
    tenants = [agent_pb2.TenantHeat(
        tenant=th.tenant.name, page_size_bytes=th.tenant.page_size,
        histograms=[agent_pb2.HeatHistogram(node=i, pages=row.tolist()) for i, row in enumerate(th.histograms)
                    if row.any()],
        hot_slow=_pages_pb(th.hot_slow), cold_fast=_pages_pb(th.cold_fast), hot_fast=_pages_pb(th.hot_fast),
        accessed_page_scans=th.accessed_page_scans, window_scans=th.window_scans,
        lower_tiers=[agent_pb2.TierCandidates(memory_tier=low.memory_tier, hot_below=_pages_pb(low.hot_below),
                                              cold=_pages_pb(low.cold), hot=_pages_pb(low.hot))
                     for low in th.lower_tiers]) for th in rep.tenants]
    return agent_pb2.GetHeatReportResponse(
        host_id=host_id, period=rep.period, nr_scans=rep.nr_scans, time_ns=_ns(rep.time), tenants=tenants,
        node_free_bytes=rep.node_free, vmstat=vmstat_pb(rep.vmstat), tracker=rep.tracker, bin_level=rep.bin_level,
        tenant_generation=rep.generation, node_utilization=rep.node_utilization,
        node_loaded_read_latency_ns=[x * 1e9 for x in rep.node_loaded_read_latency])


def stats_pb(host_id: str, s: SimulationStats) -> simulation_pb2.GetStatsResponse:
    r = s.result
    tenants = [simulation_pb2.TenantStats(
        tenant=t.name, workload=t.workload, footprint_bytes=t.footprint, accesses=t.accesses,
        dram_share=t.dram_share, oracle_share=t.oracle_share, static_oracle_share=t.static_oracle_share,
        amat_ns=t.amat_ns, slowdown=t.slowdown, oracle_slowdown=t.oracle_slowdown,
        migrated_bytes=t.migrated_bytes, pingpong=t.pingpong, resident_bytes=t.resident_bytes,
        dram_share_series=t.series_dram_share, oracle_share_series=t.series_oracle_share,
        node_reads=t.node_reads, node_writes=t.node_writes, promoted_bytes=t.promoted_bytes,
        demoted_bytes=t.demoted_bytes, lag_oracle_share=t.lag_oracle_share,
        lag_oracle_slowdown=t.lag_oracle_slowdown, lag_cost_slowdown=t.lag_cost_slowdown, labels=dict(t.labels),
        first_epoch=t.first_epoch, arrived_time_ns=_ns(t.arrived_time), departed=t.departed_time is not None,
        departed_time_ns=_ns(t.departed_time or 0.0), tier_shares=t.tier_share,
        oracle_tier_shares=t.oracle_tier_share, lag_oracle_tier_shares=t.lag_oracle_tier_share) for t in r.tenants]
    return simulation_pb2.GetStatsResponse(
        host_id=host_id, time_ns=_ns(r.time), tenants=tenants, vmstat=vmstat_pb(r.vmstat), dram_share=r.dram_share,
        oracle_share=r.oracle_share, slowdown=r.slowdown, node_used_bytes=s.node_used, node_free_bytes=s.node_free,
        invariant_error=s.invariant_error, lag_oracle_share=r.lag_oracle_share, lag_cost_slowdown=r.lag_cost_slowdown,
        tier_shares=r.tier_share, oracle_tier_shares=r.oracle_tier_share, lag_oracle_tier_shares=r.lag_oracle_tier_share)


# the keys of a tenant mapping (scenario.parse_tenant's errors) as AddTenantRequest names them
_TENANT_FIELDS = {"tenant.footprint": "footprint_bytes", "tenant.page_size": "page_size_bytes",
                  "tenant.pinned": "pinned_share", "tenant.workload.type": "workload.type",
                  "tenant.workload": "workload.options", "tenant": ""}


def tenant_mapping(r: simulation_pb2.AddTenantRequest) -> dict:
    """An AddTenant request as a scenario's `tenants[]` mapping (validated where it is applied)."""
    d = {"name": r.name, "kind": {v: k for k, v in KINDS.items()}.get(r.kind, "vm") if r.kind else "vm",
         "footprint": r.footprint_bytes, "workload": {"type": r.workload.type, **dict(r.workload.options)},
         "pinned": r.pinned_share, "labels": dict(r.labels)}
    if r.page_size_bytes:
        d["page_size"] = r.page_size_bytes
    if r.HasField("home_node"):
        d["home_node"] = r.home_node
    if r.HasField("prefault"):
        d["prefault"] = r.prefault
    return d


def tenant_error(message: str) -> str:
    """A tenant mapping's error ("tenant.footprint: ...") named by the request's field ("footprint_bytes: ...")."""
    key, sep, reason = message.partition(": ")
    for k in sorted(_TENANT_FIELDS, key=len, reverse=True):
        if sep and (key == k or key.startswith(k + ".")):
            field = (_TENANT_FIELDS[k] + key[len(k):]).lstrip(".") or "tenant"
            return f"{field}: {reason}"
    return message


def move_calls(request: agent_pb2.MovePagesRequest) -> list[MoveCall]:
    """Decode the packed arrays of a MovePages request (BadRequest if a field's length is not its count);
    the mover validates the calls themselves."""
    calls = []
    for i, c in enumerate(request.calls):
        if len(c.addresses) != 8 * c.count or len(c.nodes) != 2 * c.count:
            raise BadRequest(f"calls[{i}]: count {c.count} needs {8 * c.count} bytes of addresses and "
                             f"{2 * c.count} of nodes, got {len(c.addresses)} and {len(c.nodes)}")
        if c.expected_nodes and len(c.expected_nodes) != 2 * c.count:
            raise BadRequest(f"calls[{i}].expected_nodes: count {c.count} needs {2 * c.count} bytes (or none), "
                             f"got {len(c.expected_nodes)}")
        calls.append(MoveCall(tenant=c.tenant, addresses=np.frombuffer(c.addresses, "<u8").astype(np.uint64),
                              nodes=np.frombuffer(c.nodes, "<i2").astype(np.int64),
                              flags=MPOL_MF_MOVE | (MPOL_MF_SW_YOUNG if c.sw_young else 0),
                              expected=np.frombuffer(c.expected_nodes, "<i2").astype(np.int64)
                              if c.expected_nodes else None))
    return calls


def max_ticks(sim: Simulated) -> int:
    """Ticks one AdvanceClock call may run on `sim`: the cost of a tick grows with the host's pages."""
    return max(1, min(MAX_TICKS, MAX_PAGE_TICKS // max(1, sim.pages)))


# ---- serving ---------------------------------------------------------------------------------------------

class Busy(Exception):
    """More than MAX_QUEUED calls are waiting for one host (RESOURCE_EXHAUSTED)."""

class HostSlot:
    """One served host: its backend, the lock serialising calls on it, the condition long polls wait on, and
    the last heat report served (with the list sizes it was built for and the host state it shows)."""

    def __init__(self, backend: HostBackend):
        self.backend = backend
        self.lock = asyncio.Lock()
        self.queued = 0                 # calls waiting for the lock
        self.changed = asyncio.Condition()
        self.report: tuple[Sizes, Any, agent_pb2.GetHeatReportResponse] | None = None
        self.incarnation = secrets.token_hex(8)     # this run of the host's agent: new at every start

    def ready(self, sizes: Sizes) -> agent_pb2.GetHeatReportResponse | None:
        """The report built for `sizes` if the host has not changed since; else None."""
        if self.report is None or self.report[:2] != (sizes, self.backend.version):
            return None
        return self.report[2]

    def build(self, sizes: Sizes) -> agent_pb2.GetHeatReportResponse:
        ready = self.ready(sizes)
        if ready is None:
            ready = heat_pb(self.backend.host_id, self.backend.heat_report(*sizes))
            ready.incarnation = self.incarnation
            self.report = (sizes, self.backend.version, ready)
        return ready

    def rebuild(self) -> None:
        """After the host changed: build the next report with the sizes last asked for, as a real agent
        reports at the end of its scan period, not on demand."""
        if self.report is not None:
            self.build(self.report[0])

    async def run(self, fn: Callable[[], Any], thread: bool = True, queue_limit: bool = True) -> Any:
        """fn() under the host's lock, in a worker thread unless `thread` is False (work of a few ms at most:
        the hop to a thread and back through the GIL costs more than it saves when one process serves many
        hosts). If the caller is cancelled, the lock is held until the thread's work ends. Busy if
        MAX_QUEUED calls are already waiting for the host."""
        if queue_limit and self.queued >= MAX_QUEUED:
            raise Busy(f"host {self.backend.host_id!r} has {self.queued} calls waiting, at most {MAX_QUEUED}")
        self.queued += 1
        try:
            await self.lock.acquire()
        finally:
            self.queued -= 1
        try:
            if not thread:
                return fn()
            work = asyncio.ensure_future(asyncio.to_thread(fn))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                raise
        finally:
            self.lock.release()

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def advance(self, ticks: int, queue_limit: bool = True) -> None:
        """Simulated hosts: run `ticks` ticks, rebuild the report, wake long polls."""
        sim: Simulated = self.backend   # type: ignore[assignment]

        def work() -> None:
            sim.advance(ticks)
            self.rebuild()
        await self.run(work, queue_limit=queue_limit)
        await self.notify()


MAX_STATUS_CHARS = 256    # a status message travels in a header: a client's 8 KiB metadata limit bounds it


async def _abort(context, e: BadRequest | Busy, message: str | None = None):
    """Refuse the call with `e`'s status; its message cut short (it may echo a client's long strings: a name,
    a label, a workload option)."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED if isinstance(e, Busy) else grpc.StatusCode[e.code]
    text = message or str(e)
    await context.abort(code, text if len(text) <= MAX_STATUS_CHARS else text[:MAX_STATUS_CHARS] + "...")


def shown(name: str, limit: int = 64) -> str:
    """A client's string as an error message echoes it: cut to `limit` characters, since a status message goes
    back in a header and one over the client's 8 KiB metadata limit turns the answer into RESOURCE_EXHAUSTED."""
    return repr(name if len(name) <= limit else name[:limit] + "...")


class _Servicer:
    def __init__(self, slots: dict[str, HostSlot], metrics: AgentMetrics | None = None):
        self.slots = slots
        self.metrics = metrics

    async def _slot(self, host_id: str, context) -> HostSlot:
        if host_id not in self.slots:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no host {shown(host_id)} on this agent")
        return self.slots[host_id]


class AgentServicer(_Servicer, agent_pb2_grpc.AgentServiceServicer):
    async def ListHosts(self, request, context):
        return agent_pb2.ListHostsResponse(host_ids=list(self.slots))

    async def GetTopology(self, request, context):
        slot = await self._slot(request.host_id, context)
        try:
            topology = await slot.run(lambda: topology_pb(slot.backend.topology()))
            topology.incarnation = slot.incarnation
            return topology
        except Busy as e:
            await _abort(context, e)

    async def GetHeatReport(self, request, context):
        if request.max_candidates > MAX_CANDIDATES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"max_candidates must be at most {MAX_CANDIDATES}, got {request.max_candidates}")
        if request.max_wait_ms > MAX_WAIT_SECONDS * 1000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"max_wait_ms must be at most {int(MAX_WAIT_SECONDS * 1000)}, "
                                f"got {request.max_wait_ms}")
        slot = await self._slot(request.host_id, context)
        host = slot.backend
        if request.HasField("wait_for_period_after"):
            after = request.wait_for_period_after
            if host.period == after and request.max_wait_ms:
                try:
                    async with slot.changed:
                        await asyncio.wait_for(slot.changed.wait_for(lambda: host.period != after),
                                               request.max_wait_ms / 1000)
                except asyncio.TimeoutError:
                    pass
            if host.period == after:
                return agent_pb2.GetHeatReportResponse(host_id=host.host_id, period=host.period,
                                                       time_ns=_ns(host.time), waited_out=True,
                                                       incarnation=slot.incarnation)
        sizes = (request.max_candidates, request.max_hot_fast if request.HasField("max_hot_fast") else None)
        try:
            return await slot.run(lambda: slot.build(sizes), thread=slot.ready(sizes) is None)
        except (BadRequest, Busy) as e:
            await _abort(context, e)

    async def MovePages(self, request, context):
        slot = await self._slot(request.host_id, context)
        try:
            calls = move_calls(request)
            results = await slot.run(lambda: slot.backend.move_pages(calls, request.batch_id), thread=False)
        except (BadRequest, Busy) as e:
            await _abort(context, e)
        if self.metrics is not None:
            self.metrics.moved(request.host_id, (r.status for r in results))
        return agent_pb2.MovePagesResponse(results=[
            agent_pb2.MoveCallResult(status=r.status.astype("<i2").tobytes(), moved_pages=r.moved_pages,
                                     moved_bytes=r.moved_bytes, migration_time_ns=_ns(r.time)) for r in results])


class SimulationServicer(_Servicer, simulation_pb2_grpc.SimulationServiceServicer):
    def __init__(self, slots: dict[str, HostSlot], clock: str, metrics: AgentMetrics | None = None):
        super().__init__(slots, metrics)
        self.clock = clock
        self.heap = HeapTrim()      # the advances' freed temporaries go back to the kernel, once a second at most

    async def _simulated(self, host_id: str, context) -> HostSlot:
        slot = await self._slot(host_id, context)
        if not isinstance(slot.backend, Simulated):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"host {host_id!r} is a real host ({slot.backend.backend}): nothing to simulate")
        return slot

    async def AdvanceClock(self, request, context):
        slot = await self._simulated(request.host_id, context)
        if self.clock != "driven":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"host {request.host_id!r} runs with the wall clock (agent --clock {self.clock})")
        limit = max_ticks(slot.backend)
        if request.ticks > limit:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"ticks must be at most {limit} on host {request.host_id!r} ({MAX_TICKS}, and "
                                f"{MAX_PAGE_TICKS} page-ticks over its {slot.backend.pages} pages), got "
                                f"{request.ticks}: split the advance into several calls")
        t0 = time.perf_counter()
        try:
            await slot.advance(request.ticks)
        except Busy as e:
            await _abort(context, e)
        self.heap.after_work()
        host = slot.backend
        return simulation_pb2.AdvanceClockResponse(time_ns=_ns(host.time), period=host.period,
                                                   wall_time_ns=_ns(time.perf_counter() - t0), ticks_run=request.ticks)

    async def GetStats(self, request, context):
        slot = await self._simulated(request.host_id, context)
        try:
            return await slot.run(lambda: stats_pb(request.host_id, slot.backend.stats()))
        except Busy as e:
            await _abort(context, e)

    async def AddTenant(self, request, context):
        slot = await self._simulated(request.host_id, context)
        spec = tenant_mapping(request)
        try:
            info = await slot.run(lambda: slot.backend.add_tenant(spec))
        except (BadRequest, Busy) as e:
            await _abort(context, e, tenant_error(str(e)))
        return simulation_pb2.AddTenantResponse(tenant=tenant_pb(info), tenant_generation=slot.backend.generation)

    async def RemoveTenant(self, request, context):
        slot = await self._simulated(request.host_id, context)
        try:
            await slot.run(lambda: slot.backend.remove_tenant(request.tenant))
        except (BadRequest, Busy) as e:
            await _abort(context, e)
        return simulation_pb2.RemoveTenantResponse(tenant_generation=slot.backend.generation)

    async def ResizeTenant(self, request, context):
        slot = await self._simulated(request.host_id, context)
        try:
            info = await slot.run(lambda: slot.backend.resize_tenant(request.tenant, request.footprint_bytes))
        except (BadRequest, Busy) as e:
            await _abort(context, e)
        return simulation_pb2.ResizeTenantResponse(tenant=tenant_pb(info), tenant_generation=slot.backend.generation)


async def realtime_clock(slots: dict[str, HostSlot]) -> None:
    """Advance every simulated host with the wall clock, catching up whole ticks."""
    sims = [s for s in slots.values() if isinstance(s.backend, Simulated)]
    if not sims:
        return
    start = time.monotonic()
    step = min(s.backend.tick for s in sims) / 2
    heap = HeapTrim()
    while True:
        for slot in sims:
            behind = int((time.monotonic() - start) / slot.backend.tick) - slot.backend.ticks_run
            if behind > 0:
                await slot.advance(behind, queue_limit=False)
        heap.after_work()
        await asyncio.sleep(step)


async def sampling_clock(slots: dict[str, HostSlot]) -> None:
    """Real hosts scan on the wall clock: each due scan runs under the host's lock; a completed period
    rebuilds the host's report and wakes its long polls."""
    live = [s for s in slots.values() if isinstance(s.backend, Sampling)]

    def scan(slot: HostSlot) -> bool:
        done = slot.backend.run_due()
        if done:
            slot.rebuild()
        return done
    while live:
        for slot in live:
            if slot.backend.seconds_to_next_scan() <= 0 and await slot.run(lambda: scan(slot), queue_limit=False):
                await slot.notify()
        await asyncio.sleep(min(1.0, max(0.005, min(s.backend.seconds_to_next_scan() for s in live))))


class AgentServer:
    """A running agent: its gRPC server, bound port, slots and (realtime) clock task."""

    def __init__(self, server: grpc.aio.Server, port: int, slots: dict[str, HostSlot], clock_task):
        self.server, self.port, self.slots, self.clock_task = server, port, slots, clock_task

    async def stop(self, grace: float = 1.0) -> None:
        if self.clock_task is not None:
            self.clock_task.cancel()
            try:
                await self.clock_task
            except asyncio.CancelledError:
                pass
        await self.server.stop(grace=grace)


async def start_agent(hosts: list[HostBackend], listen: str = "127.0.0.1:0", clock: str = "driven",
                      security: ServerSecurity | None = None, metrics: AgentMetrics | None = None) -> AgentServer:
    """Serve `hosts` on `listen` (AgentService, SimulationService, health, reflection) with `security`'s caller
    checks (MovePages and AdvanceClock need a write token); with `metrics`, the hosts and the server's calls are
    exported there (the caller serves its registry)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    slots = {h.host_id: HostSlot(h) for h in hosts}
    if len(slots) != len(hosts):
        raise ValueError("host ids must be unique")
    agent_name = agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
    sim_name = simulation_pb2.DESCRIPTOR.services_by_name["SimulationService"].full_name
    server, port = await start_server([
        (agent_pb2_grpc.add_AgentServiceServicer_to_server, AgentServicer(slots, metrics), agent_name),
        (simulation_pb2_grpc.add_SimulationServiceServicer_to_server, SimulationServicer(slots, clock, metrics),
         sim_name),
    ], listen, options=keepalive.SERVER_OPTIONS, security=security,
        metrics=metrics.rpc if metrics is not None else None)
    if metrics is not None:
        metrics.attach(slots, asyncio.get_running_loop())
    loop = asyncio.get_running_loop()
    clocks = ([realtime_clock(slots)] if clock == "realtime" else []) + [sampling_clock(slots)]
    task = asyncio.gather(*(loop.create_task(c) for c in clocks))
    return AgentServer(server, port, slots, task)
