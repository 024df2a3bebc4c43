"""`pagetide sim`'s results table and JSON without oracles (`--no-oracles`), and its checks of flags."""

import json
import math

from pagetide.harness.sim import _no_nan, report

NAN = float("nan")


def result(oracle: float) -> dict:
    vm = {"vm": "vm0", "workload": "zipf", "footprint_bytes": 1 << 30, "dram_share": 0.5, "oracle_share": oracle,
          "lag_oracle_share": oracle, "lag_cost_slowdown": oracle * 2, "slowdown": 1.5, "oracle_slowdown": oracle * 2,
          "migrated_bytes": 0, "pingpong": 0, "accesses": 1.0, "labels": {}, "departed_seconds": None,
          "tier_shares": [0.5, 0.5], "oracle_tier_shares": [oracle, 1 - oracle]}
    host = {"host": "h0", "vms": [vm], "dram_share": 0.5, "oracle_share": oracle, "lag_oracle_share": oracle,
            "lag_cost_slowdown": oracle * 2, "slowdown": 1.5, "vmstat": {"pgdemote_kswapd": 0, "pgdemote_direct": 0}}
    return {"hosts": [host], "rounds": 1, "wall_seconds": 1.0, "round_seconds": {"median": 0.1, "max": 0.1},
            "advance_seconds_mean": 0.1, "report_bytes_per_host_max": 0}


def test_oracles_not_computed_print_as_dashes_and_are_null_in_json():
    with_oracles, without = report(result(0.8)), report(result(NAN))
    assert "0.625" in with_oracles and "80.0%" in with_oracles       # 0.5 / 0.8
    assert "nan" not in without.lower()
    row = next(line for line in without.splitlines() if line.startswith("h0 ") and "vm0" in line)
    assert row.split()[5:10] == ["50.0%", "-", "-", "-", "-"]
    doc = json.loads(json.dumps(_no_nan(result(NAN)), allow_nan=False))
    assert doc["hosts"][0]["oracle_share"] is None and doc["hosts"][0]["vms"][0]["oracle_tier_shares"][0] is None
    assert math.isclose(doc["hosts"][0]["vms"][0]["slowdown"], 1.5)


def test_a_bad_hosts_per_proxy_is_refused_with_the_controllers_reason():
    from pagetide.harness.sim import _per_proxy_error
    assert _per_proxy_error(None) is None and _per_proxy_error(3) is None
    assert _per_proxy_error(0) == "--hosts-per-proxy: must be at least 1, not 0"
