import copy

import pytest
import yaml

from pagetide.agent.commands.scenarios import default_scenario_path
from pagetide.agent.scenario import ScenarioError, load_scenario, parse_scenario

BASE = {
    "seed": 1, "tick": "100ms", "duration": "10s",
    "host": {"nodes": [{"id": 0, "type": "dram", "capacity": "1GiB", "peer_node": 1},
                       {"id": 1, "type": "pmem", "capacity": "3GiB"}],
             "kernel": {"watermarks": {"min": "0.5%", "low": "1%", "high": "1.5%"}}},
    "tenants": [{"name": "vm0", "kind": "vm", "footprint": "2GiB", "workload": {"type": "zipf"}}],
}


def with_change(path, value):
    d = copy.deepcopy(BASE)
    cur = d
    for k in path[:-1]:
        cur = cur[k]
    if value is KeyError:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return d


def test_human_units_are_parsed_into_bytes_seconds_and_fractions():
    s = parse_scenario(BASE)
    assert s.tick == pytest.approx(0.1)
    assert s.nr_ticks == 100
    assert s.nodes[0].capacity == 1 << 30
    assert s.kernel.wmark_low == pytest.approx(0.01)
    assert s.tenants[0].npages == (2 << 30) // 4096


def test_peer_links_are_made_symmetric_and_defaults_come_from_the_device_type():
    s = parse_scenario(BASE)
    assert s.nodes[1].peer_node == 0
    assert s.nodes[1].read_latency == pytest.approx(305e-9)   # Optane random read
    assert s.distances[0][1] == 17 and s.distances[0][0] == 10


@pytest.mark.parametrize("path,value,key,reason", [
    (("host", "kernel", "swappiness"), 60, "host.kernel.swappiness", "unknown key"),
    (("tenants", 0, "footprint"), "-4GiB", "tenants[0].footprint", "negative"),
    (("host", "nodes", 0, "peer_node"), 7, "host.nodes[0].peer_node", "node 7 does not exist"),
    (("tenants", 0, "footprint"), "8GiB", "tenants[0].footprint", "larger than all memory"),
    (("host", "nodes", 1, "type"), "hbm", "host.nodes[1].type", "unknown node type"),
    (("tenants", 0, "home_node"), 1, "tenants[0].home_node", "home node is DRAM"),
    (("tenants", 0, "workload"), {"type": "zipf", "s": "fast"}, "tenants[0].workload.s", "invalid number 'fast'"),
    (("tenants", 0, "workload"), {"type": "nope"}, "tenants[0].workload.type", "nope"),
    (("tick",), "100 parsecs", "tick", "100 parsecs"),
    (("host", "nodes", 0, "capacity"), "1000KiB", "host.nodes[0].capacity", "multiple of 2MiB"),
    (("host",), KeyError, "host", "required"),
])
def test_invalid_scenarios_are_rejected_naming_the_key_and_reason(path, value, key, reason):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(with_change(path, value))
    assert e.value.key == key
    assert reason in str(e.value)


def test_a_node_is_never_the_peer_of_two_nodes():
    d = copy.deepcopy(BASE)
    d["host"]["nodes"].insert(1, {"id": 1, "type": "dram", "capacity": "1GiB", "peer_node": 2})
    d["host"]["nodes"][0]["peer_node"] = 2
    d["host"]["nodes"][2]["id"] = 2
    with pytest.raises(ScenarioError, match="never the peer of two nodes"):
        parse_scenario(d)


def test_footprints_beyond_memory_plus_swap_are_rejected():
    d = copy.deepcopy(BASE)
    d["host"]["kernel"]["swap"] = 0
    d["tenants"].append({"name": "vm1", "footprint": "3GiB", "workload": {"type": "zipf"}})
    with pytest.raises(ScenarioError, match="more than all memory plus swap"):
        parse_scenario(d)


def test_malformed_yaml_file_gets_a_clear_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("host: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(p)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_the_default_scenario_loads_with_dram_a_quarter_of_memory():
    s = load_scenario(default_scenario_path())
    dram = sum(n.capacity for n in s.nodes if n.is_fast)
    assert dram * 4 == sum(n.capacity for n in s.nodes)
    assert len(s.tenants) >= 3
    yaml.safe_dump(BASE)  # BASE itself stays plain data


def test_a_tiering_override_replaces_the_kernel_mode_with_its_defaults(tmp_path):
    from pagetide.agent.scenario import with_tiering
    from pagetide.harness.fleet import fleet

    d = copy.deepcopy(BASE)
    d["host"].setdefault("kernel", {})["tiering"] = {"mode": "nbt", "hot_threshold": "2s"}
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump(d))
    assert load_scenario(path).kernel.tiering.hot_threshold == 2.0
    sc = load_scenario(path, tiering="tpp")
    assert sc.kernel.tiering.mode == "tpp" and sc.kernel.tiering.hot_threshold == 1.0
    assert sc.kernel.demote_scale_factor == 0.02            # TPP's own default watermark comes with it
    assert {s.kernel.tiering.mode for s in fleet(2, tiering="damos", memory_mib=256)} == {"damos"}
    assert with_tiering(["not", "a", "mapping"], "nbt") == ["not", "a", "mapping"]   # left for the parser
    with pytest.raises(ScenarioError, match="unknown tiering mode"):
        load_scenario(path, tiering="bogus")
