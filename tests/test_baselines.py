"""The baselines as controller policies (pagetide.controller.policies): peers of pagetide's policy behind one
interface, tested on the same hand-built hosts as tests/test_policy.py; and the registry that makes them."""

import numpy as np
import pytest

from pagetide.controller.policies import POLICIES, PolicyParams, ReportRequest, make_policy
from pagetide.controller.policies.hemem import HeMem
from pagetide.controller.policies.memory_optimizer import MemoryOptimizer
from pagetide.controller.policies.memtierd import MemtierdHeat
from pagetide.controller.policies.memtis import Memtis
from pagetide.controller.policies.pagetide import plan_host
from pagetide.controller.policies.view import heat_bins
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


# MEMTIS is left out: its hot bins are sized to DRAM, so while everything sampled fits it promotes the warm
# bin-1 pages too (test_memtis_promotes_every_sampled_page_while_all_of_them_fit_in_dram)
@pytest.mark.parametrize("name", sorted(set(POLICIES) - {"none", "memtis"}))
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


# ------------------------------------------------------------------------------------------- HeMem and MEMTIS

@pytest.mark.parametrize("name", ["hemem", "memtis"])
def test_hemem_and_memtis_promote_the_hot_set_round_by_round_within_the_migration_limit_and_batch_size(name):
    m, cold, hot = hot_set_on_pmem()
    params = PolicyParams(max_bytes_per_round=3 * MiB, batch_bytes=256 * KiB)
    policy = make_policy(name)
    waiting = set(hot.tolist())
    for _ in range(6):                                         # 8 MiB of hot pages, 1.5 MiB (384 pages) a round
        plan = policy.plan(m.view(), {}, params)
        up = moved(plan, "promote")
        # hottest first; HeMem moves only the hot set, MEMTIS fills the rest of the round with the warm pages
        # that fit in its hot bins too
        n_hot = min(len(waiting), 384)
        assert set(up[:n_hot].tolist()) <= waiting
        assert up.size == (n_hot if name == "hemem" else 384)
        waiting -= set(up.tolist())
        # DRAM is full: every promotion takes the room of a demoted cold page
        assert plan.promote_bytes == plan.demote_bytes == up.size * PAGE
        assert set(moved(plan, "demote").tolist()) <= set(cold.tolist())
        check_executable(plan, m, params)
        m.apply(plan)
        assert m.free(0) >= 1 * MiB
    assert not waiting


def full_dram_of_hot_and_warm_pages():
    """DRAM (16 MiB, 1 MiB high watermark) holds 4 MiB of level-15 and 6 MiB of level-12 pages; 6 MiB of
    level-15 pages wait on PMEM, more than the 5 MiB of room."""
    m = one_socket(dram=16 * MiB)
    heat = np.concatenate([np.full(1024, 245), np.full(1536, 200), np.full(1536, 245)])
    addr = m.add("vm0", heat, np.concatenate([np.zeros(2560), np.ones(1536)]))
    return m, addr[2560:]


@pytest.mark.parametrize("name", ["hemem", "memtis"])
def test_hemem_and_memtis_never_fill_dram_past_its_high_watermark(name):
    m, waiting = full_dram_of_hot_and_warm_pages()
    plan = make_policy(name).plan(m.view(), {}, PolicyParams())
    # nothing on DRAM is cold (HeMem: >= 8 samples; MEMTIS: the level-12 pages are its warm band), so only
    # the room above the watermark is filled
    assert plan.demote_bytes == 0 and plan.promote_bytes == 5 * MiB
    assert set(moved(plan, "promote").tolist()) <= set(waiting.tolist())
    m.apply(plan)
    assert m.free(0) == 1 * MiB


def test_hemem_is_hot_at_eight_read_samples_one_level_a_scan():
    m = one_socket()
    addr = m.add("vm0", np.repeat([245, 128, 112, 64], 256), np.ones(1024))     # levels 15, 8, 7, 4
    policy = HeMem()
    first = policy.plan(m.view(), {}, PolicyParams())
    assert policy.samples("vm0", addr[::256])[0].tolist() == [15, 8, 7, 4]
    assert set(moved(first, "promote").tolist()) == set(addr[:512].tolist())
    assert policy.coolings == {"vm0": 0}


