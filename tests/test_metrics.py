"""What the agents and the controller export to Prometheus: values that match the host model and the round
results they come from, bounded labels, Prometheus naming (promtool check metrics), the per-VM switch, and
the RPC metrics of serve.py's interceptor."""

import asyncio
import os
import shutil
import subprocess

import grpc
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from helpers import small_scenario
from pagetide.agent.backend import MoveCall
from pagetide.agent.host import MPOL_MF_MOVE
from pagetide.agent.metrics import AgentMetrics, errno_name, tier_moves
from pagetide.agent.pageflags import PAGE_SIZE
from pagetide.agent.simhost import SimHost
from pagetide.controller.metrics import Metrics, heat_share
from pagetide.controller.proxy import RoundResult
from pagetide.harness.simmetrics import SimMetrics


def samples(registry) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, parsed back from the exposition text as Prometheus reads it."""
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(sm, name, **labels) -> float:
    return sm[(name, tuple(sorted(labels.items())))]


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def busy_host(ticks=30) -> SimHost:
    """A small host whose one VM is larger than DRAM: the kernel demotes while it runs."""
    sh = SimHost(small_scenario(), host_id="h0")
    sh.advance(ticks)
    return sh


def test_agent_metrics_show_the_hosts_nodes_vms_and_counters_as_the_model_has_them():
    sh = busy_host()
    m = AgentMetrics()
    m.record("h0", sh.usage())
    sm = samples(m.registry)
    h = sh.host
    for n, tier in ((0, "dram"), (1, "pmem")):
        assert value(sm, "pagetide_node_used_bytes", host="h0", node=str(n), tier=tier) == h.node_used[n] * PAGE_SIZE
        assert value(sm, "pagetide_node_free_bytes", host="h0", node=str(n), tier=tier) == h.free()[n] * PAGE_SIZE
        # every tenant page on a node is some VM's: the VMs' resident bytes on a tier add up to the node's used
        assert value(sm, "pagetide_vm_resident_bytes", host="h0", vm="vm0", tier=tier) == h.node_used[n] * PAGE_SIZE
    assert value(sm, "pagetide_vm_footprint_bytes", host="h0", vm="vm0") == 96 << 20
    for name, v in h.vmstat.items():
        assert value(sm, f"pagetide_vmstat_{name}_total", host="h0") == v
    demoted = h.vmstat["pgdemote_kswapd"] + h.vmstat["pgdemote_direct"]
    assert demoted > 0
    # every page reclaim demoted moved dram -> pmem, and none of it was asked for by move_pages
    kernel = value(sm, "pagetide_migrated_pages_total", host="h0", source_tier="dram", destination_tier="pmem",
                   mover="kernel")
    assert kernel == demoted
    assert value(sm, "pagetide_migrated_pages_total", host="h0", source_tier="dram", destination_tier="pmem",
                 mover="controller") == 0
    assert value(sm, "pagetide_migrated_bytes_total", host="h0", source_tier="dram", destination_tier="pmem",
                 mover="kernel") == kernel * PAGE_SIZE
    assert value(sm, "pagetide_agent_scan_duration_seconds_count", host="h0") == sh.tracker.nr_scans * 6
    promtool_check(generate_latest(m.registry).decode())


def test_moves_the_controller_asks_for_are_told_apart_from_the_kernels_and_errors_counted_by_errno():
    sh = busy_host()
    t = sh.host.tenants[0]
    on_pmem = np.flatnonzero(sh.host.node[t.start:t.end] == 1)[:100]
    addrs = (np.uint64(t.vma_start) + on_pmem.astype(np.uint64) * np.uint64(PAGE_SIZE))
    bad = np.array([t.vma_end + PAGE_SIZE], dtype=np.uint64)           # outside the VM: EFAULT
    calls = [MoveCall("vm0", np.concatenate([addrs, bad]), np.zeros(101, dtype=np.int64), MPOL_MF_MOVE)]
    before = sh.host.migrated_pages.copy()
    res = sh.move_pages(calls, "b1")
    m = AgentMetrics()
    m.moved("h0", (r.status for r in res))
    m.record("h0", sh.usage())
    sm = samples(m.registry)
    moved = res[0].moved_pages
    assert moved > 0
    assert value(sm, "pagetide_migrated_pages_total", host="h0", source_tier="pmem", destination_tier="dram",
                 mover="controller") == moved
    assert (sh.host.migrated_pages - before)[1, 0] == moved
    assert value(sm, "pagetide_agent_move_page_errors_total", host="h0", errno="EFAULT") == 1
    assert value(sm, "pagetide_agent_move_pages_calls_total", host="h0") == 1


def test_errno_names_and_tier_sums():
    assert errno_name(-16) == "EBUSY" and errno_name(-12) == "ENOMEM" and errno_name(-9999) == "9999"
    assert tier_moves([[0, 5, 1], [2, 0, 0], [0, 3, 0]], ["dram", "pmem", "pmem"]) == {
        ("dram", "pmem"): 6, ("pmem", "dram"): 2, ("pmem", "pmem"): 3}


def test_no_vm_metrics_drops_every_per_vm_series_and_nothing_else():
    sh = busy_host(10)
    full, lean = AgentMetrics(), AgentMetrics(per_vm=False)
    u = sh.usage()
    full.record("h0", u)
    lean.record("h0", u)
    a, b = samples(full.registry), samples(lean.registry)
    assert {k for k in a if ("vm", "vm0") in k[1]} and not {k for k in b if any(n == "vm" for n, _ in k[1])}
    assert {k for k in a if not any(n == "vm" for n, _ in k[1]) and "scan_duration" not in k[0]} == \
        {k for k in b if "scan_duration" not in k[0]}


def test_scans_are_reported_once_and_their_record_is_bounded():
    sh = SimHost(small_scenario(), host_id="h0")
    sh.advance(10)
    first = sh.usage().scan_seconds
    assert len(first) == sh.tracker.nr_scans * 2 and all(s > 0 for s in first)
    assert sh.usage().scan_seconds == []
    assert sh.scan_seconds.maxlen == 1024


def test_reclaim_counts_demoted_and_swapped_pages_as_stolen():
    sh = busy_host()
    v = sh.host.vmstat
    assert v["pgsteal_kswapd"] + v["pgsteal_direct"] == \
        v["pgdemote_kswapd"] + v["pgdemote_direct"] + v["pswpout"]
    assert v["pgsteal_direct"] >= v["pgdemote_direct"]


def round_result(**kw) -> RoundResult:
    r = RoundResult(host_id="h0", period=3, report_bytes=120_000, report_seconds=0.002, plan_seconds=0.003,
                    move_seconds=0.01, promoted_bytes=8 * PAGE_SIZE, demoted_bytes=4 * PAGE_SIZE,
                    errors={-16: 3, -12: 1}, dram_target_bytes={"vm0": 1 << 20},
                    heat_pages={"vm0": [10, 0, 5, 0]}, heat_fast_pages={"vm0": [0, 0, 5, 0]},
                    dram_resident_share={"vm0": 0.25})
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_controller_metrics_follow_its_rounds():
    m = Metrics()
    m.observe(round_result())
    m.observe(round_result(period=4))
    sm = samples(m.registry)
    assert value(sm, "pagetide_controller_host_rounds_total", host="h0") == 2
    assert value(sm, "pagetide_controller_migrated_bytes_total", host="h0", direction="promote") == 16 * PAGE_SIZE
    assert value(sm, "pagetide_controller_migrated_pages_total", host="h0", direction="demote") == 8
    assert value(sm, "pagetide_controller_move_page_errors_total", host="h0", errno="EBUSY") == 6
    assert value(sm, "pagetide_controller_move_page_errors_total", host="h0", errno="ENOMEM") == 2
    assert value(sm, "pagetide_controller_round_duration_seconds_count") == 2
    assert value(sm, "pagetide_controller_round_duration_seconds_bucket", le="0.025") == 2
    assert value(sm, "pagetide_controller_plan_duration_seconds_sum") == pytest.approx(0.006)
    assert value(sm, "pagetide_controller_heat_report_size_bytes_bucket", le="262144.0") == 2
    assert value(sm, "pagetide_controller_vm_dram_target_bytes", host="h0", vm="vm0") == 1 << 20
    assert value(sm, "pagetide_controller_vm_dram_resident_ratio", host="h0", vm="vm0") == 0.25
    assert value(sm, "pagetide_controller_vm_dram_heat_ratio", host="h0", vm="vm0") == 1.0
    promtool_check(generate_latest(m.registry).decode())


def test_a_vms_heat_share_weights_pages_by_their_heat_bin():
    assert heat_share([4, 2, 1], [0, 2, 0]) == pytest.approx(1 * 2 / (1 * 2 + 2 * 1))
    assert heat_share([7, 0, 0], [7, 0, 0]) is None          # no page referenced: nothing to share


def test_controller_state_counts_hosts_by_state_policies_and_pauses():
    m = Metrics()
    m.state({"h0": "up", "h1": "down", "h2": "up"}, {"h0": {"vm0": object(), "vm1": object()}},
            {"h1": True}, "memtis")
    sm = samples(m.registry)
    assert [value(sm, "pagetide_controller_hosts", state=s) for s in ("starting", "up", "down")] == [0, 2, 1]
    assert value(sm, "pagetide_controller_host_up", host="h1") == 0
    assert value(sm, "pagetide_controller_vm_policies", host="h0") == 2
    assert value(sm, "pagetide_controller_migration_paused", host="h1") == 1
    assert value(sm, "pagetide_controller_placement_policy_info", policy="memtis") == 1
    assert value(sm, "pagetide_controller_host_missed_deadlines_total", host="h2") == 0


def test_controller_without_per_vm_series():
    m = Metrics(per_vm=False)
    m.observe(round_result())
    assert not [k for k in samples(m.registry) if any(n == "vm" for n, _ in k[1])]


class _Tenant:
    def __init__(self, name, share):
        self.tenant, self.dram_share, self.oracle_share, self.slowdown, self.oracle_slowdown = name, share, 0.9, 1.5, 1.1


class _Stats:
    host_id, time_ns, dram_share, oracle_share, slowdown = "h0", 7_000_000_000, 0.5, 0.9, 1.4
    tenants = [_Tenant("vm0", 0.25), _Tenant("vm1", 0.75)]


def test_simulation_only_figures_carry_the_sim_prefix():
    r = CollectorRegistry()
    SimMetrics(r).observe({"h0": _Stats()})
    sm = samples(r)
    assert all(name.startswith("pagetide_sim_") for name, _ in sm)
    assert value(sm, "pagetide_sim_vm_dram_served_ratio", host="h0", vm="vm1") == 0.75
    assert value(sm, "pagetide_sim_host_oracle_dram_served_ratio", host="h0") == 0.9
    assert value(sm, "pagetide_sim_time_seconds") == 7.0
    lean = CollectorRegistry()
    SimMetrics(lean, per_vm=False).observe({"h0": _Stats()})
    assert not [k for k in samples(lean) if "_vm_" in k[0]]


def test_rpcs_are_counted_per_method_and_status_code():
    from pagetide.agent.server import start_agent
    from pagetide.v1 import agent_pb2, agent_pb2_grpc

    async def main():
        m = AgentMetrics()
        agent = await start_agent([SimHost(small_scenario(), host_id="h0")], metrics=m)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as ch:
                stub = agent_pb2_grpc.AgentServiceStub(ch)
                await stub.ListHosts(agent_pb2.ListHostsRequest(), timeout=5)
                await stub.ListHosts(agent_pb2.ListHostsRequest(), timeout=5)
                with pytest.raises(grpc.aio.AioRpcError):
                    await stub.GetTopology(agent_pb2.GetTopologyRequest(host_id="nope"), timeout=5)
                bad = ch.unary_unary("/pagetide.v1.AgentService/MovePages")
                with pytest.raises(grpc.aio.AioRpcError):
                    await bad(b"\xff\xff\xff", timeout=5)
            return await asyncio.to_thread(samples, m.registry)     # as the HTTP server's thread scrapes
        finally:
            await agent.stop(0)

    sm = asyncio.run(main())
    svc = "pagetide.v1.AgentService"
    assert value(sm, "pagetide_rpc_server_handled_total", service=svc, method="ListHosts", code="OK") == 2
    assert value(sm, "pagetide_rpc_server_handled_total", service=svc, method="GetTopology", code="NOT_FOUND") == 1
    assert value(sm, "pagetide_rpc_server_handled_total", service=svc, method="MovePages",
                 code="INVALID_ARGUMENT") == 1
    assert value(sm, "pagetide_rpc_server_handling_seconds_count", service=svc, method="ListHosts") == 2
    # the scrape read the host through the server's loop: its nodes are there
    assert ("pagetide_node_used_bytes", (("host", "h0"), ("node", "0"), ("tier", "dram"))) in sm


def test_bad_metrics_options_are_refused_before_anything_starts(capsys):
    from pagetide.harness.cli import build_parser

    args = build_parser("agent").parse_args(["agent", "--metrics-port", "70000"])
    assert args.func(args) == 2
    assert "--metrics-port must be in 0..65535, got 70000" in capsys.readouterr().err
    args = build_parser("sim").parse_args(["sim", "--agents", "2", "--agent-metrics-port", "65535"])
    assert args.func(args) == 2
    assert "--agent-metrics-port must leave room for 2 port(s) in 1..65535, got 65535" in capsys.readouterr().err
    args = build_parser("sim").parse_args(["sim", "--metrics-port", "0"])
    assert args.func(args) == 2


def test_a_vm_gone_from_its_host_takes_its_series_with_it():
    m = Metrics()
    m.observe(round_result())
    m.observe(round_result(period=4, dram_target_bytes={"vm1": 2 << 20}, heat_pages={"vm1": [1, 1]},
                           heat_fast_pages={"vm1": [0, 1]}, dram_resident_share={"vm1": 0.5}))
    sm = samples(m.registry)
    assert not [k for k in sm if ("vm", "vm0") in k[1]]
    assert value(sm, "pagetide_controller_vm_dram_target_bytes", host="h0", vm="vm1") == 2 << 20


def test_real_hosts_and_the_standalone_controller_export_no_simulation_only_series():
    sh = busy_host(10)
    am, cm = AgentMetrics(), Metrics()
    am.record("h0", sh.usage())
    cm.observe(round_result())
    names = {name for reg in (am.registry, cm.registry) for name, _ in samples(reg)}
    assert len(names) > 40 and not [n for n in names if n.startswith("pagetide_sim_") or "oracle" in n]
