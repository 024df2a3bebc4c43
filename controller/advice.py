"""Fleet advice: which VM belongs on which host. From what the controller already holds -- each VM's heat
histogram (resident pages per heat bin, as estimated access rates), each host's memory tiers (capacity above
the high watermark, latency) and the other VMs there -- it estimates every VM's DRAM-served share and
slowdown under the DRAM it could get on every host, and advises moves of VMs between hosts (and hosts for new
VMs) that raise the fleet's DRAM-served share. Pure: numpy and plain values in, an `Advice` out; no Ray,
gRPC or clock (`fleet_inputs` turns the controller's topologies and last rounds into the inputs).

The estimate, per host and set of VMs on it:

1. Each VM's curve: its heat bins, hottest first, each bin's pages at the bin's estimated access rate
   (`policies.pagetide.bin_rates`: the refs level inverted as a Poisson rate, bin 0 never accessed). The
   accesses served by a VM's hottest D bytes are U_v(D); its DRAM-served share with D bytes of DRAM is
   U_v(D) / U_v(resident). Rates are per page and scan interval, so VMs of different hosts compare.
2. The host's split, tier by tier as pagetide's policy splits it: DRAM (its capacity above the high
   watermark and the reserve, minus every VM's page tables, ~8 bytes per page, which live in DRAM) goes first
   to every VM's policy minimum (its pinned tier or frozen DRAM), then by weighted marginal utility per byte
   up to its maximum (utility-based partitioning, Qureshi & Patt, MICRO'06: optimal for the concave curves
   heat-sorted pages give); each lower tier continues every curve where the tier above left it.
3. A VM's slowdown is its accesses' latency per tier over all-DRAM's (the topology's read latencies, else
   DESIGN.md section 3's: DRAM 80 ns, CXL 170 ns, PMEM 305 ns; idle latencies, not loaded ones).

The advice is greedy by gain per byte moved: each step takes the single move (a VM to another host) or swap
(two VMs of two hosts trading places) that raises the fleet's estimated DRAM-served accesses most per byte
copied, by at least `min_gain` of the fleet's accesses, such that

- every host touched holds its VMs' footprints and page tables within its memory above the watermarks (no
  host over capacity; swap space is not counted);
- every VM there still gets its policy's DRAM minimum in full (no VM starved below its policy);
- the slowdown guard: no VM's estimated slowdown rises above `max_slowdown`, or above its slowdown now if
  that is higher already (a VM already slow is never made slower);

and a VM moves at most once per advice (a new VM not at all: it is placed). VMs whose policy turns migration off stay where they are. New VMs
(a footprint and an assumed heat histogram) are placed first, each where it adds the most DRAM-served
accesses under the same rules. A move's cost is its resident bytes copied at `bandwidth` (live migration over
the network): seconds = bytes / bandwidth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from pagetide.controller.policies import VmPolicy
from pagetide.controller.policies.pagetide import bin_rates
from pagetide.controller.policies.placement import resolve_policies
from pagetide.controller.policies.view import HEAT_BINS, Candidates, HostView, TenantHeat

__all__ = ["DEFAULT_LATENCY_NS", "MIGRATION_BANDWIDTH", "MAX_SLOWDOWN", "MIN_GAIN", "Tier", "Host", "Vm",
           "VmFigures", "Move", "Placement", "Advice", "estimate_host", "advise", "fleet_inputs", "vm_rates"]

# DESIGN.md section 3: idle read latencies where a topology reports none
DEFAULT_LATENCY_NS = {"dram": 80.0, "cxl": 170.0, "pmem": 305.0}
MIGRATION_BANDWIDTH = 1.25e9     # bytes/s: a live migration's copy over 10 GbE
MAX_SLOWDOWN = 1.5               # the guard's default: no VM made slower than 1.5x all-DRAM (or than it is now)
MIN_GAIN = 0.002                 # a step must raise the fleet's DRAM-served share by 0.2 points
PAGE_TABLE_BYTES = 8             # per mapped page, in DRAM (DESIGN.md section 1: 1/512 of 4 KiB pages)


@dataclass(frozen=True)
class Tier:
    """One memory tier of a host: what its nodes hold for VMs' pages, and how fast."""
    capacity_bytes: int          # above the high watermark (DRAM: and the reserve)
    latency_ns: float


