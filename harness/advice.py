"""`pagetide sim`'s fleet advice: the controller's advice (ControllerService GetFleetAdvice, controller/advice.py)
fetched at the end of a run and printed, and with `--apply-advice` fetched mid-run and applied: each advised
move lands once its copy is done -- the moves' resident bytes copied one after another at the VM copy
bandwidth, rounded up to a scan period boundary; meanwhile the VM keeps running on its source -- as
SimulationService RemoveTenant on the source and AddTenant on the destination (the VM's scenario mapping at
its current footprint, its policy set with it; a name taken there gets `-from-SOURCE`). The moved VM starts
on its destination as an arriving VM does: first-touch placement, its heat learned afresh. The copy's load on
the hosts' memory and network is not charged.

The fleet before and after is measured, not estimated: each round, the fleet's DRAM-served share of the
accesses made in that round (from the agents' accounting, differences of consecutive GetStats).
"""

from __future__ import annotations

import argparse
import math

from pagetide.common.tables import fmt_bytes, fmt_pct, table

COPY_BANDWIDTH = 1.25e9        # bytes/s, as controller/advice.py's default (10 GbE live migration)


def add_advice_arguments(p: argparse.ArgumentParser) -> None:
    from pagetide.controller.commands.controller import duration_argument, size_argument

    p.add_argument("--apply-advice", action="store_true",
                   help="fetch the controller's fleet advice mid-run (--advice-at) and move the VMs it advises")
    p.add_argument("--advice-at", type=duration_argument,
                   help="with --apply-advice: when to fetch and apply it (default: half the run)")
    p.add_argument("--advice-max-slowdown", type=float, default=0.0, metavar="RATIO",
                   help="the advice's fleet-wide slowdown guard: no VM estimated slower than this x all-DRAM, or "
                        "than it is now (default 1.5); a VM whose policy sets max_slowdown has its own")
    p.add_argument("--vm-copy-bandwidth", type=size_argument, default=int(COPY_BANDWIDTH), metavar="BYTES",
                   help="per second, the bandwidth a moved VM's memory is copied at (default 1250MB)")


def advice_error(args: argparse.Namespace) -> str:
    """Why the advice options cannot work, or ''."""
    if args.advice_max_slowdown and not (math.isfinite(args.advice_max_slowdown) and args.advice_max_slowdown >= 1):
        return f"--advice-max-slowdown: must be a ratio >= 1, got {args.advice_max_slowdown:g}"
    if args.vm_copy_bandwidth <= 0:
        return "--vm-copy-bandwidth: must be positive"
    if args.advice_at is not None and not args.apply_advice:
        return "--advice-at needs --apply-advice"
    return ""


def fetch(ctl, args: argparse.Namespace) -> dict:
    """The controller's advice now, as plain values (GetFleetAdvice's answer, in-process)."""
    from pagetide.controller.service import fleet_advice
    from pagetide.v1 import controller_pb2

    r = fleet_advice(ctl, controller_pb2.GetFleetAdviceRequest(
        max_slowdown=args.advice_max_slowdown, migration_bandwidth_bytes_per_second=args.vm_copy_bandwidth))
    return {"dram_share_before": r.dram_share_before, "dram_share_after": r.dram_share_after,
            "move_bytes": r.move_bytes, "move_seconds": r.move_seconds, "hosts_left_out": list(r.hosts_left_out),
            "moves": [{"vm": m.vm, "source": m.source_host_id, "destination": m.destination_host_id,
                       "copy_bytes": m.copy_bytes, "copy_seconds": m.copy_seconds, "gain": m.gain,
                       "swap_with": f"{m.swap_with_host_id}/{m.swap_with_vm}" if m.swap_with_vm else ""}
                      for m in r.moves],
            "vms": [{"host": v.host_id, "vm": v.vm, "dram_share": v.now.dram_share, "slowdown": v.now.slowdown,
                     "after_host": v.after.host_id, "after_dram_share": v.after.dram_share,
                     "after_slowdown": v.after.slowdown} for v in r.vms]}


