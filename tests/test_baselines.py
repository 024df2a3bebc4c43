"""The baselines as controller policies (pagetide.controller.baselines): peers of pagetide's policy behind one
interface, tested on the same hand-built hosts as tests/test_policy.py."""

import numpy as np
import pytest

from pagetide.controller.baselines import POLICIES, MemoryOptimizer, MemtierdHeat, make_policy
from pagetide.controller.policy import PolicyParams, heat_bins, plan_host
from test_policy import Machine, balanced, moved, one_socket

KiB, MiB = 1 << 10, 1 << 20
PAGE = 4 * KiB


def hot_set_on_pmem(hot_heat=245):
    """DRAM (64 MiB, 1 MiB high watermark) is full of vm0's idle pages; 8 MiB of hot pages (bin 15 by
    default) and 4 MiB of barely warm ones (bin 1) sit on PMEM next to 16 MiB of idle ones."""
    m = one_socket()
    cold = 63 * MiB // PAGE
    heat = np.concatenate([np.zeros(cold), np.full(2048, hot_heat), np.full(1024, 20), np.zeros(4096)])
    addr = m.add("vm0", heat, np.concatenate([np.zeros(cold), np.ones(2048 + 1024 + 4096)]))
    return m, addr[:cold], addr[cold:cold + 2048]


