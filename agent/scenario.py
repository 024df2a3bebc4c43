"""Scenario files: the YAML description of one simulated host, validated into frozen dataclasses.

A scenario names the host's NUMA nodes (type, capacity, device latencies and bandwidths, peer nodes,
distances; each node's Linux memory tier follows from its abstract distance, and peers chain down the tiers), the kernel's memory-management settings (demotion, zonelists, watermarks, swap) and the tenants
(VMs and tasks) with their workloads. Every size, duration and ratio is a human unit parsed by `units`; the
tunables of a tiering mode and of a workload are the options it declares (`pagetide.common.options`).
Anything unknown or inconsistent is rejected with a `ScenarioError` naming the dotted key and the reason,
before any state is built.

A tenant's workload names a type of the workloads registry: the synthetic suite (`workloads`) and trace
replay (`traces.workload`, imported here so that scenarios can name it).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import pagetide.agent.traces.workload  # noqa: F401  (registers the `trace` workload type)
from pagetide.common import units
from pagetide.common.options import parse_options
from pagetide.agent.backend import TRACKER_OPTIONS, TRACKERS
from pagetide.agent.pageflags import HPAGE_PMD_SIZE, PAGE_SIZE
from pagetide.agent.tiering import MODES as TIERING_MODES, TieringSpec
from pagetide.agent.workloads import make_workload

NODE_TYPES = ("dram", "pmem", "cxl")

# Idle latency and bandwidth per device type (DESIGN.md section 3). DRAM: common DDR4 figures. PMEM: Optane
# DC PMM, 6 DIMMs, ~305 ns random read, writes absorbed by ADR (~90 ns), 39.4 GB/s read, 13.9 GB/s write
# (Izraelevitz et al. 2019; Yang et al. FAST'20). CXL: a real expander ASIC, 271 ns, 26 GB/s (OSDI'25).
DEVICE_DEFAULTS = {
    "dram": dict(read_latency=80e-9, write_latency=80e-9, read_bandwidth=100e9, write_bandwidth=100e9),
    "pmem": dict(read_latency=305e-9, write_latency=90e-9, read_bandwidth=39.4e9, write_bandwidth=13.9e9),
    "cxl": dict(read_latency=271e-9, write_latency=271e-9, read_bandwidth=26e9, write_bandwidth=26e9),
}

# Linux memory tiers (mm/memory-tiers.c): a node's abstract distance puts it in memory tier adistance >> 7
# (memory_tierN in sysfs); DRAM nodes sit at MEMTIER_ADISTANCE_DRAM (memory_tier4), and a slow node's abstract
# distance comes from its performance against DRAM's (mt_perf_to_adistance, from HMAT: the device figures
# here), unless the scenario gives one (`adistance`, as a memory-tier driver sets it). Lower tiers are slower.
MEMTIER_CHUNK_BITS = 7
MEMTIER_ADISTANCE_DRAM = (4 << MEMTIER_CHUNK_BITS) + (1 << (MEMTIER_CHUNK_BITS - 1))

# SLIT-style distances when the scenario gives none: 10 local, a DRAM node and its peer slow node 17,
# two DRAM nodes 21, anything else 28.
LOCAL_DISTANCE, PEER_DISTANCE, REMOTE_DISTANCE, FAR_DISTANCE = 10, 17, 21, 28


class ScenarioError(ValueError):
    """An invalid scenario; the message starts with the dotted key at fault."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason

    @classmethod
    def under(cls, where: str, e: ValueError) -> "ScenarioError":
        """The error of a parser that was told to report under `where` (its message starts with `where` or
        a key inside it), keyed by the key it names; any other message is keyed by `where` itself."""
        msg = str(e)
        key, sep, reason = msg.partition(": ")
        if sep and (key == where or key.startswith((where + ".", where + "["))):
            return cls(key, reason)
        return cls(where, msg)


