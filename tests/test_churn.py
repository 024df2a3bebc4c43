"""VM churn in the host model (agent/churn.py through agent/simhost.py): tenants arrive, leave and resize while
the host runs, and the model's invariants hold after every change."""

import numpy as np
import pytest

from pagetide.agent.backend import BadRequest
from pagetide.agent.pageflags import NODE_NONE, PAGE_SIZE
from pagetide.agent.simhost import SimHost

from helpers import small_scenario

MiB = 1 << 20
TENANTS = [{"name": "vm0", "footprint": "48MiB", "workload": {"type": "zipf", "samples": 1024}},
           {"name": "vm1", "footprint": "32MiB", "workload": {"type": "hotset", "samples": 1024}},
           {"name": "vm2", "footprint": "24MiB", "workload": {"type": "drift", "samples": 1024}}]


def sim(mode="none", **kernel) -> SimHost:
    if mode != "none":
        kernel["tiering"] = {"mode": mode}
    s = SimHost(small_scenario(dram="32MiB", slow="96MiB", tenants=TENANTS, kernel=kernel))
    s.advance(5)
    return s


def pages_of(s: SimHost, name: str) -> np.ndarray:
    t = s.host.by_name[name]
    return s.host.node[t.start:t.end].copy()


def state(s: SimHost):
    h = s.host
    return (h.node.copy(), h.flags.copy(), h.node_used.copy(), h.node_pgtable.copy(), h.swap_used,
            [t.name for t in h.tenants], [t.spec.footprint for t in h.tenants], h.generation)


def same(a, b) -> bool:
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


@pytest.mark.parametrize("mode", ["none", "nbt", "tpp", "damos"])
def test_every_page_stays_on_one_node_and_no_node_overflows_through_arrivals_departures_and_resizes(mode):
    s = sim(mode)
    s.add_tenant({"name": "web", "footprint": "16MiB", "workload": {"type": "zipf", "samples": 512}})
    s.host.check_invariants()
    s.advance(5)
    s.resize_tenant("web", 28 * MiB)
    s.host.check_invariants()
    s.advance(5)
    s.resize_tenant("vm0", 20 * MiB)
    s.host.check_invariants()
    s.advance(5)
    s.remove_tenant("vm1")
    s.host.check_invariants()
    s.advance(10)
    assert s.stats().invariant_error == ""
    assert [t.name for t in s.host.tenants] == ["vm0", "vm2", "web"]
    assert s.host.nr_pages == sum(t.npages for t in s.host.tenants) == (20 + 24 + 28) * MiB // PAGE_SIZE
    # the tracker and the mode follow the new layout
    assert s.tracker.heat.size == s.host.nr_pages
    if mode in ("nbt", "tpp"):
        assert s.host.tiering.prot_none.size == s.host.nr_pages
    s.heat_report(64)


def test_a_departing_vm_frees_its_pages_on_every_node_and_its_page_tables():
    s = sim()
    t = s.host.by_name["vm1"]
    nd = pages_of(s, "vm1")
    resident = np.bincount(nd[nd >= 0], minlength=2)
    assert resident[0] > 0 and resident[1] > 0, "vm1 should have pages on both tiers"
    used, pgtable = s.host.node_used.copy(), s.host.node_pgtable.copy()
    by_node = t.pgtable_by_node.copy()
    others = {n: pages_of(s, n) for n in ("vm0", "vm2")}
    s.remove_tenant("vm1")
    assert (s.host.node_used == used - resident).all()
    assert (s.host.node_pgtable == pgtable - by_node).all()
    assert "vm1" not in s.host.by_name and "vm1" not in s.page_sizes
    for n, before in others.items():                  # the others' pages did not move
        assert np.array_equal(pages_of(s, n), before)
    s.host.check_invariants()