@dataclass(frozen=True)
class Host:
    host_id: str
    tiers: tuple[Tier, ...]      # top (DRAM) first

    @property
    def memory_bytes(self) -> int:
        return sum(t.capacity_bytes for t in self.tiers)


@dataclass(frozen=True)
class Vm:
    """A VM where it runs now (or, new, nowhere: host_id ""), with its heat."""
    host_id: str
    name: str
    page_size: int
    footprint_bytes: int
    pages: np.ndarray            # resident pages per heat bin (HEAT_BINS)
    rate: np.ndarray             # estimated accesses per scan interval of a page in each bin (vm_rates)
    policy: VmPolicy = VmPolicy()    # bounds in bytes (shares resolved against the footprint)
    dram_bytes: int = 0          # on DRAM now (a VM with migration off keeps exactly this)

    @property
    def key(self) -> str:
        return f"{self.host_id}/{self.name}" if self.host_id else self.name

    @property
    def resident_bytes(self) -> int:
        return int(self.pages.sum()) * self.page_size

    @property
    def accesses(self) -> float:
        return float(self.pages @ self.rate)

    @property
    def movable(self) -> bool:
        return self.policy.migrate

    def page_table_bytes(self) -> int:
        return self.footprint_bytes // self.page_size * PAGE_TABLE_BYTES


@dataclass(frozen=True)
class VmFigures:
    """A VM's estimate on one host."""
    host_id: str
    dram_bytes: int
    tier_shares: tuple[float, ...]     # share of its estimated accesses each tier serves, top first
    slowdown: float                    # against all of them served by that host's DRAM
    served: float                      # estimated accesses per scan interval DRAM serves

    @property
    def dram_share(self) -> float:
        return self.tier_shares[0] if self.tier_shares else 1.0


@dataclass(frozen=True)
class Move:
    vm: str                      # its name on the source
    source: str
    destination: str
    bytes: int                   # resident bytes copied
    seconds: float               # bytes / bandwidth
    gain: float                  # the step's rise of the fleet's DRAM-served share (a swap's on its first move)
    swap_with: str = ""          # the key (host/name) of the VM it trades places with, if a swap


@dataclass(frozen=True)
class Placement:
    vm: str
    host_id: str                 # "" if it fits nowhere
    reason: str = ""             # why not, when host_id is ""
    figures: VmFigures | None = None


@dataclass(frozen=True)
class Advice:
    before_share: float                  # the fleet's estimated DRAM-served share now
    after_share: float                   # once the placements and moves are done
    moves: tuple[Move, ...]
    placements: tuple[Placement, ...]
    before: dict[str, VmFigures]         # per VM key, now (new VMs: absent)
    after: dict[str, VmFigures]          # per VM key, after (new VMs by their name)
    estimates: dict[str, dict[str, VmFigures | str]] = field(default_factory=dict)
    # per VM key, per host: its figures if it ran there (beside that host's VMs now), else why it cannot

    @property
    def move_bytes(self) -> int:
        return sum(m.bytes for m in self.moves)


# ------------------------------------------------------------------------------------------- estimate

def vm_rates(bin_level: Sequence[float] = ()) -> np.ndarray:
    """Estimated accesses per scan interval of a page in each heat bin, for a host whose tracker reports
    `bin_level` (() for the seed's linear scale): pagetide's own estimate (`bin_rates`)."""
    return bin_rates(HostView("", (), (), tuple(bin_level)))


