"""The one interface every placement policy implements, and the values that cross it: the controller's
per-round knobs (`PolicyParams`), the users' per-VM policies (`VmPolicy`), the plan a policy returns
(`Plan` of `MoveBatch`es) and the heat report a policy asks for (`ReportRequest`).

A policy is a `PlacementPolicy` with a `name`, its tunables declared once in `OPTIONS` (parsed by
`pagetide.common.options` when the object is made, so a bad value fails at start-up), and
`place(view, policies, params) -> Plan` between two tiers, which `plan` runs once per boundary between memory
tiers (one on a DRAM + slow host): pure -- no I/O, no clock. It may keep state between rounds in its own
object (memtierd's heat map); time comes only as rounds of `period_seconds`, so one object serves one host for
the whole run. `report_request` says how big a heat report the policy wants each round.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from pagetide.common.limits import CANDIDATE_BYTES, MAX_MOVE_BYTES, REPORT_BUDGET
from pagetide.common.options import Option, OptionError, parse_options
from pagetide.controller.policies.view import HEAT_BINS, HostView

__all__ = ["TIERS", "VmPolicy", "PolicyParams", "MoveBatch", "Plan", "ReportRequest", "PlacementPolicy", "validate_params"]


# ---------------------------------------------------------------------------------------------- inputs

TIERS = ("dram", "slow")


@dataclass(frozen=True)
class VmPolicy:
    """User-set per VM; a tenant without one gets the defaults. A bound is bytes or a share of the VM's
    footprint, not both (`placement.resolve_policies` turns shares into bytes against the view). A pinned
    tier puts all the VM's pages on that tier (as far as it has room) and keeps them there; with `migrate`
    off the controller moves none of its pages, whatever else the policy says."""
    min_dram_bytes: int = 0
    max_dram_bytes: int | None = None    # None: unlimited
    weight: float = 1.0                  # multiplies the VM's marginal utility in the DRAM split
    min_dram_share: float | None = None  # of the footprint, 0..1; instead of min_dram_bytes
    max_dram_share: float | None = None  # of the footprint, 0..1; instead of max_dram_bytes
    pinned_tier: str | None = None       # one of TIERS, or None: placed by the policy
    migrate: bool = True                 # False: the controller moves none of the VM's pages
    max_slowdown: float | None = None    # >= 1: the fleet advice's slowdown limit for it (controller/advice.py);
                                         # None: the fleet-wide guard. Placement on its host ignores it


@dataclass(frozen=True)
class PolicyParams:
    """The controller's knobs for a round. `max_bytes_per_round` and `batch_bytes` bind every policy; the
    others are pagetide's own and the baselines ignore them (they model daemons that had no such knob)."""
    reserve: float = 0.005                # DRAM kept free above the high watermark for new allocations
    hysteresis_bins: int = 3              # swap only pages >= this many bins apart (the seed daemon used 2
                                          # refs; heat from 5 scans is noisier than that: see BENCHMARKS.md)
    hysteresis_z: float = 0.0             # > 0, with a tracker that reports its averaging window: swap only
                                          # pages whose levels differ by this many standard errors instead
                                          # (pagetide.py; off: measured worse than the fixed gap, BENCHMARKS.md)
    min_promote_bin: int = 1              # never promote pages colder than this bin
    max_bytes_per_round: int = 256 << 20  # per-host migration budget per round (seed: one_period_migration_size)
    batch_bytes: int = MAX_MOVE_BYTES     # pages per move_pages call (the seed daemon's 4 MiB batch)
    sw_young: bool = True                 # emit MPOL_MF_SW_YOUNG mark batches
    max_mark_pages: int = 4096            # SW_YOUNG marks per host per round, hottest first: each mark costs a
                                          # page walk in move_pages, and PG_referenced only needs renewing as
                                          # fast as reclaim clears it


