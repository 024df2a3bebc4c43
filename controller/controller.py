"""The controller: reconciles every host on its own through HostProxy actors (each serving up to
`hosts_per_proxy` hosts, a HostClient per host), keeps users' VM
policies and migration pauses (durably, in its PolicyStore), publishes events, and exports Prometheus
metrics.

Each host has its own loop (level-triggered, like a Kubernetes controller's work queue per object): wait for
the host's next scan period, report, plan, move, repeat. A slow or dead host never stalls or aborts the
others. A call that fails or misses its deadline counts as a miss; after `down_after` misses in a row, or a
miss when the host has not answered for DOWN_SILENCE seconds (a stalled agent's calls each take their whole
deadline), the host is marked down, its loop keeps retrying with a capped backoff, and the host is taken back (topology read
again) at its next answer. State is bounded: per host a window of the last `history` round results and
running totals, never every round. Time passes by itself: the controller never advances a host's clock, so a
simulation harness drives simulated hosts and the controller acts on each period as it completes.

Proxy actors are spread over the nodes of the Ray cluster (round robin, each pinned to its node with a soft
node affinity), at least one per node: on a multi-node cluster each node serves a share of the hosts.
Packing hosts into an actor keeps their loops apart (each host's calls, locks, deadlines and misses are its
own); an actor that dies is restarted by Ray and its hosts' next rounds start afresh (level-triggered), its
hosts' calls meanwhile counting as misses.

Policies and pauses are written to the store before they take effect in memory (a failed write changes
nothing), and a controller started on the same store restores all of them, also for hosts that are down at
start. A paused host (or every host, under the cluster-wide pause) keeps its rounds -- reports read, status
and statistics kept -- but no moves are pushed. Metrics (controller/metrics.py) follow every round, host
transition, policy and pause change.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import grpc
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from pagetide.common.security import ClientSecurity, client_channel
from pagetide.controller.events import EventHub
from pagetide.controller.metrics import Metrics
from pagetide.controller.policies import PolicyParams, VmPolicy, make_policy
from pagetide.controller.proxy import HOSTS_PER_PROXY, RPC_TIMEOUT, HostProxy, RoundResult, proxy_groups
from pagetide.controller.store import CLUSTER, PolicyStore
from pagetide.v1 import agent_pb2, agent_pb2_grpc

DOWN_AFTER = 3             # misses in a row before a host is marked down...
DOWN_SILENCE = 10.0        # ...or one miss after this many seconds without an answer (a stalled agent)
HISTORY = 64               # round results kept per host
WAIT_SECONDS = 5.0         # long poll for a host's next period
MAX_BACKOFF = 2.0          # seconds between retries of a host that does not answer
BACK_GRACE = 10.0          # seconds wait_reconciled waits for a host seen back but still down here


@dataclass
class HostState:
    """What the controller knows of one host: observed, bounded."""
    host_id: str
    address: str
    status: str = "starting"            # starting | up | down
    misses: int = 0                     # failed calls in a row
    outages: int = 0
    rounds: int = 0
    last_period: int = 0
    promoted_bytes: int = 0
    demoted_bytes: int = 0
    last_error: str = ""
    last_answer: float = field(default_factory=time.monotonic)   # when the host last answered
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    topology: agent_pb2.GetTopologyResponse | None = None

    @property
    def up(self) -> bool:
        return self.status == "up"


async def discover(addresses: list[str], timeout: float = 30.0,
                   security: ClientSecurity | None = None) -> dict[str, str]:
    """host id -> agent address, asking each agent for the hosts it serves (ListHosts, with `security`'s token
    and TLS), retrying until `timeout`. Raises TimeoutError naming the agents that never answered,
    PermissionError for one that refuses the credentials, ValueError for a host served twice."""
    out: dict[str, str] = {}
    deadline = time.monotonic() + timeout

    async def ask(addr: str) -> list[str]:
        async with client_channel(addr, security) as ch:
            stub = agent_pb2_grpc.AgentServiceStub(ch)
            while True:
                try:
                    left = max(0.1, deadline - time.monotonic())
                    r = await stub.ListHosts(agent_pb2.ListHostsRequest(), timeout=min(RPC_TIMEOUT, left),
                                             wait_for_ready=True)
                    return list(r.host_ids)
                except grpc.aio.AioRpcError as e:
                    if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                        raise PermissionError(f"agent {addr} refused ListHosts: {e.code().name}: "
                                              f"{e.details()}") from None
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"agent {addr} did not answer ListHosts within {timeout:g} s") from None
                    await asyncio.sleep(0.5)

    for addr, hosts in zip(addresses, await asyncio.gather(*(ask(a) for a in addresses))):
        for h in hosts:
            if h in out:
                raise ValueError(f"host {h!r} is served by both {out[h]} and {addr}")
            out[h] = addr
    return out


class Controller:
    def __init__(self, hosts: dict[str, str], params: PolicyParams = PolicyParams(), max_candidates: int = 4096,
                 bandwidth: float | None = None, pace: bool = False, metrics: Metrics | None = None,
                 policy: str = "pagetide", policy_options: dict | None = None, down_after: int = DOWN_AFTER,
                 wait: float = WAIT_SECONDS, on_round: Callable[[RoundResult], None] | None = None,
                 store: PolicyStore | None = None, agent_security: ClientSecurity | None = None,
                 hosts_per_proxy: int = HOSTS_PER_PROXY):
        """hosts: host id -> agent address. bandwidth: each host's migration limit in bytes/s: a byte budget of
        bandwidth x period per round, and with `pace` the pushes are paced to it in wall time. policy: a name
        in policies.POLICIES, one object per host (ValueError if unknown or an option is invalid).
        on_round: called with every host round's result (a harness collecting them). store: where policies
        and pauses persist, read now (the caller closes it); None: an in-memory one, lost at shutdown.
        agent_security: the token and TLS the proxies call agents with. hosts_per_proxy: hosts one proxy actor
        serves at most (ValueError if < 1); 1 is an actor per host."""
        make_policy(policy, **(policy_options or {}))      # reject a bad name or option here, not in the actors
        proxy_groups([], hosts_per_proxy)                  # reject a bad count here
        self.hosts_per_proxy = hosts_per_proxy
        self.policy, self.policy_options = policy, dict(policy_options or {})
        self.agent_security = agent_security
        self.params = params
        self.max_candidates = max_candidates
        self.bandwidth = bandwidth
        self.pace = pace
        self.metrics = metrics or Metrics()
        self.down_after = down_after
        self.wait = wait
        self.on_round = on_round
        self.hosts = {h: HostState(h, addr) for h, addr in hosts.items()}
        self.proxies: dict = {}            # host id -> the HostProxy actor serving it (shared), made at start()
        self.store = store if store is not None else PolicyStore()
        self._own_store = store is None
        stored = self.store.policies()
        self.policies: dict[str, dict[str, VmPolicy]] = {h: dict(stored.get(h, {})) for h in hosts}
        self.pauses: dict[str, str] = {s: r for s, r in self.store.pauses().items() if s == CLUSTER or s in hosts}
        self.events = EventHub()
        self._tasks: list[asyncio.Task] = []
        self._changed = asyncio.Condition()
        self._metrics_state()

    def _metrics_state(self) -> None:
        self.metrics.state({h: s.status for h, s in self.hosts.items()}, self.policies,
                           {h: self.paused(h) for h in self.hosts}, self.policy)

    @property
    def topologies(self) -> dict[str, agent_pb2.GetTopologyResponse]:
        return {h: s.topology for h, s in self.hosts.items() if s.topology is not None}

    async def start(self, timeout: float = 2 * RPC_TIMEOUT) -> None:
        """Start the HostProxy actors (hosts_per_proxy hosts each at most, at least one per Ray node), read
        every host's topology (a host that does not answer in time starts down and is retried by its loop),
        then start the per-host loops."""
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        self.proxies = {}
        for i, group in enumerate(proxy_groups(list(self.hosts), self.hosts_per_proxy, len(nodes))):
            # the i-th actor on the i-th node, round robin; soft, so a restart after its node died goes elsewhere
            where = NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True) if nodes else "SPREAD"
            actor = HostProxy.options(scheduling_strategy=where, max_restarts=-1).remote(
                {h: self.hosts[h].address for h in group}, self.policy, self.policy_options, self.agent_security)
            self.proxies.update(dict.fromkeys(group, actor))
        async def first(h: str) -> None:
            try:
                await self._read_topology(h, timeout)
                await self._answered(h)
            except Exception as e:           # noqa: BLE001 -- any failure is the host's, not the controller's
                await self._missed(h, e)
        await asyncio.gather(*(first(h) for h in self.hosts))
        self._tasks = [asyncio.get_running_loop().create_task(self._loop(h), name=f"reconcile {h}")
                       for h in self.hosts]

    async def _read_topology(self, h: str, timeout: float) -> None:
        """Read the host's topology through its proxy; a new incarnation (the agent restarted) is a new host
        whose periods count from 1 again."""
        raw = await asyncio.wait_for(self.proxies[h].topology.remote(h), timeout)
        self._set_topology(self.hosts[h], raw)

    @staticmethod
    def _set_topology(s: HostState, raw: bytes) -> None:
        """Serve the host's topology as read (the VMs' set may have changed: arrivals, departures,
        resizes; stored policies stay, also those of VMs that left, so a VM of that name that comes back has
        its policy again). A new incarnation is a new host whose periods count from 1 again."""
        old, s.topology = s.topology, agent_pb2.GetTopologyResponse.FromString(raw)
        if old is not None and old.incarnation != s.topology.incarnation:
            s.last_period = 0

    def vms(self, host_id: str) -> set[str]:
        t = self.hosts[host_id].topology if host_id in self.hosts else None
        return {x.name for x in t.tenants} if t is not None else set()

    def set_policy(self, host_id: str, vm: str, policy: VmPolicy) -> None:
        """Set one VM's policy (KeyError naming an unknown host or VM)."""
        if host_id not in self.hosts or self.hosts[host_id].topology is None:
            raise KeyError(f"no host {host_id!r}")
        if vm not in self.vms(host_id):
            raise KeyError(f"no VM {vm!r} on host {host_id!r}")
        self.set_policies([(host_id, vm, policy)])

    def set_policies(self, items: list[tuple[str, str, VmPolicy]]) -> None:
        """Set (replace) policies of VMs the caller checked exist, all or none: stored first, then in force
        from each host's next round."""
        self.store.put_policies(items)
        for h, vm, p in items:
            self.policies[h][vm] = p
        for h, vm, p in items:
            self.events.publish("policy_set", host_id=h, vm=vm, policy=p)
        self._metrics_state()

    def delete_policies(self, keys: list[tuple[str, str]]) -> list[tuple[str, str, VmPolicy]]:
        """Forget the policies of (host, VM) pairs, all or none; the (host, VM, policy) that were set."""
        gone = [(h, vm, self.policies[h][vm]) for h, vm in keys if vm in self.policies.get(h, {})]
        if gone:
            self.store.delete_policies([(h, vm) for h, vm, _ in gone])
        for h, vm, _ in gone:
            del self.policies[h][vm]
            self.events.publish("policy_deleted", host_id=h, vm=vm)
        if gone:
            self._metrics_state()
        return gone

    def paused(self, host_id: str) -> bool:
        """Whether migration is paused on the host: by its own pause or the cluster-wide one."""
        return host_id in self.pauses or CLUSTER in self.pauses

    def set_paused(self, scope: str, paused: bool, reason: str = "") -> None:
        """Pause or resume migration on a host (a host id) or cluster-wide (CLUSTER); stored first. Resuming
        the cluster leaves hosts paused on their own paused."""
        if scope != CLUSTER and scope not in self.hosts:
            raise KeyError(f"no host {scope!r}")
        if paused == (scope in self.pauses) and (not paused or self.pauses[scope] == reason):
            return
        self.store.set_paused(scope, paused, reason)
        if paused:
            self.pauses[scope] = reason
        else:
            del self.pauses[scope]
        self.events.publish("paused" if paused else "resumed", host_id=scope, reason=reason)
        self._metrics_state()

    def host_params(self, h: str) -> PolicyParams:
        t = self.hosts[h].topology
        if self.bandwidth is None or t is None:
            return self.params
        return replace(self.params, max_bytes_per_round=int(self.bandwidth * t.period_ns / 1e9))

    async def _loop(self, h: str) -> None:
        proxy, state = self.proxies[h], self.hosts[h]
        # A reconcile call past its deadline is a miss, but it is not abandoned: the proxy finishes it (its
        # moves are pushed, its HostClient counts the period as acted on), so the loop awaits that same call
        # again instead of queueing another behind it, and a late round is still recorded.
        call: asyncio.Future | None = None
        deadline = self.wait + 4 * RPC_TIMEOUT
        try:
            while True:
                try:
                    if call is None:
                        if not state.up:
                            await self._read_topology(h, 2 * RPC_TIMEOUT)
                        call = asyncio.ensure_future(proxy.reconcile.remote(
                            h, self.policies[h], self.host_params(h), self.max_candidates,
                            self.bandwidth if self.pace else None, self.wait, self.paused(h)))
                    done, _ = await asyncio.wait({call}, timeout=deadline)
                    if not done:
                        raise TimeoutError(f"reconcile took longer than {deadline:.0f} s (still awaited)")
                    finished, call = call, None
                    res = finished.result()
                except asyncio.CancelledError:
                    raise
                except Exception as e:           # noqa: BLE001 -- a dead, stalled or confused host: retried
                    await self._missed(h, e)
                    await asyncio.sleep(min(MAX_BACKOFF, 0.25 * 2 ** min(state.misses, 8)))
                    continue
                await self._answered(h)
                if res is not None and res.restarted:        # the proxy read the new agent's topology already
                    self._set_topology(state, res.topology)
                    async with self._changed:
                        self._changed.notify_all()
                elif res is not None:
                    await self._record(res)
        finally:
            if call is not None:
                call.cancel()

    async def _answered(self, h: str) -> None:
        s = self.hosts[h]
        s.misses = 0
        s.last_answer = time.monotonic()
        if s.status != "up":
            s.status = "up"
            self._metrics_state()
            self.events.publish("host_up", host_id=h)
            async with self._changed:
                self._changed.notify_all()

    async def _missed(self, h: str, e: Exception) -> None:
        s = self.hosts[h]
        s.misses += 1
        s.last_error = _reason(e)
        down_now = (s.misses >= self.down_after or time.monotonic() - s.last_answer > DOWN_SILENCE) and \
            s.status != "down"
        self.metrics.host_missed(h, down_now)
        if down_now:
            s.status = "down"
            s.outages += 1
            self._metrics_state()
            self.events.publish("host_down", host_id=h, reason=s.last_error)
            async with self._changed:
                self._changed.notify_all()

    async def _record(self, res: RoundResult) -> None:
        s = self.hosts[res.host_id]
        if res.topology:
            self._set_topology(s, res.topology)
        s.rounds += 1
        s.last_period = res.period
        s.promoted_bytes += res.promoted_bytes
        s.demoted_bytes += res.demoted_bytes
        s.history.append(res)
        self.metrics.observe(res)
        self.events.publish("round", host_id=res.host_id, period=res.period, promoted_bytes=res.promoted_bytes,
                            demoted_bytes=res.demoted_bytes, paused=res.paused)
        if self.on_round is not None:
            self.on_round(res)
        async with self._changed:
            self._changed.notify_all()

    async def wait_reconciled(self, periods: dict[str, int], timeout: float | None = None,
                              back: frozenset[str] | set[str] = frozenset(), down_too: bool = False) -> bool:
        """Wait until every named host that is up has acted on its given period (hosts down are not waited
        for, unless `down_too`: a benchmark, whose rounds must cover every host, waits while the host's loop
        retries); False if `timeout` passed first. Hosts in `back` (the caller has just seen them answer again
        after an absence) are waited for even while down, for at most BACK_GRACE seconds: long enough for the
        host's loop to find its agent again, so a returning host's first periods are not left unmanaged."""
        def done(grace: bool) -> bool:
            # a host back but down here still has its old incarnation's last period: wait for it to be up
            return all((self.hosts[h].last_period >= p or (self.hosts[h].status == "down" and not down_too)) and
                       not (grace and h in back and self.hosts[h].status != "up")
                       for h, p in periods.items())
        loop = asyncio.get_running_loop()
        now = loop.time()
        end = None if timeout is None else now + timeout
        grace_end = now + BACK_GRACE
        async with self._changed:
            while True:
                now = loop.time()
                if done(now < grace_end):
                    return True
                if end is not None and now >= end:
                    return False
                wakes = [t for t in (end, grace_end if back else None) if t is not None and t > now]
                try:
                    await asyncio.wait_for(self._changed.wait(), min(wakes) - now if wakes else None)
                except asyncio.TimeoutError:
                    pass

    def rounds(self) -> int:
        return sum(s.rounds for s in self.hosts.values())

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def shutdown(self) -> None:
        for p in {id(p): p for p in self.proxies.values()}.values():
            ray.kill(p)
        if self._own_store:
            self.store.close()


def _reason(e: Exception) -> str:
    """A one-line reason for a failed host call (gRPC status inside Ray's wrapper, or the exception)."""
    cause = getattr(e, "cause", None) or e
    if isinstance(cause, grpc.aio.AioRpcError):
        return f"{cause.code().name}: {cause.details()}"
    if isinstance(e, asyncio.TimeoutError):
        return "deadline exceeded"
    return f"{type(cause).__name__}: {str(cause)[:200]}"
