"""`pagetide faults`: faults injected into a running multi-host simulation, and what is checked after each.

Every fault runs on its own fleet -- one agent process per host, so a kill or a stall hits one host -- with
VM policies and a migration pause set through ControllerService before it, and is judged against a fault-free
run of the same fleet and seed:

- `agent-kill`: SIGKILL one host's agent after the warm-up; a new agent process on the same port (a fresh
  host, its clock at zero) some rounds later.
- `agent-stall`: SIGSTOP one host's agent for longer than any deadline, then SIGCONT.
- `controller-restart`: the controller stops (its loops, actors and server, as at SIGTERM), the hosts run some
  rounds under kernel demotion alone, and a new controller starts on the same policy database.

After each: every host's own invariant check (every page on exactly one node or in swap, node usage
matching the pages, no node over capacity, page tables on DRAM), no node over its capacity in the final
accounting, every policy and pause as set, the rounds each host was not advanced, the controller's outages,
and placement quality -- per host, the VMs' mean DRAM-served share over a window of epochs starting 10
epochs after recovery, over the fault-free run's over the same epochs of that host (a restarted host's
epochs count from its restart, like a fresh host's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

FAULTS = ("agent-kill", "agent-stall", "controller-restart")
RECOVERY_EPOCHS = 10       # quality is judged from this many epochs after recovery
QUALITY_TARGET = 0.95      # of the fault-free run's
UP_TIMEOUT = 60.0          # seconds for every host to be up after a controller starts


@dataclass(frozen=True)
class FaultPlan:
    hosts: int = 3
    host_memory_mib: int = 512
    seed: int = 1
    warmup: int = 12            # rounds before the fault
    down_seconds: float = 8.0   # agent-kill: wall time before the agent is back (the controller marks it down)
    stall_seconds: float = 15.0  # agent-stall: longer than the harness's 10 s advance deadline
    alone_rounds: int = 5       # controller-restart: rounds the hosts run with no controller
    window: int = 6             # epochs of the quality window
    victim: int = 1             # index of the host hit
    max_seconds: float = 600.0  # a run that has not recovered by then ends and is judged as such


@dataclass
class FaultOutcome:
    fault: str
    victim: str
    rounds: int
    injected_round: int
    recovered_round: int                         # first round the victim (or the controller) was back
    rounds_lost: dict[str, int]                  # rounds in which a host was not advanced
    controller_rounds_missing: int               # rounds nobody reconciled (controller-restart)
    outages: dict[str, int]                      # the controller's count, per host
    invariant_errors: dict[str, str]
    over_capacity: list[str]
    policies_set: int
    policies_after: int
    policies_lost: list[str]
    pauses_kept: bool
    quality: dict[str, float]                    # host -> window mean over the fault-free run's
    others_round_seconds: float                  # median round time of the other hosts while the fault lasted
    others_round_seconds_max: float              # and the longest
    fault_free_round_seconds: float
    wall_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        return (not self.invariant_errors and not self.over_capacity and not self.policies_lost
                and self.pauses_kept and min(self.quality.values()) >= QUALITY_TARGET
                and set(self.outages) <= {self.victim})           # no other host taken for down


class FleetUnderTest:
    """One fleet's agents, controller, ControllerService client and SimulationService client."""

    def __init__(self, plan: FaultPlan, tmp: str):
        from pagetide.common.security import ClientSecurity, load_tokens, write_token_file
        from pagetide.harness.agents import launch_agents, scenario_commands, write_scenarios
        from pagetide.harness.fleet import fleet_dicts

        self.plan = plan
        self.db = os.path.join(tmp, "controller.db")
        token_file = os.path.join(tmp, "agent-token")
        write_token_file(token_file, secrets.token_urlsafe(32))
        self.security = ClientSecurity(token=load_tokens(token_file)[0][0])
        paths = write_scenarios(fleet_dicts(plan.hosts, seed=plan.seed, memory_mib=plan.host_memory_mib), tmp)
        self.agents = launch_agents(scenario_commands(paths, plan.hosts, token_file=token_file))
        self.addresses = {h: f"127.0.0.1:{a.port}" for a in self.agents for h in a.hosts}
        self.host_ids = sorted(self.addresses)
        self.ctl = self.server = self.store = self.channel = None
        self.sim = None

    async def start_controller(self) -> None:
        import grpc

        from pagetide.controller.controller import Controller
        from pagetide.controller.service import start_controller_server
        from pagetide.controller.store import PolicyStore
        from pagetide.v1 import controller_pb2_grpc

        self.store = PolicyStore(self.db)
        self.ctl = Controller(self.addresses, store=self.store, agent_security=self.security)
        await self.ctl.start()
        deadline = time.monotonic() + UP_TIMEOUT          # a loaded machine may miss the first topology read
        while not all(s.up for s in self.ctl.hosts.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"hosts not up {UP_TIMEOUT:g} s after the controller started: "
                                   f"{sorted(h for h, s in self.ctl.hosts.items() if not s.up)}")
            await asyncio.sleep(0.2)
        self.server, port = await start_controller_server(self.ctl, "127.0.0.1:0")
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.api = controller_pb2_grpc.ControllerServiceStub(self.channel)

    async def stop_controller(self) -> None:
        """As a SIGTERM does: the loops stop, the actors go, the server and the database close."""
        if self.ctl is None:
            return
        await self.ctl.stop()
        self.ctl.shutdown()
        await self.server.stop(grace=0.5)
        await self.channel.close()
        self.store.close()
        self.ctl = None

    async def set_policies(self) -> list[tuple]:
        """Two VM policies per host (a DRAM guarantee, a weight) and a pause on the last host, through the API;
        returns what was set as comparable tuples."""
        from pagetide.v1 import controller_pb2

        out = []
        for h in self.host_ids:
            vms = sorted(self.ctl.vms(h))
            for vm, kw in ((vms[0], {"min_dram_share": 0.25}), (vms[1], {"weight": 2.0})):
                r = await self.api.SetVmPolicy(controller_pb2.SetVmPolicyRequest(
                    policy=controller_pb2.VmPolicy(host_id=h, vm=vm, **kw)), timeout=10)
                out.append(policy_key(r.policy))
        await self.api.PauseMigration(controller_pb2.PauseMigrationRequest(host_id=self.host_ids[-1],
                                                                           reason="fault test"), timeout=10)
        return out

    async def policies(self) -> tuple[list[tuple], bool]:
        """Every policy the controller serves (all pages) and whether the pause set before is in force."""
        from pagetide.v1 import controller_pb2

        out, token = [], ""
        while True:
            r = await self.api.ListVmPolicies(controller_pb2.ListVmPoliciesRequest(page_size=2, page_token=token),
                                              timeout=10)
            out += [policy_key(p) for p in r.policies]
            token = r.next_page_token
            if not token:
                break
        hosts = await self.api.ListManagedHosts(controller_pb2.ListManagedHostsRequest(), timeout=10)
        paused = {x.host_id: x.migration_paused for x in hosts.hosts}
        return out, paused.get(self.host_ids[-1], False) and not any(
            v for h, v in paused.items() if h != self.host_ids[-1])

    def close(self) -> None:
        from pagetide.harness.agents import stop_agents

        for a in self.agents:                 # a stalled agent cannot handle SIGTERM
            if a.proc.poll() is None:
                a.proc.send_signal(signal.SIGCONT)
        stop_agents(self.agents)


