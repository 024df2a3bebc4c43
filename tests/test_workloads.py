"""The synthetic workload suite (DESIGN.md section 5): deterministic, in bounds, and shaped as specified."""

import numpy as np
import pytest

import pagetide.agent.traces.workload  # noqa: F401  (the `trace` workload registers itself)
from pagetide.agent.workloads import WORKLOADS, Workload, make_workload

ALL_TYPES = ["zipf", "hotset", "drift", "scan+hot", "idle-vm", "write-heavy", "phases"]


def collect(w: Workload, ticks) -> np.ndarray:
    return np.concatenate([w.sample(t)[0] for t in ticks])


def share_in(pages: np.ndarray, subset: np.ndarray) -> float:
    return float(np.isin(pages, subset).mean())


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return np.intersect1d(a, b).size / len(a)


def most_sampled(pages: np.ndarray, k: int, npages: int) -> np.ndarray:
    return np.argsort(np.bincount(pages, minlength=npages), kind="stable")[::-1][:k]


def zipf_share(k: int, n: int, s: float) -> float:
    """Share of accesses to the k most popular of n pages under Zipf(s): H(k, s) / H(n, s)."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    return float(w[:k].sum() / w.sum())


# ---- the common contract -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ALL_TYPES)
def test_expected_accesses_are_the_probabilities_times_ticks_and_rate_bit_for_bit(kind):
    """What the per-epoch oracle ranks: each workload's own `_expected` gives float32 numbers identical to
    (each run of equal probabilities x its ticks, summed) x rate x tick, or the sum over the ticks where they
    move every tick."""
    w = make_workload({"type": kind, "rate": "7.3M/s", "move_every": "1s"} if kind == "hotset"
                      else {"type": kind, "rate": "7.3M/s"}, 3001, 7, 0.1)
    for start, n in ((0, 10), (37, 10), (95, 3)):
        got = np.full(w.npages, np.nan, dtype=np.float32)
        w.expected(start, n, got)
        ticks = [w.probabilities(start + i) for i in range(n)]
        if w.MOVES_EVERY_TICK:
            probs = sum(ticks)
        else:           # each run of equal distributions once, times its ticks (hotset moves at tick 40)
            runs = []
            for p in ticks:
                if runs and np.array_equal(runs[-1][0], p):
                    runs[-1][1] += 1
                else:
                    runs.append([p, 1])
            assert kind != "drift" or len(runs) == n
            probs = sum(p * k for p, k in runs)
        ref = np.multiply(probs, w.rate * w.tick_s, out=probs).astype(np.float32)
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), (kind, start, n)


@pytest.mark.parametrize("scan_rate", [None, 1e3, 2e5])
@pytest.mark.parametrize("hot_share", [0.5, 0.0, 1.0])
def test_scan_hot_expected_sum_is_the_generic_sum_bit_for_bit_in_float64(scan_rate, hot_share):
    """scan+hot's sparse sum of its moving distribution against the generic sum of every tick's array, in
    float64 (float32 rounding could hide a reassociated sum): a slow scan (pages sampled several times a
    tick), the default, and one looping over the cold pages several times an epoch (pages passed in several
    ticks)."""
    spec = {"type": "scan+hot", "rate": "7.3M/s", "hot_share": hot_share, "samples": 512}
    w = make_workload({**spec, "scan_rate": scan_rate} if scan_rate else spec, 2061, 7, 0.1)   # 103 hot pages:
    # 10 and 7 additions of a hot page's share differ from the products
    scale = w.rate * w.tick_s
    for start, n in ((0, 10), (37, 10), (95, 7), (5, 1)):
        got, ref = np.full(w.npages, np.nan), np.full(w.npages, np.nan)
        w._expected_sum(start, n, scale, got)
        Workload._expected_sum(w, start, n, scale, ref)
        assert np.array_equal(got.view(np.uint64), ref.view(np.uint64)), (start, n)


def test_the_registry_holds_the_whole_suite():
    assert sorted(WORKLOADS) == sorted([*ALL_TYPES, "trace"])  # trace replay: tests/test_traces.py
    for name, cls in WORKLOADS.items():
        assert cls.name == name


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_samples_are_int64_pages_within_the_footprint_with_a_bool_write_flag_each(kind):
    w = make_workload({"type": kind, "samples": 5000}, 3000, seed=1, tick_s=0.1)
    for tick in (0, 1, 250):
        pages, is_write = w.sample(tick)
        assert pages.dtype == np.int64 and is_write.dtype == np.bool_
        assert pages.shape == is_write.shape == (5000,)
        assert pages.min() >= 0 and pages.max() < 3000


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_the_same_seed_gives_the_same_accesses_and_another_seed_different_ones(kind):
    a = make_workload({"type": kind}, 5000, seed=11, tick_s=0.1)
    b = make_workload({"type": kind}, 5000, seed=11, tick_s=0.1)
    c = make_workload({"type": kind}, 5000, seed=12, tick_s=0.1)
    for tick in range(4):
        pa, wa = a.sample(tick)
        pb, wb = b.sample(tick)
        np.testing.assert_array_equal(pa, pb)
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(pa, c.sample(tick)[0])


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_a_tick_replayed_out_of_order_gives_the_same_accesses(kind):
    w = make_workload({"type": kind, "move_every": "1s"} if kind == "hotset" else {"type": kind},
                      4000, seed=3, tick_s=0.5)
    first = [w.sample(t) for t in range(6)]
    again = w.sample(2)
    np.testing.assert_array_equal(first[2][0], again[0])
    np.testing.assert_array_equal(first[2][1], again[1])


@pytest.mark.parametrize("kind, expected", [("zipf", 0.1), ("hotset", 0.1), ("scan+hot", 0.1),
                                            ("write-heavy", 0.7), ("phases", 0.1)])
def test_the_write_mix_follows_the_default_write_ratio(kind, expected):
    w = make_workload({"type": kind}, 4000, seed=5, tick_s=0.1)
    writes = np.concatenate([w.sample(t)[1] for t in range(10)])
    assert w.write_ratio == expected
    assert writes.mean() == pytest.approx(expected, abs=0.01)


def test_an_explicit_write_ratio_overrides_the_default():
    w = make_workload({"type": "write-heavy", "write_ratio": "25%"}, 4000, seed=5, tick_s=0.1)
    writes = np.concatenate([w.sample(t)[1] for t in range(10)])
    assert writes.mean() == pytest.approx(0.25, abs=0.01)
    assert not make_workload({"type": "zipf", "write_ratio": 0}, 100, 1, 0.1).sample(0)[1].any()
    assert make_workload({"type": "zipf", "write_ratio": 1}, 100, 1, 0.1).sample(0)[1].all()


def test_each_sample_stands_for_rate_times_tick_over_samples_accesses():
    w = make_workload({"type": "zipf", "rate": "10M/s", "samples": "1k"}, 1000, seed=1, tick_s=0.1)
    assert w.rate == 10e6 and w.samples == 1000
    assert w.accesses_per_sample == pytest.approx(1000.0)
    default = make_workload({"type": "zipf"}, 1000, seed=1, tick_s=0.1)
    assert (default.rate, default.samples) == (50e6, 16384)


def test_specs_take_human_units():
    w = make_workload({"type": "hotset", "hot_fraction": "10%", "move_every": "30s", "rate": "50M/s"},
                      1000, seed=1, tick_s=0.1)
    assert w.describe() == {"type": "hotset", "rate": 50e6, "samples": 16384, "write_ratio": 0.1,
                            "hot_fraction": 0.1, "hot_share": 0.9, "move_every": 30.0}


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_describe_gives_a_spec_that_rebuilds_the_same_workload(kind):
    w = make_workload({"type": kind, "samples": 2000}, 3000, seed=9, tick_s=0.2)
    again = make_workload(w.describe(), 3000, seed=9, tick_s=0.2)
    assert again.describe() == w.describe()
    np.testing.assert_array_equal(w.sample(7)[0], again.sample(7)[0])


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_every_default_spec_builds_on_a_tiny_footprint(kind):
    # the scenario loader validates workload specs with a 16-page footprint
    w = make_workload({"type": kind}, 16, seed=0, tick_s=0.1)
    assert w.sample(0)[0].max() < 16


@pytest.mark.parametrize("kind", ["zipf", "hotset", "drift", "scan+hot", "idle-vm", "phases"])
def test_popular_pages_are_scattered_over_the_address_space(kind):
    n = 10_000
    hot = make_workload({"type": kind}, n, seed=2, tick_s=0.1).hot_pages(0, 500)
    assert len(np.unique(hot)) == 500
    assert hot.min() < n // 10 and hot.max() > n - n // 10
    assert np.count_nonzero(hot < 500) < 100  # not pages 0..k: about 5% of them land there by chance


# ---- each workload's shape -----------------------------------------------------------------------------------

def test_zipf_top_one_percent_of_pages_takes_the_share_the_zipf_formula_gives():
    n, s = 100_000, 0.99
    w = make_workload({"type": "zipf", "s": s}, n, seed=4, tick_s=0.1)
    pages = collect(w, range(20))
    expected = zipf_share(n // 100, n, s)  # 0.605
    assert share_in(pages, w.hot_pages(0, n // 100)) == pytest.approx(expected, abs=0.01)
    # the empirically busiest 1% agree with the ranking (up to noise at the boundary)
    assert overlap(most_sampled(pages, n // 100, n), w.hot_pages(0, n // 100)) > 0.8


def test_zipf_popularity_is_static():
    w = make_workload({"type": "zipf"}, 5000, seed=4, tick_s=1.0)
    np.testing.assert_array_equal(w.hot_pages(0, 500), w.hot_pages(10_000, 500))


def test_zipf_with_exponent_zero_is_uniform():
    n = 1000
    w = make_workload({"type": "zipf", "s": 0}, n, seed=4, tick_s=0.1)
    counts = np.bincount(collect(w, range(10)), minlength=n)
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()


def test_hotset_ten_percent_of_pages_get_ninety_percent_of_accesses_and_the_set_moves_every_30s():
    n, k = 20_000, 2_000
    w = make_workload({"type": "hotset"}, n, seed=6, tick_s=1.0)  # defaults: 10%, 90%, 30 s
    before = collect(w, range(0, 10))
    hot_before = most_sampled(before, k, n)
    assert share_in(before, hot_before) == pytest.approx(0.9 + 0.1 * 0.1, abs=0.01)
    assert set(hot_before) == set(w.hot_pages(0, k))
    assert set(most_sampled(collect(w, range(20, 30)), k, n)) == set(hot_before)  # still epoch 0 at 29 s
    after = collect(w, range(30, 40))
    hot_after = most_sampled(after, k, n)
    assert share_in(after, hot_after) == pytest.approx(0.91, abs=0.01)
    assert overlap(hot_before, hot_after) < 0.2  # a fresh random set: ~10% overlap by chance
    assert share_in(after, hot_before) < 0.2


def test_hotset_with_move_every_zero_never_moves():
    w = make_workload({"type": "hotset", "move_every": 0}, 5000, seed=6, tick_s=1.0)
    np.testing.assert_array_equal(w.hot_pages(0, 500), w.hot_pages(100_000, 500))


def test_drift_shifts_the_ranking_by_drift_times_footprint_per_second():
    n, k = 10_000, 1_000
    w = make_workload({"type": "drift", "drift": "1%/s", "samples": 200_000}, n, seed=8, tick_s=0.5)
    # 10 ticks of 0.5 s at 1%/s of 10k pages: the ranking moved 500 ranks, half the top 1000 changed
    assert overlap(w.hot_pages(0, k), w.hot_pages(10, k)) == pytest.approx(0.5)
    assert overlap(w.hot_pages(0, k), w.hot_pages(20, k)) == 0.0
    # pages cool gradually: tick 0's top 1000 now sit at ranks 500..1499, and take that share of accesses
    expected = zipf_share(k + 500, n, 0.99) - zipf_share(500, n, 0.99)
    assert share_in(w.sample(10)[0], w.hot_pages(0, k)) == pytest.approx(expected, abs=0.01)
    # ... and new hot pages appear abruptly: the hottest page at tick 10 was among the coldest at tick 0
    assert w.hot_pages(10, 1)[0] == w.hot_pages(0, n)[n - 500]


@pytest.mark.parametrize("n, hot_fraction", [(10, 0.1), (777, 0.5), (1 << 20, 0.05), (5, 0.8)])
def test_scan_plus_hot_cold_pages_are_the_complement_of_the_hot_set_in_address_order(n, hot_fraction):
    w = make_workload({"type": "scan+hot", "hot_fraction": hot_fraction}, n, seed=n, tick_s=0.1)
    cold = np.setdiff1d(np.arange(n), w.hot_pages(0, w._hot.size))
    got = w._cold(np.arange(w._ncold))
    assert np.array_equal(got, cold) and got.dtype == w._hot.dtype


def test_scan_plus_hot_scan_advances_sequentially_over_cold_pages_and_wraps_every_20s():
    n = 10_000
    w = make_workload({"type": "scan+hot"}, n, seed=10, tick_s=0.1)  # 5% hot, 50% share
    hot = w.hot_pages(0, 500)
    cold = np.setdiff1d(np.arange(n), hot)  # ascending addresses: the scan's order
    assert w.describe()["scan_rate"] == pytest.approx(cold.size / 20.0)  # 475 pages/s
    assert w.scan_loop_s == pytest.approx(20.0)
    runs = []
    for tick in range(205):
        pages = w.sample(tick)[0]
        assert share_in(pages, hot) == pytest.approx(0.5, abs=0.001)
        scan = np.searchsorted(cold, pages[~np.isin(pages, hot)])
        assert np.array_equal(cold[scan], pages[~np.isin(pages, hot)])  # scan touches only cold pages
        runs.append((scan.min(), scan.max(), np.unique(scan).size))
    for tick in range(199):
        lo, hi, distinct = runs[tick]
        assert hi - lo + 1 == distinct  # one contiguous run of cold pages per tick: 47-48 of them
        assert runs[tick + 1][0] in (hi, hi + 1)  # the next tick picks up where this one stopped
    assert runs[0][0] == 0 and runs[199][1] == cold.size - 1
    assert runs[200][0] == 0  # after 20 s the scan wraps to the lowest cold page


def test_scan_plus_hot_scan_rate_is_configurable():
    w = make_workload({"type": "scan+hot", "scan_rate": "1k/s"}, 100_000, seed=1, tick_s=0.1)
    assert w.scan_loop_s == pytest.approx(95_000 / 1000)


def test_idle_vm_never_samples_pages_outside_its_active_part():
    n = 10_000
    w = make_workload({"type": "idle-vm"}, n, seed=12, tick_s=0.1)
    active = w.hot_pages(0, n // 2)
    pages = collect(w, range(50))
    assert np.isin(pages, active).all()
    assert np.unique(pages).size > 0.5 * active.size  # Zipf over the active half reaches most of it
    untouched = np.setdiff1d(np.arange(n), np.unique(pages))
    assert untouched.size >= n // 2


def test_idle_vm_active_fraction_sets_how_much_memory_is_ever_used():
    n = 10_000
    w = make_workload({"type": "idle-vm", "active_fraction": "20%", "s": 0}, n, seed=12, tick_s=0.1)
    assert np.unique(collect(w, range(20))).size == n // 5


def test_phases_alternate_between_disjoint_working_sets_every_period():
    n, m = 10_000, 2_000
    w = make_workload({"type": "phases"}, n, seed=14, tick_s=1.0)  # 2 sets of 20%, 20 s each, uniform
    set_a, set_b = np.unique(w.sample(0)[0]), np.unique(w.sample(20)[0])
    assert np.intersect1d(set_a, set_b).size == 0
    assert set_a.size > 0.99 * m and set_b.size > 0.99 * m  # uniform: one tick covers the whole set
    assert set(set_a) <= set(w.hot_pages(0, m)) and set(set_b) <= set(w.hot_pages(20, m))
    assert [w.active_set(t) for t in (0, 19, 20, 39, 40, 60)] == [0, 0, 1, 1, 0, 1]
    for tick, expected in ((5, set_a), (19, set_a), (25, set_b), (45, set_a), (65, set_b)):
        assert np.isin(w.sample(tick)[0], expected).all()


def test_phases_with_three_sets_cycle_round_robin():
    w = make_workload({"type": "phases", "sets": 3, "set_fraction": "30%", "period": "5s"}, 9000, 1, 1.0)
    assert [w.active_set(t) for t in (0, 5, 10, 15)] == [0, 1, 2, 0]
    sets = [set(w.hot_pages(t, 2700)) for t in (0, 5, 10)]
    assert not (sets[0] & sets[1]) and not (sets[1] & sets[2]) and not (sets[0] & sets[2])


# ---- probabilities(): the distribution sample() draws from -----------------------------------------------------

def chi_square_fits(pages: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic of the sampled pages against probs, and its degrees of freedom; asserts that no page
    of probability 0 was sampled."""
    observed = np.bincount(pages, minlength=probs.size)
    expected = probs * pages.size
    assert not observed[expected == 0].any(), "sampled a page of probability 0"
    live = expected > 0
    chi2 = float((((observed - expected) ** 2)[live] / expected[live]).sum())
    return chi2, int(np.count_nonzero(live)) - 1


