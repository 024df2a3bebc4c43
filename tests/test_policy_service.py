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


# ------------------------------------------------------------------- the service over real gRPC, no Ray

import asyncio  # noqa: E402
import json  # noqa: E402

import grpc  # noqa: E402

from pagetide.controller.controller import Controller  # noqa: E402
from pagetide.controller.events import EventHub  # noqa: E402
from pagetide.controller.proxy import RoundResult  # noqa: E402
from pagetide.controller.service import start_controller_server  # noqa: E402
from pagetide.controller.store import PolicyStore  # noqa: E402
from pagetide.v1 import agent_pb2, controller_pb2 as pb, controller_pb2_grpc, types_pb2  # noqa: E402

GiB = 1 << 30
LABELS = {"h0": {"web": {"team": "web", "env": "prod"}, "db": {"team": "data", "env": "prod"}},
          "h1": {"web": {"team": "web", "env": "test"}, "batch": {}}}


def topology(host):
    return agent_pb2.GetTopologyResponse(host_id=host, nodes=[
        types_pb2.Node(id=0, type=types_pb2.NODE_TYPE_DRAM, capacity_bytes=4 * GiB),
        types_pb2.Node(id=1, type=types_pb2.NODE_TYPE_PMEM, capacity_bytes=16 * GiB)],
        tenants=[types_pb2.Tenant(name=vm, kind=types_pb2.TENANT_KIND_VM, page_size_bytes=4096,
                                  footprint_bytes=4 * GiB, labels=labels) for vm, labels in LABELS[host].items()])


def served(db, body, hosts=("h0", "h1", "h2")):
    """Run `body(stub, ctl)` against a ControllerService over a Controller whose hosts h0 and h1 have their
    topology read (h2 never answered); no Ray, no agents: the loops are not started."""
    async def main():
        store = PolicyStore(str(db))
        ctl = Controller({h: "127.0.0.1:1" for h in hosts}, store=store)
        for h in hosts:
            if h in LABELS:
                ctl.hosts[h].topology = topology(h)
                ctl.hosts[h].status = "up"
        server, port = await start_controller_server(ctl)
        served.port = port
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                return await body(controller_pb2_grpc.ControllerServiceStub(ch), ctl)
        finally:
            await server.stop(None)
            store.close()
    return asyncio.run(main())


def set_req(**policy):
    sel = policy.pop("selector", None)
    return pb.SetVmPolicyRequest(policy=pb.VmPolicy(**policy), selector=sel)


def test_a_policy_set_is_read_back_with_every_field_and_is_on_disk_when_the_call_returns(tmp_path):
    db = tmp_path / "c.db"

    async def body(stub, ctl):
        r = await stub.SetVmPolicy(set_req(host_id="h0", vm="web", min_dram_share=0.25, max_dram_share=0.5,
                                           weight=2, pinned_tier=pb.TIER_DRAM, migration_disabled=True,
                                           max_slowdown=1.25), timeout=5)
        got = await stub.GetVmPolicy(pb.GetVmPolicyRequest(host_id="h0", vm="web"), timeout=5)
        default = await stub.GetVmPolicy(pb.GetVmPolicyRequest(host_id="h0", vm="db"), timeout=5)
        return r, got, default, dict(ctl.policies["h0"])

    r, got, default, mem = served(db, body)
    assert r.policy == got.policy and list(r.policies) == [r.policy]
    p = got.policy
    assert (p.min_dram_share, p.max_dram_share, p.weight, p.pinned_tier, p.migration_disabled, p.max_slowdown) == (
        0.25, 0.5, 2.0, pb.TIER_DRAM, True, 1.25)
    assert not default.policy.HasField("max_dram_share") and default.policy.weight == 1.0
    assert not default.policy.HasField("max_slowdown")
    assert mem == {"web": VmPolicy(min_dram_share=0.25, max_dram_share=0.5, weight=2.0, pinned_tier="dram",
                                   migrate=False, max_slowdown=1.25)}
    with PolicyStore(str(db)) as s:                      # a restarted controller reads exactly this
        assert s.policies() == {"h0": mem}


