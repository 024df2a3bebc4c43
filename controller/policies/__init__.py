"""Placement policies, chosen by name: pagetide's own and the user-space daemons it is compared with
(DESIGN.md section 4), peers behind one interface (`PlacementPolicy`, in base.py) so the same simulator,
proxy and accounting run every one of them. This module is the registry -- the one table of names -- and
the names callers need; each policy is one module beside it.

- "pagetide": `plan_host` (DESIGN.md section 7), pagetide.py.
- "memory-optimizer": Intel's 2018-19 daemon in its 1:1 mode (DESIGN.md 1.5). Every VM alone gets the same
  `dram_percent` of its scanned memory -- no per-VM utility split, which is the point of the comparison.
- "memtierd": memtierd's heat policy: a decaying per-page heat, heat classes mapped to nodes, and a mover
  limited to bandwidth x time.
- "hemem": HeMem (SOSP'21): per-page sample counts against fixed hot thresholds, all counts halved whenever
  one reaches the cooling threshold; hot pages promoted, cold ones demoted only to make room for them.
- "memtis": MEMTIS (SOSP'23): per-page access counts in 16 log2 bins, the hot bin fitted to the DRAM budget
  minus a 3% promotion watermark, a warm band below it that stays put, counts halved periodically.
- "none": no moves at all, for the kernel-only reference runs.

`params.max_bytes_per_round` is the host's migration limit and every policy stays within it; the other
`PolicyParams` fields are pagetide's own knobs and the baselines ignore them. The semantics follow the
projects' documentation and published defaults; the code is pagetide's own.
"""

from __future__ import annotations

from typing import Any

from pagetide.controller.policies.base import (
    MoveBatch, PlacementPolicy, Plan, PolicyParams, ReportRequest, VmPolicy,
)
from pagetide.controller.policies.hemem import HeMem
from pagetide.controller.policies.memory_optimizer import MemoryOptimizer
from pagetide.controller.policies.memtierd import MemtierdHeat
from pagetide.controller.policies.memtis import Memtis
from pagetide.controller.policies.none import NoMigration
from pagetide.controller.policies.pagetide import PagetidePolicy
from pagetide.controller.policies.view import Candidates, HostView, NodeView, TenantHeat

__all__ = ["POLICIES", "make_policy", "PlacementPolicy", "ReportRequest", "HostView", "NodeView", "Candidates",
           "TenantHeat", "VmPolicy", "PolicyParams", "Plan", "MoveBatch"]

POLICIES: dict[str, type[PlacementPolicy]] = {
    cls.name: cls for cls in (PagetidePolicy, MemoryOptimizer, MemtierdHeat, HeMem, Memtis, NoMigration)
}


def make_policy(name: str, period_seconds: float | None = None, **options: Any) -> PlacementPolicy:
    """A fresh policy object for one host. `period_seconds` (the host's period) goes to the policies that
    keep time -- those declaring a `period_seconds` option -- and is ignored by the others. `options` are
    parsed against the policy's `OPTIONS` (numbers, or strings in human units as given on the command line).
    Raises ValueError naming the valid policies, or the policy, the key and the valid keys."""
    cls = POLICIES.get(name)
    if cls is None:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(sorted(POLICIES))}")
    if period_seconds is not None and "period_seconds" in cls.OPTIONS:
        options["period_seconds"] = period_seconds
    return cls(**options)
