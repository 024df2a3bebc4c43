"""The Linux host backend: a real machine behind the agent's host seam (agent/backend.py `HostBackend`).

- Topology from sysfs (agent/linux/sysfs.py): nodes with memory, distances, memory tiers. A node is DRAM if it
  has CPUs and sits in the fastest memory tier present; any other node is slow, of type `slow_type` (default
  pmem: the seed's DAX kmem node). A DRAM node's peer (demotion target) is its nearest slow node, a slow
  node's its nearest DRAM node. The kernel's memory tier of each node is reported where the kernel ranks DRAM
  above every slow node (else 0, unknown, so the controller ranks DRAM over the rest). Latencies and
  bandwidths are the firmware's HMAT figures where it gives them (else 0); watermarks from /proc/zoneinfo.
- Tenants (agent/linux/tenants.py), chosen by `TenantSpec`s: `pid:N`, `name:COMM`, `cgroup:PATH`, optionally
  named (`vm0=pid:1234`). A QEMU process (or one given as `vm:pid:N`, ...) is a VM whose tracked range is its
  guest RAM, its largest writable mapping; any other process is a task whose tracked ranges are its private
  writable mappings (re-read every period).
- Heat from the best tracker the kernel offers (agent/linux/trackers.py; `tracker="auto"`), or the one asked
  for (refused, with the kernel's reason, where it does not work); `none` where the kernel has none.
  `nr_scans` scans per `period` seconds of the wall clock, run by the agent's server (`run_due`).
- MovePages through agent/mover.py's checks and real move_pages(2) (agent/linux/move_pages.py), per-page
  statuses as the kernel gives them; MPOL_MF_SW_YOUNG is dropped from calls where the kernel refuses it.
- usage()/vmstat: /proc/vmstat counters under the simulated hosts' names, per-node meminfo, resident bytes
  per tenant and node, pages migrated by move_pages (counted here) and by the kernel (each node's
  pgdemote_* and pgpromote_success since the agent started, from the node to its peer and to the node from
  the slow nodes whose peer it is).
- Kernel knobs (demotion_enabled, numa_balancing, watermark_scale_factor) are read and reported; written only
  through `write_knobs`, which only `pagetide agent --set-knob` calls.
"""

from __future__ import annotations

import errno
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pagetide.agent.backend import (
    BadRequest, HeatReport, HostUsage, MoveCall, MoveResult, NodeInfo, PageList, TenantInfo, TenantReport, Topology,
)
from pagetide.agent.linux import sysfs, tenants
from pagetide.agent.linux.move_pages import move_pages_array, sw_young_supported
from pagetide.agent.linux.trackers import PAGE_SIZE, SAMPLERS, HeatTracker, NoSampler
from pagetide.agent.mempolicy import MPOL_MF_SW_YOUNG
from pagetide.agent.mover import BatchMover

# the host model's counters (agent/host.py VMSTAT_COUNTERS) that /proc/vmstat has: all but pgalloc_fail
VMSTAT_COUNTERS = ("pgdemote_kswapd", "pgdemote_direct", "pgpromote_success", "pgmigrate_success",
                   "pgmigrate_fail", "pswpout", "pswpin", "pgfault", "pgmajfault", "pgpromote_candidate",
                   "numa_pte_updates", "numa_hint_faults", "pgsteal_kswapd", "pgsteal_direct")
SLOW_TYPES = ("pmem", "cxl")
SCAN_SECONDS_KEPT = 1024
TENANT_KINDS = ("pid", "name", "cgroup")


class ConfigError(ValueError):
    """A linux backend configuration that cannot be served (the message names the option)."""