def _curve(vm: Vm) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative bytes and accesses of a VM's bins, hottest first, starting at (0, 0)."""
    b = vm.pages[::-1].astype(np.float64) * vm.page_size
    a = vm.pages[::-1].astype(np.float64) * vm.rate[::-1]
    return np.concatenate([[0.0], np.cumsum(b)]), np.concatenate([[0.0], np.cumsum(a)])


def _served(vm: Vm, dram: float) -> float:
    """U_v(D): estimated accesses of the VM's hottest `dram` bytes (linear within a bin)."""
    x, y = _curve(vm)
    return float(np.interp(dram, x, y))


def _fill(vms: Sequence[Vm], lo: list[int], hi: list[int], budget: int) -> list[int]:
    """Bytes per VM maximising the weighted accesses served within [lo, hi] and `budget` (>= sum(lo)): every
    VM's curve continues where `lo` left it, segments by weighted rate per byte, highest first; the budget
    ends inside a group of equal value split in proportion to its segments' sizes. Bins of no estimated
    accesses get nothing."""
    given = [int(x) for x in lo]
    remaining = budget - sum(given)
    seg_v, seg_avail, seg_slope = [], [], []
    for v, vm in enumerate(vms):
        x, _ = _curve(vm)
        start, end = x[:-1], x[1:]
        avail = np.clip(np.minimum(end, hi[v]) - np.maximum(start, lo[v]), 0, None)
        slope = vm.policy.weight * vm.rate[::-1] / vm.page_size
        keep = (avail > 0) & (slope > 0)
        seg_v.append(np.full(int(keep.sum()), v))
        seg_avail.append(avail[keep])
        seg_slope.append(np.round(slope[keep], 15))
    if not vms or remaining <= 0:
        return given
    v_of, avail, slope = (np.concatenate(a) for a in (seg_v, seg_avail, seg_slope))
    order = np.lexsort((v_of, -slope))
    v_of, avail, slope = v_of[order], avail[order], slope[order]
    cum = np.cumsum(avail)
    full = cum <= remaining
    if full.all():
        take = avail
    else:
        k = int(np.argmin(full))
        group = slope == slope[k]
        above = float(avail[slope > slope[k]].sum())
        take = np.where(slope > slope[k], avail, 0.0)
        share = (remaining - above) / float(avail[group].sum())
        take = np.where(group, avail * share, take)
    for v, t in zip(v_of.tolist(), take.tolist()):
        given[v] += int(t)
    # whole pages only (proportional shares are rounded down)
    return [g // vm.page_size * vm.page_size for g, vm in zip(given, vms)]


def _bounds(vm: Vm, on_own_host: bool) -> tuple[int, int]:
    """A VM's DRAM [min, max] in bytes, whole pages, within its resident bytes: its pinned tier, its DRAM
    now with migration off, else its policy's bounds."""
    res, ps, p = vm.resident_bytes, vm.page_size, vm.policy
    if not p.migrate and on_own_host:
        d = min(vm.dram_bytes, res)
        return d, d
    if p.pinned_tier == "dram":
        return res, res
    if p.pinned_tier == "slow":
        return 0, 0
    hi = res if p.max_dram_bytes is None else min(res, p.max_dram_bytes // ps * ps)
    return min(-(-p.min_dram_bytes // ps) * ps, hi), hi


def estimate_host(host: Host, vms: Sequence[Vm]) -> dict[str, VmFigures] | str:
    """Every VM's figures if `vms` ran on `host` together, keyed by VM key; or, when they cannot, why (their
    memory exceeds the host's, or their DRAM minimums its DRAM)."""
    need = sum(v.footprint_bytes + v.page_table_bytes() for v in vms)
    if need > host.memory_bytes:
        return f"memory: needs {need} bytes, host {host.host_id} holds {host.memory_bytes}"
    if not host.tiers:
        return f"host {host.host_id} has no memory"
    dram = host.tiers[0].capacity_bytes - sum(v.page_table_bytes() for v in vms)
    bounds = [_bounds(v, v.host_id == host.host_id) for v in vms]
    lo, hi = [b[0] for b in bounds], [b[1] for b in bounds]
    if sum(lo) > max(dram, 0):
        return f"DRAM minimums: {sum(lo)} bytes, host {host.host_id} has {max(dram, 0)}"
    cum = [_fill(vms, lo, hi, dram)]
    room = dram
    for t in host.tiers[1:]:
        room += t.capacity_bytes
        res = [v.resident_bytes for v in vms]
        cum.append(_fill(vms, cum[-1], res, max(room, sum(cum[-1]))))
    l0 = host.tiers[0].latency_ns
    out = {}
    for i, v in enumerate(vms):
        total = v.accesses
        served = [_served(v, c[i]) for c in cum]
        per_tier = np.diff([0.0] + served)
        if total <= 0:
            shares = (1.0,) + (0.0,) * (len(host.tiers) - 1)
            slow = 1.0
        else:
            shares = tuple(float(s) / total for s in per_tier)
            rest = max(0.0, total - served[-1])          # beyond every tier: charged the lowest
            slow = (float(per_tier @ [t.latency_ns for t in host.tiers]) + rest * host.tiers[-1].latency_ns) \
                / (total * l0)
        out[v.key] = VmFigures(host.host_id, int(cum[0][i]), shares, slow, served[0])
    return out


# --------------------------------------------------------------------------------------------- advice

@dataclass
class _Fleet:
    """The advice's working state: which VMs each host runs, and each host's estimate (cached)."""
    hosts: dict[str, Host]
    on: dict[str, list[Vm]]
    max_slowdown: float
    now: dict[str, VmFigures] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict)

    def estimate(self, h: str, vms: Sequence[Vm]) -> dict[str, VmFigures] | str:
        key = (h, tuple(sorted(v.key for v in vms)))
        if key not in self._cache:
            self._cache[key] = estimate_host(self.hosts[h], vms)
        return self._cache[key]

    def served(self, figs: dict[str, VmFigures]) -> float:
        return sum(f.served for f in figs.values())

    def guard(self, figs: dict[str, VmFigures]) -> str:
        """'' if no VM's slowdown rises past the limit (or past its own now, if higher), else who and why."""
        for k, f in figs.items():
            was = self.now.get(k)
            limit = max(self.max_slowdown, was.slowdown if was is not None else 0.0)
            if f.slowdown > limit + 1e-9:
                return f"{k} would be {f.slowdown:.3f}x slower than all-DRAM (limit {limit:.3f}x)"
        return ""

    def trial(self, changes: dict[str, list[Vm]]) -> tuple[float, dict[str, dict[str, VmFigures]]] | str:
        """The hosts in `changes` running those VMs: (DRAM-served accesses gained, their estimates), or why
        not."""
        gained, figs = 0.0, {}
        for h, vms in changes.items():
            e = self.estimate(h, vms)
            if isinstance(e, str):
                return e
            g = self.guard(e)
            if g:
                return g
            before = self.estimate(h, self.on[h])
            gained += self.served(e) - (self.served(before) if isinstance(before, dict) else 0.0)
            figs[h] = e
        return gained, figs


def advise(hosts: Sequence[Host], vms: Sequence[Vm], new_vms: Sequence[Vm] = (), *,
           max_slowdown: float = MAX_SLOWDOWN, bandwidth: float = MIGRATION_BANDWIDTH, min_gain: float = MIN_GAIN,
           max_moves: int = 16, estimates: bool = True) -> Advice:
    """The fleet's advice (see the module docstring). `vms`: the running VMs, each on its host_id; `new_vms`:
    VMs to place (host_id ""). ValueError on a VM of an unknown host, two VMs of one key, a bad limit."""
    if not (max_slowdown >= 1.0 and math.isfinite(max_slowdown)):
        raise ValueError(f"max_slowdown must be a finite ratio >= 1, got {max_slowdown!r}")
    if not (bandwidth > 0 and math.isfinite(bandwidth)):
        raise ValueError(f"bandwidth must be a positive number of bytes per second, got {bandwidth!r}")
    if not 0 <= min_gain <= 1:
        raise ValueError(f"min_gain must be a share in [0, 1], got {min_gain!r}")
    by_id = {h.host_id: h for h in hosts}
    on: dict[str, list[Vm]] = {h: [] for h in by_id}
    keys = set()
    for v in list(vms) + list(new_vms):
        if v.key in keys:
            raise ValueError(f"VM {v.key!r} given twice")
        keys.add(v.key)
    for v in vms:
        if v.host_id not in on:
            raise ValueError(f"VM {v.name!r}: no host {v.host_id!r} among the fleet's hosts")
        on[v.host_id].append(v)
    fleet = _Fleet(by_id, on, max_slowdown)
    for h, vs in on.items():
        e = fleet.estimate(h, vs)
        # a host already over its capacity is estimated as it is (the fill caps what its tiers hold)
        fleet.now.update(e if isinstance(e, dict) else _estimate_as_is(by_id[h], vs))
    before = dict(fleet.now)
    total = sum(v.accesses for v in vms)

    def share(figs: Mapping[str, VmFigures], acc: float) -> float:
        return sum(f.served for f in figs.values()) / acc if acc > 0 else 1.0

    table = {}
    if estimates:
        for v in list(vms) + list(new_vms):
            row = {}
            for h in by_id:
                if h == v.host_id:
                    row[h] = fleet.now[v.key]
                    continue
                e = fleet.estimate(h, on[h] + [v])
                row[h] = e[v.key] if isinstance(e, dict) else e
            table[v.key] = row

    placements = []
    for v in sorted(new_vms, key=lambda x: -x.footprint_bytes):
        best, why = None, []
        for h in by_id:
            t = fleet.trial({h: on[h] + [v]})
            if isinstance(t, str):
                why.append(f"{h}: {t}")
            elif best is None or t[0] > best[1]:
                best = (h, t[0], t[1])
        if best is None:
            placements.append(Placement(v.name, "", "; ".join(why)))
            continue
        h, _, figs = best
        placed = replace(v, host_id=h)
        on[h].append(placed)
        fleet.now.update({(placed.key if k == v.key else k): f for k, f in figs[h].items()})
        placements.append(Placement(v.name, h, "", figs[h][v.key]))
    total += sum(v.accesses for v in new_vms if any(p.vm == v.name and p.host_id for p in placements))

    moves: list[Move] = []
    # a new VM is placed, not moved: its place already is the best one given the others
    moved: set[str] = {f"{p.host_id}/{p.vm}" for p in placements if p.host_id}
    while len(moves) < max_moves:
        best = None
        movable = [v for h in on for v in on[h] if v.movable and v.key not in moved and v.host_id]
        for v in movable:
            a = _host_of(on, v)
            for b in by_id:
                if b == a:
                    continue
                options = [(None, {a: [x for x in on[a] if x is not v], b: on[b] + [v]})]
                options += [(u, {a: [x for x in on[a] if x is not v] + [u],
                                 b: [x for x in on[b] if x is not u] + [v]})
                            for u in on[b] if u.movable and u.key not in moved]
                for u, changes in options:
                    t = fleet.trial(changes)
                    if isinstance(t, str) or t[0] < min_gain * total:
                        continue
                    cost = v.resident_bytes + (u.resident_bytes if u is not None else 0)
                    score = t[0] / max(cost, 1)
                    if best is None or score > best[0]:
                        best = (score, v, u, a, b, changes, t)
        if best is None:
            break
        _, v, u, a, b, changes, (gained, figs) = best
        for h, vs in changes.items():
            on[h] = vs
            fleet.now.update(figs[h])
        gain = gained / total if total > 0 else 0.0
        moves.append(Move(v.name, a, b, v.resident_bytes, v.resident_bytes / bandwidth, gain,
                          u.key if u is not None else ""))
        if u is not None:
            moves.append(Move(u.name, b, a, u.resident_bytes, u.resident_bytes / bandwidth, 0.0, v.key))
        moved |= {v.key} | ({u.key} if u is not None else set())
    return Advice(before_share=share(before, sum(v.accesses for v in vms)), after_share=share(fleet.now, total),
                  moves=tuple(moves), placements=tuple(placements), before=before, after=dict(fleet.now),
                  estimates=table)


def _host_of(on: dict[str, list[Vm]], v: Vm) -> str:
    return next(h for h, vs in on.items() if any(x is v for x in vs))


def _estimate_as_is(host: Host, vms: Sequence[Vm]) -> dict[str, VmFigures]:
    """Figures of VMs on a host that cannot hold them all (it swaps): each VM's DRAM as it is now."""
    l0, ll = host.tiers[0].latency_ns, host.tiers[-1].latency_ns
    out = {}
    for v in vms:
        total, s = v.accesses, _served(v, v.dram_bytes)
        share = s / total if total > 0 else 1.0
        out[v.key] = VmFigures(host.host_id, v.dram_bytes, (share,) + (0.0,) * (len(host.tiers) - 2)
                               + ((1 - share,) if len(host.tiers) > 1 else ()),
                               share + (1 - share) * ll / l0, s)
    return out


# ------------------------------------------------------------------------------ the controller's state

def fleet_inputs(topologies: Mapping, last_rounds: Mapping, policies: Mapping[str, Mapping[str, VmPolicy]],
                 reserve: float = 0.0) -> tuple[list[Host], list[Vm]]:
    """Hosts and VMs from the controller's state: per host id its GetTopologyResponse, its last
    RoundResult (heat_pages, heat_fast_pages, bin_level; hosts without one contribute capacity but no VMs'
    heat), and its VMs' policies (shares resolved against each VM's footprint)."""
    from pagetide.controller.convert import tier_ranks
    from pagetide.v1 import types_pb2

    kinds = {types_pb2.NODE_TYPE_DRAM: "dram", types_pb2.NODE_TYPE_CXL: "cxl", types_pb2.NODE_TYPE_PMEM: "pmem"}
    hosts, vms = [], []
    for h, topo in topologies.items():
        rank = tier_ranks(topo)
        tiers: dict[int, list] = {}
        for n in topo.nodes:
            r = rank[n.memory_tier] if rank else (0 if n.type == types_pb2.NODE_TYPE_DRAM else 1)
            tiers.setdefault(r, []).append(n)
        out = []
        for r in sorted(tiers):
            ns = tiers[r]
            cap = sum(max(0, n.capacity_bytes - n.wmark_high_bytes - n.demote_margin_bytes
                          - (int(reserve * n.capacity_bytes) if r == 0 else 0)) for n in ns)
            lat = [n.read_latency_ns or DEFAULT_LATENCY_NS.get(kinds.get(n.type, "pmem"), 305.0) for n in ns]
            out.append(Tier(cap, float(np.mean(lat))))
        hosts.append(Host(h, tuple(out)))
        last = last_rounds.get(h)
        if last is None:
            continue
        rate = vm_rates(getattr(last, "bin_level", ()) or ())
        tenants = [t for t in topo.tenants if len(last.heat_pages.get(t.name, ())) == HEAT_BINS]
        view = HostView(h, (), tuple(TenantHeat(t.name, t.page_size_bytes, {}, Candidates.empty(),
                                                Candidates.empty(), Candidates.empty(), t.footprint_bytes)
                                     for t in tenants))
        mine = {k: p for k, p in policies.get(h, {}).items() if k in {t.name for t in tenants}}
        for t, p in zip(tenants, resolve_policies(view, mine)):
            fast = last.heat_fast_pages.get(t.name) or [0] * HEAT_BINS
            vms.append(Vm(h, t.name, t.page_size_bytes, t.footprint_bytes,
                          np.asarray(last.heat_pages[t.name], dtype=np.int64), rate, p,
                          int(sum(fast)) * t.page_size_bytes))
    return hosts, vms