def report(adv: dict, title: str) -> list[str]:
    """The advice as text: the fleet's estimated share, the moves, the VMs they change."""
    out = [f"{title}: the fleet's estimated DRAM-served share {fmt_pct(adv['dram_share_before'])} -> "
           f"{fmt_pct(adv['dram_share_after'])}"
           + (f" with {len(adv['moves'])} move(s), {fmt_bytes(adv['move_bytes'])} copied in "
              f"{adv['move_seconds']:.2f} s" if adv["moves"] else ": no move advised")
           + (f" (left out: {', '.join(adv['hosts_left_out'])})" if adv["hosts_left_out"] else "")]
    if adv["moves"]:
        out.append(table(["vm", "from", "to", "copy", "seconds", "gain", "swap with"],
                         [[m["vm"], m["source"], m["destination"], fmt_bytes(m["copy_bytes"]),
                           f"{m['copy_seconds']:.2f}", f"{100 * m['gain']:+.1f} pt", m["swap_with"] or "-"]
                          for m in adv["moves"]]))
        changed = [v for v in adv["vms"] if v["after_host"] != v["host"]
                   or abs(v["after_dram_share"] - v["dram_share"]) > 0.005]
        out.append(table(["host", "vm", "est. DRAM share", "est. slowdown", "after: host", "DRAM share", "slowdown"],
                         [[v["host"], v["vm"], fmt_pct(v["dram_share"]), f"{v['slowdown']:.3f}x", v["after_host"],
                           fmt_pct(v["after_dram_share"]), f"{v['after_slowdown']:.3f}x"] for v in changed]))
    return out


class Applier:
    """--apply-advice: the fleet's measured share every round, the advice fetched at `at` seconds, its moves
    landed when their copies are done."""

    def __init__(self, args: argparse.Namespace, fleet, period: float, n_rounds: int):
        self.args, self.period = args, period
        at = args.advice_at if args.advice_at is not None else n_rounds * period / 2
        self.advice_round = max(1, min(n_rounds, int(math.ceil(at / period - 1e-9))))
        # every VM's scenario mapping by (host, name): the fleet's hosts at start and its arrivals
        self.specs = {(h.name, t["name"]): t for h in fleet.hosts for t in h.scenario.get("tenants", [])}
        self.specs.update({(e.host, e.vm): e.tenant for e in fleet.events if e.kind == "arrive"})
        self.last: dict[tuple[str, str], tuple[float, float]] = {}    # (host, vm) -> (accesses, served)
        self.series: list[dict] = []          # per round: {"round", "share"}
        self.advice: dict | None = None
        self.due: dict[int, list[dict]] = {}  # round -> moves landing then
        self.landed: list[dict] = []

    def observe(self, number: int, stats: dict) -> None:
        """This round's fleet DRAM-served share, from the accesses made since the last call."""
        acc = served = 0.0
        for h, st in stats.items():
            for t in st.tenants:
                k = (h, t.tenant)
                a0, s0 = self.last.get(k, (0.0, 0.0))
                a, s = t.accesses, t.accesses * t.dram_share
                acc += a - a0
                served += s - s0
                self.last[k] = (a, s)
        self.series.append({"round": number, "share": served / acc if acc > 0 else 1.0})

    async def round(self, number: int, ctl, sim) -> None:
        """After round `number`: fetch the advice at its round, land the moves due."""
        self.observe(number, await sim.stats())
        if number == self.advice_round:
            self.advice = fetch(ctl, self.args)
            done, moves, i = 0.0, self.advice["moves"], 0
            while i < len(moves):
                # both halves of a swap land together (neither host holds both VMs at once)
                pair = i + 1 < len(moves) and moves[i]["swap_with"] and \
                    moves[i + 1]["swap_with"] == f"{moves[i]['source']}/{moves[i]['vm']}"
                group = moves[i:i + 2] if pair else moves[i:i + 1]
                done += sum(m["copy_seconds"] for m in group)
                self.due.setdefault(number + max(1, math.ceil(done / self.period - 1e-9)), []).extend(group)
                i += len(group)
        if number in self.due:
            await self._land(self.due.pop(number), number, ctl, sim)

    async def _land(self, moves: list[dict], number: int, ctl, sim) -> None:
        """RemoveTenant on every source first (a swap's two hosts each make room), then AddTenant on the
        destinations with the VMs' policies."""
        import grpc

        todo, chosen = [], set()
        for m in moves:
            src, vm, dst = m["source"], m["vm"], m["destination"]
            entry = {**m, "round": number, "time": number * self.period, "name": vm, "error": ""}
            topo = ctl.hosts[src].topology
            tenant = next((t for t in topo.tenants if t.name == vm), None) if topo is not None else None
            spec = self.specs.get((src, vm))
            if tenant is None or spec is None:
                entry["error"] = f"no VM {vm!r} on {src} any more"
                self.landed.append(entry)
                continue
            # names there now, ever (a departed VM keeps its results), or chosen for this landing
            taken = ({t.name for t in ctl.hosts[dst].topology.tenants} | {n for (h, n) in self.specs if h == dst}
                     | {n for (h, n) in chosen if h == dst})
            name = vm if vm not in taken else f"{vm}-from-{src}"
            chosen.add((dst, name))
            spec = {**spec, "name": name, "footprint": int(tenant.footprint_bytes)}
            try:
                await sim.remove_tenant(src, vm)
            except grpc.aio.AioRpcError as e:
                entry["error"] = f"RemoveTenant: {e.code().name}: {e.details()}"
                self.landed.append(entry)
                continue
            todo.append((entry, spec, ctl.policies.get(src, {}).get(vm)))
        for entry, spec, policy in todo:
            entry["name"] = spec["name"]
            try:
                await sim.add_tenant(entry["destination"], spec)
                self.specs[(entry["destination"], spec["name"])] = spec
                if policy is not None:
                    ctl.set_policies([(entry["destination"], spec["name"], policy)])
            except grpc.aio.AioRpcError as e:
                entry["error"] = f"AddTenant: {e.code().name}: {e.details()}"
            self.landed.append(entry)

    def result(self) -> dict:
        last = max((m["round"] for m in self.landed), default=None)
        before = [x["share"] for x in self.series if self.advice_round - 5 < x["round"] <= self.advice_round]
        after = [x["share"] for x in self.series if last is not None and x["round"] > last]
        return {"advice_round": self.advice_round, "advice_seconds": self.advice_round * self.period,
                "advice": self.advice, "landed": self.landed,
                "series": self.series, "landed_round": last,
                "pending": [{**m, "round": r} for r, ms in sorted(self.due.items()) for m in ms],
                "share_before": sum(before) / len(before) if before else None,
                "share_after": sum(after[-5:]) / len(after[-5:]) if after else None}


