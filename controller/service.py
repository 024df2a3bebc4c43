"""ControllerService: the gRPC API users' policy clients call (set, get and list per-VM policies; the
controller's per-host status), a thin shell over the Controller."""

from __future__ import annotations

import grpc

from pagetide.common.serve import start_server
from pagetide.controller.controller import Controller
from pagetide.controller.convert import vm_policy, vm_policy_pb
from pagetide.controller.policies import VmPolicy
from pagetide.v1 import controller_pb2, controller_pb2_grpc


class ControllerServicer(controller_pb2_grpc.ControllerServiceServicer):
    def __init__(self, controller: Controller):
        self.c = controller

    async def SetVmPolicy(self, request, context):
        p = request.policy
        try:
            policy = vm_policy(p)
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{p.host_id}/{p.vm}: {e}")
        try:
            self.c.set_policy(p.host_id, p.vm, policy)
        except KeyError as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e.args[0]))
        return controller_pb2.SetVmPolicyResponse(policy=vm_policy_pb(p.host_id, p.vm, policy))

    async def GetVmPolicy(self, request, context):
        if request.vm not in self.c.vms(request.host_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no VM {request.vm!r} on host {request.host_id!r}")
        policy = self.c.policies[request.host_id].get(request.vm, VmPolicy())
        return controller_pb2.GetVmPolicyResponse(policy=vm_policy_pb(request.host_id, request.vm, policy))

    async def ListVmPolicies(self, request, context):
        return controller_pb2.ListVmPoliciesResponse(policies=[
            vm_policy_pb(h, vm, p) for h, ps in sorted(self.c.policies.items()) for vm, p in sorted(ps.items())])

    async def GetStatus(self, request, context):
        hosts = []
        for h, s in sorted(self.c.hosts.items()):
            last = s.history[-1] if s.history else None
            hosts.append(controller_pb2.HostStatus(
                host_id=h, last_round_ns=int(last.seconds * 1e9) if last else 0,
                last_report_bytes=last.report_bytes if last else 0, promoted_bytes=s.promoted_bytes,
                demoted_bytes=s.demoted_bytes, vm_dram_share=dict(last.dram_resident_share) if last else {},
                up=s.up, last_period=s.last_period, rounds=s.rounds, missed_deadlines=s.misses, outages=s.outages))
        return controller_pb2.GetStatusResponse(rounds=self.c.rounds(), hosts=hosts)


async def start_controller_server(controller: Controller, listen: str = "127.0.0.1:0") -> tuple[grpc.aio.Server, int]:
    name = controller_pb2.DESCRIPTOR.services_by_name["ControllerService"].full_name
    return await start_server([(controller_pb2_grpc.add_ControllerServiceServicer_to_server,
                                ControllerServicer(controller), name)], listen)