def validate_params(params: PolicyParams, view: HostView) -> None:
    if not 0.0 <= params.reserve < 1.0:
        raise ValueError(f"reserve must be a fraction in [0, 1), got {params.reserve!r}")
    if params.hysteresis_bins < 1:
        # a gap of 0 would swap pages of equal heat back and forth every round
        raise ValueError(f"hysteresis_bins must be >= 1, got {params.hysteresis_bins!r}")
    if not (params.hysteresis_z >= 0 and math.isfinite(params.hysteresis_z)):
        raise ValueError(f"hysteresis_z must be a finite number >= 0, got {params.hysteresis_z!r}")
    if not 1 <= params.min_promote_bin < HEAT_BINS:
        raise ValueError(f"min_promote_bin must be within 1..{HEAT_BINS - 1}, got {params.min_promote_bin!r}")
    if params.max_mark_pages < 0:
        raise ValueError(f"max_mark_pages must not be negative, got {params.max_mark_pages!r}")
    if params.max_bytes_per_round < 0:
        raise ValueError(f"max_bytes_per_round must not be negative, got {params.max_bytes_per_round!r}")
    for t in view.tenants:
        if params.batch_bytes < t.page_size:
            raise ValueError(f"batch_bytes {params.batch_bytes} cannot hold one {t.page_size}-byte page "
                             f"of tenant {t.name!r}")


# --------------------------------------------------------------------------------------------- outputs

@dataclass(frozen=True)
class MoveBatch:
    """One move_pages call."""
    tenant: str
    target_node: int
    addresses: np.ndarray        # uint64, at most batch_bytes of pages
    sw_young: bool               # MPOL_MF_SW_YOUNG marking batch (pages already on target_node)
    kind: str                    # "demote" | "promote" | "mark"


@dataclass(frozen=True)
class Plan:
    host_id: str
    dram_target_bytes: dict[str, int]    # per tenant: DRAM share decided this round
    batches: tuple[MoveBatch, ...]       # demotions first (make room), then promotions, then SW_YOUNG marks
    promote_bytes: int
    demote_bytes: int


@dataclass(frozen=True)
class ReportRequest:
    """The heat report a policy asks a host for: candidate pages per list and tenant, and the hot_fast list's
    own length (None: unset, the agent sends max_candidates)."""
    max_candidates: int
    max_hot_fast: int | None = None


# ------------------------------------------------------------------------------------------- interface