def policy_key(p) -> tuple:
    return (p.host_id, p.vm, p.min_dram_bytes, p.max_dram_bytes, round(p.weight, 9),
            p.min_dram_share if p.HasField("min_dram_share") else None,
            p.max_dram_share if p.HasField("max_dram_share") else None, p.pinned_tier, p.migration_disabled)


async def run_fleet(plan: FaultPlan, fault: str | None, rounds: int | None = None) -> dict:
    """One run: `rounds` rounds (None: until the fault's quality window is complete), `fault` (None:
    fault-free) injected after the warm-up. The raw record the outcome is computed from."""
    from pagetide.harness.agents import SimulationClient, launch_agents

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pagetide-faults-") as tmp:
        f = FleetUnderTest(plan, tmp)
        victim = f.host_ids[plan.victim]
        victim_agent = next(a for a in f.agents if victim in a.hosts)
        f.sim = SimulationClient(f.addresses, f.security)
        try:
            await f.start_controller()
            set_before = await f.set_policies()
            topo = next(iter(f.ctl.topologies.values()))
            ticks = max(1, round(topo.period_ns / topo.tick_ns))
            capacity = {h: [n.capacity_bytes for n in t.nodes] for h, t in f.ctl.topologies.items()}
            lost = {h: 0 for h in f.host_ids}
            round_seconds: list[tuple[int, float, tuple]] = []   # (round, seconds, hosts advanced)
            missing = 0
            injected = recovered = None
            stall_until = restart_at = restarting = None
            restarts_epoch = 0              # the victim's epochs before a restart (agent-kill)
            recovered_epoch = None          # the victim's epoch count at recovery
            epochs = {h: 0 for h in f.host_ids}
            i = 0
            while True:
                i += 1
                # -- the fault's schedule, between rounds
                if fault and i == plan.warmup + 1:
                    injected = i
                    if fault == "agent-kill":
                        victim_agent.proc.kill()
                        victim_agent.proc.wait()
                        restart_at = time.monotonic() + plan.down_seconds
                    elif fault == "agent-stall":
                        victim_agent.proc.send_signal(signal.SIGSTOP)
                        stall_until = time.monotonic() + plan.stall_seconds
                    elif fault == "controller-restart":
                        await f.stop_controller()
                if fault == "agent-kill" and restart_at is not None and time.monotonic() >= restart_at:
                    restart_at = None           # started beside the rounds; the harness's probe finds it
                    restarts_epoch = epochs[victim]
                    cmd = [x if x != "127.0.0.1:0" else f"127.0.0.1:{victim_agent.port}" for x in victim_agent.command]
                    restarting = asyncio.get_running_loop().create_task(asyncio.to_thread(launch_agents, [cmd]))
                if restarting is not None and restarting.done():
                    new = restarting.result()[0]
                    f.agents[f.agents.index(victim_agent)] = victim_agent = new
                    restarting = None
                if fault == "agent-stall" and stall_until is not None and time.monotonic() >= stall_until:
                    victim_agent.proc.send_signal(signal.SIGCONT)
                    stall_until = None
                if fault == "controller-restart" and i == plan.warmup + 1 + plan.alone_rounds:
                    await f.start_controller()
                    recovered, recovered_epoch = i, epochs[victim]
                # -- one fleet round
                a0 = time.perf_counter()
                answers, failed = await f.sim.advance(ticks)
                if f.ctl is not None:
                    await f.ctl.wait_reconciled({h: r.period for h, r in answers.items()}, 120.0,
                                                back=f.sim.back)
                else:
                    missing += 1
                round_seconds.append((i, time.perf_counter() - a0, tuple(sorted(answers))))
                for h in f.host_ids:
                    if h in answers:
                        epochs[h] += 1
                    else:
                        lost[h] += 1
                if fault in ("agent-kill", "agent-stall") and injected and recovered is None and victim in answers:
                    recovered = i
                    recovered_epoch = epochs[victim] - 1 - restarts_epoch
                if rounds is not None:
                    if i >= rounds:
                        break
                elif time.perf_counter() - t_start > plan.max_seconds:
                    break                       # never recovered: judged as such
                elif recovered is not None and (epochs[victim] - restarts_epoch
                                                >= recovered_epoch + RECOVERY_EPOCHS + plan.window):
                    break
            stats = await f.sim.stats()
            after, pauses_kept = await f.policies()
            outages = {h: s.outages for h, s in f.ctl.hosts.items()}
            errors = {h: s.last_error for h, s in f.ctl.hosts.items() if s.outages}
        finally:
            await f.stop_controller()
            await f.sim.close()
            f.close()
    return {"fault": fault, "victim": victim, "rounds": i, "injected": injected, "recovered": recovered,
            "recovered_epoch": recovered_epoch or 0, "lost": lost, "missing": missing, "outages": outages,
            "errors": errors, "set": set_before, "after": after, "pauses_kept": pauses_kept, "round_seconds": round_seconds,
            "capacity": capacity, "wall": time.perf_counter() - t_start,
            "stats": {h: {"invariant_error": s.invariant_error, "node_used": list(s.node_used_bytes),
                          "series": {t.tenant: list(t.dram_share_series) for t in s.tenants}}
                      for h, s in stats.items()}}


