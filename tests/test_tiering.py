import errno

import numpy as np
import pytest
from hypothesis import given, strategies as st

from pagetide.common import units
from pagetide.agent.host import MPOL_MF_MOVE, Host
from pagetide.agent.pageflags import PAGE_SIZE, PG_ACTIVE
from pagetide.agent.scenario import ScenarioError
from pagetide.agent.sim import simulate

from helpers import small_scenario
from test_host import scenarios

MiB = 1 << 20


class Pages:
    """A workload stub that reads the page offsets `pick(tick)` returns, each once per tick."""
    name = "pages"
    accesses_per_sample = 1.0

    def __init__(self, pick):
        self.pick = pick

    def sample(self, tick):
        pages = np.asarray(self.pick(tick), dtype=np.int64)
        return pages, np.zeros(pages.size, dtype=bool)


def run(h, ticks):
    for _ in range(ticks):
        h.run_tick()
        h.check_invariants()


def on_dram(h, t, pages):
    return int((h.node[t.start + pages] == 0).sum())


def full_dram_host(tiering):
    """64 MiB of DRAM full after boot; the 96 MiB tenant's first-touched third was demoted to PMEM."""
    h = Host(small_scenario(kernel={"tiering": tiering}))
    h.boot()
    t = h.tenants[0]
    return h, t, np.flatnonzero(h.node[t.start:t.end] == 1)


def roomy_dram_host(tiering, n_slow):
    """256 MiB of DRAM with room to spare; the tenant's first n_slow pages moved to PMEM after boot."""
    h = Host(small_scenario(dram="256MiB", slow="256MiB", kernel={"tiering": tiering}))
    h.boot()
    t = h.tenants[0]
    slow = np.arange(n_slow)
    res = h.move_pages(0, t.vma_start + slow * PAGE_SIZE, np.ones(n_slow), MPOL_MF_MOVE)
    assert (res.status == 1).all()
    return h, t, slow


def test_nbt_promotes_a_hot_set_on_pmem_within_a_few_scan_periods_and_leaves_cold_pages_there():
    h, t, slow = full_dram_host({"mode": "nbt"})
    hot, cold = slow[:256], slow[256:]                     # 1 MiB hot, ~32 MiB never touched again
    t.workload = Pages(lambda tick: hot)
    run(h, 10)                                             # the first scan runs at the end of the first second
    assert on_dram(h, t, hot) == 0
    run(h, 40)                                             # four more scan periods
    assert on_dram(h, t, hot) == hot.size
    assert on_dram(h, t, cold) == 0
    # each scan arms the slow pages; each hot page faults once per period until promoted
    assert h.vmstat["pgpromote_success"] == hot.size
    assert h.vmstat["numa_hint_faults"] == h.vmstat["pgpromote_candidate"] > hot.size
    assert t.stats.hint_fault_time == pytest.approx(h.vmstat["numa_hint_faults"] * 1e-6)
    assert t.stats.promoted_pages == hot.size


def test_without_a_tiering_mode_nothing_is_promoted():
    h, t, slow = full_dram_host({"mode": "none"})
    t.workload = Pages(lambda tick: slow[:256])
    run(h, 50)
    assert on_dram(h, t, slow[:256]) == 0
    assert h.vmstat["pgpromote_success"] == h.vmstat["numa_hint_faults"] == 0


def test_nbt_promotion_rate_limit_caps_promoted_bytes_per_second():
    promoted = {}
    for limit in ("64GiB/s", "2MiB/s"):
        h, t, slow = roomy_dram_host({"mode": "nbt", "promote_rate_limit": limit}, 8192)
        t.workload = Pages(lambda tick: slow)              # 32 MiB on PMEM, all hot
        run(h, 35)                                         # faults after the scans at 1 s, 2 s and 3 s
        promoted[limit] = h.vmstat["pgpromote_success"] * PAGE_SIZE
        assert h.vmstat["pgpromote_candidate"] >= promoted[limit] // PAGE_SIZE
    assert promoted["64GiB/s"] == 32 * MiB                 # everything, on the first hint faults
    assert promoted["2MiB/s"] <= 3 * 2 * MiB               # one 1 s window per scan period
    assert promoted["2MiB/s"] >= 3 * 2 * MiB - 3 * PAGE_SIZE
    assert promoted["64GiB/s"] >= 5 * promoted["2MiB/s"]


