"""ControllerService: the gRPC API users' policy clients call -- per-VM policies (set, get, list, delete; by
name or by selector), hosts and VMs with live placement statistics, a VM's heat histogram, migration pause
and resume, the event stream, and the fleet's advice (controller/advice.py) -- a thin shell over the
Controller. Requests are checked by `requests`
before anything changes; the Controller stores a change before it answers."""

from __future__ import annotations

import functools
import math
import sqlite3

import numpy as np

import grpc

from pagetide.common.security import ServerSecurity
from pagetide.common.serve import start_server
from pagetide.controller import advice
from pagetide.controller.controller import Controller, HostState
from pagetide.controller.convert import vm_policy_pb
from pagetide.controller.events import Event
from pagetide.controller.policies import VmPolicy
from pagetide.controller.requests import (
    MAX_REASON_BYTES, Invalid, NotFound, Selector, check_footprint, page_size, paginate, selector, shown, vm_policy,
)
from pagetide.controller.store import CLUSTER, StoreError
from pagetide.v1 import controller_pb2, controller_pb2_grpc, types_pb2

EVENT_KINDS = {"round": controller_pb2.EVENT_KIND_ROUND, "policy_set": controller_pb2.EVENT_KIND_POLICY_SET,
               "policy_deleted": controller_pb2.EVENT_KIND_POLICY_DELETED,
               "host_down": controller_pb2.EVENT_KIND_HOST_DOWN, "host_up": controller_pb2.EVENT_KIND_HOST_UP,
               "paused": controller_pb2.EVENT_KIND_MIGRATION_PAUSED,
               "resumed": controller_pb2.EVENT_KIND_MIGRATION_RESUMED}
KIND_NAMES = {v: k for k, v in EVENT_KINDS.items()}


def _answers(method):
    """Map the request checks' and the store's failures to status codes; the message names the field."""
    @functools.wraps(method)
    async def wrapped(self, request, context):
        try:
            return await method(self, request, context)
        except Invalid as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except NotFound as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except (StoreError, sqlite3.Error, OSError) as e:
            await context.abort(grpc.StatusCode.INTERNAL, f"policy store: {e}")
    return wrapped