def assert_fits(pages: np.ndarray, probs: np.ndarray) -> None:
    chi2, df = chi_square_fits(pages, probs)
    # under the null chi2 ~ df +- sqrt(2 df); 5 sigma (the seeds are fixed, so this never flakes)
    assert abs(chi2 - df) < 5 * np.sqrt(2 * df), f"chi2 {chi2:.0f} for {df} degrees of freedom"
    tv = 0.5 * np.abs(np.bincount(pages, minlength=probs.size) / pages.size - probs).sum()
    assert tv < 2 * np.sqrt(probs.size / pages.size)  # total variation: ~0.8 sqrt(n / samples) by chance


# workload, footprint, tick length and ticks: each case crosses the moments its distribution changes
PROBABILITY_CASES = [
    ({"type": "zipf"}, 1000, 0.1, [0, 7]),
    ({"type": "zipf", "s": 1.3}, 1000, 0.1, [3]),
    ({"type": "zipf", "s": 0}, 1000, 0.1, [3]),
    ({"type": "write-heavy"}, 1000, 0.1, [2]),
    ({"type": "hotset", "move_every": "5s"}, 1000, 1.0, [0, 4, 5, 12]),
    ({"type": "hotset", "hot_share": 0}, 1000, 1.0, [1]),
    ({"type": "drift", "drift": "1%/s"}, 1000, 1.0, [0, 3, 57, 250]),  # offsets 0, 30, 570, 500 ranks
    ({"type": "idle-vm"}, 1000, 0.1, [0, 9]),
    ({"type": "idle-vm", "active_fraction": "30%", "s": 0.5}, 1000, 0.1, [4]),
    ({"type": "phases"}, 1000, 1.0, [0, 19, 20, 45]),
    ({"type": "phases", "sets": 3, "set_fraction": "30%", "s": 0.99}, 1000, 1.0, [0, 20, 41]),
]


