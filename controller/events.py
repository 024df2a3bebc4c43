"""The controller's events and their fan-out to watchers: each host round (with the bytes it promoted and
demoted), a policy set or deleted, a host marked down or back up, migration paused or resumed.

Publishing never waits for a watcher: every subscriber has its own bounded queue, and when a slow one's
queue is full its oldest event is dropped and counted; the next event it reads carries how many it lost, so
a client knows its picture has a gap (and can re-read the state, which the controller can always tell
again). Events live on the controller's event loop; nothing here is persisted.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from pagetide.controller.policies import VmPolicy

__all__ = ["KINDS", "Event", "Subscription", "EventHub"]

KINDS = ("round", "policy_set", "policy_deleted", "host_down", "host_up", "paused", "resumed")
QUEUE = 1024                 # events a subscriber may fall behind before the oldest are dropped


@dataclass(frozen=True)
class Event:
    sequence: int            # 1, 2, ... in publishing order (per controller run)
    time_ns: int             # wall clock, Unix epoch
    kind: str                # one of KINDS
    host_id: str = ""        # "" for a cluster-wide pause or resume
    vm: str = ""             # policy events
    policy: VmPolicy | None = None       # policy_set: the policy now in force
    period: int = 0          # round: the host's scan period acted on
    promoted_bytes: int = 0  # round: moved to DRAM
    demoted_bytes: int = 0   # round: moved to the slow tier
    paused: bool = False     # round: migration was paused (planned, nothing moved)
    reason: str = ""         # host_down: the last failure; paused: the user's reason


class Subscription:
    """One watcher's queue. `get` returns (event, dropped): how many of its events were dropped since the
    last one it read."""

    def __init__(self, hub: EventHub, maxsize: int, hosts: Collection[str], kinds: Collection[str]):
        self.hub = hub
        self.hosts, self.kinds = frozenset(hosts), frozenset(kinds)
        self.queue: deque[Event] = deque()
        self.maxsize = maxsize
        self.dropped = 0
        self.ready = asyncio.Event()

    def wants(self, e: Event) -> bool:
        return (not self.hosts or e.host_id in self.hosts or not e.host_id) and (not self.kinds or e.kind in self.kinds)

    def offer(self, e: Event) -> None:
        if len(self.queue) >= self.maxsize:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(e)
        self.ready.set()

    async def get(self, timeout: float | None = None) -> tuple[Event, int] | None:
        """The next event and the drops before it; None if none came within `timeout` seconds."""
        if not self.queue:
            self.ready.clear()
            try:
                await asyncio.wait_for(self.ready.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        e = self.queue.popleft()
        dropped, self.dropped = self.dropped, 0
        return e, dropped

    def close(self) -> None:
        self.hub.subscribers.discard(self)


class EventHub:
    def __init__(self):
        self.subscribers: set[Subscription] = set()
        self.sequence = 0

    def subscribe(self, hosts: Collection[str] = (), kinds: Collection[str] = (),
                  maxsize: int = QUEUE) -> Subscription:
        """A new watcher of the events from now on: of `hosts` (empty: every host; cluster-wide events always)
        and of `kinds` (empty: every kind). Close it when done."""
        s = Subscription(self, maxsize, hosts, kinds)
        self.subscribers.add(s)
        return s

    def publish(self, kind: str, **fields) -> Event:
        """Record an event and offer it to every interested watcher (never blocks)."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        self.sequence += 1
        e = Event(sequence=self.sequence, time_ns=time.time_ns(), kind=kind, **fields)
        for s in list(self.subscribers):
            if s.wants(e):
                s.offer(e)
        return e
