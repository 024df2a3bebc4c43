import errno

import numpy as np
import pytest
from hypothesis import given, strategies as st

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


def test_tiering_modes_run_the_whole_simulation_and_report_their_mode():
    for mode in ("nbt", "tpp"):
        s = small_scenario(dram="32MiB", slow="128MiB", kernel={"tiering": {"mode": mode}}, duration="3s",
                           tenants=[{"name": "vm0", "footprint": "96MiB",
                                     "workload": {"type": "hotset", "samples": 4096}}])
        r = simulate(s, check=True)
        assert r.tiering == mode
        assert r.vmstat["pgpromote_success"] > 0 and r.tenants[0].promoted_bytes > 0


TIERINGS = [{"mode": "nbt"}, {"mode": "tpp"}, {"mode": "nbt", "promote_rate_limit": "1MiB/s"},
            {"mode": "tpp", "scan_size": "8MiB", "hot_threshold": "300ms"}]


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
