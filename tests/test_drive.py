"""A benchmark's strict drive: every host advances and is reconciled every round, or the drive stops with an
error naming the hosts (harness/drive.py `strict`, harness/agents.py `set_aside`). Fakes, no servers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from pagetide.controller.controller import Controller
from pagetide.harness import agents as agents_mod
from pagetide.harness import drive as drive_mod
from pagetide.harness.agents import SimulationClient
from pagetide.harness.drive import IncompleteRound, drive
from pagetide.v1 import simulation_pb2


def fake_client(delays: dict[str, float], set_aside: bool) -> SimulationClient:
    """A SimulationClient whose hosts answer AdvanceClock after their delay (seconds); no channels."""
    sim = SimulationClient.__new__(SimulationClient)
    periods = {h: 0 for h in delays}

    def stub(h):
        async def advance(request, timeout):
            await asyncio.sleep(delays[h])
            periods[h] += 1
            return simulation_pb2.AdvanceClockResponse(period=periods[h])
        return SimpleNamespace(AdvanceClock=advance)
    sim.hosts = {h: h for h in delays}
    sim.stubs = {h: stub(h) for h in delays}
    sim.lagging, sim.last_wall, sim.answered, sim.back = {}, {}, set(delays), set()
    sim.set_aside = set_aside
    return sim


@pytest.fixture
def short_grace(monkeypatch):
    monkeypatch.setattr(agents_mod, "MIN_LAG_GRACE", 0.02)
    monkeypatch.setattr(agents_mod, "LAG_GRACE_FACTOR", 1.0)


def test_a_slow_host_is_set_aside_in_a_fleet_but_waited_for_in_a_benchmark(short_grace):
    async def run(set_aside):
        sim = fake_client({"h0": 0.0, "h1": 0.0, "h2": 0.3}, set_aside)
        ok, failed = await sim.advance(1)
        for t in sim.lagging.values():
            t.cancel()
        await asyncio.gather(*sim.lagging.values(), return_exceptions=True)
        return sorted(ok), failed
    ok, failed = asyncio.run(run(True))
    assert ok == ["h0", "h1"] and failed == {"h2": "set aside: slower than the others by far"}
    ok, failed = asyncio.run(run(False))
    assert ok == ["h0", "h1", "h2"] and failed == {}


def reconciling(ctl: Controller, lag: set[str]):
    """A stand-in for the controller's loops: every host not in `lag` acts on each period it is given."""
    real = ctl.wait_reconciled

    async def wait(periods, timeout=None, back=frozenset(), down_too=False):
        for h, p in periods.items():
            if h not in lag:
                ctl.hosts[h].status, ctl.hosts[h].last_period = "up", p
        return await real(periods, timeout, back, down_too)
    ctl.wait_reconciled = wait
    return ctl


def test_a_strict_drive_runs_every_round_when_every_host_answers_and_is_reconciled():
    ctl = reconciling(Controller({"h0": "127.0.0.1:1", "h1": "127.0.0.1:2"}), set())
    rounds = asyncio.run(drive(ctl, fake_client({"h0": 0.0, "h1": 0.0}, False), 3, 10, strict=True))
    assert [r.number for r in rounds] == [1, 2, 3] and all(not r.failed for r in rounds)


def test_a_strict_drive_stops_naming_a_host_that_did_not_advance():
    ctl = reconciling(Controller({"h0": "127.0.0.1:1", "h1": "127.0.0.1:2"}), set())
    sim = fake_client({"h0": 0.0, "h1": 0.0}, False)

    async def broken(request, timeout):
        raise RuntimeError("agent gone")
    sim.stubs["h1"] = SimpleNamespace(AdvanceClock=broken)

    async def run():
        try:
            await drive(ctl, sim, 3, 10, strict=True)
        finally:
            for t in sim.lagging.values():
                t.cancel()
            await asyncio.gather(*sim.lagging.values(), return_exceptions=True)
    with pytest.raises(IncompleteRound, match=r"^round 1: hosts did not advance: h1: "):
        asyncio.run(run())
    # not strict: the same fleet goes on without it
    sim = fake_client({"h0": 0.0, "h1": 0.0}, True)
    sim.stubs["h1"] = SimpleNamespace(AdvanceClock=broken)
    rounds = asyncio.run(run_lenient(ctl, sim))
    assert len(rounds) == 2 and "h1" in rounds[0].failed


async def run_lenient(ctl, sim):
    try:
        return await drive(ctl, sim, 2, 10)
    finally:
        for t in sim.lagging.values():
            t.cancel()
        await asyncio.gather(*sim.lagging.values(), return_exceptions=True)


def test_a_strict_drive_stops_naming_a_host_the_controller_did_not_act_on(monkeypatch):
    monkeypatch.setattr(drive_mod, "STRICT_ROUND_TIMEOUT", 0.05)
    ctl = reconciling(Controller({"h0": "127.0.0.1:1", "h1": "127.0.0.1:2"}), {"h1"})
    ctl.hosts["h1"].status = "up"
    with pytest.raises(IncompleteRound, match=r"^round 1: the controller did not act on the period of h1 "):
        asyncio.run(drive(ctl, fake_client({"h0": 0.0, "h1": 0.0}, False), 3, 10, strict=True))


def test_a_strict_drive_waits_for_a_host_the_controller_marked_down_until_its_loop_acts(monkeypatch):
    """Under load a host's RPCs time out and its loop marks it down, then retries: a benchmark waits for the
    retry (a fleet would go on without the host), and names the host, its status and error if it never acts."""
    def run(acts_after):
        ctl = reconciling(Controller({"h0": "127.0.0.1:1", "h1": "127.0.0.1:2"}), {"h1"})
        ctl.hosts["h1"].status, ctl.hosts["h1"].last_error = "down", "DEADLINE_EXCEEDED"

        async def retry():            # the host's loop, retrying after its backoff
            await asyncio.sleep(acts_after)
            async with ctl._changed:
                ctl.hosts["h1"].status, ctl.hosts["h1"].last_period = "up", 1
                ctl._changed.notify_all()

        async def go():
            t = asyncio.create_task(retry())
            try:
                return await drive(ctl, fake_client({"h0": 0.0, "h1": 0.0}, False), 1, 10, strict=True)
            finally:
                t.cancel()
        return asyncio.run(go())
    monkeypatch.setattr(drive_mod, "STRICT_ROUND_TIMEOUT", 2.0)
    assert [r.number for r in run(0.1)] == [1]
    monkeypatch.setattr(drive_mod, "STRICT_ROUND_TIMEOUT", 0.05)
    with pytest.raises(IncompleteRound, match=r"period of h1 within 0 s \(h1: down, last error DEADLINE_EXCEEDED\)"):
        run(10.0)