class ControllerServicer(controller_pb2_grpc.ControllerServiceServicer):
    def __init__(self, controller: Controller):
        self.c = controller

    # ------------------------------------------------------------------------------------ lookups

    def _host(self, host_id: str, field: str = "host_id") -> HostState:
        if not host_id:
            raise Invalid(field, "must name a host")
        s = self.c.hosts.get(host_id)
        if s is None:
            raise NotFound(f"{field}: no host {shown(host_id)}")
        return s

    def _tenant(self, host_id: str, vm: str, host_field: str = "host_id", vm_field: str = "vm"):
        """The VM's Tenant from its host's topology, or None for a VM known only by its stored policy
        (its host's topology not read yet, or the host no longer runs it)."""
        s = self._host(host_id, host_field)
        if not vm:
            raise Invalid(vm_field, "must name a VM")
        t = next((x for x in s.topology.tenants if x.name == vm), None) if s.topology is not None else None
        if t is None and vm not in self.c.policies[host_id]:
            raise NotFound(f"{vm_field}: no VM {shown(vm)} on host {host_id!r}")
        return t

    def _vms(self, sel: Selector) -> list[tuple[str, types_pb2.Tenant]]:
        """(host, tenant) of every VM in the hosts' topologies the selector matches, by host then name."""
        out = []
        for h in sorted(self.c.hosts):
            t = self.c.hosts[h].topology
            if t is None or (sel.host_id and h != sel.host_id):
                continue
            out += [(h, x) for x in sorted(t.tenants, key=lambda x: x.name) if sel.matches(h, x.name, x.labels)]
        return out

    def _labels(self, host_id: str, vm: str):
        t = self.c.hosts[host_id].topology
        x = next((x for x in t.tenants if x.name == vm), None) if t is not None else None
        return x.labels if x is not None else None

    def _selector(self, request, field: str = "selector", required: bool = False) -> Selector:
        sel = selector(getattr(request, field), field) if request.HasField(field) else Selector()
        if required and sel.empty:
            raise Invalid(field, "give host_id, vm or labels (an empty selector would match every VM)")
        if sel.host_id:
            self._host(sel.host_id, f"{field}.host_id")
        return sel

    # ----------------------------------------------------------------------------------- policies

    @_answers
    async def SetVmPolicy(self, request, context):
        p = request.policy
        policy = vm_policy(p)
        if request.HasField("selector"):
            if p.host_id or p.vm:
                raise Invalid("selector", "give policy.host_id and policy.vm, or a selector, not both")
            sel = self._selector(request, required=True)
            targets = [(h, t.name, t) for h, t in self._vms(sel)]
            if not targets:
                raise NotFound("selector: matches no VM")
        else:
            targets = [(p.host_id, p.vm, self._tenant(p.host_id, p.vm, "policy.host_id", "policy.vm"))]
        for h, vm, t in targets:
            if t is not None:
                check_footprint(policy, t.footprint_bytes, vm)
        self.c.set_policies([(h, vm, policy) for h, vm, _ in targets])
        out = [vm_policy_pb(h, vm, policy) for h, vm, _ in targets]
        return controller_pb2.SetVmPolicyResponse(policy=out[0], policies=out)

    @_answers
    async def GetVmPolicy(self, request, context):
        self._tenant(request.host_id, request.vm)
        policy = self.c.policies[request.host_id].get(request.vm, VmPolicy())
        return controller_pb2.GetVmPolicyResponse(policy=vm_policy_pb(request.host_id, request.vm, policy))

    @_answers
    async def ListVmPolicies(self, request, context):
        size = page_size(request.page_size)
        sel = self._selector(request)
        items = [(h, vm, p) for h in sorted(self.c.policies) for vm, p in sorted(self.c.policies[h].items())
                 if sel.matches(h, vm, self._labels(h, vm) if sel.labels else None)]
        page, token = paginate(items, lambda x: (x[0], x[1]), size, request.page_token,
                               "ListVmPolicies" + sel.key())
        return controller_pb2.ListVmPoliciesResponse(policies=[vm_policy_pb(*x) for x in page],
                                                     next_page_token=token)

    @_answers
    async def DeleteVmPolicy(self, request, context):
        if request.HasField("selector"):
            if request.host_id or request.vm:
                raise Invalid("selector", "give host_id and vm, or a selector, not both")
            sel = self._selector(request, required=True)
            keys = [(h, vm) for h in sorted(self.c.policies) for vm in sorted(self.c.policies[h])
                    if sel.matches(h, vm, self._labels(h, vm) if sel.labels else None)]
        else:
            self._tenant(request.host_id, request.vm)
            keys = [(request.host_id, request.vm)]
        gone = self.c.delete_policies(keys)
        return controller_pb2.DeleteVmPolicyResponse(deleted=[vm_policy_pb(*x) for x in gone])

    # -------------------------------------------------------------------------- hosts, VMs, heat

    def _host_status(self, h: str, s: HostState) -> controller_pb2.HostStatus:
        last = s.history[-1] if s.history else None
        nodes = s.topology.nodes if s.topology is not None else ()
        return controller_pb2.HostStatus(
            host_id=h, last_round_ns=int(last.seconds * 1e9) if last else 0,
            last_report_bytes=last.report_bytes if last else 0, promoted_bytes=s.promoted_bytes,
            demoted_bytes=s.demoted_bytes, vm_dram_share=dict(last.dram_resident_share) if last else {},
            up=s.up, last_period=s.last_period, rounds=s.rounds, missed_deadlines=s.misses, outages=s.outages,
            migration_paused=self.c.paused(h), pause_reason=self.c.pauses.get(h, self.c.pauses.get(CLUSTER, "")),
            address=s.address, vms=len(s.topology.tenants) if s.topology is not None else 0,
            dram_capacity_bytes=sum(n.capacity_bytes for n in nodes if n.type == types_pb2.NODE_TYPE_DRAM),
            slow_capacity_bytes=sum(n.capacity_bytes for n in nodes if n.type != types_pb2.NODE_TYPE_DRAM),
            last_error=s.last_error)

    async def GetStatus(self, request, context):
        return controller_pb2.GetStatusResponse(
            rounds=self.c.rounds(), hosts=[self._host_status(h, s) for h, s in sorted(self.c.hosts.items())])

    @_answers
    async def ListManagedHosts(self, request, context):
        size = page_size(request.page_size)
        page, token = paginate(sorted(self.c.hosts), lambda h: (h,), size, request.page_token, "ListManagedHosts")
        return controller_pb2.ListManagedHostsResponse(
            hosts=[self._host_status(h, self.c.hosts[h]) for h in page], next_page_token=token,
            cluster_paused=CLUSTER in self.c.pauses)

    def _vm_status(self, h: str, t: types_pb2.Tenant) -> controller_pb2.VmStatus:
        s = self.c.hosts[h]
        last = s.history[-1] if s.history else None
        pages = last.heat_pages.get(t.name) if last else None
        resident = sum(pages) * t.page_size_bytes if pages else 0
        share = last.dram_resident_share.get(t.name, 0.0) if last else 0.0
        policy = self.c.policies[h].get(t.name)
        return controller_pb2.VmStatus(
            host_id=h, vm=t.name, labels=dict(t.labels), footprint_bytes=t.footprint_bytes,
            page_size_bytes=t.page_size_bytes, resident_bytes=resident, dram_bytes=int(round(resident * share)),
            dram_share=share, dram_target_bytes=last.dram_target_bytes.get(t.name, 0) if last else 0,
            policy=vm_policy_pb(h, t.name, policy or VmPolicy()), policy_set=policy is not None, host_up=s.up,
            period=last.period if last and pages is not None else 0)

    @_answers
    async def ListVms(self, request, context):
        size = page_size(request.page_size)
        sel = self._selector(request)
        page, token = paginate(self._vms(sel), lambda x: (x[0], x[1].name), size, request.page_token,
                               "ListVms" + sel.key())
        return controller_pb2.ListVmsResponse(vms=[self._vm_status(h, t) for h, t in page], next_page_token=token)

    @_answers
    async def GetVmHeat(self, request, context):
        t = self._tenant(request.host_id, request.vm)
        s = self.c.hosts[request.host_id]
        last = s.history[-1] if s.history else None
        out = controller_pb2.GetVmHeatResponse(host_id=request.host_id, vm=request.vm,
                                               page_size_bytes=t.page_size_bytes if t is not None else 0)
        if last is not None and request.vm in last.heat_pages:
            out.period = last.period
            out.pages.extend(last.heat_pages[request.vm])
            out.dram_pages.extend(last.heat_fast_pages.get(request.vm, []))
        return out

    # ------------------------------------------------------------------------------------- advice

    @_answers
    async def GetFleetAdvice(self, request, context):
        return fleet_advice(self.c, request)

    # ------------------------------------------------------------------------------------- pauses

    def _pauses(self):
        return dict(cluster_paused=CLUSTER in self.c.pauses, paused_host_ids=sorted(h for h in self.c.pauses if h))

    @_answers
    async def PauseMigration(self, request, context):
        if request.host_id:
            self._host(request.host_id)
        if len(request.reason.encode()) > MAX_REASON_BYTES:
            raise Invalid("reason", f"must be at most {MAX_REASON_BYTES} bytes, got {len(request.reason.encode())}")
        self.c.set_paused(request.host_id or CLUSTER, True, request.reason)
        return controller_pb2.PauseMigrationResponse(**self._pauses())

    @_answers
    async def ResumeMigration(self, request, context):
        if request.host_id:
            self._host(request.host_id)
        self.c.set_paused(request.host_id or CLUSTER, False)
        return controller_pb2.ResumeMigrationResponse(**self._pauses())

    # ------------------------------------------------------------------------------------- events

    async def WatchEvents(self, request, context):
        try:
            for i, h in enumerate(request.host_ids):
                self._host(h, f"host_ids[{i}]")
            kinds = []
            for i, k in enumerate(request.kinds):
                if k not in KIND_NAMES:
                    raise Invalid(f"kinds[{i}]", f"must be a known event kind, got {k}")
                kinds.append(KIND_NAMES[k])
        except Invalid as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except NotFound as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        sub = self.c.events.subscribe(request.host_ids, kinds)
        try:
            await context.send_initial_metadata(())       # subscribed: later events reach this watcher
            while True:
                got = await sub.get()
                if got is not None:
                    yield event_pb(*got)
        finally:
            sub.close()


