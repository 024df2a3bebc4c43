"""pagetide's policy and loaded latency: no promotions into a DRAM node slower than its slow node, and the
loaded latency the agent reports reaching the policy's view."""

import numpy as np

from pagetide.agent.simhost import SimHost
from pagetide.agent.server import heat_pb, topology_pb
from pagetide.controller.convert import host_view
from pagetide.controller.policies import Candidates, HostView, NodeView, PolicyParams, TenantHeat
from pagetide.controller.policies.pagetide import (
    REOPEN, PagetidePolicy, dram_access_share, plan_host, slower_fast_nodes,
)
from pagetide.controller.policies.view import HEAT_BINS, heat_bins

from helpers import small_scenario

MiB = 1 << 20
PAGE = 4096

def _view(dram_ns: float, pmem_ns: float, dram_free: int) -> HostView:
    """DRAM 64 MiB holding 32 MiB of cold pages (bin 1) and `dram_free` bytes free; 8 MiB of hot pages
    (bin 12) on PMEM."""
    cold_n, hot_n = 32 * MiB // PAGE, 8 * MiB // PAGE
    addr = (1 << 40) + np.arange(cold_n + hot_n, dtype=np.uint64) * PAGE
    heat = np.concatenate([np.full(cold_n, 16, np.uint8), np.full(hot_n, 200, np.uint8)])
    node = np.concatenate([np.zeros(cold_n, np.int64), np.ones(hot_n, np.int64)])
    hist = {n: np.bincount(heat_bins(heat[node == n]), minlength=HEAT_BINS) for n in (0, 1)}
    cold, hot = slice(0, cold_n), slice(cold_n, None)
    t = TenantHeat(name="vm0", page_size=PAGE, hist=hist,
                   hot_slow=Candidates(addr[hot], heat[hot], node[hot]),
                   cold_fast=Candidates(addr[cold], heat[cold], node[cold]),
                   hot_fast=Candidates(addr[:0], heat[:0], node[:0]))
    nodes = (NodeView(0, True, 64 * MiB, dram_free, 1 * MiB, 1, latency_ns=dram_ns),
             NodeView(1, False, 256 * MiB, 200 * MiB, 0, 0, latency_ns=pmem_ns))
    return HostView("h0", nodes, (t,))

def _bytes(plan, kind):
    return sum(len(b.addresses) for b in plan.batches if b.kind == kind) * PAGE

PARAMS = PolicyParams(reserve=0.0, sw_young=False)

def test_promotes_into_dram_while_it_is_faster_than_the_slow_tier():
    plan = plan_host(_view(90.0, 310.0, dram_free=16 * MiB), {}, PARAMS)
    assert _bytes(plan, "promote") == 8 * MiB

def test_stops_promoting_into_a_saturated_dram_node_and_resumes_when_it_drops():
    saturated = _view(400.0, 310.0, dram_free=16 * MiB)
    assert slower_fast_nodes(saturated).tolist() == [True]
    assert _bytes(plan_host(saturated, {}, PARAMS), "promote") == 0
    # with no free DRAM the hot pages would be swapped for cold ones: no swaps either
    full = _view(400.0, 310.0, dram_free=1 * MiB)
    assert _bytes(plan_host(full, {}, PARAMS), "promote") == 0
    assert _bytes(plan_host(_view(90.0, 310.0, dram_free=1 * MiB), {}, PARAMS), "promote") > 0
    # the load dropped: promotions resume
    assert _bytes(plan_host(_view(250.0, 310.0, dram_free=16 * MiB), {}, PARAMS), "promote") == 8 * MiB

def test_unknown_latencies_never_stop_promotion():
    v = _view(0.0, 0.0, dram_free=16 * MiB)
    assert not slower_fast_nodes(v).any()
    assert _bytes(plan_host(v, {}, PARAMS), "promote") == 8 * MiB