@pytest.mark.parametrize("spec, npages, tick_s, ticks", PROBABILITY_CASES,
                         ids=[f"{c[0]['type']}-{i}" for i, c in enumerate(PROBABILITY_CASES)])
def test_sampled_pages_follow_probabilities_tick_by_tick(spec, npages, tick_s, ticks):
    w = make_workload({**spec, "samples": 200_000}, npages, seed=21, tick_s=tick_s)
    for tick in ticks:
        assert_fits(w.sample(tick)[0], w.probabilities(tick))
    # pooled over ticks, the samples follow the average of the ticks' distributions
    pooled = np.mean([w.probabilities(t) for t in ticks], axis=0)
    assert_fits(collect(w, ticks), pooled)


def test_the_chi_square_check_catches_small_errors():
    # Zipf ranks shifted by one
    w = make_workload({"type": "zipf", "samples": 200_000}, 1000, seed=21, tick_s=0.1)
    probs = w.probabilities(0)
    ranked = w.hot_pages(0, 1000)
    shifted = probs.copy()
    shifted[ranked[1:]] = probs[ranked[:-1]]
    shifted[ranked[0]] = probs[ranked[-1]]
    chi2, df = chi_square_fits(w.sample(0)[0], shifted)
    assert chi2 > df + 20 * np.sqrt(2 * df)
    # a hot set that forgets its part of the uniform accesses (0.9 / 100 instead of 0.9 / 100 + 0.1 / 1000),
    # in as many samples as four ticks of the test above
    h = make_workload({"type": "hotset", "samples": 800_000}, 1000, seed=21, tick_s=0.1)
    hot = h.hot_pages(0, 100)
    wrong = np.full(1000, 0.1 / 900)
    wrong[hot] = 0.9 / 100
    chi2, df = chi_square_fits(h.sample(0)[0], wrong)
    assert chi2 > df + 10 * np.sqrt(2 * df)


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_probabilities_are_a_float64_distribution_over_the_footprint(kind):
    w = make_workload({"type": kind}, 3000, seed=1, tick_s=0.1)
    for tick in (0, 1, 250, 10_000):
        probs = w.probabilities(tick)
        assert probs.dtype == np.float64 and probs.shape == (3000,)
        assert probs.min() >= 0
        assert probs.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_probabilities_are_deterministic_and_fresh_arrays(kind):
    spec = {"type": kind, "move_every": "1s"} if kind == "hotset" else {"type": kind}
    a = make_workload(spec, 4000, seed=3, tick_s=0.5)
    b = make_workload(spec, 4000, seed=3, tick_s=0.5)
    first = [a.probabilities(t) for t in range(6)]
    for t in (4, 0, 5, 2):  # replayed out of order, and by another instance
        np.testing.assert_array_equal(a.probabilities(t), first[t])
        np.testing.assert_array_equal(b.probabilities(t), first[t])
    first[1][:] = 0  # the caller owns the array
    np.testing.assert_array_equal(a.probabilities(1), b.probabilities(1))
    other = make_workload(spec, 4000, seed=4, tick_s=0.5)
    assert not np.array_equal(other.probabilities(0), b.probabilities(0))