def event_pb(e: Event, dropped: int) -> controller_pb2.WatchEventsResponse:
    out = controller_pb2.WatchEventsResponse(
        sequence=e.sequence, time_unix_ns=e.time_ns, kind=EVENT_KINDS[e.kind], host_id=e.host_id, vm=e.vm,
        period=e.period, promoted_bytes=e.promoted_bytes, demoted_bytes=e.demoted_bytes, migration_paused=e.paused,
        reason=e.reason, dropped_events=dropped)
    if e.policy is not None:
        out.policy.CopyFrom(vm_policy_pb(e.host_id, e.vm, e.policy))
    return out


async def start_controller_server(controller: Controller, listen: str = "127.0.0.1:0",
                                  security: ServerSecurity | None = None) -> tuple[grpc.aio.Server, int]:
    """ControllerService on `listen` with `security`'s caller checks (a read token: Get*, List*, Watch* only)."""
    name = controller_pb2.DESCRIPTOR.services_by_name["ControllerService"].full_name
    return await start_server([(controller_pb2_grpc.add_ControllerServiceServicer_to_server,
                                ControllerServicer(controller), name)], listen, security=security,
                              metrics=controller.metrics.rpc)


# ------------------------------------------------------------------------------------------ the advice

def fleet_advice(c: Controller, request: controller_pb2.GetFleetAdviceRequest) -> controller_pb2.GetFleetAdviceResponse:
    """GetFleetAdvice: the request checked (Invalid naming the field, NotFound), the advice from every up
    host's last round, as the API shows it."""
    for key, lo in (("max_slowdown", 1.0), ("migration_bandwidth_bytes_per_second", 0.0)):
        x = getattr(request, key)
        if not math.isfinite(x) or (x != 0 and x < lo) or x < 0:
            raise Invalid(key, f"must be 0 (the default) or a finite number >= {lo:g}, got {x!r}")
    if request.HasField("min_gain") and not 0 <= request.min_gain <= 1:
        raise Invalid("min_gain", f"must be in [0, 1], got {request.min_gain!r}")
    up = {h: s for h, s in c.hosts.items() if s.up and s.topology is not None and s.history}
    hosts, vms = advice.fleet_inputs({h: s.topology for h, s in up.items()},
                                     {h: s.history[-1] for h, s in up.items()}, c.policies, c.params.reserve)
    by_key = {v.key: v for v in vms}
    new, names = [], set()
    for i, n in enumerate(request.new_vms):
        where = f"new_vms[{i}]"
        if not n.name or n.name in names:
            raise Invalid(f"{where}.name", "must be a non-empty name, unique among new_vms" if n.name else
                          "must name the VM")
        names.add(n.name)
        ps = n.page_size_bytes or 4096
        if ps not in (4096, 2 << 20):
            raise Invalid(f"{where}.page_size_bytes", f"must be 0, 4096 or 2097152, got {n.page_size_bytes}")
        if n.footprint_bytes < ps:
            raise Invalid(f"{where}.footprint_bytes", f"must hold at least one page, got {n.footprint_bytes}")
        if n.pages:
            if len(n.pages) != len(advice.vm_rates()):
                raise Invalid(f"{where}.pages", f"must have {len(advice.vm_rates())} bins, got {len(n.pages)}")
            pages, rate = np.asarray(n.pages, dtype=np.float64), advice.vm_rates()
        else:
            if not n.like_host_id or not n.like_vm:
                raise Invalid(f"{where}.pages", "give pages, or like_host_id and like_vm")
            like = by_key.get(f"{n.like_host_id}/{n.like_vm}")
            if like is None:
                raise NotFound(f"{where}.like_vm: no VM {shown(n.like_vm)} with heat on host {shown(n.like_host_id)}")
            pages, rate = like.pages.astype(np.float64), like.rate
        total = n.footprint_bytes // ps
        scaled = (np.floor(pages * total / pages.sum()).astype(np.int64) if pages.sum()
                  else np.zeros(pages.size, np.int64))
        scaled[0] += total - int(scaled.sum())
        new.append(advice.Vm("", n.name, ps, n.footprint_bytes, scaled, rate))
    try:
        a = advice.advise(hosts, vms, new, max_slowdown=request.max_slowdown or advice.MAX_SLOWDOWN,
                          bandwidth=request.migration_bandwidth_bytes_per_second or advice.MIGRATION_BANDWIDTH,
                          min_gain=request.min_gain if request.HasField("min_gain") else advice.MIN_GAIN,
                          max_moves=request.max_moves or 16, estimates=request.include_estimates)
    except ValueError as e:           # the request's values passed the checks above; a VM the hosts disagree on
        raise Invalid("new_vms", str(e)) from None
    out = controller_pb2.GetFleetAdviceResponse(
        dram_share_before=a.before_share, dram_share_after=a.after_share, move_bytes=a.move_bytes,
        move_seconds=sum(m.seconds for m in a.moves), hosts_left_out=sorted(set(c.hosts) - set(up)))
    for m in a.moves:
        out.moves.add(vm=m.vm, source_host_id=m.source, destination_host_id=m.destination, copy_bytes=m.bytes,
                      copy_seconds=m.seconds, gain=m.gain, swap_with_host_id=m.swap_with[0] if m.swap_with else "",
                      swap_with_vm=m.swap_with[1] if m.swap_with else "")
    for p in a.placements:
        out.placements.add(vm=p.vm, host_id=p.host_id, reason=p.reason,
                           estimate=_estimate_pb(p.host_id, p.figures) if p.figures else None)
    for v in sorted(vms, key=lambda v: (v.host_id, v.name)):
        x = out.vms.add(host_id=v.host_id, vm=v.name, now=_estimate_pb(v.host_id, a.before[v.key]),
                        after=_estimate_pb(a.after[v.key].host_id, a.after[v.key]))
        for h, f in sorted(a.estimates.get(v.key, {}).items()):
            x.hosts.append(_estimate_pb(h, f))
    return out


def _estimate_pb(host_id: str, f) -> controller_pb2.VmEstimate:
    if isinstance(f, str):
        return controller_pb2.VmEstimate(host_id=host_id, refused=f)
    return controller_pb2.VmEstimate(host_id=host_id, dram_bytes=f.dram_bytes, dram_share=f.dram_share,
                                     slowdown=f.slowdown, tier_shares=list(f.tier_shares))
