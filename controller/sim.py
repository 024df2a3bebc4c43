"""`pagetide sim`: the multi-host simulation end to end on one machine.

Starts a local Ray instance, K agent processes (`pagetide agent --fleet N --fleet-part i/K --clock driven`,
several simulated hosts packed per process), one HostProxy actor per host, the controller with its
ControllerService and (optionally) Prometheus metrics; then runs rounds: advance every host by one period,
report heat, plan, move. It ends with a table per VM and per host, and optionally JSON and PNG plots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

from pagetide.controller.baselines import POLICIES
from pagetide.controller.policy import PolicyParams

SERVING = re.compile(r"serving (\S+(?:, \S+)*) on port (\d+)")


@dataclass
class AgentProcess:
    proc: subprocess.Popen
    port: int
    hosts: list[str]


# the agent's kernel tiering modes (agent/tiering.py), named here because the controller imports no agent code;
# tests/test_scenario.py checks the two lists agree
KERNEL_MODES = ("none", "nbt", "tpp", "damos")

def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 2GiB, 512MiB)")
    mult = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * mult)


def parse_seconds(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 60s, 2min)")
    return float(m.group(1)) * {None: 1, "s": 1, "ms": 1e-3, "min": 60}[m.group(2)]


def parse_policy_option(text: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE a number or a size (256MiB); the policy validates the key."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    try:
        return key.strip(), int(value) if value.strip().lstrip("-").isdigit() else float(value)
    except ValueError:
        return key.strip(), parse_size(value)


def agent_command(*args: str) -> list[str]:
    """`pagetide agent` on a free local port with a driven clock, serving what `args` name."""
    return [sys.executable, "-m", "pagetide.controller.cli", "agent", "--listen", "127.0.0.1:0", "--clock", "driven",
            *args]


def start_agents(n_hosts: int, n_procs: int, seed: int, memory_mib: int, timeout: float = 300,
                 tiering: str | None = None) -> list[AgentProcess]:
    """Start agent processes serving the fleet's hosts (with `tiering` as their kernel mode, if given); wait
    until each prints its port."""
    extra = ("--tiering", tiering) if tiering else ()
    return launch_agents([agent_command("--fleet", str(n_hosts), "--fleet-part", f"{i}/{n_procs}", "--seed", str(seed),
                                        "--fleet-memory", f"{memory_mib}MiB", *extra) for i in range(n_procs)],
                         timeout)


def launch_agents(cmds: list[list[str]], timeout: float = 300) -> list[AgentProcess]:
    """Start one agent process per command; wait until each prints the hosts it serves and its port."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for cmd in cmds]
    out = []
    deadline = time.monotonic() + timeout
    for p in procs:
        line = ""
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line and p.poll() is not None:
                stop_agents([AgentProcess(q, 0, []) for q in procs])
                raise RuntimeError(f"agent exited: {p.stderr.read()[-2000:]}")
            m = SERVING.search(line)
            if m:
                out.append(AgentProcess(p, int(m.group(2)), m.group(1).split(", ")))
                break
        else:
            stop_agents([AgentProcess(q, 0, []) for q in procs])
            raise TimeoutError("agents did not start in time")
    return out


def stop_agents(agents: list[AgentProcess]) -> None:
    for a in agents:
        if a.proc.poll() is None:
            a.proc.terminate()
    for a in agents:
        try:
            a.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            a.proc.kill()


def init_ray(object_store_mb: int = 256) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=object_store_mb << 20,
                 log_to_driver=False, configure_logging=False)