@dataclass(frozen=True)
class NodeSpec:
    id: int
    type: str
    capacity: int            # bytes
    read_latency: float      # seconds per access
    write_latency: float
    read_bandwidth: float    # bytes/s
    write_bandwidth: float
    peer_node: int = -1      # the node's peer in the next lower tier (a slow node: the node naming it); -1 none
    adistance: int = MEMTIER_ADISTANCE_DRAM   # abstract distance (Linux memory tiers)
    tier: int = 0            # rank of its memory tier on the host: 0 the top (DRAM), 1 the next lower, ...
    demotion_target: int = -1    # where reclaim demotes its pages (node_demotion): a node of the next lower
                                 # tier, -1 none (the lowest tier; a DRAM node without a peer swaps)

    @property
    def is_fast(self) -> bool:
        return self.type == "dram"

    @property
    def memory_tier(self) -> int:
        """Linux's memory tier id (memory_tierN): 4 for DRAM."""
        return self.adistance >> MEMTIER_CHUNK_BITS


@dataclass(frozen=True)
class KernelSpec:
    demotion_enabled: bool = True        # /sys/kernel/mm/numa/demotion_enabled
    zonelist: str = "separate"           # "separate": RFC zonelists, allocations never fall back to slow nodes;
                                         # "unified": stock Linux, a full DRAM node falls back to slow nodes
    wmark_min: float = 0.005             # watermarks as fractions of each node's capacity
    wmark_low: float = 0.01
    wmark_high: float = 0.015
    demote_scale_factor: float = 0.0     # TPP's decoupled WMARK_DEMOTE above high (TPP uses 2%); 0 = off
    swap: int = 16 << 30                 # swap space, bytes
    swap_in_latency: float = 50e-6       # major fault from an NVMe swap device
    migration_overhead: float = 2e-6     # unmap + TLB shootdown per migrated page
    tiering: TieringSpec = TieringSpec()  # promotion mode: none, nbt, tpp, damos (see tiering)


@dataclass(frozen=True)
class TenantSpec:
    name: str
    kind: str                # "vm" or "task"
    footprint: int           # bytes
    home_node: int
    page_size: int           # PAGE_SIZE or HPAGE_PMD_SIZE
    workload: dict[str, Any]
    prefault: bool = True    # touch all memory in address order at start (guest RAM zeroing / heap init)
    pinned: float = 0.0      # fraction of pages pinned (VFIO DMA): unevictable, not migratable
    labels: tuple[tuple[str, str], ...] = ()   # (name, value), sorted by name: for selecting VMs
    interleave: tuple[int, ...] = ()   # first touch under set_mempolicy(MPOL_INTERLEAVE, these nodes): page i
                                       # asks for interleave[i % len] first; () = the home node's zonelist

    @property
    def npages(self) -> int:
        return self.footprint // self.page_size


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    tick: float              # seconds of simulated time per tick
    duration: float          # seconds
    epoch: float             # accounting / per-epoch oracle period, seconds
    nodes: tuple[NodeSpec, ...]
    distances: tuple[tuple[int, ...], ...]
    kernel: KernelSpec
    tenants: tuple[TenantSpec, ...]
    tracker: str = "idle_pages"   # where heat comes from (agent/backend.py TRACKERS): host configuration
    tracker_options: tuple[tuple[str, Any], ...] = ()   # its settings (backend.TRACKER_OPTIONS), all filled in
    oracles: bool = True     # accounting computes the per-epoch, static and lag-one oracles (agent/accounting.py)

    @property
    def nr_ticks(self) -> int:
        return int(round(self.duration / self.tick))

    @property
    def ticks_per_epoch(self) -> int:
        return max(1, int(round(self.epoch / self.tick)))

    def node(self, nid: int) -> NodeSpec:
        return self.nodes[nid]

    def with_kernel(self, **changes) -> "Scenario":
        return dataclasses.replace(self, kernel=dataclasses.replace(self.kernel, **changes))


