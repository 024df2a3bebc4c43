"""`pagetide agent --backend linux` serving a child process of this test, driven by the controller's own
host client (controller/hostclient.py HostClient, unchanged): topology, a heat report through the long poll, a
move of the child's pages to node 0 (status 0 on this machine); simulation-only calls refused
FAILED_PRECONDITION."""

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from pagetide.v1 import agent_pb2, simulation_pb2, simulation_pb2_grpc, types_pb2

pytestmark = pytest.mark.e2e
PAGE = 4096
NPAGES = 64
CHILD = f"""
import ctypes, mmap, time
buf = mmap.mmap(-1, {NPAGES} * {PAGE}, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range({NPAGES}):
    buf[i * {PAGE}] = 1
print(ctypes.addressof(ctypes.c_char.from_buffer(buf)), flush=True)
time.sleep(120)
"""
PAGETIDE = str(Path(sys.executable).with_name("pagetide"))


@pytest.fixture
def linux_agent():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    base = int(child.stdout.readline())
    agent = subprocess.Popen([PAGETIDE, "agent", "--backend", "linux", "--tenant", f"wl=pid:{child.pid}",
                              "--host-id", "real", "--period", "0.5", "--nr-scans", "2",
                              "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        lines = []
        for line in agent.stdout:
            lines.append(line)
            m = re.search(r"\(port (\d+),", line)
            if m:
                break
        else:
            pytest.fail("agent exited: " + "".join(lines))
        yield f"127.0.0.1:{m[1]}", base, "".join(lines)
    finally:
        agent.terminate()
        agent.wait(timeout=10)
        child.kill()
        child.wait(timeout=10)


def test_the_controller_reads_a_real_host_and_moves_its_pages_to_node_0(linux_agent):
    from pagetide.controller.policies import PolicyParams
    from pagetide.controller.hostclient import HostClient

    address, base, log = linux_agent
    assert "tracker " in log and "linux host real" in log

    async def drive():
        client = HostClient(address, "real")
        try:
            topo = await client.get_topology()
            assert topo.backend == "linux" and topo.host_id == "real"
            assert any(n.id == 0 and n.type == types_pb2.NODE_TYPE_DRAM for n in topo.nodes)
            assert [t.name for t in topo.tenants] == ["wl"]
            res = None
            for _ in range(10):                     # a round once the first period completes
                res = await client.reconcile({}, PolicyParams(), wait=2.0)
                if res is not None:
                    break
            assert res is not None and res.period >= 1
            assert res.dram_resident_share["wl"] == pytest.approx(1.0)   # one node: everything is on DRAM
            report = await client.stub.GetHeatReport(agent_pb2.GetHeatReportRequest(host_id="real",
                                                                                   max_candidates=16384),
                                                     timeout=10)
            (t,) = report.tenants
            assert report.tracker in ("idle_pages", "page_idle", "soft_dirty", "none")
            addrs = np.frombuffer(t.cold_fast.addresses, "<u8")
            mine = addrs[(addrs >= base) & (addrs < base + NPAGES * PAGE)]
            assert mine.size == NPAGES
            moved = await client.stub.MovePages(agent_pb2.MovePagesRequest(host_id="real", batch_id="b1", calls=[
                agent_pb2.MoveCall(tenant="wl", count=mine.size, addresses=mine.astype("<u8").tobytes(),
                                   nodes=np.zeros(mine.size, "<i2").tobytes(), sw_young=True)]), timeout=10)
            assert np.frombuffer(moved.results[0].status, "<i2").tolist() == [0] * NPAGES

            sim = simulation_pb2_grpc.SimulationServiceStub(client.channel)
            for call, req in ((sim.AdvanceClock, simulation_pb2.AdvanceClockRequest(host_id="real", ticks=1)),
                              (sim.GetStats, simulation_pb2.GetStatsRequest(host_id="real"))):
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await call(req, timeout=10)
                assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert "real host (linux)" in e.value.details()
        finally:
            await client.close()

    asyncio.run(drive())
