"""Hosts with more than two memory tiers: scenarios (tiers by abstract distance, peer chains), the model's
demotion chain DRAM -> CXL -> PMEM and promotion from any lower tier."""

import copy
import dataclasses

import numpy as np
import pytest

from pagetide.agent.commands.scenarios import default_scenario_path
from pagetide.agent.host import MPOL_MF_MOVE, MPOL_MF_SW_YOUNG, Host
from pagetide.agent.scenario import ScenarioError, load_scenario, parse_scenario

MiB = 1 << 20
FAST_CXL = {"read_latency": "170ns", "write_latency": "170ns", "read_bandwidth": "64GB/s",
            "write_bandwidth": "64GB/s"}


def three_tier(dram="16MiB", cxl="16MiB", pmem="64MiB", tenants=None, kernel=None, **top):
    d = {
        "seed": 3, "tick": "100ms", "duration": "2s", "epoch": "500ms",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": dram, "peer_node": 1},
                           {"id": 1, "type": "cxl", "capacity": cxl, "peer_node": 2, **FAST_CXL},
                           {"id": 2, "type": "pmem", "capacity": pmem}],
                 "kernel": {"swap": "64MiB", **(kernel or {})}},
        "tenants": tenants or [{"name": "vm0", "footprint": "56MiB", "workload": {"type": "zipf", "samples": 2048}}],
    }
    d.update(top)
    return d


def check_state(h: Host) -> None:
    h.check_invariants()                     # every page on exactly one node; no node over capacity
    assert (h.node_used + h.node_pgtable <= h.capacity).all()


# ---- scenarios ------------------------------------------------------------------------------------------

def test_a_dram_cxl_pmem_chain_gets_three_tiers_by_abstract_distance_and_demotes_tier_by_tier():
    s = parse_scenario(three_tier())
    assert [n.memory_tier for n in s.nodes] == [4, 14, 41]     # 576, 1912 (fast CXL), 5335 (Optane)
    assert [n.tier for n in s.nodes] == [0, 1, 2]
    assert [n.demotion_target for n in s.nodes] == [1, 2, -1]
    assert [n.peer_node for n in s.nodes] == [1, 2, 1]          # PMEM's peer is the CXL node naming it
    assert s.distances[0][1] == s.distances[1][2] == 17 and s.distances[0][2] == 28


def test_a_middle_node_without_a_peer_demotes_to_the_nearest_node_of_the_next_tier():
    d = three_tier()
    d["host"]["nodes"][1].pop("peer_node")
    d["host"]["nodes"].append({"id": 3, "type": "pmem", "capacity": "64MiB"})
    d["host"]["distances"] = [[10, 17, 28, 28], [17, 10, 30, 20], [28, 30, 10, 21], [28, 20, 21, 10]]
    s = parse_scenario(d)
    assert s.nodes[1].demotion_target == 3
    assert s.nodes[2].tier == s.nodes[3].tier == 2


def test_default_device_figures_put_optane_above_a_slow_cxl_asic():
    d = three_tier()
    for k in FAST_CXL:
        d["host"]["nodes"][1].pop(k)
    d["host"]["nodes"][0]["peer_node"] = 2                        # DRAM -> PMEM -> CXL
    d["host"]["nodes"][1].pop("peer_node")
    d["host"]["nodes"][2]["peer_node"] = 1
    s = parse_scenario(d)
    assert [n.tier for n in s.nodes] == [0, 2, 1]
    assert [n.demotion_target for n in s.nodes] == [2, -1, 1]


def test_two_tier_scenarios_keep_their_peers_and_demote_only_from_dram():
    s = load_scenario(default_scenario_path())
    assert [n.tier for n in s.nodes] == [0, 1]
    assert [n.peer_node for n in s.nodes] == [1, 0]
    assert [n.demotion_target for n in s.nodes] == [1, -1]


def _with(d, node, **changes):
    d = copy.deepcopy(d)
    d["host"]["nodes"][node].update(changes)
    return d


@pytest.mark.parametrize("d,key,reason", [
    (_with(three_tier(), 2, peer_node=0), "host.nodes[2].peer_node", "higher memory tier"),
    (_with(three_tier(), 0, peer_node=2), "host.nodes[0].peer_node", "below the next lower tier"),
    (_with(three_tier(), 1, peer_node=1), "host.nodes[1].peer_node", "its own peer"),
    (_with(three_tier(), 1, adistance=600), "host.nodes[1]", "adistance of at least 640"),
    (_with(three_tier(), 0, adistance=900), "host.nodes[0].adistance", "only slow nodes"),
    (_with(three_tier(), 1, adistance=5300), "host.nodes[1].peer_node", "same memory tier"),
])
def test_invalid_tier_chains_are_rejected_naming_the_node(d, key, reason):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(d)
    assert e.value.key == key
    assert reason in str(e.value)