def _check_keys(d: Any, key: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(d, dict):
        raise ScenarioError(key, f"expected a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ScenarioError(f"{key}.{unknown[0]}" if key else unknown[0],
                            f"unknown key (valid keys: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(d))
    if missing:
        raise ScenarioError(f"{key}.{missing[0]}" if key else missing[0], "required key is missing")
    return d


def _parse(key: str, parser, value, **kw):
    try:
        return parser(value, **kw)
    except (ValueError, TypeError) as e:
        raise ScenarioError(key, str(e)) from None


def _int(key: str, value, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(key, f"expected an integer, got {value!r}")
    if lo is not None and value < lo:
        raise ScenarioError(key, f"must be >= {lo}, got {value}")
    return value


def _bool(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(key, f"expected true or false, got {value!r}")
    return value


def _positive(key: str, value: float) -> float:
    if not value > 0:
        raise ScenarioError(key, f"must be positive, got {value!r}")
    return value


def _parse_node(i: int, d: Any) -> NodeSpec:
    key = f"host.nodes[{i}]"
    _check_keys(d, key, {"id", "type", "capacity", "peer_node", "read_latency", "write_latency",
                         "read_bandwidth", "write_bandwidth", "adistance"}, {"id", "type", "capacity"})
    nid = _int(f"{key}.id", d["id"], 0)
    if nid != i:
        raise ScenarioError(f"{key}.id", f"node ids must be 0..N-1 in order, expected {i}, got {nid}")
    ntype = d["type"]
    if ntype not in NODE_TYPES:
        raise ScenarioError(f"{key}.type", f"unknown node type {ntype!r} (valid: {', '.join(NODE_TYPES)})")
    capacity = _parse(f"{key}.capacity", units.parse_size, d["capacity"])
    if capacity <= 0 or capacity % HPAGE_PMD_SIZE:
        raise ScenarioError(f"{key}.capacity", f"must be a positive multiple of 2MiB, got {d['capacity']!r}")
    dev = dict(DEVICE_DEFAULTS[ntype])
    for k in ("read_latency", "write_latency"):
        if k in d:
            dev[k] = _positive(f"{key}.{k}", _parse(f"{key}.{k}", units.parse_duration, d[k]))
    for k in ("read_bandwidth", "write_bandwidth"):
        if k in d:
            dev[k] = _positive(f"{key}.{k}", _parse(f"{key}.{k}", units.parse_bandwidth, d[k]))
    peer = _int(f"{key}.peer_node", d.get("peer_node", -1), -1)
    adistance = -1                      # from the node's performance (`_assign_tiers`)
    if "adistance" in d:
        if ntype == "dram":
            raise ScenarioError(f"{key}.adistance", f"DRAM nodes are at abstract distance {MEMTIER_ADISTANCE_DRAM}; "
                                                    "only slow nodes take one")
        adistance = _int(f"{key}.adistance", d["adistance"], 0)
    return NodeSpec(id=nid, type=ntype, capacity=capacity, peer_node=peer, adistance=adistance, **dev)


def _perf_adistance(n: NodeSpec, dram: NodeSpec) -> int:
    """mt_perf_to_adistance(): DRAM's abstract distance scaled by the node's read + write latency over DRAM's
    and DRAM's read + write bandwidth over the node's, in the kernel's integer arithmetic (ns, MB/s)."""
    lat = round((n.read_latency + n.write_latency) * 1e9)
    dram_lat = round((dram.read_latency + dram.write_latency) * 1e9)
    bw = max(1, round((n.read_bandwidth + n.write_bandwidth) / 1e6))
    dram_bw = round((dram.read_bandwidth + dram.write_bandwidth) / 1e6)
    return MEMTIER_ADISTANCE_DRAM * lat // max(1, dram_lat) * dram_bw // bw


def _assign_tiers(nodes: list[NodeSpec]) -> list[NodeSpec]:
    """Each node's abstract distance and tier rank. DRAM nodes are the top tier, and only they: a slow node
    whose abstract distance falls in DRAM's memory tier is rejected, naming the distance it needs."""
    dram = [n for n in nodes if n.is_fast]
    if not dram:
        raise ScenarioError("host.nodes", "at least one dram node is required")
    out = [n if n.adistance >= 0 else dataclasses.replace(n, adistance=(
        MEMTIER_ADISTANCE_DRAM if n.is_fast else _perf_adistance(n, dram[0]))) for n in nodes]
    top = MEMTIER_ADISTANCE_DRAM >> MEMTIER_CHUNK_BITS
    for n in out:
        if not n.is_fast and n.memory_tier <= top:
            how = "given" if nodes[n.id].adistance >= 0 else "from its latencies and bandwidths"
            raise ScenarioError(f"host.nodes[{n.id}]", f"a {n.type} node at abstract distance {n.adistance} ({how}) "
                                f"is in memory_tier{n.memory_tier}, at or above DRAM's memory_tier{top}; a slow "
                                f"node needs an adistance of at least {(top + 1) << MEMTIER_CHUNK_BITS}")
    rank = {t: r for r, t in enumerate(sorted({n.memory_tier for n in out}))}
    return [dataclasses.replace(n, tier=rank[n.memory_tier]) for n in out]


def _link_peers(nodes: list[NodeSpec]) -> list[NodeSpec]:
    """Validate peer_node links, which follow the memory tiers: a node's peer is a node of the next lower tier
    (where its reclaim demotes), named by one node only, and the chain of peers ends; a slow node may also
    name the node above that names it (or names none), the RFC's pairing seen from below. A node naming no
    peer gets the node above that names it, so pairs are symmetric."""
    peers = {n.id: n.peer_node for n in nodes}
    for n in nodes:
        if n.peer_node == -1:
            continue
        key = f"host.nodes[{n.id}].peer_node"
        if n.peer_node >= len(nodes):
            raise ScenarioError(key, f"node {n.peer_node} does not exist")
        if n.peer_node == n.id:
            raise ScenarioError(key, "a node cannot be its own peer")
    # links downwards (and sideways): a cycle among them would demote pages for ever
    down = {n.id: n.peer_node for n in nodes if n.peer_node >= 0 and nodes[n.peer_node].tier >= n.tier}
    for n in nodes:
        path = [n.id]
        while path[-1] in down and len(path) <= len(nodes):
            path.append(down[path[-1]])
            if path[-1] == n.id:
                raise ScenarioError(f"host.nodes[{n.id}].peer_node", "peer_node links form a cycle "
                                    f"{' -> '.join(map(str, path))}: a node's peer is in a lower tier")
    claimed: dict[int, int] = {}
    for n in nodes:
        if n.peer_node == -1:
            continue
        key = f"host.nodes[{n.id}].peer_node"
        other = nodes[n.peer_node]
        if other.tier == n.tier:
            raise ScenarioError(key, f"node {other.id} ({other.type}) is in the same memory tier as node {n.id} "
                                     f"(memory_tier{n.memory_tier}): a node's peer is in the next lower tier")
        if other.tier > n.tier:
            if other.tier > n.tier + 1:
                nxt = min(m.memory_tier for m in nodes if m.tier == n.tier + 1)
                raise ScenarioError(key, f"node {other.id} is in memory_tier{other.memory_tier}, below the next "
                                         f"lower tier memory_tier{nxt}: reclaim demotes to the next lower tier")
            if n.peer_node in claimed:
                raise ScenarioError(key, f"node {n.peer_node} is already the peer of node "
                                         f"{claimed[n.peer_node]}: a node is never the peer of two nodes")
            claimed[n.peer_node] = n.id
        elif other.tier != n.tier - 1:
            raise ScenarioError(key, f"node {other.id} is in a higher memory tier (memory_tier{other.memory_tier}) "
                                     f"than node {n.id} (memory_tier{n.memory_tier}): a node's peer is in the next "
                                     "lower tier (a node may name the one just above that names it)")
        elif peers.get(n.peer_node, -1) not in (-1, n.id):
            raise ScenarioError(key, f"node {n.peer_node}'s peer is node {peers[n.peer_node]}, not {n.id}")
    out = []
    for n in nodes:
        if n.peer_node == -1 and n.id in claimed:
            n = dataclasses.replace(n, peer_node=claimed[n.id])
        out.append(n)
    return out


def _demotion_targets(nodes: list[NodeSpec], distances: list[list[int]]) -> list[NodeSpec]:
    """node_demotion (mm/memory-tiers.c establish_demotion_targets): a node's pages are demoted to its peer
    in the next lower tier; a node below the top without one demotes to the nearest node of the next lower
    tier; the lowest tier demotes nowhere, and a DRAM node without a peer swaps (the RFC's rule)."""
    out = []
    for n in nodes:
        target = -1
        if n.peer_node >= 0 and nodes[n.peer_node].tier > n.tier:
            target = n.peer_node
        elif not n.is_fast:
            lower = [m.id for m in nodes if m.tier == n.tier + 1]
            if lower:
                target = min(lower, key=lambda m: (distances[n.id][m], m))
        out.append(dataclasses.replace(n, demotion_target=target))
    return out


def _default_distances(nodes: list[NodeSpec]) -> list[list[int]]:
    def dist(a: NodeSpec, b: NodeSpec) -> int:
        if a.id == b.id:
            return LOCAL_DISTANCE
        if a.peer_node == b.id or b.peer_node == a.id:
            return PEER_DISTANCE
        if a.is_fast and b.is_fast:
            return REMOTE_DISTANCE
        return FAR_DISTANCE
    return [[dist(a, b) for b in nodes] for a in nodes]


def _parse_distances(d: Any, n: int) -> list[list[int]]:
    key = "host.distances"
    if not isinstance(d, list) or len(d) != n or any(not isinstance(r, list) or len(r) != n for r in d):
        raise ScenarioError(key, f"expected a {n}x{n} matrix (one row per node)")
    for i, row in enumerate(d):
        for j, v in enumerate(row):
            _int(f"{key}[{i}][{j}]", v, 10 if i == j else 11)
            if i == j and v != LOCAL_DISTANCE:
                raise ScenarioError(f"{key}[{i}][{j}]", "a node's distance to itself is 10")
    return d


def _parse_kernel(d: Any) -> KernelSpec:
    key = "host.kernel"
    _check_keys(d, key, {"demotion_enabled", "zonelist", "watermarks", "demote_scale_factor", "swap",
                         "swap_in_latency", "migration_overhead", "tiering"})
    kw: dict[str, Any] = {}
    if "tiering" in d:
        kw["tiering"] = _parse_tiering(d["tiering"])
        mode_default = TIERING_MODES[kw["tiering"].mode].default_demote_scale_factor
        if mode_default is not None:
            kw["demote_scale_factor"] = mode_default
    if "demotion_enabled" in d:
        kw["demotion_enabled"] = _bool(f"{key}.demotion_enabled", d["demotion_enabled"])
    if "zonelist" in d:
        if d["zonelist"] not in ("separate", "unified"):
            raise ScenarioError(f"{key}.zonelist", f"must be 'separate' or 'unified', got {d['zonelist']!r}")
        kw["zonelist"] = d["zonelist"]
    if "watermarks" in d:
        w = _check_keys(d["watermarks"], f"{key}.watermarks", {"min", "low", "high"})
        for k in ("min", "low", "high"):
            if k in w:
                kw[f"wmark_{k}"] = _parse(f"{key}.watermarks.{k}", units.parse_ratio, w[k])
    if "demote_scale_factor" in d:
        kw["demote_scale_factor"] = _parse(f"{key}.demote_scale_factor", units.parse_ratio,
                                           d["demote_scale_factor"])
    if "swap" in d:
        kw["swap"] = _parse(f"{key}.swap", units.parse_size, d["swap"])
    for k in ("swap_in_latency", "migration_overhead"):
        if k in d:
            kw[k] = _parse(f"{key}.{k}", units.parse_duration, d[k])
    k = KernelSpec(**kw)
    if not k.wmark_min <= k.wmark_low <= k.wmark_high:
        raise ScenarioError(f"{key}.watermarks", "must satisfy min <= low <= high")
    if k.wmark_high + k.demote_scale_factor >= 0.5:
        raise ScenarioError(f"{key}.watermarks", "high watermark plus demote_scale_factor must stay below 50%")
    return k


def _parse_tiering(d: Any) -> TieringSpec:
    """`tiering: {mode: nbt, scan_period: 2s, ...}`; each mode accepts only its own options."""
    key = "host.kernel.tiering"
    if not isinstance(d, dict):
        raise ScenarioError(key, f"expected a mapping with at least 'mode', got {type(d).__name__}")
    mode = d.get("mode", "none")
    if mode not in TIERING_MODES:
        raise ScenarioError(f"{key}.mode", f"unknown tiering mode {mode!r} (valid: {', '.join(TIERING_MODES)})")
    try:
        values = parse_options(TIERING_MODES[mode].OPTIONS, d, key, owner=f"tiering mode {mode!r}",
                               defaults=False, ignore=("mode",))
    except ValueError as e:
        raise ScenarioError.under(key, e) from None
    spec = TieringSpec(mode=mode, **values)
    problem = TIERING_MODES[mode].check(spec)
    if problem:
        raise ScenarioError(f"{key}.{problem[0]}", problem[1])
    return spec


LABEL_NAME = re.compile(r"[A-Za-z0-9._/-]{1,63}")
MAX_LABEL_VALUE = 256


def _labels(key: str, d: Any) -> tuple[tuple[str, str], ...]:
    """A tenant's labels: a mapping of names (letters, digits, . _ - /; at most 63) to strings."""
    if d is None:
        return ()
    if not isinstance(d, dict):
        raise ScenarioError(key, f"expected a mapping of label names to strings, got {d!r}")
    for name, value in d.items():
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise ScenarioError(key, f"label name must be 1-63 letters, digits, '.', '_', '-' or '/', got {name!r}")
        if not isinstance(value, str):
            raise ScenarioError(f"{key}.{name}", f"must be a string, got {value!r} (quote it in YAML)")
        if len(value) > MAX_LABEL_VALUE:
            raise ScenarioError(f"{key}.{name}", f"must be at most {MAX_LABEL_VALUE} characters, got {len(value)}")
    return tuple(sorted(d.items()))


def parse_tenant(d: Any, nodes: list[NodeSpec], key: str = "tenant") -> TenantSpec:
    """One tenant mapping (a scenario's `tenants[]` entry) for a host of `nodes`; errors are keyed under `key`."""
    _check_keys(d, key, {"name", "kind", "footprint", "home_node", "page_size", "workload", "prefault",
                         "pinned", "labels", "interleave"}, {"name", "footprint", "workload"})
    name = d["name"]
    if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ScenarioError(f"{key}.name", f"must be a non-empty name of letters, digits, - and _, got {name!r}")
    kind = d.get("kind", "vm")
    if kind not in ("vm", "task"):
        raise ScenarioError(f"{key}.kind", f"must be 'vm' or 'task', got {kind!r}")
    footprint = _parse(f"{key}.footprint", units.parse_size, d["footprint"])
    page_size = _parse(f"{key}.page_size", units.parse_size, d.get("page_size", PAGE_SIZE))
    if page_size not in (PAGE_SIZE, HPAGE_PMD_SIZE):
        raise ScenarioError(f"{key}.page_size", f"must be 4KiB or 2MiB, got {d.get('page_size')!r}")
    if footprint <= 0 or footprint % page_size:
        raise ScenarioError(f"{key}.footprint", f"must be a positive multiple of the page size "
                                                f"({page_size} bytes), got {d['footprint']!r}")
    total = sum(n.capacity for n in nodes)
    if footprint > total:
        raise ScenarioError(f"{key}.footprint", f"{units.format_size(footprint)} is larger than all memory "
                                                f"of the host ({units.format_size(total)})")
    fast = [n.id for n in nodes if n.is_fast]
    home = _int(f"{key}.home_node", d.get("home_node", fast[0] if fast else 0), 0)
    if home >= len(nodes):
        raise ScenarioError(f"{key}.home_node", f"node {home} does not exist")
    if not nodes[home].is_fast:
        raise ScenarioError(f"{key}.home_node", f"node {home} is a {nodes[home].type} node; a home node is DRAM")
    prefault = _bool(f"{key}.prefault", d.get("prefault", True))
    pinned = _parse(f"{key}.pinned", units.parse_ratio, d.get("pinned", 0.0))
    labels = _labels(f"{key}.labels", d.get("labels"))
    interleave = _interleave(f"{key}.interleave", d.get("interleave", []), len(nodes))
    wl = d["workload"]
    if not isinstance(wl, dict):
        raise ScenarioError(f"{key}.workload", "expected a mapping with at least 'type'")
    try:  # validate the workload spec now so a bad one fails at load time, naming the tenant
        make_workload(wl, footprint // page_size, 0, 0.1, where=f"{key}.workload")
    except ValueError as e:
        raise ScenarioError.under(f"{key}.workload", e) from None
    return TenantSpec(name=name, kind=kind, footprint=footprint, home_node=home, page_size=page_size,
                      workload=dict(wl), prefault=prefault, pinned=pinned, labels=labels,
                      interleave=interleave)


def _interleave(key: str, v: Any, nr_nodes: int) -> tuple[int, ...]:
    """A tenant's MPOL_INTERLEAVE node list: distinct existing node ids, or none."""
    if not isinstance(v, list):
        raise ScenarioError(key, f"expected a list of node ids, got {v!r}")
    ids = tuple(_int(f"{key}[{i}]", n, 0) for i, n in enumerate(v))
    for i, n in enumerate(ids):
        if n >= nr_nodes:
            raise ScenarioError(f"{key}[{i}]", f"node {n} does not exist")
        if n in ids[:i]:
            raise ScenarioError(f"{key}[{i}]", f"node {n} is named twice")
    return ids


def parse_scenario(d: Any, name: str = "scenario") -> Scenario:
    """Validate a scenario mapping (as loaded from YAML) into a Scenario."""
    _check_keys(d, "", {"name", "seed", "tick", "duration", "epoch", "oracles", "host", "tenants"},
                {"host", "tenants"})
    seed = _int("seed", d.get("seed", 1), 0)
    tick = _positive("tick", _parse("tick", units.parse_duration, d.get("tick", "100ms")))
    duration = _positive("duration", _parse("duration", units.parse_duration, d.get("duration", "60s")))
    epoch = _positive("epoch", _parse("epoch", units.parse_duration, d.get("epoch", "1s")))
    if duration < tick:
        raise ScenarioError("duration", "must be at least one tick")
    if epoch < tick:
        raise ScenarioError("epoch", "must be at least one tick")
    host = _check_keys(d["host"], "host", {"name", "nodes", "distances", "kernel", "tracker", "tracker_options"},
                       {"nodes"})
    tracker = host.get("tracker", "idle_pages")
    if tracker not in TRACKERS:
        raise ScenarioError("host.tracker", f"unknown tracker {tracker!r}; valid: {', '.join(sorted(TRACKERS))}")
    try:
        tracker_options = parse_options(TRACKER_OPTIONS.get(tracker, {}), host.get("tracker_options"),
                                        "host.tracker_options", owner=f"tracker {tracker!r}")
    except ValueError as e:
        raise ScenarioError.under("host.tracker_options", e) from None
    if not isinstance(host["nodes"], list) or not host["nodes"]:
        raise ScenarioError("host.nodes", "expected a non-empty list of nodes")
    nodes = _link_peers(_assign_tiers([_parse_node(i, n) for i, n in enumerate(host["nodes"])]))
    distances = (_parse_distances(host["distances"], len(nodes)) if "distances" in host
                 else _default_distances(nodes))
    nodes = _demotion_targets(nodes, distances)
    kernel = _parse_kernel(host.get("kernel", {}))
    if not isinstance(d["tenants"], list) or not d["tenants"]:
        raise ScenarioError("tenants", "expected a non-empty list of tenants")
    tenants = [parse_tenant(t, nodes, f"tenants[{i}]") for i, t in enumerate(d["tenants"])]
    names = [t.name for t in tenants]
    for i, t in enumerate(names):
        if t in names[:i]:
            raise ScenarioError(f"tenants[{i}].name", f"duplicate tenant name {t!r}")
    total_fp = sum(t.footprint for t in tenants)
    total_mem = sum(n.capacity for n in nodes) + kernel.swap
    if total_fp > total_mem:
        raise ScenarioError("tenants", f"footprints add up to {units.format_size(total_fp)}, more than all "
                                       f"memory plus swap ({units.format_size(total_mem)})")
    return Scenario(name=str(d.get("name", host.get("name", name))), seed=seed, tick=tick, duration=duration,
                    epoch=epoch, nodes=tuple(nodes), distances=tuple(tuple(r) for r in distances),
                    kernel=kernel, tenants=tuple(tenants), tracker=tracker,
                    tracker_options=tuple(tracker_options.items()), oracles=_bool("oracles", d.get("oracles", True)))


def with_tiering(data: Any, mode: str | None) -> Any:
    """The scenario mapping with its host's kernel tiering mode replaced by `mode` (and that mode's default
    parameters); unchanged when mode is None or the mapping is too malformed to hold one (parsing reports it)."""
    if mode is None or not isinstance(data, dict):
        return data
    host = data.get("host", {})
    kernel = host.get("kernel", {}) if isinstance(host, dict) else None
    if not isinstance(kernel, dict):
        return data
    return {**data, "host": {**host, "kernel": {**kernel, "tiering": {"mode": mode}}}}


def read_yaml(path: str | Path, error: type[ValueError] | None = None, key: str | None = None) -> Any:
    """A YAML file's data; an unreadable file or bad YAML raises `error(key, reason)` (ScenarioError by
    default; `key` defaults to the path)."""
    error, key = error or ScenarioError, str(path) if key is None else key
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise error(key, f"cannot read: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise error(key, f"not valid YAML: {e}") from None


def load_scenario(path: str | Path, tiering: str | None = None) -> Scenario:
    """Read and validate a scenario YAML file; `tiering` overrides its kernel tiering mode."""
    return parse_scenario(with_tiering(read_yaml(path), tiering), name=Path(path).stem)