class PlacementPolicy(ABC):
    """What the controller calls once per host and round. Subclasses set `name` and `OPTIONS` and read their
    parsed options from `self.options` after calling this constructor."""
    name: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Option]] = {}

    def __init__(self, **options: Any) -> None:
        """Parse `options` (numbers, or strings in human units) against `OPTIONS`, defaults filled in. Raises
        `OptionError` (a ValueError) naming the policy and the key, and for an unknown key the valid ones."""
        self.options: dict[str, Any] = parse_options(self.OPTIONS, options, where=self.name,
                                                     owner=f"policy {self.name!r}")
        self._given = dict(options)
        self._lower: list[PlacementPolicy] = []    # one more object of this policy per boundary below DRAM's
        self.boundaries = 1                        # tier boundaries of the host's last view

    def plan(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        """This round's plan for the host, across all its memory tiers. On two tiers it is `place`'s. On more,
        `place` decides each boundary between a tier and those below it, top first, every boundary on the
        view as the ones above it leave it (`HostView.after`) and with the migration budget they left: so
        the hottest pages go to DRAM, the next to the tier below, the coldest to the lowest, within each
        tier's room. Each boundary below DRAM's has its own object of the policy (a stateful policy keeps
        each boundary's history apart), and there a VM's policy keeps only its weight and migration switch
        (its DRAM bounds and pinned tier are DRAM's; `placement.honour_vm_rules` still drops what a pinned or
        frozen VM forbids). A page that a boundary moved into a tier and the next boundary moves on goes
        straight to its last node, in one move_pages call (a cold DRAM page to PMEM). Batches run demotions
        deepest target first (each makes room for the one above), then promotions top first, then SW_YOUNG
        marks of pages that stay."""
        self.boundaries = view.nr_boundaries
        if self.boundaries == 1:
            return self.place(view.boundary(0), policies, params)
        while len(self._lower) < self.boundaries - 1:
            self._lower.append(type(self)(**self._given))
        lower_policies = {name: VmPolicy(weight=p.weight, migrate=p.migrate) for name, p in policies.items()}
        plans, budget, now = [], params.max_bytes_per_round, view
        for b in range(self.boundaries):
            policy, pols = (self, policies) if b == 0 else (self._lower[b - 1], lower_policies)
            plan = policy.place(now.boundary(b), pols, replace(params, max_bytes_per_round=max(0, budget)))
            budget -= plan.promote_bytes + plan.demote_bytes
            plans.append(plan)
            now = now.after(plan.batches)
        return _merged(view, plans, params.batch_bytes)

    def invalid(self, rule: str, key: str | None = None) -> OptionError:
        """The error for an option that parses but breaks a rule of this policy: `key`'s own rule, or (no
        key) one that relates several options and names them."""
        return OptionError(f"{self.name}.{key}: {rule}" if key else f"{self.name}: {rule}")

    @abstractmethod
    def place(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        """This round's plan between two tiers: the view's fast nodes and its slow ones (`plan` calls it once
        per tier boundary). Batches of at most `params.batch_bytes`, one target node each, demotions before
        promotions, all within `params.max_bytes_per_round`. Raises ValueError on invalid params or a VM
        policy for a tenant the view does not hold."""

    def report_request(self, n_tenants: int, params: PolicyParams, max_candidates: int) -> ReportRequest:
        """The report to ask for on a host running `n_tenants`: at most `max_candidates` pages per list, fewer
        when the host's tenants would take the report past `REPORT_BUDGET`; the hot_fast list unset."""
        per_tenant = REPORT_BUDGET // (max(1, n_tenants) * CANDIDATE_BYTES * self.boundaries)
        return ReportRequest(max_candidates=min(max_candidates, per_tenant), max_hot_fast=None)


_KINDS = ("demote", "promote")


def _merged(view: HostView, plans: list[Plan], batch_bytes: int) -> Plan:
    """The boundaries' plans (top boundary first) as one: each page moved once, from where it is to the node
    the last boundary that moved it chose, kept the kind of its first move; demotions deepest target first,
    then promotions top target first, then the marks of pages that do not move, each group cut into calls
    of at most batch_bytes (by tenant and target node, in first-appearance order)."""
    names = [t.name for t in view.tenants]
    index = {n: v for v, n in enumerate(names)}
    page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
    moves = [b for p in plans for b in p.batches if b.kind in _KINDS]
    marks = [b for p in plans for b in p.batches if b.kind not in _KINDS]
    if moves:
        count = [len(b.addresses) for b in moves]
        tenant = np.repeat([index[b.tenant] for b in moves], count).astype(np.int64)
        addr = np.concatenate([np.asarray(b.addresses, dtype=np.uint64) for b in moves])
        target = np.repeat([b.target_node for b in moves], count).astype(np.int64)
        kind = np.repeat([_KINDS.index(b.kind) for b in moves], count).astype(np.int64)
    else:
        tenant = target = kind = np.zeros(0, np.int64)
        addr = np.zeros(0, np.uint64)
    seq = np.arange(addr.size)
    order = np.lexsort((seq, addr, tenant))                  # each page's moves together, in plan order
    t_o, a_o = tenant[order], addr[order]
    starts = np.flatnonzero(np.r_[True, (t_o[1:] != t_o[:-1]) | (a_o[1:] != a_o[:-1])]) if addr.size else seq
    last = np.r_[starts[1:], addr.size].astype(np.int64)[:starts.size] - 1
    first = order[starts]
    tenant, addr, kind, target = tenant[first], addr[first], kind[first], target[order[last]]
    rank = view.topology.tier[target]
    # demotions deepest first, promotions top first; ties keep the pages' first-appearance order
    key = np.where(kind == 0, -rank, view.topology.nr_tiers + rank)
    go = np.lexsort((first, key))
    batches: list[MoveBatch] = []
    for k in np.unique(key[go]):
        sel = go[key[go] == k]
        for v in dict.fromkeys(tenant[sel].tolist()):
            pages = addr[sel[tenant[sel] == v]]
            per = max(1, batch_bytes // int(page_size[v]))
            nid = int(target[sel[0]])
            batches += [MoveBatch(tenant=names[v], target_node=nid, addresses=pages[i:i + per], sw_young=False,
                                  kind=_KINDS[int(kind[sel[0]])]) for i in range(0, pages.size, per)]
    moved = {v: np.sort(addr[tenant == v]) for v in np.unique(tenant).tolist()}
    for m in marks:
        gone = moved.get(index[m.tenant])
        a = np.asarray(m.addresses, dtype=np.uint64)
        if gone is not None and gone.size:
            i = np.minimum(np.searchsorted(gone, a), gone.size - 1)
            a = a[gone[i] != a]
        if a.size:
            batches.append(replace(m, addresses=a))
    size = page_size[tenant]
    return Plan(host_id=view.host_id, dram_target_bytes=plans[0].dram_target_bytes, batches=tuple(batches),
                promote_bytes=int(size[kind == 1].sum()), demote_bytes=int(size[kind == 0].sum()))
