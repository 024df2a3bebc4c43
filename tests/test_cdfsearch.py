"""agent/cdfsearch.py: the guide-table search answers exactly what np.searchsorted(cum, u, side="right") does."""

import numpy as np
import pytest

from pagetide.agent.cdfsearch import GuideSearch
from pagetide.agent.workloads import zipf_cdf


def same_as_searchsorted(cum: np.ndarray, u: np.ndarray, per_bucket: int = 8) -> None:
    got = GuideSearch(cum, per_bucket)(u)
    want = np.searchsorted(cum, u, side="right")
    assert got.dtype == np.intp and np.array_equal(got, want)


@pytest.mark.parametrize("n, s", [(1, 0.99), (7, 0.5), (4096, 0.99), (100_003, 1.2), (65_536, 0.3)])
@pytest.mark.parametrize("per_bucket", [1, 8, 64])
def test_zipf_cdfs_give_the_searchsorted_answer_for_sorted_and_unsorted_keys(n, s, per_bucket):
    rng = np.random.default_rng(n)
    cdf = zipf_cdf(n, s)
    u = rng.random(20_000)
    same_as_searchsorted(cdf, u, per_bucket)
    same_as_searchsorted(cdf, np.sort(u), per_bucket)


def test_keys_on_the_bucket_edges_and_on_the_cdf_values_themselves():
    cdf = zipf_cdf(5000, 0.99)
    m = 1024
    edges = np.arange(m) / m
    same_as_searchsorted(cdf, edges)
    same_as_searchsorted(cdf, cdf[:-1])                 # u == cdf[i] answers i + 1
    same_as_searchsorted(cdf, np.nextafter(cdf[:-1], 0))


@pytest.mark.parametrize("total_scale", [1, 1000, 2**40])
def test_integer_weights_with_zero_weight_entries_and_large_totals(total_scale):
    rng = np.random.default_rng(total_scale)
    weights = rng.integers(0, 5, 30_000) * total_scale
    weights[::7] = 0                                     # equal cumulative values: the answer skips them
    weights[-1] = max(1, weights[-1])
    cum = np.cumsum(weights)
    u = rng.integers(0, cum[-1], 50_000)
    same_as_searchsorted(cum, u)
    same_as_searchsorted(cum, np.sort(u))
    same_as_searchsorted(cum, np.array([0, cum[-1] - 1]))


def test_one_heavy_entry_among_many_light_ones_still_needs_only_its_own_window():
    weights = np.ones(100_000, dtype=np.int64)
    weights[50_000] = 10**9
    cum = np.cumsum(weights)
    same_as_searchsorted(cum, np.random.default_rng(0).integers(0, cum[-1], 10_000))


@pytest.mark.parametrize("cum, message", [
    (np.array([]), "non-empty 1-d"),
    (np.ones((2, 2)), "non-empty 1-d"),
    (np.array([0.2, 0.9]), "end at exactly 1.0"),
    (np.array([0, 0]), "more than 0"),
])
def test_bad_tables_are_refused_with_the_reason(cum, message):
    with pytest.raises(ValueError, match=message):
        GuideSearch(cum)


@pytest.mark.parametrize("n", [1, 3, 1000, 70_001])
def test_normalised_partial_sums_search_the_cdf_they_divide_to_bit_for_bit(n):
    rng = np.random.default_rng(n)
    sums = np.cumsum(rng.random(n) * 3.0)
    cdf = sums / sums[-1]
    search = GuideSearch(sums, normalise=True)
    u = rng.random(30_000)
    assert np.array_equal(search(u), np.searchsorted(cdf, u, side="right"))
    assert np.array_equal(search.cdf().view(np.uint64), cdf.view(np.uint64))


def test_normalise_refuses_integer_or_empty_sums():
    with pytest.raises(ValueError, match="normalise needs float partial sums"):
        GuideSearch(np.array([1, 2, 3]), normalise=True)
    with pytest.raises(ValueError, match="normalise needs float partial sums"):
        GuideSearch(np.zeros(4), normalise=True)
