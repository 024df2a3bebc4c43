"""Fleet advice: which VM belongs on which host. From what the controller already holds -- each VM's heat
histogram (resident pages per heat bin, as estimated access rates), each host's memory tiers (capacity above
the high watermark, latency) and the other VMs there -- it estimates every VM's DRAM-served share and
slowdown under the DRAM it could get on every host, and advises moves of VMs between hosts (and hosts for new
VMs) that raise the fleet's DRAM-served share. Pure: numpy and plain values in, an `Advice` out; no Ray,
gRPC or clock (`fleet_inputs` turns the controller's topologies and last rounds into the inputs).

The estimate, per host and set of VMs on it:

1. Each VM's curve: its heat bins, hottest first, each bin's pages at the bin's estimated access rate
   (`policies.pagetide.bin_rates`: the refs level inverted as a Poisson rate; bin 0, which that takes as
   never accessed, at the rate that explains the pages the VM touched per scan beyond its other bins'). The
   accesses served by a VM's hottest D bytes are U_v(D); its DRAM-served share with D bytes of DRAM is
   U_v(D) / U_v(resident). Rates are per page and scan interval, so VMs of different hosts compare.
2. The host's split, tier by tier as pagetide's policy splits it: DRAM (its capacity above the high
   watermark and the reserve, minus every VM's page tables, ~8 bytes per page, which live in DRAM) goes first
   to every VM's policy minimum (its pinned tier or frozen DRAM), then by weighted marginal utility per byte
   up to its maximum (utility-based partitioning, Qureshi & Patt, MICRO'06: optimal for the concave curves
   heat-sorted pages give); each lower tier continues every curve where the tier above left it.
3. A VM's slowdown is its accesses' latency per tier over all of them served at the host's idle DRAM latency.
   Each tier is charged its loaded read latency from the host's last heat report (the mean over the tier's
   nodes of GetHeatReportResponse.node_loaded_read_latency_ns), so a host whose DRAM is saturated does not
   look idle; a node the report gives none for is charged its idle latency (the topology's, else DESIGN.md
   section 3's: DRAM 80 ns, CXL 170 ns, PMEM 305 ns). Simplification: the latencies are the ones measured
   under the host's load then; the estimate does not re-model them for the VMs the advice moves in or out.

The advice is greedy by gain per byte moved: each step takes the single move (a VM to another host) or swap
(two VMs of two hosts trading places; a VM is swapped only for one of the other host's SWAP_CANDIDATES VMs
of fewest estimated accesses per byte) that raises the fleet's estimated DRAM-served accesses most per byte
copied, by at least `min_gain` of the fleet's accesses, such that

- every host touched holds its VMs' footprints and page tables within its memory above the watermarks (no
  host over capacity; swap space is not counted);
- every VM there still gets its policy's DRAM minimum in full (no VM starved below its policy);
- the slowdown guard: no VM's estimated slowdown rises above its limit -- its policy's own `max_slowdown`
  when set (which for that VM replaces the fleet-wide one, tighter or looser), else the fleet-wide
  `max_slowdown` -- or above its slowdown now if that is higher already (a VM already slow is never made
  slower);

and a VM moves at most once per advice (a new VM not at all: it is placed). The search estimates only the options
that could reach `min_gain` and the best score found: a host's DRAM-served accesses are at most the fractional
knapsack of its VMs' bins at its DRAM (`_Bound`), so the others are known to fall short -- the advice is the one
trying every option gives, but a fleet of N hosts costs O(N) estimates where every VM is served about as well as
it can be, not O(N^2). VMs whose policy turns migration off stay where they are. New VMs (a footprint and an
assumed heat histogram) are placed first, each where it adds the most DRAM-served accesses under the same rules. A
move's cost is its resident bytes copied at `bandwidth` (live migration over the network): seconds = bytes /
bandwidth.
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
SWAP_CANDIDATES = 2             # a swap trades a VM for one of this many coldest VMs of the other host
PAGE_TABLE_BYTES = 8             # per mapped page, in DRAM (DESIGN.md section 1: 1/512 of 4 KiB pages)


@dataclass(frozen=True)
class Tier:
    """One memory tier of a host: what its nodes hold for VMs' pages, and how fast."""
    capacity_bytes: int          # above the high watermark (DRAM: and the reserve)
    latency_ns: float            # idle read latency (the top tier's is the all-DRAM reference)
    loaded_latency_ns: float | None = None    # under the host's load as last measured; None: not measured

    @property
    def charged_ns(self) -> float:
        """What an access served here costs in the estimate: loaded latency if measured, else idle."""
        return self.latency_ns if self.loaded_latency_ns is None else self.loaded_latency_ns


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
    swap_with: tuple[str, str] = ()   # (host, name) of the VM it trades places with, if a swap


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
    after: dict[str, VmFigures]          # per VM key, after (a placed new VM as HOST/NAME)
    estimates: dict[str, dict[str, VmFigures | str]] = field(default_factory=dict)
    # per VM key, per host: its figures if it ran there (beside that host's VMs now), else why it cannot

    @property
    def move_bytes(self) -> int:
        return sum(m.bytes for m in self.moves)


