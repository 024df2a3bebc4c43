"""The Recorder's per-epoch bookkeeping (agent/accounting.py) against a dense reference: every sample weighed
one by one over every page slot, the oracle's choice from a density array of every page, the lag-one
oracle's moves from full masks. The sparse bookkeeping must give the same numbers bit for bit."""

import dataclasses

import numpy as np
import pytest

from pagetide.agent.accounting import Recorder, _kth_smallest, _smallest
from pagetide.agent.host import Host
from pagetide.agent.scenario import parse_scenario

TENANTS = [
    # a rate whose accesses per sample (rate x tick / samples) is not a binary fraction, so summing a slot's
    # samples one by one differs from multiplying their number
    {"name": "z", "footprint": "8MiB", "workload": {"type": "zipf", "samples": 3000, "rate": "7.3M/s"}},
    {"name": "hs", "footprint": "6MiB", "workload": {"type": "hotset", "samples": 2000, "move_every": "300ms"}},
    {"name": "sh", "footprint": "4MiB", "workload": {"type": "scan+hot", "samples": 1000}},
    {"name": "huge", "footprint": "16MiB", "page_size": "2MiB", "workload": {"type": "zipf", "samples": 500}},
]


def host(tiers: int, tenants: list = TENANTS) -> Host:
    nodes = [{"id": 0, "type": "dram", "capacity": "10MiB", "peer_node": 1},
             {"id": 1, "type": "pmem", "capacity": "64MiB"}]
    if tiers == 3:
        nodes = [{"id": 0, "type": "dram", "capacity": "8MiB", "peer_node": 1},
                 {"id": 1, "type": "cxl", "capacity": "8MiB", "peer_node": 2, "read_latency": "170ns",
                  "write_latency": "170ns", "read_bandwidth": "64GB/s", "write_bandwidth": "64GB/s"},
                 {"id": 2, "type": "pmem", "capacity": "64MiB"}]
    h = Host(parse_scenario({"seed": 5, "tick": "100ms", "duration": "2s", "epoch": "300ms",
                             "host": {"nodes": nodes, "kernel": {"swap": "32MiB"}}, "tenants": tenants}))
    h.boot()
    return h


def dense_counts(h: Host, ticks: list[list[np.ndarray]]):
    slots = np.concatenate([p + t.start for tick in ticks for t, p in zip(h.tenants, tick)])
    weights = np.concatenate([np.full(p.size, t.workload.accesses_per_sample) for tick in ticks
                              for t, p in zip(h.tenants, tick)])
    uniq, inv = np.unique(slots, return_inverse=True)
    return uniq, np.bincount(inv, weights=weights)


def dense_tiers(rec: Recorder, expected: np.ndarray) -> np.ndarray:
    """Each page's tier in the clairvoyant placement, from a full sort of the densities over every page (of
    equal densities the lowest slot first)."""
    h = rec.host
    weights = np.repeat(h.tenant_page_nr, [t.npages for t in h.tenants]).astype(np.int16)
    density = expected / weights
    bounds = np.cumsum(np.maximum(rec.tier_budgets(), 0))
    k = min(h.nr_pages, int(bounds[-1]))
    cand = np.lexsort((np.arange(h.nr_pages), -density))[:k]     # densest first, equal densities lowest slot first
    tier = np.full(h.nr_pages, max(1, h.nr_tiers - 1), dtype=np.int8)
    if len(bounds) == 1 and (h.tenant_page_nr == 1).all():
        tier[cand] = 0
        return tier
    cand = cand[np.argsort(-density[cand], kind="stable")]
    tier[cand] = np.searchsorted(bounds, np.cumsum(weights[cand]), side="left")
    return tier