def test_nbt_does_not_promote_pages_first_used_long_after_the_scan():
    h, t, slow = roomy_dram_host({"mode": "nbt", "scan_period": "10s"}, 2048)
    early, late = slow[:1024], slow[1024:]
    # scanned at the end of tick 99; early pages are used 0.5 s later, late pages 1.5 s later
    t.workload = Pages(lambda tick: early if tick == 105 else late if tick == 115 else [])
    run(h, 120)
    assert on_dram(h, t, early) == early.size
    assert on_dram(h, t, late) == 0
    assert h.vmstat["numa_hint_faults"] == 2048 and h.vmstat["pgpromote_candidate"] == 1024


def test_tpp_promotes_only_pages_that_fault_twice():
    h, t, slow = roomy_dram_host({"mode": "tpp"}, 2048)
    steady, burst = slow[:1024], slow[1024:]
    # steady pages are used all the time; burst pages only right after the first scan
    t.workload = Pages(lambda tick: np.concatenate([steady, burst]) if tick in (10, 11) else steady)
    run(h, 12)
    # the first hint fault only activates a page
    assert on_dram(h, t, slow) == 0
    assert (h.flags[t.start + slow] & PG_ACTIVE).all()
    run(h, 20)
    assert on_dram(h, t, steady) == steady.size
    assert on_dram(h, t, burst) == 0
    assert h.vmstat["pgpromote_success"] == steady.size


def test_nbt_promotes_pages_that_fault_once():
    h, t, slow = roomy_dram_host({"mode": "nbt"}, 2048)
    t.workload = Pages(lambda tick: slow if tick in (10, 11) else [])
    run(h, 32)
    assert on_dram(h, t, slow) == slow.size


def test_tpp_keeps_the_demotion_watermark_free_by_default():
    assert small_scenario(kernel={"tiering": {"mode": "tpp"}}).kernel.demote_scale_factor == 0.02
    s = small_scenario(kernel={"tiering": {"mode": "tpp"}, "demote_scale_factor": "1%"})
    assert s.kernel.demote_scale_factor == 0.01
    assert small_scenario(kernel={"tiering": {"mode": "nbt"}}).kernel.demote_scale_factor == 0.0


@pytest.mark.parametrize("tiering,key,reason", [
    ({"mode": "autonuma"}, "host.kernel.tiering.mode", "unknown tiering mode 'autonuma'"),
    ({"mode": "nbt", "scan_sise": "256MB"}, "host.kernel.tiering.scan_sise", "unknown key"),
    ({"mode": "none", "scan_size": "256MB"}, "host.kernel.tiering.scan_size", "unknown key"),
    ({"mode": "nbt", "scan_period": "90s"}, "host.kernel.tiering.scan_period", "within [1 s, 1 min]"),
    ({"mode": "tpp", "promote_rate_limit": "fast"}, "host.kernel.tiering.promote_rate_limit", "fast"),
    ("nbt", "host.kernel.tiering", "expected a mapping"),
])
def test_invalid_tiering_settings_are_rejected_naming_the_key(tiering, key, reason):
    with pytest.raises(ScenarioError) as e:
        small_scenario(kernel={"tiering": tiering})
    assert e.value.key == key
    assert reason in e.value.reason


HOTSET_VM = {"name": "vm0", "footprint": "96MiB", "workload": {"type": "hotset", "samples": 4096}}
# DAMON tracks regions, so DAMOS needs cold memory in whole regions: 2 MiB pages of an idle VM, and a DRAM goal
# it can reach (DRAM is 87.5% used after boot) within seconds
IDLE_THP_VM = {"name": "vm0", "footprint": "96MiB", "page_size": "2MiB",
               "workload": {"type": "idle-vm", "samples": 4096}}


@pytest.mark.parametrize("tiering,tenant,duration", [
    ({"mode": "nbt"}, HOTSET_VM, "3s"),
    ({"mode": "tpp"}, HOTSET_VM, "3s"),
    ({"mode": "damos", "dram_used_goal": "60%", "quota_reset_interval": "100ms"}, IDLE_THP_VM, "15s"),
])
def test_tiering_modes_run_the_whole_simulation_and_report_their_mode(tiering, tenant, duration):
    s = small_scenario(dram="32MiB", slow="128MiB", kernel={"tiering": tiering}, duration=duration, tenants=[tenant])
    r = simulate(s, check=True)
    assert r.tiering == tiering["mode"]
    assert r.vmstat["pgpromote_success"] > 0 and r.tenants[0].promoted_bytes > 0


