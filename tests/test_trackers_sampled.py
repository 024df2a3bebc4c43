"""The pebs and chmu trackers (agent/pebs.py, agent/chmu.py) beside the idle_pages ones, their options and cost,
and HeMem and MEMTIS reading real sample counts from a pebs host."""

from dataclasses import replace

import numpy as np
import pytest

from pagetide.agent.chmu import HOT_LIST_ENTRY_COST_S, ChmuTracker
from pagetide.agent.hintfaults import HINT_FAULT_COST_S, HintFaultTracker
from pagetide.agent.pebs import (SAMPLE_COST_S, DecayedPebsTracker, PebsTracker, decayed_bin_levels, decode_samples,
                                 encode_samples)
from pagetide.agent.scanner import Scanner
from pagetide.agent.scenario import ScenarioError, parse_scenario
from pagetide.agent.simhost import SimHost
from pagetide.common.sampled_heat import SAMPLED_TRACKERS
from pagetide.controller.policies import PolicyParams
from pagetide.controller.policies.hemem import HeMem
from pagetide.controller.policies.placement import bin_samples, sample_counts
from pagetide.harness.trackers import captured, expected

from test_policy import moved, one_socket


def scenario(tracker, seed=3, workload="zipf", options=None, dram="32MiB"):
    d = {"seed": seed, "tick": "100ms", "duration": "5s", "epoch": "1s",
         "host": {"nodes": [{"id": 0, "type": "dram", "capacity": dram, "peer_node": 1},
                            {"id": 1, "type": "cxl", "capacity": "128MiB"}], "tracker": tracker},
         "tenants": [{"name": "vm0", "footprint": "64MiB", "workload": {"type": workload, "samples": 4096}}]}
    if options is not None:
        d["host"]["tracker_options"] = options
    return parse_scenario(d)


def one_period(tracker, **kw):
    sim = SimHost(scenario(tracker, **kw))
    sim.advance(sim.scenario.ticks_per_epoch)
    return sim


@pytest.mark.parametrize("tracker", ["pebs", "chmu"])
def test_a_run_is_reproducible_from_the_scenario_seed(tracker):
    a, b, c = one_period(tracker), one_period(tracker), one_period(tracker, seed=4)
    assert np.array_equal(a.tracker.heat, b.tracker.heat)
    assert not np.array_equal(a.tracker.heat, c.tracker.heat)


@pytest.mark.parametrize("tracker", ["idle_pages", "pebs", "chmu", "pebs-decayed", "hint_faults"])
def test_each_tracker_ranks_a_zipf_workload_far_better_than_chance(tracker):
    sim = one_period(tracker)
    h = sim.host
    truth = expected(h, 0, sim.scenario.ticks_per_epoch)
    k = h.nr_pages // 4
    got = captured(sim.tracker.heat.astype(float), truth, k)
    chance = np.mean([captured(np.random.default_rng(i).random(h.nr_pages), truth, k) for i in range(3)])
    assert got > chance + 0.2, (got, chance)


def test_pebs_samples_each_page_in_proportion_to_its_accesses_and_costs_its_samples():
    sim = one_period("pebs", options={"period": 200})
    tr = sim.tracker
    assert isinstance(tr, PebsTracker) and tr.sample_period == 200 and tr.pages_scanned == 0
    wl = sim.host.tenants[0].workload
    # 10 ticks x 4096 model samples of w accesses each: Poisson(w / 200) PEBS samples apiece
    want = 10 * 4096 * wl.accesses_per_sample / 200
    assert tr.samples_handled == pytest.approx(want, rel=0.05)
    assert tr.cost_seconds() == pytest.approx(tr.samples_handled * SAMPLE_COST_S)
    rep = sim.heat_report(64)
    assert rep.tracker == "pebs" and len(rep.bin_level) == 16 and np.all(np.diff(rep.bin_level) >= 0)