def test_agent_reports_each_nodes_period_load_and_the_view_carries_it():
    sc = small_scenario(tenants=[{"name": "t", "kind": "task", "footprint": "16MiB",
                                  "workload": {"type": "zipf", "s": 0.0, "rate": "1.5G/s", "samples": 512,
                                               "write_ratio": 0}}])
    host = SimHost(sc, "h0")
    topo = topology_pb(host.topology())
    first = heat_pb("h0", host.heat_report(16))
    assert list(first.node_utilization) == []                 # no period measured yet: idle latencies
    assert [n.latency_ns for n in host_view(topo, first).nodes] == [80.0, 305.0]
    host.advance(sc.ticks_per_epoch)
    rep = heat_pb("h0", host.heat_report(16))
    util, lat = list(rep.node_utilization), list(rep.node_loaded_read_latency_ns)
    assert util[0] > 0.85 and util[1] == 0.0                  # 96 GB/s of DRAM's 100
    assert lat[0] > 305.0 and np.isclose(lat[1], 305.0)       # DRAM now slower than idle PMEM
    view = host_view(topo, rep)
    assert [n.latency_ns for n in view.nodes] == lat
    assert slower_fast_nodes(view).tolist() == [True]


def _hot_dram_view(dram_ns: float, pmem_ns: float) -> HostView:
    """DRAM holds vm0's 8 MiB hot set (bin 12) and 24 MiB of cold pages; PMEM 32 MiB of cold pages."""
    hot_n, cold_n = 8 * MiB // PAGE, 24 * MiB // PAGE
    addr = (1 << 40) + np.arange(hot_n + 2 * cold_n, dtype=np.uint64) * PAGE
    heat = np.concatenate([np.full(hot_n, 200, np.uint8), np.full(2 * cold_n, 16, np.uint8)])
    node = np.concatenate([np.zeros(hot_n + cold_n, np.int64), np.ones(cold_n, np.int64)])
    hist = {n: np.bincount(heat_bins(heat[node == n]), minlength=HEAT_BINS) for n in (0, 1)}
    dram = np.flatnonzero(node == 0)
    hot_first, cold_first = dram[np.argsort(-heat[dram], kind="stable")], dram[np.argsort(heat[dram], kind="stable")]
    pmem = np.flatnonzero(node == 1)
    t = TenantHeat(name="vm0", page_size=PAGE, hist=hist,
                   hot_slow=Candidates(addr[pmem], heat[pmem], node[pmem]),
                   cold_fast=Candidates(addr[cold_first], heat[cold_first], node[cold_first]),
                   hot_fast=Candidates(addr[hot_first][:1024], heat[hot_first][:1024], node[hot_first][:1024]))
    nodes = (NodeView(0, True, 64 * MiB, 30 * MiB, 1 * MiB, 1, latency_ns=dram_ns),
             NodeView(1, False, 256 * MiB, 200 * MiB, 0, 0, latency_ns=pmem_ns))
    return HostView("h0", nodes, (t,))


def test_a_cap_on_drams_access_share_demotes_its_hottest_pages():
    v = _hot_dram_view(900.0, 310.0)
    share = dram_access_share(v)
    assert share > 0.8
    plan = plan_host(v, {}, PARAMS, dram_cap=share / 2)
    demoted = np.concatenate([b.addresses for b in plan.batches if b.kind == "demote"])
    hot = set(v.tenants[0].hot_fast.addresses.tolist())
    assert demoted.size > 0 and set(demoted.tolist()) <= hot          # the hottest DRAM pages, nothing cold
    assert _bytes(plan, "promote") == 0
    assert not any(b.kind == "demote" for b in plan_host(v, {}, PARAMS, dram_cap=1.0).batches)


def test_the_policy_bisects_drams_share_between_slower_and_faster_and_clears_when_unloaded():
    pol = PagetidePolicy()
    assert pol._dram_cap(_hot_dram_view(250.0, 310.0)) is None       # DRAM never the slower yet: no cap
    slower = _hot_dram_view(900.0, 310.0)
    p = dram_access_share(slower)
    assert np.isclose(pol._dram_cap(slower), p - REOPEN / 2)         # lo was p (faster there): reopened
    faster = _hot_dram_view(200.0, 310.0)
    # faster at the share it was slower at: the load fell, the upper bound reopens by REOPEN
    assert np.isclose(pol._dram_cap(faster), p + REOPEN / 2)
    assert pol._dram_cap(_hot_dram_view(430.0, 420.0)) == p          # balanced within 5%: hold
    # DRAM the faster, even clearly (the slow tier saturated): the cap stays above DRAM's share, so it may
    # promote up to halfway to the share it was slower at -- no reset to unlimited promotion
    assert np.isclose(pol._dram_cap(_hot_dram_view(100.0, 5000.0)), p + REOPEN / 2)
    assert pol._dram_cap(_hot_dram_view(0.0, 0.0)) is None and (pol.cap_lo, pol.cap_hi) == (0.0, 1.0)