def test_an_arriving_vm_first_touches_dram_first_and_reclaim_demotes_to_make_room():
    s = sim()
    demoted = s.host.vmstat["pgdemote_kswapd"] + s.host.vmstat["pgdemote_direct"]
    s.add_tenant({"name": "web", "footprint": "16MiB", "workload": {"type": "zipf", "samples": 512}})
    nd = pages_of(s, "web")
    assert (nd >= 0).all(), "a prefaulting VM maps all its memory at arrival"
    assert (s.host.vmstat["pgdemote_kswapd"] + s.host.vmstat["pgdemote_direct"]) > demoted
    # separate zonelists: the arrival's pages were allocated on DRAM; the ones on the slow node got there by
    # demotion (its last-touched pages are still on DRAM)
    assert nd[-1] == 0
    s.host.check_invariants()


def test_an_arriving_vm_on_a_unified_zonelist_falls_back_to_the_slow_node_without_demotion():
    s = sim(zonelist="unified", demotion_enabled=False)
    s.add_tenant({"name": "web", "footprint": "16MiB", "workload": {"type": "zipf", "samples": 512}})
    nd = pages_of(s, "web")
    assert (nd >= 0).all() and (nd == 1).mean() > 0.9     # DRAM was full: first touch fell back to the slow node
    assert s.host.vmstat["pgdemote_kswapd"] == s.host.vmstat["pgdemote_direct"] == 0
    s.host.check_invariants()


def test_a_vm_that_does_not_prefault_maps_nothing_until_it_touches_memory():
    s = sim()
    s.add_tenant({"name": "lazy", "footprint": "8MiB", "prefault": False, "workload": {"type": "zipf"}})
    assert (pages_of(s, "lazy") == NODE_NONE).all()
    s.advance(3)
    assert (pages_of(s, "lazy") >= 0).any()
    s.host.check_invariants()