def test_hemem_counts_a_page_hot_at_four_write_samples():
    policy = HeMem()
    addr = np.array([4096, 8192, 12288], dtype=np.uint64)
    policy.observe("vm0", addr, np.array([7, 0, 0]), np.array([0, 4, 3]))
    assert policy.is_hot(*policy.samples("vm0", addr)).tolist() == [False, True, False]


def test_hemem_halves_every_count_of_a_vm_once_one_reaches_eighteen():
    m = one_socket()
    addr = m.add("vm0", np.repeat([64, 16], 256), np.ones(512))                  # levels 4 and 1, on PMEM
    other = m.add("vm1", np.full(16, 64), np.ones(16))
    policy = HeMem()
    seen, promoted = [], []
    for _ in range(5):
        plan = policy.plan(m.view(), {}, PolicyParams())
        m.apply(plan)
        seen.append(policy.samples("vm0", addr[[0, -1]])[0].tolist())
        promoted.append(plan.promote_bytes)
    # 4, 8, 12, 16, then 20 >= 18: both halved (20 -> 10, 5 -> 2)
    assert seen == [[4, 1], [8, 2], [12, 3], [16, 4], [10, 2]]
    assert policy.coolings == {"vm0": 1, "vm1": 1}
    # level 4 is hot on its second round (8 samples); level 1 never before a cooling
    assert promoted == [0, (256 + 16) * PAGE, 0, 0, 0]
    assert policy.samples("vm1", other[:1])[0].tolist() == [10]
    policy.plan(one_socket().view(), {}, PolicyParams())       # the VMs left: their counters go
    assert policy.counts.tables == {} and policy.coolings == {}


def test_memtis_promotes_every_sampled_page_while_all_of_them_fit_in_dram():
    m, cold, hot = hot_set_on_pmem()
    policy = Memtis()
    plan = policy.plan(m.view(), {}, PolicyParams())
    # 12 MiB sampled (bins 8 and 4) fit in 61 MiB: the hot threshold drops to its minimum, bin 1
    assert policy.hot_threshold == 1
    warm = m.tenants["vm0"]["addr"][cold.size + hot.size:cold.size + hot.size + 1024]
    assert set(moved(plan, "promote").tolist()) == set(hot.tolist()) | set(warm.tolist())
    # hottest first: the level-15 pages lead
    assert set(moved(plan, "promote")[:2048].tolist()) == set(hot.tolist())
    assert plan.promote_bytes == plan.demote_bytes == 12 * MiB
    assert set(moved(plan, "demote").tolist()) <= set(cold.tolist())
    check_executable(plan, m)


# the threshold is the bin just above the hottest one that does not fit (the empty bins between count as fitting)
@pytest.mark.parametrize("middle, watermark, unowned, hot_bin, promoted", [
    (22 * MiB, 0.03, 0, 7, 40 * MiB),         # 40 + 22 MiB > 63 MiB - 3%: the level-6 pages stay slow
    (22 * MiB, 0.0, 0, 5, 62 * MiB),          # without the promotion watermark they fit
    (20 * MiB, 0.03, 0, 5, 60 * MiB),         # 40 + 20 MiB fit in 61.1 MiB
    (20 * MiB, 0.03, 4 * MiB, 7, 40 * MiB),   # 4 MiB held outside the VMs: 59 MiB - 3% is too little
])
def test_memtis_fits_its_hot_threshold_to_the_dram_budget_minus_three_percent(middle, watermark, unowned, hot_bin,
                                                                              promoted):
    m = one_socket(unowned={0: unowned})
    n_mid = middle // PAGE
    # all on PMEM: 40 MiB at level 15 (count 21 x 15 in the first round: bin 8), the middle at level 6
    # (bin 6), 20 MiB at level 1 (bin 4)
    m.add("vm0", np.concatenate([np.full(10240, 245), np.full(n_mid, 96), np.full(5120, 16)]),
          np.ones(10240 + n_mid + 5120))
    policy = Memtis(promotion_watermark=watermark)
    plan = policy.plan(m.view(k=1 << 15), {}, PolicyParams())
    budget = 63 * MiB - unowned
    assert policy.hot_budget == budget - int(watermark * budget)
    assert policy.hot_threshold == hot_bin
    assert plan.promote_bytes == promoted and plan.demote_bytes == 0
    assert m.free(0) - promoted >= 1 * MiB


