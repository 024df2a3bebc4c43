"""Single-host simulation: run a scenario's host model for its duration, with the reference runs beside it.

A run is: boot (prefault), then ticks; every `epoch` the accounting closes an epoch and an optional
`on_epoch(host)` hook runs (where a user-space policy acts, e.g. the agent's scanner and the controller's
moves). `reference_runs` adds the kernel-only references that need their own run of the model:
first-touch with no migration (stock Linux zonelists, demotion off) next to the scenario's own kernel mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pagetide.agent.accounting import HostResult, Recorder
from pagetide.agent.host import Host
from pagetide.agent.scenario import Scenario
from pagetide.agent.tiering import TieringSpec


def simulate(scenario: Scenario, on_epoch: Callable[[Host], None] | None = None,
             on_tick: Callable[[Host], None] | None = None, check: bool = False,
             progress: Callable[[int, int], None] | None = None) -> HostResult:
    """Run the scenario to its end and return the results. With check=True the model's invariants are
    verified after every tick (slow for big hosts; for tests)."""
    host = Host(scenario)
    rec = Recorder(host)
    host.boot()
    n = scenario.nr_ticks
    per_epoch = scenario.ticks_per_epoch
    for i in range(n):
        rec.record(host.run_tick())
        if check:
            host.check_invariants()
        if on_tick is not None:
            on_tick(host)
        if on_epoch is not None and host.tick_no % per_epoch == 0:
            on_epoch(host)
            if check:
                host.check_invariants()
        if progress is not None:
            progress(i + 1, n)
    return rec.results(final=True)


@dataclass
class ReferenceRuns:
    kernel: HostResult          # the scenario's own kernel mode (RFC demotion, NBT, TPP)
    first_touch: HostResult     # stock zonelists, no demotion, no promotion, no migration


def first_touch_scenario(scenario: Scenario) -> Scenario:
    return scenario.with_kernel(zonelist="unified", demotion_enabled=False, demote_scale_factor=0.0,
                                tiering=TieringSpec())


def reference_runs(scenario: Scenario, progress: Callable[[int, int], None] | None = None) -> ReferenceRuns:
    return ReferenceRuns(kernel=simulate(scenario, progress=progress),
                         first_touch=simulate(first_touch_scenario(scenario)))