# ------------------------------------------------------------------------------------------- estimate

def vm_rates(bin_level: Sequence[float] = (), pages: Sequence[int] | None = None,
             touched_per_scan: float | None = None) -> np.ndarray:
    """Estimated accesses per scan interval of a page in each heat bin, for a host whose tracker reports
    `bin_level` (() for the seed's linear scale): pagetide's own estimate (`bin_rates`), which takes bin 0
    as never accessed. Given a VM's `pages` per bin and the pages it touched per scan interval in the period
    (accessed_page_scans / nr_scans), bin 0 gets the rate that accounts for what the other bins' pages do not
    explain -- pages touched too rarely to reach bin 1 are many in a scan's tail -- at most bin 1's."""
    rate = bin_rates(HostView("", (), (), tuple(bin_level)))
    if pages is None or touched_per_scan is None:
        return rate
    pages = np.asarray(pages, dtype=np.float64)
    seen = -np.expm1(-rate)                 # a bin's share of scans that find its page accessed
    rest = touched_per_scan - float(pages[1:] @ seen[1:])
    if pages[0] > 0 and rest > 0:
        rate = rate.copy()
        rate[0] = -np.log1p(-min(rest / pages[0], seen[1]))
    return rate


def _segments(vms: Sequence[Vm]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every VM's bins hottest first, one row per VM: where each bin starts in its curve (bytes), its size
    (bytes), and its estimated accesses per byte."""
    pages = np.array([v.pages[::-1] for v in vms], dtype=np.float64).reshape(len(vms), HEAT_BINS)
    ps = np.array([v.page_size for v in vms], dtype=np.float64)[:, None]
    size = pages * ps
    start = np.cumsum(size, axis=1) - size
    per_byte = np.array([v.rate[::-1] for v in vms], dtype=np.float64).reshape(len(vms), HEAT_BINS) / ps
    return start, size, per_byte


def _served(seg, dram: np.ndarray) -> np.ndarray:
    """U_v(D_v) per VM: estimated accesses of each VM's hottest D_v bytes (linear within a bin)."""
    start, size, per_byte = seg
    return (np.clip(np.asarray(dram, dtype=np.float64)[:, None] - start, 0, size) * per_byte).sum(axis=1)


def _fill(vms: Sequence[Vm], seg, lo: np.ndarray, hi: np.ndarray, budget: int) -> np.ndarray:
    """Bytes per VM maximising the weighted accesses served within [lo, hi] and `budget` (>= sum(lo)): every
    VM's curve continues where `lo` left it, segments by weighted rate per byte, highest first; the budget
    ends inside a group of equal value split in proportion to its segments' sizes. Bins of no estimated
    accesses get nothing. Whole pages only (proportional shares are rounded down)."""
    start, size, per_byte = seg
    given = lo.astype(np.float64)
    remaining = budget - float(given.sum())
    if not len(vms) or remaining <= 0:
        return lo.copy()
    avail = np.clip(np.minimum(start + size, hi[:, None]) - np.maximum(start, lo[:, None]), 0, None)
    slope = np.round(np.array([v.policy.weight for v in vms])[:, None] * per_byte, 15)
    keep = (avail > 0) & (slope > 0)
    v_of = np.broadcast_to(np.arange(len(vms))[:, None], keep.shape)[keep]
    avail, slope = avail[keep], slope[keep]
    if avail.sum() <= remaining:
        take = avail
    else:
        order = np.lexsort((v_of, -slope))
        k = order[int(np.argmax(np.cumsum(avail[order]) > remaining))]
        above = slope > slope[k]
        group = slope == slope[k]
        take = np.where(above, avail, 0.0)
        take = np.where(group, avail * (remaining - float(avail[above].sum())) / float(avail[group].sum()), take)
    np.add.at(given, v_of, take)
    ps = np.array([v.page_size for v in vms], dtype=np.int64)
    return given.astype(np.int64) // ps * ps


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
    bounds = np.array([_bounds(v, v.host_id == host.host_id) for v in vms], dtype=np.int64).reshape(len(vms), 2)
    lo, hi = bounds[:, 0], bounds[:, 1]
    if int(lo.sum()) > max(dram, 0):
        return f"DRAM minimums: {int(lo.sum())} bytes, host {host.host_id} has {max(dram, 0)}"
    seg = _segments(vms)
    cum = [_fill(vms, seg, lo, hi, dram)]
    room = dram
    res = np.array([v.resident_bytes for v in vms], dtype=np.int64)
    for t in host.tiers[1:]:
        room += t.capacity_bytes
        cum.append(_fill(vms, seg, cum[-1], res, max(room, int(cum[-1].sum()))))
    served = np.array([_served(seg, c) for c in cum])             # tiers x VMs, cumulative
    per_tier = np.diff(np.vstack([np.zeros(len(vms)), served]), axis=0)
    total = np.array([v.accesses for v in vms])
    lat = np.array([t.charged_ns for t in host.tiers])
    ref = host.tiers[0].latency_ns
    out = {}
    for i, v in enumerate(vms):
        if total[i] <= 0:
            shares, slow = (1.0,) + (0.0,) * (len(host.tiers) - 1), 1.0
        else:
            shares = tuple((per_tier[:, i] / total[i]).tolist())
            rest = max(0.0, total[i] - served[-1, i])          # beyond every tier: charged the lowest
            slow = (float(per_tier[:, i] @ lat) + rest * lat[-1]) / (total[i] * ref)
        out[v.key] = VmFigures(host.host_id, int(cum[0][i]), shares, float(slow), float(served[0, i]))
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

    def guard(self, vms: Sequence[Vm], figs: dict[str, VmFigures]) -> str:
        """'' if no VM's slowdown rises past its limit (its policy's, else the fleet's; or past its own now,
        if higher), else who and why."""
        for v in vms:
            f, was = figs[v.key], self.now.get(v.key)
            own = v.policy.max_slowdown
            limit = max(self.max_slowdown if own is None else own, was.slowdown if was is not None else 0.0)
            if f.slowdown > limit + 1e-9:
                return (f"{v.key} would be {f.slowdown:.3f}x slower than all-DRAM (limit {limit:.3f}x"
                        + (", its policy's)" if own is not None else ")"))
        return ""

    def trial(self, changes: dict[str, list[Vm]]) -> tuple[float, dict[str, dict[str, VmFigures]]] | str:
        """The hosts in `changes` running those VMs: (DRAM-served accesses gained, their estimates), or why
        not."""
        gained, figs = 0.0, {}
        for h, vms in changes.items():
            e = self.estimate(h, vms)
            if isinstance(e, str):
                return e
            g = self.guard(vms, e)
            if g:
                return g
            # against the figures now (a host over capacity now has them as it is, not as the fill would)
            gained += self.served(e) - sum(self.now[v.key].served for v in self.on[h])
            figs[h] = e
        return gained, figs


def advise(hosts: Sequence[Host], vms: Sequence[Vm], new_vms: Sequence[Vm] = (), *,
           max_slowdown: float = MAX_SLOWDOWN, bandwidth: float = MIGRATION_BANDWIDTH, min_gain: float = MIN_GAIN,
           max_moves: int = 16, estimates: bool = True) -> Advice:
    """The fleet's advice (see the module docstring). `vms`: the running VMs, each on its host_id; `new_vms`:
    VMs to place (host_id ""); at most `max_moves` steps (a move or a swap). ValueError on a VM of an
    unknown host, two VMs of one key, a bad limit."""
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
    ids = list(by_id)
    top = {v.key: _knapsack([v], math.inf) for h in on for v in on[h]}
    for _ in range(max_moves):                # steps: a move or a swap
        best = None
        where = {id(x): h for h, vs in on.items() for x in vs}
        movable = [v for h in on for v in on[h] if v.movable and v.key not in moved and v.host_id]
        cold = {b: _coldest(on[b], moved, SWAP_CANDIDATES) for b in ids}
        bound = _Bound(fleet, ids, cold, top, min_gain * total)
        # the options whose gain may reach min_gain, in the search's order (VMs, hosts, the move then the swaps),
        # tried by their bound per byte copied, highest first, until no bound left can reach the best score;
        # the best is the first of the highest score in the search's order
        tries = []
        for v in movable:
            a = where[id(v)]
            without = [x for x in on[a] if x is not v]
            for b, ub in bound.options(v, a, without):
                for u, g in zip((None, *cold[b]), ub):
                    if g >= bound.threshold:
                        cost = v.resident_bytes + (u.resident_bytes if u is not None else 0)
                        tries.append(((g + bound.slack) / max(cost, 1), len(tries), v, u, a, b, without, cost))
        tries.sort(key=lambda x: (-x[0], x[1]))
        for most, order, v, u, a, b, without, cost in tries:
            if best is not None and most < best[0]:
                break
            changes = ({a: without, b: on[b] + [v]} if u is None else
                       {a: without + [u], b: [x for x in on[b] if x is not u] + [v]})
            t = fleet.trial(changes)
            if isinstance(t, str) or t[0] < min_gain * total:
                continue
            score = t[0] / max(cost, 1)
            if best is None or score > best[0] or (score == best[0] and order < best[1]):
                best = (score, order, v, u, a, b, changes, t)
        if best is None:
            break
        _, _, v, u, a, b, changes, (gained, figs) = best
        for h, vs in changes.items():
            on[h] = vs
            fleet.now.update(figs[h])
        gain = gained / total if total > 0 else 0.0
        moves.append(Move(v.name, a, b, v.resident_bytes, v.resident_bytes / bandwidth, gain,
                          (b, u.name) if u is not None else ()))
        if u is not None:
            moves.append(Move(u.name, b, a, u.resident_bytes, u.resident_bytes / bandwidth, 0.0, (a, v.name)))
        moved |= {v.key} | ({u.key} if u is not None else set())
    return Advice(before_share=share(before, sum(v.accesses for v in vms)), after_share=share(fleet.now, total),
                  moves=tuple(moves), placements=tuple(placements), before=before, after=dict(fleet.now),
                  estimates=table)


def _knapsack(vms: Sequence[Vm], capacity: float) -> float:
    """The most estimated accesses `capacity` bytes of DRAM could serve of these VMs' pages, each VM's bins up
    to its DRAM maximum taken whole or in part in any order (the fractional knapsack of the bins by accesses
    per byte, no minimums or weights): at least what any fill of that DRAM serves, since a fill gives each VM
    its hottest bytes up to its maximum."""
    if not vms:
        return 0.0
    start, size, per_byte = _segments(vms)
    hi = np.array([max(_bounds(v, True)[1], _bounds(v, False)[1]) for v in vms], dtype=np.float64)
    size = np.clip(np.minimum(start + size, hi[:, None]) - start, 0, None).ravel()
    per_byte = per_byte.ravel()
    keep = (per_byte > 0) & (size > 0)
    size, per_byte = size[keep], per_byte[keep]
    order = np.argsort(-per_byte, kind="stable")
    size, per_byte = size[order], per_byte[order]
    take = np.clip(capacity - (np.cumsum(size) - size), 0, size)
    return float(take @ per_byte)


def _dram_left(host: Host, vms: Sequence[Vm]) -> float:
    """A host's DRAM for these VMs' pages: its capacity less their page tables (more VMs: less)."""
    return max(0.0, float(host.tiers[0].capacity_bytes - sum(v.page_table_bytes() for v in vms))) \
        if host.tiers else 0.0


class _Bound:
    """Upper bounds on a step's gain, so that the search tries (estimates) only the moves and swaps that can
    reach `threshold`. A host's DRAM-served accesses with a VM set are at most the knapsack of that set at the
    DRAM its page tables leave (`_knapsack`, `_dram_left`), which is at most the knapsack of a part of the set
    at the DRAM that part leaves plus each other VM's own (its accesses up to its DRAM maximum); a step's gain
    is the sum over its two hosts of that bound less their DRAM-served accesses now."""

    def __init__(self, fleet: _Fleet, ids: list[str], cold: dict[str, list[Vm]], top: dict[str, float],
                 threshold: float):
        self.fleet, self.ids, self.top = fleet, ids, top
        self.now = {h: sum(fleet.now[x.key].served for x in fleet.on[h]) for h in ids}
        # within rounding: the gains and the bounds are sums of terms no larger than the fleet's accesses
        self.slack = 1e-9 * (1.0 + sum(top.values()))
        self.threshold = threshold - self.slack
        # per host b: what b adds to a move to it (v's accesses aside), and to a swap with each of its cold VMs
        self.to = np.array([_knapsack(fleet.on[b], _dram_left(fleet.hosts[b], fleet.on[b])) - self.now[b]
                            for b in ids])
        self.swap = np.full((len(ids), SWAP_CANDIDATES), -np.inf)
        for j, b in enumerate(ids):
            for k, u in enumerate(cold[b][:SWAP_CANDIDATES]):
                rest = [x for x in fleet.on[b] if x is not u]
                self.swap[j, k] = _knapsack(rest, _dram_left(fleet.hosts[b], rest)) - self.now[b] + top[u.key]
        self.index = {h: j for j, h in enumerate(ids)}

    def options(self, v: Vm, a: str, without: list[Vm]):
        """(b, bounds on the gains of [the move to b, the swap with each of b's cold VMs]) per host b != a where
        one may reach the threshold, in host order (-inf: no such swap)."""
        base = _knapsack(without, _dram_left(self.fleet.hosts[a], without)) - self.now[a] + self.top[v.key]
        # a move: v's accesses on b's side; a swap: u's on a's side too (in self.swap)
        ub = base + np.concatenate([self.to[:, None], self.swap], axis=1)
        reach = (ub >= self.threshold).any(axis=1)
        reach[self.index[a]] = False
        for j in np.flatnonzero(reach):
            yield self.ids[j], ub[j].tolist()


def _coldest(vms: Sequence[Vm], moved: set[str], n: int) -> list[Vm]:
    """The n movable VMs of a host with the fewest estimated accesses per resident byte: what a swap trades
    a hot VM for."""
    ok = [v for v in vms if v.movable and v.key not in moved]
    return sorted(ok, key=lambda v: (v.accesses / max(v.resident_bytes, 1), v.name))[:n]


def _estimate_as_is(host: Host, vms: Sequence[Vm]) -> dict[str, VmFigures]:
    """Figures of VMs on a host that cannot hold them all (it swaps): each VM's DRAM as it is now."""
    ref, l0, ll = host.tiers[0].latency_ns, host.tiers[0].charged_ns, host.tiers[-1].charged_ns
    out = {}
    for v in vms:
        total, s = v.accesses, float(_served(_segments([v]), np.array([v.dram_bytes]))[0])
        share = s / total if total > 0 else 1.0
        out[v.key] = VmFigures(host.host_id, v.dram_bytes, (share,) + (0.0,) * (len(host.tiers) - 2)
                               + ((1 - share,) if len(host.tiers) > 1 else ()),
                               (share * l0 + (1 - share) * ll) / ref, s)
    return out


# ------------------------------------------------------------------------------ the controller's state

def fleet_inputs(topologies: Mapping, last_rounds: Mapping, policies: Mapping[str, Mapping[str, VmPolicy]],
                 reserve: float = 0.0) -> tuple[list[Host], list[Vm]]:
    """Hosts and VMs from the controller's state: per host id its GetTopologyResponse, its last RoundResult
    (heat_pages, heat_fast_pages, bin_level, nr_scans, accessed_page_scans, node_loaded_read_latency_ns; a
    host without one contributes its capacity, at idle latencies, but no VMs), and its VMs' policies (shares
    resolved against each VM's footprint)."""
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
        last = last_rounds.get(h)
        # per node id, as the last heat report measured it ([] or 0: not measured)
        loaded = list(last.node_loaded_read_latency_ns) if last is not None else []
        out = []
        for r in sorted(tiers):
            ns = tiers[r]
            cap = sum(max(0, n.capacity_bytes - n.wmark_high_bytes - n.demote_margin_bytes
                          - (int(reserve * n.capacity_bytes) if r == 0 else 0)) for n in ns)
            idle = [n.read_latency_ns or DEFAULT_LATENCY_NS.get(kinds.get(n.type, "pmem"), 305.0) for n in ns]
            under = [loaded[n.id] if n.id < len(loaded) and loaded[n.id] > 0 else None for n in ns]
            charged = [x if x is not None else i for x, i in zip(under, idle)]
            out.append(Tier(cap, float(np.mean(idle)),
                            float(np.mean(charged)) if any(x is not None for x in under) else None))
        hosts.append(Host(h, tuple(out)))
        if last is None:
            continue
        level, scans, touched = last.bin_level, last.nr_scans, last.accessed_page_scans
        tenants = [t for t in topo.tenants if len(last.heat_pages.get(t.name, ())) == HEAT_BINS]
        view = HostView(h, (), tuple(TenantHeat(t.name, t.page_size_bytes, {}, Candidates.empty(),
                                                Candidates.empty(), Candidates.empty(), t.footprint_bytes)
                                     for t in tenants))
        mine = {k: p for k, p in policies.get(h, {}).items() if k in {t.name for t in tenants}}
        for t, p in zip(tenants, resolve_policies(view, mine)):
            fast = last.heat_fast_pages.get(t.name) or [0] * HEAT_BINS
            pages = np.asarray(last.heat_pages[t.name], dtype=np.int64)
            rate = vm_rates(level, pages, touched[t.name] / scans if scans and t.name in touched else None)
            vms.append(Vm(h, t.name, t.page_size_bytes, t.footprint_bytes, pages, rate, p,
                          int(sum(fast)) * t.page_size_bytes))
    return hosts, vms