def test_a_slots_accesses_are_its_samples_weighed_one_by_one_bit_for_bit():
    h = host(2)
    rec = Recorder(h)
    ticks = []
    for _ in range(2):                      # within the first epoch (3 ticks)
        samples = h.run_tick()
        ticks.append([s.copy() for s in samples])
        rec.record(samples)
    uniq_ref, counts_ref = dense_counts(h, ticks)
    uniq, counts, owner = rec._epoch_counts()
    assert np.array_equal(uniq, uniq_ref) and np.array_equal(owner, h.owner(uniq))
    assert counts.dtype == np.float64 and np.array_equal(counts, counts_ref)
    # the case that tells a sequential sum from a product is there
    n = np.bincount(np.searchsorted(uniq_ref, np.concatenate([p + t.start for tk in ticks
                                                              for t, p in zip(h.tenants, tk)])))
    w = h.tenants[0].workload.accesses_per_sample
    z = owner == 0
    assert (n[z] * w != counts_ref[z]).any()
    assert not rec._pending and rec._epoch_counts()[0].size == 0     # the epoch's samples are dropped


@pytest.mark.parametrize("tiers", [2, 3])
def test_oracle_hits_and_the_lag_one_oracles_moves_match_the_dense_reference_every_epoch(tiers):
    h = host(tiers)
    rec = Recorder(h)
    nt, ticks, prev = len(h.tenants), [], None
    oracle = np.zeros(nt)
    lag_time = np.zeros(nt)
    for _ in range(3 * rec.epoch_ticks + 1):      # three epochs and one tick, closed as a run's end does
        samples = h.run_tick()
        ticks.append([s.copy() for s in samples])
        closes = h.tick_no % rec.epoch_ticks == 0
        if closes:
            uniq, counts = dense_counts(h, ticks)
            tier = dense_tiers(rec, rec._expected(len(ticks)))
            owner = h.owner(uniq)
            oracle += np.bincount(owner, weights=np.where(tier[uniq] == 0, counts, 0.0), minlength=nt)
            full = tier == 0
            before = (h.node >= 0) & h.is_fast[np.maximum(h.node, 0)] if prev is None else prev
            if tiers == 2:
                w = np.repeat(h.tenant_page_nr, [t.npages for t in h.tenants]).astype(np.float64)
                up, down = np.flatnonzero(full & ~before), np.flatnonzero(before & ~full)
                up_s = 4096 / min(h.read_bw[1], h.write_bw[0])
                down_s = 4096 / min(h.read_bw[0], h.write_bw[1])
                over = h.k.migration_overhead
                lag_time += np.bincount(h.owner(up), weights=w[up] * up_s + over, minlength=nt)
                lag_time += np.bincount(h.owner(down), weights=w[down] * down_s + over, minlength=nt)
            prev, ticks = full, []
        rec.record(samples)
        if closes:
            assert np.array_equal(rec.oracle_hits, oracle)
            assert np.array_equal(rec._lag_chosen, prev)
            if tiers == 2:
                assert (lag_time > 0).any() and np.array_equal(rec.lag_migration_time, lag_time)
    assert rec._pending
    uniq, counts = dense_counts(h, ticks)
    tier = dense_tiers(rec, rec._expected(len(ticks)))
    oracle += np.bincount(h.owner(uniq), weights=np.where(tier[uniq] == 0, counts, 0.0), minlength=nt)
    rec.close_epoch()
    assert np.array_equal(rec.oracle_hits, oracle) and rec.epochs == 4


def test_the_static_oracle_ranks_huge_pages_by_accesses_per_base_page():
    h = host(2)
    rec = Recorder(h)
    expected = np.random.default_rng(2).random(h.nr_pages).astype(np.float32)
    chosen = rec._choose(expected.copy())
    assert np.array_equal(chosen, dense_tiers(rec, expected) == 0)
    assert np.array_equal(rec._assign(expected.copy(), scratch=True), dense_tiers(rec, expected))


def lowest_k(values: np.ndarray, k: int) -> np.ndarray:
    """The k smallest values by a full sort, of equal values the lowest slots."""
    mask = np.zeros(values.size, dtype=bool)
    mask[np.lexsort((np.arange(values.size), values))[:k]] = True
    return mask


