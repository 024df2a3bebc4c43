"""DAMOS as mm/damon/core.c applies it under a quota (agent/damon.py): the score histogram's
threshold, the hottest regions first, age restarting where a scheme acted, the quota's split and the next
window's start past it; and DAMON's monitoring intervals auto-tuning (Linux 6.15 intervals_goal)."""

import numpy as np
import pytest

from pagetide.agent.damon import DAMOS_MAX_SCORE, Damon, damon_feed_loop_next_input
from pagetide.agent.host import MPOL_MF_MOVE, Host
from pagetide.agent.pageflags import PAGE_SIZE

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
    s.charged_from, s.charged_sz, s.esz = ctx.clock_us, 0, esz
    d._adjust_quota(h, ctx, s)
    d._apply_schemes(h, ctx, [s])


def on_dram(h, t, lo, hi):
    return int((h.node[t.start + lo:t.start + hi] == 0).sum())


def test_the_score_histogram_sets_the_lowest_score_whose_sizes_from_the_top_reach_the_quota():
    hist = np.zeros(DAMOS_MAX_SCORE + 1)
    hist[[90, 50, 10]] = [10 * PAGE_SIZE, 100 * PAGE_SIZE, 1000 * PAGE_SIZE]
    assert Damon.min_score(hist, 5 * PAGE_SIZE) == 90
    assert Damon.min_score(hist, 10 * PAGE_SIZE) == 90      # reached exactly
    assert Damon.min_score(hist, 11 * PAGE_SIZE) == 50
    assert Damon.min_score(hist, 110 * PAGE_SIZE) == 50
    assert Damon.min_score(hist, 111 * PAGE_SIZE) == 10
    assert Damon.min_score(hist, 1 << 40) == 0               # never reached: every score goes
    assert Damon.min_score(np.zeros(DAMOS_MAX_SCORE + 1), 1) == 0
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
        assert Damon.min_score(hist.astype(float), esz) == score


def test_under_a_tight_quota_the_hottest_region_goes_first_wherever_it_is():
    h, t, d, tg = slow_tenant_host()
    s = hot_scheme(d)
    tg.nr_accesses[9], tg.nr_accesses[2] = 18, 9           # region 9 the hottest, region 2 next
    window(h, d, s, esz=PIECE * PAGE_SIZE)
    assert s.min_score == d._hot_score(d.contexts[0], np.array([18]), np.array([10]))[0]
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
    assert list(d._hot_score(d.contexts[0], np.array([10, 8]), np.array([0, 1280]))) == [49, 50]
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
    ctx = d.contexts[0]
    assert s.next_apply == ctx.passed_samples + (ctx.aggr_us if apply_interval == "0s" else 1_000_000) // 5000


class Reads:
    """A workload stub reading pages `pick(tick)` `n` times each per tick."""
    name = "reads"

    def __init__(self, pick, n):
        self.pick, self.accesses_per_sample = pick, float(n)

    def sample(self, tick):
        pages = np.asarray(self.pick(tick), dtype=np.int64)
        return pages, np.zeros(pages.size, dtype=bool)


def test_the_feedback_loop_doubles_below_the_goal_holds_on_it_and_drops_to_its_minimum_at_twice_it():
    assert damon_feed_loop_next_input(100_000_000, 0) == 200_000_000
    assert damon_feed_loop_next_input(100_000_000, 10_000) == 100_000_000
    assert damon_feed_loop_next_input(100_000_000, 15_000) == 50_000_000
    assert damon_feed_loop_next_input(100_000_000, 20_000) == 10_000
    assert damon_feed_loop_next_input(10_000, 9_000) == 11_000


def tuned_host(**tiering):
    """mtier.c's intervals goal: 4% of samples accessed, tuned every 3 aggregations, sampling in [5 ms, 10 s]."""
    h = Host(small_scenario(dram="256MiB", slow="256MiB",
                            kernel={"tiering": {"mode": "damos", "intervals_aggrs": 3, **tiering}}))
    h.boot()
    return h, h.tenants[0], h.tiering.contexts[0]


def test_idle_memory_lengthens_the_sampling_interval_up_to_its_maximum_keeping_twenty_samples_an_aggregation():
    h, t, ctx = tuned_host()
    t.workload = Reads(lambda tick: [], 0)
    ctx.targets[0].age[:] = 40                              # 4 s at 100 ms aggregations
    seen = []
    for _ in range(600):                                    # 60 s
        h.run_tick()
        seen.append(ctx.sample_us)
    # nothing is accessed: the score is 0 and the loop doubles the interval every 3 aggregations of 20
    # samples -- after 0.3 s, 0.9 s (60 samples of 10 ms later), 2.1 s, ...
    changed = [i for i, (a, b) in enumerate(zip([5000] + seen, seen)) if a != b]
    assert changed == [2, 8, 20, 44, 92, 188, 380] and seen[-1] == 640_000
    assert ctx.aggr_us == 20 * ctx.sample_us
    # the regions' ages were kept in time (age x old / new aggregation interval; each rescale rounds down)
    assert (40e6 <= ctx.targets[0].age * ctx.aggr_us).all() and (ctx.targets[0].age * ctx.aggr_us <= 64e6).all()
    h2, t2, ctx2 = tuned_host(intervals_max_sample="100ms")
    t2.workload = Reads(lambda tick: [], 0)
    for _ in range(100):
        h2.run_tick()
    assert ctx2.sample_us == 100_000                        # max_sample_us
    h2.check_invariants()