@pytest.mark.parametrize("kind", ["zipf", "write-heavy", "hotset", "drift", "idle-vm", "phases"])
def test_hot_pages_are_listed_in_order_of_probability(kind):
    n = 2000
    w = make_workload({"type": kind, "move_every": "2s"} if kind == "hotset" else {"type": kind},
                      n, seed=5, tick_s=1.0)
    for tick in (0, 3, 25):
        probs = w.probabilities(tick)[w.hot_pages(tick, n)]
        assert (np.diff(probs) <= 0).all()


def test_zipf_probabilities_follow_the_zipf_formula_through_the_permutation():
    n, s = 100_000, 0.99
    w = make_workload({"type": "zipf", "s": s}, n, seed=4, tick_s=0.1)
    weights = np.arange(1, n + 1, dtype=np.float64) ** -s
    np.testing.assert_allclose(w.probabilities(0)[w.hot_pages(0, n)], weights / weights.sum(), rtol=1e-9)


def test_drift_probabilities_rotate_with_the_ranking():
    n = 1000
    w = make_workload({"type": "drift", "drift": "1%/s"}, n, seed=8, tick_s=1.0)
    p0 = w.probabilities(0)
    # 3 s at 1%/s of 1000 pages: every page is 30 ranks colder, the 30 coldest became the hottest
    ranked = w.hot_pages(0, n)
    np.testing.assert_array_equal(w.probabilities(3)[ranked], np.roll(p0[ranked], -30))


