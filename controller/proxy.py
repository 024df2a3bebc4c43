"""One async Ray actor per host: it owns the host's gRPC channel, turns heat reports into a plan with the pure
policy, and pushes the plan's move_pages batches (at most 4 MiB each) within a bandwidth limit.

Every RPC carries a deadline. Level-triggered: a round reads the host's state afresh, so a lost batch or a
restart is healed by the next round; batch ids make retried MovePages idempotent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
import numpy as np
import ray

from pagetide.controller.baselines import PlacementPolicy, make_policy
from pagetide.controller.convert import host_view
from pagetide.controller.policy import PolicyParams, VmPolicy
from pagetide.v1 import agent_pb2, agent_pb2_grpc

RPC_TIMEOUT = 10.0         # seconds, for reports and moves
MAX_CALLS = 64             # move_pages calls per MovePages request (the agent's limit)
PACE_SECONDS = 0.1         # with a bandwidth limit, send about this much wall time's worth per request
REPORT_BUDGET = 768 << 10  # bytes a heat report may take: candidate lists shrink on hosts with many VMs
CANDIDATE_BYTES = 3 * 11   # three lists per tenant, 8 + 1 + 2 bytes per page
ADVANCE_TIMEOUT = 600.0    # seconds, for AdvanceClock (a big simulated host may take a while)

RETRY_SERVICE_CONFIG = """{"methodConfig": [{"name": [{"service": "pagetide.v1.AgentService"}],
  "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                  "retryableStatusCodes": ["UNAVAILABLE"]}}]}"""


@dataclass
class RoundResult:
    host_id: str
    report_bytes: int = 0
    report_seconds: float = 0.0
    plan_seconds: float = 0.0
    move_seconds: float = 0.0
    promoted_bytes: int = 0
    demoted_bytes: int = 0
    marked_pages: int = 0
    batches: int = 0
    errors: dict[int, int] = field(default_factory=dict)    # -errno -> pages
    dram_target_bytes: dict[str, int] = field(default_factory=dict)
    heat_pages: dict[str, list[int]] = field(default_factory=dict)      # per VM: pages per heat bin

    @property
    def seconds(self) -> float:
        return self.report_seconds + self.plan_seconds + self.move_seconds


class HostClient:
    """The controller's view of one host over gRPC (usable without Ray, e.g. in tests)."""

    def __init__(self, address: str, host_id: str, policy: str = "pagetide", policy_options: dict | None = None):
        """policy: a name in baselines.POLICIES; its object is made at the first topology (it needs the
        host's period) and kept for the run, so a stateful policy sees every round of this host."""
        self.address = address
        self.host_id = host_id
        self.policy_name, self.policy_options = policy, dict(policy_options or {})
        self.policy: PlacementPolicy | None = None
        self.channel = grpc.aio.insecure_channel(address, options=[
            ("grpc.service_config", RETRY_SERVICE_CONFIG), ("grpc.enable_retries", 1)])
        self.stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        self.topology: agent_pb2.GetTopologyResponse | None = None
        self.round_no = 0

    async def get_topology(self) -> agent_pb2.GetTopologyResponse:
        self.topology = await self.stub.GetTopology(agent_pb2.GetTopologyRequest(host_id=self.host_id),
                                                    timeout=RPC_TIMEOUT)
        if self.policy is None:
            self.policy = make_policy(self.policy_name, period_seconds=self.topology.period_ns / 1e9,
                                      **self.policy_options)
        return self.topology

    async def advance(self, ticks: int) -> agent_pb2.AdvanceClockResponse:
        return await self.stub.AdvanceClock(agent_pb2.AdvanceClockRequest(host_id=self.host_id, ticks=ticks),
                                            timeout=ADVANCE_TIMEOUT)

    async def stats(self) -> agent_pb2.GetStatsResponse:
        return await self.stub.GetStats(agent_pb2.GetStatsRequest(host_id=self.host_id), timeout=RPC_TIMEOUT)

    async def round(self, policies: dict[str, VmPolicy], params: PolicyParams, max_candidates: int = 4096,
                    bandwidth: float | None = None) -> RoundResult:
        """Observe, decide, act: one heat report, one plan, its batches. With `bandwidth` (bytes/s of wall
        time) the pushes are paced; in simulated time the plan's byte budget is the limit."""
        if self.topology is None:
            await self.get_topology()
        self.round_no += 1
        res = RoundResult(host_id=self.host_id)
        t0 = time.perf_counter()
        per_tenant = REPORT_BUDGET // (max(1, len(self.topology.tenants)) * CANDIDATE_BYTES)
        request = agent_pb2.GetHeatReportRequest(host_id=self.host_id, max_candidates=min(max_candidates, per_tenant))
        marks = getattr(self.policy, "mark_candidates", None)
        if marks is not None:
            request.max_hot_fast = marks(len(self.topology.tenants), params)
        report = await self.stub.GetHeatReport(request, timeout=RPC_TIMEOUT)
        t1 = time.perf_counter()
        res.report_bytes = report.ByteSize()
        for t in report.tenants:
            res.heat_pages[t.tenant] = [sum(col) for col in zip(*(h.pages for h in t.histograms))]
        known = {t.tenant for t in report.tenants}
        plan = self.policy.plan(host_view(self.topology, report),
                                {k: v for k, v in policies.items() if k in known}, params)
        t2 = time.perf_counter()
        res.dram_target_bytes = dict(plan.dram_target_bytes)
        # one request carries up to MAX_CALLS move_pages calls (each <= 4 MiB); with a bandwidth limit the
        # requests are paced to it in wall time
        per_request = MAX_CALLS if not bandwidth else max(1, int(bandwidth * PACE_SECONDS) // params.batch_bytes)
        batches = plan.batches
        for r, lo in enumerate(range(0, len(batches), per_request)):
            chunk = batches[lo:lo + per_request]
            req = agent_pb2.MovePagesRequest(host_id=self.host_id, batch_id=f"{self.host_id}/{report.period}/"
                                                                           f"{self.round_no}/{r}",
                                             calls=[agent_pb2.MoveCall(tenant=b.tenant, addresses=b.addresses.tolist(),
                                                                       nodes=[b.target_node] * len(b.addresses),
                                                                       sw_young=b.sw_young) for b in chunk])
            start = time.perf_counter()
            resp = await self.stub.MovePages(req, timeout=RPC_TIMEOUT)
            res.batches += len(chunk)
            moved_total = 0
            for b, out in zip(chunk, resp.results):
                moved_total += out.moved_bytes
                if b.kind == "promote":
                    res.promoted_bytes += out.moved_bytes
                elif b.kind == "demote":
                    res.demoted_bytes += out.moved_bytes
                status = np.array(out.status, dtype=np.int32)
                if b.kind == "mark":
                    res.marked_pages += int((status == b.target_node).sum())
                if (status < 0).any():
                    for err, n in zip(*np.unique(status[status < 0], return_counts=True)):
                        res.errors[int(err)] = res.errors.get(int(err), 0) + int(n)
            if bandwidth and moved_total:
                pause = moved_total / bandwidth - (time.perf_counter() - start)
                if pause > 0:
                    await asyncio.sleep(pause)
        res.report_seconds, res.plan_seconds, res.move_seconds = t1 - t0, t2 - t1, time.perf_counter() - t2
        return res

    async def close(self) -> None:
        await self.channel.close()


@ray.remote(num_cpus=0)
class HostProxy:
    """Ray actor wrapper: the channel is created on the actor's own event loop at the first call."""

    def __init__(self, address: str, host_id: str, policy: str = "pagetide", policy_options: dict | None = None):
        self.address, self.host_id = address, host_id
        self.policy, self.policy_options = policy, policy_options
        self.client: HostClient | None = None

    def _c(self) -> HostClient:
        if self.client is None:
            self.client = HostClient(self.address, self.host_id, self.policy, self.policy_options)
        return self.client

    async def topology(self) -> bytes:
        return (await self._c().get_topology()).SerializeToString()

    async def advance(self, ticks: int) -> bytes:
        return (await self._c().advance(ticks)).SerializeToString()

    async def round(self, policies: dict, params: PolicyParams, max_candidates: int,
                    bandwidth: float | None) -> RoundResult:
        return await self._c().round(policies, params, max_candidates, bandwidth)

    async def stats(self) -> bytes:
        return (await self._c().stats()).SerializeToString()