TIERINGS = [{"mode": "nbt"}, {"mode": "tpp"}, {"mode": "nbt", "promote_rate_limit": "1MiB/s"},
            {"mode": "tpp", "scan_size": "8MiB", "hot_threshold": "300ms"},
            {"mode": "damos", "quota_reset_interval": "100ms", "dram_used_goal": "60%", "cold_min_age": "0s"},
            {"mode": "damos", "min_nr_regions": 3, "max_nr_regions": 8, "sample_interval": "50ms",
             "aggr_interval": "1s", "quota": "1MiB"}]


@given(scenarios(TIERINGS), st.integers(0, 2**31))
def test_invariants_hold_after_every_tick_and_every_move_in_every_tiering_mode(scenario, seed):
    h = Host(scenario)
    rng = np.random.default_rng(seed)
    h.boot()
    h.check_invariants()
    for _ in range(scenario.nr_ticks):
        h.run_tick()
        h.check_invariants()
        t = h.tenants[rng.integers(len(h.tenants))]
        pages = rng.integers(0, t.npages, size=32)
        res = h.move_pages(t.index, t.vma_start + pages * t.spec.page_size, rng.integers(0, 2, 32))
        assert set(res.status[res.status < 0].tolist()) <= {-errno.ENOENT, -errno.EBUSY, -errno.ENOMEM}
        h.check_invariants()
        if scenario.kernel.tiering.mode == "damos":
            check_regions(h)


# ---- DAMOS tiering (Linux 6.11+ DAMON migrate_hot / migrate_cold) -------------------------------------------

class HotPages(Pages):
    """Pages read many times a tick: a DAMON sample of 5 ms finds each young with probability ~0.63."""
    accesses_per_sample = 20.0


def damos(**params):
    """The damos mode with a 100 ms quota window (one tick), so the goal-tuned quota ramps up in a few
    seconds of simulated time instead of tens."""
    return {"mode": "damos", "quota_reset_interval": "100ms", **params}


def scheme(h, action):
    return next(s for s in h.tiering.contexts[0].schemes if s.action == action)


def check_regions(h):
    """Every context holds [min, max] regions (fewer only if its tenants have fewer pages: a region is at
    least one page); each target's regions tile its tenant's pages."""
    spec = h.scenario.kernel.tiering
    for ctx in h.tiering.contexts:
        lowest = min(spec.min_nr_regions, sum(tg.tenant.npages for tg in ctx.targets))
        assert lowest <= ctx.nr_regions <= spec.max_nr_regions
        for tg in ctx.targets:
            assert tg.start[0] == 0 and (np.diff(tg.start) > 0).all() and tg.start[-1] < tg.tenant.npages
            n = tg.nr_regions
            assert tg.nr_accesses.shape == tg.last_nr_accesses.shape == tg.age.shape == (n,)
            assert (tg.nr_accesses >= 0).all() and (tg.nr_accesses <= h.tiering.aggr_samples).all()


def test_damos_migrate_hot_promotes_a_hot_set_born_on_the_slow_node_and_leaves_cold_pages_there():
    h, t, slow = roomy_dram_host(damos(), 8192)
    hot, cold = slow[:2048], slow[4096:]                   # 8 MiB hot, 16 MiB never touched again
    t.workload = HotPages(lambda tick: hot)
    run(h, 5)
    assert on_dram(h, t, hot) == 0                         # the quota starts at 1 byte and ramps up
    run(h, 35)
    assert on_dram(h, t, hot) == hot.size
    assert on_dram(h, t, cold) == 0
    hot_scheme = scheme(h, "migrate_hot")
    assert h.vmstat["pgpromote_success"] == t.stats.promoted_pages == hot_scheme.stat.sz_applied // PAGE_SIZE
    assert hot_scheme.stat.sz_applied < hot.size * PAGE_SIZE * 1.05    # region-granular, but not wasteful
    assert scheme(h, "migrate_cold").stat.sz_applied == 0 # DRAM is far below its goal
    assert h.vmstat["numa_hint_faults"] == 0               # no NUMA balancing in this mode
    check_regions(h)


