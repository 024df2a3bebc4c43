"""The agent's Prometheus metrics: what its hosts look like and what moved on them, read through the host seam.

Per host and node: capacity, used, free and page-table bytes; per VM: resident bytes by tier; per host:
pages and bytes migrated by source and destination tier and by who moved them (`controller`: move_pages(2)
calls the agent served, `kernel`: reclaim's demotion, NUMA-balancing or DAMOS promotion), the kernel's vmstat
counters one metric each (`pagetide_vmstat_<name>_total`, in the kernel's own units: pages, or faults), the
per-page errors of move_pages by errno, tracker scan durations, and the server's RPCs per method.

Host state is read when Prometheus scrapes (`HostBackend.usage()`, under each host's lock on the agent's event
loop, with a deadline: a host busy past it shows its previous reading), so an agent nobody scrapes does no work
for metrics. Labels are bounded: host, node, tier, VM, errno name, the kernel's counter names -- never a page.
`per_vm=False` drops the per-VM series (fleets of thousands of hosts; README "Metrics").
"""

from __future__ import annotations

import asyncio
import errno as errno_names
import threading
from collections.abc import Iterable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pagetide.agent.backend import HostUsage
from pagetide.agent.pageflags import PAGE_SIZE
from pagetide.common.rpcmetrics import RpcMetrics

SCRAPE_TIMEOUT = 5.0        # seconds a scrape waits for all hosts' readings before showing the previous ones
# an idle_pages walk: ~1 TiB in 2 s on a real host (DESIGN.md), a 2 GiB model in a few ms
SCAN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def errno_name(status: int) -> str:
    """-16 -> 'EBUSY' (the number for one the platform does not name)."""
    return errno_names.errorcode.get(-status, str(-status))


def tier_moves(matrix: list[list[int]], tiers: list[str]) -> dict[tuple[str, str], int]:
    """A [source node][destination node] page matrix summed by (source tier, destination tier), zeros left out."""
    out: dict[tuple[str, str], int] = {}
    for s, row in enumerate(matrix):
        for d, n in enumerate(row):
            if n:
                key = (tiers[s], tiers[d])
                out[key] = out.get(key, 0) + int(n)
    return out


