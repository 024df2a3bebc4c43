"""Many hosts in one proxy actor (controller/proxy.py): how hosts are shared out over actors, each host's
rounds on their own inside an actor, and the controller's actors on a real Ray cluster."""

import asyncio
import os
import signal

import pytest

from pagetide.controller.controller import Controller
from pagetide.controller.proxy import HostRounds, proxy_groups


def test_hosts_are_packed_into_as_few_actors_as_the_limit_allows_but_one_per_ray_node_at_least():
    hosts = [f"h{i}" for i in range(64)]
    assert [len(g) for g in proxy_groups(hosts, 32)] == [32, 32] and len(proxy_groups(hosts, 16)) == 4
    assert [len(g) for g in proxy_groups(hosts[:5], 2)] == [2, 2, 1]
    assert proxy_groups(hosts[:4], 32, nodes=3) == [["h0", "h1"], ["h2"], ["h3"]]
    assert proxy_groups(hosts[:2], 32, nodes=3) == [["h0"], ["h1"]]       # never an actor without a host
    assert proxy_groups(hosts[:3], 1) == [["h0"], ["h1"], ["h2"]]          # 1: an actor per host
    assert sum(proxy_groups(hosts, 7), []) == hosts and proxy_groups([], 4) == []


def test_a_bad_hosts_per_proxy_is_refused_naming_the_setting():
    with pytest.raises(ValueError, match="hosts_per_proxy"):
        proxy_groups(["h0"], 0)
    with pytest.raises(ValueError, match="hosts_per_proxy"):
        Controller({"h0": "127.0.0.1:1"}, hosts_per_proxy=0)


class Blocked:
    """A host client whose round waits until released (a stalled agent's long poll)."""

    def __init__(self):
        self.release = asyncio.Event()
        self.calls = 0

    async def reconcile(self, *args):
        self.calls += 1
        await self.release.wait()
        return "late"


class Quick:
    def __init__(self, fail: bool = False):
        self.fail, self.calls = fail, 0

    async def reconcile(self, *args):
        self.calls += 1
        if self.fail:
            raise ConnectionError("agent gone")
        return "done"


def rounds_with(clients: dict) -> HostRounds:
    r = HostRounds({h: f"127.0.0.1:{i + 1}" for i, h in enumerate(clients)})
    r.clients = dict(clients)
    r.locks = {h: asyncio.Lock() for h in clients}
    return r


def test_hosts_in_one_actor_do_not_wait_for_each_other_and_one_hosts_failure_stays_its_own():
    stalled, broken, fine = Blocked(), Quick(fail=True), Quick()
    r = rounds_with({"a": stalled, "b": broken, "c": fine})

    async def run():
        a = asyncio.ensure_future(r.reconcile("a", {}, None, 4096, None, 5.0))
        await asyncio.sleep(0)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(r.reconcile("b", {}, None, 4096, None, 5.0), 1.0)
        c = [await asyncio.wait_for(r.reconcile("c", {}, None, 4096, None, 5.0), 1.0) for _ in range(3)]
        # a second round of the stalled host waits for its first (one round at a time per host)
        a2 = asyncio.ensure_future(r.reconcile("a", {}, None, 4096, None, 5.0))
        await asyncio.sleep(0.05)
        calls_while_stalled = stalled.calls
        stalled.release.set()
        return c, calls_while_stalled, await a, await a2

    c, calls_while_stalled, a, a2 = asyncio.run(run())
    assert c == ["done"] * 3 and fine.calls == 3
    assert calls_while_stalled == 1 and (a, a2) == ("late", "late") and stalled.calls == 2


def test_a_host_the_actor_does_not_serve_is_an_error_naming_it():
    r = HostRounds({"h0": "127.0.0.1:1"})
    with pytest.raises(KeyError, match="h9"):
        asyncio.run(r.topology("h9"))


@pytest.mark.e2e
def test_the_controller_packs_hosts_into_few_actors_and_a_dead_agent_stops_only_its_own_hosts(ray_session,
                                                                                               tmp_path):
    from pagetide.harness.agents import agent_command, launch_agents
    from pagetide.harness.drive import controlled, drive
    from test_e2e import scenario_files

    names = [f"p{i}" for i in range(6)]
    files = scenario_files(tmp_path, names)
    # agent A serves p0-p2, B p3-p5; three actors (one per Ray node) serve p0-p1, p2-p3, p4-p5: the middle
    # actor has a host of each agent
    agents = launch_agents([agent_command(*[a for f in files[:3] for a in ("--scenario", f)]),
                            agent_command(*[a for f in files[3:] for a in ("--scenario", f)])])
    results = []

    async def main():
        async with controlled(agents, on_round=results.append, wait=1.0, down_after=1) as (ctl, sim):
            actors = {h: p._actor_id.hex() for h, p in ctl.proxies.items()}
            await drive(ctl, sim, 2, 10)
            before = {h: s.rounds for h, s in ctl.hosts.items()}
            os.kill(agents[0].proc.pid, signal.SIGKILL)
            agents[0].proc.wait()
            await drive(ctl, sim, 3, 10)
            return actors, before, {h: (s.rounds, s.status) for h, s in ctl.hosts.items()}

    actors, before, after = asyncio.run(main())
    assert len(set(actors.values())) == 3, actors          # not one actor per host
    assert actors["p2"] == actors["p3"]
    assert all(n == 2 for n in before.values()), before
    for h in names[3:]:                                      # B's hosts, p3 beside a dead host in its actor
        assert after[h] == (5, "up"), after
    for h in names[:3]:
        assert after[h][0] == 2 and after[h][1] == "down", after


def test_a_rounds_cpu_is_its_own_steps_not_what_other_hosts_of_the_actor_run_while_it_waits():
    import time

    import grpc

    from helpers import small_scenario
    from pagetide.agent.server import start_agent
    from pagetide.agent.simhost import SimHost
    from pagetide.controller.policies import PolicyParams
    from pagetide.controller.proxy import HostClient
    from pagetide.v1 import simulation_pb2, simulation_pb2_grpc

    tenants = [{"name": "vm0", "footprint": "48MiB", "workload": {"type": "zipf", "samples": 1024}}]

    async def main():
        agent = await start_agent([SimHost(small_scenario(name="h0", tenants=tenants))], "127.0.0.1:0")
        addr = f"127.0.0.1:{agent.port}"
        client = HostClient(addr, "h0")
        move, others = client.stub.MovePages, []

        async def busy_meanwhile(request, timeout):
            # while this host's move is on the wire, another host of the actor plans (0.3 s of CPU)
            c = time.process_time()
            while time.process_time() - c < 0.3:
                pass
            others.append(time.process_time() - c)
            return await move(request, timeout=timeout)
        client.stub.MovePages = busy_meanwhile
        try:
            async with grpc.aio.insecure_channel(addr) as ch:
                sim = simulation_pb2_grpc.SimulationServiceStub(ch)
                await sim.AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id="h0", ticks=10), timeout=30)
                return await client.reconcile({}, PolicyParams(), 256, wait=1.0), others
        finally:
            await client.close()
            await agent.stop(None)

    res, others = asyncio.run(main())
    assert res is not None and res.batches and others
    assert 0 < res.cpu_seconds < 0.3, (res.cpu_seconds, others)
