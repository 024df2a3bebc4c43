"""`pagetide sim --fleet advice --apply-advice` end to end (agents, Ray controller, SimulationService churn):
the controller's fleet advice moves hot VMs off a crowded host mid-run, and the fleet's measured DRAM-served
share rises."""

import json

import pytest

from pagetide.harness.cli import build_parser
from pagetide.harness.sim import main

pytestmark = pytest.mark.e2e


def test_applying_the_advice_moves_hot_vms_to_the_roomy_host_and_raises_the_fleets_share(
        ray_session, tmp_path, capsys):
    out = tmp_path / "advice.json"
    args = build_parser("sim").parse_args(["sim", "--fleet", "advice", "--duration", "12s", "--apply-advice",
                                           "--advice-at", "6s", "--quiet", "--json", str(out)])
    assert main(args) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    ap = res["advice_applied"]
    assert ap["advice_round"] == 6
    moves = ap["advice"]["moves"]
    assert moves and all(m["source"] == "crowded-00" and m["destination"] == "roomy-00" for m in moves)
    assert ap["advice"]["dram_share_after"] > ap["advice"]["dram_share_before"]
    # each move's cost: its resident bytes at the default 1250 MB/s, landing at the next period boundary
    assert all(m["copy_seconds"] == pytest.approx(m["copy_bytes"] / 1.25e9) for m in moves)
    assert [(m["vm"], m["error"], m["round"]) for m in ap["landed"]] == [(m["vm"], "", 7) for m in moves]
    hosts = {h["host"]: h for h in res["hosts"]}
    assert all(h["invariant_error"] == "" for h in res["hosts"])
    moved = {m["vm"] for m in moves}
    crowded = {v["vm"]: v for v in hosts["crowded-00"]["vms"]}
    roomy = {v["vm"]: v for v in hosts["roomy-00"]["vms"]}
    assert all(crowded[vm]["departed_seconds"] == 7.0 and roomy[vm]["arrived_seconds"] == 7.0 for vm in moved)
    assert all(roomy[vm]["accesses"] > 0 and roomy[vm]["dram_share"] > 0.9 for vm in moved)
    # measured, not estimated: the fleet's DRAM-served share in the rounds after the moves against before
    assert ap["share_after"] > ap["share_before"] + 0.2
    # at the end the fleet has nothing left to gain
    assert res["advice"]["moves"] == []
    assert "fleet advice applied at 6 s" in printed and "the fleet's measured DRAM-served share" in printed
    assert "fleet advice at the end of the run" in printed
