"""Driving a controller through simulated time, exactly as a deployment would see it: the harness advances
every simulated host by one scan period through SimulationService, then waits until the controller -- whose
per-host loops act on each period as it completes -- has reconciled that period on every host it considers
up. One such step is a fleet round."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pagetide.common.security import ClientSecurity
from pagetide.controller.controller import Controller
from pagetide.harness.agents import AgentProcess, SimulationClient, stop_agents

ROUND_TIMEOUT = 120.0      # seconds a fleet round may take before the harness moves on without a host
STRICT_ROUND_TIMEOUT = 900.0   # a benchmark's round: its hosts' loops retry (down or not) until this passes


class IncompleteRound(RuntimeError):
    """A strict drive's round that did not run on every host, or was not acted on for every host."""


@dataclass
class FleetRound:
    number: int
    seconds: float                 # from the clocks' advance to every host reconciled
    advance_seconds: float         # the agents advancing their clocks by one period
    failed: dict[str, str] = field(default_factory=dict)   # hosts whose agent did not answer the advance


@asynccontextmanager
async def controlled(agents: list[AgentProcess], agent_security: ClientSecurity | None = None,
                     set_aside: bool = True, **options) -> AsyncIterator[tuple[Controller, SimulationClient]]:
    """A started Controller (built with `options`) over every host the agent processes serve, and the
    harness's SimulationClient for them (`set_aside`: see SimulationClient), both calling the agents with
    `agent_security`. On leaving --
    normally or not -- the controller's loops stop, its actors are killed, the clients close and the agent
    processes end (they belong to the block from here)."""
    ctl = sim = None
    try:
        hosts = {h: f"127.0.0.1:{a.port}" for a in agents for h in a.hosts}
        sim = SimulationClient(hosts, agent_security, set_aside=set_aside)
        ctl = Controller(hosts, agent_security=agent_security, **options)
        await ctl.start()
        yield ctl, sim
    finally:
        if ctl is not None:
            await ctl.stop()
            ctl.shutdown()
        if sim is not None:
            await sim.close()
        stop_agents(agents)


async def drive(ctl: Controller, sim: SimulationClient, rounds: int, ticks: int, pace: float | None = None,
                after_round: Callable[[FleetRound], object] | None = None,
                stop: asyncio.Event | None = None, strict: bool = False) -> list[FleetRound]:
    """`rounds` fleet rounds of `ticks` ticks each (fewer if `stop` is set meanwhile: the round under way
    ends first); with `pace` (seconds) each round takes at least that long in wall time (for watching live).
    A host whose agent does not answer is left out of the rounds until it answers again; the round it is back
    in waits (a few seconds at most) for the controller to take it back too. With `strict` (a benchmark,
    whose results must cover every round on every host) every host is waited for, down or not, while the
    controller's loop for it retries; one that did not advance, or whose period the controller did not act
    on within STRICT_ROUND_TIMEOUT, ends the drive with IncompleteRound instead."""
    out = []
    for i in range(rounds):
        if stop is not None and stop.is_set():
            break
        a0 = time.perf_counter()
        answers, failed = await sim.advance(ticks)
        a1 = time.perf_counter()
        if strict and failed:
            raise IncompleteRound(f"round {i + 1}: hosts did not advance: "
                                  + "; ".join(f"{h}: {why}" for h, why in sorted(failed.items())))
        timeout = STRICT_ROUND_TIMEOUT if strict else ROUND_TIMEOUT
        await ctl.wait_reconciled({h: r.period for h, r in answers.items()}, timeout, back=sim.back,
                                  down_too=strict)
        if strict:
            behind = sorted(h for h, r in answers.items() if ctl.hosts[h].last_period < r.period)
            if behind:
                raise IncompleteRound(f"round {i + 1}: the controller did not act on the period of "
                                      f"{', '.join(behind)} within {timeout:.0f} s ("
                                      + "; ".join(f"{h}: {ctl.hosts[h].status}, last error "
                                                  f"{ctl.hosts[h].last_error or 'none'}" for h in behind) + ")")
        r = FleetRound(number=i + 1, seconds=time.perf_counter() - a1, advance_seconds=a1 - a0, failed=failed)
        out.append(r)
        if after_round is not None:
            res = after_round(r)
            if asyncio.iscoroutine(res):
                await res
        if pace:
            left = max(0.0, pace - (time.perf_counter() - a0))
            if stop is None:
                await asyncio.sleep(left)
            else:
                try:
                    await asyncio.wait_for(stop.wait(), left)
                except asyncio.TimeoutError:
                    pass
    return out
