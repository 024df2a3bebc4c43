"""A restarted agent is a new host, whichever call sees it first (controller/proxy.py, controller/controller.py),
and a host back from an outage is waited for by the harness's round (Controller.wait_reconciled's `back`).
Without Ray or servers: fakes stand in for the agent's stub and the host's proxy actor."""

import asyncio
import time
from types import SimpleNamespace

from pagetide.controller import controller as controller_mod
from pagetide.controller.controller import Controller
from pagetide.controller.proxy import HostClient
from pagetide.v1 import agent_pb2


def topology(incarnation: int) -> agent_pb2.GetTopologyResponse:
    return agent_pb2.GetTopologyResponse(host_id="h0", incarnation=str(incarnation), period_ns=1_000_000_000)


def client(answers: list[agent_pb2.GetTopologyResponse]) -> HostClient:
    c = object.__new__(HostClient)             # no channel: the stub is a fake
    async def get(request, timeout):
        return answers.pop(0)
    c.host_id, c.policy_name, c.policy_options = "h0", "pagetide", {}
    c.policy = c.topology = None
    c.last_period, c.dram_nodes = 0, set()
    c.stub = SimpleNamespace(GetTopology=get)
    return c


def test_a_topology_read_that_sees_a_new_incarnation_starts_the_policy_and_periods_afresh():
    c = client([topology(7), topology(7), topology(8)])
    asyncio.run(c.get_topology())
    first = c.policy
    c.last_period = 12
    asyncio.run(c.get_topology())              # same agent: the policy's state is kept
    assert c.policy is first and c.last_period == 12
    asyncio.run(c.get_topology())              # restarted: its periods count from 1 again
    assert c.policy is not first and c.last_period == 0


def test_the_controller_forgets_the_last_period_of_a_host_whose_agent_restarted():
    ctl = Controller({"h0": "127.0.0.1:1"})
    answers = [topology(7), topology(7), topology(8)]
    async def remote(host_id):
        assert host_id == "h0"
        return answers.pop(0).SerializeToString()
    ctl.proxies = {"h0": SimpleNamespace(topology=SimpleNamespace(remote=remote))}

    async def run():
        await ctl._read_topology("h0", 1.0)
        ctl.hosts["h0"].last_period = 12
        await ctl._read_topology("h0", 1.0)
        kept = ctl.hosts["h0"].last_period
        await ctl._read_topology("h0", 1.0)
        return kept, ctl.hosts["h0"].last_period
    # before: 12 was kept, so a round's wait for the new agent's periods 1..12 returned at once
    assert asyncio.run(run()) == (12, 0)


def fleet(status: str) -> Controller:
    ctl = Controller({"h0": "127.0.0.1:1", "h1": "127.0.0.1:2"})
    ctl.hosts["h0"].status, ctl.hosts["h0"].last_period = "up", 3
    ctl.hosts["h1"].status, ctl.hosts["h1"].last_period = status, 0
    return ctl


def test_a_host_back_in_the_harness_but_still_down_here_is_waited_for_until_it_is_reconciled():
    ctl = fleet("down")
    ctl.hosts["h1"].last_period = 12          # its old incarnation's: no proof the new one's period 1 is done

    async def run():
        async def comes_back():
            await asyncio.sleep(0.05)
            s = ctl.hosts["h1"]
            s.status, s.last_period = "up", 1
            async with ctl._changed:
                ctl._changed.notify_all()
        t0 = time.monotonic()
        task = asyncio.create_task(comes_back())
        ok = await ctl.wait_reconciled({"h0": 3, "h1": 1}, 5.0, back={"h1"})
        waited = time.monotonic() - t0
        await task
        return ok, waited, ctl.hosts["h1"].last_period
    ok, waited, period = asyncio.run(run())
    assert ok and waited >= 0.05 and period == 1


def test_a_down_host_not_back_is_not_waited_for_and_one_back_only_for_the_grace(monkeypatch):
    async def timed(ctl, back):
        t0 = time.monotonic()
        ok = await ctl.wait_reconciled({"h0": 3, "h1": 1}, 5.0, back=back)
        return ok, time.monotonic() - t0
    ok, waited = asyncio.run(timed(fleet("down"), set()))
    assert ok and waited < 0.05
    monkeypatch.setattr(controller_mod, "BACK_GRACE", 0.1)
    ok, waited = asyncio.run(timed(fleet("down"), {"h1"}))     # never found again: the round goes on
    assert ok and 0.1 <= waited < 1.0


def test_a_host_up_that_never_acts_on_its_period_times_the_wait_out():
    async def run():
        t0 = time.monotonic()
        ok = await fleet("up").wait_reconciled({"h0": 3, "h1": 1}, 0.1)
        return ok, time.monotonic() - t0
    ok, waited = asyncio.run(run())
    assert not ok and 0.1 <= waited < 1.0


def test_the_simulation_client_names_the_hosts_back_in_an_advance_after_an_absence():
    from pagetide.harness.agents import SimulationClient
    from pagetide.v1 import simulation_pb2

    sim = SimulationClient.__new__(SimulationClient)          # no channels: the stubs are fakes
    async def advance(request, timeout):
        return simulation_pb2.AdvanceClockResponse(period=1)
    sim.hosts = {"h0": "a", "h1": "b"}
    sim.stubs = {h: SimpleNamespace(AdvanceClock=advance) for h in sim.hosts}
    sim.lagging, sim.last_wall, sim.answered, sim.back = {}, {}, set(sim.hosts), set()
    sim.set_aside = True

    async def run():
        seen = []
        for lagging in (False, True, False, False):
            if lagging:
                sim.lagging["h1"] = asyncio.get_running_loop().create_future()   # set aside, its probe pending
            else:
                sim.lagging.pop("h1", None)
            ok, failed = await sim.advance(1)
            seen.append((sorted(ok), sorted(sim.back)))
        return seen
    assert asyncio.run(run()) == [(["h0", "h1"], []), (["h0"], []), (["h0", "h1"], ["h1"]), (["h0", "h1"], [])]
