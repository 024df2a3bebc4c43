"""The agent's host seam: what an agent needs of a host it serves, whatever the host is.

A host backend offers four things, as memtierd keeps tracker, policy and mover apart:
- its topology and tenants (`topology()`),
- heat from a tracker (`heat_report()`, built by the host's `Tracker`: the idle_pages emulation on a simulated
  host; on a real one `/proc/PID/idle_pages`, page_idle + pagemap or soft-dirty, agent/linux/trackers.py),
- `move_pages()` through a `Mover`, which validates each request once, where it is applied,
- the kernel's vmstat counters (inside every heat report),
- what an operator watches (`usage()`: memory per node and tenant, counters, migrations by who asked).
The gRPC servicer (agent/server.py) talks only to this interface. A backend that is a simulation also offers
`Simulated` (a clock to advance, accounting with oracles), which only SimulationService calls.

Backends register by name in `BACKENDS`; `pagetide agent --backend NAME` picks one: "sim", the host model in
agent/simhost.py, or "linux", a real host (agent/linux/backend.py), which scans on the wall clock (`Sampling`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pagetide.common.options import Option, integer


class BadRequest(ValueError):
    """A request a host refuses as a whole, before changing anything (gRPC INVALID_ARGUMENT, or NOT_FOUND
    when `not_found`, or the gRPC status named by `code`, e.g. RESOURCE_EXHAUSTED)."""

    def __init__(self, message: str, not_found: bool = False, code: str | None = None):
        super().__init__(message)
        self.not_found = not_found
        self.code = code or ("NOT_FOUND" if not_found else "INVALID_ARGUMENT")


@dataclass(frozen=True)
class NodeInfo:
    """One NUMA node now. Sizes in bytes, latencies in seconds, bandwidths in bytes per second."""
    id: int
    type: str                 # dram, pmem or cxl
    capacity: int
    free: int
    used: int                 # tenants' pages
    page_tables: int
    read_latency: float
    write_latency: float
    read_bandwidth: float
    write_bandwidth: float
    peer_node: int            # demotion target (-1: none)
    distances: tuple[int, ...]
    wmark_min: int
    wmark_low: int
    wmark_high: int
    demote_margin: int        # TPP's extra free space kept on a DRAM node (0 elsewhere)
    memory_tier: int = 0      # Linux memory tier id (memory_tierN; 0: not known)
    demotion_node: int = -1   # where reclaim demotes its pages (-1: none)


@dataclass(frozen=True)
class TenantInfo:
    """A VM or task: one mapping [address_start, address_end) of pages of `page_size` bytes."""
    name: str
    kind: str                 # vm or task
    page_size: int
    footprint: int
    home_node: int
    address_start: int
    address_end: int
    labels: tuple[tuple[str, str], ...] = ()   # (name, value) from the scenario, for selecting VMs


@dataclass(frozen=True)
class Topology:
    host_id: str
    backend: str                   # the name it is registered under in BACKENDS
    nodes: tuple[NodeInfo, ...]    # indexed by id
    tenants: tuple[TenantInfo, ...]
    time: float                    # seconds since the host (model) booted
    tick: float                    # simulation tick, seconds (0 on a real host)
    period: float                  # scan period, seconds: heat reports change once per period
    demotion_enabled: bool
    zonelist: str                  # "separate" (DRAM allocations stay on DRAM) or "unified"
    generation: int = 0            # bumped by every change of the tenant set (arrival, departure, resize)


@dataclass
class PageList:
    """A bounded list of one tenant's pages: virtual addresses (uint64), heat (uint8, 0..240) and node."""
    addresses: np.ndarray
    heat: np.ndarray
    nodes: np.ndarray

    @property
    def count(self) -> int:
        return int(self.addresses.size)


@dataclass
class TenantReport:
    tenant: TenantInfo
    histograms: np.ndarray        # [nodes, HEAT_BINS] resident pages per node and heat bin
    hot_slow: PageList            # hottest pages on slow nodes, hottest first
    cold_fast: PageList           # coldest pages on DRAM nodes, coldest first
    hot_fast: PageList            # hottest pages on DRAM nodes, hottest first
    accessed_page_scans: int      # the tenant's refs summed over the reported period
    window_scans: float = 0.0     # scans the tenant's heat averages over (0: unknown)
    lower_tiers: tuple[TierLists, ...] = ()   # on more than two memory tiers: each lower boundary's lists