def test_damos_started_before_the_workload_promotes_only_the_young_pages_of_a_scattered_hot_set_on_full_dram():
    """HMSDK's / samples/damon/mtier.c's set-up (1 s quota windows of 200 MiB, goal 99.7% used), DRAM full at
    boot with free memory at kswapd's high watermark (1.5%). Started with the workload, migrate_hot's goal
    score stays ~9880, so its quota grows 1.2% a window from 1 byte: nothing in 20 s. Started a minute
    before (on an empty node, each window doubles the quota), it promotes every hot page within 5 s, and
    the young filter leaves the cold pages of the same DAMON regions on PMEM."""
    for lead, quota in (("0s", 1), ("10s", 1 << 10), ("60s", 200 * MiB)):
        h, t, slow = full_dram_host({"mode": "damos", "kdamond_lead": lead})
        hot = slow[::16]                                    # every 16th PMEM page: no region is all hot
        cold = np.setdiff1d(slow, hot)
        t.workload = HotPages(lambda tick: hot)
        assert max(scheme(h, "migrate_hot").esz_bp, 10000) // 10000 == quota   # doubled each window of the lead
        run(h, 50)
        assert on_dram(h, t, hot) == (hot.size if lead == "60s" else 0)
        assert on_dram(h, t, cold) == 0
        assert scheme(h, "migrate_cold").stat.sz_applied == 0     # free (1.5%) is above its 0.5% goal
    run(h, 150)
    assert on_dram(h, t, hot) == hot.size and on_dram(h, t, cold) == 0


def test_damos_demotes_cold_dram_pages_when_dram_is_above_its_goal():
    result = {}
    for goal in ("80%", "99.9%"):
        h, t, _ = full_dram_host(damos(dram_used_goal=goal, cold_min_age="500ms"))
        on = np.flatnonzero(h.node[t.start:t.end] == 0)
        hot = on[:1024]                                     # 4 MiB of the DRAM pages stay in use
        t.workload = HotPages(lambda tick: hot)
        used0 = h.node_used[0] + h.node_pgtable[0]
        run(h, 40)
        result[goal] = scheme(h, "migrate_cold").stat.sz_applied
        assert on_dram(h, t, hot) == hot.size
        if goal == "80%":
            used = h.node_used[0] + h.node_pgtable[0]
            assert used0 > 0.97 * h.capacity[0]
            assert used < 0.80 * h.capacity[0]             # driven past the free goal (20.1%) ...
            assert used > 0.50 * h.capacity[0]             # ... overshooting by at most a window's quota
            assert t.stats.demoted_pages * PAGE_SIZE >= result[goal]
    assert result["99.9%"] == 0                             # free (~1.5%) is above the 0.3% goal: dormant
    assert result["80%"] > 8 * MiB


def test_damos_quota_caps_the_bytes_migrated_per_quota_window():
    promoted = {}
    for quota in ("256KiB", "64MiB"):
        h, t, slow = roomy_dram_host(damos(quota=quota), 8192)
        t.workload = HotPages(lambda tick: slow)           # 32 MiB on PMEM, all hot
        per_tick = []
        for _ in range(40):
            before = h.vmstat["pgpromote_success"]
            run(h, 1)
            per_tick.append(h.vmstat["pgpromote_success"] - before)
        promoted[quota] = sum(per_tick) * PAGE_SIZE
        s = scheme(h, "migrate_hot")
        assert s.esz <= units.parse_size(quota)
        assert max(per_tick) * PAGE_SIZE <= units.parse_size(quota)
        if quota == "256KiB":
            # once ramped up the cap binds; a window that resumes where the last one stopped and reaches the
            # end of the address space without wrapping (as the kernel does) may charge less
            assert per_tick[-10:].count(64) >= 6
            assert s.stat.qt_exceeds >= 6
    assert promoted["256KiB"] <= 40 * 256 * 1024
    assert promoted["64MiB"] >= 31 * MiB                   # all but DAMON's imprecision at the hot set's edge
    assert promoted["64MiB"] >= 4 * promoted["256KiB"]