def window_mean(series: dict[str, list[float]], start: int, n: int) -> float:
    """The VMs' mean DRAM-served share over epochs [start, start + n)."""
    means = [statistics.fmean(s[start:start + n]) for s in series.values() if len(s) >= start + n]
    if not means:
        raise ValueError(f"no VM has epochs {start}..{start + n - 1}")
    return statistics.fmean(means)


def outcome(plan: FaultPlan, run: dict, free: dict) -> FaultOutcome:
    """Judge one faulted run against the fault-free one."""
    notes = []
    start = run["recovered_epoch"] + RECOVERY_EPOCHS
    quality = {}
    if run["recovered"] is None:
        notes.append(f"never recovered within {plan.max_seconds:g} s")
    for h, st in run["stats"].items():
        if run["recovered"] is None and (h == run["victim"] or run["fault"] == "controller-restart"):
            quality[h] = 0.0
            continue
        if h == run["victim"] or run["fault"] == "controller-restart":
            s, n = start, plan.window
        else:                              # the others: from the fault to the end both runs cover
            s = run["injected"] - 1
            n = min(min(len(x) for x in st["series"].values()),
                    min(len(x) for x in free["stats"][h]["series"].values())) - s
        quality[h] = window_mean(st["series"], s, n) / window_mean(free["stats"][h]["series"], s, n)
    for h in run["lost"]:
        if h not in run["stats"]:
            notes.append(f"{h} did not answer the final statistics call")
            quality[h] = 0.0
    notes += [f"{h}'s last error: {e}" for h, e in run.get("errors", {}).items()]
    over = [f"{h} node {n}" for h, st in run["stats"].items() for n, (u, c) in
            enumerate(zip(st["node_used"], run["capacity"][h])) if u > c]
    during = [sec for i, sec, answered in run["round_seconds"]
              if run["injected"] and run["injected"] <= i < (run["recovered"] or i + 1)]
    set_, after = set(run["set"]), set(run["after"])
    return FaultOutcome(
        fault=run["fault"], victim=run["victim"], rounds=run["rounds"], injected_round=run["injected"],
        recovered_round=run["recovered"], rounds_lost={h: n for h, n in run["lost"].items() if n},
        controller_rounds_missing=run["missing"], outages={h: n for h, n in run["outages"].items() if n},
        invariant_errors={h: st["invariant_error"] for h, st in run["stats"].items() if st["invariant_error"]},
        over_capacity=over, policies_set=len(set_), policies_after=len(after),
        policies_lost=sorted(f"{k[0]}/{k[1]}" for k in set_ - after), pauses_kept=run["pauses_kept"],
        quality=quality, others_round_seconds=statistics.median(during) if during else 0.0,
        others_round_seconds_max=max(during, default=0.0),
        fault_free_round_seconds=statistics.median(sec for _, sec, _ in free["round_seconds"]),
        wall_seconds=run["wall"], notes=notes)