def test_a_page_never_accessed_has_heat_zero_and_a_device_reports_nothing_of_dram_pages():
    for cls in (PebsTracker, ChmuTracker):
        sim = SimHost(scenario("idle_pages"))
        h = sim.host
        tr = cls(h, 5, **({"period": 200} if cls is PebsTracker else {"threshold": 1}))
        dram = np.flatnonzero(h.is_fast[h.node])
        slow = np.flatnonzero(~h.is_fast[h.node])
        hit = np.concatenate([np.repeat(dram[:8], 400), np.repeat(slow[:8], 400)])
        tr.observe([hit])
        tr.end_period()
        untouched = np.setdiff1d(np.arange(h.nr_pages), hit)
        assert not tr.heat[untouched].any(), cls
        assert (tr.heat[slow[:8]] > 0).all(), cls
        if cls is ChmuTracker:
            # the device counts what it serves: the DRAM pages' samples never reach its hot list, and with
            # no scan their A bits were not read, so their heat stays 0
            assert not tr.heat[dram[:8]].any() and not np.isin(tr.hot_listed, dram).any()
        else:
            assert (tr.heat[dram[:8]] > 0).all()


def test_chmu_hot_list_is_bounded_thresholded_and_hottest_first():
    sim = SimHost(scenario("chmu", options={"hot_list": 1024, "threshold": 1}))
    sim.advance(9)
    tr = sim.tracker
    pages, acc = tr.hot_lists()
    assert 0 < pages.size <= 1024 and np.all(np.diff(acc) <= 0) and (acc >= 1).all()
    h = sim.host
    assert not h.is_fast[h.node[pages]].any()
    sim.advance(1)                                    # the epoch ends: entries read, cost near zero
    assert 0 < tr.entries_read <= 1024
    idle = SimHost(scenario("idle_pages"))
    idle.advance(10)
    walk_only = tr.dram_pages_walked / 134e6
    assert tr.cost_seconds() == pytest.approx(walk_only + tr.entries_read * HOT_LIST_ENTRY_COST_S)
    assert tr.cost_seconds() < idle.tracker.cost_seconds()          # DRAM's walk only
    assert idle.tracker.cost_seconds() == pytest.approx(idle.tracker.pages_scanned / 134e6)


@pytest.mark.parametrize("options, key", [
    ({"period": 100}, "host.tracker_options.period"),
    ({"period": 200_000}, "host.tracker_options.period"),
    ({"period": "often"}, "host.tracker_options.period"),
    ({"hot_list": 4096}, "host.tracker_options.hot_list"),
])
def test_bad_pebs_options_are_refused_naming_the_key(options, key):
    with pytest.raises(ScenarioError) as e:
        scenario("pebs", options=options)
    assert e.value.args[0].startswith(key) or key in str(e.value)


def test_bad_chmu_options_and_options_of_a_tracker_without_any_are_refused_naming_the_key():
    for tracker, options, key in (("chmu", {"hot_list": 512}, "host.tracker_options.hot_list"),
                                  ("chmu", {"threshold": 0}, "host.tracker_options.threshold"),
                                  ("idle_pages", {"period": 4000}, "host.tracker_options.period")):
        with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
            scenario(tracker, options=options)
    s = scenario("chmu", options={"hot_list": 2048})
    assert dict(s.tracker_options) == {"hot_list": 2048, "threshold": 16}
    assert dict(scenario("pebs").tracker_options) == {"period": 4000}


def test_the_idle_pages_tracker_is_unchanged_by_observing_samples():
    sim = SimHost(scenario("idle_pages"))
    assert type(sim.tracker) is Scanner
    before = sim.tracker.refs.copy()
    sim.tracker.observe([np.arange(100)])
    assert np.array_equal(before, sim.tracker.refs)


def test_the_sample_scale_is_one_format_on_both_sides_of_the_api():
    s = np.arange(256)
    heat = encode_samples(s)
    assert heat[0] == 0 and (heat[1:] > 0).all() and np.all(np.diff(heat.astype(int)) >= 0)
    assert np.array_equal(decode_samples(heat), sample_counts(heat))
    assert np.array_equal(sample_counts(heat)[:46], s[:46])          # exact where bins are one sample wide
    assert (np.abs(sample_counts(heat)[46:] - s[46:]) <= 0.025 * s[46:]).all()


