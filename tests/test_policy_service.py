"""ControllerService end to end through the shell it is (validation, selection, pagination, persistence,
pause, events), and the per-VM rules every placement plan keeps (pinned tier, migration off, bounds as
shares of the footprint). Planning tests are pure; the e2e ones run a real controller over simulated
agents."""

from dataclasses import replace

import numpy as np
import pytest

from pagetide.controller.policies import HostView, PolicyParams, VmPolicy, make_policy
from pagetide.controller.policies.pagetide import plan_host
from pagetide.controller.policies.placement import honour_vm_rules, resolve_policies
from test_policy import MiB, NO_RESERVE, PAGE, moved, one_socket, split_host, targets


# ------------------------------------------------------------------------------- the VMs' rules, planned

def kinds_of(plan, vm):
    return {b.kind for b in plan.batches if b.tenant == vm}


def test_a_vm_pinned_to_the_slow_tier_is_demoted_entirely_and_never_promoted_or_marked():
    m = one_socket()
    pinned = m.add("pinned", np.full(2048, 200), np.zeros(2048))        # 8 MiB of hot pages on DRAM
    m.add("other", np.full(1024, 100), np.ones(1024))
    plan = plan_host(m.view(), {"pinned": VmPolicy(pinned_tier="slow")}, NO_RESERVE)
    assert set(moved(plan, "demote").tolist()) == set(pinned.tolist())
    assert kinds_of(plan, "pinned") == {"demote"}
    assert plan.dram_target_bytes["pinned"] == 0
    m.apply(plan)
    again = plan_host(m.view(), {"pinned": VmPolicy(pinned_tier="slow")}, NO_RESERVE)
    assert (m.tenants["pinned"]["node"] == 1).all() and kinds_of(again, "pinned") == set()


def test_a_vm_pinned_to_dram_gets_even_its_barely_warm_pages_promoted_and_keeps_them():
    m = split_host({"hot": 200})                              # 16 MiB hot + 48 MiB idle, all on PMEM
    warm = m.add("pinned", np.full(1024, 10), np.ones(1024))  # 4 MiB at heat 10: bin 0, never promoted
    assert targets(m)["pinned"] == 0 and "pinned" not in {b.tenant for b in plan_host(m.view(), {}).batches}
    pol = {"pinned": VmPolicy(pinned_tier="dram")}
    plan = plan_host(m.view(), pol, NO_RESERVE)
    assert set(warm.tolist()) <= set(moved(plan, "promote").tolist())
    assert plan.dram_target_bytes["pinned"] == 4 * MiB and plan.dram_target_bytes["hot"] == 16 * MiB
    m.apply(plan)
    # a hotter VM arrives on PMEM with DRAM full: it may not take the pinned VM's DRAM
    m.add("newcomer", np.full(4096, 240), np.ones(4096))
    again = plan_host(m.view(), pol, NO_RESERVE)
    assert "demote" not in kinds_of(again, "pinned")
    assert not set(moved(again, "demote").tolist()) & set(warm.tolist())


def test_a_vm_with_migration_off_has_none_of_its_pages_moved_or_marked_and_keeps_its_dram():
    m = one_socket(dram=32 * MiB)
    m.add("frozen", np.concatenate([np.zeros(7936), np.full(2048, 200)]),    # 31 MiB idle on DRAM, hot on PMEM
          np.concatenate([np.zeros(7936), np.ones(2048)]))
    m.add("b", np.full(1024, 240), np.ones(1024))
    free_plan = plan_host(m.view(), {}, NO_RESERVE)
    assert "demote" in kinds_of(free_plan, "frozen")          # without the rule its idle DRAM is taken
    plan = plan_host(m.view(), {"frozen": VmPolicy(migrate=False)}, NO_RESERVE)
    assert kinds_of(plan, "frozen") == set()
    assert plan.dram_target_bytes["frozen"] == 7936 * PAGE
    assert plan.promote_bytes == 0 and plan.demote_bytes == 0  # b has no room but the frozen VM's


def test_bounds_given_as_shares_are_resolved_against_the_vms_footprint():
    m = split_host({"hot": 200, "warm": 100, "idle": 0})          # every VM maps 64 MiB
    assert targets(m, {"hot": VmPolicy(max_dram_share=1 / 16)})["hot"] == 4 * MiB
    assert targets(m, {"idle": VmPolicy(min_dram_share=2 / 64)})["idle"] == 2 * MiB
    # the topology's footprint, when the view carries it, is the base (not the resident pages)
    view = m.view()
    view = HostView(view.host_id, view.nodes, tuple(replace(t, footprint_bytes=128 * MiB) for t in view.tenants))
    got = resolve_policies(view, {"hot": VmPolicy(min_dram_share=0.25, max_dram_share=0.5)})
    assert (got[0].min_dram_bytes, got[0].max_dram_bytes) == (32 * MiB, 64 * MiB)
    assert got[0].min_dram_share is None and got[1] == VmPolicy()


@pytest.mark.parametrize("policy, message", [
    (VmPolicy(min_dram_bytes=1, min_dram_share=0.1), "min_dram_bytes and min_dram_share are both set"),
    (VmPolicy(max_dram_bytes=1, max_dram_share=0.1), "max_dram_bytes and max_dram_share are both set"),
    (VmPolicy(max_dram_share=1.5), r"max_dram_share must be in \[0, 1\], got 1.5"),
    (VmPolicy(min_dram_share=0.6, max_dram_share=0.5), "min_dram_share 0.6 exceeds max_dram_share 0.5"),
    (VmPolicy(pinned_tier="cxl"), "pinned_tier must be one of dram, slow"),
])
def test_an_inconsistent_rule_is_refused_naming_the_vm(policy, message):
    m = split_host({"hot": 200})
    with pytest.raises(ValueError, match=f"'hot': {message}"):
        plan_host(m.view(), {"hot": policy})


@pytest.mark.parametrize("name", ["memory-optimizer", "hemem", "memtis", "memtierd"])
def test_the_shared_filter_keeps_every_baseline_within_the_vms_rules(name):
    m = one_socket(dram=16 * MiB)
    for vm in ("frozen", "slow", "free"):
        m.add(vm, np.concatenate([np.zeros(1024), np.full(1024, 240)]), np.concatenate([np.zeros(1024), np.ones(1024)]))
    pol = {"frozen": VmPolicy(migrate=False), "slow": VmPolicy(pinned_tier="slow")}
    policy = make_policy(name, period_seconds=1.0)
    for _ in range(3):                      # the sample-counting baselines act after a few rounds
        view = m.view()
        plan = honour_vm_rules(view, pol, policy.plan(view, pol, PolicyParams()))
        assert kinds_of(plan, "frozen") == set() and kinds_of(plan, "slow") <= {"demote"}
        assert plan.promote_bytes == moved(plan, "promote").size * PAGE
        assert plan.demote_bytes == moved(plan, "demote").size * PAGE
        m.apply(plan)
