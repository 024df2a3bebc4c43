"""`pagetide bench`: the suite's hosts, the report, and one quick end-to-end run."""

import asyncio
import json
import math

import numpy as np
import pytest
import yaml

from pagetide.agent.scenario import parse_scenario
from pagetide.harness import bench
from pagetide.harness.cli import build_parser

# (pages in the address map, pages a 30-round run touches): agent/traces/README.md, `bench.trace_pages`
TRACE_PAGES = {"sort": (377, 377), "python-dict": (2187, 2187), "sqlite-index": (547, 344)}
MiB = 1 << 20


def full_suite():
    return bench.suite(bench.SuiteConfig(), TRACE_PAGES)


def test_the_full_suite_is_every_workload_at_every_share():
    cases = full_suite()
    assert {(c.workload, c.share) for c in cases} == {(w, s) for w in bench.WORKLOADS for s in (2, 4, 8)}
    ids = {c.host_id(run) for c in cases for run in bench.RUNS}
    assert len(ids) == len(cases) * len(bench.RUNS)                       # host names never collide


@pytest.mark.parametrize("case", full_suite(), ids=lambda c: c.host_id(""))
def test_every_generated_host_is_a_valid_scenario_with_dram_the_given_share_of_the_touched_pages(case):
    d = yaml.safe_load(yaml.safe_dump(bench.scenario_for(case, "pagetide")))    # as the agent reads the file
    sc = parse_scenario(d)
    assert sc.name == case.host_id("pagetide")
    footprint = sum(t.footprint for t in sc.tenants)
    dram, slow = sc.nodes
    assert dram.type == "dram"
    if case.workload in bench.TRACES:
        # 1/share of the pages the run touches, within 1% (footprints round each copy up to 2 MiB)
        assert dram.capacity * case.share == pytest.approx(case.touched_pages * 4096, rel=bench.TRACE_TOLERANCE)
    else:
        assert dram.capacity * case.share == footprint and case.touched_pages * 4096 == footprint
    assert slow.capacity > footprint - dram.capacity                          # the rest plus headroom
    assert sc.kernel.tiering.mode == "none" and sc.kernel.demotion_enabled


@pytest.mark.parametrize("run", sorted(bench.RUNS))
def test_each_run_sets_its_kernel_mode(run):
    sc = parse_scenario(bench.scenario_for(full_suite()[0], run))
    assert sc.kernel.tiering.mode == bench.RUNS[run][1]["tiering"]["mode"]


def test_kernel_only_runs_use_the_none_policy_and_first_touch_falls_back_without_demotion():
    sc = parse_scenario(bench.scenario_for(full_suite()[0], "first-touch"))
    assert sc.kernel.zonelist == "unified" and not sc.kernel.demotion_enabled
    assert {bench.RUNS[r][0] for r in bench.KERNEL_RUNS} == {"none"}
    assert parse_scenario(bench.scenario_for(full_suite()[0], "tpp")).kernel.tiering.mode == "tpp"


def test_trace_hosts_replay_copies_of_the_trace_with_dram_a_share_of_the_pages_they_touch():
    sort = {c.share: c for c in full_suite() if c.workload == "sort"}
    for share, case in sort.items():
        sc = parse_scenario(bench.scenario_for(case, "pagetide"))
        assert {t.footprint for t in sc.tenants} == {2 * MiB}                # 377 pages = 1.5 MiB -> 2 MiB
        assert all(not t.prefault and t.workload["path"] == "sort" for t in sc.tenants)
        copies = len(sc.tenants)
        assert case.touched_pages == 377 * copies
        # "DRAM 1/4" is a quarter of 377 x copies pages, not of the 512 x copies pages of the footprints
        assert sc.nodes[0].capacity == pytest.approx(377 * copies * 4096 / share, rel=0.01)
    # 377 x 27 / 4 = 2544.75 pages, 0.6% from 2560 (10 MiB); fewer copies round by more than 1%
    assert bench.trace_copies(377, 4) == (27, 10 * MiB)
    assert bench.trace_copies(344, 8)[0] == 12