def test_the_oracles_choice_is_exactly_the_k_smallest_with_the_lowest_slots_at_a_tie():
    rng = np.random.default_rng(7)
    cases = []
    for n in (1, 5, 3000, 70_000, 300_000):
        for levels in (1, 2, 3, 50, None):              # few distinct values (ties everywhere) to all distinct
            v = rng.random(n) if levels is None else rng.integers(0, levels, n).astype(np.float64) / 7
            for dtype in (np.float32, np.float64):
                cases.append(v.astype(dtype))
    ramp = np.arange(200_000, dtype=np.float32)
    cases.append(np.where(np.arange(ramp.size) % 64 == 0, -1.0, ramp).astype(np.float32))   # the sample lies
    cases.append(np.repeat(np.float32([3.0, 1.0, 2.0]), [90_000, 5, 90_000]))
    cases.append(-np.sort(rng.random(150_000).astype(np.float32)))
    for v in cases:
        n = v.size
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n, n + 3, int(rng.integers(0, n + 1))}):
            before = v.copy()
            got = _smallest(v, k)
            assert np.array_equal(v, before), "the values are not changed"
            assert got.dtype == bool and got.size == n and int(got.sum()) == min(k, n)
            assert np.array_equal(got, lowest_k(v, k)), (n, k, v.dtype)
            if 1 <= k < n:               # the cut itself: exact, or the sample's equal bounds, too few to reach k
                cut, under = _kth_smallest(v, k)
                assert under is None or np.array_equal(under, v < cut)
                assert cut == np.sort(v)[k - 1] or (under is not None and np.count_nonzero(v <= cut) < k)


def test_the_per_epoch_oracle_keeps_the_lowest_slots_of_a_tie_every_time():
    h = host(2, TENANTS[:3])                             # base pages, two tiers: the oracle's mask path
    rec = Recorder(h)
    expected = np.repeat(np.float32([5.0, 1.0, 5.0]), [t.npages for t in h.tenants])
    k = rec.dram_budget()
    first = rec._choose(expected.copy(), scratch=True)
    assert np.array_equal(first, lowest_k(-expected, k))
    assert np.array_equal(rec._choose(expected.copy()), first)


@pytest.mark.parametrize("tiers", [2, 3])
def test_without_oracles_the_run_is_the_same_and_every_oracle_figure_is_nan(tiers):
    runs = {}
    for oracles in (True, False):
        h = host(tiers)
        h.scenario = dataclasses.replace(h.scenario, oracles=oracles)
        rec = Recorder(h)
        for _ in range(7):                        # two epochs of 3 ticks and a partial one
            rec.record(h.run_tick())
        runs[oracles] = (rec, rec.results(final=True))
    (on, a), (off, b) = runs[True], runs[False]
    assert off.total_expected is None and off.total_sampled is None and off._lag_chosen is None
    assert not any(off._samples)
    assert (a.dram_share, a.slowdown, a.tier_share) == (b.dram_share, b.slowdown, b.tier_share)
    assert np.isnan([b.oracle_share, b.lag_oracle_share, b.lag_cost_slowdown, *b.oracle_tier_share,
                     *b.lag_oracle_tier_share]).all()
    for x, y in zip(a.tenants, b.tenants):
        assert (x.dram_share, x.slowdown, x.series_dram_share, x.migrated_bytes) == \
               (y.dram_share, y.slowdown, y.series_dram_share, y.migrated_bytes)
        assert np.isnan([y.oracle_share, y.static_oracle_share, y.oracle_slowdown, y.lag_oracle_share,
                         y.lag_oracle_slowdown, y.lag_cost_slowdown, *y.series_oracle_share]).all()
        assert len(y.series_oracle_share) == len(x.series_oracle_share) == 3
        assert not np.isnan([x.oracle_share, x.lag_oracle_share, x.static_oracle_share]).any()


def test_oracles_must_be_true_or_false():
    from pagetide.agent.scenario import ScenarioError
    d = {"host": {"nodes": [{"id": 0, "type": "dram", "capacity": "8MiB"}]},
         "tenants": [{"name": "a", "footprint": "4MiB", "workload": {"type": "zipf"}}]}
    assert parse_scenario(d).oracles and not parse_scenario({**d, "oracles": False}).oracles
    with pytest.raises(ScenarioError, match=r"^oracles: expected true or false, got 'no'"):
        parse_scenario({**d, "oracles": "no"})