@dataclass(frozen=True)
class TenantSpec:
    """`[NAME=][vm:]pid:N`, `[NAME=][vm:]name:COMM` or `[NAME=][vm:]cgroup:PATH` (absolute, or under
    /sys/fs/cgroup); `vm:` serves the processes as VMs (their largest writable mapping is guest RAM)."""
    kind: str
    value: str
    name: str = ""
    vm: bool = False

    @classmethod
    def parse(cls, text: str) -> TenantSpec:
        name, eq, rest = text.partition("=")
        if not eq:
            name, rest = "", text
        vm = rest.startswith("vm:")
        kind, colon, value = rest.removeprefix("vm:").partition(":")
        if not colon or kind not in TENANT_KINDS or not value:
            raise ConfigError(f"--tenant {text!r}: expected [NAME=][vm:]pid:N, [NAME=][vm:]name:COMM or "
                              f"[NAME=][vm:]cgroup:PATH")
        if kind == "pid" and not value.isdigit():
            raise ConfigError(f"--tenant {text!r}: pid must be a number")
        return cls(kind, value, name, vm)


@dataclass(frozen=True)
class Process:
    name: str
    pid: int
    kind: str                 # vm (a QEMU guest: its RAM) or task (private writable mappings)


def resolve(specs: list[TenantSpec], proc: Path = tenants.PROC,
            cgroup_root: Path = Path("/sys/fs/cgroup")) -> list[Process]:
    """The processes `specs` name now, each a tenant with a unique name; ConfigError for a spec matching none."""
    out: list[Process] = []
    for s in specs:
        if s.kind == "pid":
            pids = [int(s.value)] if (proc / s.value).is_dir() else []
        elif s.kind == "name":
            pids = tenants.pids_by_name(s.value, proc)
        else:
            path = Path(s.value)
            rel = path.relative_to(cgroup_root) if path.is_absolute() and cgroup_root in path.parents else path
            try:
                pids = tenants.pids_of_cgroup(str(rel), cgroup_root)
            except OSError as e:
                raise ConfigError(f"--tenant {s.kind}:{s.value}: {e}") from None
        if not pids:
            raise ConfigError(f"--tenant {s.kind}:{s.value}: no such process")
        base = s.name or {"pid": f"pid-{s.value}", "name": s.value, "cgroup": Path(s.value).name}[s.kind]
        for pid in pids:
            comm = (proc / str(pid) / "comm").read_text().strip()
            name = base if len(pids) == 1 else f"{base}-{pid}"
            out.append(Process(name, pid, "vm" if s.vm or comm.startswith("qemu") else "task"))
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"--tenant: the name {dup[0]!r} is given to more than one process")
    return out


def pick_tracker(tracker: str) -> tuple[str, str]:
    """(tracker name, why): the one asked for if the kernel has it (else ConfigError with the kernel's reason);
    for "auto" the best available, or "none" when the kernel offers none."""
    found = sysfs.trackers_available()
    if tracker == "none":
        return "none", "no tracker asked for: heat reports show placement only"
    if tracker != "auto":
        for name, ok, why in found:
            if name == tracker:
                if not ok:
                    raise ConfigError(f"--tracker {tracker}: {why}")
                return name, why
        raise ConfigError(f"--tracker {tracker!r}: valid: auto, none, {', '.join(SAMPLERS)}")
    for name, ok, why in found:
        if ok:
            return name, why
    return "none", "no tracker works on this kernel: " + "; ".join(why for _, _, why in found)


def write_knobs(settings: dict[str, str], knobs: dict[str, Path] = sysfs.KNOBS) -> dict[str, str]:
    """Write kernel knobs the operator asked for (`pagetide agent --set-knob NAME=VALUE`): each name checked
    first, nothing written if one is unknown; returns the values read back."""
    bad = sorted(set(settings) - set(knobs))
    if bad:
        raise ConfigError(f"--set-knob {bad[0]}: unknown knob; valid: {', '.join(sorted(knobs))}")
    for name, value in settings.items():
        knobs[name].write_text(str(value))
    return {name: knobs[name].read_text().strip() for name in settings}


@dataclass
class Moved:
    """One move_pages call's outcome (agent/backend.py MoveResult)."""
    status: np.ndarray
    moved_pages: int
    moved_bytes: int
    time: float


