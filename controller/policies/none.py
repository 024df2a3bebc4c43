"""The "none" policy: no moves at all, for the kernel-only reference runs."""

from __future__ import annotations

from collections.abc import Mapping

from pagetide.controller.policies.base import PlacementPolicy, Plan, PolicyParams, VmPolicy
from pagetide.controller.policies.placement import assemble, empty_moves
from pagetide.controller.policies.view import HostView

__all__ = ["NoMigration"]


class NoMigration(PlacementPolicy):
    """Moves nothing: the kernel alone places pages (its demotion or tiering mode). The reference runs of
    `pagetide bench` for the kernel-only modes use it, so the same controller loop measures them."""
    name = "none"

    def place(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        return assemble(view, params, empty_moves(), empty_moves())
