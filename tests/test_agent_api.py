"""AgentService and SimulationService over a real gRPC server (in-process, on a loopback port): bad input gets
a gRPC error or a per-page errno and changes nothing; long polls wake at the next period; a realtime clock
refuses to be driven."""

import asyncio
import errno

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pagetide.agent.server import heat_pb, start_agent
from pagetide.agent.simhost import SimHost
from pagetide.v1 import agent_pb2, agent_pb2_grpc, simulation_pb2, simulation_pb2_grpc, types_pb2

from helpers import small_scenario


def move(host_id, *calls, batch_id="", expected=None):
    """A MovePagesRequest of (tenant, addresses, nodes) calls; `expected`: per call the expected nodes."""
    req = agent_pb2.MovePagesRequest(host_id=host_id, batch_id=batch_id, calls=[
        agent_pb2.MoveCall(tenant=t, count=len(a), addresses=np.array(a, dtype="<u8").tobytes(),
                           nodes=np.array(n, dtype="<i2").tobytes()) for t, a, n in calls])
    for c, e in zip(req.calls, expected or ()):
        c.expected_nodes = np.array(e, dtype="<i2").tobytes()
    return req


def status(result) -> list[int]:
    return np.frombuffer(result.status, dtype="<i2").tolist()


class Stubs:
    """The agent's two services on one channel."""

    def __init__(self, ch):
        self.agent = agent_pb2_grpc.AgentServiceStub(ch)
        self.sim = simulation_pb2_grpc.SimulationServiceStub(ch)

    def __getattr__(self, name):
        return getattr(self.agent, name)

    def AdvanceClock(self, request, **kw):
        return self.sim.AdvanceClock(request, **kw)

    def GetStats(self, request, **kw):
        return self.sim.GetStats(request, **kw)


def with_agent(test, clock="driven", scenario=None):
    """Run `test(stubs, sim_host, channel)` against a live server serving one small host."""
    async def main():
        sh = SimHost(scenario or small_scenario(name="h0"))
        agent = await start_agent([sh], "127.0.0.1:0", clock=clock)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as ch:
                await test(Stubs(ch), sh, ch)
        finally:
            await agent.stop(None)
    asyncio.run(main())


def test_health_and_topology_are_served():
    async def t(stub, sh, ch):
        health = health_pb2_grpc.HealthStub(ch)
        r = await health.Check(health_pb2.HealthCheckRequest(service="pagetide.v1.AgentService"), timeout=5)
        assert r.status == health_pb2.HealthCheckResponse.SERVING
        topo = await stub.GetTopology(agent_pb2.GetTopologyRequest(host_id="h0"), timeout=5)
        assert [n.peer_node for n in topo.nodes] == [1, 0]
        assert topo.tenants[0].address_start == sh.host.tenants[0].vma_start
        assert topo.nodes[0].capacity_bytes == 64 << 20
        assert topo.zonelist_mode == types_pb2.ZONELIST_MODE_SEPARATE and topo.demotion_enabled
    with_agent(t)


def test_bad_requests_get_grpc_errors_and_change_nothing():
    async def t(stub, sh, ch):
        tenant = sh.host.tenants[0]
        other = 1 - int(sh.host.node[tenant.start])
        before = (sh.host.node.copy(), dict(sh.host.vmstat))
        cases = [
            (stub.GetTopology(agent_pb2.GetTopologyRequest(host_id="nope"), timeout=5), grpc.StatusCode.NOT_FOUND),
            (stub.MovePages(move("h0", ("ghost", [tenant.vma_start], [1])), timeout=5), grpc.StatusCode.NOT_FOUND),
            (stub.MovePages(move("h0", (tenant.name, [tenant.vma_start + 100], [1])), timeout=5),
             grpc.StatusCode.INVALID_ARGUMENT),
            (stub.MovePages(move("h0", (tenant.name, [tenant.vma_start + 4096 * i for i in range(1025)], [1] * 1025)),
                            timeout=5), grpc.StatusCode.INVALID_ARGUMENT),
            (stub.MovePages(move("h0", (tenant.name, [tenant.vma_start], [])), timeout=5),
             grpc.StatusCode.INVALID_ARGUMENT),
            # a good call followed by a bad one: the request is refused whole, the good call does not run
            (stub.MovePages(move("h0", (tenant.name, [tenant.vma_start], [other]), ("ghost", [0], [1])), timeout=5),
             grpc.StatusCode.NOT_FOUND),
            (stub.MovePages(move("h0", *[(tenant.name, [tenant.vma_start], [other])] * 65), timeout=5),
             grpc.StatusCode.INVALID_ARGUMENT),
            (stub.GetHeatReport(agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=10**6), timeout=5),
             grpc.StatusCode.INVALID_ARGUMENT),
            (stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=10**7), timeout=5),
             grpc.StatusCode.INVALID_ARGUMENT),
        ]
        for call, code in cases:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call
            assert e.value.code() == code, e.value.details()
            assert e.value.details()
        assert (sh.host.node == before[0]).all() and sh.host.vmstat == before[1]
        sh.host.check_invariants()
    with_agent(t)