def test_the_mix_host_has_vms_of_different_sizes_and_weights():
    case = next(c for c in full_suite() if c.workload == "mix")
    sc = parse_scenario(bench.scenario_for(case, "pagetide"))
    assert len({t.footprint for t in sc.tenants}) >= 3
    assert len({t.workload["type"] for t in sc.tenants}) == len(sc.tenants)
    assert case.weights == {"vm-web": 2.0, "vm-batch": 0.5}


def test_the_vm_weights_are_in_the_controllers_store_before_it_starts(tmp_path, monkeypatch):
    """Set after the start, the weights reached a host's first round or not with the machine's load (its
    loop's first reconcile call may already be waiting with no policies): the mix rows changed with load."""
    import contextlib
    from pagetide.harness import agents as agents_mod
    from pagetide.harness import drive as drive_mod
    seen = {}

    @contextlib.asynccontextmanager
    async def controlled(agents, **options):
        seen.update(options["store"].policies())
        raise RuntimeError("stop here")
        yield
    monkeypatch.setattr(drive_mod, "controlled", controlled)
    monkeypatch.setattr(agents_mod, "launch_agents", lambda commands: [])
    case = next(c for c in full_suite() if c.workload == "mix")
    with pytest.raises(RuntimeError, match="stop here"):
        asyncio.run(bench.run_one("pagetide", [case], bench.SuiteConfig(), str(tmp_path)))
    assert {vm: p.weight for vm, p in seen[case.host_id("pagetide")].items()} == case.weights


def fake_results():
    hosts = []
    for run, share_of_oracle in (("pagetide", 0.9), ("demotion", 0.5)):
        for w in ("zipf", "sort"):
            hosts.append({"run": run, "workload": w, "share": 4, "host": f"{w}-s4-{run}", "dram_share": 0.8 * share_of_oracle,
                          "oracle_share": 0.8, "static_oracle_share": float("nan"), "slowdown": 1.5,
                          "oracle_slowdown": 1.2, "migrated_bytes": 3 << 29, "pingpong": 12345,
                          "lag_oracle_share": 0.75, "lag_cost_slowdown": 1.35})
    return {"command": "pagetide bench --quick --out x.md", "rounds": 8, "wall_seconds": 12.3, "hosts": hosts}


def test_the_report_has_the_command_a_summary_and_one_table_per_workload_and_share():
    text = bench.report(fake_results())
    assert text.startswith("# pagetide benchmark suite\n\nCommand: `pagetide bench --quick --out x.md`")
    assert "| pagetide | 0.900 |" in text and "| demotion | 0.500 |" in text
    assert "## zipf, DRAM 1/4" in text and "## sort, DRAM 1/4" in text
    # 72% served against the lag-one oracle's 75%; its 1.35x memory time paying migration against our 1.5x
    assert "| pagetide | 72.0% | 0.900 | 0.960 | 0.900 | 1.500x | 1.50 | 12,345 |" in text
    assert "| *all-DRAM* | 100.0% | 1.250 | - | - | 1.000x | 0.00 | 0 |" in text
    assert "| *per-epoch oracle* | 80.0% | 1.000 | - | - | 1.200x | - | - |" in text
    assert "| *static oracle* | n/a | n/a | - | - | n/a | - | - |" in text
    assert "| *lag-one oracle* | 75.0% | 0.938 | 1.000 | - | n/a | - | - |" in text
    assert "| *lag-one oracle + migration cost* | 75.0% | 0.938 | - | 1.000 | 1.350x | - | - |" in text
    lag = text.index("## Mean ratio to the lag-one oracle (DRAM-served share")
    assert "| pagetide | 0.960 |" in text[lag:] and "| demotion | 0.533 |" in text[lag:]
    assert text.index("## zipf") < text.index("## sort")                     # suite order, not alphabetical


def test_summary_is_the_mean_ratio_per_run_and_share():
    assert bench.summary(fake_results()) == {"pagetide": {4: pytest.approx(0.9)}, "demotion": {4: pytest.approx(0.5)}}