def test_a_cycle_of_peers_is_rejected_naming_it():
    d = three_tier()
    d["host"]["nodes"][1].pop("peer_node")
    d["host"]["nodes"] += [{"id": 3, "type": "pmem", "capacity": "16MiB", "peer_node": 2}]
    d["host"]["nodes"][2]["peer_node"] = 3
    with pytest.raises(ScenarioError, match=r"cycle 2 -> 3 -> 2"):
        parse_scenario(d)


def test_the_shipped_three_tier_scenario_loads():
    path = default_scenario_path().replace("default.yaml", "three-tier.yaml")
    s = load_scenario(path)
    assert [n.type for n in s.nodes] == ["dram", "cxl", "pmem"]
    assert [n.tier for n in s.nodes] == [0, 1, 2]


# ---- the model ------------------------------------------------------------------------------------------

def test_reclaim_demotes_dram_to_cxl_and_cxl_to_pmem_never_skipping_a_tier():
    h = Host(parse_scenario(three_tier()))
    h.boot()
    check_state(h)
    for _ in range(10):
        h.run_tick()
        check_state(h)
    m = h.migrated_pages
    assert m[0, 1] > 0 and m[1, 2] > 0            # down the chain
    assert m[0, 2] == 0                           # never past a tier
    assert h.vmstat["pswpout"] == 0               # PMEM had room: nothing swapped
    assert (h.node_used > 0).all()
    t = h.tenants[0]
    assert t.stats.demoted_pages == m[0, 1] + m[1, 2]


def test_the_lowest_tier_swaps_once_every_tier_is_full():
    h = Host(parse_scenario(three_tier(pmem="16MiB", kernel={"watermarks": {"min": "4%", "low": "6%", "high": "8%"}},
                                       tenants=[{"name": "vm0", "footprint": "46MiB", "workload": {"type": "zipf", "samples": 2048}}])))
    h.boot()
    for _ in range(5):
        h.run_tick()
        check_state(h)
    assert h.vmstat["pswpout"] > 0 and h.swap_used > 0


@pytest.mark.parametrize("mode", ["nbt", "tpp"])
@pytest.mark.parametrize("footprint,lower", [("28MiB", 1), ("56MiB", 2)])
def test_numa_balancing_promotes_hot_pages_from_a_lower_tier_straight_to_dram(mode, footprint, lower):
    # 28 MiB fits DRAM + CXL: the hot pages outside DRAM are on CXL; at 56 MiB the oldest (the first
    # faulted, lowest addresses, armed first) went on down to PMEM
    h = Host(parse_scenario(three_tier(kernel={"tiering": {"mode": mode}}, duration="6s", tenants=[
        {"name": "vm0", "footprint": footprint, "workload": {"type": "zipf", "samples": 2048}}])))
    h.boot()
    for _ in range(60):
        h.run_tick()
        check_state(h)
    m = h.migrated_pages
    assert m[lower, 0] > 0
    assert m[2, 1] == 0                           # the kernel promotes to the top tier only (node_is_toptier)
    assert h.tenants[0].stats.promoted_pages == m[1, 0] + m[2, 0]
    assert h.vmstat["pgpromote_success"] == m[1, 0] + m[2, 0]


def test_damos_runs_a_pair_of_schemes_for_each_step_down_the_chain():
    h = Host(parse_scenario(three_tier(kernel={"tiering": {"mode": "damos"}})))
    ctx, = h.tiering.contexts
    assert [(s.action, s.src, s.dst, s.goal_nid) for s in ctx.schemes] == [
        ("migrate_cold", 1, 2, 1), ("migrate_cold", 0, 1, 0), ("migrate_hot", 1, 0, 0), ("migrate_hot", 2, 1, 1)]


def test_move_pages_between_lower_tiers_counts_as_promotion_or_demotion_by_tier():
    h = Host(parse_scenario(three_tier()))
    h.boot()
    t = h.tenants[0]
    on_pmem = np.flatnonzero(h.node[t.start:t.end] == 2)[:8]
    addrs = t.vma_start + on_pmem * t.spec.page_size
    before = t.stats.promoted_pages, t.stats.demoted_pages
    r = h.move_pages(0, addrs, np.full(addrs.size, 1), MPOL_MF_MOVE)
    assert (r.status == 1).all()
    assert t.stats.promoted_pages - before[0] == 8
    r = h.move_pages(0, addrs, np.full(addrs.size, 2), MPOL_MF_MOVE)
    assert (r.status == 2).all()
    assert t.stats.demoted_pages - before[1] >= 8
    check_state(h)


