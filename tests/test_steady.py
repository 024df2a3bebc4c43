"""NBT's rate limit in steady state (harness/steady.py) and its row in the published-trends table."""

import pytest

from pagetide.agent.scenario import parse_scenario
from pagetide.harness import bench, steady

MiB = 1 << 20


def small_host(mode: dict) -> dict:
    case = bench.suite(bench.SuiteConfig(workloads=("zipf",), shares=(4,), rounds=4, footprint_mib=16), {})[0]
    d = bench.scenario_for(case, "nbt")
    d["host"]["kernel"]["tiering"] = mode
    return d


def test_the_window_counts_only_its_own_seconds():
    sc = parse_scenario(small_host({"mode": "nbt"}))
    whole = steady.steady_window(sc, 4, 4)
    last = steady.steady_window(sc, 4, 1)
    assert 0 < last.accesses < whole.accesses and 0 < last.memory_time < whole.memory_time
    assert 0 < last.dram_accesses <= last.accesses and last.promoted_bytes <= whole.promoted_bytes
    assert whole.ns_per_access > 0
    with pytest.raises(ValueError, match="window"):
        steady.steady_window(sc, 4, 5)


def test_the_limit_cuts_what_nbt_promotes_in_the_window():
    free = steady.steady_window(parse_scenario(small_host({"mode": "nbt"})), 4, 3)
    lim = steady.steady_window(parse_scenario(small_host({"mode": "nbt", "promote_rate_limit": "64KiB/s"})), 4, 3)
    assert free.promoted_bytes > 0 and lim.promoted_bytes < free.promoted_bytes
    assert lim.promoted_bytes <= 3 * 64 * 1024 + 4096          # 16 pages a second: the limit counts candidates


def window(promoted_mib: float, ns: float, dram: float) -> dict:
    return {"accesses": 1e6, "memory_time": ns * 1e-3, "dram_accesses": dram * 1e6, "promoted_bytes": int(promoted_mib * MiB)}


def steady_rows(limited_ns: float) -> list[dict]:
    return [{"workload": w, "share": 4, "seconds": 300, "window": 60, "free": window(100, 100.0, 0.8),
             "limited": window(20, limited_ns, 0.78)} for w in ("zipf", "hotset")]


def test_summary_is_the_traffic_cut_and_the_mean_extra_memory_time():
    m = steady.summarize(steady_rows(103.0))
    assert m["cut"] == pytest.approx(5.0) and m["slower"] == pytest.approx(0.03)
    assert m["share_lost"] == pytest.approx(0.02) and m["hosts"] == 2 and m["window"] == 60


def test_the_trend_is_judged_on_the_steady_state_and_the_30s_transient_explained():
    from test_bench import trend_results

    res = trend_results()
    for h in res["hosts"]:
        if h["run"] == "nbt-ratelimit":
            h["slowdown"] = 2.2                          # the 30 s runs: 10% longer
    res["rate_limit_steady"] = steady_rows(103.0)
    rate = next(x for x in bench.trends(res) if "rate limit cuts" in x)
    assert "steady state (the last 60 s of 300 s runs on 2 stable hosts): 200 -> 40 MiB promoted (5.0x less)" in rate
    assert "memory time 3.0% longer on average; the 30 s grid runs:" in rate and rate.endswith("| yes |")
    text = "\n".join(bench.trends(res))
    assert bench.WHY_NOT["rate-limit-30s"] in text and bench.WHY_NOT["rate-limit"] not in text
    res["rate_limit_steady"] = steady_rows(110.0)
    text = "\n".join(bench.trends(res))
    assert bench.WHY_NOT["rate-limit"] in text and "memory time 10.0% longer on average;" in text


def test_measure_rate_limit_runs_only_the_stable_hosts_and_the_flag_skips_it():
    cfg = bench.SuiteConfig(workloads=("drift",), shares=(4,), footprint_mib=16)
    assert bench.measure_rate_limit(cfg, quick=True) == []
    assert "--no-steady" in bench.command_line(cfg, "x.md", None, None, False, no_steady=True)
