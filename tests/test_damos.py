"""DAMOS as mm/damon/core.c applies it under a quota (agent/tiering.py DamosTiering): the score histogram's
threshold, the hottest regions first, age restarting where a scheme acted, the quota's split and the next
window's start past it."""

import numpy as np
import pytest

from pagetide.agent.host import MPOL_MF_MOVE, Host
from pagetide.agent.pageflags import PAGE_SIZE
from pagetide.agent.tiering import DAMOS_MAX_SCORE, DamosTiering

from helpers import small_scenario

PIECE = 2048                 # pages per region of the hand-made layout: 12 regions of 8 MiB over 96 MiB


def slow_tenant_host(**tiering):
    """256 MiB of DRAM with room; every page of the 96 MiB tenant moved to PMEM and young; the kdamond's
    target tiled by 12 equal regions, each accessed at 1 of 20 samples for a second (age 10)."""
    h = Host(small_scenario(dram="256MiB", slow="256MiB", kernel={"tiering": {"mode": "damos", **tiering}}))
    h.boot()
    t = h.tenants[0]
    res = h.move_pages(0, t.vma_start + np.arange(t.npages) * PAGE_SIZE, np.ones(t.npages), MPOL_MF_MOVE)
    assert (res.status == 1).all()
    d = h.tiering
    d.young[t.start:t.end] = True
    tg = d.contexts[0].targets[0]
    n = t.npages // PIECE
    tg.take(np.arange(n, dtype=np.int64) * PIECE, np.zeros(n, dtype=np.int64))
    tg.nr_accesses[:] = tg.last_nr_accesses[:] = 1
    tg.age[:] = 10
    return h, t, d, tg


def hot_scheme(d):
    return next(s for s in d.contexts[0].schemes if s.action == "migrate_hot")


def window(h, d, s, esz):
    """One quota window of migrate_hot alone with effective quota esz: the charge reset, the histogram's
    threshold, the walk."""
    ctx = d.contexts[0]
    s.charged_from, s.charged_sz, s.esz = d.passed_samples, 0, esz
    d._adjust_quota(h, ctx, s)
    d._apply_schemes(h, ctx, [s])


def on_dram(h, t, lo, hi):
    return int((h.node[t.start + lo:t.start + hi] == 0).sum())


def test_the_score_histogram_sets_the_lowest_score_whose_sizes_from_the_top_reach_the_quota():
    hist = np.zeros(DAMOS_MAX_SCORE + 1)
    hist[[90, 50, 10]] = [10 * PAGE_SIZE, 100 * PAGE_SIZE, 1000 * PAGE_SIZE]
    assert DamosTiering.min_score(hist, 5 * PAGE_SIZE) == 90
    assert DamosTiering.min_score(hist, 10 * PAGE_SIZE) == 90      # reached exactly
    assert DamosTiering.min_score(hist, 11 * PAGE_SIZE) == 50
    assert DamosTiering.min_score(hist, 110 * PAGE_SIZE) == 50
    assert DamosTiering.min_score(hist, 111 * PAGE_SIZE) == 10
    assert DamosTiering.min_score(hist, 1 << 40) == 0               # never reached: every score goes
    assert DamosTiering.min_score(np.zeros(DAMOS_MAX_SCORE + 1), 1) == 0
    # against the kernel's loop (score from the highest present down, stop at the quota or at 0)
    rng = np.random.default_rng(1)
    for _ in range(200):
        hist = np.where(rng.random(DAMOS_MAX_SCORE + 1) < 0.1, rng.integers(1, 50, DAMOS_MAX_SCORE + 1), 0)
        esz = int(rng.integers(1, 300))
        score, cum = int(np.flatnonzero(hist).max(initial=0)), 0
        while True:
            cum += hist[score]
            if cum >= esz or score == 0:
                break
            score -= 1
        assert DamosTiering.min_score(hist.astype(float), esz) == score