BAD = [
    (dict(host_id="h0", vm="web", weight=-1), "INVALID_ARGUMENT", "policy.weight: must be a finite number > 0"),
    (dict(host_id="h0", vm="web", weight=float("nan")), "INVALID_ARGUMENT", "policy.weight"),
    (dict(host_id="h0", vm="web", max_dram_share=1.5), "INVALID_ARGUMENT",
     "policy.max_dram_share: must be in [0, 1], got 1.5"),
    (dict(host_id="h0", vm="web", min_dram_share=-0.1), "INVALID_ARGUMENT", "policy.min_dram_share: must be in"),
    (dict(host_id="h0", vm="web", min_dram_share=0.1, min_dram_bytes=1), "INVALID_ARGUMENT",
     "policy.min_dram_share: give min_dram_bytes or min_dram_share, not both"),
    (dict(host_id="h0", vm="web", max_dram_share=0.1, max_dram_bytes=1), "INVALID_ARGUMENT",
     "policy.max_dram_share: give max_dram_bytes"),
    (dict(host_id="h0", vm="web", min_dram_bytes=2, max_dram_bytes=1), "INVALID_ARGUMENT",
     "policy.min_dram_bytes: must not exceed max_dram_bytes (1), got 2"),
    (dict(host_id="h0", vm="web", min_dram_share=0.6, max_dram_share=0.5), "INVALID_ARGUMENT",
     "policy.min_dram_share: must not exceed max_dram_share"),
    (dict(host_id="h0", vm="web", min_dram_bytes=2 * GiB, max_dram_share=0.25), "INVALID_ARGUMENT",
     "policy.min_dram_bytes: the minimum (2147483648 bytes) exceeds the maximum (1073741824 bytes)"),
    (dict(host_id="h0", vm="web", min_dram_bytes=1 << 63), "INVALID_ARGUMENT", "policy.min_dram_bytes: must be at"),
    (dict(host_id="h0", vm="web", pinned_tier=7), "INVALID_ARGUMENT", "policy.pinned_tier: unknown tier 7"),
    (dict(host_id="h0", vm="web", max_slowdown=0.9), "INVALID_ARGUMENT",
     "policy.max_slowdown: must be a finite ratio >= 1 (unset: the fleet-wide guard), got 0.9"),
    (dict(host_id="h0", vm="web", max_slowdown=0.0), "INVALID_ARGUMENT", "policy.max_slowdown: must be a finite"),
    (dict(host_id="h0", vm="web", max_slowdown=float("nan")), "INVALID_ARGUMENT", "policy.max_slowdown"),
    (dict(host_id="h0", vm="web", max_slowdown=float("inf")), "INVALID_ARGUMENT", "policy.max_slowdown"),
    (dict(host_id="", vm="web"), "INVALID_ARGUMENT", "policy.host_id: must name a host"),
    (dict(host_id="h0", vm=""), "INVALID_ARGUMENT", "policy.vm: must name a VM"),
    (dict(host_id="nope", vm="web"), "NOT_FOUND", "policy.host_id: no host 'nope'"),
    (dict(host_id="h0", vm="ghost"), "NOT_FOUND", "policy.vm: no VM 'ghost' on host 'h0'"),
    (dict(host_id="h2", vm="web"), "NOT_FOUND", "no VM 'web' on host 'h2'"),
    (dict(host_id="h0", vm="web", selector=pb.VmSelector(vm="web")), "INVALID_ARGUMENT", "selector: give policy"),
    (dict(selector=pb.VmSelector()), "INVALID_ARGUMENT", "selector: give host_id, vm or labels"),
    (dict(selector=pb.VmSelector(labels={"bad name!": "x"})), "INVALID_ARGUMENT", "selector.labels: label name"),
    (dict(selector=pb.VmSelector(labels={"team": "nobody"})), "NOT_FOUND", "selector: matches no VM"),
    (dict(selector=pb.VmSelector(host_id="nope")), "NOT_FOUND", "selector.host_id: no host 'nope'"),
    # all or none: web on h0 would be fine, but 2 GiB is above a quarter of every VM's 4 GiB
    (dict(selector=pb.VmSelector(labels={"team": "web"}), min_dram_bytes=2 * GiB, max_dram_share=0.25),
     "INVALID_ARGUMENT", "policy.min_dram_bytes: the minimum"),
]


@pytest.mark.parametrize("policy, code, message", BAD)
def test_a_bad_set_request_gets_the_right_code_naming_the_field_and_changes_nothing(tmp_path, policy, code,
                                                                                   message):
    async def body(stub, ctl):
        await stub.SetVmPolicy(set_req(host_id="h1", vm="web", weight=3), timeout=5)
        before = (ctl.store.policies(), {h: dict(p) for h, p in ctl.policies.items()}, ctl.events.sequence)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.SetVmPolicy(set_req(**policy), timeout=5)
        after = (ctl.store.policies(), {h: dict(p) for h, p in ctl.policies.items()}, ctl.events.sequence)
        return e.value, before, after

    err, before, after = served(tmp_path / "c.db", body)
    assert err.code().name == code and message in err.details(), err.details()
    assert before == after


