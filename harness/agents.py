"""Agent processes for a simulation, and the harness's own client of their SimulationService.

`launch_agents` starts `pagetide agent --clock driven` processes on free local ports (several simulated hosts
packed per process) from scenario YAML files it writes; `SimulationClient` advances their clocks and reads
their accounting. The controller is never part of this: it sees the agents only through AgentService.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import grpc
import yaml

from pagetide.common.security import ClientSecurity, client_channel
from pagetide.v1 import simulation_pb2, simulation_pb2_grpc

SERVING = re.compile(r"serving (\S+(?:, \S+)*) on \S+ \(port (\d+)")
ADVANCE_TIMEOUT = 600.0    # seconds, for AdvanceClock (a big simulated host may take a while)
STATS_TIMEOUT = 60.0


@dataclass
class AgentProcess:
    proc: subprocess.Popen
    port: int
    hosts: list[str]
    command: list[str]


def agent_command(*args: str, clock: str = "driven", listen: str = "127.0.0.1:0",
                  token_file: str | None = None) -> list[str]:
    """`pagetide agent` serving what `args` name (asking callers for the token in `token_file`)."""
    auth = ("--token-file", token_file) if token_file else ()
    return [sys.executable, "-m", "pagetide.harness.cli", "agent", "--listen", listen, "--clock", clock, *auth, *args]


def write_scenarios(scenarios: list[dict], directory: str) -> list[str]:
    """Each scenario dict as `<name>.yaml` in `directory`; returns the paths."""
    paths = []
    for s in scenarios:
        path = os.path.join(directory, f"{s['name']}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(s, f, sort_keys=False)
        paths.append(path)
    return paths


def scenario_commands(paths: list[str], n_procs: int, tiering: str | None = None,
                      clock: str = "driven", token_file: str | None = None) -> list[list[str]]:
    """Agent commands packing the scenario files round-robin into `n_procs` processes."""
    n = max(1, min(n_procs, len(paths)))
    extra = ("--tiering", tiering) if tiering else ()
    return [agent_command(*[a for p in paths[i::n] for a in ("--scenario", p)], *extra, clock=clock,
                          token_file=token_file) for i in range(n)]


def launch_agents(cmds: list[list[str]], timeout: float = 300) -> list[AgentProcess]:
    """Start one agent process per command; wait until each prints the hosts it serves and its port."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for cmd in cmds]
    out = []
    deadline = time.monotonic() + timeout
    for p, cmd in zip(procs, cmds):
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line and p.poll() is not None:
                stop_agents([AgentProcess(q, 0, [], c) for q, c in zip(procs, cmds)])
                raise RuntimeError(f"agent exited: {p.stderr.read()[-2000:]}")
            m = SERVING.search(line)
            if m:
                out.append(AgentProcess(p, int(m.group(2)), m.group(1).split(", "), cmd))
                break
        else:
            stop_agents([AgentProcess(q, 0, [], c) for q, c in zip(procs, cmds)])
            raise TimeoutError("agents did not start in time")
    return out


def stop_agents(agents: list[AgentProcess]) -> None:
    for a in agents:
        if a.proc.poll() is None:
            a.proc.terminate()
    for a in agents:
        try:
            a.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            a.proc.kill()
            a.proc.wait()


class SimulationClient:
    """SimulationService of every simulated host: host id -> agent address."""

    def __init__(self, hosts: dict[str, str], security: ClientSecurity | None = None):
        """hosts: host id -> agent address; security: the token and TLS the agents ask for."""
        self.hosts = dict(hosts)
        self.channels = {a: client_channel(a, security) for a in set(hosts.values())}
        self.stubs = {h: simulation_pb2_grpc.SimulationServiceStub(self.channels[a]) for h, a in hosts.items()}

    async def advance(self, ticks: int, hosts: list[str] | None = None) -> tuple[
            dict[str, simulation_pb2.AdvanceClockResponse], dict[str, str]]:
        """Advance every host (or those named) by `ticks`, all at once: (answers, host -> error of those whose
        agent did not answer)."""
        names = list(self.stubs) if hosts is None else hosts
        out = await asyncio.gather(*(self.stubs[h].AdvanceClock(
            simulation_pb2.AdvanceClockRequest(host_id=h, ticks=ticks), timeout=ADVANCE_TIMEOUT) for h in names),
            return_exceptions=True)
        ok = {h: r for h, r in zip(names, out) if not isinstance(r, BaseException)}
        failed = {h: (f"{r.code().name}: {r.details()}" if isinstance(r, grpc.aio.AioRpcError) else repr(r))
                  for h, r in zip(names, out) if isinstance(r, BaseException)}
        return ok, failed

    async def stats(self, hosts: list[str] | None = None) -> dict[str, simulation_pb2.GetStatsResponse]:
        names = list(self.stubs) if hosts is None else hosts
        out = await asyncio.gather(*(self.stubs[h].GetStats(simulation_pb2.GetStatsRequest(host_id=h),
                                                            timeout=STATS_TIMEOUT) for h in names))
        return dict(zip(names, out))

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()