def test_per_page_errors_come_back_as_negative_errnos():
    async def t(stub, sh, ch):
        tenant = sh.host.tenants[0]
        page = tenant.vma_start
        other = 1 - int(sh.host.node[tenant.start])
        r = await stub.MovePages(move("h0", (tenant.name, [page, page + 4096, tenant.vma_end,
                                                   tenant.vma_start - (1 << 30)], [other, 7, 1, 1]),
                                      (tenant.name, [page + 8192], [1]), batch_id="x1"), timeout=5)
        first = r.results[0]
        assert status(first) == [other, -errno.EINVAL, -errno.EFAULT, -errno.EFAULT]
        assert first.moved_pages == 1 and first.moved_bytes == 4096 and first.migration_time_ns > 0
        assert status(r.results[1]) == [1]
        again = await stub.MovePages(move("h0", (tenant.name, [page, page + 4096, tenant.vma_end,
                                                       tenant.vma_start - (1 << 30)], [other, 7, 1, 1]),
                                          (tenant.name, [page + 8192], [1]), batch_id="x1"), timeout=5)
        assert again == r                                   # a retried batch id is answered, not re-applied
        assert sh.host.node[tenant.start] == other
        sh.host.check_invariants()
    with_agent(t)


def test_heat_report_is_bounded_and_describes_the_last_period():
    async def t(stub, sh, ch):
        adv = await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=10), timeout=30)
        assert adv.ticks_run == 10 and adv.time_ns == 1_000_000_000
        r = await stub.GetHeatReport(agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=100), timeout=5)
        assert r.period == 2 and r.nr_scans == 5
        th = r.tenants[0]
        assert th.hot_slow.count <= 100 and th.cold_fast.count <= 100
        assert len(th.hot_slow.addresses) == 8 * th.hot_slow.count
        assert sum(sum(h.pages) for h in th.histograms) == int((sh.host.node >= 0).sum())
        assert r.ByteSize() < 1 << 20
        st = await stub.GetStats(simulation_pb2.GetStatsRequest(host_id="h0"), timeout=5)
        assert 0 < st.tenants[0].dram_share <= 1 and st.time_ns == 1_000_000_000
        assert th.accessed_page_scans == int(sh.tracker.period_refs[0]) > 0
        t = st.tenants[0]
        assert sum(t.node_reads) + sum(t.node_writes) == pytest.approx(t.accesses)
        assert t.node_reads[0] / (sum(t.node_reads) or 1) == pytest.approx(
            sh.host.tenants[0].stats.reads[0] / sh.host.tenants[0].stats.reads.sum())
        assert list(st.node_used_bytes) == [int(x) * 4096 for x in sh.host.node_used]
        assert list(st.node_free_bytes) == [int(x) * 4096 for x in sh.host.free()]
    with_agent(t)


def test_stats_carry_the_static_oracle_so_far():
    async def t(stub, sh, ch):
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=10), timeout=30)
        st = await stub.GetStats(simulation_pb2.GetStatsRequest(host_id="h0"), timeout=5)
        s = st.tenants[0].static_oracle_share
        assert 0 < s <= 1 and s <= st.tenants[0].oracle_share * (1 + 1e-6)
    with_agent(t)


def test_heat_reports_are_built_at_the_end_of_advance_and_never_stale():
    async def t(stub, sh, ch):
        ask = agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=64)
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=sh.scenario.ticks_per_epoch),
                                timeout=5)
        first = await stub.GetHeatReport(ask, timeout=5)
        built = []
        real = sh.heat_report
        sh.heat_report = lambda k, marks=None: built.append(k) or real(k, marks)
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=sh.scenario.ticks_per_epoch),
                                timeout=5)
        assert built == [64]                      # the next report was built by the advance, at the last size
        second = await stub.GetHeatReport(ask, timeout=5)
        assert built == [64] and second.period == first.period + 1
        fresh = heat_pb("h0", real(64))
        fresh.incarnation = second.incarnation
        assert second == fresh                      # ... and is what a fresh build gives
        # a move changes the state: the next report is rebuilt and shows the page on its new node
        hot = second.tenants[0].hot_slow
        addr = int(np.frombuffer(hot.addresses, "<u8")[0])
        dram = [n.id for n in (await stub.GetTopology(agent_pb2.GetTopologyRequest(host_id="h0"),
                                                       timeout=5)).nodes if n.type == types_pb2.NODE_TYPE_DRAM][0]
        r = await stub.MovePages(move("h0", (second.tenants[0].tenant, [addr], [dram])), timeout=5)
        assert status(r.results[0]) == [dram]
        third = await stub.GetHeatReport(ask, timeout=5)
        assert built == [64, 64] and addr not in np.frombuffer(third.tenants[0].hot_slow.addresses, "<u8")
        assert await stub.GetHeatReport(agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=8),
                                        timeout=5) != third and built == [64, 64, 8]
        # a shorter hot_fast list when asked for one; the other lists keep max_candidates
        few = await stub.GetHeatReport(agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=64,
                                                                      max_hot_fast=3), timeout=5)
        assert [t.hot_fast.count for t in few.tenants] == [min(3, t.hot_fast.count) for t in third.tenants]
        assert [t.cold_fast.count for t in few.tenants] == [t.cold_fast.count for t in third.tenants]
        assert any(t.hot_fast.count > 3 for t in third.tenants)
    with_agent(t)