def test_hemem_counts_the_samples_of_a_pebs_host_and_scan_levels_elsewhere():
    m = one_socket()
    heat = np.repeat(encode_samples(np.array([9, 5])), 256)          # 9 and 5 samples this period
    addr = m.add("vm0", heat, np.ones(512))
    view = m.view()
    sampled = HeMem()
    plan = sampled.plan(replace(view, tracker="pebs"), {}, PolicyParams())
    assert sampled.samples("vm0", addr[::256])[0].tolist() == [9, 5]
    assert set(moved(plan, "promote").tolist()) == set(addr[:256].tolist())     # hot at 8 samples
    scans = HeMem()
    scans.plan(view, {}, PolicyParams())
    assert scans.samples("vm0", addr[::256])[0].tolist() == (heat[[0, 256]] >> 4).tolist()
    assert bin_samples(replace(view, tracker="pebs"), 1)[[0, 2, 3]].tolist() == [0, 1, 2]
    assert bin_samples(view, 2).tolist() == list(range(0, 32, 2))


# ---- pebs-decayed: the samples accumulated across periods (agent/pebs.py DecayedPebsTracker)

def decayed_tracker(window=8):
    sim = SimHost(scenario("idle_pages"))
    return DecayedPebsTracker(sim.host, 5, period=4000, window=window)


def periods_of(tr, counts):
    """End one period per entry of `counts` (page -> samples that period); the heat after each."""
    out = []
    for c in counts:
        for page, n in c.items():
            tr.count[page] = n
        tr.end_period()
        out.append(tr.heat.copy())
    return out


@pytest.mark.parametrize("window", [0, 65, "long", 2.5])
def test_a_bad_window_is_refused_naming_the_key(window):
    with pytest.raises(ScenarioError, match=r"host\.tracker_options\.window"):
        scenario("pebs-decayed", options={"window": window})
    assert dict(scenario("pebs-decayed").tracker_options) == {"period": 4000, "window": 8}


def test_a_steady_rate_accumulates_to_window_times_the_rate_and_an_idle_page_cools():
    tr = decayed_tracker(window=8)
    heat = periods_of(tr, [{10: 2}] * 60 + [{10: 0}] * 100)
    # count <- count (1 - 1/8) + 2: 16 samples in steady state, the fixed point's floor leaves it within 1/32
    assert tr.decayed[10] == 0 and heat[59][10] == encode_samples(np.array([16.0]))[0]
    assert heat[0][10] == encode_samples(np.array([2]))[0] < heat[59][10]
    cooling = np.array([h[10] for h in heat[60:]], dtype=int)
    assert np.all(np.diff(cooling) <= 0) and cooling[0] > 0 and cooling[-1] == 0
    assert not np.delete(heat[59], 10).any()            # no other page gained anything


def test_a_rate_change_restarts_the_long_window_and_noise_does_not():
    tr = decayed_tracker(window=8)
    periods_of(tr, [{10: 2, 11: 2}] * 40)
    periods_of(tr, [{10: 20, 11: 4}])                   # 10 jumps (13 standard errors), 11 is Poisson noise
    assert tr.changed[10] and not tr.changed[11]
    assert tr.decayed[10] == 20 * 8 * 256                # the period's rate over the whole window
    assert abs(tr.decayed[11] / 256 - (16 * 7 / 8 + 4)) < 0.1
    periods_of(tr, [{10: 0, 11: 0}])                    # 20 a period in the window, none this period: changed
    assert tr.changed[10] and tr.decayed[10] == 0 and tr.heat[10] == 0


def test_window_one_is_the_pebs_tracker_byte_for_byte():
    raw, one = SimHost(scenario("pebs", workload="drift")), SimHost(scenario("pebs-decayed", workload="drift",
                                                                              options={"window": 1}))
    assert isinstance(one.tracker, DecayedPebsTracker) and one.tracker.name == "pebs-decayed"
    for _ in range(4):
        raw.advance(10)
        one.advance(10)
        assert raw.tracker.heat.any()
        assert np.array_equal(raw.tracker.heat, one.tracker.heat)
        assert np.array_equal(raw.tracker.period_refs, one.tracker.period_refs)
    assert raw.tracker.cost_seconds() == one.tracker.cost_seconds()


def test_a_decayed_host_reports_its_own_tracker_so_sampling_policies_do_not_read_it_as_one_period():
    sim = SimHost(scenario("pebs-decayed"))
    sim.advance(30)
    rep = sim.heat_report(64)
    assert rep.tracker == "pebs-decayed" and rep.tracker not in SAMPLED_TRACKERS
    # levels of its own: a count over 8 periods, RATE_GAIN x count / 8 accesses per scan interval
    assert rep.bin_level == list(decayed_bin_levels(8)) != list(PebsTracker.BIN_LEVEL)
    assert rep.bin_level[3] == pytest.approx(15 * -np.expm1(-2 * (2 ** (56 / 32) - 1) / 8))


