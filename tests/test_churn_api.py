"""SimulationService's AddTenant, RemoveTenant and ResizeTenant over a real gRPC server (in-process, loopback):
each change shows in topology, heat reports and stats with a new tenant generation; a refused one gets its gRPC
status naming the field and changes nothing."""

import grpc
import numpy as np
import pytest

from pagetide.v1 import agent_pb2, simulation_pb2

from test_agent_api import with_agent

MiB = 1 << 20


def add(name="web", footprint=16 * MiB, **kw) -> simulation_pb2.AddTenantRequest:
    wl = kw.pop("workload", simulation_pb2.Workload(type="zipf", options={"samples": "512", "rate": "20M/s"}))
    return simulation_pb2.AddTenantRequest(host_id="h0", name=name, footprint_bytes=footprint, workload=wl, **kw)


def snapshot(sh):
    h = sh.host
    return (h.node.copy(), h.node_used.copy(), [t.name for t in h.tenants], [t.spec.footprint for t in h.tenants],
            h.generation)


def unchanged(a, b) -> bool:
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def test_a_vm_that_arrives_resizes_and_leaves_shows_in_topology_heat_and_stats():
    async def t(stub, sh, ch):
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=5), timeout=30)
        before = await stub.GetTopology(agent_pb2.GetTopologyRequest(host_id="h0"), timeout=5)
        r = await stub.sim.AddTenant(add(labels={"team": "web"}), timeout=30)
        assert r.tenant.name == "web" and r.tenant.footprint_bytes == 16 * MiB and dict(r.tenant.labels) == {"team": "web"}
        assert r.tenant_generation == before.tenant_generation + 1
        topo = await stub.GetTopology(agent_pb2.GetTopologyRequest(host_id="h0"), timeout=5)
        assert [x.name for x in topo.tenants] == ["vm0", "web"] and topo.tenant_generation == r.tenant_generation
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=5), timeout=30)
        rep = await stub.GetHeatReport(agent_pb2.GetHeatReportRequest(host_id="h0", max_candidates=16), timeout=10)
        assert [x.tenant for x in rep.tenants] == ["vm0", "web"] and rep.tenant_generation == r.tenant_generation
        rz = await stub.sim.ResizeTenant(simulation_pb2.ResizeTenantRequest(host_id="h0", tenant="web",
                                                                            footprint_bytes=24 * MiB), timeout=30)
        assert rz.tenant.footprint_bytes == 24 * MiB and rz.tenant.address_end - rz.tenant.address_start == 24 * MiB
        gone = await stub.sim.RemoveTenant(simulation_pb2.RemoveTenantRequest(host_id="h0", tenant="vm0"), timeout=30)
        assert gone.tenant_generation == rz.tenant_generation + 1
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=5), timeout=30)
        stats = await stub.GetStats(simulation_pb2.GetStatsRequest(host_id="h0"), timeout=30)
        by = {x.tenant: x for x in stats.tenants}
        assert by["vm0"].departed and by["vm0"].departed_time_ns == 1_000_000_000 and by["vm0"].accesses > 0
        assert not by["web"].departed and by["web"].arrived_time_ns == 500_000_000 and by["web"].first_epoch == 1
        assert dict(by["web"].labels) == {"team": "web"}
        assert stats.invariant_error == ""
    with_agent(t)


@pytest.mark.parametrize("call, code, field", [
    (lambda s: s.AddTenant(add(name="vm0")), grpc.StatusCode.ALREADY_EXISTS, "tenant 'vm0'"),
    (lambda s: s.AddTenant(add(footprint=16 * MiB + 1)), grpc.StatusCode.INVALID_ARGUMENT, "footprint_bytes"),
    (lambda s: s.AddTenant(add(workload=simulation_pb2.Workload(type="nope"))), grpc.StatusCode.INVALID_ARGUMENT,
     "workload.type"),
    (lambda s: s.AddTenant(add(workload=simulation_pb2.Workload(type="zipf", options={"rate": "fast"}))),
     grpc.StatusCode.INVALID_ARGUMENT, "workload.options.rate"),
    (lambda s: s.AddTenant(add(home_node=1)), grpc.StatusCode.INVALID_ARGUMENT, "home_node"),
    (lambda s: s.AddTenant(add(name="bad name")), grpc.StatusCode.INVALID_ARGUMENT, "name"),
    (lambda s: s.AddTenant(add(footprint=240 * MiB)), grpc.StatusCode.RESOURCE_EXHAUSTED, "tenant 'web'"),
    (lambda s: s.RemoveTenant(simulation_pb2.RemoveTenantRequest(host_id="h0", tenant="nobody")),
     grpc.StatusCode.NOT_FOUND, "no tenant 'nobody'"),
    (lambda s: s.ResizeTenant(simulation_pb2.ResizeTenantRequest(host_id="h0", tenant="nobody", footprint_bytes=MiB)),
     grpc.StatusCode.NOT_FOUND, "no tenant 'nobody'"),
    (lambda s: s.ResizeTenant(simulation_pb2.ResizeTenantRequest(host_id="h0", tenant="vm0", footprint_bytes=0)),
     grpc.StatusCode.INVALID_ARGUMENT, "footprint_bytes"),
    (lambda s: s.ResizeTenant(simulation_pb2.ResizeTenantRequest(host_id="h0", tenant="vm0",
                                                                 footprint_bytes=1024 * MiB)),
     grpc.StatusCode.RESOURCE_EXHAUSTED, "tenant 'vm0'"),
    (lambda s: s.AddTenant(simulation_pb2.AddTenantRequest(host_id="nohost", name="x")), grpc.StatusCode.NOT_FOUND,
     "no host"),
])
def test_a_refused_tenant_change_gets_its_status_naming_the_field_and_changes_nothing(call, code, field):
    async def t(stub, sh, ch):
        await stub.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=2), timeout=30)
        before = snapshot(sh)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call(stub.sim)
        assert e.value.code() == code and e.value.details().startswith(field), e.value.details()
        assert unchanged(before, snapshot(sh))
    # 64 MiB DRAM + 192 MiB slow + 0 swap, vm0 maps 96 MiB
    from helpers import small_scenario
    with_agent(t, scenario=small_scenario(name="h0", kernel={"swap": "0"}))