def test_a_move_whose_arrays_do_not_match_its_count_is_refused_whole():
    async def t(stub, sh, ch):
        tenant = sh.host.tenants[0]
        before = sh.host.node.copy()
        bad = agent_pb2.MovePagesRequest(host_id="h0", calls=[agent_pb2.MoveCall(
            tenant=tenant.name, count=2, addresses=np.array([tenant.vma_start], "<u8").tobytes(),
            nodes=np.array([1], "<i2").tobytes())])
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.MovePages(bad, timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "count 2" in e.value.details()
        assert (sh.host.node == before).all()
    with_agent(t)


def test_a_long_poll_answers_when_the_next_period_completes_and_waits_out_otherwise():
    async def t(stub, sh, ch):
        per = sh.scenario.ticks_per_epoch
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=per), timeout=5)
        ask = agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=16, wait_for_period_after=1,
                                             max_wait_ms=200)
        idle = await stub.GetHeatReport(ask, timeout=5)
        assert idle.waited_out and idle.period == 1 and not idle.tenants
        ask.max_wait_ms = 10_000
        waiting = asyncio.ensure_future(stub.GetHeatReport(ask, timeout=15))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=per), timeout=5)
        woke = await asyncio.wait_for(waiting, 5)
        assert not woke.waited_out and woke.period == 2 and woke.tenants
        # a period already past the one named answers at once (a client that missed periods, a restarted host)
        ask.wait_for_period_after = 7
        assert (await stub.GetHeatReport(ask, timeout=1)).period == 2
        with pytest.raises(grpc.aio.AioRpcError) as e:
            ask.max_wait_ms = 10**6
            await stub.GetHeatReport(ask, timeout=1)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with_agent(t)


def test_an_agent_with_a_realtime_clock_refuses_to_be_driven_but_advances_by_itself():
    async def t(stub, sh, ch):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=1), timeout=5)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        r = await stub.GetHeatReport(agent_pb2.GetHeatReportRequest(
            host_id="h0", max_candidates=8, wait_for_period_after=0, max_wait_ms=5000), timeout=10)
        assert r.period >= 1 and not r.waited_out         # the 500 ms period completed on the wall clock
        st = await stub.GetStats(simulation_pb2.GetStatsRequest(host_id="h0"), timeout=5)
        assert st.time_ns >= 500_000_000
    with_agent(t, clock="realtime")


