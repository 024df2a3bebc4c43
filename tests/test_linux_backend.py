"""The linux host backend on this machine: a child process it serves, found by pid and name, its topology,
heat reports, real moves and usage; configuration errors; kernel knobs written only where asked (files here)."""

import errno

import numpy as np
import pytest

from pagetide.agent.backend import BadRequest, HostBackend, MoveCall, Sampling, backend_class
from pagetide.agent.linux import sysfs
from pagetide.agent.linux.backend import (
    VMSTAT_COUNTERS, ConfigError, LinuxHost, TenantSpec, pick_tracker, resolve, write_knobs,
)
from pagetide.agent.mempolicy import MPOL_MF_MOVE, MPOL_MF_SW_YOUNG

from helpers import CHILD_NPAGES

PAGE = 4096
NPAGES = CHILD_NPAGES  # the `child` fixture's pages (tests/conftest.py), every other one touched


def one_period(h):
    import time
    while h.period < 1:
        time.sleep(max(0.0, h.seconds_to_next_scan()))
        h.run_due()


def test_linux_is_a_registered_backend_that_scans_on_the_wall_clock(child):
    assert backend_class("linux") is LinuxHost
    h = LinuxHost([TenantSpec("pid", str(child[0].pid))], period=1.0)
    assert isinstance(h, HostBackend) and isinstance(h, Sampling) and h.backend == "linux"


def test_tenant_specs_parse_and_bad_ones_name_the_option():
    assert TenantSpec.parse("vm0=pid:12") == TenantSpec("pid", "12", "vm0")
    assert TenantSpec.parse("name:qemu-system-x86_64") == TenantSpec("name", "qemu-system-x86_64")
    assert TenantSpec.parse("cgroup:/sys/fs/cgroup/x") == TenantSpec("cgroup", "/sys/fs/cgroup/x")
    assert TenantSpec.parse("w=vm:pid:7") == TenantSpec("pid", "7", "w", vm=True)
    for bad in ("pid:abc", "uid:3", "pid:", "12"):
        with pytest.raises(ConfigError, match="--tenant"):
            TenantSpec.parse(bad)


def test_a_spec_matching_no_process_is_refused(child):
    with pytest.raises(ConfigError, match="no such process"):
        resolve([TenantSpec("pid", "999999999")])
    with pytest.raises(ConfigError, match="no such process"):
        resolve([TenantSpec("name", "no-such-comm-here")])
    p, _ = child
    with pytest.raises(ConfigError, match="more than one"):
        resolve([TenantSpec("pid", str(p.pid), "a"), TenantSpec("pid", str(p.pid), "a")])
    assert [(x.name, x.pid, x.kind) for x in resolve([TenantSpec("pid", str(p.pid))])] == [
        (f"pid-{p.pid}", p.pid, "task")]
    assert [x.kind for x in resolve([TenantSpec("pid", str(p.pid), vm=True)])] == ["vm"]


def test_the_child_is_served_topology_heat_and_usage(child):
    p, base = child
    h = LinuxHost([TenantSpec("pid", str(p.pid), "wl")], host_id="h", period=0.1, nr_scans=2)
    topo = h.topology()
    assert topo.backend == "linux" and topo.tick == 0 and topo.period == 0.1
    n0 = next(n for n in topo.nodes if n.id == 0)
    assert n0.type == "dram" and n0.capacity > 0 and 0 < n0.free <= n0.capacity
    assert 0 < n0.wmark_min <= n0.wmark_low <= n0.wmark_high
    (t,) = topo.tenants
    assert t.name == "wl" and t.kind == "task" and t.address_start <= base < t.address_end
    assert t.footprint >= NPAGES * PAGE and dict(t.labels) == {"pid": str(p.pid)}
    one_period(h)
    rep = h.heat_report(10_000)
    assert rep.period == 1 and rep.nr_scans == 2 and rep.tracker == h.tracker.name
    (tr,) = rep.tenants
    present = int(tr.histograms.sum())
    mine = (tr.cold_fast.addresses >= base) & (tr.cold_fast.addresses < base + NPAGES * PAGE)
    assert int(mine.sum()) == NPAGES // 2                      # the touched pages, on node 0
    assert (tr.cold_fast.nodes[mine] == 0).all()
    assert set(rep.vmstat) == set(VMSTAT_COUNTERS) and rep.vmstat["pgfault"] > 0
    u = h.usage()
    assert u.resident["wl"][0] == present * PAGE and len(u.scan_seconds) == 2


def test_the_counters_are_the_simulated_hosts_names_that_proc_vmstat_has():
    from pagetide.agent.host import VMSTAT_COUNTERS as MODEL
    assert set(VMSTAT_COUNTERS) == set(MODEL) - {"pgalloc_fail"}
    assert set(VMSTAT_COUNTERS) <= set(sysfs.vmstat()) | {"pgpromote_candidate", "pgdemote_kswapd",
                                                          "pgdemote_direct", "pgpromote_success"}