def fault_free_rounds(plan: FaultPlan) -> int:
    """Rounds the fault-free run needs to cover every fault's quality window (a stall's rounds depend on wall
    time; its victim's epochs do not, so the window ends at the same epoch)."""
    return plan.warmup + plan.alone_rounds + RECOVERY_EPOCHS + plan.window + 2


async def run_faults(plan: FaultPlan, faults: list[str]) -> tuple[dict, list[FaultOutcome]]:
    free = await run_fleet(plan, None, rounds=fault_free_rounds(plan))
    return free, [outcome(plan, await run_fleet(plan, f), free) for f in faults]


def report(plan: FaultPlan, outcomes: list[FaultOutcome]) -> str:
    from pagetide.common.tables import table

    rows = []
    for o in outcomes:
        rows.append([o.fault, o.victim, str(o.injected_round), str(o.recovered_round),
                     ", ".join(f"{h} {n}" for h, n in o.rounds_lost.items()) or "0",
                     str(o.controller_rounds_missing), ", ".join(f"{h} {n}" for h, n in o.outages.items()) or "0",
                     f"{o.policies_after}/{o.policies_set}", "yes" if o.pauses_kept else "NO",
                     "ok" if not o.invariant_errors and not o.over_capacity else "BROKEN",
                     f"{o.quality[o.victim]:.3f}", f"{min(v for h, v in o.quality.items() if h != o.victim):.3f}",
                     f"{o.others_round_seconds * 1e3:.0f} ({o.others_round_seconds_max * 1e3:.0f}) / "
                     f"{o.fault_free_round_seconds * 1e3:.0f} ms",
                     "yes" if o.survived else "NO"])
    out = [table(["fault", "host", "injected", "back", "rounds lost", "rounds unreconciled", "outages",
                  "policies", "pause", "invariants", "quality (host)", "quality (others, min)",
                  "round time: others during (max) / fault-free", "survived"], rows)]
    for o in outcomes:
        out += [f"{o.fault}: {n}" for n in o.notes]
        out += [f"{o.fault}: {h}: {e}" for h, e in o.invariant_errors.items()]
    out.append(f"quality: the VMs' mean DRAM-served share over the fault-free run's, the hit host's over epochs "
               f"{RECOVERY_EPOCHS} to {RECOVERY_EPOCHS + plan.window - 1} after it is back (every host's after a "
               f"controller restart), the others' from the fault to the end; target >= {QUALITY_TARGET}")
    return "\n".join(out)


