"""Fleet files (harness/fleetfile.py): host classes x counts, a VM catalogue, placements, churn events and the
controller's settings, validated before anything starts with errors that name the fleet file's own key."""

import copy

import pytest

from pagetide.agent.scenario import parse_scenario
from pagetide.harness.fleet import fleet_dicts
from pagetide.harness.fleetfile import FleetError, load_fleet, parse_fleet

MiB = 1 << 20

BASE = {
    "seed": 2, "duration": "20s",
    "host_classes": {
        "tiered": {"count": 2, "host": {
            "nodes": [{"id": 0, "type": "dram", "capacity": "64MiB", "peer_node": 1},
                      {"id": 1, "type": "cxl", "capacity": "128MiB", "peer_node": 2, "read_latency": "170ns",
                       "write_latency": "170ns", "read_bandwidth": "64GB/s", "write_bandwidth": "64GB/s"},
                      {"id": 2, "type": "pmem", "capacity": "256MiB"}],
            "kernel": {"swap": "0"}},
            "vms": [{"vm": "web", "count": 2}]},
        "pmem": {"host": {"nodes": [{"id": 0, "type": "dram", "capacity": "64MiB", "peer_node": 1},
                                    {"id": 1, "type": "pmem", "capacity": "192MiB"}],
                          "kernel": {"swap": "0", "tiering": {"mode": "tpp"}}, "tracker": "idle_pages-adaptive"}},
    },
    "vms": {"web": {"footprint": "64MiB", "workload": {"type": "zipf", "rate": "20M/s"}, "labels": {"team": "web"},
                    "policy": {"min": "25%", "weight": 2, "max_slowdown": 1.5}},
            "kv": {"footprint": "48MiB", "workload": {"type": "hotset"}, "labels": {"team": "kv"}}},
    "hosts": {"pmem-00": [{"vm": "kv"}, {"vm": "web", "name": "big-web", "footprint": "96MiB",
                                         "workload": {"rate": "40M/s"}, "labels": {"tier": "gold"}}]},
    "events": [{"at": "5s", "arrive": {"host": "tiered-00", "vm": "kv", "name": "kv-late"}},
               {"at": "3s", "resize": {"host": "pmem-00", "vm": "kv", "footprint": "32MiB"}},
               {"at": "8s", "depart": {"host": "tiered-01", "vm": "web-1"}}],
    "controller": {"policy": "pagetide", "options": {"hysteresis_bins": 2}, "bandwidth": "128MiB/s"},
}


def fleet(**changes):
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = d
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is DELETE:
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return d


DELETE = object()


def test_a_fleet_file_expands_into_host_scenarios_policies_and_ordered_events():
    f = parse_fleet(BASE)
    assert [h.name for h in f.hosts] == ["tiered-00", "tiered-01", "pmem-00"]
    assert f.classes == {"tiered": ("tiered-00", "tiered-01"), "pmem": ("pmem-00",)}
    assert [h.scenario["seed"] for h in f.hosts] == [2000, 2001, 2002]
    s = parse_scenario(f.hosts[2].scenario)
    assert [t.name for t in s.tenants] == ["kv", "big-web"] and s.tracker == "idle_pages-adaptive"
    big = s.tenants[1]
    assert big.footprint == 96 * MiB and big.workload == {"type": "zipf", "rate": "40M/s"}
    assert big.labels == (("team", "web"), ("tier", "gold"))          # labels merged, workload merged
    assert [t.name for t in parse_scenario(f.hosts[0].scenario).tenants] == ["web-0", "web-1"]
    assert [n.tier for n in parse_scenario(f.hosts[0].scenario).nodes] == [0, 1, 2]   # DRAM -> CXL -> PMEM
    assert [(e.time, e.kind, e.host, e.vm) for e in f.events] == [
        (3.0, "resize", "pmem-00", "kv"), (5.0, "arrive", "tiered-00", "kv-late"), (8.0, "depart", "tiered-01", "web-1")]
    assert f.events[0].footprint == 32 * MiB and f.events[1].tenant["labels"] == {"team": "kv"}
    assert set(f.policies) == {("tiered-00", "web-0"), ("tiered-00", "web-1"), ("tiered-01", "web-0"),
                               ("tiered-01", "web-1"), ("pmem-00", "big-web")}
    assert f.policies[("pmem-00", "big-web")].min_dram_share == 0.25
    assert f.policies[("pmem-00", "big-web")].max_slowdown == 1.5
    assert f.controller.bandwidth == 128 * MiB and f.controller.options == {"hysteresis_bins": 2}
    assert f.duration == 20.0


