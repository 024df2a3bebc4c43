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

from grpc_health.v1 import health_pb2, health_pb2_grpc

from pagetide.common import keepalive
from pagetide.common.security import ClientSecurity, client_channel
from pagetide.v1 import simulation_pb2, simulation_pb2_grpc

SERVING = re.compile(r"serving (\S+(?:, \S+)*) on \S+ \(port (\d+)")
ADVANCE_TIMEOUT = 600.0    # seconds, for a host's first AdvanceClock (a big simulated host may take a while)
MIN_ADVANCE_TIMEOUT = 10.0  # later ones: 10x the host's last advance, at least this
STATS_TIMEOUT = 60.0
PROBE_TIMEOUT = 1.0        # health check of a lagging host's agent
PROBE_INTERVAL = 0.5
MIN_LAG_GRACE = 2.0        # seconds a host may take beyond the others' slowest answer...
LAG_GRACE_FACTOR = 10.0    # ...or this many times that answer, whichever is longer
# a restarted agent is found again within a second or two, not at gRPC's default backoff of up to 2 minutes
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000),
                   *keepalive.CLIENT_OPTIONS]


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
    """SimulationService of every simulated host: host id -> agent address.

    Faults are normal: a host whose agent does not answer an advance in time (killed, stalled) is set aside
    as lagging -- later advances skip it, so the other hosts' rounds keep their usual time -- and a background
    probe (a health check with a short deadline) takes it back as soon as its agent answers again. Each
    advance's deadline follows the host's own last advance time."""

    def __init__(self, hosts: dict[str, str], security: ClientSecurity | None = None, set_aside: bool = True):
        """hosts: host id -> agent address; security: the token and TLS the agents ask for; set_aside=False
        (a benchmark, whose hosts must all run every round): an advance waits for every host to its own
        deadline instead of setting a slow one aside."""
        self.hosts = dict(hosts)
        self.set_aside = set_aside
        self.channels = {a: client_channel(a, security, options=CHANNEL_OPTIONS)
                         for a in set(hosts.values())}
        self.stubs = {h: simulation_pb2_grpc.SimulationServiceStub(self.channels[a]) for h, a in hosts.items()}
        self.lagging: dict[str, asyncio.Task] = {}        # host -> its probe
        self.last_wall: dict[str, float] = {}             # host -> seconds its last advance took
        self.answered: set[str] = set(hosts)              # hosts whose last advance was answered
        self.back: set[str] = set()                       # of the last advance's answers, hosts back from an absence

    def deadline(self, host: str) -> float:
        last = self.last_wall.get(host)
        return ADVANCE_TIMEOUT if last is None else max(MIN_ADVANCE_TIMEOUT, 10 * last)

    async def advance(self, ticks: int, hosts: list[str] | None = None) -> tuple[
            dict[str, simulation_pb2.AdvanceClockResponse], dict[str, str]]:
        """Advance every host that is not lagging (or those named) by `ticks`, all at once: (answers, host ->
        error of those that did not answer, or "lagging" for those skipped). Once half the hosts have
        answered, the others get LAG_GRACE_FACTOR times the slowest answer so far (at least
        MIN_LAG_GRACE seconds); one still busy then is set aside with its call running on (it is back when the
        call ends and its agent answers a health check), so one stalled agent does not hold the fleet's round
        to its deadline."""
        names = [h for h in (list(self.stubs) if hosts is None else hosts) if h not in self.lagging]
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()

        async def one(h: str):
            r = await self.stubs[h].AdvanceClock(simulation_pb2.AdvanceClockRequest(host_id=h, ticks=ticks),
                                                 timeout=self.deadline(h))
            self.last_wall[h] = time.perf_counter() - t0
            return r
        calls = {h: loop.create_task(one(h), name=f"advance {h}") for h in names}
        pending = set(calls.values())
        while pending:
            answered = len(calls) - len(pending)
            grace = None
            if self.set_aside and answered * 2 >= len(calls) and answered:
                slowest = max(self.last_wall.get(h, 0.0) for h, t in calls.items() if t.done())
                grace = max(MIN_LAG_GRACE, LAG_GRACE_FACTOR * slowest) - (time.perf_counter() - t0 - slowest)
                if grace <= 0:
                    break
            _, pending = await asyncio.wait(pending, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        ok, failed = {}, {}
        for h, t in calls.items():
            if not t.done():
                failed[h] = "set aside: slower than the others by far"
                self.lagging[h] = loop.create_task(self._probe(h, t), name=f"probe {h}")
            elif t.exception() is not None:
                failed[h] = _reason(t.exception())
                self.lagging[h] = loop.create_task(self._probe(h), name=f"probe {h}")
            else:
                ok[h] = t.result()
        for h in (list(self.stubs) if hosts is None else hosts):
            if h in self.lagging and h not in failed:
                failed[h] = "lagging"
        self.back = set(ok) - self.answered
        self.answered = (self.answered - set(failed)) | set(ok)
        return ok, failed

    async def _probe(self, h: str, inflight: asyncio.Task | None = None) -> None:
        """Until the host's call still running ends (any way) and its agent answers a health check (each
        with a short deadline); then it is back."""
        if inflight is not None:
            await asyncio.gather(inflight, return_exceptions=True)
        stub = health_pb2_grpc.HealthStub(self.channels[self.hosts[h]])
        while True:
            try:
                await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=PROBE_TIMEOUT)
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(PROBE_INTERVAL)
        del self.lagging[h]

    async def stats(self, hosts: list[str] | None = None) -> dict[str, simulation_pb2.GetStatsResponse]:
        """Accounting of every host (or those named) whose agent answers; the others are left out."""
        names = [h for h in (list(self.stubs) if hosts is None else hosts) if h not in self.lagging]
        out = await asyncio.gather(*(self.stubs[h].GetStats(simulation_pb2.GetStatsRequest(host_id=h),
                                                            timeout=STATS_TIMEOUT) for h in names),
                                   return_exceptions=True)
        return {h: r for h, r in zip(names, out) if not isinstance(r, BaseException)}

    async def add_tenant(self, host: str, spec: dict) -> simulation_pb2.AddTenantResponse:
        """Start tenant `spec` (a scenario `tenants[]` mapping, already validated) on `host`."""
        return await self.stubs[host].AddTenant(add_tenant_request(host, spec), timeout=STATS_TIMEOUT)

    async def remove_tenant(self, host: str, tenant: str) -> simulation_pb2.RemoveTenantResponse:
        return await self.stubs[host].RemoveTenant(
            simulation_pb2.RemoveTenantRequest(host_id=host, tenant=tenant), timeout=STATS_TIMEOUT)

    async def resize_tenant(self, host: str, tenant: str, footprint: int) -> simulation_pb2.ResizeTenantResponse:
        return await self.stubs[host].ResizeTenant(simulation_pb2.ResizeTenantRequest(
            host_id=host, tenant=tenant, footprint_bytes=footprint), timeout=STATS_TIMEOUT)

    async def close(self) -> None:
        for t in self.lagging.values():
            t.cancel()
        await asyncio.gather(*self.lagging.values(), return_exceptions=True)
        for ch in self.channels.values():
            await ch.close()


def add_tenant_request(host: str, spec: dict) -> simulation_pb2.AddTenantRequest:
    """A scenario's tenant mapping as an AddTenant request (sizes and ratios parsed, workload options as text)."""
    from pagetide.common import units
    from pagetide.v1 import types_pb2

    wl = dict(spec["workload"])
    r = simulation_pb2.AddTenantRequest(
        host_id=host, name=spec["name"], footprint_bytes=units.parse_size(spec["footprint"]),
        kind={"vm": types_pb2.TENANT_KIND_VM, "task": types_pb2.TENANT_KIND_TASK}[spec.get("kind", "vm")],
        page_size_bytes=units.parse_size(spec.get("page_size", 4096)),
        workload=simulation_pb2.Workload(type=wl.pop("type"), options={k: str(v) for k, v in wl.items()}),
        pinned_share=units.parse_ratio(spec.get("pinned", 0)), labels=dict(spec.get("labels") or {}))
    if "home_node" in spec:
        r.home_node = spec["home_node"]
    if "prefault" in spec:
        r.prefault = spec["prefault"]
    return r


def _reason(e: BaseException) -> str:
    if isinstance(e, grpc.aio.AioRpcError):
        return f"{e.code().name}: {e.details()}"
    return repr(e)
