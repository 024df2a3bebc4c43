"""pagetide's own placement policy (pagetide.controller.policies.pagetide): pure, so tested with hand-built
hosts."""

import numpy as np
import pytest

from pagetide.controller.policies import Candidates, HostView, NodeView, PolicyParams, TenantHeat, VmPolicy
from pagetide.controller.policies.pagetide import plan_host
from pagetide.controller.policies.view import HEAT_BINS, heat_bins

KiB, MiB = 1 << 10, 1 << 20
PAGE = 4 * KiB
NO_RESERVE = PolicyParams(reserve=0.0)


class Machine:
    """A tiny host for planning: nodes, and per tenant one heat and one node per page. `view()` builds what
    the agent would report; `apply(plan)` executes the plan's moves, so tests can plan again."""

    def __init__(self, nodes, unowned=None):
        self.nodes = nodes                  # (id, fast, capacity, wmark_high, peer)
        self.unowned = unowned or {}        # node id -> bytes held outside the view
        self.tenants = {}

    def add(self, name, heat, node, page_size=PAGE):
        heat = np.asarray(heat, dtype=np.uint8)
        base = np.uint64((len(self.tenants) + 1) << 40)
        self.tenants[name] = dict(addr=base + np.arange(heat.size, dtype=np.uint64) * np.uint64(page_size),
                                  heat=heat, node=np.asarray(node, dtype=np.int64).copy(), page_size=page_size)
        return self.tenants[name]["addr"]

    def used(self, nid):
        return self.unowned.get(nid, 0) + sum(int((t["node"] == nid).sum()) * t["page_size"]
                                              for t in self.tenants.values())

    def free(self, nid):
        cap = next(n[2] for n in self.nodes if n[0] == nid)
        return cap - self.used(nid)

    def view(self, k=4096, cold_k=None):
        fast_ids = [n[0] for n in self.nodes if n[1]]
        nodes = tuple(NodeView(id=i, fast=f, capacity_bytes=c, free_bytes=self.free(i), wmark_high_bytes=w,
                               peer_node=p) for i, f, c, w, p in self.nodes)
        tenants = []
        for name, t in self.tenants.items():
            on_fast = np.isin(t["node"], fast_ids)
            hist = {n[0]: np.bincount(heat_bins(t["heat"][t["node"] == n[0]]), minlength=HEAT_BINS)
                    for n in self.nodes}

            def pick(mask, hottest, k=k):
                idx = np.flatnonzero(mask)
                idx = idx[np.argsort(-t["heat"][idx].astype(int) if hottest else t["heat"][idx], kind="stable")][:k]
                return Candidates(t["addr"][idx], t["heat"][idx], t["node"][idx])

            tenants.append(TenantHeat(name=name, page_size=t["page_size"], hist=hist,
                                      hot_slow=pick(~on_fast, True), cold_fast=pick(on_fast, False, cold_k or k),
                                      hot_fast=pick(on_fast, True)))
        return HostView(host_id="h0", nodes=nodes, tenants=tuple(tenants))

    def apply(self, plan):
        for b in plan.batches:
            if b.kind in ("demote", "promote"):
                t = self.tenants[b.tenant]
                t["node"][((b.addresses - t["addr"][0]) // np.uint64(t["page_size"])).astype(np.int64)] = b.target_node


def one_socket(dram=64 * MiB, wmark=1 * MiB, slow=256 * MiB, unowned=None):
    return Machine([(0, True, dram, wmark, 1), (1, False, slow, 0, 0)], unowned)


def moved(plan, kind):
    parts = [b.addresses for b in plan.batches if b.kind == kind]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def hot_set_on_pmem():
    """DRAM (64 MiB, 1 MiB high watermark) is full of vm0's idle pages and only 1 MiB is free; 8 MiB of hot
    pages (bin 12) and 4 MiB of barely warm pages (bin 1) sit on PMEM."""
    m = one_socket()
    cold = 63 * MiB // PAGE
    heat = np.concatenate([np.zeros(cold), np.full(2048, 200), np.full(1024, 20), np.zeros(4096)])
    node = np.concatenate([np.zeros(cold), np.ones(2048 + 1024 + 4096)])
    addr = m.add("vm0", heat, node)
    return m, addr[cold:cold + 2048]


def test_hot_set_on_pmem_is_promoted_and_cold_dram_pages_are_demoted_first_to_make_room():
    m, hot = hot_set_on_pmem()
    view = m.view()
    plan = plan_host(view, {}, PolicyParams(reserve=0.02))

    assert set(moved(plan, "promote").tolist()) == set(hot.tolist())
    # 328 pages bring DRAM back above watermark + 2% reserve, then 2048 are swapped for the hot ones; the
    # warm bin-1 pages are only one bin above the idle DRAM pages and stay put
    demoted = moved(plan, "demote")
    assert demoted.size == 328 + 2048
    assert set(demoted.tolist()) == set(view.tenants[0].cold_fast.addresses[:328 + 2048].tolist())
    assert plan.promote_bytes == 8 * MiB and plan.demote_bytes == (328 + 2048) * PAGE
    assert plan.dram_target_bytes["vm0"] == (64 * MiB - 1 * MiB - int(0.02 * 64 * MiB)) // PAGE * PAGE

    kinds = [b.kind for b in plan.batches]
    assert kinds.index("promote") > max(i for i, k in enumerate(kinds) if k == "demote")
    for b in plan.batches:
        assert b.addresses.dtype == np.uint64 and b.addresses.size * PAGE <= 4 * MiB
        assert b.target_node == (1 if b.kind == "demote" else 0)
        assert b.sw_young == (b.kind == "mark")

    m.apply(plan)
    assert m.free(0) >= 1 * MiB + int(0.02 * 64 * MiB)


def test_executing_a_plan_reaches_a_fixed_point_that_moves_nothing():
    m, _ = hot_set_on_pmem()
    m.apply(plan_host(m.view(), {}))
    again = plan_host(m.view(), {})
    assert again.promote_bytes == 0 and again.demote_bytes == 0
    assert {b.kind for b in again.batches} <= {"mark"}


def split_host(vms, dram_budget=24 * MiB):
    """All pages start on PMEM; the DRAM budget is exact (1 MiB watermark, no reserve). `vms` maps name ->
    heat of its 16 MiB hot part; every VM also has 48 MiB of idle pages."""
    m = one_socket(dram=dram_budget + 1 * MiB)
    for name, h in vms.items():
        heat = np.concatenate([np.full(4096, h), np.zeros(12288)])
        m.add(name, heat, np.ones(heat.size))
    return m


def targets(m, policies=None):
    return plan_host(m.view(), policies or {}, NO_RESERVE).dram_target_bytes


def test_the_vm_with_the_hotter_histogram_gets_more_dram():
    m = split_host({"hot": 200, "warm": 100})         # bins 12 and 6
    assert targets(m) == {"hot": 16 * MiB, "warm": 8 * MiB}


def test_weights_shift_the_dram_split():
    m = split_host({"hot": 200, "warm": 100})
    # estimated rates (Poisson inversion of the bins' levels): bin 12 -> -ln(1 - 12.5/15) = 1.79, bin 6 ->
    # -ln(1 - 6.5/15) = 0.57 accesses per scan interval; weight 3 does not reach the hot VM's rate, 4 does
    assert targets(m, {"warm": VmPolicy(weight=3.0)}) == {"hot": 16 * MiB, "warm": 8 * MiB}
    assert targets(m, {"warm": VmPolicy(weight=4.0)}) == {"hot": 8 * MiB, "warm": 16 * MiB}


def test_equally_hot_vms_split_contested_dram_evenly():
    m = split_host({"a": 200, "b": 200})
    assert targets(m) == {"a": 12 * MiB, "b": 12 * MiB}


def test_max_caps_a_vm_and_dram_no_hot_page_needs_is_left_free():
    m = split_host({"hot": 200, "warm": 100})
    # warm has only 16 MiB of accessed pages: 4 MiB of the budget stays free rather than hold idle pages
    assert targets(m, {"hot": VmPolicy(max_dram_bytes=4 * MiB)}) == {"hot": 4 * MiB, "warm": 16 * MiB}


def test_an_idle_vm_gets_its_min_and_nothing_more():
    m = split_host({"hot": 200, "warm": 100, "idle": 0})
    assert targets(m)["idle"] == 0
    assert targets(m, {"idle": VmPolicy(min_dram_bytes=2 * MiB)}) == {"hot": 16 * MiB, "warm": 6 * MiB,
                                                                      "idle": 2 * MiB}


def test_mins_that_overbook_the_host_are_scaled_down_proportionally():
    m = split_host({"a": 200, "b": 0})
    got = targets(m, {"a": VmPolicy(min_dram_bytes=30 * MiB), "b": VmPolicy(min_dram_bytes=10 * MiB)})
    assert got == {"a": 18 * MiB, "b": 6 * MiB}


def balanced(slow_heat):
    """vm0 fills its 16 MiB DRAM budget with bin-5 pages; 16 MiB more sit on PMEM at `slow_heat`."""
    m = one_socket(dram=17 * MiB)
    heat = np.concatenate([np.full(4096, 80), np.full(4096, slow_heat)])
    m.add("vm0", heat, np.concatenate([np.zeros(4096), np.ones(4096)]))
    return m


def test_pages_less_than_the_hysteresis_gap_apart_are_not_swapped():
    gap = PolicyParams().hysteresis_bins
    plan = plan_host(balanced(slow_heat=80 + 16 * (gap - 1)).view(), {}, PolicyParams(reserve=0.0, sw_young=False))
    assert plan.batches == () and plan.promote_bytes == 0 and plan.demote_bytes == 0
    assert plan.dram_target_bytes == {"vm0": 16 * MiB}


def test_pages_a_full_gap_apart_are_swapped():
    gap = PolicyParams().hysteresis_bins
    plan = plan_host(balanced(slow_heat=80 + 16 * gap).view(), {}, PolicyParams(reserve=0.0, sw_young=False))
    assert plan.promote_bytes == plan.demote_bytes == 16 * MiB


def test_the_per_round_byte_budget_goes_to_room_making_demotions_then_the_hottest_promotions():
    m = one_socket()
    cold = 63 * MiB // PAGE
    heat = np.concatenate([np.zeros(cold), np.full(1024, 130), np.full(1024, 200)])   # bins 8 and 12
    addr = m.add("vm0", heat, np.concatenate([np.zeros(cold), np.ones(2048)]))
    hottest = set(addr[cold + 1024:].tolist())

    plan = plan_host(m.view(), {}, PolicyParams(reserve=0.02, max_bytes_per_round=2 * MiB))
    # 328 room-making demotions (1343488 bytes), then 92 swaps of 2 pages each fill the 2 MiB exactly
    assert plan.demote_bytes == (328 + 92) * PAGE and plan.promote_bytes == 92 * PAGE
    assert plan.demote_bytes + plan.promote_bytes == 2 * MiB
    assert set(moved(plan, "promote").tolist()) <= hottest

    tight = plan_host(m.view(), {}, PolicyParams(reserve=0.02, max_bytes_per_round=1 * MiB))
    assert tight.demote_bytes == 1 * MiB and tight.promote_bytes == 0


def test_promotions_never_exceed_free_dram_plus_what_demotions_free():
    # 2 MiB of DRAM is free above the watermark; "big" should shrink by 14 MiB for "small"'s hot pages but
    # reports only 256 cold candidates (1 MiB), so "small" can promote only 3 MiB this round
    m = one_socket(dram=35 * MiB)
    m.add("big", np.zeros(8192), np.zeros(8192))                                  # 32 MiB idle on DRAM
    m.add("small", np.full(4096, 200), np.ones(4096))                              # 16 MiB hot on PMEM
    plan = plan_host(m.view(cold_k=256), {}, NO_RESERVE)
    assert plan.dram_target_bytes == {"big": 18 * MiB, "small": 16 * MiB}
    assert plan.demote_bytes == 1 * MiB
    assert plan.promote_bytes == 3 * MiB
    m.apply(plan)
    assert m.free(0) == 1 * MiB


def test_promotions_go_to_the_dram_peer_of_the_slow_node_and_demotions_to_the_peer_pmem():
    m = Machine([(0, True, 64 * MiB, 1 * MiB, 2), (1, True, 64 * MiB, 1 * MiB, 3),
                 (2, False, 256 * MiB, 0, 0), (3, False, 256 * MiB, 0, 1)])
    # 56 MiB of idle pages on each DRAM node, interleaved; 2 MiB of hot pages on each PMEM node
    heat = np.concatenate([np.full(1024, 200), np.zeros(28672)])
    node = np.concatenate([np.full(512, 2), np.full(512, 3), np.arange(28672) % 2])
    addr = m.add("vm0", heat, node)
    plan = plan_host(m.view(), {"vm0": VmPolicy(max_dram_bytes=100 * MiB)}, NO_RESERVE)
    # 12 MiB to come down to the 100 MiB max, 4 MiB swapped for the hot pages
    assert plan.demote_bytes == 16 * MiB and plan.promote_bytes == 4 * MiB
    assert {b.target_node for b in plan.batches if b.kind == "demote"} == {2, 3}
    promoted = {b.target_node: set(b.addresses.tolist()) for b in plan.batches if b.kind == "promote"}
    assert promoted == {0: set(addr[:512].tolist()), 1: set(addr[512:1024].tolist())}
    for b in plan.batches:
        if b.kind == "demote":
            src = m.tenants["vm0"]["node"][((b.addresses - addr[0]) // np.uint64(PAGE)).astype(int)]
            assert (src == b.target_node - 2).all()


def test_sw_young_marks_the_hot_dram_pages_inside_the_vms_share_on_their_own_node():
    # DRAM budget 8 MiB: vm1's 4 MiB of bin-14 pages and vm0's 4 MiB of bin-10 pages deserve it; vm0's
    # bin-3 pages are demoted and must not be marked; vm1's promoted pages are not marked either
    m = one_socket(dram=9 * MiB)
    vm0 = m.add("vm0", np.concatenate([np.full(1024, 160), np.full(1024, 50)]), np.zeros(2048))
    m.add("vm1", np.full(1024, 230), np.ones(1024))
    plan = plan_host(m.view(), {}, NO_RESERVE)

    marks = [b for b in plan.batches if b.kind == "mark"]
    assert marks and all(b.sw_young and b.target_node == 0 and b.tenant == "vm0" for b in marks)
    assert set(moved(plan, "mark").tolist()) == set(vm0[:1024].tolist())
    assert set(moved(plan, "demote").tolist()) == set(vm0[1024:].tolist())
    assert [b.kind for b in plan.batches][-len(marks):] == ["mark"] * len(marks)

    quiet = plan_host(m.view(), {}, PolicyParams(reserve=0.0, sw_young=False))
    assert not any(b.kind == "mark" or b.sw_young for b in quiet.batches)


def test_sw_young_marks_are_capped_per_round_keeping_the_hottest():
    m = one_socket(dram=64 * MiB)
    warm = m.add("warm", np.full(2048, 100), np.zeros(2048))
    hot = m.add("hot", np.full(1024, 240), np.zeros(1024))
    plan = plan_host(m.view(), {}, PolicyParams(reserve=0.0, max_mark_pages=1536))
    marked = moved(plan, "mark")
    assert marked.size == 1536
    assert set(hot.tolist()) <= set(marked.tolist())
    assert np.isin(marked, warm).sum() == 512


def test_huge_pages_are_batched_two_per_4mib_call():
    m = one_socket(dram=65 * MiB)
    m.add("thp", np.full(16, 200), np.ones(16), page_size=2 * MiB)
    plan = plan_host(m.view(), {}, NO_RESERVE)
    assert plan.promote_bytes == 32 * MiB
    assert [b.addresses.size for b in plan.batches if b.kind == "promote"] == [2] * 8


def test_a_host_view_is_validated_when_built_and_carries_its_node_tables():
    m = Machine([(0, True, 64 * MiB, 1 * MiB, 3), (1, True, 64 * MiB, 1 * MiB, -1), (3, False, 256 * MiB, 0, 0)])
    m.add("vm0", np.full(4, 200), [0, 1, 3, 3])
    topo = m.view().topology
    assert topo.fast_ids.tolist() == [0, 1] and topo.slow_ids.tolist() == [3]
    assert topo.fast_pos.tolist() == [0, 1, -1, -1]
    assert topo.demote_to[[0, 1]].tolist() == [3, 3] and topo.promote_to[3] == 0
    t = m.view().tenants[0]
    with pytest.raises(ValueError, match="'vm0': hot_slow lists pages that are not on a slow node"):
        HostView("h0", m.view().nodes, (TenantHeat("vm0", PAGE, t.hist, t.hot_fast, t.cold_fast, t.hot_fast),))
    with pytest.raises(ValueError, match="node ids must be distinct"):
        HostView("h0", m.view().nodes * 2, ())


@pytest.mark.parametrize("policy, message", [
    (VmPolicy(min_dram_bytes=8 * MiB, max_dram_bytes=4 * MiB), "min_dram_bytes"),
    (VmPolicy(weight=0.0), "weight"),
    (VmPolicy(weight=-1.0), "weight"),
    (VmPolicy(weight=float("nan")), "weight"),
    (VmPolicy(min_dram_bytes=-1), "negative"),
])
def test_an_invalid_vm_policy_raises_naming_the_vm(policy, message):
    m = split_host({"vm7": 200})
    with pytest.raises(ValueError, match=rf"'vm7'.*{message}"):
        plan_host(m.view(), {"vm7": policy})


def test_a_policy_for_a_vm_not_on_the_host_raises():
    m = split_host({"vm7": 200})
    with pytest.raises(ValueError, match="'ghost'"):
        plan_host(m.view(), {"ghost": VmPolicy()})


@pytest.mark.parametrize("seed", range(12))
def test_random_hosts_get_plans_within_budget_batch_size_and_dram_room(seed):
    rng = np.random.default_rng(seed)
    m = Machine([(0, True, 24 * MiB, 1 * MiB, 2), (1, True, 24 * MiB, 1 * MiB, 3),
                 (2, False, 128 * MiB, 0, 0), (3, False, 128 * MiB, 0, 1)], unowned={0: 2 * MiB})
    for i in range(4):
        n = int(rng.integers(1000, 6000))
        m.add(f"vm{i}", rng.integers(0, 241, n) * (rng.random(n) < 0.6), rng.choice(4, n, p=[.15, .15, .35, .35]))
    m.add("thp", rng.integers(0, 241, 8), rng.choice(4, 8), page_size=2 * MiB)
    params = PolicyParams(max_bytes_per_round=int(rng.integers(1, 32)) * MiB)
    policies = {"vm0": VmPolicy(weight=2.0), "vm1": VmPolicy(min_dram_bytes=4 * MiB, max_dram_bytes=8 * MiB)}
    view = m.view(k=2048)
    plan = plan_host(view, policies, params)

    again = plan_host(view, policies, params)                                 # deterministic
    assert [(b.kind, b.tenant, b.target_node, b.addresses.tolist()) for b in plan.batches] == \
        [(b.kind, b.tenant, b.target_node, b.addresses.tolist()) for b in again.batches]
    assert plan.promote_bytes + plan.demote_bytes <= params.max_bytes_per_round
    ps = {name: t["page_size"] for name, t in m.tenants.items()}
    assert all(b.addresses.size * ps[b.tenant] <= params.batch_bytes for b in plan.batches)
    migrated = np.concatenate([moved(plan, "demote"), moved(plan, "promote"), np.zeros(0, np.uint64)])
    assert np.unique(migrated).size == migrated.size                          # no page moves twice
    assert sum(plan.dram_target_bytes.values()) <= 46 * MiB - 2 * MiB - 2 * int(params.reserve * 24 * MiB)
    assert 4 * MiB <= plan.dram_target_bytes["vm1"] <= 8 * MiB

    before = {n: m.free(n) for n in (0, 1)}
    m.apply(plan)
    for n in (0, 1):   # promotions only ever use room above watermark + reserve
        assert m.free(n) >= min(before[n], 1 * MiB + int(params.reserve * 24 * MiB))


def test_saturated_bins_of_two_trackers_stand_for_the_same_estimated_rate_and_bin_zero_for_none():
    from pagetide.controller.policies.pagetide import bin_rates
    seed = HostView(host_id="h0", nodes=(), tenants=())
    levels = tuple([0.0] + [min(15.0, 0.2 * 2 ** (b / 2)) for b in range(1, HEAT_BINS)])
    other = HostView(host_id="h0", nodes=(), tenants=(), bin_level=levels)
    a, b = bin_rates(seed), bin_rates(other)
    assert a[0] == b[0] == 0.0
    assert a[-1] == pytest.approx(b[-1])                       # both capped at the same saturated share
    assert (np.diff(a) > 0).all() and (np.diff(b) >= 0).all()
    # a page found in half the scans is touched ~0.69 times per scan interval (1 - e^-lam = 1/2)
    half = HostView(host_id="h0", nodes=(), tenants=(), bin_level=tuple([0.0] + [7.5] * (HEAT_BINS - 1)))
    assert bin_rates(half)[1] == pytest.approx(np.log(2))


def test_a_view_with_a_malformed_bin_level_scale_is_rejected():
    with pytest.raises(ValueError, match="bin_level"):
        HostView(host_id="h0", nodes=(), tenants=(), bin_level=(1.0, 0.5))


def phase_host(old_bin, new_bin):
    """DRAM (32 MiB) full of 32 MiB of vm0's old working set at `old_bin`; 16 MiB of its new set on PMEM at
    `new_bin`."""
    m = one_socket(dram=33 * MiB)
    n_old, n_new = 32 * MiB // PAGE, 16 * MiB // PAGE
    heat = np.concatenate([np.full(n_old, old_bin * 16 + 8), np.full(n_new, new_bin * 16 + 8)])
    node = np.concatenate([np.zeros(n_old), np.ones(n_new)])
    m.add("vm0", heat, node)
    return m


def test_a_working_set_that_moves_off_dram_is_swapped_in_one_round_and_a_stable_one_is_not_churned():
    from pagetide.controller.policies import make_policy
    # round 1: DRAM holds the hot set (bin 10), nothing hot on PMEM; round 2: the phase changed -- the old
    # set has decayed to bin 5, the new one risen to bin 7, closer than the 3-bin hysteresis
    pol = make_policy("pagetide", period_seconds=1.0)
    pol.plan(phase_host(10, 0).view(), {}, NO_RESERVE)
    plan = pol.plan(phase_host(5, 7).view(), {}, NO_RESERVE)
    assert plan.promote_bytes == 16 * MiB and plan.demote_bytes == 16 * MiB
    # the same second round without the drop (a new policy object: no history) keeps the hysteresis
    fresh = make_policy("pagetide", period_seconds=1.0)
    assert fresh.plan(phase_host(5, 7).view(), {}, NO_RESERVE).promote_bytes == 0
    # and a stable working set (same heat two rounds running) is left alone
    stable = make_policy("pagetide", period_seconds=1.0)
    stable.plan(phase_host(5, 7).view(), {}, NO_RESERVE)
    assert stable.plan(phase_host(5, 7).view(), {}, NO_RESERVE).promote_bytes == 0


def test_narrow_swaps_take_pages_one_bin_less_than_the_gap_apart_where_the_dram_page_has_heat():
    gap = PolicyParams().hysteresis_bins
    params = PolicyParams(reserve=0.0, sw_young=False)
    view = balanced(slow_heat=80 + 16 * (gap - 1)).view()      # DRAM bin 5, PMEM bin 5 + gap - 1
    assert plan_host(view, {}, params).promote_bytes == 0
    plan = plan_host(view, {}, params, narrow=frozenset({"vm0"}))
    assert plan.promote_bytes == plan.demote_bytes == 16 * MiB
    # two bins less than the gap is still too close
    assert plan_host(balanced(slow_heat=80 + 16 * (gap - 2)).view(), {}, params,
                     narrow=frozenset({"vm0"})).promote_bytes == 0
    # a DRAM page at heat 0 keeps the full gap
    m = one_socket(dram=17 * MiB)
    m.add("vm0", np.concatenate([np.zeros(4096), np.full(4096, 16 * (gap - 1) + 8)]),
          np.concatenate([np.zeros(4096), np.ones(4096)]))
    assert plan_host(m.view(), {}, params, narrow=frozenset({"vm0"})).promote_bytes == 0


def test_the_policy_makes_narrow_swaps_only_after_a_vms_first_rounds_and_not_when_switched_off():
    from pagetide.controller.policies import make_policy
    from pagetide.controller.policies.pagetide import NARROW_AFTER
    gap = PolicyParams().hysteresis_bins
    view = balanced(slow_heat=80 + 16 * (gap - 1)).view()
    params = PolicyParams(reserve=0.0, sw_young=False)
    pol = make_policy("pagetide", period_seconds=1.0)
    promoted = [pol.plan(view, {}, params).promote_bytes for _ in range(NARROW_AFTER + 2)]
    assert promoted == [0] * NARROW_AFTER + [16 * MiB] * 2
    off = make_policy("pagetide", period_seconds=1.0, narrow_swaps=False)
    assert [off.plan(view, {}, params).promote_bytes for _ in range(NARROW_AFTER + 2)] == [0] * (NARROW_AFTER + 2)


def resident_in_full(view, latency=None):
    """`view` with each tenant's footprint known to be what it holds (resident in full), and with (idle, loaded)
    read latencies per node id where `latency` gives them."""
    from dataclasses import replace
    tenants = tuple(replace(t, footprint_bytes=sum(int(h.sum()) for h in t.hist.values()) * t.page_size)
                    for t in view.tenants)
    nodes = tuple(replace(n, idle_latency_ns=latency[n.id][0], latency_ns=latency[n.id][1]) if latency else n
                  for n in view.nodes)
    return replace(view, nodes=nodes, tenants=tenants)


def idle_pool_host(idle_first_half=True, idle_share=1.0):
    """vm0's 16 MiB of DRAM with `idle_share` of it at heat 0 (the first or second half of its pages when 0.5),
    the rest at bin 7; 16 MiB of it on PMEM at bin 2, one bin less than the gap above heat 0."""
    gap = PolicyParams().hysteresis_bins
    m = one_socket(dram=17 * MiB)
    dram = np.full(4096, 7 * 16 + 8)
    if idle_share == 0.5:
        dram[slice(0, 2048) if idle_first_half else slice(2048, 4096)] = 0
    else:
        dram[:int(4096 * idle_share)] = 0
    m.add("vm0", np.concatenate([dram, np.full(4096, 16 * (gap - 1) + 8)]),
          np.concatenate([np.zeros(4096), np.ones(4096)]))
    return m


def test_narrow_swaps_take_dram_pages_at_heat_0_for_the_vms_named_narrow_idle():
    params = PolicyParams(reserve=0.0, sw_young=False)
    view = idle_pool_host().view()
    vm0 = frozenset({"vm0"})
    assert plan_host(view, {}, params, narrow=vm0).promote_bytes == 0      # heat 0 keeps the full gap
    plan = plan_host(view, {}, params, narrow=vm0, narrow_idle=vm0)
    assert plan.promote_bytes == plan.demote_bytes == 16 * MiB
    assert plan_host(view, {}, params, narrow_idle=vm0).promote_bytes == 0  # only within narrow swaps


def test_the_policy_narrow_swaps_idle_dram_pages_only_where_its_idle_pool_is_steady_and_stays_cold():
    from pagetide.controller.policies import make_policy
    from pagetide.controller.policies.pagetide import NARROW_AFTER, POOL_ROUNDS, QUICK_POOL_ROUNDS
    params = PolicyParams(reserve=0.0, sw_young=False)

    def promoted(views, **options):
        pol = make_policy("pagetide", period_seconds=1.0, idle_swaps=False, **options)
        return [pol.plan(v, {}, params).promote_bytes for v in views]

    steady = resident_in_full(idle_pool_host().view())
    n = POOL_ROUNDS + 2
    # resident in full when first seen: narrow swaps from its first round, the pool trusted after QUICK_POOL_ROUNDS
    assert promoted([steady] * n) == [0] * (QUICK_POOL_ROUNDS - 1) + [16 * MiB] * (n - QUICK_POOL_ROUNDS + 1)
    # footprint unknown (maybe still faulting in): NARROW_AFTER rounds, and the pool watched POOL_ROUNDS
    wait = max(NARROW_AFTER, POOL_ROUNDS - 1)
    assert promoted([idle_pool_host().view()] * n) == [0] * wait + [16 * MiB] * (n - wait)
    # switched off, or a host under bandwidth load (the loaded-latency search places it)
    assert promoted([steady] * n, narrow_idle=False) == [0] * n
    assert promoted([resident_in_full(idle_pool_host().view(), {0: (80.0, 200.0), 1: (305.0, 305.0)})] * n) == [0] * n
    # too small a pool: 20% of DRAM at heat 0
    assert promoted([resident_in_full(idle_pool_host(idle_share=0.2).view())] * n) == [0] * n
    # a pool whose listed pages wake hot the next round (the halves of DRAM take turns): the full gap stays
    a = resident_in_full(idle_pool_host(idle_share=0.5, idle_first_half=True).view())
    b = resident_in_full(idle_pool_host(idle_share=0.5, idle_first_half=False).view())
    assert promoted([a, b] * n) == [0] * (2 * n)
    # the same halves, each steady, pass
    assert promoted([a] * n)[-1] == 8 * MiB


def test_the_reserve_is_dropped_only_where_every_vm_is_resident_in_full_and_no_node_is_loaded():
    from pagetide.controller.policies import make_policy
    params = PolicyParams(sw_young=False)            # the controller's reserve, 0.5% of the DRAM node
    m = one_socket(dram=17 * MiB)
    # 4000 pages in DRAM, 1000 as hot on PMEM: DRAM has room for 96 more above its high watermark, 74 above
    # watermark + reserve
    m.add("vm0", np.full(5000, 80), np.concatenate([np.zeros(4000), np.ones(1000)]))

    def promoted(view, **options):
        return make_policy("pagetide", period_seconds=1.0, **options).plan(view, {}, params).promote_bytes // PAGE

    idle = {0: (80.0, 80.0), 1: (305.0, 305.0)}
    assert promoted(resident_in_full(m.view())) == 96
    assert promoted(resident_in_full(m.view(), idle)) == 96
    assert promoted(m.view()) == 74                                            # footprint not known resident
    assert promoted(resident_in_full(m.view(), {0: (80.0, 200.0), 1: (305.0, 305.0)})) == 74     # DRAM loaded
    assert promoted(resident_in_full(m.view(), {0: (80.0, 80.0), 1: (305.0, 900.0)})) == 74      # PMEM loaded
    assert promoted(resident_in_full(m.view()), resident_reserve=True) == 74
    # a VM still faulting its memory in keeps it
    from dataclasses import replace
    v = resident_in_full(m.view())
    v = replace(v, tenants=tuple(replace(t, footprint_bytes=t.footprint_bytes + 2 * MiB) for t in v.tenants))
    assert promoted(v) == 74