@pytest.mark.parametrize("changes, key", [
    ({"bogus": 1}, "bogus"),
    ({"host_classes": DELETE}, "host_classes"),
    ({"seed": -1}, "seed"),
    ({"duration": "fast"}, "duration"),
    ({"epoch": "0s"}, "epoch"),
    ({"controller__policy": "nope"}, "controller.policy"),
    ({"controller__options": {"hysteresis_bins": "many"}}, "controller.options.hysteresis_bins"),
    ({"controller__bandwidth": "lots"}, "controller.bandwidth"),
    ({"controller__max_candidates": 0}, "controller.max_candidates"),
    ({"host_classes__tiered__count": 0}, "host_classes.tiered.count"),
    ({"host_classes__tiered__extra": 1}, "host_classes.tiered.extra"),
    ({"host_classes__tiered__host__nodes__0__capacity": "1GB"}, "host_classes.tiered.host.nodes[0].capacity"),
    ({"host_classes__tiered__host__nodes__1__peer_node": 1}, "host_classes.tiered.host.nodes[1].peer_node"),
    ({"host_classes__pmem__host__kernel__tiering": {"mode": "warp"}}, "host_classes.pmem.host.kernel.tiering.mode"),
    ({"host_classes__pmem__host__tracker": "psychic"}, "host_classes.pmem.host.tracker"),
    ({"vms__web__footprint": "1000B"}, "vms.web.footprint"),
    ({"vms__web__workload__rate": "fast"}, "vms.web.workload.rate"),
    ({"vms__web__workload__type": "nope"}, "vms.web.workload.type"),
    ({"vms__web__colour": "red"}, "vms.web.colour"),
    ({"vms__web__workload": DELETE}, "vms.web.workload"),
    ({"vms__web__policy__min": "150%"}, "vms.web.policy.min"),
    ({"vms__web__policy__max": "10%"}, "vms.web.policy.min"),     # min 25% above max 10%
    ({"vms__web__policy__pin": "disk"}, "vms.web.policy.pin"),
    ({"vms__web__policy__weight": 0}, "vms.web.policy.weight"),
    ({"vms__web__policy__max_slowdown": 0.9}, "vms.web.policy.max_slowdown"),
    ({"vms__web__policy__max_slowdown": float("inf")}, "vms.web.policy.max_slowdown"),
    ({"vms__web__policy__max_slowdown": float("nan")}, "vms.web.policy.max_slowdown"),
    ({"vms__web__policy__max_slowdown": "2x"}, "vms.web.policy.max_slowdown"),
    ({"vms__web__policy__max_slowdown": True}, "vms.web.policy.max_slowdown"),
    ({"vms__web__labels": {"team": 3}}, "vms.web.labels.team"),
    ({"host_classes__tiered__vms__0__vm": "nope"}, "host_classes.tiered.vms[0].vm"),
    ({"host_classes__tiered__vms__0__count": 0}, "host_classes.tiered.vms[0].count"),
    ({"host_classes__tiered__vms__0__footprint": "1000MiB"}, "host_classes.tiered.vms[0].footprint"),
    ({"host_classes__tiered__vms__0__count": 9}, "hosts.tiered-00"),   # more than memory (no swap)
    ({"hosts__pmem-00__1__workload": {"rate": "slow"}}, "hosts.pmem-00[1].workload.rate"),
    ({"hosts__pmem-00__1__name": "kv"}, "hosts.pmem-00"),            # two VMs named kv
    ({"hosts__pmem-00__1__name": "bad name"}, "hosts.pmem-00[1].name"),
    ({"hosts__pmem-07": [{"vm": "kv"}]}, "hosts.pmem-07"),
    ({"hosts": {}}, "host_classes.pmem.vms"),                        # pmem-00 would start empty
    ({"events__0__at": "25s"}, "events[0].at"),
    ({"events__0__depart": {"host": "tiered-00", "vm": "web-0"}}, "events[0]"),   # two kinds in one event
    ({"events__0__arrive__host": "mars-00"}, "events[0].arrive.host"),
    ({"events__0__arrive__name": "web-0"}, "events[0].arrive.name"),  # already there
    ({"events__0__arrive__footprint": "7KiB"}, "events[0].arrive.footprint"),
    ({"events__0__arrive__count": 2}, "events[0].arrive.count"),
    ({"events__2__depart__vm": "web-7"}, "events[2].depart.vm"),
    ({"events__1__resize__footprint": "33KiB"}, "events[1].resize.footprint"),
    ({"events__1__resize__footprint": "200MiB"}, "events[1].resize"),  # the host's VMs would not fit
    ({"events__1__resize__footprint": "400MiB"}, "events[1].resize.footprint"),  # more than the host has
    ({"events__1__resize__size": "1MiB"}, "events[1].resize.size"),
    ({"oracles": "no"}, "oracles"),
])
def test_every_error_names_its_key(changes, key):
    with pytest.raises(FleetError) as e:
        parse_fleet(fleet(**changes))
    assert e.value.key == key, str(e.value)
    assert str(e.value).startswith(f"{key}: ")