def test_memtis_keeps_its_warm_band_in_place_and_demotes_colder_pages_to_make_room():
    # DRAM (16 MiB, 1 MiB watermark) is full: 4 MiB at level 12 (bin 7), 11 MiB at level 6 (bin 6); PMEM
    # holds 8 MiB at level 15 (bin 8) and 3 MiB at level 12. Bin 8 fits in 15 MiB - 3%, bin 7 with it
    # does not: hot bin 8, and as 8 MiB is under 75% of the budget, bin 7 is the warm band
    m = one_socket(dram=16 * MiB)
    warm_dram = m.add("dram", np.concatenate([np.full(1024, 200), np.full(2816, 96)]), np.zeros(3840))[:1024]
    slow = m.add("slow", np.concatenate([np.full(2048, 245), np.full(768, 200)]), np.ones(2816))
    policy = Memtis()
    plan = policy.plan(m.view(), {}, PolicyParams())
    assert (policy.hot_threshold, policy.warm_threshold) == (8, 7)
    assert set(moved(plan, "promote").tolist()) == set(slow[:2048].tolist())
    demoted = moved(plan, "demote")
    assert plan.demote_bytes == 8 * MiB and not np.isin(demoted, warm_dram).any()
    check_executable(plan, m)


def test_memtis_halves_every_count_each_cooling_period():
    m = one_socket()
    addr = m.add("vm0", np.full(16, 245), np.zeros(16))                        # level 15, on DRAM
    policy = Memtis(cooling_rounds=2)
    seen = []
    for r in range(7):
        if r == 3:
            m.tenants["vm0"]["heat"][:] = 0                                   # no longer accessed
        policy.plan(m.view(), {}, PolicyParams())
        seen.append(int(policy.access_counts("vm0", addr[:1])[0]))
    # first seen at the steady count (2 + 0 + 1) x 15; +15 a round; halved at the start of rounds 3, 5, 7
    assert seen == [45, 60, 45, 45, 22, 22, 11]
    assert policy.coolings == 3


def test_hemem_and_memtis_reject_invalid_options_naming_them():
    with pytest.raises(ValueError, match="cooling_threshold 8 must exceed hot_read_threshold 8"):
        make_policy("hemem", cooling_threshold=8)
    with pytest.raises(ValueError, match=r"hemem\.hot_write_threshold: must be an integer, got 2\.5"):
        make_policy("hemem", hot_write_threshold=2.5)
    with pytest.raises(ValueError, match=r"hemem\.cooling_rounds: unknown key for policy 'hemem'; "
                                         r"valid keys: hot_read_threshold"):
        make_policy("hemem", cooling_rounds=4)
    with pytest.raises(ValueError, match=r"memtis\.promotion_watermark: must be within \[0\.0%, 100\.0%\], got 3"):
        make_policy("memtis", promotion_watermark=3)
    with pytest.raises(ValueError, match=r"memtis\.cooling_rounds: must be within \[1, inf\], got 0"):
        make_policy("memtis", cooling_rounds=0)
    with pytest.raises(ValueError, match=r"memtis\.promotion_watermark: must be below 100%, got 1\.0"):
        make_policy("memtis", promotion_watermark="100%")
    assert make_policy("memtis", period_seconds=0.5, cooling_rounds=5).cooling_rounds == 5
    assert make_policy("hemem", period_seconds=0.5, cooling_threshold=30).cooling_threshold == 30


# -------------------------------------------------------------------------------------------------- registry

def test_make_policy_rejects_unknown_names_and_options_listing_the_valid_ones():
    with pytest.raises(ValueError, match="'autotiering'.*hemem, memory-optimizer, memtierd, memtis, none, pagetide"):
        make_policy("autotiering")
    with pytest.raises(ValueError, match=r"memtierd\.heat_max_x: unknown key for policy 'memtierd'; "
                                         r"valid keys: .*heat_max"):
        make_policy("memtierd", heat_max_x=2.0)
    with pytest.raises(ValueError, match="dram_percent"):
        make_policy("memory-optimizer", dram_percent=150)