def test_a_selector_sets_every_vm_whose_labels_all_match_in_one_change(tmp_path):
    async def body(stub, ctl):
        r = await stub.SetVmPolicy(set_req(weight=4, selector=pb.VmSelector(labels={"team": "web"})), timeout=5)
        prod = await stub.ListVms(pb.ListVmsRequest(selector=pb.VmSelector(labels={"env": "prod"})), timeout=5)
        both = await stub.ListVms(pb.ListVmsRequest(selector=pb.VmSelector(labels={"env": "prod", "team": "web"})),
                                  timeout=5)
        return r, prod, both, ctl.store.policies()

    r, prod, both, stored = served(tmp_path / "c.db", body)
    assert [(p.host_id, p.vm, p.weight) for p in r.policies] == [("h0", "web", 4.0), ("h1", "web", 4.0)]
    assert stored == {"h0": {"web": VmPolicy(weight=4.0)}, "h1": {"web": VmPolicy(weight=4.0)}}
    assert [(v.host_id, v.vm) for v in prod.vms] == [("h0", "db"), ("h0", "web")]
    assert [(v.host_id, v.vm, v.policy_set, v.policy.weight) for v in both.vms] == [("h0", "web", True, 4.0)]
    assert dict(both.vms[0].labels) == {"team": "web", "env": "prod"} and both.vms[0].footprint_bytes == 4 * GiB


def test_policies_are_listed_by_host_then_vm_a_page_at_a_time(tmp_path):
    async def body(stub, ctl):
        for h, vm in [("h1", "web"), ("h0", "web"), ("h1", "batch"), ("h0", "db")]:
            await stub.SetVmPolicy(set_req(host_id=h, vm=vm, weight=2), timeout=5)
        pages, token = [], ""
        while True:
            r = await stub.ListVmPolicies(pb.ListVmPoliciesRequest(page_size=3, page_token=token), timeout=5)
            pages.append([(p.host_id, p.vm) for p in r.policies])
            token = r.next_page_token
            if not token:
                break
        first = await stub.ListVmPolicies(pb.ListVmPoliciesRequest(page_size=1), timeout=5)
        big = await stub.ListVmPolicies(pb.ListVmPoliciesRequest(page_size=5000), timeout=5)
        errors = []
        for req in (pb.ListVmPoliciesRequest(page_token="garbage"), pb.ListVmPoliciesRequest(page_size=-1),
                    pb.ListVmPoliciesRequest(page_token=first.next_page_token, selector=pb.VmSelector(host_id="h1"))):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.ListVmPolicies(req, timeout=5)
            errors.append((e.value.code().name, e.value.details().split(":")[0]))
        hosts = await stub.ListManagedHosts(pb.ListManagedHostsRequest(page_size=2), timeout=5)
        rest = await stub.ListManagedHosts(pb.ListManagedHostsRequest(page_size=2, page_token=hosts.next_page_token),
                                           timeout=5)
        return pages, len(big.policies), errors, hosts, rest

    pages, n_big, errors, hosts, rest = served(tmp_path / "c.db", body)
    assert pages == [[("h0", "db"), ("h0", "web"), ("h1", "batch")], [("h1", "web")]]
    assert n_big == 4
    assert errors == [("INVALID_ARGUMENT", "page_token"), ("INVALID_ARGUMENT", "page_size"),
                      ("INVALID_ARGUMENT", "page_token")]
    assert [h.host_id for h in hosts.hosts] == ["h0", "h1"] and [h.host_id for h in rest.hosts] == ["h2"]
    assert hosts.hosts[0].dram_capacity_bytes == 4 * GiB and hosts.hosts[0].vms == 2 and not rest.next_page_token