@dataclass
class TierLists:
    """A tenant's candidates at the boundary below memory tier `memory_tier` (not DRAM's)."""
    memory_tier: int              # memory_tierN id of the boundary's upper tier
    hot_below: PageList           # hottest pages on the tiers below it, hottest first
    cold: PageList                # coldest pages on it, coldest first
    hot: PageList                 # hottest pages on it, hottest first


@dataclass
class HeatReport:
    period: int                   # complete scan periods so far
    nr_scans: int                 # scans in the reported period
    time: float                   # seconds at the end of the reported period
    tenants: list[TenantReport]
    node_free: list[int]          # bytes per node now
    vmstat: dict[str, int]
    tracker: str = "idle_pages"   # the tracker that measured the heat
    bin_level: list[float] = field(default_factory=list)   # refs level each heat bin stands for; []: linear
    generation: int = 0           # the tenant set's generation (Topology.generation) the report describes
    # per node over the reported period: mean bandwidth share in use and mean loaded read latency, seconds
    # ([]: not measured)
    node_utilization: list[float] = field(default_factory=list)
    node_loaded_read_latency: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class MoveCall:
    """One move_pages(2) call on one tenant: addresses (uint64) and target nodes (int64), same length, and
    optionally the node each page is expected on (int64, same length): a page found elsewhere stays put
    and reports -EBUSY."""
    tenant: str
    addresses: np.ndarray
    nodes: np.ndarray
    flags: int
    expected: np.ndarray | None = None


class MoveResult(Protocol):
    """The outcome of one move_pages call (the host model's agent.host.MoveResult is one)."""
    status: np.ndarray            # per address: node id after the call, or -errno
    moved_pages: int
    moved_bytes: int
    time: float                   # modelled (or measured) seconds of copies and unmaps


class Tracker(Protocol):
    """Where heat comes from: a host's access tracker, folded into per-page heat once per period. A simulated
    host calls `observe` after every tick with the tick's sampled accesses, `scan` at the scan offsets and
    `end_period` at each period's end; `cost_seconds` is the host CPU the tracker has cost so far, modelled
    (each tracker's docstring says how and cites its figures), the one figure `pagetide bench` reports."""
    name: str
    period: int                   # complete periods
    nr_scans: int

    def observe(self, tick_samples: list[np.ndarray]) -> None:
        """One tick's sampled page offsets per tenant (Host.run_tick()); idle_pages trackers ignore them."""

    def cost_seconds(self) -> float: ...

    def tenant_heat(self, tenant: Any, max_candidates: int, max_hot_fast: int | None = None) -> Any: ...


class Mover(Protocol):
    """How pages move: validates a request of move_pages calls as a whole (BadRequest, nothing moved) and
    applies it; a batch id seen before answers the first result again."""
    name: str

    def move(self, calls: list[MoveCall], batch_id: str = "") -> list[MoveResult]: ...


@dataclass
class HostUsage:
    """What an operator watches on a host, read at once (agent/metrics.py exports it): the topology (nodes'
    capacity, used and free bytes; tenants), each tenant's resident bytes per node, the kernel's vmstat
    counters, base pages migrated per (source node, destination node) in all and through move_pages(2) (the
    rest is the kernel's own: reclaim's demotion, NUMA-balancing or DAMOS promotion), and the wall seconds of
    each tracker scan since the last read."""
    topology: Topology
    resident: dict[str, list[int]]              # tenant -> bytes per node
    vmstat: dict[str, int]
    migrated_pages: list[list[int]]             # [source node][destination node], every migration
    move_pages_migrated: list[list[int]]        # of those, asked for by move_pages(2)
    scan_seconds: list[float] = field(default_factory=list)


@runtime_checkable
class HostBackend(Protocol):
    host_id: str
    backend: str

    @property
    def time(self) -> float:
        """Seconds since the host (model) booted."""

    @property
    def period(self) -> int:
        """Complete scan periods so far."""

    @property
    def version(self) -> Hashable:
        """Changes whenever what a heat report shows may have changed."""

    def topology(self) -> Topology: ...

    def heat_report(self, max_candidates: int, max_hot_fast: int | None = None) -> HeatReport: ...

    def move_pages(self, calls: list[MoveCall], batch_id: str = "") -> list[MoveResult]: ...

    def usage(self) -> HostUsage:
        """Memory, counters and migrations now; the scan durations since the last call (each reported once)."""


