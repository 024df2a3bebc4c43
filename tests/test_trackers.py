"""Trackers as peers (agent/backend.py TRACKERS): the seed's idle_pages scanner and the adaptive one, chosen
by the scenario's host.tracker, reporting the scale and window the controller reads."""

import numpy as np
import pytest

from pagetide.agent.adaptive import CHANGE_Z, LONG_ALPHA, AdaptiveScanner, bin_levels, export_heat
from pagetide.agent.backend import TRACKERS, tracker_class
from pagetide.agent.host import Host
from pagetide.agent.scanner import Scanner
from pagetide.agent.scenario import ScenarioError
from pagetide.agent.simhost import SimHost

from helpers import small_scenario


def fold(tracker, refs, scans=5):
    """One period in which page i was found accessed in refs[i] of `scans` scans."""
    tracker.refs[:] = np.asarray(refs, dtype=np.uint8)
    tracker.scans_in_period = scans
    tracker.end_period()


def adaptive(npages_mib="16MiB"):
    h = Host(small_scenario(tenants=[{"name": "vm0", "footprint": npages_mib, "workload": {"type": "zipf"}}]))
    return AdaptiveScanner(h, nr_scans=5)


def test_the_host_tracker_is_scenario_configuration_and_an_unknown_one_is_refused():
    assert tracker_class("idle_pages") is Scanner and tracker_class("idle_pages-adaptive") is AdaptiveScanner
    s = small_scenario()
    assert SimHost(s).tracker.name == "idle_pages"
    d = {"seed": 3, "tick": "100ms", "duration": "2s", "epoch": "500ms",
         "host": {"nodes": [{"id": 0, "type": "dram", "capacity": "64MiB", "peer_node": 1},
                            {"id": 1, "type": "pmem", "capacity": "192MiB"}], "tracker": "idle_pages-adaptive"},
         "tenants": [{"name": "vm0", "footprint": "96MiB", "workload": {"type": "zipf", "samples": 2048}}]}
    from pagetide.agent.scenario import parse_scenario
    sim = SimHost(parse_scenario(d))
    assert isinstance(sim.tracker, AdaptiveScanner) and s.tracker == "idle_pages"
    sim.advance(5)
    rep = sim.heat_report(16)
    assert rep.tracker == "idle_pages-adaptive" and len(rep.bin_level) == 16
    assert rep.tenants[0].window_scans == pytest.approx(5 * (2 - LONG_ALPHA) / LONG_ALPHA)
    d["host"]["tracker"] = "perf"
    with pytest.raises(ScenarioError, match="host.tracker.*unknown tracker 'perf'"):
        parse_scenario(d)
    assert set(TRACKERS) == {"idle_pages", "idle_pages-adaptive", "pebs", "pebs-decayed", "chmu",
                              "hint_faults"}


def test_the_seed_tracker_reports_its_linear_scale_and_its_halving_window():
    sim = SimHost(small_scenario())
    sim.advance(5)
    rep = sim.heat_report(16)
    assert rep.tracker == "idle_pages" and rep.bin_level == []
    assert rep.tenants[0].window_scans == 15.0        # halving: an average over 3 periods of 5 scans


def test_a_stable_page_keeps_a_long_average_and_a_page_found_in_every_scan_is_hot_at_once():
    tr = adaptive()
    n = tr.host.nr_pages
    # page 0 is seen in one scan of five every period: its long average converges towards level 3
    for _ in range(30):
        fold(tr, [1] + [0] * (n - 1))
    assert 2.5 <= tr.long[0] / 256 <= 3.0 and not tr.changed[0]
    # page 1, never seen, is found in every scan: far beyond CHANGE_Z standard errors, so level 15 at once
    fold(tr, [1, 5] + [0] * (n - 2))
    assert tr.changed[1] and tr.long[1] == 15 * 256
    # ... and when it goes idle it drops at once too, instead of decaying over periods
    fold(tr, [1] + [0] * (n - 1))
    assert tr.changed[1] and tr.long[1] == 0


def test_adaptive_heat_is_exported_on_a_half_octave_log_scale_that_bin_level_describes():
    levels = np.array([0, 0.12, 1.0, 3.0, 10.7, 15.0]) * 256
    heat = export_heat(levels.astype(np.uint16))
    assert heat[0] == 0 and heat[-1] == 240
    bins = heat >> 4
    centre = bin_levels()
    assert centre[0] == 0 and np.all(np.diff(centre) > 0)
    # each level falls in the bin whose range (centre / 2**0.25 .. centre * 2**0.25) holds it
    for lvl, b in zip(levels[1:] / 256, bins[1:]):
        assert centre[b] / 2 ** 0.25 - 1e-6 <= lvl <= centre[b] * 2 ** 0.25 + 1e-6 or b == 15, (lvl, b)
    assert CHANGE_Z > 2
