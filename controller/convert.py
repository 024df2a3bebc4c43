"""Agent API messages -> the policy's inputs (pure; the controller's only dependency on the agent is the API)."""

from __future__ import annotations

import numpy as np

from pagetide.controller.policies import Candidates, HostView, NodeView, TenantHeat, VmPolicy
from pagetide.controller.policies.view import TierCandidates
from pagetide.v1 import agent_pb2, controller_pb2, types_pb2


def host_view(topology: agent_pb2.GetTopologyResponse, report: agent_pb2.GetHeatReportResponse) -> HostView:
    """The policies' view of one host's report: validated, with its node tables, once per round (ValueError
    if the report and the topology disagree)."""
    free = list(report.node_free_bytes)
    loaded = list(report.node_loaded_read_latency_ns)      # [] from an agent that does not measure it
    rank = tier_ranks(topology)
    nodes = tuple(NodeView(id=n.id, fast=rank[n.memory_tier] == 0 if rank else n.type == types_pb2.NODE_TYPE_DRAM,
                           capacity_bytes=n.capacity_bytes,
                           free_bytes=free[n.id] if n.id < len(free) else n.free_bytes,
                           wmark_high_bytes=n.wmark_high_bytes + n.demote_margin_bytes, peer_node=n.peer_node,
                           tier=rank[n.memory_tier] if rank else -1,
                           demotion_node=n.demotion_node if rank else -1,
                           latency_ns=loaded[n.id] if n.id < len(loaded) else n.read_latency_ns,
                           idle_latency_ns=n.read_latency_ns)
                  for n in topology.nodes)
    footprint = {t.name: t.footprint_bytes for t in topology.tenants}
    tenants = tuple(TenantHeat(name=t.tenant, page_size=t.page_size_bytes,
                               hist={h.node: np.array(h.pages, dtype=np.int64) for h in t.histograms},
                               hot_slow=candidates(t.hot_slow), cold_fast=candidates(t.cold_fast),
                               hot_fast=candidates(t.hot_fast), footprint_bytes=footprint.get(t.tenant, 0),
                               window_scans=t.window_scans,
                               lower=tuple(TierCandidates(tier=rank.get(c.memory_tier, -1),
                                                          hot_below=candidates(c.hot_below),
                                                          cold=candidates(c.cold), hot=candidates(c.hot))
                                           for c in t.lower_tiers if rank))
                    for t in report.tenants)
    return HostView(host_id=report.host_id, nodes=nodes, tenants=tenants, bin_level=tuple(report.bin_level),
                    tracker=report.tracker)


def tier_ranks(topology: agent_pb2.GetTopologyResponse) -> dict[int, int]:
    """Each memory tier id the host's nodes report (memory_tierN) -> its rank, 0 the top (lowest id); {} when
    the agent reports none (its DRAM nodes are then the top tier, the rest one slow tier)."""
    ids = sorted({n.memory_tier for n in topology.nodes})
    if not ids or ids[0] == 0:
        return {}
    return {t: r for r, t in enumerate(ids)}


def candidates(p: agent_pb2.PageList) -> Candidates:
    """Decode a PageList; ValueError if an array's length does not match its count."""
    arrays = []
    for name, dtype in (("addresses", "<u8"), ("heat", np.uint8), ("nodes", "<i2")):
        raw = getattr(p, name)
        width = np.dtype(dtype).itemsize
        if len(raw) != p.count * width:
            raise ValueError(f"PageList.{name}: {len(raw)} bytes for {p.count} pages of {width} bytes")
        arrays.append(np.frombuffer(raw, dtype=dtype))
    addresses, heat, nodes = arrays
    return Candidates(addresses=addresses.astype(np.uint64), heat=heat, node=nodes.astype(np.int64))


_TIER_PB = {None: controller_pb2.TIER_UNSPECIFIED, "dram": controller_pb2.TIER_DRAM, "slow": controller_pb2.TIER_SLOW}


def vm_policy_pb(host_id: str, vm: str, p: VmPolicy) -> controller_pb2.VmPolicy:
    """A policy as the API shows it (requests.vm_policy is the way in, validated)."""
    out = controller_pb2.VmPolicy(host_id=host_id, vm=vm, min_dram_bytes=p.min_dram_bytes,
                                  max_dram_bytes=p.max_dram_bytes or 0, weight=p.weight,
                                  pinned_tier=_TIER_PB[p.pinned_tier], migration_disabled=not p.migrate)
    if p.min_dram_share is not None:
        out.min_dram_share = p.min_dram_share
    if p.max_dram_share is not None:
        out.max_dram_share = p.max_dram_share
    if p.max_slowdown is not None:
        out.max_slowdown = p.max_slowdown
    return out