class LinuxHost:
    backend = "linux"

    def __init__(self, specs: list[TenantSpec], host_id: str = "", tracker: str = "auto", nr_scans: int = 5,
                 period: float = 10.0, slow_type: str = "pmem"):
        if not 1 <= nr_scans <= 15:
            raise ConfigError(f"--nr-scans must be within 1..15, got {nr_scans}")
        if not period > 0:
            raise ConfigError(f"--period must be > 0 seconds, got {period}")
        if slow_type not in SLOW_TYPES:
            raise ConfigError(f"--slow-type must be one of {', '.join(SLOW_TYPES)}, got {slow_type!r}")
        if not specs:
            raise ConfigError("the linux backend needs at least one --tenant")
        self.host_id = host_id or socket.gethostname()
        self.processes = {p.name: p for p in resolve(specs)}
        self.node_ids = [n.id for n in sysfs.read_topology().nodes]
        self.slow_type = slow_type
        self.types = self._node_types()
        self.is_fast = np.zeros(max(self.node_ids) + 1, bool)
        self.is_fast[[n for n in self.node_ids if self.types[n] == "dram"]] = True
        name, self.tracker_reason = pick_tracker(tracker)
        sampler = NoSampler() if name == "none" else SAMPLERS[name]()
        self.sw_young, self.sw_young_reason = sw_young_supported()
        self.tracker = HeatTracker(sampler, nr_scans, self._ranges_of, self._nodes_of, self.is_fast)
        for p in self.processes:
            self.tracker.add(p)
        self.period_seconds = period
        self.started = time.monotonic()
        self.scan_offsets = [period * (i + 1) / nr_scans for i in range(nr_scans)]
        self.scans_done = 0                   # scans since start, over all periods
        self.period_time = 0.0
        n = self.is_fast.size
        self.moved_matrix = np.zeros((n, n), np.int64)
        self.kernel_start = self._kernel_moves()
        self.mover = BatchMover(self.host_id, {p: PAGE_SIZE for p in self.processes}, self._move)
        self.scan_seconds: deque[float] = deque(maxlen=SCAN_SECONDS_KEPT)

    # ---- configuration ----

    def _node_types(self) -> dict[int, str]:
        nodes = sysfs.read_topology().nodes
        tiers = [n.tier for n in nodes if n.tier is not None]
        top = min(tiers) if tiers else None
        return {n.id: "dram" if n.cpus and (n.tier is None or n.tier == top) else self.slow_type for n in nodes}

    def _ranges_of(self, name: str) -> tuple[int, list[tenants.Range]]:
        p = self.processes[name]
        if p.kind == "vm":
            return p.pid, [tenants.guest_ram(p.pid)]
        return p.pid, tenants.private_writable(p.pid)

    @staticmethod
    def _nodes_of(pid: int, addresses: np.ndarray) -> np.ndarray:
        return move_pages_array(pid, addresses, None).astype(np.int64)

    # ---- the host seam ----

    @property
    def time(self) -> float:
        return time.monotonic() - self.started

    @property
    def period(self) -> int:
        return self.tracker.period

    @property
    def version(self) -> tuple[int, int]:
        return self.tracker.period, self.mover.requests

    def seconds_to_next_scan(self) -> float:
        per = len(self.scan_offsets)
        due = (self.scans_done // per) * self.period_seconds + self.scan_offsets[self.scans_done % per]
        return due - self.time

    def run_due(self) -> bool:
        """Run the scan due by the wall clock, if one is (late scans of a period run back to back; periods
        missed as a whole are skipped, not caught up); True when it completed a period."""
        if self.seconds_to_next_scan() > 0:
            return False
        t0 = time.perf_counter()
        self.tracker.scan()
        self.scan_seconds.append(time.perf_counter() - t0)
        self.scans_done += 1
        behind = int(self.time // self.period_seconds) * len(self.scan_offsets)
        if self.scans_done % len(self.scan_offsets) == 0:
            self.tracker.end_period()
            self.period_time = self.time
            self.scans_done = max(self.scans_done, behind)
            return True
        return False

    def _tenant_infos(self) -> tuple[TenantInfo, ...]:
        out = []
        for name, p in self.processes.items():
            t = self.tracker.tenants[name]
            start = t.ranges[0].start if t.ranges else 0
            end = t.ranges[-1].end if t.ranges else 0
            out.append(TenantInfo(name=name, kind=p.kind, page_size=PAGE_SIZE, footprint=t.addresses.size * PAGE_SIZE,
                                  home_node=-1, address_start=start, address_end=end,
                                  labels=(("pid", str(p.pid)),)))
        return tuple(out)

    def _resident(self) -> dict[str, list[int]]:
        n = self.is_fast.size
        out = {}
        for name in self.processes:
            node = self.tracker.nodes(name)
            out[name] = (np.bincount(node[node >= 0], minlength=n) * PAGE_SIZE).tolist()
        return out

    def topology(self, resident: dict[str, list[int]] | None = None) -> Topology:
        topo = sysfs.read_topology()
        resident = self._resident() if resident is None else resident
        marks = sysfs.watermarks()
        dist = {n.id: n.distances for n in topo.nodes}
        online = sorted(dist)
        slow = [n for n in online if self.types[n] != "dram"]
        # the kernel's memory tiers are reported where they rank DRAM above every slow node; a CPU-less node the
        # kernel keeps in DRAM's tier (plain RAM, no HMAT or dax kmem) is reported as tier 0 (unknown) for all
        tier = {n.id: n.tier for n in topo.nodes}
        tiered = all(tier[n] is not None for n in online) and all(
            tier[d] < tier[x] for d in online if self.types[d] == "dram" for x in slow)
        nodes = []
        for n in topo.nodes:
            info = sysfs.node_meminfo(n.id)
            perf = sysfs.hmat(n.id)
            others = slow if self.types[n.id] == "dram" else [x for x in online if self.types[x] == "dram"]
            peer = min(others, key=lambda x: (n.distances[online.index(x)], x)) if others else -1
            wmin, wlow, whigh = marks.get(n.id, (0, 0, 0))
            nodes.append(NodeInfo(
                id=n.id, type=self.types[n.id], capacity=n.mem_total_bytes, free=info.get("MemFree", 0),
                used=sum(r[n.id] for r in resident.values()), page_tables=info.get("PageTables", 0),
                read_latency=perf.get("read_latency", 0.0), write_latency=perf.get("write_latency", 0.0),
                read_bandwidth=perf.get("read_bandwidth", 0.0), write_bandwidth=perf.get("write_bandwidth", 0.0),
                peer_node=peer, distances=n.distances, wmark_min=wmin * PAGE_SIZE, wmark_low=wlow * PAGE_SIZE,
                wmark_high=whigh * PAGE_SIZE, demote_margin=0, memory_tier=n.tier if tiered else 0,
                demotion_node=peer if self.types[n.id] == "dram" else -1))
        return Topology(host_id=self.host_id, backend=self.backend, nodes=tuple(nodes), tenants=self._tenant_infos(),
                        time=self.time, tick=0.0, period=self.period_seconds,
                        demotion_enabled=topo.knobs.get("demotion_enabled") in ("1", "true"), zonelist="unified")

    def heat_report(self, max_candidates: int, max_hot_fast: int | None = None) -> HeatReport:
        if max_candidates < 0 or (max_hot_fast is not None and max_hot_fast < 0):
            raise BadRequest("max_candidates and max_hot_fast must be >= 0")
        infos = {t.name: t for t in self._tenant_infos()}
        reports = []
        for name in self.processes:
            th = self.tracker.tenant_heat(name, max_candidates, max_hot_fast)
            addrs = self.tracker.tenants[name].addresses
            reports.append(TenantReport(
                tenant=infos[name], histograms=th.hist, hot_slow=_pages(addrs, th.hot_slow),
                cold_fast=_pages(addrs, th.cold_fast), hot_fast=_pages(addrs, th.hot_fast),
                accessed_page_scans=self.tracker.tenants[name].period_refs,
                window_scans=self.tracker.window_scans(name)))
        return HeatReport(period=self.tracker.period, nr_scans=self.tracker.nr_scans, time=self.period_time,
                          tenants=reports, node_free=self._node_free(), vmstat=self.vmstat(),
                          tracker=self.tracker.name, bin_level=[])

    def _node_free(self) -> list[int]:
        free = [0] * self.is_fast.size
        for n in self.node_ids:
            free[n] = sysfs.node_meminfo(n).get("MemFree", 0)
        return free

    @staticmethod
    def vmstat() -> dict[str, int]:
        v = sysfs.vmstat()
        return {k: v.get(k, 0) for k in VMSTAT_COUNTERS}

    def move_pages(self, calls: list[MoveCall], batch_id: str = "") -> list[MoveResult]:
        # a node without memory fails the whole syscall (ENODEV) after earlier calls moved: refuse it first
        for i, c in enumerate(calls):
            bad = ~np.isin(c.nodes, self.node_ids)
            if bad.any():
                raise BadRequest(f"call {i}: node {int(c.nodes[np.argmax(bad)])} is not a memory node of host "
                                 f"{self.host_id} (nodes {', '.join(map(str, self.node_ids))})")
        return self.mover.move(calls, batch_id)

    def _move(self, tenant: str, addresses: np.ndarray, nodes: np.ndarray | None, flags: int) -> Moved:
        pid = self.processes[tenant].pid
        if not self.sw_young:
            flags &= ~MPOL_MF_SW_YOUNG
        t0 = time.perf_counter()
        try:
            before = move_pages_array(pid, addresses, None)
            if nodes is None:
                return Moved(before, 0, 0, time.perf_counter() - t0)
            status = move_pages_array(pid, addresses, nodes, flags)
        except ProcessLookupError:
            return Moved(np.full(addresses.size, -errno.ESRCH, np.int32), 0, 0, time.perf_counter() - t0)
        moved = (before >= 0) & (status >= 0) & (before != status)
        np.add.at(self.moved_matrix, (before[moved], status[moved]), 1)
        n = int(moved.sum())
        return Moved(status, n, n * PAGE_SIZE, time.perf_counter() - t0)

    def _kernel_moves(self) -> np.ndarray:
        """The kernel's own migrations so far, per [source][destination] node (see the module docstring)."""
        n = self.is_fast.size
        out = np.zeros((n, n), np.int64)
        peers = {x.id: x.peer_node for x in self.topology(resident={}).nodes}
        for node in self.node_ids:
            if self.types[node] != "dram":
                continue
            v = sysfs.node_vmstat(node)
            if peers[node] >= 0:
                out[node, peers[node]] += v.get("pgdemote_kswapd", 0) + v.get("pgdemote_direct", 0)
            sources = [s for s, p in peers.items() if p == node and self.types[s] != "dram"]
            if sources:
                out[sources[0], node] += v.get("pgpromote_success", 0)
        return out

    def usage(self) -> HostUsage:
        resident = self._resident()
        kernel = self._kernel_moves() - self.kernel_start
        scans = list(self.scan_seconds)
        self.scan_seconds.clear()
        return HostUsage(topology=self.topology(resident), resident=resident, vmstat=self.vmstat(),
                         migrated_pages=(kernel + self.moved_matrix).tolist(),
                         move_pages_migrated=self.moved_matrix.tolist(), scan_seconds=scans)

    def describe(self) -> str:
        """What the agent prints at start: tenants, tracker (and why), SW_YOUNG, knobs."""
        tenants_text = ", ".join(f"{n} (pid {p.pid}, {p.kind})" for n, p in self.processes.items())
        knobs = ", ".join(f"{k}={v}" for k, v in sysfs.read_knobs().items())
        return (f"tenants {tenants_text}; tracker {self.tracker.name} ({self.tracker_reason}); "
                f"{self.sw_young_reason}; nodes " + ", ".join(f"{n}:{self.types[n]}" for n in self.node_ids)
                + f"; knobs {knobs}")


def _pages(addresses: np.ndarray, c) -> PageList:
    return PageList(addresses=addresses[c.pages], heat=c.heat, nodes=c.node)
