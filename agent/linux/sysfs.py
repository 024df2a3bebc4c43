"""What a real Linux host offers, read from sysfs and procfs (never written here).

Topology: NUMA nodes with memory, their CPUs and distances, memory tiers
(/sys/devices/virtual/memory_tiering), CPU-less nodes, HMAT latencies and bandwidths where the firmware gives
them. Memory now: a node's meminfo, its zones' watermarks (/proc/zoneinfo), the kernel's counters
(/proc/vmstat and each node's vmstat). Kernel knobs: demotion_enabled, numa_balancing,
watermark_scale_factor. Trackers the kernel has: the seed's /proc/PID/idle_pages, idle page tracking
(/sys/kernel/mm/page_idle/bitmap), soft-dirty (probed: clear_refs 4, a write, pagemap bit 55).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

NODES = Path("/sys/devices/system/node")
TIERS = Path("/sys/devices/virtual/memory_tiering")
KNOBS = {"demotion_enabled": Path("/sys/kernel/mm/numa/demotion_enabled"),
         "numa_balancing": Path("/proc/sys/kernel/numa_balancing"),
         "watermark_scale_factor": Path("/proc/sys/vm/watermark_scale_factor")}
PAGEMAP_SOFT_DIRTY = 1 << 55


def parse_list(text: str) -> list[int]:
    """A kernel cpu/node list ("0-3,8,10-11") as numbers; "" is empty."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"bad kernel list {text!r}")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@dataclass(frozen=True)
class Node:
    id: int
    cpus: tuple[int, ...]
    mem_total_bytes: int
    distances: tuple[int, ...]
    tier: int | None                  # memory_tier id (abstract distance / chunk), None without tiers


@dataclass(frozen=True)
class Topology:
    nodes: tuple[Node, ...]
    knobs: dict[str, str] = field(default_factory=dict)


def _node_meminfo_total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if "MemTotal:" in line:
            return int(line.split()[-2]) * 1024
    raise ValueError(f"{path}: no MemTotal")


def read_topology(nodes_dir: Path = NODES, tiers_dir: Path = TIERS) -> Topology:
    online = parse_list((nodes_dir / "has_memory").read_text())
    tier_of: dict[int, int] = {}
    if tiers_dir.is_dir():
        for t in sorted(tiers_dir.glob("memory_tier*")):
            for n in parse_list((t / "nodelist").read_text()):
                tier_of[n] = int(t.name.removeprefix("memory_tier"))
    nodes = []
    for n in online:
        d = nodes_dir / f"node{n}"
        nodes.append(Node(id=n, cpus=tuple(parse_list((d / "cpulist").read_text())),
                          mem_total_bytes=_node_meminfo_total(d / "meminfo"),
                          distances=tuple(int(x) for x in (d / "distance").read_text().split()),
                          tier=tier_of.get(n)))
    return Topology(nodes=tuple(nodes), knobs=read_knobs())


def node_meminfo(node: int, nodes_dir: Path = NODES) -> dict[str, int]:
    """A node's meminfo in bytes ("Node 0 MemFree:  123 kB" -> {"MemFree": 125952}); counts stay counts."""
    out = {}
    for line in (nodes_dir / f"node{node}" / "meminfo").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out[parts[2].rstrip(":")] = int(parts[3]) * (1024 if parts[-1] == "kB" else 1)
    return out


def read_counters(path: Path) -> dict[str, int]:
    """A vmstat-style file ("name value" per line)."""
    out = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[name] = int(value)
    return out


def vmstat(proc: Path = Path("/proc")) -> dict[str, int]:
    return read_counters(proc / "vmstat")


def node_vmstat(node: int, nodes_dir: Path = NODES) -> dict[str, int]:
    """A node's own counters (pgdemote_kswapd counted on the node pages left, pgpromote_success on the node
    they reached)."""
    path = nodes_dir / f"node{node}" / "vmstat"
    return read_counters(path) if path.exists() else {}


def watermarks(zoneinfo: Path = Path("/proc/zoneinfo")) -> dict[int, tuple[int, int, int]]:
    """Per node, its zones' min, low and high watermarks summed, in pages."""
    out: dict[int, list[int]] = {}
    node = None
    for line in zoneinfo.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["Node"]:
            node = int(parts[1].rstrip(","))
            out.setdefault(node, [0, 0, 0])
        elif node is not None and len(parts) == 2 and parts[0] in ("min", "low", "high"):
            out[node][("min", "low", "high").index(parts[0])] += int(parts[1])
    return {n: (w[0], w[1], w[2]) for n, w in out.items()}


def hmat(node: int, nodes_dir: Path = NODES) -> dict[str, float]:
    """The firmware's (HMAT) access figures of a node from its nearest initiators: read/write latency in
    seconds and bandwidth in bytes per second; {} where there are none (the kernel gives ns and MB/s)."""
    d = nodes_dir / f"node{node}" / "access0" / "initiators"
    out = {}
    for name, scale in (("read_latency", 1e-9), ("write_latency", 1e-9), ("read_bandwidth", 1e6),
                        ("write_bandwidth", 1e6)):
        f = d / name
        if f.exists():
            out[name] = int(f.read_text()) * scale
    return out


def read_knobs() -> dict[str, str]:
    """Each knob's value, or 'absent' where the kernel has no such file."""
    return {k: (p.read_text().strip() if p.exists() else "absent") for k, p in KNOBS.items()}


def soft_dirty_works() -> tuple[bool, str]:
    """Probe on this process: clear_refs 4, write a page, is pagemap bit 55 set?"""
    try:
        buf = mmap.mmap(-1, mmap.PAGESIZE)
        buf[0] = 1
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        Path("/proc/self/clear_refs").write_text("4")
        buf[0] = 2
        with open("/proc/self/pagemap", "rb") as f:
            f.seek(addr // mmap.PAGESIZE * 8)
            (entry,) = struct.unpack("<Q", f.read(8))
    except OSError as e:
        return False, f"soft-dirty probe failed: {e}"
    if entry & PAGEMAP_SOFT_DIRTY:
        return True, "soft-dirty: pagemap bit 55 set after clear_refs 4 and a write"
    return False, "soft-dirty does not work: pagemap bit 55 stays 0 after clear_refs 4 and a write"


def trackers_available() -> list[tuple[str, bool, str]]:
    """(tracker, available, why), best first."""
    idle = Path(f"/proc/{os.getpid()}/idle_pages").exists()
    bitmap = Path("/sys/kernel/mm/page_idle/bitmap")
    sd_ok, sd_why = soft_dirty_works()
    return [("idle_pages", idle, "/proc/PID/idle_pages " + ("present" if idle else "absent (unpatched kernel)")),
            ("page_idle", bitmap.exists(),
             f"{bitmap} " + ("present" if bitmap.exists() else "absent (no CONFIG_IDLE_PAGE_TRACKING)")),
            ("soft_dirty", sd_ok, sd_why)]
