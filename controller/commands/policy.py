"""`pagetide policy`: a command-line client of ControllerService -- set, get, list and delete VM policies
(by name, or every VM a selector matches), list VMs and hosts with their placement, show a VM's heat
histogram, pause and resume migration, and watch the event stream. Tables by default, `--json` for scripts.

It talks to a running controller (`--controller ADDR`, default $PAGETIDE_CONTROLLER or 127.0.0.1:50061; with
--token-file and --tls-* as the controller requires) and imports only the API and the common leaf, never the
controller itself or Ray. Exit status: 0, 1 for an
error the controller answered (its status code and message are printed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pagetide.common.security import add_client_security_arguments

DEFAULT_CONTROLLER = "127.0.0.1:50061"
TIMEOUT = 10.0              # seconds per call
SUBCOMMANDS = ("set", "get", "list", "delete", "vms", "hosts", "heat", "pause", "resume", "watch", "advice")


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key, value


def _bound(text: str) -> tuple[str, float]:
    """A DRAM bound: a share of the footprint ("25%") or a size ("4GiB")."""
    from pagetide.common import units

    try:
        if text.strip().endswith("%"):
            return "share", units.parse_ratio(text)
        return "bytes", float(units.parse_size(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _selector_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="", help="only VMs on this host")
    p.add_argument("--vm", default="", help="only VMs of this name")
    p.add_argument("--label", type=_label, action="append", default=[], metavar="KEY=VALUE",
                   help="only VMs carrying this label (repeatable: all must match)")


def set_argparser(p: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--controller", default=os.environ.get("PAGETIDE_CONTROLLER", DEFAULT_CONTROLLER),
                        help=f"ControllerService address (default $PAGETIDE_CONTROLLER or {DEFAULT_CONTROLLER})")
    common.add_argument("--json", action="store_true", help="print the answer as JSON")
    common.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per call (default 10)")
    add_client_security_arguments(common, what="the controller")
    sub = p.add_subparsers(dest="action", required=True)

    s = sub.add_parser("set", parents=[common], help="set a policy on a VM (--host and --vm) or on every VM "
                                                     "a selector matches (--label, or --host or --vm alone)")
    _selector_arguments(s)
    s.add_argument("--min", type=_bound, help="DRAM guaranteed: a size (4GiB) or a share of the footprint (25%%)")
    s.add_argument("--max", type=_bound, help="DRAM at most: a size or a share of the footprint")
    s.add_argument("--weight", type=float, default=0.0, help="weight in the DRAM split (default 1)")
    s.add_argument("--pin", choices=("dram", "slow"), help="keep all the VM's pages on this tier")
    s.add_argument("--migration", choices=("on", "off"), default="on",
                   help="off: the controller moves none of the VM's pages")
    s.add_argument("--max-slowdown", type=float, metavar="RATIO",
                   help="the fleet advice plans no move leaving the VM estimated slower than this x all-DRAM "
                        "(>= 1; default: the advice's fleet-wide guard)")
    for name, text in (("get", "one VM's policy"), ("heat", "one VM's heat histogram from its last round")):
        g = sub.add_parser(name, parents=[common], help=text)
        g.add_argument("host")
        g.add_argument("vm")
    lst = sub.add_parser("list", parents=[common], help="the policies set, by host then VM")
    _selector_arguments(lst)
    d = sub.add_parser("delete", parents=[common], help="forget policies: one VM (--host and --vm) or a selector's")
    _selector_arguments(d)
    v = sub.add_parser("vms", parents=[common], help="VMs with their placement and policy")
    _selector_arguments(v)
    sub.add_parser("hosts", parents=[common], help="the hosts: up or down, paused, capacity, migrations")
    pa = sub.add_parser("pause", parents=[common], help="pause migration on a host, or everywhere without one")
    pa.add_argument("host", nargs="?", default="")
    pa.add_argument("--reason", default="", help="why (shown by `hosts` and in events)")
    r = sub.add_parser("resume", parents=[common], help="resume a host, or lift the cluster-wide pause")
    r.add_argument("host", nargs="?", default="")
    w = sub.add_parser("watch", parents=[common], help="print events as they happen")
    w.add_argument("--host", action="append", default=[], help="only this host's events (repeatable)")
    w.add_argument("--kind", action="append", default=[],
                   choices=("round", "policy-set", "policy-deleted", "host-down", "host-up", "migration-paused",
                            "migration-resumed"), help="only events of this kind (repeatable)")
    w.add_argument("--count", type=int, help="stop after this many events")
    w.add_argument("--for", dest="seconds", type=float, help="stop after this many seconds")
    ad = sub.add_parser("advice", parents=[common], help="the fleet's advice: VMs to move to other hosts")
    ad.add_argument("--max-slowdown", type=float, default=0.0,
                    help="no VM estimated slower than this x all-DRAM, or than it is now (default 1.5); a VM "
                         "whose policy sets --max-slowdown has its own")
    ad.add_argument("--copy-bandwidth", type=float, default=0.0, metavar="BYTES_PER_S",
                    help="a moved VM's memory is copied at this rate (default 1.25e9)")
    ad.add_argument("--max-moves", type=int, default=0, help="at most this many moves or swaps (default 16)")


# ------------------------------------------------------------------------------------------ requests

def _selector(args):
    from pagetide.v1 import controller_pb2 as pb

    return pb.VmSelector(host_id=args.host, vm=args.vm, labels=dict(args.label))


def _by_name(args) -> bool:
    return bool(args.host and args.vm and not args.label)


def _policy(args):
    from pagetide.v1 import controller_pb2 as pb

    p = pb.VmPolicy(weight=args.weight, migration_disabled=args.migration == "off",
                    pinned_tier={None: pb.TIER_UNSPECIFIED, "dram": pb.TIER_DRAM, "slow": pb.TIER_SLOW}[args.pin])
    if args.max_slowdown is not None:
        p.max_slowdown = args.max_slowdown          # checked by the controller (INVALID_ARGUMENT)
    for side, bound in (("min", args.min), ("max", args.max)):
        if bound is not None:
            kind, x = bound
            if kind == "share":
                setattr(p, f"{side}_dram_share", x)
            else:
                setattr(p, f"{side}_dram_bytes", int(x))
    return p


def _pages(call, request, field: str, timeout: float) -> list:
    """Every item of a paginated List call."""
    out = []
    while True:
        r = call(request, timeout=timeout)
        out += list(getattr(r, field))
        if not r.next_page_token:
            return out
        request.page_token = r.next_page_token


# -------------------------------------------------------------------------------------------- output

def _fmt_policy(p) -> list[str]:
    from pagetide.common.tables import fmt_bytes, fmt_pct
    from pagetide.v1 import controller_pb2 as pb

    lo = fmt_pct(p.min_dram_share) if p.HasField("min_dram_share") else (fmt_bytes(p.min_dram_bytes)
                                                                         if p.min_dram_bytes else "-")
    hi = fmt_pct(p.max_dram_share) if p.HasField("max_dram_share") else (fmt_bytes(p.max_dram_bytes)
                                                                         if p.max_dram_bytes else "-")
    pin = {pb.TIER_DRAM: "dram", pb.TIER_SLOW: "slow"}.get(p.pinned_tier, "-")
    return [p.host_id, p.vm, lo, hi, f"{p.weight:g}", pin, "off" if p.migration_disabled else "on",
            f"{p.max_slowdown:g}x" if p.HasField("max_slowdown") else "-"]


POLICY_HEADERS = ["host", "vm", "min DRAM", "max DRAM", "weight", "pinned", "migration", "max slowdown"]


def _print(args, messages, text) -> None:
    from google.protobuf.json_format import MessageToDict

    if args.json:
        data = [MessageToDict(m, preserving_proto_field_name=True) for m in messages] \
            if isinstance(messages, list) else MessageToDict(messages, preserving_proto_field_name=True)
        print(json.dumps(data, indent=1))
    else:
        print(text())


def _event_line(e) -> str:
    from pagetide.common.tables import fmt_bytes
    from pagetide.v1 import controller_pb2 as pb

    kind = pb.EventKind.Name(e.kind).removeprefix("EVENT_KIND_").lower().replace("_", "-")
    where = e.host_id or "cluster"
    detail = ""
    if e.kind == pb.EVENT_KIND_ROUND:
        detail = (f"period {e.period}: promoted {fmt_bytes(e.promoted_bytes)}, demoted {fmt_bytes(e.demoted_bytes)}"
                  + (" (paused)" if e.migration_paused else ""))
    elif e.kind in (pb.EVENT_KIND_POLICY_SET, pb.EVENT_KIND_POLICY_DELETED):
        detail = e.vm + ("" if e.kind == pb.EVENT_KIND_POLICY_DELETED else
                         " " + " ".join(f"{h}={v}" for h, v in zip(POLICY_HEADERS[2:], _fmt_policy(e.policy)[2:])))
    elif e.reason:
        detail = e.reason
    lost = f" [{e.dropped_events} events lost before this one]" if e.dropped_events else ""
    return f"#{e.sequence} {kind} {where} {detail}".rstrip() + lost


def run(args, stub) -> int:
    from pagetide.common.tables import fmt_bytes, fmt_pct, table
    from pagetide.v1 import controller_pb2 as pb

    t = args.timeout
    a = args.action
    if a == "set":
        if _by_name(args):
            req = pb.SetVmPolicyRequest(policy=_policy(args))
            req.policy.host_id, req.policy.vm = args.host, args.vm
        else:
            req = pb.SetVmPolicyRequest(policy=_policy(args), selector=_selector(args))
        r = stub.SetVmPolicy(req, timeout=t)
        _print(args, list(r.policies), lambda: table(POLICY_HEADERS, [_fmt_policy(p) for p in r.policies]))
    elif a == "get":
        r = stub.GetVmPolicy(pb.GetVmPolicyRequest(host_id=args.host, vm=args.vm), timeout=t)
        _print(args, r.policy, lambda: table(POLICY_HEADERS, [_fmt_policy(r.policy)]))
    elif a == "list":
        items = _pages(stub.ListVmPolicies, pb.ListVmPoliciesRequest(selector=_selector(args)), "policies", t)
        _print(args, items, lambda: table(POLICY_HEADERS, [_fmt_policy(p) for p in items]))
    elif a == "delete":
        if _by_name(args):
            req = pb.DeleteVmPolicyRequest(host_id=args.host, vm=args.vm)
        else:
            req = pb.DeleteVmPolicyRequest(selector=_selector(args))
        r = stub.DeleteVmPolicy(req, timeout=t)
        _print(args, list(r.deleted), lambda: f"deleted {len(r.deleted)} policies" + (
            "\n" + table(POLICY_HEADERS, [_fmt_policy(p) for p in r.deleted]) if r.deleted else ""))
    elif a == "vms":
        vms = _pages(stub.ListVms, pb.ListVmsRequest(selector=_selector(args)), "vms", t)
        _print(args, vms, lambda: table(
            ["host", "vm", "labels", "footprint", "resident", "on DRAM", "DRAM share", "target", "policy", "host up"],
            [[v.host_id, v.vm, ",".join(f"{k}={x}" for k, x in sorted(v.labels.items())) or "-",
              fmt_bytes(v.footprint_bytes), fmt_bytes(v.resident_bytes), fmt_bytes(v.dram_bytes),
              fmt_pct(v.dram_share), fmt_bytes(v.dram_target_bytes), "set" if v.policy_set else "default",
              "yes" if v.host_up else "no"] for v in vms]))
    elif a == "hosts":
        hosts = _pages(stub.ListManagedHosts, pb.ListManagedHostsRequest(), "hosts", t)
        _print(args, hosts, lambda: table(
            ["host", "agent", "up", "paused", "VMs", "DRAM", "slow", "rounds", "promoted", "demoted", "note"],
            [[h.host_id, h.address, "yes" if h.up else "no", "yes" if h.migration_paused else "no", str(h.vms),
              fmt_bytes(h.dram_capacity_bytes), fmt_bytes(h.slow_capacity_bytes), str(h.rounds),
              fmt_bytes(h.promoted_bytes), fmt_bytes(h.demoted_bytes),
              h.pause_reason if h.migration_paused else ("" if h.up else h.last_error)] for h in hosts], left=2))
    elif a == "heat":
        r = stub.GetVmHeat(pb.GetVmHeatRequest(host_id=args.host, vm=args.vm), timeout=t)
        _print(args, r, lambda: (f"{r.host_id}/{r.vm}: no round yet" if not r.period else
                                 f"{r.host_id}/{r.vm}, period {r.period} (pages of {fmt_bytes(r.page_size_bytes)})\n"
                                 + table(["heat bin", "pages", "on DRAM", "slow"],
                                         [[str(b), str(n), str(d), str(n - d)] for b, (n, d) in
                                          enumerate(zip(r.pages, list(r.dram_pages) or [0] * len(r.pages)))])))
    elif a == "advice":
        r = stub.GetFleetAdvice(pb.GetFleetAdviceRequest(
            max_slowdown=args.max_slowdown, migration_bandwidth_bytes_per_second=args.copy_bandwidth,
            max_moves=max(0, args.max_moves)), timeout=t)
        _print(args, r, lambda: "\n".join(
            [f"the fleet's estimated DRAM-served share {fmt_pct(r.dram_share_before)} -> "
             f"{fmt_pct(r.dram_share_after)}; {len(r.moves)} move(s), {fmt_bytes(r.move_bytes)} copied in "
             f"{r.move_seconds:.2f} s" + (f"; left out: {', '.join(r.hosts_left_out)}" if r.hosts_left_out else "")]
            + ([table(["vm", "from", "to", "copy", "seconds", "gain", "swap with"],
                      [[m.vm, m.source_host_id, m.destination_host_id, fmt_bytes(m.copy_bytes),
                        f"{m.copy_seconds:.2f}", f"{100 * m.gain:+.1f} pt",
                        f"{m.swap_with_host_id}/{m.swap_with_vm}" if m.swap_with_vm else "-"] for m in r.moves])]
               if r.moves else [])
            + ([table(["host", "vm", "DRAM share", "slowdown", "after: host", "DRAM share", "slowdown"],
                      [[v.host_id, v.vm, fmt_pct(v.now.dram_share), f"{v.now.slowdown:.3f}x", v.after.host_id,
                        fmt_pct(v.after.dram_share), f"{v.after.slowdown:.3f}x"] for v in r.vms])] if r.vms else [])))
    elif a in ("pause", "resume"):
        if a == "pause":
            r = stub.PauseMigration(pb.PauseMigrationRequest(host_id=args.host, reason=args.reason), timeout=t)
        else:
            r = stub.ResumeMigration(pb.ResumeMigrationRequest(host_id=args.host), timeout=t)
        _print(args, r, lambda: f"cluster-wide pause: {'on' if r.cluster_paused else 'off'}; hosts paused: "
                                f"{', '.join(r.paused_host_ids) or 'none'}")
    elif a == "watch":
        kinds = [pb.EventKind.Value("EVENT_KIND_" + k.upper().replace("-", "_")) for k in args.kind]
        call = stub.WatchEvents(pb.WatchEventsRequest(host_ids=args.host, kinds=kinds), timeout=args.seconds)
        n = 0
        try:
            for e in call:
                if args.json:                    # one JSON object per line, for `jq` and scripts
                    from google.protobuf.json_format import MessageToDict
                    print(json.dumps(MessageToDict(e, preserving_proto_field_name=True)))
                else:
                    print(_event_line(e))
                sys.stdout.flush()
                n += 1
                if args.count is not None and n >= args.count:
                    call.cancel()
                    break
        except KeyboardInterrupt:
            call.cancel()
    return 0


def main(args: argparse.Namespace) -> int:
    import grpc

    from pagetide.common.security import SecurityError, blocking_channel, client_security
    from pagetide.v1 import controller_pb2_grpc

    try:
        security = client_security(args)
    except (SecurityError, OSError) as e:
        print(f"pagetide policy: {e}", file=sys.stderr)
        return 2
    with blocking_channel(args.controller, security) as ch:
        stub = controller_pb2_grpc.ControllerServiceStub(ch)
        try:
            return run(args, stub)
        except grpc.RpcError as e:
            if args.action == "watch" and e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                return 0                 # --for ran out, or --count reached
            print(f"pagetide policy: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