def test_deleting_policies_by_name_or_selector_and_a_stale_policy_by_name(tmp_path):
    async def body(stub, ctl):
        await stub.SetVmPolicy(set_req(selector=pb.VmSelector(vm="web"), weight=2), timeout=5)
        await stub.SetVmPolicy(set_req(host_id="h0", vm="db", weight=2), timeout=5)
        ctl.set_policies([("h2", "old-vm", VmPolicy(weight=9))])          # restored for a host still down
        one = await stub.DeleteVmPolicy(pb.DeleteVmPolicyRequest(host_id="h0", vm="db"), timeout=5)
        again = await stub.DeleteVmPolicy(pb.DeleteVmPolicyRequest(host_id="h0", vm="db"), timeout=5)
        sel = await stub.DeleteVmPolicy(pb.DeleteVmPolicyRequest(selector=pb.VmSelector(labels={"team": "web"})),
                                        timeout=5)
        stale = await stub.DeleteVmPolicy(pb.DeleteVmPolicyRequest(host_id="h2", vm="old-vm"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.DeleteVmPolicy(pb.DeleteVmPolicyRequest(host_id="h0", vm="ghost"), timeout=5)
        return one, again, sel, stale, e.value, ctl.store.policies()

    one, again, sel, stale, err, stored = served(tmp_path / "c.db", body)
    assert [p.vm for p in one.deleted] == ["db"] and not again.deleted
    assert [(p.host_id, p.vm) for p in sel.deleted] == [("h0", "web"), ("h1", "web")]
    assert [p.weight for p in stale.deleted] == [9.0]
    assert err.code() == grpc.StatusCode.NOT_FOUND and stored == {}


def test_pauses_per_host_and_cluster_wide_are_stored_and_a_host_resumes_only_when_neither_holds(tmp_path):
    async def body(stub, ctl):
        out = [await stub.PauseMigration(pb.PauseMigrationRequest(host_id="h1", reason="firmware"), timeout=5)]
        out.append(await stub.PauseMigration(pb.PauseMigrationRequest(reason="incident"), timeout=5))
        states = [(ctl.paused("h0"), ctl.paused("h1"))]
        out.append(await stub.ResumeMigration(pb.ResumeMigrationRequest(), timeout=5))
        states.append((ctl.paused("h0"), ctl.paused("h1")))
        hosts = await stub.ListManagedHosts(pb.ListManagedHostsRequest(), timeout=5)
        errors = []
        for call, req in ((stub.PauseMigration, pb.PauseMigrationRequest(host_id="nope")),
                          (stub.ResumeMigration, pb.ResumeMigrationRequest(host_id="nope")),
                          (stub.PauseMigration, pb.PauseMigrationRequest(reason="x" * 2000))):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call(req, timeout=5)
            errors.append(e.value.code().name)
        return out, states, hosts, errors, ctl.store.pauses()

    out, states, hosts, errors, stored = served(tmp_path / "c.db", body)
    assert (out[1].cluster_paused, list(out[1].paused_host_ids)) == (True, ["h1"])
    assert (out[2].cluster_paused, list(out[2].paused_host_ids)) == (False, ["h1"])
    assert states == [(True, True), (False, True)]
    assert [(h.host_id, h.migration_paused, h.pause_reason) for h in hosts.hosts] == [
        ("h0", False, ""), ("h1", True, "firmware"), ("h2", False, "")]
    assert errors == ["NOT_FOUND", "NOT_FOUND", "INVALID_ARGUMENT"] and stored == {"h1": "firmware"}


def test_a_restarted_controller_restores_every_policy_and_pause_also_for_hosts_that_are_down(tmp_path):
    db = tmp_path / "c.db"

    async def first(stub, ctl):
        await stub.SetVmPolicy(set_req(host_id="h1", vm="batch", pinned_tier=pb.TIER_SLOW), timeout=5)
        ctl.set_policies([("h2", "vm9", VmPolicy(min_dram_bytes=GiB))])
        await stub.PauseMigration(pb.PauseMigrationRequest(host_id="h2", reason="rma"), timeout=5)
        await stub.PauseMigration(pb.PauseMigrationRequest(), timeout=5)

    async def second(stub, ctl):
        got = await stub.GetVmPolicy(pb.GetVmPolicyRequest(host_id="h2", vm="vm9"), timeout=5)
        return got.policy, {h: dict(p) for h, p in ctl.policies.items()}, dict(ctl.pauses), ctl.paused("h0")

    served(db, first)
    policy, policies, pauses, h0_paused = served(db, second, hosts=("h0", "h1", "h2"))
    assert policy.min_dram_bytes == GiB
    assert policies == {"h0": {}, "h1": {"batch": VmPolicy(pinned_tier="slow")},
                        "h2": {"vm9": VmPolicy(min_dram_bytes=GiB)}}
    assert pauses == {"": "", "h2": "rma"} and h0_paused


def test_a_vms_heat_histogram_and_placement_come_from_its_hosts_last_round(tmp_path):
    async def body(stub, ctl):
        before = await stub.GetVmHeat(pb.GetVmHeatRequest(host_id="h0", vm="web"), timeout=5)
        pages = [100] + [0] * 14 + [300]
        fast = [0] * 15 + [300]
        await ctl._record(RoundResult(host_id="h0", period=7, heat_pages={"web": pages},
                                      heat_fast_pages={"web": fast}, dram_resident_share={"web": 0.75},
                                      dram_target_bytes={"web": GiB}, promoted_bytes=4096))
        after = await stub.GetVmHeat(pb.GetVmHeatRequest(host_id="h0", vm="web"), timeout=5)
        vms = await stub.ListVms(pb.ListVmsRequest(selector=pb.VmSelector(host_id="h0", vm="web")), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.GetVmHeat(pb.GetVmHeatRequest(host_id="h0", vm="ghost"), timeout=5)
        return before, after, vms.vms[0], e.value.code()

    before, after, vm, code = served(tmp_path / "c.db", body)
    assert before.period == 0 and not before.pages
    assert after.period == 7 and after.pages[0] == 100 and after.dram_pages[15] == 300 and len(after.pages) == 16
    assert (vm.resident_bytes, vm.dram_bytes, vm.dram_share, vm.dram_target_bytes, vm.period) == (
        400 * 4096, 300 * 4096, 0.75, GiB, 7)
    assert code == grpc.StatusCode.NOT_FOUND


def test_watchers_get_policy_and_round_events_after_subscribing_and_bad_filters_are_refused(tmp_path):
    async def body(stub, ctl):
        call = stub.WatchEvents(pb.WatchEventsRequest(host_ids=["h0"]), timeout=10)
        await call.initial_metadata()
        await stub.SetVmPolicy(set_req(host_id="h1", vm="web", weight=2), timeout=5)     # another host: filtered
        await stub.SetVmPolicy(set_req(host_id="h0", vm="web", weight=2), timeout=5)
        await ctl._record(RoundResult(host_id="h0", period=3, promoted_bytes=8192, demoted_bytes=4096))
        await stub.PauseMigration(pb.PauseMigrationRequest(reason="x"), timeout=5)         # cluster: always
        got = [await call.read() for _ in range(3)]
        call.cancel()
        errors = []
        for req in (pb.WatchEventsRequest(host_ids=["nope"]), pb.WatchEventsRequest(kinds=[0])):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                async for _ in stub.WatchEvents(req, timeout=5):
                    pass
            errors.append(e.value.code().name)
        return got, errors

    got, errors = served(tmp_path / "c.db", body)
    assert [(e.kind, e.host_id) for e in got] == [(pb.EVENT_KIND_POLICY_SET, "h0"), (pb.EVENT_KIND_ROUND, "h0"),
                                                 (pb.EVENT_KIND_MIGRATION_PAUSED, "")]
    assert got[0].policy.weight == 2.0 and (got[1].period, got[1].promoted_bytes, got[1].demoted_bytes) == (3, 8192, 4096)
    assert errors == ["NOT_FOUND", "INVALID_ARGUMENT"]


def test_a_watcher_that_falls_behind_loses_the_oldest_events_and_is_told_how_many():
    async def main():
        hub = EventHub()
        sub = hub.subscribe(maxsize=3)
        for i in range(5):
            hub.publish("round", host_id="h0", period=i + 1)
        first = await sub.get(timeout=1)
        second = await sub.get(timeout=1)
        await sub.get(timeout=1)
        return first, second, await sub.get(timeout=0.05)

    (e1, dropped1), (e2, dropped2), empty = asyncio.run(main())
    assert (e1.period, dropped1) == (3, 2) and (e2.period, dropped2) == (4, 0) and empty is None


# ------------------------------------------------------------------------------------- labels, scenario

def test_tenant_labels_come_from_the_scenario_into_the_topology():
    from helpers import small_scenario
    from pagetide.agent.server import topology_pb
    from pagetide.agent.simhost import SimHost

    s = small_scenario(tenants=[{"name": "vm0", "footprint": "16MiB", "labels": {"team": "web", "env": "prod"},
                                 "workload": {"type": "zipf", "samples": 256}}])
    assert s.tenants[0].labels == (("env", "prod"), ("team", "web"))
    assert dict(topology_pb(SimHost(s).topology()).tenants[0].labels) == {"team": "web", "env": "prod"}


@pytest.mark.parametrize("labels, message", [
    ({"tier": 1}, r"tenants\[0\].labels.tier: must be a string, got 1"),
    ({"bad key": "x"}, r"tenants\[0\].labels: label name must be"),
    (["team"], r"tenants\[0\].labels: expected a mapping"),
])
def test_bad_labels_in_a_scenario_are_refused_naming_the_key(labels, message):
    from helpers import small_scenario
    from pagetide.agent.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=message):
        small_scenario(tenants=[{"name": "vm0", "footprint": "16MiB", "labels": labels,
                                 "workload": {"type": "zipf", "samples": 256}}])


# ------------------------------------------------------------------ end to end: agents, Ray, a restart

def labelled_scenarios(tmp_path, names):
    import yaml
    from test_e2e import host_yaml

    out = []
    for i, n in enumerate(names):
        d = host_yaml(n, i + 1)
        d["tenants"][0]["labels"] = {"tier": "batch"}
        d["tenants"][1]["labels"] = {"tier": "web"}
        p = tmp_path / f"{n}.yaml"
        p.write_text(yaml.safe_dump(d))
        out.append(str(p))
    return out


@pytest.mark.e2e
def test_policies_and_pauses_survive_a_controller_restart_pause_stops_moves_and_a_pinned_vm_ends_on_its_tier(
        ray_session, tmp_path):
    import subprocess
    import sys

    from pagetide.harness.agents import SimulationClient, agent_command, launch_agents, stop_agents
    from pagetide.harness.drive import drive

    files = labelled_scenarios(tmp_path, ["p0", "p1"])
    agents = launch_agents([agent_command("--scenario", files[0], "--scenario", files[1])])
    hosts = {h: f"127.0.0.1:{a.port}" for a in agents for h in a.hosts}
    db = str(tmp_path / "controller.db")
    rounds = []

    async def run_controller(body):
        store = PolicyStore(db)
        ctl = Controller(hosts, store=store, on_round=rounds.append)
        sim = SimulationClient(hosts)
        await ctl.start()
        server, port = await start_controller_server(ctl)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                return await body(controller_pb2_grpc.ControllerServiceStub(ch), ctl, sim, port)
        finally:
            await server.stop(None)
            await ctl.stop()
            ctl.shutdown()
            await sim.close()
            store.close()

    async def first(stub, ctl, sim, port):
        watch = stub.WatchEvents(pb.WatchEventsRequest(), timeout=60)
        await watch.initial_metadata()
        # every VM labelled tier=batch (the DRAM-filling cold VMs) pinned to the slow tier, by selector
        await stub.SetVmPolicy(set_req(pinned_tier=pb.TIER_SLOW, selector=pb.VmSelector(labels={"tier": "batch"})),
                               timeout=5)
        await stub.PauseMigration(pb.PauseMigrationRequest(host_id="p0", reason="test"), timeout=5)
        for _ in range(8):
            await drive(ctl, sim, 1, 10)
        vms = await stub.ListVms(pb.ListVmsRequest(selector=pb.VmSelector(vm="cold")), timeout=5)
        events = []
        while len([e for e in events if e.kind == pb.EVENT_KIND_ROUND]) < 4:
            events.append(await watch.read())
        watch.cancel()
        # the command-line client, in its own process (the server answers on this event loop meanwhile)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pagetide.harness.cli", "policy", "list", "--json", "--controller",
            f"127.0.0.1:{port}", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        cli = (proc.returncode, out.decode(), err.decode())
        return {v.host_id: v for v in vms.vms}, events, cli

    async def second(stub, ctl, sim, port):
        restored = ({h: dict(p) for h, p in ctl.policies.items()}, dict(ctl.pauses))
        n = len(rounds)
        await drive(ctl, sim, 2, 10)
        paused_moves = sum(r.promoted_bytes + r.demoted_bytes for r in rounds[n:] if r.host_id == "p0")
        await stub.ResumeMigration(pb.ResumeMigrationRequest(host_id="p0"), timeout=5)
        n = len(rounds)
        await drive(ctl, sim, 3, 10)
        resumed_moves = sum(r.promoted_bytes + r.demoted_bytes for r in rounds[n:] if r.host_id == "p0")
        return restored, paused_moves, resumed_moves

    try:
        cold, events, cli = asyncio.run(run_controller(first))
        # the round already waiting for p0's first period when the pause came acts as it began
        p0_rounds = [r for r in rounds if r.host_id == "p0" and r.period >= 2]
        restored, paused_moves, resumed_moves = asyncio.run(run_controller(second))
    finally:
        stop_agents(agents)

    # paused p0: reports read and rounds counted, nothing moved; p1's pinned VM went entirely to PMEM
    assert len(p0_rounds) >= 5 and all(r.paused and r.promoted_bytes == r.demoted_bytes == 0 for r in p0_rounds), [
        (r.period, r.paused, r.promoted_bytes, r.demoted_bytes, r.batches) for r in p0_rounds]
    assert cold["p1"].dram_share == 0.0 and cold["p1"].resident_bytes > 0 and cold["p1"].policy_set
    assert cold["p0"].dram_share > 0.75         # paused after its first round: the rest stayed on DRAM
    kinds = [e.kind for e in events]
    assert kinds[:3] == [pb.EVENT_KIND_POLICY_SET, pb.EVENT_KIND_POLICY_SET, pb.EVENT_KIND_MIGRATION_PAUSED]
    assert any(e.kind == pb.EVENT_KIND_ROUND and e.host_id == "p1" and e.demoted_bytes > 0 for e in events)
    assert cli[0] == 0, cli[2]
    assert [(p["host_id"], p["vm"], p["pinned_tier"]) for p in json.loads(cli[1])] == [
        ("p0", "cold", "TIER_SLOW"), ("p1", "cold", "TIER_SLOW")]
    # the restarted controller read both policies and the pause back, and honours them until resumed
    assert restored == ({"p0": {"cold": VmPolicy(pinned_tier="slow")}, "p1": {"cold": VmPolicy(pinned_tier="slow")}},
                        {"p0": "test"})
    assert paused_moves == 0 and resumed_moves > 0


# ------------------------------------------------------------------------------ pagetide policy (the CLI)

def cli(port, *argv):
    """`pagetide policy ARGV` against the port, in a thread (the server answers on the test's event loop)."""
    import contextlib
    import io

    from pagetide.harness.cli import build_parser

    args = build_parser("policy").parse_args(["policy", *argv, "--controller", f"127.0.0.1:{port}"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = args.func(args)
    return code, out.getvalue(), err.getvalue()


def test_the_command_line_client_sets_lists_pauses_and_reports_errors_with_their_code(tmp_path):
    async def body(stub, ctl):
        run = lambda *a: asyncio.to_thread(cli, served.port, *a)  # noqa: E731
        return [await run("set", "--label", "team=web", "--min", "25%", "--max", "2GiB", "--pin", "dram"),
                await run("set", "--host", "h0", "--vm", "db", "--migration", "off", "--weight", "2",
                          "--max-slowdown", "1.3"),
                await run("list", "--json"),
                await run("list", "--host", "h1"),
                await run("pause", "h1", "--reason", "disk swap"),
                await run("hosts"),
                await run("vms", "--label", "env=prod"),
                await run("get", "h0", "ghost"),
                await run("set", "--host", "h0", "--vm", "db", "--weight", "-1"),
                await run("set", "--host", "h0", "--vm", "db", "--max-slowdown", "0.5"),
                await run("get", "h0", "db")]

    results = served(tmp_path / "c.db", body)
    (c1, set_out, _), (c2, _, _), (_, listed, _), (_, h1_table, _), (_, paused, _), (_, hosts, _), (_, vms, _), \
        (c8, _, err8), (c9, _, err9), (c10, _, err10), (_, got_db, _) = results
    assert c1 == c2 == 0 and "web" in set_out and "25" in set_out and "2.0 GiB" in set_out and "dram" in set_out
    assert [(p["host_id"], p["vm"]) for p in json.loads(listed)] == [("h0", "db"), ("h0", "web"), ("h1", "web")]
    assert json.loads(listed)[0]["migration_disabled"] is True and json.loads(listed)[0]["max_slowdown"] == 1.3
    assert "max slowdown" in got_db and "1.3x" in got_db
    assert "h1" in h1_table and "h0" not in h1_table
    assert "hosts paused: h1" in paused and "disk swap" in hosts
    assert "team=web" in vms and "h1" not in vms
    assert c8 == 1 and "NOT_FOUND: vm: no VM 'ghost' on host 'h0'" in err8
    assert c9 == 1 and "INVALID_ARGUMENT: policy.weight: must be a finite number > 0" in err9
    assert c10 == 1 and "INVALID_ARGUMENT: policy.max_slowdown: must be a finite ratio >= 1" in err10


def test_hosts_marked_down_and_back_up_are_events_from_the_controllers_own_transitions():
    async def main():
        ctl = Controller({"h0": "127.0.0.1:1"}, down_after=2)
        sub = ctl.events.subscribe(kinds=["host_down", "host_up"])
        await ctl._answered("h0")
        await ctl._missed("h0", TimeoutError())
        await ctl._answered("h0")                 # one miss: still up, no event
        for _ in range(3):
            await ctl._missed("h0", ConnectionError("refused"))   # down once, not again per miss
        await ctl._answered("h0")
        got = []
        while (e := await sub.get(timeout=0.05)) is not None:
            got.append((e[0].kind, e[0].reason))
        ctl.shutdown()
        return got

    assert asyncio.run(main()) == [("host_up", ""), ("host_down", "ConnectionError: refused"), ("host_up", "")]


OTHER_BAD = [
    ("GetVmPolicy", pb.GetVmPolicyRequest(host_id="", vm="web"), "INVALID_ARGUMENT", "host_id: must name a host"),
    ("GetVmPolicy", pb.GetVmPolicyRequest(host_id="h0", vm=""), "INVALID_ARGUMENT", "vm: must name a VM"),
    ("DeleteVmPolicy", pb.DeleteVmPolicyRequest(host_id="h0", vm="web", selector=pb.VmSelector(vm="web")),
     "INVALID_ARGUMENT", "selector: give host_id and vm, or a selector, not both"),
    ("DeleteVmPolicy", pb.DeleteVmPolicyRequest(selector=pb.VmSelector()), "INVALID_ARGUMENT", "selector: give"),
    ("DeleteVmPolicy", pb.DeleteVmPolicyRequest(host_id="nope", vm="web"), "NOT_FOUND", "host_id: no host"),
    ("ListVms", pb.ListVmsRequest(selector=pb.VmSelector(labels={"": "x"})), "INVALID_ARGUMENT", "selector.labels"),
    ("ListVms", pb.ListVmsRequest(selector=pb.VmSelector(host_id="nope")), "NOT_FOUND", "selector.host_id"),
    ("ListManagedHosts", pb.ListManagedHostsRequest(page_token="x"), "INVALID_ARGUMENT", "page_token"),
    ("GetVmHeat", pb.GetVmHeatRequest(host_id="h0"), "INVALID_ARGUMENT", "vm: must name a VM"),
    ("ResumeMigration", pb.ResumeMigrationRequest(host_id="nope"), "NOT_FOUND", "host_id: no host 'nope'"),
    ("GetFleetAdvice", pb.GetFleetAdviceRequest(max_slowdown=0.5), "INVALID_ARGUMENT", "max_slowdown: must be 0"),
    ("GetFleetAdvice", pb.GetFleetAdviceRequest(new_vms=[pb.NewVm(name="n", footprint_bytes=1 << 20, like_host_id="h0",
                                                                  like_vm="nope")]),
     "NOT_FOUND", "new_vms[0].like_vm: no VM 'nope'"),
]


@pytest.mark.parametrize("rpc, request_, code, message", OTHER_BAD, ids=[f"{x[0]}-{i}" for i, x in enumerate(OTHER_BAD)])
def test_bad_requests_to_the_other_rpcs_get_the_right_code_and_change_nothing(tmp_path, rpc, request_, code, message):
    async def body(stub, ctl):
        await stub.SetVmPolicy(set_req(host_id="h0", vm="web", weight=3), timeout=5)
        await stub.PauseMigration(pb.PauseMigrationRequest(host_id="h1"), timeout=5)
        before = (ctl.store.policies(), ctl.store.pauses(), ctl.events.sequence)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await getattr(stub, rpc)(request_, timeout=5)
        return e.value, before, (ctl.store.policies(), ctl.store.pauses(), ctl.events.sequence)

    err, before, after = served(tmp_path / "c.db", body)
    assert err.code().name == code and message in err.details(), err.details()
    assert before == after


def test_fleet_advice_over_grpc_leaves_out_hosts_without_a_round_and_advises_nothing(tmp_path):
    async def body(stub, ctl):
        return await stub.GetFleetAdvice(pb.GetFleetAdviceRequest(include_estimates=True), timeout=5)

    r = served(tmp_path / "c.db", body)
    assert list(r.hosts_left_out) == ["h0", "h1", "h2"]
    assert not r.moves and not r.vms and r.dram_share_before == r.dram_share_after == 1.0


def test_the_command_line_client_prints_the_fleet_advice_and_refuses_a_bad_guard(tmp_path):
    async def body(stub, ctl):
        run = lambda *a: asyncio.to_thread(cli, served.port, *a)  # noqa: E731
        return await run("advice"), await run("advice", "--json"), await run("advice", "--max-slowdown", "0.5")

    (c1, text, _), (c2, js, _), (c3, _, err) = served(tmp_path / "c.db", body)
    assert c1 == c2 == 0 and "100.0% -> 100.0%; 0 move(s)" in text and "left out: h0, h1, h2" in text
    assert json.loads(js)["hosts_left_out"] == ["h0", "h1", "h2"]
    assert c3 == 1 and "INVALID_ARGUMENT: max_slowdown" in err
