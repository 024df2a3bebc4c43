"""The agent's gRPC server: AgentService over one or more simulated hosts, with health checking and
server reflection.

Each host is served under its scenario's name. Calls on one host are serialised by a per-host lock and run
in a worker thread so that health checks and other hosts stay responsive while a host simulates. In
`realtime` mode a background task advances every host's clock with the wall clock, so scanning and kernel
demotion run on their own; in `driven` mode only AdvanceClock moves time (the simulation runs as fast as
the machine allows).
"""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pagetide.agent.accounting import HostResult
from pagetide.agent.host import MPOL_MF_MOVE, MPOL_MF_SW_YOUNG
from pagetide.agent.pageflags import PAGE_SIZE
from pagetide.agent.runtime import BadRequest, HeatReport, SimHost
from pagetide.agent.scanner import Candidates
from pagetide.v1 import agent_pb2, agent_pb2_grpc, types_pb2

MAX_CANDIDATES = 16384
MAX_TICKS = 100_000
NODE_TYPES = {"dram": types_pb2.NODE_TYPE_DRAM, "pmem": types_pb2.NODE_TYPE_PMEM, "cxl": types_pb2.NODE_TYPE_CXL}
KINDS = {"vm": types_pb2.TENANT_KIND_VM, "task": types_pb2.TENANT_KIND_TASK}
ZONELIST_MODES = {"separate": types_pb2.ZONELIST_MODE_SEPARATE, "unified": types_pb2.ZONELIST_MODE_UNIFIED}


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def vmstat_pb(vmstat: dict[str, int]) -> types_pb2.Vmstat:
    return types_pb2.Vmstat(**{f.name: int(vmstat.get(f.name, 0)) for f in types_pb2.Vmstat.DESCRIPTOR.fields})


def topology_pb(sh: SimHost) -> agent_pb2.GetTopologyResponse:
    h = sh.host
    free = h.free()
    nodes = []
    for n in sh.scenario.nodes:
        i = n.id
        nodes.append(types_pb2.Node(
            id=i, type=NODE_TYPES[n.type], capacity_bytes=n.capacity, free_bytes=int(free[i]) * PAGE_SIZE,
            used_bytes=int(h.node_used[i]) * PAGE_SIZE, page_table_bytes=int(h.node_pgtable[i]) * PAGE_SIZE,
            read_latency_ns=n.read_latency * 1e9, write_latency_ns=n.write_latency * 1e9,
            read_bandwidth_bytes_per_second=n.read_bandwidth, write_bandwidth_bytes_per_second=n.write_bandwidth,
            peer_node=n.peer_node, distances=list(sh.scenario.distances[i]),
            wmark_min_bytes=int(h.wmark_min[i]) * PAGE_SIZE, wmark_low_bytes=int(h.wmark_low[i]) * PAGE_SIZE,
            wmark_high_bytes=int(h.wmark_high[i]) * PAGE_SIZE,
            demote_margin_bytes=int(h.demote_extra[i]) * PAGE_SIZE))
    tenants = [types_pb2.Tenant(name=t.name, kind=KINDS[t.spec.kind], page_size_bytes=t.spec.page_size,
                                footprint_bytes=t.spec.footprint, home_node=t.spec.home_node,
                                address_start=t.vma_start, address_end=t.vma_end) for t in h.tenants]
    return agent_pb2.GetTopologyResponse(
        host_id=sh.host_id, nodes=nodes, tenants=tenants, time_ns=_ns(sh.time), tick_ns=_ns(sh.scenario.tick),
        period_ns=_ns(sh.scenario.epoch), demotion_enabled=sh.scenario.kernel.demotion_enabled,
        zonelist_mode=ZONELIST_MODES[sh.scenario.kernel.zonelist])


def _pages_pb(t, c: Candidates) -> agent_pb2.PageList:
    addrs = np.uint64(t.vma_start) + c.pages.astype(np.uint64) * np.uint64(t.spec.page_size)
    return agent_pb2.PageList(count=c.pages.size, addresses=addrs.astype("<u8").tobytes(),
                              heat=c.heat.astype(np.uint8).tobytes(), nodes=c.node.astype("<i2").tobytes())


