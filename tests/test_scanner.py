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


@pytest.mark.parametrize("hottest", [True, False])
@pytest.mark.parametrize("k", [1, 100, 4096, 70000])
def test_candidate_picking_equals_a_full_sort_by_heat_then_page(hottest, k):
    from pagetide.agent.scanner import pick

    rng = np.random.default_rng(k)
    heat = rng.integers(0, 256, 50000).astype(np.uint8)
    heat[rng.random(50000) < 0.5] = 0
    node = rng.integers(0, 2, 50000)
    pages = np.flatnonzero(rng.random(50000) < 0.8)
    c = pick(pages, heat, node, k, hottest)
    key = -heat[pages].astype(int) if hottest else heat[pages].astype(int)
    ref = pages[np.lexsort((pages, key))][:k]
    if hottest:
        ref = ref[heat[ref] > 0]
    assert c.pages.tolist() == ref.tolist()
    assert c.heat.tolist() == heat[ref].tolist() and c.node.tolist() == node[ref].tolist()
