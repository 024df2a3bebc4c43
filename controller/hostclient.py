"""The controller's view of one host over gRPC, without Ray: it waits for the host's next scan period, turns
the heat report into a plan with the host's placement policy, and pushes the plan's move_pages batches (at
most 4 MiB each) within a bandwidth limit. controller/proxy.py runs them in Ray actors (one or many hosts per
actor); a guest or a test runs one as it is.

Level-triggered: a round reads the host's state afresh, so a lost batch or a restart is healed by the next
round; batch ids make a retried MovePages idempotent. Every RPC carries a deadline. A host whose agent
restarted (its incarnation changed) is a new host: its topology is read again and its policy starts afresh.
The controller never advances a host's clock: a round acts on each completed period once, whoever makes
time pass.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from pagetide.common import keepalive
from pagetide.common.limits import MAX_CALLS
from pagetide.common.security import ClientSecurity, client_channel
from pagetide.controller.convert import host_view
from pagetide.controller.policies import PlacementPolicy, PolicyParams, VmPolicy, make_policy
from pagetide.controller.policies.placement import honour_vm_rules
from pagetide.v1 import agent_pb2, agent_pb2_grpc, types_pb2

RPC_TIMEOUT = 10.0         # seconds, for topology, reports and moves
PACE_SECONDS = 0.1         # with a bandwidth limit, send about this much wall time's worth per request

RETRY_SERVICE_CONFIG = """{"methodConfig": [{"name": [{"service": "pagetide.v1.AgentService"}],
  "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                  "retryableStatusCodes": ["UNAVAILABLE"]}}]}"""
CHANNEL_OPTIONS = [("grpc.service_config", RETRY_SERVICE_CONFIG), ("grpc.enable_retries", 1),
                   # a restarted agent is found again within a second or two, not gRPC's default 2 minutes
                   ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000),
                   # a connection attempt to a stalled agent (its kernel accepts, nobody answers) gives up in 5 s,
                   # not 20: calls fail and count as misses instead of each waiting out its deadline
                   ("grpc.min_reconnect_backoff_ms", 5000),
                   ("grpc.max_receive_message_length", 16 << 20), *keepalive.CLIENT_OPTIONS]


@dataclass
class RoundResult:
    host_id: str
    period: int = 0                      # the scan period acted on
    report_bytes: int = 0
    move_request_bytes: int = 0          # serialized MovePages requests sent
    report_seconds: float = 0.0          # the report's transfer (not the wait for the period)
    plan_seconds: float = 0.0
    move_seconds: float = 0.0
    promoted_bytes: int = 0
    demoted_bytes: int = 0
    marked_pages: int = 0
    batches: int = 0
    errors: dict[int, int] = field(default_factory=dict)    # -errno -> pages
    dram_target_bytes: dict[str, int] = field(default_factory=dict)
    heat_pages: dict[str, list[int]] = field(default_factory=dict)      # per VM: pages per heat bin
    heat_fast_pages: dict[str, list[int]] = field(default_factory=dict)  # per VM: of those, pages on DRAM
    dram_resident_share: dict[str, float] = field(default_factory=dict)  # per VM: resident pages on DRAM
    bin_level: tuple[float, ...] = ()    # the refs level each heat bin stands for (the report's; (): linear)
    nr_scans: int = 0                    # scans in the reported period
    accessed_page_scans: dict[str, int] = field(default_factory=dict)   # per VM: (page, scan) pairs found accessed
    node_loaded_read_latency_ns: tuple[float, ...] = ()  # per node: the report's loaded latency, () none
    node_id: str = ""                    # the Ray node that ran the round
    cpu_seconds: float = 0.0             # CPU of the proxy's process in this round's own steps, report to last move (not
                                         # while it waits on an RPC: other hosts of the actor run then)
    paused: bool = False                 # migration paused: planned, nothing pushed
    restarted: bool = False              # no round: the host's agent restarted (a new incarnation), seen afresh
    topology: bytes = b""                # the host's tenants changed (a new tenant generation) or its agent
                                         # restarted: its topology, read again (serialized GetTopologyResponse)

    @property
    def seconds(self) -> float:
        return self.report_seconds + self.plan_seconds + self.move_seconds


def reported_nodes(view) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per tenant, the node the heat report saw each candidate page on: (sorted addresses, their nodes)."""
    out = {}
    for t in view.tenants:
        lists = (t.hot_slow, t.cold_fast, t.hot_fast)
        addrs = np.concatenate([c.addresses for c in lists]).astype(np.uint64)
        nodes = np.concatenate([c.node for c in lists]).astype(np.int64)
        order = np.argsort(addrs, kind="stable")
        out[t.name] = addrs[order], nodes[order]
    return out


def expected_nodes(seen: tuple[np.ndarray, np.ndarray] | None, addresses) -> bytes:
    """A MoveCall's expected_nodes: where the report saw each page, so a late or repeated batch moves no page
    that has moved since; empty (no check) if a page was not in the report."""
    if seen is None or not len(addresses):
        return b""
    addrs, nodes = seen
    a = np.asarray(addresses, dtype=np.uint64)
    idx = np.minimum(np.searchsorted(addrs, a), max(addrs.size - 1, 0))
    if not addrs.size or not (addrs[idx] == a).all():
        return b""
    return nodes[idx].astype("<i2").tobytes()


class HostClient:
    """The controller's view of one host over gRPC (usable without Ray, e.g. in tests)."""

    def __init__(self, address: str, host_id: str, policy: str = "pagetide", policy_options: dict | None = None,
                 security: ClientSecurity | None = None):
        """policy: a name in policies.POLICIES; its object is made at the first topology (it needs the host's
        period) and kept while the host stays the same, so a stateful policy sees every round of this host.
        security: the token and TLS the agent asks for."""
        self.address = address
        self.host_id = host_id
        self.policy_name, self.policy_options = policy, dict(policy_options or {})
        self.policy: PlacementPolicy | None = None
        self.channel = client_channel(address, security, options=CHANNEL_OPTIONS)
        self.stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        self.topology: agent_pb2.GetTopologyResponse | None = None
        self.dram_nodes: set[int] = set()
        self.last_period = 0          # the last period acted on (0: none)
        self.round_no = 0

    async def get_topology(self) -> agent_pb2.GetTopologyResponse:
        """Read the host's topology; a new incarnation (the agent restarted) is a new host: the policy and
        the last period acted on start afresh, whichever call sees the change first."""
        old = self.topology
        self.topology = await self.stub.GetTopology(agent_pb2.GetTopologyRequest(host_id=self.host_id),
                                                    timeout=RPC_TIMEOUT)
        if old is not None and old.incarnation != self.topology.incarnation:
            self.policy = None
            self.last_period = 0
        self.dram_nodes = {n.id for n in self.topology.nodes if n.type == types_pb2.NODE_TYPE_DRAM}
        if self.policy is None:
            self.policy = make_policy(self.policy_name, period_seconds=self.topology.period_ns / 1e9,
                                      **self.policy_options)
        return self.topology

    async def reconcile(self, policies: dict[str, VmPolicy], params: PolicyParams, max_candidates: int = 4096,
                        bandwidth: float | None = None, wait: float = 5.0, paused: bool = False) -> RoundResult | None:
        """Wait up to `wait` seconds for a period after the last one acted on, then observe, decide, act: one
        heat report, one plan (kept within the VMs' rules), its batches. None if no new period came (the host
        answered, nothing to do). With `bandwidth` (bytes/s of wall time) the pushes are paced; in simulated
        time the plan's byte budget is the limit. `paused`: the round is observed and planned (a stateful
        policy sees every period) but no batch is pushed."""
        if self.topology is None:
            await self.get_topology()
        sizes = self.policy.report_request(len(self.topology.tenants), params, max_candidates)
        request = agent_pb2.GetHeatReportRequest(host_id=self.host_id, max_candidates=sizes.max_candidates,
                                                 wait_for_period_after=self.last_period,
                                                 max_wait_ms=int(wait * 1000))
        if sizes.max_hot_fast is not None:
            request.max_hot_fast = sizes.max_hot_fast
        report = await self.stub.GetHeatReport(request, timeout=wait + RPC_TIMEOUT)
        t0, clock = time.perf_counter(), _OwnCpu()
        if report.incarnation != self.topology.incarnation or report.period < self.last_period:
            # the host's agent restarted (a fresh simulated host; maybe other tenants): start over with it
            self.policy = None
            await self.get_topology()
            self.last_period = 0
            return RoundResult(host_id=self.host_id, restarted=True, topology=self.topology.SerializeToString())
        if report.waited_out:
            return None
        if report.period == 0:                   # no complete period yet: every heat is 0
            return None
        changed = report.tenant_generation != self.topology.tenant_generation
        if changed:                              # VMs arrived, left or resized: the same host, other tenants
            await clock.outside(self.get_topology())
        self.last_period = report.period
        self.round_no += 1
        res = RoundResult(host_id=self.host_id, period=report.period,
                          topology=self.topology.SerializeToString() if changed else b"")
        res.report_bytes = report.ByteSize()
        res.bin_level, res.nr_scans = tuple(report.bin_level), report.nr_scans
        res.node_loaded_read_latency_ns = tuple(report.node_loaded_read_latency_ns)
        for t in report.tenants:
            pages = [sum(col) for col in zip(*(h.pages for h in t.histograms))]
            res.heat_pages[t.tenant] = pages
            res.accessed_page_scans[t.tenant] = t.accessed_page_scans
            res.heat_fast_pages[t.tenant] = [sum(col) for col in zip(
                *(h.pages for h in t.histograms if h.node in self.dram_nodes))] or [0] * len(pages)
            total = sum(pages)
            on_dram = sum(sum(h.pages) for h in t.histograms if h.node in self.dram_nodes)
            res.dram_resident_share[t.tenant] = on_dram / total if total else 0.0
        known = {t.tenant for t in report.tenants}
        view = host_view(self.topology, report)
        t1 = time.perf_counter()
        mine = {k: v for k, v in policies.items() if k in known}
        plan = honour_vm_rules(view, mine, self.policy.plan(view, mine, params))
        t2 = time.perf_counter()
        res.dram_target_bytes = dict(plan.dram_target_bytes)
        res.paused = paused
        # one request carries up to MAX_CALLS move_pages calls (each <= 4 MiB); with a bandwidth limit the
        # requests are paced to it in wall time
        per_request = MAX_CALLS if not bandwidth else max(1, int(bandwidth * PACE_SECONDS) // params.batch_bytes)
        batches = () if paused else plan.batches
        seen = reported_nodes(view)
        for r, lo in enumerate(range(0, len(batches), per_request)):
            chunk = batches[lo:lo + per_request]
            req = agent_pb2.MovePagesRequest(
                host_id=self.host_id, batch_id=f"{self.host_id}/{report.period}/{self.round_no}/{r}",
                calls=[agent_pb2.MoveCall(tenant=b.tenant, count=len(b.addresses),
                                          addresses=np.asarray(b.addresses, dtype="<u8").tobytes(),
                                          nodes=np.full(len(b.addresses), b.target_node, dtype="<i2").tobytes(),
                                          expected_nodes=expected_nodes(seen.get(b.tenant), b.addresses),
                                          sw_young=b.sw_young) for b in chunk])
            start = time.perf_counter()
            res.move_request_bytes += req.ByteSize()
            resp = await clock.outside(self.stub.MovePages(req, timeout=RPC_TIMEOUT))
            res.batches += len(chunk)
            moved_total = 0
            for b, out in zip(chunk, resp.results):
                moved_total += out.moved_bytes
                if b.kind == "promote":
                    res.promoted_bytes += out.moved_bytes
                elif b.kind == "demote":
                    res.demoted_bytes += out.moved_bytes
                status = np.frombuffer(out.status, dtype="<i2")
                if b.kind == "mark":
                    res.marked_pages += int((status == b.target_node).sum())
                if (status < 0).any():
                    for err, n in zip(*np.unique(status[status < 0], return_counts=True)):
                        res.errors[int(err)] = res.errors.get(int(err), 0) + int(n)
            if bandwidth and moved_total:
                pause = moved_total / bandwidth - (time.perf_counter() - start)
                if pause > 0:
                    await clock.outside(asyncio.sleep(pause))
        res.report_seconds, res.plan_seconds, res.move_seconds = t1 - t0, t2 - t1, time.perf_counter() - t2
        res.cpu_seconds = clock.seconds()
        return res

    async def close(self) -> None:
        await self.channel.close()


class _OwnCpu:
    """A round's own CPU time: the process's, paused while the round awaits its agent or a pacing sleep (other
    hosts' rounds run meanwhile in the same process)."""

    def __init__(self):
        self.spent, self._since = 0.0, time.process_time()

    async def outside(self, awaitable):
        self.spent += time.process_time() - self._since
        try:
            return await awaitable
        finally:
            self._since = time.process_time()

    def seconds(self) -> float:
        return self.spent + time.process_time() - self._since