def test_moves_to_node_0_give_status_0_untouched_pages_enoent_and_sw_young_never_fails_the_call(child):
    p, base = child
    h = LinuxHost([TenantSpec("pid", str(p.pid), "wl")], period=1.0)
    addrs = np.arange(base, base + NPAGES * PAGE, PAGE, dtype=np.uint64)
    (res,) = h.move_pages([MoveCall("wl", addrs, np.zeros(NPAGES, np.int64), MPOL_MF_MOVE | MPOL_MF_SW_YOUNG)])
    assert res.status[0::2].tolist() == [0] * (NPAGES // 2)
    assert res.status[1::2].tolist() == [-errno.ENOENT] * (NPAGES // 2)
    assert res.moved_pages == 0                             # already on node 0: nothing moved
    (res,) = h.move_pages([MoveCall("wl", addrs[:4], np.zeros(4, np.int64), MPOL_MF_MOVE,
                                    expected=np.array([1, 1, 1, 1]))])
    assert res.status[0::2].tolist() == [-errno.EBUSY] * 2  # not where the plan saw it: left alone


def test_bad_moves_are_refused_before_anything_moves(child):
    p, base = child
    h = LinuxHost([TenantSpec("pid", str(p.pid), "wl")], period=1.0)
    one = np.array([base], np.uint64)
    with pytest.raises(BadRequest, match="not a memory node"):
        h.move_pages([MoveCall("wl", one, np.array([0]), MPOL_MF_MOVE),
                      MoveCall("wl", one, np.array([max(h.node_ids) + 1]), MPOL_MF_MOVE)])
    assert h.mover.requests == 0
    with pytest.raises(BadRequest) as e:
        h.move_pages([MoveCall("nobody", one, np.array([0]), MPOL_MF_MOVE)])
    assert e.value.not_found
    with pytest.raises(BadRequest, match="aligned"):
        h.move_pages([MoveCall("wl", one + np.uint64(1), np.array([0]), MPOL_MF_MOVE)])


def test_bad_configuration_names_the_option(child):
    p, _ = child
    spec = [TenantSpec("pid", str(p.pid))]
    for kw, opt in (({"nr_scans": 0}, "--nr-scans"), ({"period": 0}, "--period"),
                    ({"slow_type": "tape"}, "--slow-type"), ({"tracker": "damon"}, "--tracker")):
        with pytest.raises(ConfigError, match=opt):
            LinuxHost(spec, **kw)
    with pytest.raises(ConfigError, match="--tenant"):
        LinuxHost([])


@pytest.mark.parametrize("name", ["idle_pages", "page_idle", "soft_dirty"])
def test_a_tracker_the_kernel_lacks_is_refused_with_its_reason(name):
    ok, why = {n: (o, w) for n, o, w in sysfs.trackers_available()}[name]
    if ok:
        assert pick_tracker(name) == (name, why)
    else:
        with pytest.raises(ConfigError, match="--tracker") as e:
            pick_tracker(name)
        assert why in str(e.value)


def test_auto_picks_the_best_working_tracker_or_none_with_every_reason():
    found = sysfs.trackers_available()
    name, why = pick_tracker("auto")
    working = [n for n, ok, _ in found if ok]
    assert name == (working[0] if working else "none")
    if not working:
        assert all(w in why for _, _, w in found)


def test_knobs_are_written_only_as_asked_and_an_unknown_one_writes_nothing(tmp_path):
    knobs = {k: tmp_path / k for k in sysfs.KNOBS}
    for f in knobs.values():
        f.write_text("0\n")
    with pytest.raises(ConfigError, match="--set-knob swappiness"):
        write_knobs({"demotion_enabled": "1", "swappiness": "10"}, knobs)
    assert all(f.read_text() == "0\n" for f in knobs.values())
    assert write_knobs({"numa_balancing": "2"}, knobs) == {"numa_balancing": "2"}
    assert knobs["demotion_enabled"].read_text() == "0\n"


def test_a_real_host_exports_the_simulated_hosts_series(child):
    from prometheus_client import generate_latest

    from pagetide.agent.metrics import AgentMetrics

    p, _ = child
    h = LinuxHost([TenantSpec("pid", str(p.pid), "wl")], host_id="h", period=1.0)
    m = AgentMetrics()
    m.record("h", h.usage())
    text = generate_latest(m.registry).decode()
    for series in ('pagetide_agent_host_info{backend="linux"', 'pagetide_node_capacity_bytes{host="h",node="0",'
                   'tier="dram"}', 'pagetide_vm_resident_bytes{host="h",tier="dram",vm="wl"}',
                   'pagetide_vmstat_pgfault_total{host="h"}', 'pagetide_vmstat_pgmigrate_success_total{host="h"}'):
        assert series in text, series


def test_periods_follow_the_wall_clock_and_missed_ones_are_skipped_not_caught_up(child):
    p, _ = child
    h = LinuxHost([TenantSpec("pid", str(p.pid))], period=0.5, nr_scans=2)
    assert h.seconds_to_next_scan() > 0 and not h.run_due()         # the first scan is 0.25 s away
    h.started -= 5.0                                                # the agent stood still for 10 periods
    calls = 0
    while not h.run_due():
        calls += 1
    assert calls == 1 and h.period == 1                             # one period of 2 scans, back to back
    assert -0.5 < h.seconds_to_next_scan() <= 0.5                   # then on with the current period