# ---- the controller: every policy places pages across all tiers -------------------------------------------

from pagetide.agent.backend import MoveCall                                        # noqa: E402
from pagetide.agent.server import heat_pb, topology_pb                             # noqa: E402
from pagetide.agent.simhost import SimHost                                         # noqa: E402
from pagetide.controller.convert import host_view                                  # noqa: E402
from pagetide.controller.policies import POLICIES, PolicyParams, make_policy      # noqa: E402
from pagetide.controller.policies.placement import honour_vm_rules                 # noqa: E402


def policy_host(**kw) -> SimHost:
    # three VMs whose hot sets differ in size; the idle one should end up lowest
    return SimHost(parse_scenario(three_tier(dram="16MiB", cxl="24MiB", pmem="64MiB", duration="20s", tenants=[
        {"name": "hot", "footprint": "24MiB", "workload": {"type": "zipf", "s": 1.2, "samples": 4096}},
        {"name": "warm", "footprint": "24MiB", "workload": {"type": "zipf", "s": 0.6, "samples": 1024}},
        {"name": "idle", "footprint": "24MiB", "workload": {"type": "idle-vm"}}], **kw)))


def view_of(sh: SimHost, policy):
    sizes = policy.report_request(len(sh.host.tenants), PolicyParams(), 4096)
    return host_view(topology_pb(sh.topology()), heat_pb(sh.host_id, sh.heat_report(sizes.max_candidates,
                                                                                     sizes.max_hot_fast)))


def apply(sh: SimHost, plan) -> None:
    sh.move_pages([MoveCall(tenant=b.tenant, addresses=b.addresses, nodes=np.full(b.addresses.size, b.target_node),
                            flags=MPOL_MF_MOVE | (MPOL_MF_SW_YOUNG if b.sw_young else 0)) for b in plan.batches])


def test_a_three_tier_view_holds_each_boundary_and_its_two_tier_views_are_consistent():
    sh = policy_host()
    sh.advance(20)
    view = view_of(sh, make_policy("pagetide"))
    assert view.topology.nr_tiers == 3 and view.nr_boundaries == 2
    assert [n.tier for n in view.nodes] == [0, 1, 2] and [n.demotion_node for n in view.nodes] == [1, 2, -1]
    low = view.boundary(1)
    assert [(n.id, n.fast) for n in low.nodes] == [(1, True), (2, False)]
    for t in low.tenants:
        assert set(t.hist) <= {1, 2}
        assert (np.asarray(t.cold_fast.node) == 1).all() and (np.asarray(t.hot_slow.node) == 2).all()
    top = view.boundary(0)
    assert top.topology.demote_to[0] == 1                  # DRAM demotes to the next tier, not past it


@pytest.mark.parametrize("name", sorted(set(POLICIES) - {"none"}))
def test_every_policy_places_the_hottest_pages_in_dram_the_next_in_cxl_and_the_coldest_in_pmem(name):
    sh = policy_host()
    policy = make_policy(name, period_seconds=sh.scenario.epoch)
    kinds = set()
    for _ in range(16):
        sh.advance(sh.scenario.ticks_per_epoch)
        view = view_of(sh, policy)
        plan = honour_vm_rules(view, {}, policy.plan(view, {}, PolicyParams()))
        kinds |= {(b.kind, b.target_node) for b in plan.batches}
        apply(sh, plan)
        sh.host.check_invariants()             # every page on one node, no node over capacity
    assert {("promote", 0), ("promote", 1), ("demote", 2)} <= kinds   # both boundaries, both ways
    # mean heat bin of the pages each tier holds: each tier hotter than the one below, DRAM far hotter and
    # PMEM far colder than the kernel alone leaves them (no moves: 5.4, 3.0, 1.6 on this host)
    view = view_of(sh, policy)
    mean = []
    for nid in range(3):
        pages = sum(np.asarray(t.hist.get(nid, np.zeros(16)), dtype=np.float64) for t in view.tenants)
        mean.append(float(pages @ np.arange(16) / pages.sum()))
    assert mean[0] > 7.5 and mean[0] > mean[1] > mean[2] and mean[2] < 1.0, mean


