"""`pagetide sim --fleet churn` end to end (agents, Ray controller): VMs arrive, are resized and leave during
the run, and the results come per host class and per VM label beside those per host and VM."""

import json

import pytest

from pagetide.harness.cli import build_parser
from pagetide.harness.sim import main

pytestmark = pytest.mark.e2e


def test_the_churn_fleet_runs_with_arrivals_resizes_and_departures_and_reports_classes_and_labels(
        ray_session, tmp_path, capsys):
    out = tmp_path / "churn.json"
    # 21 s: the arrivals at 8 s and 12 s, the resize at 16 s and the departure at 20 s happen
    args = build_parser("sim").parse_args(["sim", "--fleet", "churn", "--duration", "21s", "--quiet",
                                           "--json", str(out)])
    assert main(args) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert [(e["kind"], e["host"], e["vm"], e["error"]) for e in res["events"]] == [
        ("arrive", "tiered-00", "kv-late", ""), ("arrive", "pmem-00", "web-2", ""),
        ("resize", "tiered-01", "kv", ""), ("depart", "tiered-00", "web-1", "")]
    hosts = {h["host"]: h for h in res["hosts"]}
    assert [h["host"] for h in res["hosts"]] == ["tiered-00", "tiered-01", "pmem-00"]
    assert all(h["invariant_error"] == "" for h in res["hosts"])
    vms = {(h, v["vm"]): v for h, x in hosts.items() for v in x["vms"]}
    assert vms[("tiered-00", "web-1")]["departed_seconds"] == 20.0
    assert vms[("tiered-00", "kv-late")]["arrived_seconds"] == 8.0 and vms[("tiered-00", "kv-late")]["accesses"] > 0
    assert vms[("tiered-00", "kv-late")]["first_epoch"] == 8
    assert vms[("tiered-01", "kv")]["footprint_bytes"] == 384 << 20
    assert set(res["classes"]) == {"tiered", "pmem"}
    assert res["classes"]["tiered"]["hosts"] == 2 and res["classes"]["tiered"]["vms"] == 7
    assert res["classes"]["tiered"]["departed"] == 1
    assert set(res["labels"]) == {"team=web", "team=kv", "team=batch"}
    assert res["labels"]["team=kv"]["vms"] == 3
    for group in (*res["classes"].values(), *res["labels"].values()):
        assert 0 < group["dram_share"] <= group["oracle_share"] + 0.05 and group["accesses"] > 0
    # a class's share is its VMs' accesses served by DRAM over their accesses
    tiered = [v for h in ("tiered-00", "tiered-01") for v in hosts[h]["vms"]]
    acc = sum(v["accesses"] for v in tiered)
    assert res["classes"]["tiered"]["dram_share"] == pytest.approx(
        sum(v["accesses"] * v["dram_share"] for v in tiered) / acc)
    shares = res["classes"]["tiered"]["tier_shares"]           # DRAM, CXL, PMEM
    assert len(shares) == 3 and shares[0] == pytest.approx(res["classes"]["tiered"]["dram_share"])
    assert sum(shares) == pytest.approx(1.0, abs=1e-6) and len(res["classes"]["pmem"]["tier_shares"]) == 2
    assert "host class" in printed and "team=kv" in printed and "kv-late (from 8 s)" in printed