def test_busy_memory_shortens_the_sampling_interval_down_to_its_minimum():
    h, t, ctx = tuned_host(sample_interval="80ms", aggr_interval="1600ms")
    t.workload = Reads(lambda tick: np.arange(t.npages), 50)   # every page read 50 times a tick
    seen = []
    for _ in range(120):                                    # 4.8 + 2.4 + 1.2 + 0.6 s of tunings to 5 ms
        h.run_tick()
        seen.append(ctx.sample_us)
    # every sample finds its page accessed (score >= 2x the goal): the loop's minimum, rescaled to halving
    assert seen[0] == 80_000 and min(seen) == 5000 and seen[-1] == 5000
    assert all(b in (a, max(a // 2, 5000)) for a, b in zip(seen, seen[1:]))


def test_a_sample_interval_longer_than_the_tick_counts_accesses_over_all_its_ticks():
    """Sampling at 1 s over 100 ms ticks: a page read once a tick is found accessed by a sample with
    probability 1 - exp(-10); one read once every 10 ticks, 1 - exp(-1) (0.63)."""
    for every, expect in ((1, 1.0), (10, 0.632)):
        h = Host(small_scenario(dram="256MiB", slow="256MiB", kernel={"tiering": {
            "mode": "damos", "sample_interval": "1s", "aggr_interval": "20s", "min_nr_regions": 500,
            "max_nr_regions": 1000}}))
        h.boot()
        t, ctx = h.tenants[0], h.tiering.contexts[0]
        t.workload = Reads(lambda tick: np.arange(t.npages) if tick % every == 0 else [], 1)
        for _ in range(195):                                # 19 samples of the first aggregation
            h.run_tick()
        found = ctx.targets[0].nr_accesses.sum() / (19 * ctx.targets[0].nr_regions)
        assert abs(found - expect) < 0.03


def test_per_node_kdamonds_each_run_one_scheme_and_sample_only_their_source_nodes_pages():
    """mtier.c's and HMSDK's layout: a kdamond per scheme, watching the scheme's source node."""
    h = Host(small_scenario(kernel={"tiering": {"mode": "damos", "per_node_kdamonds": True}}))
    h.boot()                                               # DRAM full, a third of the tenant on PMEM
    t = h.tenants[0]
    d = h.tiering
    layout = [(c.node, [s.action for s in c.schemes]) for c in d.contexts]
    assert layout == [(0, ["migrate_cold"]), (1, ["migrate_hot"])]
    on_dram = np.flatnonzero(h.node[t.start:t.end] == 0)
    t.workload = Reads(lambda tick: on_dram, 20)           # only DRAM pages are read
    for _ in range(3):
        h.run_tick()
    cold_ctx, hot_ctx = d.contexts
    assert sum(int(tg.last_nr_accesses.sum()) for tg in cold_ctx.targets) > 0    # the last aggregation's
    assert sum(int(tg.last_nr_accesses.sum()) for tg in hot_ctx.targets) == 0   # its samples are PMEM pages
    h.check_invariants()


@pytest.mark.parametrize("reads, applied", [(50, False), (0, True)])
def test_each_intervals_tuning_re_times_the_schemes_so_a_busy_kdamond_never_applies_a_1_s_scheme(reads, applied):
    """damon_set_attrs() -- which kdamond_tune_intervals() calls whenever the adaptation is not exactly 1 --
    sets each scheme's next application apply_interval from now: at 5 ms, 200 samples away, while the
    next tuning comes 60 samples later. Busy memory keeps the interval at its 5 ms minimum and the 1 s
    scheme is pushed back at every tuning; idle memory lengthens the interval past 16.7 ms, and it runs."""
    h, t, ctx = tuned_host(apply_interval="1s")
    t.workload = Reads(lambda tick: np.arange(t.npages) if reads else [], reads)
    calls = []
    h.tiering._apply_schemes = lambda host, c, due: calls.append(c.clock_us)
    for _ in range(100):                                    # 10 s
        h.run_tick()
    assert bool(calls) == applied
    assert (ctx.sample_us == 5000) == (not applied)


def test_mtier_layout_with_tuned_intervals_follows_tenants_arriving_resizing_and_leaving():
    """samples/damon/mtier.c's whole set-up (per-node kdamonds, 1 s schemes, intervals tuning), sampling at
    150 ms so an interval is running across each change: every kdamond's targets keep tiling their tenants
    and the host's invariants hold."""
    from pagetide.agent.simhost import SimHost

    tenants = [{"name": "vm0", "footprint": "48MiB", "workload": {"type": "zipf", "samples": 1024}},
               {"name": "vm1", "footprint": "32MiB", "workload": {"type": "drift", "samples": 1024}}]
    s = SimHost(small_scenario(dram="32MiB", slow="96MiB", tenants=tenants, kernel={"tiering": {
        "mode": "damos", "per_node_kdamonds": True, "apply_interval": "1s", "intervals_aggrs": 3,
        "sample_interval": "150ms", "aggr_interval": "3s"}}))
    s.advance(5)
    s.add_tenant({"name": "web", "footprint": "16MiB", "workload": {"type": "zipf", "samples": 512}})
    s.advance(5)
    s.resize_tenant("vm0", 20 * (1 << 20))
    s.advance(5)
    s.remove_tenant("vm1")
    s.advance(10)
    assert s.stats().invariant_error == ""
    d = s.host.tiering
    assert len(d.contexts) == 2
    for ctx in d.contexts:
        assert sorted(tg.tenant.name for tg in ctx.targets) == ["vm0", "web"]
        for tg in ctx.targets:
            assert tg.start[0] == 0 and (np.diff(tg.start) > 0).all() and tg.start[-1] < tg.tenant.npages
        if ctx.pending is not None:
            for tg, (slots, lam) in zip(ctx.targets, ctx.pending):
                ok = slots[slots >= 0]
                assert ((ok >= tg.tenant.start) & (ok < tg.tenant.end)).all()