def test_two_tier_views_plan_exactly_as_before():
    from pagetide.controller.policies.pagetide import plan_host
    sh = SimHost(load_scenario(default_scenario_path()))
    sh.advance(20)
    # the policy's first round as plan_host's defaults plan it: with the reserve and no narrow swaps (a fresh
    # policy drops the reserve and makes narrow swaps from the first round where every VM is resident in full)
    policy = make_policy("pagetide", resident_reserve=True, narrow_swaps=False)
    view = view_of(sh, policy)
    assert view.nr_boundaries == 1 and view.boundary(0) is view
    a, b = policy.plan(view, {}, PolicyParams()), plan_host(view, {})
    assert [(x.tenant, x.target_node, x.kind, x.addresses.tolist()) for x in a.batches] == \
        [(x.tenant, x.target_node, x.kind, x.addresses.tolist()) for x in b.batches]


# ---- accounting per tier --------------------------------------------------------------------------------

from pagetide.agent.accounting import Recorder                                     # noqa: E402
from pagetide.agent.server import stats_pb                                         # noqa: E402
from pagetide.agent.sim import simulate                                            # noqa: E402


def test_results_give_each_tiers_served_share_and_the_oracles_per_tier():
    r = simulate(parse_scenario(three_tier(kernel={"tiering": {"mode": "nbt"}}, duration="3s")), check=True)
    assert len(r.tier_share) == 3 and sum(r.tier_share) == pytest.approx(1.0)
    assert r.tier_share[0] == r.dram_share and r.oracle_tier_share[0] == pytest.approx(r.oracle_share)
    assert r.tier_share[1] > 0 and r.tier_share[2] > 0         # 56 MiB on 16 MiB of DRAM: every tier serves
    assert sum(r.oracle_tier_share) == pytest.approx(1.0)
    # the oracle fills DRAM with the densest pages and CXL with the next: it serves more from DRAM than the
    # run, and what it leaves for PMEM is the least of all
    assert r.oracle_tier_share[0] > r.tier_share[0] and r.oracle_tier_share[2] < r.oracle_tier_share[1]
    for t in r.tenants:
        assert t.tier_share[0] == t.dram_share and sum(t.tier_share) == pytest.approx(1.0)
    # the lag-one oracle per tier: last epoch's oracle placement, so between the run and the per-epoch oracle
    assert r.lag_oracle_tier_share[0] == pytest.approx(r.lag_oracle_share) and sum(r.lag_oracle_tier_share) == \
        pytest.approx(1.0)
    assert r.tier_share[2] > r.lag_oracle_tier_share[2] > r.oracle_tier_share[2]
    pb = stats_pb("h", type("S", (), {"result": r, "node_used": [], "node_free": [], "invariant_error": ""})())
    assert list(pb.lag_oracle_tier_shares) == pytest.approx(r.lag_oracle_tier_share)
    assert list(pb.tier_shares) == pytest.approx(r.tier_share)
    assert list(pb.tenants[0].oracle_tier_shares) == pytest.approx(r.tenants[0].oracle_tier_share)


def test_the_oracle_keeps_within_each_tiers_capacity():
    h = Host(parse_scenario(three_tier()))
    h.boot()
    rec = Recorder(h)
    expected = np.random.default_rng(1).random(h.nr_pages).astype(np.float32)
    tier = rec._assign(expected)
    budgets = rec.tier_budgets()
    assert [int((tier == r).sum()) for r in range(2)] == [int(b) for b in budgets]   # 4 KiB pages: exactly full
    assert expected[tier == 0].min() >= expected[tier == 1].max() >= expected[tier == 2].max()


def test_two_tier_results_split_accesses_between_dram_and_the_rest():
    r = simulate(dataclasses.replace(load_scenario(default_scenario_path()), duration=2.0))
    assert len(r.tier_share) == 2
    assert r.tier_share[0] == r.dram_share and r.tier_share[1] == pytest.approx(1 - r.dram_share)
    assert r.oracle_tier_share == pytest.approx([r.oracle_share, 1 - r.oracle_share])
    assert r.lag_oracle_tier_share == pytest.approx([r.lag_oracle_share, 1 - r.lag_oracle_share])


# ---- the composition of boundaries on a hand-built view ---------------------------------------------------

from pagetide.controller.policies import Candidates, HostView, NodeView, TenantHeat   # noqa: E402
from pagetide.controller.policies.view import HEAT_BINS, TierCandidates, heat_bins  # noqa: E402

PAGE = 4096