def progress(i: int, n: int, extra: str = "") -> None:
    width = 30
    done = int(width * i / n)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} rounds {extra}")
    if i == n:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def run_sim(args: argparse.Namespace) -> dict:
    from prometheus_client import start_http_server

    from pagetide.controller.controller import Controller, start_controller_server

    init_ray()
    agents = start_agents(args.hosts, min(args.agents, args.hosts), args.seed, args.host_memory >> 20,
                          tiering=args.kernel_mode)
    ctl = None
    try:
        hosts = {h: f"127.0.0.1:{a.port}" for a in agents for h in a.hosts}
        ctl = Controller(hosts, max_candidates=args.max_candidates,
                         bandwidth=args.bandwidth if args.realtime else None,
                         policy=args.policy, policy_options=dict(args.policy_option))
        await ctl.start()
        period = next(iter(ctl.topologies.values())).period_ns / 1e9
        # the per-host bandwidth limit, as a byte budget per round of simulated time
        ctl.params = PolicyParams(max_bytes_per_round=int(args.bandwidth * period))
        server, port = await start_controller_server(ctl, args.controller_listen)
        print(f"pagetide sim: {len(hosts)} hosts in {len(agents)} agent processes; ControllerService on "
              f"127.0.0.1:{port}", file=sys.stderr)
        if args.metrics_port is not None:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=ctl.metrics.registry)
            print(f"pagetide sim: metrics on http://127.0.0.1:{args.metrics_port}/metrics", file=sys.stderr)
        topo = next(iter(ctl.topologies.values()))
        ticks = max(1, round(topo.period_ns / topo.tick_ns))
        n_rounds = max(1, int(round(args.duration / (topo.period_ns / 1e9))))
        t_start = time.perf_counter()
        heat_history: dict[str, list] = {}
        for i in range(n_rounds):
            r0 = time.perf_counter()
            summary = await ctl.round(advance_ticks=ticks)
            for res in summary.results:
                for vm, pages in res.heat_pages.items():
                    heat_history.setdefault(f"{res.host_id}/{vm}", []).append(pages)
            if args.realtime:
                await asyncio.sleep(max(0.0, topo.period_ns / 1e9 - (time.perf_counter() - r0)))
            if (i + 1) % args.stats_every == 0 or i + 1 == n_rounds:
                await ctl.refresh_stats()
            if not args.quiet:
                progress(i + 1, n_rounds, f"round {summary.seconds * 1e3:.0f} ms")
        wall = time.perf_counter() - t_start
        stats = await ctl.refresh_stats()
        await server.stop(grace=0.5)
        return collect(args, ctl, stats, wall, heat_history)
    finally:
        if ctl is not None:
            ctl.shutdown()
        stop_agents(agents)


