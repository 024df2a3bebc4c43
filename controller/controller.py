"""The controller: fans rounds out to one HostProxy actor per host, keeps users' VM policies, serves
ControllerService, and exports Prometheus metrics.

A round is level-triggered: every host reports its heat, the pure policy plans, the proxy pushes the moves.
In simulation the controller also advances every host's clock by one period before each round.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
import ray
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pagetide.controller.baselines import make_policy
from pagetide.controller.convert import vm_policy, vm_policy_pb
from pagetide.controller.policy import PolicyParams, VmPolicy
from pagetide.controller.proxy import HostProxy, RoundResult
from pagetide.v1 import agent_pb2, controller_pb2, controller_pb2_grpc


class Metrics:
    """pagetide_* metrics on their own registry (tests read it directly; the CLI serves it over HTTP)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rounds = Counter("pagetide_rounds", "Controller rounds completed", registry=r)
        self.round_seconds = Histogram("pagetide_round_seconds", "Wall time of a controller round (report, plan, "
                                       "moves; all hosts in parallel)", registry=r,
                                       buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.host_round_seconds = Gauge("pagetide_host_round_seconds", "Last round's time for one host",
                                        ["host"], registry=r)
        self.report_bytes = Gauge("pagetide_heat_report_bytes", "Serialized size of the last heat report",
                                  ["host"], registry=r)
        self.migrated = Counter("pagetide_migrated_bytes", "Bytes moved by the controller", ["host", "direction"],
                                registry=r)
        self.move_errors = Counter("pagetide_move_page_errors", "Pages a move_pages call refused, by errno",
                                   ["host", "errno"], registry=r)
        self.dram_share = Gauge("pagetide_vm_dram_share_ratio", "Share of a VM's accesses served by DRAM so far",
                                ["host", "vm"], registry=r)
        self.oracle_share = Gauge("pagetide_vm_oracle_dram_share_ratio", "The per-epoch oracle's DRAM share",
                                  ["host", "vm"], registry=r)
        self.slowdown = Gauge("pagetide_vm_slowdown_ratio", "Modelled memory time over all-DRAM", ["host", "vm"],
                              registry=r)
        self.dram_target = Gauge("pagetide_vm_dram_target_bytes", "DRAM the policy gave the VM last round",
                                 ["host", "vm"], registry=r)
        self.sim_time = Gauge("pagetide_sim_time_seconds", "Simulated time of the slowest host", registry=r)

    def observe_round(self, seconds: float, results: list[RoundResult]) -> None:
        self.rounds.inc()
        self.round_seconds.observe(seconds)
        for res in results:
            self.host_round_seconds.labels(res.host_id).set(res.seconds)
            self.report_bytes.labels(res.host_id).set(res.report_bytes)
            self.migrated.labels(res.host_id, "promote").inc(res.promoted_bytes)
            self.migrated.labels(res.host_id, "demote").inc(res.demoted_bytes)
            for err, n in res.errors.items():
                self.move_errors.labels(res.host_id, str(-err)).inc(n)
            for vm, b in res.dram_target_bytes.items():
                self.dram_target.labels(res.host_id, vm).set(b)

    def observe_stats(self, stats: agent_pb2.GetStatsResponse) -> None:
        for t in stats.tenants:
            self.dram_share.labels(stats.host_id, t.tenant).set(t.dram_share)
            self.oracle_share.labels(stats.host_id, t.tenant).set(t.oracle_share)
            self.slowdown.labels(stats.host_id, t.tenant).set(t.slowdown)


@dataclass
class RoundSummary:
    number: int
    seconds: float                 # controller round: reports + plans + moves, hosts in parallel
    advance_seconds: float         # simulation: the agents advancing their clocks by one period
    results: list[RoundResult] = field(default_factory=list)


class Controller:
    def __init__(self, hosts: dict[str, str], params: PolicyParams = PolicyParams(), max_candidates: int = 4096,
                 bandwidth: float | None = None, metrics: Metrics | None = None, policy: str = "pagetide",
                 policy_options: dict | None = None):
        """hosts: host id -> agent address. bandwidth: bytes/s of wall time to pace pushes (realtime).
        policy: the placement policy's name in baselines.POLICIES, one object per host (ValueError if unknown)."""
        make_policy(policy, **(policy_options or {}))      # reject a bad name or option here, not in the actors
        self.policy, self.policy_options = policy, dict(policy_options or {})
        self.addresses = dict(hosts)
        self.params = params
        self.max_candidates = max_candidates
        self.bandwidth = bandwidth
        self.metrics = metrics or Metrics()
        self.proxies = {h: HostProxy.remote(addr, h, policy, self.policy_options)
                        for h, addr in self.addresses.items()}
        self.policies: dict[str, dict[str, VmPolicy]] = {h: {} for h in self.addresses}
        self.topologies: dict[str, agent_pb2.GetTopologyResponse] = {}
        self.rounds: list[RoundSummary] = []
        self.last_stats: dict[str, agent_pb2.GetStatsResponse] = {}

    async def start(self) -> None:
        raw = await asyncio.gather(*(p.topology.remote() for p in self.proxies.values()))
        for h, b in zip(self.proxies, raw):
            self.topologies[h] = agent_pb2.GetTopologyResponse.FromString(b)

    def vms(self, host_id: str) -> set[str]:
        return {t.name for t in self.topologies[host_id].tenants}

    def set_policy(self, host_id: str, vm: str, policy: VmPolicy) -> None:
        if host_id not in self.topologies:
            raise KeyError(f"no host {host_id!r}")
        if vm not in self.vms(host_id):
            raise KeyError(f"no VM {vm!r} on host {host_id!r}")
        self.policies[host_id][vm] = policy

    async def advance(self, ticks: int) -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(p.advance.remote(ticks) for p in self.proxies.values()))
        return time.perf_counter() - t0

    async def round(self, advance_ticks: int = 0) -> RoundSummary:
        adv = await self.advance(advance_ticks) if advance_ticks else 0.0
        t0 = time.perf_counter()
        results = await asyncio.gather(*(p.round.remote(self.policies[h], self.params, self.max_candidates,
                                                        self.bandwidth)
                                         for h, p in self.proxies.items()))
        seconds = time.perf_counter() - t0
        self.metrics.observe_round(seconds, results)
        summary = RoundSummary(number=len(self.rounds) + 1, seconds=seconds, advance_seconds=adv, results=results)
        self.rounds.append(summary)
        return summary

    async def refresh_stats(self) -> dict[str, agent_pb2.GetStatsResponse]:
        raw = await asyncio.gather(*(p.stats.remote() for p in self.proxies.values()))
        for h, b in zip(self.proxies, raw):
            st = agent_pb2.GetStatsResponse.FromString(b)
            self.last_stats[h] = st
            self.metrics.observe_stats(st)
        if self.last_stats:
            self.metrics.sim_time.set(min(s.time_ns for s in self.last_stats.values()) / 1e9)
        return self.last_stats

    def shutdown(self) -> None:
        for p in self.proxies.values():
            ray.kill(p)