def heat_pb(sh: SimHost, rep: HeatReport) -> agent_pb2.GetHeatReportResponse:
    tenants = []
    for th in rep.tenants:
        t = th.tenant
        hists = [agent_pb2.HeatHistogram(node=i, pages=row.tolist())
                 for i, row in enumerate(th.hist) if row.any()]
        tenants.append(agent_pb2.TenantHeat(
            tenant=t.name, page_size_bytes=t.spec.page_size, histograms=hists,
            hot_slow=_pages_pb(t, th.hot_slow), cold_fast=_pages_pb(t, th.cold_fast),
            hot_fast=_pages_pb(t, th.hot_fast), accessed_page_scans=int(sh.scanner.period_refs[t.index])))
    return agent_pb2.GetHeatReportResponse(
        host_id=sh.host_id, period=rep.period, nr_scans=rep.nr_scans, time_ns=_ns(rep.time), tenants=tenants,
        node_free_bytes=[int(x) * PAGE_SIZE for x in sh.host.free()], vmstat=vmstat_pb(sh.host.vmstat))


def stats_pb(sh: SimHost, r: HostResult) -> agent_pb2.GetStatsResponse:
    tenants = [agent_pb2.TenantStats(
        tenant=t.name, workload=t.workload, footprint_bytes=t.footprint, accesses=t.accesses,
        dram_share=t.dram_share, oracle_share=t.oracle_share, static_oracle_share=t.static_oracle_share,
        amat_ns=t.amat_ns, slowdown=t.slowdown, oracle_slowdown=t.oracle_slowdown,
        migrated_bytes=t.migrated_bytes, pingpong=t.pingpong, resident_bytes=t.resident_bytes,
        dram_share_series=t.series_dram_share, oracle_share_series=t.series_oracle_share,
        node_reads=t.node_reads, node_writes=t.node_writes, promoted_bytes=t.promoted_bytes,
        demoted_bytes=t.demoted_bytes) for t in r.tenants]
    return agent_pb2.GetStatsResponse(host_id=sh.host_id, time_ns=_ns(r.time), tenants=tenants,
                                      vmstat=vmstat_pb(r.vmstat), dram_share=r.dram_share,
                                      oracle_share=r.oracle_share, slowdown=r.slowdown,
                                      node_used_bytes=[int(x) * PAGE_SIZE for x in sh.host.node_used],
                                      node_free_bytes=[int(x) * PAGE_SIZE for x in sh.host.free()])


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, hosts: list[SimHost]):
        self.hosts = {h.host_id: h for h in hosts}
        if len(self.hosts) != len(hosts):
            raise ValueError("host ids must be unique")
        self.locks = {h: asyncio.Lock() for h in self.hosts}
        self.clock_task: asyncio.Task | None = None      # the realtime clock, when running
        # Per host: the last report served, with the list sizes it was built for and the host state version
        # it shows. AdvanceClock builds the next one at the end of its ticks, with the last sizes asked for,
        # so the controller's round reads a ready report -- as a real agent reports at the end of its scan
        # period, not on demand.
        self.reports: dict[str, tuple[tuple[int, int | None], tuple[int, int],
                                      agent_pb2.GetHeatReportResponse]] = {}

    def _ready(self, host_id: str, sizes: tuple[int, int | None]) -> agent_pb2.GetHeatReportResponse | None:
        """The report built for `sizes` if the host has not changed since; else None."""
        cached = self.reports.get(host_id)
        if cached is None or cached[:2] != (sizes, self.hosts[host_id].version):
            return None
        return cached[2]

    def _report(self, sh: SimHost, sizes: tuple[int, int | None]) -> agent_pb2.GetHeatReportResponse:
        ready = self._ready(sh.host_id, sizes)
        if ready is None:
            ready = heat_pb(sh, sh.heat_report(*sizes))
            self.reports[sh.host_id] = (sizes, sh.version, ready)
        return ready

    async def _host(self, host_id: str, context) -> SimHost:
        if host_id not in self.hosts:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no host {host_id!r} on this agent")
        return self.hosts[host_id]

    async def _run(self, host_id: str, context, fn, thread: bool = True):
        """Run fn(host) under the host's lock, in a worker thread unless `thread` is False (work of a few
        milliseconds at most: the hop to a thread and back through the GIL costs more than it saves when
        one process serves many hosts); BadRequest -> a gRPC error."""
        sh = await self._host(host_id, context)
        async with self.locks[host_id]:
            try:
                return await asyncio.to_thread(fn, sh) if thread else fn(sh)
            except BadRequest as e:
                code = grpc.StatusCode.NOT_FOUND if e.not_found else grpc.StatusCode.INVALID_ARGUMENT
                await context.abort(code, str(e))

    async def ListHosts(self, request, context):
        return agent_pb2.ListHostsResponse(host_ids=list(self.hosts))

    async def GetTopology(self, request, context):
        return await self._run(request.host_id, context, topology_pb)

    async def GetHeatReport(self, request, context):
        if request.max_candidates > MAX_CANDIDATES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"max_candidates must be at most {MAX_CANDIDATES}, got {request.max_candidates}")
        sizes = (request.max_candidates, request.max_hot_fast if request.HasField("max_hot_fast") else None)
        ready = self._ready(request.host_id, sizes)
        return await self._run(request.host_id, context, lambda sh: self._report(sh, sizes), thread=ready is None)

    async def MovePages(self, request, context):
        calls = [(c.tenant, np.array(c.addresses, dtype=np.uint64), np.array(c.nodes, dtype=np.int64),
                  MPOL_MF_MOVE | (MPOL_MF_SW_YOUNG if c.sw_young else 0)) for c in request.calls]

        def move(sh: SimHost):
            return agent_pb2.MovePagesResponse(results=[
                agent_pb2.MoveCallResult(status=r.status.tolist(), moved_pages=r.moved_pages,
                                         moved_bytes=r.moved_bytes, migration_time_ns=_ns(r.time))
                for r in sh.move_calls(calls, request.batch_id)])
        return await self._run(request.host_id, context, move, thread=False)   # <= 64 x 4 MiB: milliseconds

    async def AdvanceClock(self, request, context):
        if request.ticks > MAX_TICKS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"ticks must be at most {MAX_TICKS}, got {request.ticks}")

        def advance(sh: SimHost):
            t0 = time.perf_counter()
            sh.advance(request.ticks)
            if sh.host_id in self.reports:
                self._report(sh, self.reports[sh.host_id][0])
            return agent_pb2.AdvanceClockResponse(time_ns=_ns(sh.time), period=sh.scanner.period,
                                                  wall_time_ns=_ns(time.perf_counter() - t0),
                                                  ticks_run=request.ticks)
        return await self._run(request.host_id, context, advance)

    async def GetStats(self, request, context):
        return await self._run(request.host_id, context, lambda sh: stats_pb(sh, sh.results()))

    async def realtime(self) -> None:
        """Advance every host's clock with the wall clock, one tick at a time."""
        start = time.monotonic()
        while True:
            for hid, sh in self.hosts.items():
                due = int((time.monotonic() - start) / sh.scenario.tick)
                behind = due - sh.host.tick_no
                if behind > 0:
                    async with self.locks[hid]:
                        await asyncio.to_thread(sh.advance, behind)
            await asyncio.sleep(min(sh.scenario.tick for sh in self.hosts.values()) / 2)


async def start_server(hosts: list[SimHost], listen: str = "127.0.0.1:0",
                       realtime: bool = False) -> tuple[grpc.aio.Server, int, AgentServicer]:
    """Start an AgentService server (with health and reflection) on `listen`; returns (server, port)."""
    servicer = AgentServicer(hosts)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    agent_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service = agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
    reflection.enable_server_reflection([service, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    if realtime:
        servicer.clock_task = asyncio.get_running_loop().create_task(servicer.realtime())
    return server, port, servicer