def levels(m, tenant, addresses):
    t = m.tenants[tenant]
    return heat_bins(t["heat"][((addresses - t["addr"][0]) // np.uint64(PAGE)).astype(np.int64)])


def check_executable(plan, m, params=PolicyParams()):
    """What proxy.py relies on: <= batch_bytes per call, one target node per batch and of the right tier,
    demotions before promotions, no page moved twice."""
    kinds = [b.kind for b in plan.batches if b.kind != "mark"]
    assert kinds == sorted(kinds, key=lambda k: k != "demote")
    fast = {n[0] for n in m.nodes if n[1]}
    for b in plan.batches:
        assert b.addresses.dtype == np.uint64 and 0 < b.addresses.size
        assert b.addresses.size * m.tenants[b.tenant]["page_size"] <= params.batch_bytes
        assert (b.target_node in fast) == (b.kind != "demote")
    both = np.concatenate([moved(plan, "demote"), moved(plan, "promote")])
    assert np.unique(both).size == both.size


@pytest.mark.parametrize("name", sorted(set(POLICIES) - {"none"}))
def test_every_policy_promotes_a_pmem_hot_set_and_demotes_cold_dram_pages_to_make_room(name):
    m, cold, hot = hot_set_on_pmem()
    plan = make_policy(name).plan(m.view(), {}, PolicyParams())

    assert set(moved(plan, "promote").tolist()) == set(hot.tolist())
    assert plan.promote_bytes == 8 * MiB
    demoted = moved(plan, "demote")
    assert demoted.size >= 2048 and set(demoted.tolist()) <= set(cold.tolist())
    assert plan.demote_bytes == demoted.size * PAGE
    check_executable(plan, m)
    m.apply(plan)
    assert m.free(0) >= 1 * MiB


def test_the_none_policy_leaves_every_page_to_the_kernel():
    m, _, _ = hot_set_on_pmem()
    plan = make_policy("none").plan(m.view(), {}, PolicyParams())
    assert (plan.batches, plan.promote_bytes, plan.demote_bytes) == ((), 0, 0)
    assert set(plan.dram_target_bytes) == {t.name for t in m.view().tenants}


def test_pagetide_is_plan_host():
    m, _, _ = hot_set_on_pmem(hot_heat=200)
    a, b = make_policy("pagetide").plan(m.view(), {}, PolicyParams()), plan_host(m.view(), {})
    assert [(x.kind, x.target_node, x.addresses.tolist()) for x in a.batches] == \
        [(x.kind, x.target_node, x.addresses.tolist()) for x in b.batches]


# ---------------------------------------------------------------------------------------- memory-optimizer

def test_memory_optimizer_swaps_hot_for_cold_at_least_two_levels_apart_and_leaves_warm_pages():
    m, _, hot = hot_set_on_pmem(hot_heat=200)                  # bin 12
    plan = MemoryOptimizer().plan(m.view(), {}, PolicyParams())
    # DRAM sits at its target (63 of 91 MiB scanned, the host's usable DRAM share), so the budget is split
    # evenly and spent on swaps; the bin-1 pages are one level above the idle DRAM pages and stay
    assert set(moved(plan, "promote").tolist()) == set(hot.tolist())
    assert plan.demote_bytes == plan.promote_bytes == 8 * MiB
    assert levels(m, "vm0", moved(plan, "promote")).min() - levels(m, "vm0", moved(plan, "demote")).max() >= 2
    assert plan.dram_target_bytes == {"vm0": int(63 / 91 * 91 * MiB) // PAGE * PAGE}


def test_memory_optimizer_never_swaps_pages_one_level_apart():
    quiet = MemoryOptimizer().plan(balanced(slow_heat=96).view(), {}, PolicyParams())      # bins 6 vs 5
    assert quiet.batches == () and quiet.promote_bytes == quiet.demote_bytes == 0
    swapped = MemoryOptimizer().plan(balanced(slow_heat=112).view(), {}, PolicyParams())   # bins 7 vs 5
    assert swapped.promote_bytes == swapped.demote_bytes == 16 * MiB
    # it is the anti-thrash gap that held the one-level swap back
    eager = MemoryOptimizer(anti_thrash_threshold=1).plan(balanced(slow_heat=96).view(), {}, PolicyParams())
    assert eager.promote_bytes == eager.demote_bytes == 16 * MiB


def below_target():
    """64 MiB scanned, 16 MiB of it idle on DRAM; 32 MiB hot and 16 MiB idle on PMEM; DRAM has room."""
    m = one_socket(dram=64 * MiB)
    heat = np.concatenate([np.zeros(4096), np.full(8192, 245), np.zeros(4096)])
    m.add("vm0", heat, np.concatenate([np.zeros(4096), np.ones(12288)]))
    return m


@pytest.mark.parametrize("limit, promote, demote", [
    (8 * MiB, 8 * MiB, 0),            # delta 16 MiB clamped to the 8 MiB budget: all of it promotes
    (24 * MiB, 20 * MiB, 4 * MiB),    # (24 + 16) / 2 up, (24 - 16) / 2 down: 16 MiB fill, 4 MiB swapped
])
def test_memory_optimizer_splits_its_period_budget_by_the_distance_to_the_dram_target(limit, promote, demote):
    policy = MemoryOptimizer(dram_percent=50, one_period_migration_size=limit)
    plan = policy.plan(below_target().view(k=8192), {}, PolicyParams())
    assert plan.dram_target_bytes == {"vm0": 32 * MiB}
    assert (plan.promote_bytes, plan.demote_bytes) == (promote, demote)


def test_memory_optimizer_stays_within_the_hosts_migration_limit_shared_by_its_vms():
    m, _, _ = hot_set_on_pmem()
    m.add("vm1", np.full(2048, 245), np.ones(2048))
    params = PolicyParams(max_bytes_per_round=4 * MiB)
    plan = MemoryOptimizer().plan(m.view(), {}, params)
    assert 0 < plan.promote_bytes + plan.demote_bytes <= 4 * MiB
    check_executable(plan, m, params)


def test_memory_optimizer_gives_every_vm_the_same_dram_percent_whatever_its_heat():
    # 16 MiB of usable DRAM for 32 MiB scanned: 50% each, so the barely warm VM takes as much DRAM as the
    # hot one (pagetide would give it all to the hot one)
    m = one_socket(dram=17 * MiB)
    hot = m.add("hot", np.full(4096, 245), np.ones(4096))
    warm = m.add("warm", np.full(4096, 20), np.ones(4096))
    plan = MemoryOptimizer().plan(m.view(), {}, PolicyParams())
    assert plan.dram_target_bytes == {"hot": 8 * MiB, "warm": 8 * MiB}
    promoted = moved(plan, "promote")
    assert np.isin(promoted, hot).sum() == np.isin(promoted, warm).sum() == 2048
    assert plan_host(m.view(), {}, PolicyParams(reserve=0.0)).dram_target_bytes == {"hot": 16 * MiB, "warm": 0}


# -------------------------------------------------------------------------------------------------- memtierd

def test_memtierd_promotes_a_warm_page_only_once_its_heat_has_built_up():
    m, _, hot = hot_set_on_pmem(hot_heat=200)                  # level 12: new = 0.8, class 8 of 10
    policy = MemtierdHeat()
    first = policy.plan(m.view(), {}, PolicyParams())
    assert first.promote_bytes == 0
    assert (policy.heat_class("vm0", hot) == 8).all()
    second = policy.plan(m.view(), {}, PolicyParams())         # 0.8 + 0.8 * 0.9513 > HeatMax
    assert set(moved(second, "promote").tolist()) == set(hot.tolist())


def test_memtierd_heat_decays_across_rounds_and_a_page_no_longer_accessed_is_demoted():
    m = one_socket()
    addr = m.add("vm0", np.full(1024, 245), np.zeros(1024))
    policy = MemtierdHeat()
    classes = []
    for r in range(4):
        plan = policy.plan(m.view(), {}, PolicyParams())
        classes.append(int(policy.heat_class("vm0", addr[:1])[0]))
        if r < 3:
            assert plan.demote_bytes == 0
        m.tenants["vm0"]["heat"][:] = 0                        # never accessed after the first round
    # 1.0, then x 0.9513 a second: 0.951, 0.905 stay in class 9; 0.861 falls to class 8 and moves
    assert classes == [9, 9, 9, 8]
    assert set(moved(plan, "demote").tolist()) == set(addr.tolist())


def test_memtierd_keeps_cooling_a_page_that_is_no_longer_reported():
    m = one_socket()
    m.add("vm0", np.full(16, 245), np.zeros(16))
    policy = MemtierdHeat(period_seconds=10)
    policy.plan(m.view(), {}, PolicyParams())
    gone = one_socket()
    gone.add("vm0", np.zeros(0), np.zeros(0))                  # same tenant, no candidates any more
    addr = m.tenants["vm0"]["addr"][:1]
    seen = []
    for _ in range(3):
        seen.append(float(policy.heat("vm0", addr)[0]))
        policy.plan(gone.view(), {}, PolicyParams())
    assert seen == pytest.approx([1.0, 0.9513 ** 10, 0.9513 ** 20])
    assert int(policy.heat_class("vm0", addr)[0]) == int(10 * 0.9513 ** 30)
    policy.plan(one_socket().view(), {}, PolicyParams())       # the tenant left the host: its state goes
    assert policy.heatmap == {}


def test_memtierd_moves_at_most_bandwidth_times_period_making_room_before_promoting():
    m, _, hot = hot_set_on_pmem()
    policy = MemtierdHeat(bandwidth=1e6)                       # 10 kB per 10 ms step, 1 MB per 1 s round
    assert policy.bytes_per_round == 1_000_000
    plan = policy.plan(m.view(), {}, PolicyParams())
    assert plan.promote_bytes + plan.demote_bytes <= 1_000_000
    # DRAM is full: every promotion needs a demotion first
    assert plan.promote_bytes == 122 * PAGE and plan.demote_bytes == 122 * PAGE
    assert set(moved(plan, "promote").tolist()) <= set(hot.tolist())
    check_executable(plan, m)
    # and the host's own limit caps the mover
    capped = MemtierdHeat().plan(m.view(), {}, PolicyParams(max_bytes_per_round=2 * MiB))
    assert capped.promote_bytes + capped.demote_bytes == 2 * MiB


# -------------------------------------------------------------------------------------------------- registry

def test_make_policy_rejects_unknown_names_and_options_listing_the_valid_ones():
    with pytest.raises(ValueError, match="'hemem'.*memory-optimizer, memtierd, none, pagetide"):
        make_policy("hemem")
    with pytest.raises(ValueError, match="'memtierd'.*heat_max_x.*valid: .*heat_max"):
        make_policy("memtierd", heat_max_x=2.0)
    with pytest.raises(ValueError, match="dram_percent"):
        make_policy("memory-optimizer", dram_percent=150)


def test_make_policy_hands_the_period_to_the_policies_that_keep_time():
    assert make_policy("memtierd", period_seconds=0.5, heat_classes=4).period_seconds == 0.5
    assert make_policy("memory-optimizer", period_seconds=0.5, dram_percent=25).dram_percent == 25
    assert make_policy("pagetide", period_seconds=0.5).name == "pagetide"
    assert {make_policy(n).name for n in POLICIES} == set(POLICIES)


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("seed", range(6))
def test_every_policy_is_deterministic_and_plans_within_budget_batch_size_and_dram_room(name, seed):
    rng = np.random.default_rng(seed)
    m = Machine([(0, True, 24 * MiB, 1 * MiB, 2), (1, True, 24 * MiB, 1 * MiB, 3),
                 (2, False, 128 * MiB, 0, 0), (3, False, 128 * MiB, 0, 1)], unowned={0: 2 * MiB})
    for i in range(4):
        n = int(rng.integers(1000, 6000))
        m.add(f"vm{i}", rng.integers(0, 256, n) * (rng.random(n) < 0.6), rng.choice(4, n, p=[.15, .15, .35, .35]))
    m.add("thp", rng.integers(0, 256, 8), rng.choice(4, 8), page_size=2 * MiB)
    params = PolicyParams(max_bytes_per_round=int(rng.integers(1, 32)) * MiB)
    views = [m.view(k=2048), m.view(k=2048)]

    plans = []
    for _ in range(2):                                          # two fresh objects, two rounds each
        policy = make_policy(name)
        plans.append([policy.plan(v, {}, params) for v in views])
    key = lambda p: [(b.kind, b.tenant, b.target_node, b.addresses.tolist()) for b in p.batches]  # noqa: E731
    assert [key(p) for p in plans[0]] == [key(p) for p in plans[1]]

    plan = plans[0][-1]
    assert plan.promote_bytes + plan.demote_bytes <= params.max_bytes_per_round
    check_executable(plan, m, params)
    before = {n: m.free(n) for n in (0, 1)}
    m.apply(plan)
    for n in (0, 1):   # promotions only ever use room above the high watermark
        assert m.free(n) >= min(before[n], 1 * MiB)
