"""The async Ray actor that runs the controller's host clients (controller/hostclient.py): one actor serves
one host or many (`hosts_per_proxy`), a HostClient per host, each host's gRPC channel created on the actor's
own event loop, one round at a time per host.
"""

from __future__ import annotations

import asyncio
import math

import ray

from pagetide.common.security import ClientSecurity
from pagetide.controller.hostclient import (  # noqa: F401 -- re-exported: the controller and tests import them here
    RPC_TIMEOUT, HostClient, RoundResult, expected_nodes, reported_nodes,
)
from pagetide.controller.policies import PolicyParams

HOSTS_PER_PROXY = 16       # hosts one actor serves at most (1: an actor per host)


def proxy_groups(hosts: list[str], hosts_per_proxy: int, nodes: int = 1) -> list[list[str]]:
    """The hosts in the order given, cut into as few actors' shares as `hosts_per_proxy` allows, but at least
    one per Ray node (`nodes`, at most one per host) so a multi-node cluster still shares the hosts out;
    shares differ by at most one host. ValueError if hosts_per_proxy < 1."""
    if hosts_per_proxy < 1:
        raise ValueError(f"hosts_per_proxy: must be at least 1, not {hosts_per_proxy}")
    if not hosts:
        return []
    n = min(len(hosts), max(math.ceil(len(hosts) / hosts_per_proxy), nodes))
    q, r = divmod(len(hosts), n)
    out, lo = [], 0
    for i in range(n):
        hi = lo + q + (i < r)
        out.append(hosts[lo:hi])
        lo = hi
    return out


class HostRounds:
    """The hosts one actor serves: a HostClient per host, made on the first call for that host (on the
    running event loop), and a lock per host so each host has one round at a time (a round the controller
    gave up on finishes before that host's next starts, so no batch is pushed twice at once). Hosts never
    wait for each other: a slow, failing or dead host's calls fail on their own."""

    def __init__(self, hosts: dict[str, str], policy: str = "pagetide", policy_options: dict | None = None,
                 security: ClientSecurity | None = None):
        """hosts: host id -> agent address."""
        self.addresses = dict(hosts)
        self.policy, self.policy_options = policy, policy_options
        self.security = security
        self.clients: dict[str, HostClient] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    def _c(self, host_id: str) -> HostClient:
        if host_id not in self.addresses:
            raise KeyError(f"host_id: {host_id!r} is not served here")
        if host_id not in self.clients:
            self.clients[host_id] = HostClient(self.addresses[host_id], host_id, self.policy, self.policy_options,
                                               self.security)
            self.locks[host_id] = asyncio.Lock()
        return self.clients[host_id]

    async def topology(self, host_id: str) -> bytes:
        c = self._c(host_id)
        async with self.locks[host_id]:
            return (await c.get_topology()).SerializeToString()

    async def reconcile(self, host_id: str, policies: dict, params: PolicyParams, max_candidates: int,
                        bandwidth: float | None, wait: float, paused: bool = False) -> RoundResult | None:
        c = self._c(host_id)
        async with self.locks[host_id]:
            return await c.reconcile(policies, params, max_candidates, bandwidth, wait, paused)


@ray.remote(num_cpus=0)
class HostProxy:
    """Ray actor around a HostRounds: the rounds of the hosts it was given, each call naming its host."""

    def __init__(self, hosts: dict[str, str], policy: str = "pagetide", policy_options: dict | None = None,
                 security: ClientSecurity | None = None):
        self.rounds = HostRounds(hosts, policy, policy_options, security)

    async def topology(self, host_id: str) -> bytes:
        return await self.rounds.topology(host_id)

    async def reconcile(self, host_id: str, policies: dict, params: PolicyParams, max_candidates: int,
                        bandwidth: float | None, wait: float, paused: bool = False) -> RoundResult | None:
        res = await self.rounds.reconcile(host_id, policies, params, max_candidates, bandwidth, wait, paused)
        if res is not None:
            res.node_id = ray.get_runtime_context().get_node_id()
        return res

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()
