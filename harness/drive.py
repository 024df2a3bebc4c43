"""Driving a controller through simulated time, exactly as a deployment would see it: the harness advances
every simulated host by one scan period through SimulationService, then waits until the controller -- whose
per-host loops act on each period as it completes -- has reconciled that period on every host it considers
up. One such step is a fleet round."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pagetide.controller.controller import Controller
from pagetide.harness.agents import SimulationClient

ROUND_TIMEOUT = 120.0      # seconds a fleet round may take before the harness moves on without a host


@dataclass
class FleetRound:
    number: int
    seconds: float                 # from the clocks' advance to every host reconciled
    advance_seconds: float         # the agents advancing their clocks by one period
    failed: dict[str, str] = field(default_factory=dict)   # hosts whose agent did not answer the advance


async def drive(ctl: Controller, sim: SimulationClient, rounds: int, ticks: int, pace: float | None = None,
                after_round: Callable[[FleetRound], object] | None = None) -> list[FleetRound]:
    """`rounds` fleet rounds of `ticks` ticks each; with `pace` (seconds) each round takes at least that long
    in wall time (for watching live)."""
    out = []
    for i in range(rounds):
        a0 = time.perf_counter()
        answers, failed = await sim.advance(ticks)
        a1 = time.perf_counter()
        await ctl.wait_reconciled({h: r.period for h, r in answers.items()}, ROUND_TIMEOUT)
        r = FleetRound(number=i + 1, seconds=time.perf_counter() - a1, advance_seconds=a1 - a0, failed=failed)
        out.append(r)
        if after_round is not None:
            res = after_round(r)
            if asyncio.iscoroutine(res):
                await res
        if pace:
            await asyncio.sleep(max(0.0, pace - (time.perf_counter() - a0)))
    return out
