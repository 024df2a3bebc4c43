import copy

import numpy as np
import pytest

from pagetide.agent.host import Host
from pagetide.agent.idle_pages import decode_arrays, page_report, scan_stream
from pagetide.agent.backend import BadRequest, MoveCall
from pagetide.agent.simhost import SimHost
from pagetide.agent.scanner import HEAT_BINS, Scanner

from helpers import small_scenario


def busy_host():
    h = Host(small_scenario(dram="32MiB", slow="128MiB", tenants=[
        {"name": "a", "footprint": "48MiB", "workload": {"type": "hotset", "samples": 4096}},
        {"name": "b", "kind": "task", "footprint": "32MiB", "page_size": "2MiB",
         "workload": {"type": "zipf", "samples": 512}}]))
    h.boot()
    for _ in range(3):
        h.run_tick()
    return h


def test_scanner_refs_equal_what_decoding_the_idle_pages_byte_stream_gives():
    h = busy_host()
    twin = copy.deepcopy(h)
    sc = Scanner(h)
    sc.scan()
    for t, tt in zip(h.tenants, twin.tenants):
        vma = twin.vma(tt)
        rep = page_report(vma, decode_arrays(scan_stream([vma])))
        assert (sc.refs[t.start:t.end] == rep.accessed).all()
    assert (h.flags == twin.flags).all()         # identical side effects: A bits test-and-cleared


def test_heat_rises_with_refs_and_decays_when_a_page_goes_idle():
    h = busy_host()
    sc = Scanner(h, nr_scans=3)
    t = h.tenants[0]
    page = t.start + 7
    for _ in range(3):
        h.flags[page] |= 1
        sc.scan()
    sc.end_period()
    assert sc.heat[page] == (0 + 15 * 16) // 2
    for _ in range(3):
        sc.scan()                                   # idle now
    sc.end_period()
    assert sc.heat[page] == 120 // 2


def test_a_page_seen_in_every_scan_reaches_the_top_heat_bin_and_an_idle_one_decays_to_zero():
    h = busy_host()
    sc = Scanner(h, nr_scans=2)
    t = h.tenants[0]
    hot, cold = t.start + 1, t.start + 2
    for _ in range(12):
        for _ in range(2):
            h.flags[hot] |= 1
            h.flags[cold] &= ~np.uint8(1)
            sc.scan()
        sc.end_period()
    assert sc.heat[hot] == 240 and sc.heat[hot] >> 4 == HEAT_BINS - 1
    assert sc.heat[cold] == 0
    assert sc.period_refs[0] >= 2


def test_tenant_heat_histograms_count_every_resident_page_and_candidates_are_ordered():
    h = busy_host()
    sc = Scanner(h)
    for _ in range(5):
        h.run_tick()
        sc.scan()
    sc.end_period()
    for t in h.tenants:
        th = sc.tenant_heat(t, 64)
        nd = h.node[t.start:t.end]
        assert th.hist.shape == (h.nr_nodes, HEAT_BINS)
        assert th.hist.sum(axis=1).tolist() == np.bincount(nd[nd >= 0], minlength=h.nr_nodes).tolist()
        assert len(th.hot_slow.pages) <= 64 and (np.diff(th.hot_slow.heat.astype(int)) <= 0).all()
        assert (np.diff(th.cold_fast.heat.astype(int)) >= 0).all()
        assert (th.hot_slow.node == 1).all() and (th.cold_fast.node == 0).all()
        assert (th.hot_slow.heat > 0).all()


def test_sim_host_scans_on_schedule_and_reports_complete_periods():
    sh = SimHost(small_scenario(), nr_scans=5)
    assert sh.heat_report(16).period == 0
    sh.advance(sh.scenario.ticks_per_epoch)
    rep = sh.heat_report(16)
    assert rep.period == 1 and rep.nr_scans == 5
    assert rep.time == pytest.approx(sh.scenario.epoch)
    assert sh.tracker.pages_scanned == 5 * sh.host.nr_pages


def test_sim_host_rejects_bad_batches_whole_and_replays_retried_batch_ids():
    sh = SimHost(small_scenario())

    def one(tenant, addresses, nodes, flags, batch_id=""):
        call = MoveCall(tenant, np.asarray(addresses, dtype=np.uint64), np.asarray(nodes, dtype=np.int64), flags)
        return sh.move_pages([call], batch_id)[0]
    t = sh.host.tenants[0]
    before = dict(sh.host.vmstat)
    with pytest.raises(BadRequest) as e:
        one("nobody", [t.vma_start], [1], 2)
    assert e.value.not_found
    with pytest.raises(BadRequest, match="not aligned"):
        one(t.name, [t.vma_start + 8], [1], 2)
    with pytest.raises(BadRequest, match="4 MiB"):
        one(t.name, t.vma_start + 4096 * np.arange(1025, dtype=np.uint64), np.ones(1025), 2)
    with pytest.raises(BadRequest, match="target nodes"):
        one(t.name, [t.vma_start], [1, 1], 2)
    with pytest.raises(BadRequest, match="flags"):
        one(t.name, [t.vma_start], [1], 1 << 12)
    assert sh.host.vmstat == before
    other = 1 - int(sh.host.node[t.start])
    first = one(t.name, [t.vma_start], [other], 2, batch_id="b1")
    again = one(t.name, [t.vma_start], [other], 2, batch_id="b1")
    assert again is first and first.status.tolist() == [other]
    with pytest.raises(BadRequest, match="different calls"):
        one(t.name, [t.vma_start], [1 - other], 2, batch_id="b1")
    assert sh.host.vmstat["pgmigrate_success"] == before["pgmigrate_success"] + 1
    sh.host.check_invariants()