@pytest.mark.parametrize("params", [{}, {"min_nr_regions": 3, "max_nr_regions": 12},
                                    {"min_nr_regions": 5, "max_nr_regions": 60, "aggr_interval": "50ms"},
                                    {"sample_interval": "20ms", "aggr_interval": "400ms"}])
def test_damon_regions_stay_within_min_and_max_and_tile_each_tenant(params):
    s = small_scenario(kernel={"tiering": damos(**params)}, duration="3s",
                       tenants=[{"name": "a", "footprint": "40MiB", "workload": {"type": "zipf", "samples": 1024}},
                                {"name": "b", "footprint": "24MiB", "page_size": "2MiB",
                                 "workload": {"type": "scan+hot", "samples": 1024}}])
    h = Host(s)
    h.boot()
    check_regions(h)
    spec = s.kernel.tiering
    initial = h.tiering.contexts[0].nr_regions
    counts = []
    for _ in range(s.nr_ticks):
        h.run_tick()
        check_regions(h)
        counts.append(h.tiering.contexts[0].nr_regions)
    assert max(counts) > initial                           # regions did split (and adapt)
    if spec.max_nr_regions < 100:
        assert max(counts) > spec.max_nr_regions // 2      # ... up to the cap, where merging holds them


@pytest.mark.parametrize("tiering,key,reason", [
    (damos(min_nr_regions=2), "host.kernel.tiering.min_nr_regions", "within [3, "),
    (damos(min_nr_regions=50, max_nr_regions=20), "host.kernel.tiering.max_nr_regions",
     "must be at least min_nr_regions (50), got 20"),
    (damos(sample_interval="200ms"), "host.kernel.tiering.aggr_interval", "must be at least sample_interval"),
    (damos(hot_min_accesses=21), "host.kernel.tiering.hot_min_accesses",
     "at most aggr_interval / sample_interval = 20 samples"),
    (damos(dram_used_goal="150%"), "host.kernel.tiering.dram_used_goal", "within [1.0%, 99.9%], got '150%'"),
    (damos(dram_used_goal="100%"), "host.kernel.tiering.dram_used_goal", "within [1.0%, 99.9%]"),
    (damos(quota="lots"), "host.kernel.tiering.quota", "lots"),
    (damos(quota_reset="1s"), "host.kernel.tiering.quota_reset", "unknown key"),
    ({"mode": "nbt", "sample_interval": "5ms"}, "host.kernel.tiering.sample_interval", "unknown key"),
])
def test_invalid_damos_settings_are_rejected_naming_the_key(tiering, key, reason):
    with pytest.raises(ScenarioError) as e:
        small_scenario(kernel={"tiering": tiering})
    assert e.value.key == key
    assert reason in e.value.reason


def test_damos_settings_parse_with_units():
    spec = small_scenario(kernel={"tiering": {"mode": "damos", "sample_interval": "1ms", "aggr_interval": "50ms",
                                              "quota": "1GiB", "dram_used_goal": "99.6%", "cold_min_age": "2s",
                                              "max_nr_regions": "2k"}}).kernel.tiering
    assert (spec.sample_interval, spec.aggr_interval, spec.quota) == (1e-3, 0.05, 1 << 30)
    assert (spec.dram_used_goal, spec.cold_min_age, spec.max_nr_regions) == (0.996, 2.0, 2000)
    assert spec.min_nr_regions == 10 and spec.quota_reset_interval == 1.0 and spec.hot_min_accesses == 1


def test_damos_is_deterministic_under_a_seed():
    def final(seed):
        s = small_scenario(dram="32MiB", slow="128MiB", seed=seed, duration="3s",
                           kernel={"tiering": damos(dram_used_goal="90%")},
                           tenants=[{"name": "vm0", "footprint": "96MiB",
                                     "workload": {"type": "hotset", "samples": 4096}}])
        h = Host(s)
        run(h, s.nr_ticks)
        tg = h.tiering.contexts[0].targets[0]
        return h.node.copy(), tg.start.copy(), [vars(x.stat).copy() for x in h.tiering.contexts[0].schemes]
    a, b, c = final(5), final(5), final(6)
    assert (a[0] == b[0]).all() and (a[1].shape == b[1].shape) and (a[1] == b[1]).all() and a[2] == b[2]
    assert a[1].shape != c[1].shape or (a[1] != c[1]).any()