def report_lines(res: dict) -> list[str]:
    """`pagetide sim`'s advice section: what --apply-advice did, then the advice at the end of the run."""
    out = []
    if res.get("advice_applied"):
        out += report_applied(res["advice_applied"]) + [""]
    if res.get("advice"):
        out += report(res["advice"], "fleet advice at the end of the run")
    return out


def report_applied(ap: dict) -> list[str]:
    """What --apply-advice did, and the fleet's measured share before and in the rounds after."""
    out = report(ap["advice"], f"fleet advice applied at {ap['advice_seconds']:g} s") if ap["advice"] else []
    for m in ap["landed"]:
        out.append(f"  {m['vm']}: {m['source']} -> {m['destination']}"
                   + (f" as {m['name']}" if m["name"] != m["vm"] else "")
                   + f" landed at {m['time']:g} s" + (f" REFUSED: {m['error']}" if m["error"] else ""))
    for m in ap["pending"]:
        out.append(f"  {m['vm']}: {m['source']} -> {m['destination']} still copying when the run ended "
                   f"(due at {m['round']} rounds)")
    if ap["share_before"] is not None:
        after = [x for x in ap["series"] if ap["landed_round"] is not None and x["round"] > ap["landed_round"]]
        out.append(f"the fleet's measured DRAM-served share: {fmt_pct(ap['share_before'])} in the 5 rounds up to "
                   f"the advice" + (f"; {fmt_pct(ap['share_after'])} in the last {min(5, len(after))} rounds; "
                                    f"per round after the moves: "
                                    + " ".join(fmt_pct(x["share"]) for x in after) if after else ""))
    return out