def test_under_a_tight_quota_the_hottest_region_goes_first_wherever_it_is():
    h, t, d, tg = slow_tenant_host()
    s = hot_scheme(d)
    tg.nr_accesses[9], tg.nr_accesses[2] = 18, 9           # region 9 the hottest, region 2 next
    window(h, d, s, esz=PIECE * PAGE_SIZE)
    assert s.min_score == d._hot_score(np.array([18]), np.array([10]))[0]
    assert on_dram(h, t, 9 * PIECE, 10 * PIECE) == PIECE and on_dram(h, t, 0, t.npages) == PIECE
    assert tg.age[9] == 0 and (np.delete(tg.age, 9) == 10).all()     # acting restarts the region's age
    # the window after one that used its quota up starts past the charged region, without wrapping: region 2
    # is behind it, and nothing after it scores high enough
    assert (s.charge_target_from, s.charge_addr_from) == (0, 10 * PIECE + 1)
    window(h, d, s, esz=PIECE * PAGE_SIZE)
    assert on_dram(h, t, 0, t.npages) == PIECE
    assert tg.start[11] == 10 * PIECE + 1                   # the kernel's end + 1 split one page off region 10
    # ... and the one after that starts over: region 2 now leads
    window(h, d, s, esz=PIECE * PAGE_SIZE)
    assert on_dram(h, t, 2 * PIECE, 3 * PIECE) == PIECE and on_dram(h, t, 0, t.npages) == 2 * PIECE


def test_a_region_steady_for_two_minutes_outranks_a_slightly_busier_new_one_as_mtier_weighs_age():
    """samples/damon/mtier.c weighs age as much as access frequency (weight_nr_accesses 100, weight_age
    100): 8 of 20 samples for 128 s scores 50, 10 of 20 just now 49."""
    h, t, d, tg = slow_tenant_host()
    s = hot_scheme(d)
    tg.nr_accesses[3], tg.age[3] = 10, 0
    tg.nr_accesses[6], tg.age[6] = 8, 1280
    assert list(d._hot_score(np.array([10, 8]), np.array([0, 1280]))) == [49, 50]
    window(h, d, s, esz=PIECE * PAGE_SIZE)
    assert on_dram(h, t, 6 * PIECE, 7 * PIECE) == PIECE and on_dram(h, t, 0, t.npages) == PIECE


def test_a_quota_ending_inside_a_region_splits_it_and_charges_its_source_pages_whether_the_filter_passes_them():
    h, t, d, tg = slow_tenant_host()
    s = hot_scheme(d)
    tg.nr_accesses[5] = 15
    young = np.zeros(PIECE, dtype=bool)
    young[::2] = True                                       # the young filter passes every other page
    d.young[t.start + 5 * PIECE:t.start + 6 * PIECE] = young
    window(h, d, s, esz=1000 * PAGE_SIZE)
    assert tg.nr_regions == 13 and tg.start[6] == 5 * PIECE + 1000
    assert tg.age[5] == 0 and tg.age[6] == 10 and tg.nr_accesses[6] == 15    # the rest keeps its state
    assert s.charged_sz == 1000 * PAGE_SIZE and s.stat.sz_tried == 1000 * PAGE_SIZE
    assert on_dram(h, t, 5 * PIECE, 5 * PIECE + 1000) == 500 == s.stat.sz_applied // PAGE_SIZE
    assert not d.young[t.start + 5 * PIECE:t.start + 5 * PIECE + 1000].any()   # the filter's check cleared them
    assert d.young[t.start + 5 * PIECE + 1000:t.start + 6 * PIECE].sum() == 524


@pytest.mark.parametrize("apply_interval, applications", [("0s", 20), ("1s", 2)])
def test_schemes_apply_every_aggregation_or_every_apply_interval(apply_interval, applications):
    h, t, d, tg = slow_tenant_host(apply_interval=apply_interval)
    s = hot_scheme(d)
    calls = []
    d._apply_schemes = lambda host, ctx, due: calls.append([x.action for x in due])
    for _ in range(20):                                     # 2 s of 100 ms ticks, 100 ms aggregations
        h.run_tick()
    assert len(calls) == applications and all(c == ["migrate_cold", "migrate_hot"] for c in calls)
    assert s.next_apply == d.passed_samples + d.apply_samples
