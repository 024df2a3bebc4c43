"""The host model of the qemu guest's experiment (harness/guestmodel.py, agent/scenarios/guest-nvdimm*.yaml)."""

from pathlib import Path

import numpy as np

from pagetide.agent.host import Host
from pagetide.agent.scenario import load_scenario
from pagetide.harness import guestmodel

SCENARIOS = Path(__file__).resolve().parent.parent / "agent" / "scenarios"


def test_the_guest_scenarios_start_interleaved_with_the_filler_older_on_the_lru():
    host = Host(load_scenario(SCENARIOS / "guest-nvdimm-pressure.yaml"))
    host.boot()
    wl = host.tenant(guestmodel.WORKLOAD)
    s = guestmodel.summary(host)
    assert (s["pages"], s["hot_pages"]) == (8192, 2048)
    assert s["hot_on_1"] > 0 and s["cold_on_0"] > 0 and s["cold_on_1"] > 0
    assert (host.node[wl.start + 1:wl.end:2] == 1).all()      # odd pages asked for node 1 and got it
    filler = np.concatenate([np.arange(t.start, t.end) for t in host.tenants if t.name != guestmodel.WORKLOAD])
    assert host.lru_seq[filler].max() < host.lru_seq[wl.start:wl.end].min()   # first touched before the workload


def test_nbt_without_pressure_promotes_the_hot_pages_and_demotes_nothing():
    r = guestmodel.run_kernel(load_scenario(SCENARIOS / "guest-nvdimm.yaml"), seconds=3.0)
    assert r["tiering"] == "nbt"
    assert r["after"]["hot_on_0"] == 2048 and r["after"]["cold_on_1"] == r["before"]["cold_on_1"]
    assert r["vmstat_delta"]["pgpromote_success"] == r["before"]["hot_on_1"]
    assert r["vmstat_delta"]["pgdemote_kswapd"] == 0 and r["demoted_by_tenant"] == {}
