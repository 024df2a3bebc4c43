"""How harness/faults.py judges a faulted run against the fault-free one (synthetic runs, no processes)."""

from pagetide.harness.faults import FaultPlan, outcome

PLAN = FaultPlan(hosts=2, window=3)


def run(fault, victim_series, other_series, recovered=5, recovered_epoch=2, invariant="", used=(10, 10), after=None):
    key = ("h1", "vm0", 0, 0, 1.0, 0.25, None, 0, False)
    return {"fault": fault, "victim": "h1", "rounds": 30, "injected": 3, "recovered": recovered,
            "recovered_epoch": recovered_epoch, "lost": {"h0": 0, "h1": 2}, "missing": 0, "outages": {"h1": 1},
            "set": [key], "after": [key] if after is None else after, "pauses_kept": True,
            "round_seconds": [(i, 0.1, ("h0", "h1")) for i in range(1, 31)], "capacity": {"h0": [20, 20], "h1": [20, 20]},
            "wall": 1.0,
            "stats": {"h0": {"invariant_error": "", "node_used": [10, 10], "series": {"vm0": other_series}},
                      "h1": {"invariant_error": invariant, "node_used": list(used), "series": {"vm0": victim_series}}}}


FREE = run(None, [0.8] * 30, [0.6] * 30)


def test_a_run_like_the_fault_free_one_survives():
    o = outcome(PLAN, run("agent-kill", [0.8] * 20, [0.6] * 30), FREE)
    assert o.survived and o.quality == {"h0": 1.0, "h1": 1.0}


def test_the_hit_host_is_judged_on_the_window_ten_epochs_after_its_return():
    s = [0.8] * 30
    s[12:15] = [0.7] * 3             # recovered_epoch 2 + 10 .. + window 3
    o = outcome(PLAN, run("agent-kill", s, [0.6] * 30), FREE)
    assert not o.survived and round(o.quality["h1"], 3) == 0.875
    s = [0.8] * 30
    s[3:12] = [0.1] * 9              # slow recovery before the window does not count
    assert outcome(PLAN, run("agent-kill", s, [0.6] * 30), FREE).survived


def test_the_other_hosts_are_judged_from_the_fault_to_the_end():
    other = [0.6] * 30
    other[10:] = [0.5] * 20
    o = outcome(PLAN, run("agent-stall", [0.8] * 30, other), FREE)
    assert not o.survived and o.quality["h0"] < 0.95


def test_broken_invariants_capacity_lost_policies_and_no_recovery_each_fail_the_run():
    assert not outcome(PLAN, run("agent-kill", [0.8] * 30, [0.6] * 30, invariant="node usage drifted"), FREE).survived
    assert not outcome(PLAN, run("agent-kill", [0.8] * 30, [0.6] * 30, used=(21, 10)), FREE).survived
    o = outcome(PLAN, run("controller-restart", [0.8] * 30, [0.6] * 30, after=[]), FREE)
    assert not o.survived and o.policies_lost == ["h1/vm0"]
    o = outcome(PLAN, run("agent-kill", [0.8] * 30, [0.6] * 30, recovered=None), FREE)
    assert not o.survived and o.quality["h1"] == 0.0 and o.notes