def test_hotset_probabilities_are_the_hot_share_over_the_current_hot_set_plus_uniform():
    n = 1000
    w = make_workload({"type": "hotset", "move_every": "5s"}, n, seed=6, tick_s=1.0)  # 10% hot, 90%
    for tick in (0, 4, 5, 31):
        probs = w.probabilities(tick)
        hot = w.hot_pages(tick, 100)
        cold = np.setdiff1d(np.arange(n), hot)
        np.testing.assert_allclose(probs[hot], 0.9 / 100 + 0.1 / n)
        np.testing.assert_allclose(probs[cold], 0.1 / n)
    assert not np.array_equal(w.probabilities(4), w.probabilities(5))


def test_idle_vm_and_phases_probabilities_are_zero_outside_the_active_pages():
    n = 1000
    idle = make_workload({"type": "idle-vm"}, n, seed=12, tick_s=0.1)
    active = idle.hot_pages(0, n // 2)
    for tick in (0, 100):
        probs = idle.probabilities(tick)
        assert np.count_nonzero(probs) == n // 2 and probs[active].sum() == pytest.approx(1.0)
    phases = make_workload({"type": "phases"}, n, seed=14, tick_s=1.0)  # 2 sets of 200 pages, 20 s each
    for tick in (0, 20, 45):
        probs = phases.probabilities(tick)
        np.testing.assert_allclose(probs[phases.hot_pages(tick, 200)], 1 / 200)
        assert np.count_nonzero(probs) == 200


@pytest.mark.parametrize("spec", [
    {},                                              # 475 pages/s x 0.1 s: 47-48 pages, several samples each
    {"scan_rate": "100k/s"},                         # 10k pages per tick, 1000 scan samples: 1 page in 10
    {"hot_share": "33%", "samples": 1001},           # hot_share x samples not a whole number
    {"hot_share": 0},                                # all scan
    {"hot_share": 1},                                # no scan
])
def test_scan_plus_hot_probabilities_put_the_scan_share_on_the_pages_the_scan_passes(spec):
    n = 10_000
    w = make_workload({"type": "scan+hot", "samples": 2000, **spec}, n, seed=10, tick_s=0.1)
    hot = w.hot_pages(0, 500)
    cold = np.setdiff1d(np.arange(n), hot)
    advance = w.describe()["scan_rate"] * 0.1
    nhot = round(w.describe()["hot_share"] * w.samples)
    for tick in (0, 1, 57, 199, 200, 2003):  # 199: the last tick of a loop; 200: the wrap
        probs = w.probabilities(tick)
        pages = w.sample(tick)[0]
        is_hot = np.isin(pages, hot)
        assert probs.sum() == pytest.approx(1.0)
        # the hot samples spread uniformly over the hot set (a fixed count of them per tick)
        np.testing.assert_allclose(probs[hot], nhot / w.samples / hot.size)
        # the scan is deterministic: each cold page gets exactly its share of this tick's scan samples
        expected = np.bincount(np.searchsorted(cold, pages[~is_hot]), minlength=cold.size) / w.samples
        np.testing.assert_array_equal(probs[cold], expected)
        # ... all on the cold pages the pointer passes during the tick
        passed = np.arange(np.floor(tick * advance), np.ceil((tick + 1) * advance)).astype(np.int64) % cold.size
        assert probs[cold].sum() == pytest.approx((w.samples - nhot) / w.samples)
        assert probs[np.setdiff1d(cold, cold[passed])].sum() == 0
    if nhot:  # and the hot samples are uniform over the hot set indeed
        pooled = collect(w, range(100))
        hot_probs = np.zeros(n)
        hot_probs[hot] = 1 / hot.size
        assert_fits(pooled[np.isin(pooled, hot)], hot_probs)


# ---- bad specs -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ({"type": "gups"}, r"^workload\.type: unknown workload type 'gups'; valid types: zipf, .*hotset"),
    ({"rate": "50M/s"}, r"^workload\.type: missing; valid types:"),
    ({"type": "zipf", "hot_fraction": "10%"},
     r"^workload\.hot_fraction: unknown key for workload type 'zipf'; valid keys: type, rate, samples, "
     r"write_ratio, s$"),
    ({"type": "hotset", "hot_fraction": 1.5}, r"^workload\.hot_fraction: must be within \[0\.0%, 100\.0%\], got 1\.5$"),
    ({"type": "hotset", "hot_fraction": "0%"}, r"^workload\.hot_fraction: must be > 0"),
    ({"type": "hotset", "move_every": "-1s"}, r"^workload\.move_every: a duration must not be negative"),
    ({"type": "zipf", "rate": "fast"}, r"^workload\.rate: invalid rate 'fast'"),
    ({"type": "zipf", "rate": 0}, r"^workload\.rate: must be > 0"),
    ({"type": "zipf", "samples": 0}, r"^workload\.samples: must be within \[1, inf\], got 0"),
    ({"type": "zipf", "samples": 10.5}, r"^workload\.samples: a count must be a whole number"),
    ({"type": "zipf", "write_ratio": True}, r"^workload\.write_ratio: expected a ratio, got the boolean"),
    ({"type": "zipf", "s": -1}, r"^workload\.s: must be within \[0, inf\], got -1"),
    ({"type": "drift", "drift": "150%/s"}, r"^workload\.drift: must be within \[0\.0%/s, 100\.0%/s\]"),
    ({"type": "scan+hot", "hot_fraction": "100%"}, r"^workload\.hot_fraction: leaves no cold pages to scan"),
    ({"type": "phases", "sets": 3, "set_fraction": "40%"},
     r"^workload\.set_fraction: 3 disjoint sets of 40\.0% do not fit in the footprint"),
    ({"type": "phases", "period": 0}, r"^workload\.period: must be > 0"),
    ({"type": "phases", "sets": 40, "set_fraction": "1%"}, r"^workload\.sets: 40 disjoint sets do not fit"),
])
def test_bad_specs_raise_value_errors_naming_the_key(spec, message):
    with pytest.raises(ValueError, match=message):
        make_workload(spec, 16, seed=0, tick_s=0.1)