def test_shrinking_frees_the_pages_past_the_new_end_and_growing_adds_pages_after_the_old_ones():
    s = sim()
    before = pages_of(s, "vm0")
    used = s.host.node_used.copy()
    s.resize_tenant("vm0", 16 * MiB)
    cut = before[16 * MiB // PAGE_SIZE:]
    assert (s.host.node_used == used - np.bincount(cut[cut >= 0], minlength=2)).all()
    assert np.array_equal(pages_of(s, "vm0"), before[:16 * MiB // PAGE_SIZE])
    assert s.host.by_name["vm0"].workload.npages == 16 * MiB // PAGE_SIZE
    s.host.check_invariants()
    s.resize_tenant("vm0", 40 * MiB)
    after = pages_of(s, "vm0")
    assert after.size == 40 * MiB // PAGE_SIZE
    assert (after[16 * MiB // PAGE_SIZE:] >= 0).all()        # the new pages were first-touched at once
    s.host.check_invariants()


def test_surviving_pages_keep_their_heat_across_a_change():
    s = sim()
    s.advance(10)
    t = s.host.by_name["vm2"]
    heat = s.tracker.heat[t.start:t.end].copy()
    assert heat.any()
    s.remove_tenant("vm0")
    t = s.host.by_name["vm2"]
    assert np.array_equal(s.tracker.heat[t.start:t.end], heat)


def test_a_departed_vm_keeps_its_results_and_an_arrival_starts_its_series_when_it_arrived():
    s = sim()
    s.advance(5)                                      # 10 ticks = 2 epochs of 500 ms
    s.add_tenant({"name": "web", "footprint": "8MiB", "labels": {"team": "web"},
                  "workload": {"type": "zipf", "samples": 512}})
    s.advance(10)
    s.remove_tenant("vm1")
    s.advance(5)
    res = {t.name: t for t in s.stats().result.tenants}
    assert res["web"].first_epoch == 2 and res["web"].arrived_time == pytest.approx(1.0)
    assert len(res["web"].series_dram_share) == 3 and res["web"].labels == (("team", "web"),)
    assert res["vm1"].departed_time == pytest.approx(2.0) and res["vm1"].accesses > 0
    assert res["vm1"].resident_bytes == [0, 0]
    assert res["vm0"].departed_time is None
    # the host's share counts every tenant's accesses, the departed one's too
    r = s.stats().result
    acc = sum(t.accesses for t in r.tenants)
    fast = sum(t.accesses * t.dram_share for t in r.tenants)
    assert r.dram_share == pytest.approx(fast / acc)


def test_refused_changes_change_nothing():
    s = sim(swap="64MiB")                            # 128 MiB of memory + 64 MiB of swap, 104 MiB mapped
    cases = [
        (lambda: s.add_tenant({"name": "vm0", "footprint": "8MiB", "workload": {"type": "zipf"}}), "ALREADY_EXISTS"),
        (lambda: s.add_tenant({"name": "big", "footprint": "200MiB", "workload": {"type": "zipf"}}),
         "INVALID_ARGUMENT"),       # larger than all the host's memory: the scenario's own rule
        (lambda: s.add_tenant({"name": "x", "footprint": "8MiB", "workload": {"type": "nope"}}), "INVALID_ARGUMENT"),
        (lambda: s.add_tenant({"name": "x", "footprint": "8MiB", "home_node": 1, "workload": {"type": "zipf"}}),
         "INVALID_ARGUMENT"),
        (lambda: s.add_tenant({"name": "x", "footprint": "120MiB", "workload": {"type": "zipf"}}),
         "RESOURCE_EXHAUSTED"),     # fits the host, not beside the others (memory + swap)
        (lambda: s.remove_tenant("nobody"), "NOT_FOUND"),
        (lambda: s.resize_tenant("nobody", 8 * MiB), "NOT_FOUND"),
        (lambda: s.resize_tenant("vm0", 8 * MiB + 1), "INVALID_ARGUMENT"),
        (lambda: s.resize_tenant("vm0", 0), "INVALID_ARGUMENT"),
        (lambda: s.resize_tenant("vm0", 400 * MiB), "RESOURCE_EXHAUSTED"),
    ]
    for call, code in cases:
        before = state(s)
        with pytest.raises(BadRequest) as e:
            call()
        assert e.value.code == code, (str(e.value), code)
        assert same(before, state(s)), str(e.value)
    err = pytest.raises(BadRequest, s.add_tenant, {"name": "x", "footprint": "8MiB", "workload": {"type": "nope"}})
    assert str(err.value).startswith("tenant.workload.type")


@pytest.mark.parametrize("mode", ["none", "tpp", "damos"])
def test_churn_on_a_three_tier_host_frees_and_places_pages_on_every_tier(mode):
    from pagetide.agent.scenario import parse_scenario

    d = {"seed": 5, "tick": "100ms", "epoch": "500ms",
         "host": {"nodes": [{"id": 0, "type": "dram", "capacity": "16MiB", "peer_node": 1},
                            {"id": 1, "type": "cxl", "capacity": "32MiB", "peer_node": 2, "read_latency": "170ns",
                             "write_latency": "170ns", "read_bandwidth": "64GB/s", "write_bandwidth": "64GB/s"},
                            {"id": 2, "type": "pmem", "capacity": "64MiB"}],
                  "kernel": {"swap": "0", **({"tiering": {"mode": mode}} if mode != "none" else {})}},
         "tenants": TENANTS}
    s = SimHost(parse_scenario(d))
    s.advance(5)
    assert set(np.unique(s.host.node[s.host.node >= 0])) == {0, 1, 2}, "the VMs should span DRAM, CXL, PMEM"
    gone = max(("vm0", "vm1", "vm2"), key=lambda n: len(np.unique(pages_of(s, n))))
    nd = pages_of(s, gone)
    assert len(np.unique(nd[nd >= 0])) >= 2
    used = s.host.node_used.copy()
    s.remove_tenant(gone)
    assert (s.host.node_used == used - np.bincount(nd[nd >= 0], minlength=3)).all()
    s.host.check_invariants()
    s.add_tenant({"name": "web", "footprint": "24MiB", "workload": {"type": "zipf", "samples": 512}})
    s.resize_tenant(next(n for n in ("vm0", "vm1", "vm2") if n != gone), 40 * MiB)
    s.advance(5)
    assert s.stats().invariant_error == ""
    assert (s.host.node_used + s.host.node_pgtable <= s.host.capacity).all()
