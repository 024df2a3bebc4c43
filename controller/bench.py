"""`pagetide bench`: the benchmark suite -- every workload at several DRAM shares, under every placement policy
and kernel tiering mode, next to the reference runs (DESIGN.md sections 4 and 5).

The suite is a grid of hosts, one per (workload, DRAM share): the synthetic workloads, the shipped traces
and a multi-VM host mix, each on a host whose DRAM is 1/2, 1/4 or 1/8 of its footprint (the slow tier holds
the rest plus headroom). One *run* per policy or kernel mode packs every host of the grid into one or two
`pagetide agent --clock driven` processes (scenario YAML files written to a temporary directory, host names
`<workload>-s<denominator>-<run>`), drives them with one Controller for N rounds and reads GetStats at the
end. Controller policies run on a kernel that only demotes (tiering `none`); the kernel-only modes run the
`none` policy, which moves nothing. The references come from the same GetStats: all-DRAM (slowdown 1 by
definition), the per-epoch oracle and the static oracle.

Suite generation, aggregation and the report are pure functions of plain dicts; `run_suite` is the shell
that starts processes. Like all controller code this module talks to the agent only through its CLI, its
documented scenario schema and the gRPC API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import yaml

from pagetide.controller.sim import parse_size

MiB = 1 << 20
HUGE = 2 * MiB                  # node capacities and trace footprints are multiples of 2 MiB (the schema's rule)
PAGE = 4096

SYNTHETIC = ("zipf", "hotset", "drift", "scan+hot", "idle-vm", "write-heavy", "phases")
TRACES = ("sort", "python-dict", "sqlite-index")
MIX = "mix"
WORKLOADS = SYNTHETIC + TRACES + (MIX,)
SHARES = (2, 4, 8)              # DRAM = footprint / denominator

# run name -> (controller policy, kernel settings of every host in that run)
CONTROLLER_RUNS = {
    "pagetide": ("pagetide", {"tiering": {"mode": "none"}}),
    "memory-optimizer": ("memory-optimizer", {"tiering": {"mode": "none"}}),
    "memtierd": ("memtierd", {"tiering": {"mode": "none"}}),
}
KERNEL_RUNS = {
    "demotion": ("none", {"tiering": {"mode": "none"}}),
    "nbt": ("none", {"tiering": {"mode": "nbt"}}),
    "tpp": ("none", {"tiering": {"mode": "tpp"}}),
    "first-touch": ("none", {"tiering": {"mode": "none"}, "zonelist": "unified", "demotion_enabled": False}),
}
RUNS = {**CONTROLLER_RUNS, **KERNEL_RUNS}
REFERENCES = ("all-DRAM", "per-epoch oracle", "static oracle")

# The multi-VM host: VMs of different sizes (fractions of the host's footprint) and priorities (VmPolicy
# weight, which pagetide's DRAM split honours and the baselines ignore).
MIX_VMS = (("vm-web", "zipf", 0.375, 2.0), ("vm-kv", "hotset", 0.25, 1.0), ("vm-idle", "idle-vm", 0.25, 1.0),
           ("vm-batch", "scan+hot", 0.125, 0.5))

SAMPLES = 8192                  # sampled accesses per tick and tenant: half the agent's default, for speed


@dataclass(frozen=True)
class SuiteConfig:
    workloads: tuple[str, ...] = WORKLOADS
    shares: tuple[int, ...] = SHARES
    runs: tuple[str, ...] = tuple(RUNS)
    rounds: int = 30
    footprint_mib: int = 256      # synthetic workloads; the mix host gets 1.5x this
    seed: int = 1
    agents: int = 2


QUICK = SuiteConfig(workloads=("zipf", "scan+hot", "sort", MIX), shares=(4,), rounds=8, footprint_mib=64)


@dataclass
class HostCase:
    """One host of the grid: the scenario mapping (without the run's kernel settings) and its labels."""
    workload: str
    share: int
    scenario: dict = field(repr=False)
    weights: dict[str, float] = field(default_factory=dict)

    def host_id(self, run: str) -> str:
        return f"{slug(self.workload)}-s{self.share}-{run}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def round_up(x: int, to: int) -> int:
    return -(-x // to) * to


def fmt_mib(b: int) -> str:
    """Bytes (a multiple of 1 KiB) as a scenario size."""
    return f"{b // MiB}MiB" if b % MiB == 0 else f"{b // 1024}KiB"


# ----------------------------------------------------------------------------------------- suite (pure)

def trace_replicas(footprint: int, share: int) -> int:
    """Copies of a trace tenant on one host so that DRAM, footprint x copies / share, is a multiple of 2 MiB
    (a shipped trace is a few MiB: 1/8 of one copy would be smaller than the smallest DRAM node)."""
    return HUGE // math.gcd(footprint // share, HUGE)


def host_scenario(tenants: list[dict], share: int, seed: int, rounds: int) -> dict:
    """A scenario mapping with DRAM = footprint / share and the slow node the rest plus 1/8 headroom."""
    footprint = sum(parse_size(t["footprint"]) for t in tenants)
    dram = footprint // share
    assert dram % HUGE == 0, (footprint, share)
    slow = round_up(footprint - dram + max(HUGE, footprint // 8), HUGE)
    return {
        "seed": seed, "tick": "100ms", "epoch": "1s", "duration": f"{rounds + 5}s",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": fmt_mib(dram), "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": fmt_mib(slow)}],
                 "kernel": {"swap": fmt_mib(round_up(footprint, HUGE))}},
        "tenants": tenants,
    }


def suite(cfg: SuiteConfig, trace_pages: dict[str, int]) -> list[HostCase]:
    """Every (workload, share) host of the grid. trace_pages: 4 KiB pages of each trace in cfg.workloads."""
    fp = cfg.footprint_mib * MiB
    cases = []
    for w in cfg.workloads:
        for share in cfg.shares:
            seed = cfg.seed * 1000 + len(cases)
            weights = {}
            if w in SYNTHETIC:
                tenants = [{"name": "vm0", "footprint": fmt_mib(fp), "workload": {"type": w, "samples": SAMPLES}}]
            elif w in TRACES:
                tfp = round_up(trace_pages[w] * PAGE, HUGE)
                tenants = [{"name": f"t{i}", "kind": "task", "footprint": fmt_mib(tfp), "prefault": False,
                            "workload": {"type": "trace", "path": w, "samples": SAMPLES}}
                           for i in range(trace_replicas(tfp, share))]
            elif w == MIX:
                total = fp * 3 // 2
                tenants = [{"name": name, "footprint": fmt_mib(round_up(int(total * frac), 16 * MiB)),
                            "workload": {"type": wl, "samples": SAMPLES}} for name, wl, frac, _ in MIX_VMS]
                weights = {name: wt for name, _, _, wt in MIX_VMS if wt != 1.0}
            else:
                raise ValueError(f"unknown workload {w!r}; valid: {', '.join(WORKLOADS)}")
            cases.append(HostCase(w, share, host_scenario(tenants, share, seed, cfg.rounds), weights))
    return cases


def scenario_for(case: HostCase, run: str) -> dict:
    """The case's scenario under a run: its name and the run's kernel settings."""
    d = json.loads(json.dumps(case.scenario))
    d["name"] = case.host_id(run)
    d["host"]["kernel"].update(json.loads(json.dumps(RUNS[run][1])))
    return d


# ------------------------------------------------------------------------------------- results (pure)

def host_result(stats: dict) -> dict:
    """One host's numbers from its GetStats (as a dict): host-level shares and slowdown; the static oracle
    and the oracle's slowdown are the tenants' access-weighted means (exact for single-tenant hosts)."""
    tenants = stats["tenants"]
    acc = sum(t["accesses"] for t in tenants) or 1.0
    wmean = lambda k: sum(t[k] * t["accesses"] for t in tenants) / acc
    return {"dram_share": stats["dram_share"], "oracle_share": stats["oracle_share"],
            "static_oracle_share": wmean("static_oracle_share"), "slowdown": stats["slowdown"],
            "oracle_slowdown": wmean("oracle_slowdown"),
            "migrated_bytes": sum(t["migrated_bytes"] for t in tenants),
            "pingpong": sum(t["pingpong"] for t in tenants)}


def ratio(share: float, oracle: float) -> float:
    return share / oracle if oracle else float("nan")


def summary(results: dict) -> dict[str, dict[int, float]]:
    """Mean ratio to the per-epoch oracle per run and share, over the workloads."""
    out: dict[str, dict[int, list[float]]] = {}
    for r in results["hosts"]:
        out.setdefault(r["run"], {}).setdefault(r["share"], []).append(ratio(r["dram_share"], r["oracle_share"]))
    return {run: {s: sum(v) / len(v) for s, v in sorted(by.items())} for run, by in out.items()}


def _num(x: float, fmt: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def report(results: dict) -> str:
    """The Markdown report: header with the command, a summary, then one table per workload x share."""
    hosts = results["hosts"]
    runs = [r for r in RUNS if any(h["run"] == r for h in hosts)]
    shares = sorted({h["share"] for h in hosts})
    lines = ["# pagetide benchmark suite", "",
             f"Command: `{results['command']}`", "",
             f"{results['rounds']} rounds of 1 s simulated time per host; {len(hosts)} host runs; wall time "
             f"{results['wall_seconds']:.0f} s. Generated by `pagetide bench`; do not edit by hand.", "",
             "DRAM-served share: accesses served by DRAM over the run. Ratio: that over the per-epoch oracle's share "
             "(each epoch DRAM holds that epoch's hottest pages, migration free). Slowdown: modelled memory time "
             "over all-DRAM. Controller policies run on a kernel that demotes only (tiering `none`); kernel-only "
             "modes run with no controller moves. A static oracle shown as n/a was not reported by the agent.", "",
             "## Mean ratio to the per-epoch oracle", "",
             "| policy / mode | " + " | ".join(f"DRAM 1/{s}" for s in shares) + " |",
             "|---|" + "---|" * len(shares)]
    summ = summary(results)
    for run in runs:
        lines.append(f"| {run} | " + " | ".join(_num(summ[run].get(s, float('nan')), "{:.3f}") for s in shares) + " |")
    by_case: dict[tuple[str, int], dict[str, dict]] = {}
    for h in hosts:
        by_case.setdefault((h["workload"], h["share"]), {})[h["run"]] = h
    order = {w: i for i, w in enumerate(WORKLOADS)}
    for (w, s), per_run in sorted(by_case.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        lines += ["", f"## {w}, DRAM 1/{s}", "",
                  "| policy / mode | DRAM-served share | ratio to oracle | slowdown vs all-DRAM | GiB migrated | ping-pong |",
                  "|---|---|---|---|---|---|"]
        for run in runs:
            h = per_run.get(run)
            if h is None:
                continue
            lines.append(f"| {run} | {_num(h['dram_share'] * 100, '{:.1f}%')} | "
                         f"{_num(ratio(h['dram_share'], h['oracle_share']), '{:.3f}')} | "
                         f"{_num(h['slowdown'], '{:.3f}x')} | {h['migrated_bytes'] / (1 << 30):.2f} | "
                         f"{h['pingpong']:,} |")
        refs = list(per_run.values())
        mean = lambda k: sum(r[k] for r in refs) / len(refs)
        oracle = mean("oracle_share")
        static = mean("static_oracle_share")
        lines.append(f"| *all-DRAM* | 100.0% | {_num(ratio(1.0, oracle), '{:.3f}')} | 1.000x | 0.00 | 0 |")
        lines.append(f"| *per-epoch oracle* | {oracle * 100:.1f}% | 1.000 | {_num(mean('oracle_slowdown'), '{:.3f}x')} "
                     f"| - | - |")
        lines.append(f"| *static oracle* | {_num(static * 100, '{:.1f}%')} | {_num(ratio(static, oracle), '{:.3f}')} "
                     f"| n/a | - | - |")
    return "\n".join(lines) + "\n"


def plot(results: dict, outdir: str) -> list[str]:
    """Per share, a grouped bar chart of the ratio to the per-epoch oracle per workload and policy/mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    os.makedirs(outdir, exist_ok=True)
    hosts = results["hosts"]
    runs = [r for r in RUNS if any(h["run"] == r for h in hosts)]
    workloads = [w for w in WORKLOADS if any(h["workload"] == w for h in hosts)]
    files = []
    for s in sorted({h["share"] for h in hosts}):
        cell = {(h["workload"], h["run"]): ratio(h["dram_share"], h["oracle_share"]) for h in hosts if h["share"] == s}
        fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(workloads) + 2), 3.8))
        width = 0.8 / len(runs)
        x = np.arange(len(workloads))
        for i, run in enumerate(runs):
            ax.bar(x + (i - (len(runs) - 1) / 2) * width, [cell.get((w, run), np.nan) for w in workloads], width,
                   label=run)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        ax.set_xticks(x, workloads, rotation=20)
        ax.set_ylabel("DRAM share / per-epoch oracle")
        ax.set_ylim(0, 1.1)
        ax.set_title(f"DRAM = 1/{s} of the footprint")
        ax.legend(fontsize=7, ncol=4, loc="lower left")
        fig.tight_layout()
        files.append(os.path.join(outdir, f"ratio_share_1-{s}.png"))
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    return files


def command_line(cfg: SuiteConfig, out: str, json_path: str | None, plots: str | None, quick: bool) -> str:
    """The canonical command that reproduces a run."""
    parts = ["pagetide", "bench"]
    if quick:
        parts.append("--quick")
    default = QUICK if quick else SuiteConfig()
    if cfg.workloads != default.workloads:
        parts += ["--workloads", ",".join(cfg.workloads)]
    if cfg.shares != default.shares:
        parts += ["--shares", ",".join(map(str, cfg.shares))]
    if cfg.runs != default.runs:
        parts += ["--policies", ",".join(cfg.runs)]
    for flag, v, d in (("--rounds", cfg.rounds, default.rounds), ("--footprint", cfg.footprint_mib, default.footprint_mib),
                       ("--seed", cfg.seed, default.seed), ("--agents", cfg.agents, default.agents)):
        if v != d:
            parts += [flag, f"{v}MiB" if flag == "--footprint" else str(v)]
    parts += ["--out", out]
    if json_path:
        parts += ["--json", json_path]
    if plots:
        parts += ["--plots", plots]
    return shlex.join(parts)


# --------------------------------------------------------------------------------------------- shell

def trace_pages(names: list[str]) -> dict[str, int]:
    """Pages of shipped traces, from `pagetide trace info` (the agent's CLI; the controller imports no agent
    code)."""
    procs = {n: subprocess.Popen([sys.executable, "-m", "pagetide.controller.cli", "trace", "info", n],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in names}
    out = {}
    for n, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        m = re.search(r": (\d+) pages", stdout)
        if p.returncode or not m:
            raise RuntimeError(f"pagetide trace info {n} failed: {stderr.strip() or stdout.strip()}")
        out[n] = int(m.group(1))
    return out


async def run_one(run: str, cases: list[HostCase], cfg: SuiteConfig, tmp: str) -> list[dict]:
    """Every case of the grid under one policy or kernel mode: one Controller, cfg.rounds rounds."""
    from pagetide.controller.controller import Controller
    from pagetide.controller.policy import VmPolicy
    from pagetide.controller.sim import agent_command, launch_agents, stop_agents

    files = []
    for c in cases:
        path = os.path.join(tmp, f"{c.host_id(run)}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(scenario_for(c, run), f, sort_keys=False)
        files.append(path)
    n_procs = max(1, min(cfg.agents, len(files)))
    cmds = [agent_command(*[a for p in files[i::n_procs] for a in ("--scenario", p)]) for i in range(n_procs)]
    agents = launch_agents(cmds)
    ctl = None
    try:
        ctl = Controller({h: f"127.0.0.1:{a.port}" for a in agents for h in a.hosts}, policy=RUNS[run][0])
        await ctl.start()
        for c in cases:
            for vm, w in c.weights.items():
                ctl.set_policy(c.host_id(run), vm, VmPolicy(weight=w))
        topo = next(iter(ctl.topologies.values()))
        ticks = max(1, round(topo.period_ns / topo.tick_ns))
        for _ in range(cfg.rounds):
            await ctl.round(advance_ticks=ticks)
        stats = await ctl.refresh_stats()
    finally:
        if ctl is not None:
            ctl.shutdown()
        stop_agents(agents)
    out = []
    for c in cases:
        st = stats[c.host_id(run)]
        tenants = [{k: getattr(t, k) for k in ("accesses", "static_oracle_share", "oracle_slowdown", "migrated_bytes",
                                               "pingpong")} for t in st.tenants]
        stats_d = {"dram_share": st.dram_share, "oracle_share": st.oracle_share, "slowdown": st.slowdown,
                   "tenants": tenants}
        out.append({"run": run, "policy": RUNS[run][0], "kernel": RUNS[run][1], "workload": c.workload,
                    "share": c.share, "host": c.host_id(run), **host_result(stats_d)})
    return out


async def run_suite(cfg: SuiteConfig, progress=None) -> dict:
    from pagetide.controller.sim import init_ray

    init_ray()
    traces = [w for w in cfg.workloads if w in TRACES]
    cases = suite(cfg, trace_pages(traces) if traces else {})
    t0 = time.perf_counter()
    hosts = []
    with tempfile.TemporaryDirectory(prefix="pagetide-bench-") as tmp:
        for i, run in enumerate(cfg.runs):
            r0 = time.perf_counter()
            hosts += await run_one(run, cases, cfg, tmp)
            if progress:
                progress(f"{run}: {len(cases)} hosts x {cfg.rounds} rounds in {time.perf_counter() - r0:.1f} s "
                         f"({i + 1}/{len(cfg.runs)})")
    return {"rounds": cfg.rounds, "seed": cfg.seed, "footprint_mib": cfg.footprint_mib,
            "wall_seconds": time.perf_counter() - t0, "hosts": hosts}


def _csv(choices, cast=str):
    def parse(text: str) -> tuple:
        items = tuple(cast(x.strip()) for x in text.split(",") if x.strip())
        bad = [x for x in items if x not in choices]
        if not items or bad:
            raise argparse.ArgumentTypeError(f"unknown {bad or text!r}; valid: {', '.join(map(str, choices))}")
        return items
    return parse


def config_from_args(args: argparse.Namespace) -> SuiteConfig:
    base = QUICK if args.quick else SuiteConfig()
    return SuiteConfig(workloads=args.workloads or base.workloads, shares=args.shares or base.shares,
                       runs=args.policies or base.runs, rounds=args.rounds or base.rounds,
                       footprint_mib=(args.footprint >> 20) if args.footprint else base.footprint_mib,
                       seed=args.seed, agents=args.agents)


def cmd_bench(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    log = lambda msg: print(f"pagetide bench: {msg}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    results = asyncio.run(run_suite(cfg, progress=log))
    results["wall_seconds"] = time.perf_counter() - t0
    results["command"] = command_line(cfg, args.out, args.json, args.plots, args.quick)
    text = report(results)
    with open(args.out, "w") as f:
        f.write(text)
    log(f"wrote {args.out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        log(f"wrote {args.json}")
    if args.plots:
        for p in plot(results, args.plots):
            log(f"wrote {p}")
    for run, by in summary(results).items():
        print(f"{run:17s} " + "  ".join(f"1/{s}: {v:.3f}" for s, v in by.items()))
    return 0


def add_parser(sub) -> None:

    p = sub.add_parser("bench", help="benchmark suite: every workload x DRAM share under every policy and kernel mode")
    p.add_argument("--quick", action="store_true",
                   help=f"CI size: {', '.join(QUICK.workloads)} at DRAM 1/{QUICK.shares[0]}, {QUICK.rounds} rounds, "
                        f"{QUICK.footprint_mib} MiB hosts")
    p.add_argument("--workloads", type=_csv(WORKLOADS), help=f"comma-separated subset of {', '.join(WORKLOADS)}")
    p.add_argument("--shares", type=_csv(SHARES, int), help="DRAM shares as denominators, e.g. 2,4,8 (default)")
    p.add_argument("--policies", type=_csv(tuple(RUNS)), help=f"runs, comma-separated: {', '.join(RUNS)} (default all)")
    p.add_argument("--rounds", type=int, help="controller rounds of 1 s simulated time (default 30; quick 8)")
    p.add_argument("--footprint", type=parse_size, help="synthetic workloads' footprint (default 256MiB; quick 64MiB)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--agents", type=int, default=2, help="agent processes per run (default 2)")
    p.add_argument("--out", default="BENCHMARKS-suite.md", help="Markdown report (default BENCHMARKS-suite.md)")
    p.add_argument("--json", help="also write the results as JSON")
    p.add_argument("--plots", help="directory for PNG charts")
    p.set_defaults(func=cmd_bench)
