"""The controller follows a host whose VMs arrive, leave and resize (controller/proxy.py, controller/controller.py):
a heat report of another tenant generation has the topology read again, the policy object kept, and the
controller serving the new VM set with every stored policy kept. A real agent in-process, no Ray."""

import asyncio

import grpc

from pagetide.agent.server import start_agent
from pagetide.agent.simhost import SimHost
from pagetide.controller.controller import Controller
from pagetide.controller.policies import PolicyParams, VmPolicy
from pagetide.controller.proxy import HostClient
from pagetide.v1 import simulation_pb2, simulation_pb2_grpc

from helpers import small_scenario

MiB = 1 << 20
TENANTS = [{"name": "vm0", "footprint": "48MiB", "workload": {"type": "zipf", "samples": 1024}},
           {"name": "vm1", "footprint": "32MiB", "workload": {"type": "hotset", "samples": 1024}}]


def test_a_changed_tenant_set_refreshes_the_controllers_view_and_keeps_policies_and_the_policy_state():
    async def main():
        sh = SimHost(small_scenario(name="h0", tenants=TENANTS))
        agent = await start_agent([sh], "127.0.0.1:0")
        addr = f"127.0.0.1:{agent.port}"
        client = HostClient(addr, "h0")
        ctl = Controller({"h0": addr})
        try:
            async with grpc.aio.insecure_channel(addr) as ch:
                sim = simulation_pb2_grpc.SimulationServiceStub(ch)

                async def period():
                    await sim.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=5), timeout=30)
                    return await client.reconcile(ctl.policies["h0"], PolicyParams(), 256, wait=1.0)

                ctl.hosts["h0"].topology = await client.get_topology()
                ctl.set_policy("h0", "vm0", VmPolicy(min_dram_share=0.25))
                ctl.set_policy("h0", "vm1", VmPolicy(weight=2.0))
                first = await period()
                assert first is not None and first.topology == b""       # nothing changed: no topology sent
                policy = client.policy
                try:
                    ctl.set_policy("h0", "web", VmPolicy(weight=3.0))
                    raise AssertionError("a VM not on the host yet must be refused")
                except KeyError:
                    pass
                await sim.AddTenant(simulation_pb2.AddTenantRequest(
                    host_id="h0", name="web", footprint_bytes=16 * MiB,
                    workload=simulation_pb2.Workload(type="zipf", options={"samples": "512"})), timeout=30)
                await sim.RemoveTenant(simulation_pb2.RemoveTenantRequest(host_id="h0", tenant="vm1"), timeout=30)
                await sim.ResizeTenant(simulation_pb2.ResizeTenantRequest(host_id="h0", tenant="vm0",
                                                                          footprint_bytes=40 * MiB), timeout=30)
                res = await period()
                assert res is not None and res.topology and not res.restarted
                assert client.policy is policy                       # the same host: its policy state kept
                assert res.period == first.period + 1
                assert set(res.heat_pages) == {"vm0", "web"}
                await ctl._record(res)
                topo = ctl.hosts["h0"].topology
                assert {t.name: t.footprint_bytes for t in topo.tenants} == {"vm0": 40 * MiB, "web": 16 * MiB}
                ctl.set_policy("h0", "web", VmPolicy(weight=3.0))     # the arrival can be given a policy now
                # stored policies stay, also that of the VM that left
                assert set(ctl.policies["h0"]) == {"vm0", "vm1", "web"}
                assert ctl.store.policies()["h0"]["vm0"] == VmPolicy(min_dram_share=0.25)
                again = await period()
                assert again is not None and again.topology == b""
        finally:
            await client.close()
            ctl.store.close()
            await agent.stop(None)
    asyncio.run(main())