def set_argparser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fault", action="append", choices=FAULTS,
                   help="a fault to inject (repeatable; default: every one)")
    p.add_argument("--hosts", type=int, default=FaultPlan.hosts)
    p.add_argument("--host-memory-mib", type=int, default=FaultPlan.host_memory_mib)
    p.add_argument("--seed", type=int, default=FaultPlan.seed)
    p.add_argument("--down-seconds", type=float, default=FaultPlan.down_seconds,
                   help="agent-kill: seconds before the agent is started again")
    p.add_argument("--stall-seconds", type=float, default=FaultPlan.stall_seconds,
                   help="agent-stall: seconds between SIGSTOP and SIGCONT")
    p.add_argument("--json", help="write the outcomes as JSON")


def main(args: argparse.Namespace) -> int:
    from pagetide.controller.cluster import init_ray

    if args.hosts < 2:
        print("pagetide faults: --hosts must be at least 2 (one is hit, the others are watched)", file=sys.stderr)
        return 2
    plan = FaultPlan(hosts=args.hosts, host_memory_mib=args.host_memory_mib, seed=args.seed,
                     down_seconds=args.down_seconds, stall_seconds=args.stall_seconds)
    init_ray()
    free, outcomes = asyncio.run(run_faults(plan, args.fault or list(FAULTS)))
    print(report(plan, outcomes))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"plan": asdict(plan), "outcomes": [asdict(o) | {"survived": o.survived} for o in outcomes]},
                      f, indent=1)
    return 0 if all(o.survived for o in outcomes) else 1