def test_a_batch_id_reused_for_other_calls_is_refused_and_moves_nothing():
    async def t(stub, sh, ch):
        tenant = sh.host.tenants[0]
        page = tenant.vma_start
        here = int(sh.host.node[tenant.start])
        await stub.MovePages(move("h0", (tenant.name, [page], [1 - here]), batch_id="b"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.MovePages(move("h0", (tenant.name, [page], [here]), batch_id="b"), timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "different calls" in e.value.details()
        assert sh.host.node[tenant.start] == 1 - here
        sh.host.check_invariants()
    with_agent(t)


def test_a_batch_delivered_again_late_or_after_the_pages_moved_moves_each_page_at_most_once():
    """Expected nodes make a batch the agent no longer remembers (a restart, or over 1024 ids later) harmless:
    pages that are no longer where the plan saw them stay put with -EBUSY; unmapped ones report -ENOENT."""
    async def t(stub, sh, ch):
        tenant = sh.host.tenants[0]
        h = sh.host
        mapped = np.flatnonzero(h.node[tenant.start:tenant.end] >= 0)[:3]
        pages = [tenant.vma_start + int(i) * 4096 for i in mapped]
        where = [int(h.node[tenant.start + i]) for i in mapped]
        unmapped = np.flatnonzero(h.node[tenant.start:tenant.end] < 0)
        assert unmapped.size, "the scenario's footprint is over its memory: some pages are in swap"
        hole = tenant.vma_start + int(unmapped[0]) * 4096
        target = [1 - w for w in where]
        req = dict(expected=[where + [0]])
        r = await stub.MovePages(move("h0", (tenant.name, pages + [hole], target + [1]), batch_id="a", **req),
                                 timeout=5)
        assert status(r.results[0]) == target + [-errno.ENOENT]
        # the same decision again under a new id (the agent forgot the first): nothing moves back or twice
        again = await stub.MovePages(move("h0", (tenant.name, pages + [hole], target + [1]), batch_id="a2", **req),
                                     timeout=5)
        assert status(again.results[0]) == [-errno.EBUSY] * 3 + [-errno.ENOENT]
        assert again.results[0].moved_pages == 0
        # a page that moved meanwhile (here: moved back by someone else) is stale for the old plan too
        await stub.MovePages(move("h0", (tenant.name, pages[:1], where[:1])), timeout=5)
        late = await stub.MovePages(move("h0", (tenant.name, pages[1:], where[1:]), expected=[where[1:]]),
                                    timeout=5)
        assert status(late.results[0]) == [-errno.EBUSY] * 2
        assert [int(h.node[tenant.start + i]) for i in mapped] == [where[0]] + target[1:]
        with pytest.raises(grpc.aio.AioRpcError) as e:
            bad = move("h0", (tenant.name, pages, target))
            bad.calls[0].expected_nodes = b"\0\0"
            await stub.MovePages(bad, timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "expected_nodes" in e.value.details()
        h.check_invariants()
    two = [{"name": f"vm{i}", "footprint": "64MiB", "workload": {"type": "zipf", "samples": 2048}} for i in (0, 1)]
    with_agent(t, scenario=small_scenario(name="h0", dram="32MiB", slow="48MiB", tenants=two))


def test_one_call_cannot_ask_for_unbounded_simulation():
    async def t(stub, sh, ch):
        from pagetide.agent.server import max_ticks

        limit = max_ticks(sh)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=limit + 1), timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and f"at most {limit}" in e.value.details()
        assert sh.ticks_run == 0
    with_agent(t)


def test_the_tick_limit_follows_the_host_size():
    from pagetide.agent.server import max_ticks
    from pagetide.common.limits import MAX_PAGE_TICKS, MAX_TICKS

    class Fake:
        def __init__(self, pages):
            self.pages = pages
    assert max_ticks(Fake(1000)) == MAX_TICKS
    assert max_ticks(Fake(720896)) == MAX_PAGE_TICKS // 720896 == 1489
    assert max_ticks(Fake(1 << 40)) == 1


class SlowHost:
    """A simulated host whose ticks take wall time, recording whether two advances ever ran at once."""

    def __init__(self, inner, seconds_per_tick):
        self._inner, self._spt = inner, seconds_per_tick
        self.running = self.overlaps = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def advance(self, ticks):
        import time

        self.running += 1
        self.overlaps += self.running > 1
        try:
            for _ in range(ticks):
                time.sleep(self._spt)
                self._inner.advance(1)
        finally:
            self.running -= 1


def test_a_deadline_on_a_clock_advance_never_lets_a_second_call_run_on_the_same_host():
    """Issue 9's defect: a client deadline released the host's lock while the worker thread kept simulating,
    so the next call ran at once beside it and the host's clock and period fell out of step."""
    from pagetide.agent.backend import Simulated

    async def main():
        sh = SlowHost(SimHost(small_scenario(name="h0")), 0.004)
        assert isinstance(sh, Simulated)
        agent = await start_agent([sh], "127.0.0.1:0")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as ch:
                stub = simulation_pb2_grpc.SimulationServiceStub(ch)
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=150), timeout=0.1)
                assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                r = await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=10), timeout=30)
                assert sh.overlaps == 0
                assert r.time_ns == 160 * 100_000_000 and sh.ticks_run == 160
                assert r.period == 160 // sh.scenario.ticks_per_epoch
                sh.host.check_invariants()
        finally:
            await agent.stop(None)
    asyncio.run(main())


def test_every_topology_and_heat_report_carries_the_agents_incarnation_and_a_new_agent_has_another():
    seen = []

    async def t(stub, sh, ch):
        topo = await stub.GetTopology(agent_pb2.GetTopologyRequest(host_id="h0"), timeout=5)
        waited = await stub.GetHeatReport(agent_pb2.GetHeatReportRequest(
            host_id="h0", max_candidates=8, wait_for_period_after=0, max_wait_ms=10), timeout=5)
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=sh.scenario.ticks_per_epoch),
                                timeout=5)
        full = await stub.GetHeatReport(agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=8), timeout=5)
        assert waited.waited_out and not full.waited_out
        seen.append((topo.incarnation, waited.incarnation, full.incarnation))
    with_agent(t)
    with_agent(t)
    (a, b, c), (d, e, f) = seen
    assert a and a == b == c and d == e == f and a != d
