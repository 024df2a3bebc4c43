"""This machine's real sysfs topology, knobs and trackers, read (never written)."""

import pytest

from pagetide.agent.linux.sysfs import parse_list, read_knobs, read_topology, trackers_available


def test_kernel_lists_parse_and_bad_ones_are_refused():
    assert parse_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_list("\n") == []
    with pytest.raises(ValueError):
        parse_list("0-x")


def test_topology_has_node_0_with_memory_cpus_and_distance_to_itself():
    topo = read_topology()
    n0 = next(n for n in topo.nodes if n.id == 0)
    assert n0.mem_total_bytes > 0 and n0.cpus
    assert n0.distances[0] == 10
    assert set(topo.knobs) == {"demotion_enabled", "numa_balancing", "watermark_scale_factor"}


def test_knobs_are_read_as_the_kernel_has_them():
    knobs = read_knobs()
    assert knobs["numa_balancing"] in {"0", "1", "2", "3", "absent"}


def test_trackers_are_detected_each_with_a_reason():
    found = trackers_available()
    assert [t for t, _, _ in found] == ["idle_pages", "page_idle", "soft_dirty"]
    for name, ok, why in found:
        print(name, ok, why)
        assert why
