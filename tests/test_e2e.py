"""End to end: real agent processes serving gRPC, a real Ray instance, the controller's HostProxy actors."""

import asyncio
import subprocess
import sys

import grpc
import pytest
import yaml
from prometheus_client import generate_latest

from pagetide.controller.controller import Controller, start_controller_server
from pagetide.controller.sim import SERVING, stop_agents, AgentProcess
from pagetide.v1 import controller_pb2, controller_pb2_grpc

pytestmark = pytest.mark.e2e


def host_yaml(name: str, seed: int) -> dict:
    """DRAM is already full of a cold VM's pages when a hot VM starts, so with stock zonelists and no
    demotion its hot set lands on PMEM: the controller must find and promote it."""
    return {
        "name": name, "seed": seed, "tick": "100ms", "epoch": "1s",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": "96MiB", "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": "256MiB"}],
                 "kernel": {"zonelist": "unified", "demotion_enabled": False, "swap": "0"}},
        "tenants": [
            {"name": "cold", "footprint": "96MiB", "workload": {"type": "idle-vm", "active_fraction": "5%",
                                                                  "rate": "1M/s", "samples": 1024}},
            {"name": "hot", "footprint": "128MiB", "prefault": False,
             "workload": {"type": "hotset", "hot_fraction": "20%", "move_every": 0, "samples": 8192}},
        ],
    }


def start_agent(tmp_path):
    files = []
    for i in range(2):
        p = tmp_path / f"h{i}.yaml"
        p.write_text(yaml.safe_dump(host_yaml(f"h{i}", i + 1)))
        files += ["--scenario", str(p)]
    proc = subprocess.Popen([sys.executable, "-m", "pagetide.controller.cli", "agent", "--listen", "127.0.0.1:0",
                             "--clock", "driven", *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = SERVING.search(line)
    assert m, proc.stderr.read()
    return AgentProcess(proc, int(m.group(2)), m.group(1).split(", "))


def test_controller_promotes_a_hot_set_that_started_on_pmem(ray_session, tmp_path):
    agent = start_agent(tmp_path)

    async def main():
        ctl = Controller({h: f"127.0.0.1:{agent.port}" for h in agent.hosts})
        await ctl.start()
        server, port = await start_controller_server(ctl)
        try:
            # a user's policy client: bad input is refused, a good policy is applied
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = controller_pb2_grpc.ControllerServiceStub(ch)
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await stub.SetVmPolicy(controller_pb2.SetVmPolicyRequest(policy=controller_pb2.VmPolicy(
                        host_id="h0", vm="hot", min_dram_bytes=2 << 20, max_dram_bytes=1 << 20)), timeout=5)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await stub.SetVmPolicy(controller_pb2.SetVmPolicyRequest(
                        policy=controller_pb2.VmPolicy(host_id="h0", vm="ghost", weight=1)), timeout=5)
                assert e.value.code() == grpc.StatusCode.NOT_FOUND
                await stub.SetVmPolicy(controller_pb2.SetVmPolicyRequest(
                    policy=controller_pb2.VmPolicy(host_id="h1", vm="hot", weight=2)), timeout=5)
                first = None
                for _ in range(25):
                    await ctl.round(advance_ticks=10)
                    stats = await ctl.refresh_stats()
                    hot = {h: next(t for t in st.tenants if t.tenant == "hot") for h, st in stats.items()}
                    if first is None:
                        first = {h: t.dram_share_series[0] for h, t in hot.items()}
                    if all(t.dram_share_series[-1] >= 0.9 * t.oracle_share_series[-1] for t in hot.values()):
                        break
                status = await stub.GetStatus(controller_pb2.GetStatusRequest(), timeout=5)
            return first, hot, status, ctl.rounds, generate_latest(ctl.metrics.registry).decode()
        finally:
            await server.stop(None)
            ctl.shutdown()

    try:
        first, hot, status, rounds, scrape = asyncio.run(main())
    finally:
        stop_agents([agent])
    for h, t in hot.items():
        assert first[h] < 0.2, "the hot set did not start on PMEM"
        assert t.oracle_share_series[-1] > 0.5
        assert t.dram_share_series[-1] >= 0.9 * t.oracle_share_series[-1], (h, list(t.dram_share_series))
    assert status.rounds == len(rounds) and all(s.promoted_bytes > 0 for s in status.hosts)
    assert max(r.report_bytes for rd in rounds for r in rd.results) < 1 << 20
    # the metrics a Prometheus scrape would see
    assert f"pagetide_rounds_total {float(len(rounds))}" in scrape
    share = f'pagetide_vm_dram_share_ratio{{host="h0",vm="hot"}} {hot["h0"].dram_share}'
    assert share in scrape
    assert 'pagetide_migrated_bytes_total{direction="promote",host="h1"}' in scrape