class ControllerServicer(controller_pb2_grpc.ControllerServiceServicer):
    def __init__(self, controller: Controller):
        self.c = controller

    async def SetVmPolicy(self, request, context):
        p = request.policy
        try:
            policy = vm_policy(p)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{p.host_id}/{p.vm}: {e}")
        try:
            self.c.set_policy(p.host_id, p.vm, policy)
        except KeyError as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e.args[0]))
        return controller_pb2.SetVmPolicyResponse(policy=vm_policy_pb(p.host_id, p.vm, policy))

    async def GetVmPolicy(self, request, context):
        if request.host_id not in self.c.topologies or request.vm not in self.c.vms(request.host_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no VM {request.vm!r} on host {request.host_id!r}")
        policy = self.c.policies[request.host_id].get(request.vm, VmPolicy())
        return controller_pb2.GetVmPolicyResponse(policy=vm_policy_pb(request.host_id, request.vm, policy))

    async def ListVmPolicies(self, request, context):
        return controller_pb2.ListVmPoliciesResponse(policies=[
            vm_policy_pb(h, vm, p) for h, ps in self.c.policies.items() for vm, p in sorted(ps.items())])

    async def GetStatus(self, request, context):
        hosts = []
        last = self.c.rounds[-1].results if self.c.rounds else []
        promoted: dict[str, int] = {}
        demoted: dict[str, int] = {}
        for r in self.c.rounds:
            for res in r.results:
                promoted[res.host_id] = promoted.get(res.host_id, 0) + res.promoted_bytes
                demoted[res.host_id] = demoted.get(res.host_id, 0) + res.demoted_bytes
        for res in last:
            st = self.c.last_stats.get(res.host_id)
            hosts.append(controller_pb2.HostStatus(
                host_id=res.host_id, last_round_ns=int(res.seconds * 1e9), last_report_bytes=res.report_bytes,
                promoted_bytes=promoted[res.host_id], demoted_bytes=demoted[res.host_id],
                vm_dram_share={t.tenant: t.dram_share for t in st.tenants} if st else {}))
        return controller_pb2.GetStatusResponse(rounds=len(self.c.rounds), hosts=hosts)


async def start_controller_server(controller: Controller, listen: str = "127.0.0.1:0") -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    controller_pb2_grpc.add_ControllerServiceServicer_to_server(ControllerServicer(controller), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service = controller_pb2.DESCRIPTOR.services_by_name["ControllerService"].full_name
    reflection.enable_server_reflection([service, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, port
