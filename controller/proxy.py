"""One async Ray actor per host around the controller's host client (controller/hostclient.py): it owns the
host's gRPC channel, created on the actor's own event loop, and runs one round at a time.
"""

from __future__ import annotations

import asyncio

import ray

from pagetide.common.security import ClientSecurity
from pagetide.controller.hostclient import (  # noqa: F401 -- re-exported: the controller and tests import them here
    RPC_TIMEOUT, HostClient, RoundResult, expected_nodes, reported_nodes,
)
from pagetide.controller.policies import PolicyParams


@ray.remote(num_cpus=0)
class HostProxy:
    """Ray actor around one HostClient: the channel is created on the actor's own event loop at the first
    call; one round at a time (a round the controller gave up on finishes before the next starts, so no batch
    is pushed twice at once)."""

    def __init__(self, address: str, host_id: str, policy: str = "pagetide", policy_options: dict | None = None,
                 security: ClientSecurity | None = None):
        self.address, self.host_id = address, host_id
        self.policy, self.policy_options = policy, policy_options
        self.security = security
        self.client: HostClient | None = None
        self.lock: asyncio.Lock | None = None

    def _c(self) -> HostClient:
        if self.client is None:
            self.client = HostClient(self.address, self.host_id, self.policy, self.policy_options, self.security)
            self.lock = asyncio.Lock()
        return self.client

    async def topology(self) -> bytes:
        c = self._c()
        async with self.lock:
            return (await c.get_topology()).SerializeToString()

    async def reconcile(self, policies: dict, params: PolicyParams, max_candidates: int, bandwidth: float | None,
                        wait: float, paused: bool = False) -> RoundResult | None:
        c = self._c()
        async with self.lock:
            res = await c.reconcile(policies, params, max_candidates, bandwidth, wait, paused)
        if res is not None:
            res.node_id = ray.get_runtime_context().get_node_id()
        return res

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()
