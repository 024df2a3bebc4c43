"""`pagetide sim`: the multi-host simulation end to end on one machine, a thin harness around the controller.

It writes the fleet's host scenarios, starts K agent processes serving them with a driven clock (several
simulated hosts per process), starts the same Controller that `pagetide controller` runs (on a local Ray,
with ControllerService and optionally Prometheus metrics), and advances simulated time one scan period at a
time through SimulationService while the controller reconciles each host as its period completes. It ends
with a table per VM and per host from the agents' accounting, and optionally JSON and PNG plots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import tempfile
import time

from pagetide.common.security import add_server_security_arguments
from pagetide.common.tables import fmt_bytes, fmt_pct, table
from pagetide.harness.progress import Progress
from pagetide.harness.simmetrics import SimMetrics, add_metrics_arguments, linger, metrics_errors, with_agent_metrics



def set_argparser(p: argparse.ArgumentParser) -> None:
    from pagetide.agent.tiering import MODES
    from pagetide.controller.commands.controller import add_policy_arguments, duration_argument, size_argument

    p.add_argument("--hosts", type=int, default=4, help="simulated hosts (default 4)")
    p.add_argument("--agents", type=int, default=2, help="agent processes the hosts are packed into (default 2)")
    p.add_argument("--duration", type=duration_argument, default=60.0, help="simulated time (default 60s)")
    p.add_argument("--host-memory", type=size_argument, default=2 << 30,
                   help="memory per host, DRAM 1/4 (default 2GiB)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kernel-mode", choices=sorted(MODES),
                   help="the hosts' kernel tiering mode (default: the fleet's, none = demotion only); "
                        "combine with --policy none to run a kernel mode alone")
    add_policy_arguments(p)
    p.add_argument("--realtime", action="store_true", help="one round per period of wall time (for live monitoring)")
    p.add_argument("--stats-every", type=int, default=5, help="fetch accounting every N rounds (metrics)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.add_argument("--controller-listen", default="127.0.0.1:0",
                   help="ControllerService address; off loopback it needs --controller-token-file or mutual "
                        "TLS, or --controller-insecure")
    add_server_security_arguments(p, prefix="controller-", what="ControllerService")
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--plot", help="write PNG plots into this directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--db", help="the controller's policy store (default: a temporary one for this run)")
    p.add_argument("--agent-token-file", metavar="FILE",
                   help="the token the agents ask for (default: a random one made for this run)")
    add_metrics_arguments(p)


async def run_sim(args: argparse.Namespace, security=None) -> dict:
    """The simulation; `security`: ControllerService's (a ServerSecurity; None: loopback, open). The agents
    ask for a token (--agent-token-file, or a random one in a file only this user can read)."""
    from prometheus_client import start_http_server

    from pagetide.controller.cluster import init_ray
    from pagetide.controller.service import start_controller_server
    from pagetide.harness.agents import launch_agents, scenario_commands, write_scenarios
    from pagetide.harness.drive import controlled, drive
    from pagetide.harness.fleet import fleet_dicts
    from pagetide.common.security import (
        ClientSecurity, ServerSecurity, bound_address, load_tokens, write_token_file,
    )

    from pagetide.controller.store import PolicyStore

    db_dir = None if args.db else tempfile.TemporaryDirectory(prefix="pagetide-sim-db-")
    store = PolicyStore(args.db or os.path.join(db_dir.name, "controller.db"))
    init_ray()
    per_host: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="pagetide-sim-") as tmp:
        paths = write_scenarios(fleet_dicts(args.hosts, seed=args.seed, memory_mib=args.host_memory >> 20,
                                            tiering=args.kernel_mode), tmp)
        token_file = args.agent_token_file
        if token_file is None:
            token_file = os.path.join(tmp, "agent-token")
            write_token_file(token_file, secrets.token_urlsafe(32))
        agent_security = ClientSecurity(token=load_tokens(token_file)[0][0])
        agents = launch_agents(with_agent_metrics(scenario_commands(paths, args.agents, token_file=token_file), args))
    from pagetide.controller.metrics import Metrics

    async with controlled(agents, agent_security=agent_security, max_candidates=args.max_candidates,
                          metrics=Metrics(per_vm=not args.no_vm_metrics),
                          bandwidth=args.bandwidth, pace=args.realtime,
                          policy=args.policy, policy_options=dict(args.policy_option), store=store,
                          on_round=lambda r: per_host.setdefault(r.host_id, []).append(r)) as (ctl, sim):
        server, port = await start_controller_server(ctl, args.controller_listen, security=security)
        try:
            print(f"pagetide sim: {len(ctl.hosts)} hosts in {len(agents)} agent processes; ControllerService on "
                  f"{bound_address(args.controller_listen, port)} ({(security or ServerSecurity()).describe()})",
                  file=sys.stderr)
            sim_metrics = SimMetrics(ctl.metrics.registry, per_vm=not args.no_vm_metrics)
            if args.metrics_port is not None:
                try:
                    start_http_server(args.metrics_port, addr="127.0.0.1", registry=ctl.metrics.registry)
                except OSError as e:                # the agents and the controller stop on the way out
                    raise SystemExit(f"pagetide sim: cannot serve metrics on 127.0.0.1:{args.metrics_port}: "
                                     f"{e}") from None
                print(f"pagetide sim: metrics on http://127.0.0.1:{args.metrics_port}/metrics", file=sys.stderr)
            topo = next(iter(ctl.topologies.values()))
            period = topo.period_ns / 1e9
            ticks = max(1, round(topo.period_ns / topo.tick_ns))
            n_rounds = max(1, int(round(args.duration / period)))
            progress = Progress(n_rounds, label="pagetide sim")

            async def after(r) -> None:
                if r.number % args.stats_every == 0 or r.number == n_rounds:
                    sim_metrics.observe(await sim.stats())
                if not args.quiet:
                    progress(r.number, f"round {r.seconds * 1e3:.0f} ms")

            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            t_start = time.perf_counter()
            rounds = await drive(ctl, sim, n_rounds, ticks, pace=period if args.realtime else None, after_round=after,
                                 stop=stop)
            wall = time.perf_counter() - t_start
            if stop.is_set() and not args.quiet:
                progress.end()
                sys.stderr.write(f"pagetide sim: stopped by a signal after {len(rounds)} of {n_rounds} rounds\n")
            stats = await sim.stats()
            sim_metrics.observe(stats)
            await linger(args, stop)
            return collect(args, rounds, per_host, stats, wall, ctl)
        finally:
            await server.stop(grace=0.5)
            store.close()
            if db_dir is not None:
                db_dir.cleanup()


def collect(args, rounds, per_host: dict[str, list], stats: dict, wall: float, ctl=None) -> dict:
    """The run's results; hosts whose agent did not answer the final statistics call are listed in
    "unanswered", with the controller's view of them."""
    hosts = []
    states = ctl.hosts if ctl is not None else {}
    for h, st in stats.items():
        results = per_host.get(h, [])
        vms = [{"vm": t.tenant, "workload": t.workload, "footprint_bytes": t.footprint_bytes,
                "dram_share": t.dram_share, "oracle_share": t.oracle_share, "slowdown": t.slowdown,
                "oracle_slowdown": t.oracle_slowdown, "migrated_bytes": t.migrated_bytes, "pingpong": t.pingpong,
                "lag_oracle_share": t.lag_oracle_share, "lag_cost_slowdown": t.lag_cost_slowdown,
                "dram_share_series": list(t.dram_share_series),
                "oracle_share_series": list(t.oracle_share_series)} for t in st.tenants]
        hosts.append({"host": h, "dram_share": st.dram_share, "oracle_share": st.oracle_share,
                      "slowdown": st.slowdown, "lag_oracle_share": st.lag_oracle_share,
                      "lag_cost_slowdown": st.lag_cost_slowdown, "vms": vms, "rounds": len(results),
                      "promoted_bytes": sum(r.promoted_bytes for r in results),
                      "demoted_bytes": sum(r.demoted_bytes for r in results),
                      "report_bytes_max": max((r.report_bytes for r in results), default=0),
                      "outages": states[h].outages if h in states else 0,
                      "invariant_error": st.invariant_error,
                      "vmstat": {f.name: getattr(st.vmstat, f.name) for f in st.vmstat.DESCRIPTOR.fields}})
    secs = sorted(r.seconds for r in rounds) or [0.0]
    every = [r for rs in per_host.values() for r in rs]
    n = max(1, len(every))
    heat_history = {f"{h}/{vm}": [r.heat_pages[vm] for r in rs if vm in r.heat_pages]
                    for h, rs in per_host.items() for vm in (rs[0].heat_pages if rs else {})}
    return {
        "hosts": hosts, "unanswered": {h: {"status": s.status, "outages": s.outages, "last_error": s.last_error}
                                       for h, s in sorted(states.items()) if h not in stats},
        "rounds_lost": {h: lost for h in sorted(states) if (lost := sum(h in r.failed for r in rounds))},
        "policy": args.policy, "kernel_mode": args.kernel_mode,
        "policy_options": dict(args.policy_option), "seed": args.seed,
        "rounds": len(rounds), "wall_seconds": wall,
        "round_seconds": {"median": secs[len(secs) // 2], "max": secs[-1], "mean": sum(secs) / len(secs)},
        "advance_seconds_mean": sum(r.advance_seconds for r in rounds) / max(1, len(rounds)),
        "host_seconds_mean": {k: sum(getattr(x, f"{k}_seconds") for x in every) / n
                              for k in ("report", "plan", "move")},
        "batches_per_host_round": sum(x.batches for x in every) / n,
        "report_bytes_per_host_max": max((x.report_bytes for x in every), default=0),
        "report_bytes_per_host_mean": sum(x.report_bytes for x in every) / n,
        "move_request_bytes_per_host_mean": sum(x.move_request_bytes for x in every) / n,
        "cpu_seconds_per_host_mean": sum(x.cpu_seconds for x in every) / n,
        "ray_nodes": len({x.node_id for x in every}),
        "heat_history": heat_history,
    }


def _lag_ratio(r: dict) -> str:
    """DRAM share over the lag-one oracle's (agent/accounting.py)."""
    return f"{r['dram_share'] / r['lag_oracle_share']:.3f}" if r.get("lag_oracle_share") else "-"


def _lag_cost_ratio(r: dict) -> str:
    """The lag-one oracle's memory time, paying migration, over the run's (1.0: as fast)."""
    return f"{r['lag_cost_slowdown'] / r['slowdown']:.3f}" if r.get("lag_cost_slowdown") and r["slowdown"] else "-"


def report(res: dict) -> str:
    vm_rows, host_rows = [], []
    for h in res["hosts"]:
        for v in h["vms"]:
            vm_rows.append([h["host"], v["vm"], v["workload"], fmt_bytes(v["footprint_bytes"]), fmt_pct(v["dram_share"]),
                            fmt_pct(v["oracle_share"]),
                            f"{v['dram_share'] / v['oracle_share']:.3f}" if v["oracle_share"] else "-",
                            _lag_ratio(v), _lag_cost_ratio(v),
                            f"{v['slowdown']:.3f}x", f"{v['oracle_slowdown']:.3f}x", fmt_bytes(v["migrated_bytes"]),
                            str(v["pingpong"])])
        host_rows.append([h["host"], str(len(h["vms"])), fmt_pct(h["dram_share"]), fmt_pct(h["oracle_share"]),
                          f"{h['dram_share'] / h['oracle_share']:.3f}" if h["oracle_share"] else "-",
                          _lag_ratio(h), _lag_cost_ratio(h),
                          f"{h['slowdown']:.3f}x", fmt_bytes(h.get("promoted_bytes", 0)),
                          fmt_bytes(h.get("demoted_bytes", 0)),
                          fmt_bytes(h["vmstat"]["pgdemote_kswapd"] * 4096 + h["vmstat"]["pgdemote_direct"] * 4096),
                          fmt_bytes(h.get("report_bytes_max", 0))])
    out = [table(["host", "vm", "workload", "footprint", "DRAM share", "oracle", "ratio", "vs lag-one",
                  "vs lag-one+cost", "slowdown", "oracle slowdown", "migrated", "ping-pong"], vm_rows), "",
           table(["host", "VMs", "DRAM share", "oracle", "ratio", "vs lag-one", "vs lag-one+cost", "slowdown",
                  "promoted", "demoted",
                  "kernel demoted", "report max"], host_rows), "",
           f"{res['rounds']} rounds in {res['wall_seconds']:.1f} s; controller round after the agents' advance (each "
           f"host reconciled as its period completes): median {res['round_seconds']['median'] * 1e3:.0f} ms, max "
           f"{res['round_seconds']['max'] * 1e3:.0f} ms; agents advancing one period: "
           f"{res['advance_seconds_mean'] * 1e3:.0f} ms; largest heat report {fmt_bytes(res['report_bytes_per_host_max'])}"]
    faults = [f"{h['host']}: {h['outages']} outage(s), {res['rounds_lost'].get(h['host'], 0)} round(s) not advanced"
              for h in res["hosts"] if h.get("outages") or h["host"] in res.get("rounds_lost", {})]
    faults += [f"{h}: no answer at the end ({u['status']}; {u['outages']} outage(s); last error: {u['last_error']})"
               for h, u in res.get("unanswered", {}).items()]
    faults += [f"{h['host']}: INCONSISTENT STATE: {h['invariant_error']}" for h in res["hosts"] if h.get("invariant_error")]
    if faults:
        out += ["", "faults:", *(f"  {f}" for f in faults)]
    return "\n".join(out)


def plot(res: dict, outdir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    os.makedirs(outdir, exist_ok=True)
    files = []
    hosts = res["hosts"]
    fig, axes = plt.subplots(len(hosts), 1, figsize=(9, 2.6 * len(hosts)), squeeze=False, sharex=True)
    for ax, h in zip(axes[:, 0], hosts):
        for v in h["vms"]:
            line, = ax.plot(v["dram_share_series"], label=v["vm"])
            ax.plot(v["oracle_share_series"], linestyle=":", color=line.get_color())
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(f"{h['host']}\nDRAM share")
        ax.legend(fontsize=7, loc="lower right", ncol=2)
    axes[-1, 0].set_xlabel("epoch (solid: pagetide, dotted: per-epoch oracle)")
    fig.tight_layout()
    files.append(os.path.join(outdir, "dram_share.png"))
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    key = max(res["heat_history"], key=lambda k: sum(sum(p[1:]) for p in res["heat_history"][k]))
    hist = np.array(res["heat_history"][key], dtype=float).T
    fig, ax = plt.subplots(figsize=(9, 3.5))
    im = ax.imshow(np.log10(1 + hist), aspect="auto", origin="lower", cmap="inferno")
    ax.set_xlabel("round")
    ax.set_ylabel("heat bin")
    ax.set_title(f"{key}: pages per heat bin (log10)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    files.append(os.path.join(outdir, "heatmap.png"))
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files


def main(args: argparse.Namespace) -> int:
    from pagetide.common.security import SecurityError, listen_error, load_tokens, server_security

    try:
        security = server_security(args, "controller-")
        if args.agent_token_file:
            load_tokens(args.agent_token_file)
    except SecurityError as e:
        print(f"pagetide sim: {e}", file=sys.stderr)
        return 2
    refused = metrics_errors(args) or listen_error(args.controller_listen, security, "--controller-listen",
                                                   "controller-")
    if refused:
        print(f"pagetide sim: {refused}", file=sys.stderr)
        return 2
    res = asyncio.run(run_sim(args, security))
    print(report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: v for k, v in res.items() if k != "heat_history"}, f, indent=1)
    if args.plot:
        for p in plot(res, args.plot):
            print(f"wrote {p}")
    return 0