@runtime_checkable
class Sampling(Protocol):
    """A backend whose tracker scans on the wall clock (a real host): the agent's server calls `run_due()`
    under the host's lock when `seconds_to_next_scan()` is <= 0."""

    def seconds_to_next_scan(self) -> float: ...

    def run_due(self) -> bool:
        """Run the scan due now; True when it completed a period (a new heat report)."""


@dataclass
class SimulationStats:
    """Accounting of a simulated host (agent/accounting.py's HostResult) and its nodes now."""
    result: Any
    node_used: list[int] = field(default_factory=list)     # bytes per node
    node_free: list[int] = field(default_factory=list)
    invariant_error: str = ""                               # the model's self-check: "" when consistent


@runtime_checkable
class Simulated(Protocol):
    """A backend whose time is simulated: only a simulation harness (SimulationService) calls these."""
    tick: float                   # seconds per tick

    @property
    def ticks_run(self) -> int: ...

    @property
    def pages(self) -> int:
        """Base pages of the model: the cost of one tick grows with it (the AdvanceClock limit)."""

    def advance(self, ticks: int) -> None: ...

    def stats(self) -> SimulationStats: ...

    @property
    def generation(self) -> int:
        """The tenant set's generation (Topology.generation)."""

    def add_tenant(self, spec: dict) -> TenantInfo:
        """Start a tenant (a scenario `tenants[]` mapping); BadRequest, nothing changed, if refused."""

    def remove_tenant(self, name: str) -> None:
        """Stop a tenant, freeing its memory everywhere; BadRequest NOT_FOUND if unknown."""

    def resize_tenant(self, name: str, footprint: int) -> TenantInfo:
        """Grow or shrink a tenant to `footprint` bytes; BadRequest, nothing changed, if refused."""


BACKENDS: dict[str, str] = {
    "sim": "pagetide.agent.simhost:SimHost",
    "linux": "pagetide.agent.linux.backend:LinuxHost",
}

# Trackers a host can be configured with (`host.tracker` in a scenario), peers behind `Tracker`.
TRACKERS: dict[str, str] = {
    "idle_pages": "pagetide.agent.scanner:Scanner",                     # the seed's: scans, halving heat
    "idle_pages-adaptive": "pagetide.agent.adaptive:AdaptiveScanner",   # the same scans, adaptive window
    "pebs": "pagetide.agent.pebs:PebsTracker",                          # sampled loads/stores (PEBS, IBS)
    "pebs-decayed": "pagetide.agent.pebs:DecayedPebsTracker",           # the same, counted across periods
    "chmu": "pagetide.agent.chmu:ChmuTracker",        # CXL 3.2 device hot lists fused with idle_pages on DRAM
    "hint_faults": "pagetide.agent.hintfaults:HintFaultTracker",        # NUMA hint faults on the slow tier
}

# Each tracker's settings (`host.tracker_options` in a scenario, validated for the host's tracker).
_PEBS_PERIOD = Option(integer(200, 100_000), 4000,
                      "one sample per this many loads/stores (HeMem's and MEMTIS's order: 1 in 4,000)")
TRACKER_OPTIONS: dict[str, dict[str, Option]] = {
    "pebs": {"period": _PEBS_PERIOD},
    "pebs-decayed": {"period": _PEBS_PERIOD,
                     "window": Option(integer(1, 64), 8, "periods a page's sample count decays over "
                                                         "(count <- count (1 - 1/window) + the period's samples)")},
    "chmu": {"hot_list": Option(integer(1024, 65_536), 4096,
                                "hot-list entries a CXL device reports per epoch (units of one page)"),
             "threshold": Option(integer(1, 1 << 30), 16,
                                 "accesses a unit needs in an epoch to enter the hot list")},
}


def tracker_class(name: str) -> type:
    """The tracker class registered as `name`."""
    import importlib

    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; valid: {', '.join(sorted(TRACKERS))}")
    module, _, cls = TRACKERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def backend_class(name: str) -> type:
    """The class registered as `name` (imported on demand, so a real host never loads the model)."""
    import importlib

    if name not in BACKENDS:
        raise ValueError(f"unknown host backend {name!r}; valid: {', '.join(sorted(BACKENDS))}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