def test_make_policy_parses_options_given_as_strings_in_human_units():
    p = make_policy("pagetide", hysteresis_bins="3", reserve="0.5%", sw_young="off")
    assert p.overrides == {"reserve": 0.005, "hysteresis_bins": 3, "sw_young": False}
    m = make_policy("memtierd", period_seconds=0.5, bandwidth="100MB/s", mover_interval="10ms", heat_classes="4")
    assert (m.bandwidth, m.mover_interval, m.heat_classes, m.period_seconds) == (100e6, 0.01, 4, 0.5)
    assert m.bytes_per_round == make_policy("memtierd", period_seconds=0.5).bytes_per_round == 50_000_000
    o = make_policy("memory-optimizer", one_period_migration_size="64MiB", dram_percent="40")
    assert (o.one_period_migration_size, o.dram_percent) == (64 * MiB, 40.0)
    assert make_policy("hemem", cooling_threshold="30").cooling_threshold == 30


def test_make_policy_rejects_an_unknown_key_or_a_bad_value_naming_the_policy_the_key_and_the_valid_keys():
    with pytest.raises(ValueError, match=r"^pagetide\.hysteresis: unknown key for policy 'pagetide'; valid keys: "
                                         r"reserve, hysteresis_bins, hysteresis_z, min_promote_bin, sw_young, max_mark_pages, "
                                         r"mark_every, idle_swaps, idle_rounds, thrash_guard, narrow_swaps, narrow_idle, "
                                         r"resident_reserve$"):
        make_policy("pagetide", hysteresis="3")
    with pytest.raises(ValueError, match=r"^none\.mark_every: unknown key for policy 'none'; valid keys: none$"):
        make_policy("none", mark_every=2)
    with pytest.raises(ValueError, match=r"^hemem\.hot_read_threshold: must be an integer, got 'eight'$"):
        make_policy("hemem", hot_read_threshold="eight")
    with pytest.raises(ValueError, match=r"^memtierd\.bandwidth: invalid bandwidth 'fast'"):
        make_policy("memtierd", bandwidth="fast")


def test_a_policy_asks_for_candidate_lists_that_keep_the_heat_report_within_its_budget():
    params = PolicyParams()
    for name in POLICIES:
        p = make_policy(name)
        # 768 KiB of report over 33 bytes per page in a tenant's three lists
        assert p.report_request(0, params, 4096).max_candidates == 4096          # 23831 would fit
        assert p.report_request(10, params, 4096).max_candidates == 2383
        assert p.report_request(100, params, 4096).max_candidates == 238
        assert p.report_request(100, params, 100).max_candidates == 100
    # the baselines leave hot_fast unset (the agent sends max_candidates); pagetide asks for its marks' share
    assert make_policy("memtierd").report_request(3, params, 4096) == ReportRequest(4096, None)
    assert make_policy("pagetide").report_request(3, params, 4096) == ReportRequest(4096, 1366)
    assert make_policy("pagetide", max_mark_pages=1000).report_request(100, params, 4096) == ReportRequest(238, 10)
    assert make_policy("pagetide", sw_young=False).report_request(3, params, 4096) == ReportRequest(4096, 0)


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


def test_pagetide_options_override_the_controllers_params_and_size_the_mark_candidates():
    p = make_policy("pagetide", period_seconds=1.0, hysteresis_bins=5, max_mark_pages=1000)
    assert p.overrides == {"hysteresis_bins": 5, "max_mark_pages": 1000}
    assert p.mark_candidates(3, PolicyParams()) == 334                 # ceil(1000 / 3) per tenant
    assert make_policy("pagetide", sw_young=False).mark_candidates(3, PolicyParams()) == 0
    assert make_policy("pagetide").mark_candidates(4, PolicyParams(max_mark_pages=4096)) == 1024
    for bad in ({"hysteresis_bins": 0}, {"reserve": 1.5}, {"max_mark_pages": -1}, {"mark_every": 0}):
        with pytest.raises(ValueError):
            make_policy("pagetide", **bad)


def test_pagetide_marks_hot_dram_pages_every_mark_every_rounds():
    m = one_socket()
    m.add("vm0", np.full(256, 200), np.zeros(256))                     # hot pages already on DRAM
    p = make_policy("pagetide", mark_every=3)
    asked, marked = [], []
    for _ in range(7):
        asked.append(p.mark_candidates(1, PolicyParams()))
        marked.append(sum(len(b.addresses) for b in p.plan(m.view(), {}, PolicyParams()).batches
                          if b.kind == "mark"))
    assert asked == [4096] * 7                      # constant, so the agent's prebuilt report matches
    assert marked == [256, 0, 0, 256, 0, 0, 256]
