"""agent/cdfsearch.py: the guide-table search answers exactly what np.searchsorted(sums / sums[-1], u,
side="right") does."""

import numpy as np
import pytest

from pagetide.agent.cdfsearch import GuideSearch
from pagetide.agent.workloads import zipf_cdf, zipf_sums


def same_as_searchsorted(sums: np.ndarray, u: np.ndarray, per_bucket: int = 8) -> None:
    got = GuideSearch(sums, per_bucket)(u)
    want = np.searchsorted(sums / sums[-1], u, side="right")
    assert got.dtype == np.intp and np.array_equal(got, want)


@pytest.mark.parametrize("n, s", [(1, 0.99), (7, 0.5), (4096, 0.99), (100_003, 1.2), (65_536, 0.3)])
@pytest.mark.parametrize("per_bucket", [1, 8, 64])
def test_zipf_cdfs_give_the_searchsorted_answer_for_sorted_and_unsorted_keys(n, s, per_bucket):
    rng = np.random.default_rng(n)
    u = rng.random(20_000)
    for table in (zipf_sums(n, s), zipf_cdf(n, s)):     # the partial sums, or the CDF itself (sums ending at 1)
        same_as_searchsorted(table, u, per_bucket)
        same_as_searchsorted(table, np.sort(u), per_bucket)


def test_keys_on_the_bucket_edges_and_on_the_cdf_values_themselves():
    sums, cdf = zipf_sums(5000, 0.99), zipf_cdf(5000, 0.99)
    m = 1024
    edges = np.arange(m) / m
    same_as_searchsorted(sums, edges)
    same_as_searchsorted(sums, cdf[:-1])                # u == cdf[i] answers i + 1
    same_as_searchsorted(sums, np.nextafter(cdf[:-1], 0))


@pytest.mark.parametrize("total_scale", [1.0, 1000.0, 2.0**40])
def test_zero_weight_entries_and_large_totals(total_scale):
    rng = np.random.default_rng(int(total_scale))
    weights = rng.integers(0, 5, 30_000) * total_scale
    weights[::7] = 0                                     # equal partial sums: the answer skips them
    weights[-1] = max(1.0, weights[-1])
    sums = np.cumsum(weights)
    u = rng.random(50_000)
    same_as_searchsorted(sums, u)
    same_as_searchsorted(sums, np.sort(u))
    same_as_searchsorted(sums, np.array([0.0, np.nextafter(1.0, 0)]))


def test_one_heavy_entry_among_many_light_ones_still_needs_only_its_own_window():
    weights = np.ones(100_000)
    weights[50_000] = 1e9
    same_as_searchsorted(np.cumsum(weights), np.random.default_rng(0).random(10_000))


@pytest.mark.parametrize("n", [1, 3, 1000, 70_001])
def test_the_cdf_searched_is_the_sums_divided_bit_for_bit(n):
    rng = np.random.default_rng(n)
    sums = np.cumsum(rng.random(n) * 3.0)
    cdf = sums / sums[-1]
    search = GuideSearch(sums)
    u = rng.random(30_000)
    assert np.array_equal(search(u), np.searchsorted(cdf, u, side="right"))
    assert np.array_equal(search.cdf().view(np.uint64), cdf.view(np.uint64))


@pytest.mark.parametrize("sums, message", [
    (np.array([]), "non-empty 1-d"),
    (np.ones((2, 2)), "non-empty 1-d"),
    (np.array([1, 2, 3]), "float partial sums"),
    (np.zeros(4), "ending above 0"),
])
def test_bad_tables_are_refused_with_the_reason(sums, message):
    with pytest.raises(ValueError, match=message):
        GuideSearch(sums)