def hand_view(heat, node, caps=(4, 4, 64)):
    """One tenant on DRAM (node 0), CXL (1), PMEM (2) with the given heat per page; capacities in pages."""
    heat, node = np.asarray(heat, dtype=np.uint8), np.asarray(node, dtype=np.int64)
    addr = (np.uint64(1 << 40) + np.arange(heat.size, dtype=np.uint64) * np.uint64(PAGE))

    def pick(mask, hottest):
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-heat[idx].astype(int) if hottest else heat[idx], kind="stable")]
        if hottest:
            idx = idx[heat[idx] > 0]
        return Candidates(addr[idx], heat[idx], node[idx])
    nodes = tuple(NodeView(id=i, fast=i == 0, capacity_bytes=c * PAGE, free_bytes=(c - int((node == i).sum())) * PAGE,
                           wmark_high_bytes=0, peer_node=(1, 2, 1)[i], tier=i, demotion_node=(1, 2, -1)[i])
                  for i, c in enumerate(caps))
    hist = {i: np.bincount(heat_bins(heat[node == i]), minlength=HEAT_BINS) for i in range(3)}
    t = TenantHeat(name="vm", page_size=PAGE, hist=hist, hot_slow=pick(node > 0, True), cold_fast=pick(node == 0, False),
                   hot_fast=pick(node == 0, True),
                   lower=(TierCandidates(1, pick(node == 2, True), pick(node == 1, False), pick(node == 1, True)),))
    return HostView("h", nodes, (t,)), addr


def test_after_a_plan_the_view_has_the_moved_pages_where_they_went():
    from pagetide.controller.policies import MoveBatch
    view, addr = hand_view([0, 0, 0, 0, 128, 128, 128, 128, 240, 240], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    moved = view.after([MoveBatch("vm", 0, addr[8:9], False, "promote"), MoveBatch("vm", 1, addr[0:1], False, "demote"),
                        MoveBatch("vm", 0, addr[4:5], True, "mark")])
    free = [n.free_bytes for n in moved.nodes]
    assert free == [0, -PAGE, 63 * PAGE]            # DRAM took one and gave one; CXL is now one page over
    t = moved.tenants[0]
    assert t.hist[0][15] == 1 and t.hist[0][0] == 3 and t.hist[2][15] == 1 and t.hist[1][0] == 1
    # each moved page is listed where it now is: the promoted one as a DRAM page, the demoted one as CXL's
    assert addr[8] in t.hot_fast.addresses and addr[8] in t.cold_fast.addresses
    assert addr[8] not in t.hot_slow.addresses and addr[8] not in t.lower[0].hot_below.addresses
    assert addr[0] in t.lower[0].cold.addresses and addr[0] not in t.cold_fast.addresses
    assert t.lower[0].cold.addresses[0] == addr[0]                  # the coldest CXL page, first
    assert addr[4] in t.lower[0].cold.addresses                     # a mark moves nothing


def test_a_plan_runs_demotions_from_the_lowest_boundary_up_then_promotions_from_the_top():
    # DRAM full of idle pages, CXL of warm ones, the hottest on PMEM
    heat = [0] * 4 + [96] * 4 + [240] * 4 + [0] * 8
    node = [0] * 4 + [1] * 4 + [2] * 12
    view, addr = hand_view(heat, node)
    plan = make_policy("pagetide").plan(view, {}, PolicyParams(reserve=0.0, sw_young=False))
    kinds = [(b.kind, b.target_node) for b in plan.batches]
    assert kinds == sorted(kinds, key=[("demote", 2), ("demote", 1), ("promote", 0), ("promote", 1)].index)
    assert ("demote", 2) in kinds and ("promote", 0) in kinds       # both boundaries moved pages
    moved = np.concatenate([b.addresses for b in plan.batches])
    assert moved.size == np.unique(moved).size                       # no page moved twice in a round
    # run the plan: no node over capacity at any step, the hot pages in DRAM, the idle ones off CXL
    where = dict(zip(addr.tolist(), node))
    caps = [4, 4, 64]
    for b in plan.batches:
        for a in b.addresses.tolist():
            where[a] = b.target_node
        used = np.bincount(list(where.values()), minlength=3)
        assert (used <= caps).all() or b.kind == "demote", (b, used)
    assert all(where[a] == 0 for a in addr[8:12].tolist())
    assert sum(where[a] == 1 for a in addr[0:4].tolist()) == 0


def test_four_tiers_are_four_ranks_with_a_chain_down_them():
    d = three_tier()
    d["host"]["nodes"][2]["peer_node"] = 3
    d["host"]["nodes"].append({"id": 3, "type": "pmem", "capacity": "64MiB", "adistance": 9000})
    s = parse_scenario(d)
    assert [n.tier for n in s.nodes] == [0, 1, 2, 3] and [n.demotion_target for n in s.nodes] == [1, 2, 3, -1]
    h = Host(s)
    h.boot()
    for _ in range(5):
        h.run_tick()
        check_state(h)
    assert h.migrated_pages[1, 2] > 0 or h.node_used[3] == 0