def test_host_result_weights_tenants_by_accesses():
    stats = {"dram_share": 0.6, "oracle_share": 0.9, "slowdown": 1.4, "tenants": [
        {"accesses": 3.0, "static_oracle_share": 0.8, "oracle_slowdown": 1.0, "migrated_bytes": 10, "pingpong": 1},
        {"accesses": 1.0, "static_oracle_share": 0.4, "oracle_slowdown": 2.0, "migrated_bytes": 5, "pingpong": 2}]}
    r = bench.host_result(stats)
    assert r["static_oracle_share"] == pytest.approx(0.7) and r["oracle_slowdown"] == pytest.approx(1.25)
    assert (r["migrated_bytes"], r["pingpong"], r["dram_share"]) == (15, 3, 0.6)
    assert "weighted_share" not in r


def test_host_result_weighs_vms_by_priority_when_the_host_has_weights():
    stats = {"dram_share": 0.5, "oracle_share": 0.8, "slowdown": 1.4, "tenants": [
        {"name": "a", "accesses": 1.0, "dram_share": 0.9, "oracle_share": 1.0, "static_oracle_share": 0.8,
         "oracle_slowdown": 1.0, "migrated_bytes": 0, "pingpong": 0},
        {"name": "b", "accesses": 1.0, "dram_share": 0.1, "oracle_share": 0.6, "static_oracle_share": 0.4,
         "oracle_slowdown": 2.0, "migrated_bytes": 0, "pingpong": 0}]}
    r = bench.host_result(stats, {"a": 3.0})
    assert r["weighted_share"] == pytest.approx((3 * 0.9 + 0.1) / 4)
    assert r["weighted_oracle_share"] == pytest.approx((3 * 1.0 + 0.6) / 4)


def test_the_command_line_reproduces_the_configuration():
    args = build_parser().parse_args(["bench", "--quick", "--policies", "pagetide,tpp", "--rounds", "5",
                                      "--out", "o.md", "--plots", "p"])
    cfg = bench.config_from_args(args)
    assert cfg.runs == ("pagetide", "tpp") and cfg.rounds == 5 and cfg.shares == bench.QUICK.shares
    cmd = bench.command_line(cfg, args.out, args.json, args.plots, args.quick)
    assert cmd == "pagetide bench --quick --policies pagetide,tpp --rounds 5 --out o.md --plots p"
    again = bench.config_from_args(build_parser().parse_args(cmd.split()[1:]))
    assert again == cfg