# ---- hint_faults: NUMA hint faults on the slow tier (agent/hintfaults.py)

def test_a_slow_page_faults_once_per_arming_however_often_it_is_touched_and_dram_pages_never_fault():
    sim = SimHost(scenario("idle_pages"))
    h = sim.host
    tr = HintFaultTracker(h, 5)
    dram = np.flatnonzero(h.is_fast[h.node])
    slow = np.flatnonzero(~h.is_fast[h.node])
    tr.observe([slow[:4]])                              # nothing armed before the first scan: no fault
    assert tr.faults == 0 and not tr.refs.any()
    for i in range(5):
        tr.scan()
        # slow[0] touched 50 times in every interval, slow[1] in the first two, DRAM pages in every one
        tr.observe([np.concatenate([np.repeat(slow[0], 50), slow[1:2] if i < 2 else slow[:0], dram[:3]])])
    assert tr.refs[slow[0]] == 5 and tr.refs[slow[1]] == 2 and tr.faults == 7
    assert not tr.refs[slow[2:]].any()
    seed = SimHost(scenario("idle_pages"))             # DRAM: the seed's scans of the same (untouched) host
    for _ in range(5):
        seed.tracker.scan()
    assert np.array_equal(tr.refs[dram], seed.tracker.refs[dram]) and tr.refs[dram].any()
    assert tr.cost_seconds() == pytest.approx(7 * HINT_FAULT_COST_S + (5 * slow.size + 5 * dram.size) / 134e6)
    tr.end_period()
    assert tr.heat[slow[0]] == 15 * 16 // 2 + 0 and tr.heat[slow[1]] == (6 * 16 + 1) // 2
    assert not tr.heat[slow[2:]].any()


def test_a_page_moved_to_dram_while_armed_takes_no_hint_fault():
    sim = SimHost(scenario("idle_pages"))
    h = sim.host
    tr = HintFaultTracker(h, 5)
    slow = np.flatnonzero(~h.is_fast[h.node])
    tr.scan()
    h.node[slow[0]] = 0                                 # as if promoted: its new PTE is not PROT_NONE
    tr.observe([slow[:2]])
    assert tr.faults == 1 and tr.refs[slow[0]] == 0 and tr.refs[slow[1]] == 1


def test_hint_faults_follow_a_relayout_counting_the_faults_so_far_once():
    from pagetide.agent.churn import Relayout
    sim = SimHost(scenario("hint_faults"))
    tr = sim.tracker
    sim.advance(7)                                      # mid-period: some armed pages faulted, some not
    before, armed = tr.faults, tr.armed.copy()
    assert before > 0 and armed.any()
    n = sim.host.nr_pages
    # the first half of the slots moves to the end, the second half is gone: its armed pages never fault
    tr.relayout(Relayout(runs=((0, n // 2, n // 2),), nr_pages=n, tenant_map=np.array([0]), nr_tenants=1))
    assert tr.faults == before
    assert np.array_equal(tr.armed[n // 2:], armed[:n // 2]) and not tr.armed[:n // 2].any()
    tr.armed[n // 2:] = False                           # as if they all faulted now
    assert tr.faults == before + int(armed[:n // 2].sum())


def test_a_swapped_out_or_absent_page_is_on_no_device_and_never_armed():
    from pagetide.agent.pageflags import NODE_NONE, NODE_SWAP
    for cls in (ChmuTracker, HintFaultTracker):
        sim = SimHost(scenario("idle_pages"))
        h = sim.host
        slow = np.flatnonzero(~h.is_fast[h.node])
        h.node[slow[:2]] = NODE_SWAP, NODE_NONE          # is_fast's last entry (node 1) is slow: not a lookup
        tr = cls(h, 5, **({"threshold": 1} if cls is ChmuTracker else {}))
        tr.scan()
        tr.observe([np.repeat(slow[:3], 20)])
        if cls is ChmuTracker:
            assert tr.device_count[slow[:2]].tolist() == [0, 0] and tr.device_count[slow[2]] == 20
        else:
            assert not tr.armed[slow[:2]].any() and tr.refs[slow[:3]].tolist() == [0, 0, 1]