def collect(args, ctl, stats, wall, heat_history) -> dict:
    rounds = ctl.rounds
    moved: dict[str, dict[str, int]] = {}
    for r in rounds:
        for res in r.results:
            m = moved.setdefault(res.host_id, {"promoted_bytes": 0, "demoted_bytes": 0, "report_bytes_max": 0})
            m["promoted_bytes"] += res.promoted_bytes
            m["demoted_bytes"] += res.demoted_bytes
            m["report_bytes_max"] = max(m["report_bytes_max"], res.report_bytes)
    hosts = []
    for h, st in stats.items():
        vms = [{"vm": t.tenant, "workload": t.workload, "footprint_bytes": t.footprint_bytes,
                "dram_share": t.dram_share, "oracle_share": t.oracle_share, "slowdown": t.slowdown,
                "oracle_slowdown": t.oracle_slowdown, "migrated_bytes": t.migrated_bytes, "pingpong": t.pingpong,
                "dram_share_series": list(t.dram_share_series),
                "oracle_share_series": list(t.oracle_share_series)} for t in st.tenants]
        hosts.append({"host": h, "dram_share": st.dram_share, "oracle_share": st.oracle_share,
                      "slowdown": st.slowdown, "vms": vms, **moved.get(h, {}),
                      "vmstat": {f.name: getattr(st.vmstat, f.name) for f in st.vmstat.DESCRIPTOR.fields}})
    secs = sorted(r.seconds for r in rounds)
    return {
        "hosts": hosts, "policy": args.policy, "kernel_mode": args.kernel_mode,
        "policy_options": dict(args.policy_option), "seed": args.seed,
        "rounds": len(rounds), "wall_seconds": wall,
        "round_seconds": {"median": secs[len(secs) // 2], "max": secs[-1], "mean": sum(secs) / len(secs)},
        "advance_seconds_mean": sum(r.advance_seconds for r in rounds) / len(rounds),
        "host_seconds_mean": {k: sum(getattr(x, f"{k}_seconds") for r in rounds for x in r.results)
                              / sum(len(r.results) for r in rounds) for k in ("report", "plan", "move")},
        "batches_per_host_round": sum(x.batches for r in rounds for x in r.results) / sum(len(r.results) for r in rounds),
        "report_bytes_per_host_max": max(r.report_bytes for x in rounds for r in x.results),
        "heat_history": heat_history,
    }


def fmt_pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def fmt_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(b) < 1024 or unit == "TiB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{int(b)} B"
        b /= 1024
    return str(b)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def report(res: dict) -> str:
    vm_rows, host_rows = [], []
    for h in res["hosts"]:
        for v in h["vms"]:
            vm_rows.append([h["host"], v["vm"], v["workload"], fmt_bytes(v["footprint_bytes"]), fmt_pct(v["dram_share"]),
                            fmt_pct(v["oracle_share"]),
                            f"{v['dram_share'] / v['oracle_share']:.3f}" if v["oracle_share"] else "-",
                            f"{v['slowdown']:.3f}x", f"{v['oracle_slowdown']:.3f}x", fmt_bytes(v["migrated_bytes"]),
                            str(v["pingpong"])])
        host_rows.append([h["host"], str(len(h["vms"])), fmt_pct(h["dram_share"]), fmt_pct(h["oracle_share"]),
                          f"{h['dram_share'] / h['oracle_share']:.3f}" if h["oracle_share"] else "-",
                          f"{h['slowdown']:.3f}x", fmt_bytes(h.get("promoted_bytes", 0)),
                          fmt_bytes(h.get("demoted_bytes", 0)),
                          fmt_bytes(h["vmstat"]["pgdemote_kswapd"] * 4096 + h["vmstat"]["pgdemote_direct"] * 4096),
                          fmt_bytes(h.get("report_bytes_max", 0))])
    out = [table(["host", "vm", "workload", "footprint", "DRAM share", "oracle", "ratio", "slowdown",
                  "oracle slowdown", "migrated", "ping-pong"], vm_rows), "",
           table(["host", "VMs", "DRAM share", "oracle", "ratio", "slowdown", "promoted", "demoted",
                  "kernel demoted", "report max"], host_rows), "",
           f"{res['rounds']} rounds in {res['wall_seconds']:.1f} s; controller round (report+plan+moves, hosts in "
           f"parallel): median {res['round_seconds']['median'] * 1e3:.0f} ms, max "
           f"{res['round_seconds']['max'] * 1e3:.0f} ms; agents advancing one period: "
           f"{res['advance_seconds_mean'] * 1e3:.0f} ms; largest heat report {fmt_bytes(res['report_bytes_per_host_max'])}"]
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


def cmd_sim(args: argparse.Namespace) -> int:
    res = asyncio.run(run_sim(args))
    print(report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: v for k, v in res.items() if k != "heat_history"}, f, indent=1)
    if args.plot:
        for p in plot(res, args.plot):
            print(f"wrote {p}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("sim", help="multi-host simulation: agents, Ray controller, results table")
    p.add_argument("--hosts", type=int, default=4, help="simulated hosts (default 4)")
    p.add_argument("--agents", type=int, default=2, help="agent processes the hosts are packed into (default 2)")
    p.add_argument("--duration", type=parse_seconds, default=60.0, help="simulated time (default 60s)")
    p.add_argument("--host-memory", type=parse_size, default=2 << 30, help="memory per host, DRAM 1/4 (default 2GiB)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bandwidth", type=parse_size, default=256 << 20,
                   help="per-host migration limit in bytes per second (default 256MiB)")
    p.add_argument("--max-candidates", type=int, default=4096, help="candidate pages per list in heat reports")
    p.add_argument("--kernel-mode", choices=KERNEL_MODES,
                   help="the hosts' kernel tiering mode (default: the fleet's, none = demotion only); "
                        "combine with --policy none to run a kernel mode alone")
    p.add_argument("--policy", choices=sorted(POLICIES), default="pagetide",
                   help="placement policy: pagetide's own or a baseline daemon (default pagetide)")
    p.add_argument("--policy-option", type=parse_policy_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the chosen policy, e.g. dram_percent=25 or heat_max=2 (repeatable)")
    p.add_argument("--realtime", action="store_true", help="one round per period of wall time (for live monitoring)")
    p.add_argument("--stats-every", type=int, default=5, help="fetch accounting every N rounds (metrics)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.add_argument("--controller-listen", default="127.0.0.1:0", help="ControllerService address")
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--plot", help="write PNG plots into this directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sim)