def test_an_event_on_a_vm_that_left_earlier_is_refused():
    d = fleet(events=[{"at": "2s", "depart": {"host": "tiered-00", "vm": "web-0"}},
                      {"at": "4s", "resize": {"host": "tiered-00", "vm": "web-0", "footprint": "32MiB"}}])
    with pytest.raises(FleetError, match=r"^events\[1\]\.resize\.vm: no VM 'web-0' on host 'tiered-00' then"):
        parse_fleet(d)


def test_the_shipped_default_fleet_is_the_generated_default_mix():
    f = load_fleet("default")
    assert [parse_scenario(d) for d in f.scenarios()] == [parse_scenario(d) for d in fleet_dicts(4, seed=1)]
    assert f.events == () and f.duration == 60.0


def test_the_shipped_churn_fleet_has_three_tier_hosts_and_every_kind_of_event():
    f = load_fleet("churn")
    assert len(f.classes) == 2
    tiered = parse_scenario(f.hosts[0].scenario)
    assert [n.type for n in tiered.nodes] == ["dram", "cxl", "pmem"] and [n.tier for n in tiered.nodes] == [0, 1, 2]
    assert {e.kind for e in f.events} == {"arrive", "depart", "resize"}


def test_a_seed_given_on_the_command_line_replaces_the_files(tmp_path):
    f = load_fleet("churn", seed=3)
    assert f.seed == 3 and f.hosts[0].scenario["seed"] == 3000


def test_an_unreadable_or_malformed_file_names_the_file(tmp_path):
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("host_classes: [\n")
    with pytest.raises(FleetError, match="not valid YAML") as e:
        load_fleet(bad)
    assert e.value.key == str(bad)


def test_pagetide_sim_refuses_a_bad_fleet_file_naming_the_key_before_starting_anything(tmp_path, monkeypatch,
                                                                                        capsys):
    from pagetide.harness import sim
    from pagetide.harness.cli import build_parser

    bad = tmp_path / "fleet.yaml"
    bad.write_text("host_classes: {a: {host: {nodes: []}}}\nvms: {}\n")
    monkeypatch.setattr(sim, "run_sim", lambda *a, **k: pytest.fail("started a simulation of a bad fleet"))
    assert sim.main(build_parser("sim").parse_args(["sim", "--fleet", str(bad)])) == 2
    assert f"{bad}: host_classes.a.vms: host 'a-00' starts with no VM" in capsys.readouterr().err
    assert sim.main(build_parser("sim").parse_args(["sim", "--fleet", "churn", "--hosts", "3"])) == 2
    assert "--hosts describe a generated fleet; not with --fleet" in capsys.readouterr().err


def test_oracles_false_reaches_every_hosts_scenario():
    on, off = parse_fleet(fleet()), parse_fleet(fleet(oracles=False))
    assert all(parse_scenario(s).oracles for s in on.scenarios())
    assert not any(parse_scenario(s).oracles for s in off.scenarios())



def test_samples_sets_a_generated_fleets_samples_per_tick_and_refuses_nonsense(monkeypatch, capsys):
    from pagetide.harness import sim
    from pagetide.harness.cli import build_parser

    args = build_parser("sim").parse_args(["sim", "--hosts", "2", "--samples", "2048"])
    fleet = sim.resolve_fleet(args)
    assert {t["workload"]["samples"] for s in fleet.scenarios() for t in s["tenants"]} == {2048}
    monkeypatch.setattr(sim, "run_sim", lambda *a, **k: pytest.fail("started a simulation"))
    assert sim.main(build_parser("sim").parse_args(["sim", "--hosts", "2", "--samples", "0"])) == 2
    assert "--samples: must be at least 1, not 0" in capsys.readouterr().err