def test_unknown_policies_and_shares_are_rejected():
    for argv in (["bench", "--policies", "pagetide,nope"], ["bench", "--shares", "3"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)


@pytest.fixture
def user_trace(tmp_path):
    """A user's trace: a generated lackey log converted to tmp_path/mine.pgtrace."""
    from pagetide.agent.traces.lackey import convert_lackey

    from lackey_log import lackey_log

    (tmp_path / "mine.lackey").write_bytes(lackey_log(30000, seed=5))
    convert_lackey(tmp_path / "mine.lackey", tmp_path / "mine.pgtrace", epoch_accesses=1000)
    return tmp_path / "mine.pgtrace"


def bench_args(argv):
    return bench.config_from_args(build_parser("bench").parse_args(["bench", *argv]))


def test_workloads_take_a_users_trace_file_which_becomes_hosts_replaying_it(user_trace, monkeypatch):
    from pagetide.agent.sim import simulate
    from pagetide.agent.traces.format import TraceFile

    monkeypatch.chdir(user_trace.parent)
    cfg = bench_args(["--workloads", "zipf,mine.pgtrace", "--shares", "4", "--rounds", "2"])
    assert cfg.workloads == ("zipf", "mine.pgtrace") and bench.trace_workloads(cfg.workloads) == ["mine.pgtrace"]
    pages = bench.trace_pages(["mine.pgtrace"], cfg.rounds)
    npages = TraceFile(user_trace).npages
    assert pages["mine.pgtrace"][0] == npages and 0 < pages["mine.pgtrace"][1] <= npages
    (case,) = [c for c in bench.suite(cfg, pages) if c.workload == "mine.pgtrace"]
    assert case.host_id("tpp") == "mine-s4-tpp"
    tenant = case.scenario["tenants"][0]["workload"]
    assert tenant["type"] == "trace" and tenant["path"] == str(user_trace)        # absolute: agents run anywhere
    d = yaml.safe_load(yaml.safe_dump(bench.scenario_for(case, "demotion")))
    result = simulate(parse_scenario({**d, "duration": "1s"}))                    # the agent's own parser and model
    assert sum(t.accesses for t in result.tenants) > 0
    assert bench.command_line(cfg, "o.md", None, None, False).startswith(
        "pagetide bench --workloads zipf,mine.pgtrace --shares 4 --rounds 2")


@pytest.mark.parametrize("make, error", [
    (lambda d: None, "'missing.pgtrace' is neither a workload (zipf, hotset"),
    (lambda d: (d / "missing.pgtrace").write_text("not a trace"), "not a pagetide trace (bad magic)")])
def test_a_missing_or_bad_trace_file_is_an_error_before_anything_starts(tmp_path, monkeypatch, capsys, make, error):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    with pytest.raises(SystemExit) as e:
        bench_args(["--workloads", "zipf,missing.pgtrace"])
    assert e.value.code == 2 and error in capsys.readouterr().err


def test_a_shipped_traces_name_in_workloads_is_the_shipped_trace_even_beside_a_file_of_that_name(tmp_path,
                                                                                                  monkeypatch):
    from pagetide.agent.traces.shipped import SHIPPED_DIR

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sort").write_text("not a trace")
    (tmp_path / "sort.pgtrace").write_text("not a trace")
    assert bench_args(["--workloads", "sort,sort.pgtrace"]).workloads == ("sort",)
    (case,) = bench.suite(bench.SuiteConfig(workloads=("sort",), shares=(4,)), {"sort": (377, 377)})
    assert case.scenario["tenants"][0]["workload"]["path"] == "sort"
    assert bench.trace_pages(["sort"], 1)["sort"][0] == bench.trace_pages([str(SHIPPED_DIR / "sort.pgtrace")], 1)[
        str(SHIPPED_DIR / "sort.pgtrace")][0] == 377


def test_trace_files_that_would_name_the_same_hosts_or_have_other_pages_are_refused(user_trace, monkeypatch,
                                                                                   capsys):
    import shutil

    from pagetide.agent.traces.lackey import convert_lackey

    monkeypatch.chdir(user_trace.parent)
    (user_trace.parent / "b").mkdir()
    shutil.copy(user_trace, user_trace.parent / "b" / "mine.pgtrace")
    with pytest.raises(SystemExit):
        bench_args(["--workloads", "mine.pgtrace,b/mine.pgtrace"])
    assert "'mine.pgtrace' and 'b/mine.pgtrace' would name the same hosts (mine-...)" in capsys.readouterr().err
    convert_lackey(user_trace.parent / "mine.lackey", "huge.pgtrace", page_size=2 << 20)
    with pytest.raises(SystemExit):
        bench_args(["--workloads", "huge.pgtrace"])
    assert "huge.pgtrace: a trace of 2097152-byte pages" in capsys.readouterr().err


@pytest.mark.e2e
def test_quick_bench_runs_two_policies_end_to_end(ray_session, tmp_path):
    out, js, plots = tmp_path / "suite.md", tmp_path / "suite.json", tmp_path / "plots"
    args = build_parser().parse_args(["bench", "--quick", "--policies", "pagetide,demotion", "--out", str(out),
                                      "--json", str(js), "--plots", str(plots), "--no-speed"])
    assert args.func(args) == 0
    res = json.loads(js.read_text())
    hosts = res["hosts"]
    assert {(h["run"], h["workload"]) for h in hosts} == {(r, w) for r in ("pagetide", "demotion")
                                                            for w in bench.QUICK.workloads}
    for h in hosts:
        assert 0 < h["dram_share"] / h["oracle_share"] <= 1.2, h
        assert h["slowdown"] >= 1.0 and h["oracle_slowdown"] >= 1.0 - 1e-9, h
        assert h["migrated_bytes"] > 0 or h["run"] == "demotion"
    demotion = [h for h in hosts if h["run"] == "demotion"]
    pagetide = [h for h in hosts if h["run"] == "pagetide"]
    mean = lambda hs, k: sum(h[k] for h in hs) / len(hs)
    assert mean(demotion, "oracle_share") >= mean(demotion, "dram_share")
    assert mean(pagetide, "dram_share") > mean(demotion, "dram_share")         # the controller's moves pay off
    text = out.read_text()
    assert "Command: `pagetide bench --quick --policies pagetide,demotion" in text
    assert "## mix, DRAM 1/4" in text
    assert (plots / "ratio_share_1-4.png").stat().st_size > 0
    assert "](plots/ratio_share_1-4.png)" in text                              # linked, relative to the report
    assert not math.isnan(res["hosts"][0]["dram_share"])


def test_bench_host_output_is_parsed_for_the_speed_table():
    from pagetide.agent.bench import run_host_bench

    scan, tick_ms, pages = bench.parse_host_bench(run_host_bench("64MiB", repeat=2))
    assert pages == 64 * MiB // 4096 and scan > 1e6 and tick_ms > 0
    with pytest.raises(ValueError, match="unexpected"):
        bench.parse_host_bench("nothing here")


def trend_results():
    """Two workloads at 1/4 and 1/8 under pagetide, two baselines, the NBT pair, TPP and first-touch."""
    share_of = {"pagetide": 0.80, "memory-optimizer": 0.82, "memtierd": 0.6, "nbt": 0.5, "nbt-ratelimit": 0.49,
                "tpp": 0.7, "first-touch": 0.2}
    promoted = {"nbt": 6 << 30, "nbt-ratelimit": 1 << 30}
    hosts = []
    for run, share in share_of.items():
        for w in ("zipf", "mix"):
            for s in (4, 8):
                hosts.append({"run": run, "workload": w, "share": s, "dram_share": share + (0.1 if w == "mix" and
                              run == "pagetide" else 0), "oracle_share": 0.9, "slowdown": 1.3 if run == "pagetide" else 2.0,
                              "oracle_slowdown": 1.2, "migrated_bytes": 2 * promoted.get(run, 0),
                              "promoted_bytes": promoted.get(run, 0), "pingpong": 0})
    return {"hosts": hosts}


def test_published_trends_are_marked_reproduced_or_not_with_the_reason():
    text = "\n".join(bench.trends(trend_results()))
    assert "24.00 -> 4.00 GiB promoted (6.0x less), DRAM-served share 1.0 points lower" in text
    rate, tpp, first = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rate.endswith("| yes |")                       # 6x less traffic for 1 point of DRAM share
    assert "70.0% local" in tpp and tpp.endswith("| no |")  # under the published 72%
    assert first.endswith("| no |") and "first-touch fastest on 0 of 2" in first
    assert bench.WHY_NOT["first-touch"] in text and bench.WHY_NOT["tpp-local"] in text
    assert bench.WHY_NOT["rate-limit"] not in text
    res = trend_results()
    for h in res["hosts"]:
        if h["run"] == "nbt-ratelimit":
            h["slowdown"] = 2.2                          # 10% longer memory time: not "little cost"
    rate = next(x for x in bench.trends(res) if "rate limit cuts" in x)
    assert "memory time 10.0% longer on average over 4 hosts" in rate and rate.endswith("| no |")


def test_colloids_trend_compares_pagetide_with_the_best_hotness_only_run_on_the_bandwidth_bound_host():
    res = trend_results()
    for run, slow in (("pagetide", 4.0), ("memory-optimizer", 10.0), ("tpp", 8.0), ("first-touch", 3.0)):
        res["hosts"].append({"run": run, "workload": bench.BANDWIDTH, "share": 4, "dram_share": 0.5,
                             "slowdown": slow, "promoted_bytes": 0})
    row = next(x for x in bench.trends(res) if "Colloid" in x)
    assert "DRAM 1/4: pagetide 4.00x" in row and "best hotness-only run tpp 8.00x (50.0%): 2.00x | yes |" in row    # first-touch is not tiering
    res["hosts"][-2]["slowdown"] = 4.4
    row = next(x for x in bench.trends(res) if "Colloid" in x)
    assert row.endswith("| no |") and bench.WHY_NOT["colloid"] in "\n".join(bench.trends(res))


def test_targets_compare_pagetide_with_the_best_baseline_per_case():
    lines = bench.targets(trend_results())
    assert "| zipf | 1/4 | 0.889 | memory-optimizer | 0.911 | -0.022 | 1.300x | memory-optimizer | 2.000x |" in lines
    assert "| mix | 1/4 | 1.000 | memory-optimizer | 0.911 | +0.089 | 1.300x | memory-optimizer | 2.000x |" in lines
    assert "pagetide is at or above the best baseline in 2 of 4 cases (unweighted)." in lines
    assert any("at least as fast as the fastest baseline in 4 of 4 cases" in x for x in lines)
    res = trend_results()
    next(h for h in res["hosts"] if (h["run"], h["workload"], h["share"]) == ("tpp", "zipf", 8))["slowdown"] = 1.25
    lines = bench.targets(res)
    assert "| zipf | 1/8 | 0.889 | memory-optimizer | 0.911 | -0.022 | 1.300x | tpp | 1.250x |" in lines
    assert any("at least as fast as the fastest baseline in 3 of 4 cases" in x for x in lines)
    assert any("Stable workloads" in x and "0 of 2" in x for x in lines)
    assert any("pagetide's modelled memory time is 1.300x all-DRAM" in x for x in lines)


def test_a_tracker_that_ranks_by_the_truth_captures_everything_and_ties_at_the_cut_split_evenly():
    from pagetide.harness.trackers import captured
    truth = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    assert captured(truth, truth, 3) == 1.0
    assert captured(-truth, truth, 3) == pytest.approx(3.0 / 12.0)      # the 3 coldest hold 2+1+0 of 5+4+3
    # all tied: the top 3 are any 3 of 6, so on average half of the total over the best 12
    assert captured(np.zeros(6), truth, 3) == pytest.approx((15.0 / 2) / 12.0)


def test_the_tracker_table_lists_each_tracker_with_its_placement_run():
    from pagetide.harness.trackers import table_lines
    row = {"workload": "zipf", "share": 4, "same": 0.97, "next": 0.95, "lag": 0.96,
           "core_share_per_gib": 0.0098, "scan_ms_per_gib_period": 18.0}
    lines = table_lines({"idle_pages": [row], "chmu": [{"applies": False}]}, {"pagetide": {4: 0.93}},
                        bench.TRACKER_RUNS)
    assert "| idle_pages | 0.970 | 0.950 | 0.960 | 0.980% | 18.0 | 0.930 |" in lines
    assert any(x.startswith("| chmu | n/a") for x in lines)
    assert bench.scenario_for(full_suite()[0], "pagetide-adaptive")["host"]["tracker"] == "idle_pages-adaptive"
    # HeMem and MEMTIS keep their published signal: sampled loads
    assert {bench.scenario_for(full_suite()[0], r)["host"]["tracker"] for r in ("hemem", "memtis")} == {"pebs"}
    assert set(bench.TRACKER_RUNS) == {"idle_pages", "idle_pages-adaptive", "pebs", "chmu", "pebs-decayed",
                                      "hint_faults"}
    assert bench.scenario_for(full_suite()[0], "pagetide-pebs-decayed")["host"]["tracker"] == "pebs-decayed"
    assert "tracker" not in bench.scenario_for(full_suite()[0], "memory-optimizer")["host"]