class AgentMetrics:
    """pagetide_* metrics of one agent process on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None, per_vm: bool = True,
                 scrape_timeout: float = SCRAPE_TIMEOUT):
        disable_created_metrics()
        self.registry = registry or CollectorRegistry()
        self.per_vm = per_vm
        self.scrape_timeout = scrape_timeout
        r = self.registry
        # first: a scrape reads the hosts (and observes their scans) before the histograms below are collected
        r.register(_UsageCollector(self))
        self.rpc = RpcMetrics(r)
        self.scan_seconds = Histogram("pagetide_agent_scan_duration_seconds", "Wall time of one tracker scan "
                                      "of a host (every tenant's pages)", ["host"], buckets=SCAN_BUCKETS,
                                      registry=r)
        self.move_errors = Counter("pagetide_agent_move_page_errors_total", "Pages move_pages refused, by errno "
                                   "(EBUSY pinned or moved since the report, ENOMEM target full, ENOENT not "
                                   "present, EFAULT outside the VM, EINVAL no such node)", ["host", "errno"],
                                   registry=r)
        self.move_calls = Counter("pagetide_agent_move_pages_calls_total", "move_pages calls applied",
                                  ["host"], registry=r)
        self.readings: dict[str, HostUsage] = {}
        self.stale = Counter("pagetide_agent_stale_readings_total", "Scrapes that showed a host's previous "
                             "reading because the host was busy past the deadline", ["host"], registry=r)
        self._slots: dict = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def attach(self, slots: dict, loop: asyncio.AbstractEventLoop) -> None:
        """Read `slots` (host id -> agent.server.HostSlot) on `loop` at each scrape."""
        self._slots, self._loop, self._loop_thread = slots, loop, threading.get_ident()
        for h in slots:
            self.scan_seconds.labels(h)
            self.move_calls.labels(h)

    def moved(self, host_id: str, statuses: Iterable[np.ndarray]) -> None:
        """Count one MovePages request's calls and per-page errors."""
        for status in statuses:
            self.move_calls.labels(host_id).inc()
            bad = status[status < 0]
            if bad.size:
                for err, n in zip(*np.unique(bad, return_counts=True)):
                    self.move_errors.labels(host_id, errno_name(int(err))).inc(int(n))

    def record(self, host_id: str, usage: HostUsage) -> None:
        for s in usage.scan_seconds:
            self.scan_seconds.labels(host_id).observe(s)
        self.readings[host_id] = usage

    async def refresh(self) -> None:
        """Read every host's usage under its lock; a host not read within the deadline keeps its last one."""
        async def one(h: str, slot) -> None:
            try:
                usage = await asyncio.wait_for(slot.run(slot.backend.usage, thread=False, queue_limit=False),
                                               self.scrape_timeout)
            except asyncio.TimeoutError:
                self.stale.labels(h).inc()
                return
            self.record(h, usage)
        await asyncio.gather(*(one(h, s) for h, s in self._slots.items()))

    def refresh_from_thread(self) -> None:
        """At a scrape (the HTTP server's thread): refresh on the agent's loop, waiting at most the deadline.
        Called on the loop's own thread (a test reading the registry) it shows the last readings: waiting there
        would block the loop it waits for."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or threading.get_ident() == self._loop_thread:
            return
        fut = asyncio.run_coroutine_threadsafe(self.refresh(), loop)
        try:
            fut.result(self.scrape_timeout + 1.0)
        except Exception:            # noqa: BLE001 -- a scrape shows what it has rather than failing
            fut.cancel()


class _UsageCollector(Collector):
    """The readings as metric families, made at each scrape."""

    def __init__(self, metrics: AgentMetrics):
        self.m = metrics

    def describe(self):
        return []           # families are made at scrape time; nothing to check at registration

    def collect(self):
        m = self.m
        m.refresh_from_thread()
        node = {k: GaugeMetricFamily(f"pagetide_node_{k}_bytes", text, labels=["host", "node", "tier"])
                for k, text in (("capacity", "Memory of a NUMA node"),
                                ("used", "Bytes of tenants' pages on a node"),
                                ("free", "Free bytes on a node"),
                                ("page_table", "Page-table bytes on a node"))}
        info = GaugeMetricFamily("pagetide_agent_host_info", "1 per host the agent serves, with its backend, "
                                 "zonelist mode and whether kernel demotion is enabled",
                                 labels=["host", "backend", "zonelist", "demotion"])
        vms = GaugeMetricFamily("pagetide_agent_host_vms", "VMs (tenants) on a host", labels=["host"])
        resident = GaugeMetricFamily("pagetide_vm_resident_bytes", "Bytes of a VM's pages resident on a tier",
                                     labels=["host", "vm", "tier"])
        footprint = GaugeMetricFamily("pagetide_vm_footprint_bytes", "A VM's memory size", labels=["host", "vm"])
        pages = CounterMetricFamily("pagetide_migrated_pages", "Base pages (4 KiB) migrated between tiers, by "
                                    "who moved them (controller: move_pages calls; kernel: reclaim demotion, "
                                    "NUMA-balancing or DAMOS promotion)",
                                    labels=["host", "source_tier", "destination_tier", "mover"])
        nbytes = CounterMetricFamily("pagetide_migrated_bytes", "Bytes migrated between tiers, by who moved them",
                                     labels=["host", "source_tier", "destination_tier", "mover"])
        vmstat: dict[str, CounterMetricFamily] = {}
        for h, u in sorted(m.readings.items()):
            t = u.topology
            tiers = [n.type for n in t.nodes]
            info.add_metric([h, t.backend, t.zonelist, str(t.demotion_enabled).lower()], 1)
            vms.add_metric([h], len(t.tenants))
            for n in t.nodes:
                lab = [h, str(n.id), n.type]
                node["capacity"].add_metric(lab, n.capacity)
                node["used"].add_metric(lab, n.used)
                node["free"].add_metric(lab, n.free)
                node["page_table"].add_metric(lab, n.page_tables)
            if m.per_vm:
                for x in t.tenants:
                    footprint.add_metric([h, x.name], x.footprint)
                    by_tier: dict[str, int] = dict.fromkeys(dict.fromkeys(tiers), 0)
                    for nid, b in enumerate(u.resident.get(x.name, ())):
                        by_tier[tiers[nid]] += b
                    for tier, b in by_tier.items():
                        resident.add_metric([h, x.name, tier], b)
            every = tier_moves(u.migrated_pages, tiers)
            asked = tier_moves(u.move_pages_migrated, tiers)
            for key in sorted(set(every) | set(asked)):
                for mover, n in (("controller", asked.get(key, 0)), ("kernel", every.get(key, 0) - asked.get(key, 0))):
                    pages.add_metric([h, *key, mover], n)
                    nbytes.add_metric([h, *key, mover], n * PAGE_SIZE)
            for name, value in sorted(u.vmstat.items()):
                fam = vmstat.get(name)
                if fam is None:
                    fam = vmstat[name] = CounterMetricFamily(
                        f"pagetide_vmstat_{name}", f"Host counter {name} as /proc/vmstat names it (pages; "
                        "faults for *fault and numa_hint_faults, PTEs for numa_pte_updates; pgalloc_fail is "
                        "the model's own)", labels=["host"])
                fam.add_metric([h], value)
        yield from node.values()
        yield from (info, vms, pages, nbytes)
        if m.per_vm:
            yield from (resident, footprint)
        yield from vmstat.values()