def test_a_workload_can_be_built_from_its_class_with_a_spec():
    from pagetide.agent.workloads import HotsetWorkload
    w = HotsetWorkload(1000, 1, 0.1, {"hot_fraction": "20%"})
    assert w.describe()["hot_fraction"] == 0.2
    with pytest.raises(ValueError, match=r"^workload\.type: this is a 'hotset' workload, got type 'zipf'"):
        HotsetWorkload(1000, 1, 0.1, {"type": "zipf"})


def test_errors_are_reported_under_the_callers_key():
    with pytest.raises(ValueError, match=r"^tenants\[2\]\.workload\.s: "):
        make_workload({"type": "zipf", "s": "high"}, 100, 0, 0.1, where="tenants[2].workload")


def test_spec_keys_must_be_strings_and_where_is_not_a_spec_key():
    with pytest.raises(ValueError, match="keys must be strings"):
        make_workload({"type": "zipf", 1: 2}, 100, 0, 0.1)
    with pytest.raises(ValueError, match=r"^workload\.where: unknown key"):
        make_workload({"type": "zipf", "where": "x"}, 100, 0, 0.1)


@pytest.mark.parametrize("spec", [None, ["zipf"], "zipf"])
def test_a_spec_that_is_not_a_mapping_is_rejected(spec):
    with pytest.raises(ValueError, match=r"^workload: expected a mapping with a 'type' key"):
        make_workload(spec, 100, 0, 0.1)