def test_fold_is_the_docstring_formula_for_every_heat_refs_and_scans():
    """Every heat byte x refs 0..scans x scans 0..15, refs as the scanner's uint8 and as int64, against the
    formula in plain integers; fold_target with chmu's uint16 targets too."""
    from pagetide.agent.scanner import fold, fold_target

    heat, refs = np.meshgrid(np.arange(256), np.arange(16), indexing="ij")
    heat, refs = heat.ravel(), refs.ravel()
    for scans in range(16):
        n = max(1, scans)
        ok = refs <= n
        h, r = heat[ok], refs[ok]
        target = (r * 15 + n // 2) // n * 16
        want = (h + target + (target > h)) // 2
        for dtype in (np.uint8, np.int64):
            got = fold(h.astype(np.uint8), r.astype(dtype), scans)
            assert got.dtype == np.uint8 and got.tolist() == want.tolist(), (scans, dtype)
        got = fold_target(h.astype(np.uint8), target.astype(np.uint16))
        assert got.tolist() == want.tolist()


def _sorted_lists(pages, heat, node, k, hottest):
    """The definition of a candidate list: the pages sorted by heat (hottest or coldest first), then by offset,
    the first k; a hot list keeps no page of heat 0."""
    key = -heat[pages].astype(int) if hottest else heat[pages].astype(int)
    ref = pages[np.lexsort((pages, key))][:k]
    return ref[heat[ref] > 0] if hottest else ref


@pytest.mark.parametrize("k", [0, 1, 100, 4096, 70000])
@pytest.mark.parametrize("layout", ["spread", "ties", "idle", "int64-nodes", "three-tier"])
@pytest.mark.parametrize("coded", ["every page", "heated pages"])
def test_tenant_heat_lists_and_histogram_equal_a_full_sort_by_heat_then_page(k, layout, coded, monkeypatch):
    from pagetide.agent.scanner import _Codes, tenant_heat

    # _Codes codes every page, or (where few have heat) only the heated ones: both must give the definition
    monkeypatch.setattr(_Codes, "SPARSE", 10**9 if coded == "every page" else 0)

    rng = np.random.default_rng(k)
    n = 300_000                                   # several of tenant_heat's chunks when a list reads a tie
    heat = rng.integers(0, 256, n).astype(np.uint8)
    if layout == "ties":
        heat = rng.choice(np.array([0, 16, 120, 240], dtype=np.uint8), n)
    elif layout == "idle":
        heat[rng.random(n) < 0.97] = 0
    nr_nodes = 4 if layout == "three-tier" else 3
    is_fast = np.array([True, False, True, False][:nr_nodes])      # DRAM on nodes 0 and 2
    tier = np.array([0, 1, 0, 2]) if layout == "three-tier" else None
    node = rng.integers(-2, nr_nodes, n)          # -1: not present, -2: swapped out
    node = node if layout == "int64-nodes" else node.astype(np.int8)
    th = tenant_heat("vm", heat, node, is_fast, k, max_hot_fast=k // 2, tier=tier)
    on = node >= 0
    ref_hist = np.zeros((nr_nodes, HEAT_BINS), dtype=np.int64)
    np.add.at(ref_hist, (node[on], heat[on] >> 4), 1)
    assert (th.hist == ref_hist).all()
    fast = np.flatnonzero(on & is_fast[np.maximum(node, 0)])
    slow = np.flatnonzero(on & ~is_fast[np.maximum(node, 0)])
    want = [(th.hot_slow, slow, k, True), (th.cold_fast, fast, k, False), (th.hot_fast, fast, k // 2, True)]
    if tier is not None:
        rank = np.where(on, tier[np.maximum(node, 0)], -1)
        (b, up, cold, hot), = th.lower
        assert b == 1
        want += [(up, np.flatnonzero(rank > 1), k, True), (cold, np.flatnonzero(rank == 1), k, False),
                 (hot, np.flatnonzero(rank == 1), k // 2, True)]
    for c, pages, kk, hottest in want:
        ref = _sorted_lists(pages, heat, node, kk, hottest)
        assert c.pages.tolist() == ref.tolist()
        assert c.heat.tolist() == heat[ref].tolist() and c.node.tolist() == node[ref].tolist()
        assert c.node.dtype == np.int64