@pytest.mark.parametrize("npages, seed, tick_s, fragment", [
    (0, 0, 0.1, "npages must be >= 1"), (True, 0, 0.1, "npages must be an integer"),
    (100, -1, 0.1, "seed must be >= 0"), (100, 0, 0, "tick_s must be a positive"),
    (100, 0, float("nan"), "tick_s must be a positive"),
])
def test_bad_construction_arguments_are_rejected(npages, seed, tick_s, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_workload({"type": "zipf"}, npages, seed, tick_s)


def test_negative_ticks_and_oversized_hot_page_queries_are_rejected():
    w = make_workload({"type": "zipf"}, 100, 0, 0.1)
    with pytest.raises(ValueError, match="tick must be >= 0"):
        w.sample(-1)
    with pytest.raises(ValueError, match="must be <= npages"):
        w.hot_pages(0, 101)


def test_drifts_expected_over_an_epoch_is_the_generic_sum_bit_for_bit_in_float64():
    """drift's rotated-pmf sum against the generic sum of each tick's probabilities, in float64."""
    w = make_workload({"type": "drift", "rate": "7.3M/s", "drift": "3%/s"}, 2061, 7, 0.1)
    scale = w.rate * w.tick_s
    for start, n in ((0, 10), (37, 10), (95, 7), (5, 1)):
        runs = w._runs(start, n)
        got, ref = np.full(w.npages, np.nan), np.full(w.npages, np.nan)
        w._expected_runs(runs, scale, got)
        Workload._expected_runs(w, runs, scale, ref)
        assert np.array_equal(got.view(np.uint64), ref.view(np.uint64)), (start, n)



def test_zipf_sums_share_one_array_per_exponent_and_a_prefix_never_depends_on_its_length():
    from pagetide.agent.workloads import zipf_cdf, zipf_sums
    small = zipf_sums(1000, 0.77).copy()
    big = zipf_sums(200_000, 0.77)                       # grows the shared array
    assert np.array_equal(big[:1000].view(np.uint64), small.view(np.uint64))
    assert zipf_sums(5000, 0.77).base is big.base       # a smaller size is a view of the same array
    assert np.allclose(big, np.cumsum(np.arange(1, 200_001, dtype=np.float64) ** -0.77), rtol=1e-12, atol=0)
    cdf = zipf_cdf(1000, 0.77)
    assert cdf[-1] == 1.0 and np.array_equal(cdf, small / small[-1])
