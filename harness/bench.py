"""`pagetide bench`: the benchmark suite -- every workload at several DRAM shares, under every placement policy
and kernel tiering mode, next to the reference runs (DESIGN.md sections 4 and 5).

The suite is a grid of hosts, one per (workload, DRAM share): the synthetic workloads, the shipped traces (and
any .pgtrace file given to --workloads) and a multi-VM host mix, each on a host whose DRAM is 1/2, 1/4 or 1/8 of
its footprint (the slow tier holds the rest plus headroom). One *run* per policy or kernel mode packs every host
of the grid into one or two `pagetide agent --clock driven` processes (scenario YAML files written to a
temporary directory, host names `<workload>-s<denominator>-<run>`), drives them with one Controller for N rounds
and reads GetStats at the end. Controller policies run on a kernel that only demotes (tiering `none`); the
kernel-only modes run the `none` policy, which moves nothing. The references come from the same GetStats:
all-DRAM (slowdown 1 by definition), the per-epoch oracle and the static oracle.

Suite generation, aggregation and the report are pure functions of plain dicts; `run_suite` is the shell
that starts processes. It drives the agents and the controller as `pagetide sim` does (harness/drive.py):
the agents through their CLI, the documented scenario schema and SimulationService, the controller in process.
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
from dataclasses import dataclass, field, replace

import yaml

from pagetide.agent.scanner import KERNEL_WALK_PAGES_PER_S
from pagetide.agent.traces.format import SUFFIX
from pagetide.common.units import parse_size


MiB = 1 << 20
HUGE = 2 * MiB                  # node capacities and trace footprints are multiples of 2 MiB (the schema's rule)
PAGE = 4096

SYNTHETIC = ("zipf", "hotset", "drift", "scan+hot", "idle-vm", "write-heavy", "phases")
TRACES = ("sort", "python-dict", "sqlite-index")
MIX = "mix"
# bandwidth-bound: a GUPS-like hot set at BANDWIDTH_RATE accesses/s -- 64 B each, 115 GB/s, more than the
# DRAM node's 100 GB/s -- so packing the hot set into DRAM saturates it (loaded latency: agent/bandwidth.py)
BANDWIDTH = "hotset-bw"
BANDWIDTH_RATE = 1.8e9
TRACE_RATE = 50e6               # accesses/s of a trace host, all its copies together (a workload's default rate)
WORKLOADS = SYNTHETIC + TRACES + (MIX, BANDWIDTH)
SHARES = (2, 4, 8)              # DRAM = footprint / denominator

# NBT's promotion rate limit for the "nbt-ratelimit" run. Linux's default (65536 MB/s) never binds; a limit
# that does, scaled to the suite's 256 MiB hosts: ~1.6% of the footprint per second.
RATE_LIMIT_MIB = 4

# run name -> (controller policy, kernel settings of every host in that run)
CONTROLLER_RUNS = {
    "pagetide": ("pagetide", {"tiering": {"mode": "none"}}),
    "memory-optimizer": ("memory-optimizer", {"tiering": {"mode": "none"}}),
    "memtierd": ("memtierd", {"tiering": {"mode": "none"}}),
    "hemem": ("hemem", {"tiering": {"mode": "none"}}),
    "memtis": ("memtis", {"tiering": {"mode": "none"}}),
    # pagetide's policy on hosts whose tracker is the adaptive one (host configuration, HOST_SETTINGS)
    "pagetide-adaptive": ("pagetide", {"tiering": {"mode": "none"}}),
    "pagetide-pebs": ("pagetide", {"tiering": {"mode": "none"}}),
    "pagetide-chmu": ("pagetide", {"tiering": {"mode": "none"}}),
    "pagetide-pebs-decayed": ("pagetide", {"tiering": {"mode": "none"}}),
    "pagetide-hint-faults": ("pagetide", {"tiering": {"mode": "none"}}),
}
# run name -> host settings besides the kernel's (scenario `host:` keys). HeMem and MEMTIS keep their published
# signal, sampled loads: their hosts run the pebs tracker at its default period (1 in 4,000).
HOST_SETTINGS = {"pagetide-adaptive": {"tracker": "idle_pages-adaptive"}, "pagetide-pebs": {"tracker": "pebs"},
                 "pagetide-chmu": {"tracker": "chmu"}, "hemem": {"tracker": "pebs"}, "memtis": {"tracker": "pebs"},
                 "pagetide-pebs-decayed": {"tracker": "pebs-decayed"},
                 "pagetide-hint-faults": {"tracker": "hint_faults"}}
TRACKER_RUNS = {"idle_pages": "pagetide", "idle_pages-adaptive": "pagetide-adaptive", "pebs": "pagetide-pebs",
                "chmu": "pagetide-chmu", "pebs-decayed": "pagetide-pebs-decayed", "hint_faults": "pagetide-hint-faults"}
KERNEL_RUNS = {
    "demotion": ("none", {"tiering": {"mode": "none"}}),
    "nbt": ("none", {"tiering": {"mode": "nbt"}}),
    "nbt-ratelimit": ("none", {"tiering": {"mode": "nbt", "promote_rate_limit": f"{RATE_LIMIT_MIB}MiB/s"}}),
    "tpp": ("none", {"tiering": {"mode": "tpp"}}),
    # samples/damon/mtier.c's schemes, quotas and goals (99.7% of DRAM used, 0.5% free), applied at every
    # aggregation by one kdamond per DRAM node, the kdamonds started a minute before the workload as the
    # authors run them: started on a DRAM node already full, migrate_hot's quota would need ~1600 1 s windows
    # to grow from 1 byte. mtier.c's own 1 s apply_interval, intervals tuning and per-node kdamonds are
    # options of the mode (agent/damon.py, "Consequences" 1, 3 and 4)
    "damos": ("none", {"tiering": {"mode": "damos", "kdamond_lead": "60s"}}),
    "first-touch": ("none", {"tiering": {"mode": "none"}, "zonelist": "unified", "demotion_enabled": False}),
}
RUNS = {**CONTROLLER_RUNS, **KERNEL_RUNS}
REFERENCES = ("all-DRAM", "per-epoch oracle", "static oracle")

# The multi-VM host: VMs of different sizes (fractions of the host's footprint) and priorities (VmPolicy
# weight, which pagetide's DRAM split honours and the baselines ignore).
MIX_VMS = (("vm-web", "zipf", 0.375, 2.0), ("vm-kv", "hotset", 0.25, 1.0), ("vm-idle", "idle-vm", 0.25, 1.0),
           ("vm-batch", "scan+hot", 0.125, 0.5))

TOPOLOGY_WAIT_S = 120          # how long a run waits for a first host's topology (its ticks per period)
TICKS_PER_ROUND = 10            # host_scenario's 100 ms ticks in a 1 s period
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
    touched_pages: int = 0          # 4 KiB pages the run touches (traces; synthetic hosts: every page)

    def host_id(self, run: str) -> str:
        return f"{slug(workload_label(self.workload))}-s{self.share}-{run}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def trace_workloads(workloads: tuple[str, ...] | list[str]) -> list[str]:
    """The workloads that replay a trace: the shipped traces' names and paths of users' trace files."""
    return [w for w in workloads if w not in SYNTHETIC and w not in (MIX, BANDWIDTH)]


def workload_label(workload: str) -> str:
    """What a workload's hosts are named after: its name, or a trace file's name without `.pgtrace`."""
    return workload if workload in WORKLOADS else os.path.basename(workload).removesuffix(SUFFIX)


def round_up(x: int, to: int) -> int:
    return -(-x // to) * to


def fmt_mib(b: int) -> str:
    """Bytes (a multiple of 1 KiB) as a scenario size."""
    return f"{b // MiB}MiB" if b % MiB == 0 else f"{b // 1024}KiB"


# ----------------------------------------------------------------------------------------- suite (pure)

TRACE_TOLERANCE = 0.01          # a trace host's DRAM is within 1% of its touched pages / share
MAX_TRACE_COPIES = 64


def trace_copies(touched: int, share: int) -> tuple[int, int]:
    """(copies, DRAM bytes) for a trace whose run touches `touched` 4 KiB pages: DRAM is 1/share of the
    pages the copies touch -- not of their footprint, which rounds each copy up to 2 MiB and counts pages
    never touched (traces are not prefaulted) -- rounded to the 2 MiB a node's capacity comes in. The
    fewest copies whose rounding error is within TRACE_TOLERANCE, else the closest within MAX_TRACE_COPIES."""
    best = None
    for c in range(1, MAX_TRACE_COPIES + 1):
        want = touched * c * PAGE / share
        dram = max(HUGE, round(want / HUGE) * HUGE)
        err = abs(dram - want) / want
        if best is None or err < best[2]:
            best = (c, dram, err)
        if err <= TRACE_TOLERANCE:
            break
    return best[0], best[1]


def host_scenario(tenants: list[dict], share: int, seed: int, rounds: int, dram: int | None = None) -> dict:
    """A scenario mapping with DRAM = footprint / share (or `dram` bytes) and the slow node the rest plus 1/8
    headroom."""
    footprint = sum(parse_size(t["footprint"]) for t in tenants)
    dram = footprint // share if dram is None else dram
    assert dram % HUGE == 0, (footprint, share)
    slow = round_up(footprint - dram + max(HUGE, footprint // 8), HUGE)
    return {
        "seed": seed, "tick": "100ms", "epoch": "1s", "duration": f"{rounds + 5}s",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": fmt_mib(dram), "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": fmt_mib(slow)}],
                 "kernel": {"swap": fmt_mib(round_up(footprint, HUGE))}},
        "tenants": tenants,
    }


def suite(cfg: SuiteConfig, trace_pages: dict[str, tuple[int, int]]) -> list[HostCase]:
    """Every (workload, share) host of the grid. trace_pages: per trace in cfg.workloads, (4 KiB pages in its
    address map, pages a run of cfg.rounds periods touches)."""
    fp = cfg.footprint_mib * MiB
    cases = []
    for w in cfg.workloads:
        for share in cfg.shares:
            seed = cfg.seed * 1000 + len(cases)
            weights = {}
            dram = None
            if w in SYNTHETIC:
                tenants = [{"name": "vm0", "footprint": fmt_mib(fp), "workload": {"type": w, "samples": SAMPLES}}]
            elif w in trace_pages:
                npages, touched = trace_pages[w]
                tfp = round_up(npages * PAGE, HUGE)
                copies, dram = trace_copies(touched, share)
                path = w if w in TRACES else os.path.abspath(w)     # the agents may run elsewhere
                # the copies only make DRAM a whole number of 2 MiB: together they make one program's
                # accesses (one tenant's default rate), so their bandwidth is not multiplied by their number
                tenants = [{"name": f"t{i}", "kind": "task", "footprint": fmt_mib(tfp), "prefault": False,
                            "workload": {"type": "trace", "path": path, "samples": SAMPLES,
                                         "rate": TRACE_RATE / copies}}
                           for i in range(copies)]
            elif w == MIX:
                total = fp * 3 // 2
                tenants = [{"name": name, "footprint": fmt_mib(round_up(int(total * frac), 16 * MiB)),
                            "workload": {"type": wl, "samples": SAMPLES}} for name, wl, frac, _ in MIX_VMS]
                weights = {name: wt for name, _, _, wt in MIX_VMS if wt != 1.0}
            elif w == BANDWIDTH:
                tenants = [{"name": "vm0", "footprint": fmt_mib(fp),
                            "workload": {"type": "hotset", "rate": BANDWIDTH_RATE, "samples": SAMPLES}}]
            else:
                raise ValueError(f"unknown workload {w!r}; valid: {', '.join(WORKLOADS)} or a trace file")
            touched = (trace_pages[w][1] * len(tenants) if w in trace_pages
                       else sum(parse_size(t["footprint"]) for t in tenants) // PAGE)
            cases.append(HostCase(w, share, host_scenario(tenants, share, seed, cfg.rounds, dram), weights,
                                  touched))
    return cases


def scenario_for(case: HostCase, run: str) -> dict:
    """The case's scenario under a run: its name and the run's kernel settings."""
    d = json.loads(json.dumps(case.scenario))
    d["name"] = case.host_id(run)
    d["host"]["kernel"].update(json.loads(json.dumps(RUNS[run][1])))
    d["host"].update(HOST_SETTINGS.get(run, {}))
    return d


# ------------------------------------------------------------------------------------- results (pure)

def host_result(stats: dict, weights: dict[str, float] | None = None) -> dict:
    """One host's numbers from its GetStats (as a dict): host-level shares and slowdown; the static oracle
    and the oracle's slowdown are the tenants' access-weighted means (exact for single-tenant hosts). With
    VM weights (priorities), also the priority-weighted DRAM-served share, sum(w a s) / sum(w a) over VMs
    with a accesses and s their DRAM-served share, and the same for the per-epoch oracle's placement."""
    tenants = stats["tenants"]
    acc = sum(t["accesses"] for t in tenants) or 1.0
    wmean = lambda k: sum(t[k] * t["accesses"] for t in tenants) / acc
    out = {"dram_share": stats["dram_share"], "oracle_share": stats["oracle_share"],
           "static_oracle_share": wmean("static_oracle_share"), "slowdown": stats["slowdown"],
           "oracle_slowdown": wmean("oracle_slowdown"),
           "migrated_bytes": sum(t["migrated_bytes"] for t in tenants),
           "promoted_bytes": sum(t.get("promoted_bytes", 0) for t in tenants),
           "pingpong": sum(t["pingpong"] for t in tenants),
           # lag-one oracles (agent/accounting.py); absent in results of agents that predate them
           "lag_oracle_share": stats.get("lag_oracle_share", float("nan")),
           "lag_cost_slowdown": stats.get("lag_cost_slowdown", float("nan")),
           "vms": {t["name"]: {k: t[k] for k in ("accesses", "dram_share", "oracle_share", "migrated_bytes")}
                   for t in tenants if "name" in t}}
    if weights:
        w = [weights.get(t["name"], 1.0) * t["accesses"] for t in tenants]
        total = sum(w) or 1.0
        out["weighted_share"] = sum(x * t["dram_share"] for x, t in zip(w, tenants)) / total
        out["weighted_oracle_share"] = sum(x * t["oracle_share"] for x, t in zip(w, tenants)) / total
    return out


def ratio(share: float, oracle: float) -> float:
    return share / oracle if oracle else float("nan")


def lag_ratio(h: dict) -> float:
    """DRAM-served share over the lag-one oracle's (migration free)."""
    return ratio(h["dram_share"], h.get("lag_oracle_share", float("nan")))


def lag_cost_ratio(h: dict) -> float:
    """The lag-one oracle's modelled memory time, paying migration, over the run's: 1.0 = as fast, below 1 slower."""
    lag = h.get("lag_cost_slowdown", float("nan"))
    return lag / h["slowdown"] if h["slowdown"] else float("nan")


def summary(results: dict, of=None) -> dict[str, dict[int, float]]:
    """Mean ratio to the per-epoch oracle (or `of(host)`) per run and share, over the workloads."""
    of = of or (lambda r: ratio(r["dram_share"], r["oracle_share"]))
    out: dict[str, dict[int, list[float]]] = {}
    for r in results["hosts"]:
        out.setdefault(r["run"], {}).setdefault(r["share"], []).append(of(r))
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
             "over all-DRAM. DRAM 1/s: synthetic hosts (prefaulted: every page touched) get 1/s of their "
             "footprint; trace hosts 1/s of the pages the run touches (copies of the trace chosen so that this is a "
             "whole number of 2 MiB within 1%; footprints, rounded up to 2 MiB per copy, are not counted). "
             "Controller policies run on a kernel that demotes only (tiering `none`); kernel-only "
             "modes run with no controller moves. A static oracle shown as n/a was not reported by the agent. "
             "Lag-one: each epoch DRAM holds the pages the per-epoch oracle chose for the previous epoch (a reactive "
             "policy with a perfect signal); 'vs lag-one' is the DRAM-served share over its share (migration free), "
             "'vs lag-one+cost' its modelled memory time, paying the model's migration cost, over the run's (1.0: as "
             "fast).", "",
             "## Mean ratio to the per-epoch oracle", "",
             "| policy / mode | " + " | ".join(f"DRAM 1/{s}" for s in shares) + " |",
             "|---|" + "---|" * len(shares)]
    summ = summary(results)
    for run in runs:
        lines.append(f"| {run} | " + " | ".join(_num(summ[run].get(s, float('nan')), "{:.3f}") for s in shares) + " |")
    for title, of in (("Mean ratio to the lag-one oracle (DRAM-served share, migration free)", lag_ratio),
                      ("Mean ratio to the lag-one oracle paying migration (its memory time over the run's)",
                       lag_cost_ratio)):
        summ = summary(results, of)
        lines += ["", f"## {title}", "", "| policy / mode | " + " | ".join(f"DRAM 1/{s}" for s in shares) + " |",
                  "|---|" + "---|" * len(shares)]
        for run in runs:
            lines.append(f"| {run} | " + " | ".join(_num(summ[run].get(s, float('nan')), "{:.3f}") for s in shares)
                         + " |")
    lines += report_head(results)
    by_case: dict[tuple[str, int], dict[str, dict]] = {}
    for h in hosts:
        by_case.setdefault((h["workload"], h["share"]), {})[h["run"]] = h
    order = {w: i for i, w in enumerate(WORKLOADS)}
    for (w, s), per_run in sorted(by_case.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        lines += ["", f"## {w}, DRAM 1/{s}", "",
                  "| policy / mode | DRAM-served share | ratio to oracle | vs lag-one | vs lag-one+cost | "
                  "slowdown vs all-DRAM | GiB migrated | ping-pong |",
                  "|---|---|---|---|---|---|---|---|"]
        for run in runs:
            h = per_run.get(run)
            if h is None:
                continue
            lines.append(f"| {run} | {_num(h['dram_share'] * 100, '{:.1f}%')} | "
                         f"{_num(ratio(h['dram_share'], h['oracle_share']), '{:.3f}')} | "
                         f"{_num(lag_ratio(h), '{:.3f}')} | {_num(lag_cost_ratio(h), '{:.3f}')} | "
                         f"{_num(h['slowdown'], '{:.3f}x')} | {h['migrated_bytes'] / (1 << 30):.2f} | "
                         f"{h['pingpong']:,} |")
        refs = list(per_run.values())
        mean = lambda k: sum(r[k] for r in refs) / len(refs)
        oracle = mean("oracle_share")
        static = mean("static_oracle_share")
        lag = mean("lag_oracle_share") if all("lag_oracle_share" in r for r in refs) else float("nan")
        lag_cost = mean("lag_cost_slowdown") if all("lag_cost_slowdown" in r for r in refs) else float("nan")
        lines.append(f"| *all-DRAM* | 100.0% | {_num(ratio(1.0, oracle), '{:.3f}')} | - | - | 1.000x | 0.00 | 0 |")
        lines.append(f"| *per-epoch oracle* | {oracle * 100:.1f}% | 1.000 | - | - | "
                     f"{_num(mean('oracle_slowdown'), '{:.3f}x')} | - | - |")
        lines.append(f"| *static oracle* | {_num(static * 100, '{:.1f}%')} | {_num(ratio(static, oracle), '{:.3f}')} "
                     f"| - | - | n/a | - | - |")
        lines.append(f"| *lag-one oracle* | {_num(lag * 100, '{:.1f}%')} | {_num(ratio(lag, oracle), '{:.3f}')} "
                     f"| 1.000 | - | n/a | - | - |")
        lines.append(f"| *lag-one oracle + migration cost* | {_num(lag * 100, '{:.1f}%')} | "
                     f"{_num(ratio(lag, oracle), '{:.3f}')} | - | 1.000 | {_num(lag_cost, '{:.3f}x')} | - | - |")
        if any("weighted_share" in h for h in per_run.values()):
            lines += ["", "Priority-weighted DRAM-served share (VM weights as the host's priorities) / the oracle's: " +
                      ", ".join(f"{run} {h['weighted_share'] * 100:.1f}% / {h['weighted_oracle_share'] * 100:.1f}%"
                                for run in runs if (h := per_run.get(run)) and "weighted_share" in h), ""]

    return "\n".join(lines) + "\n"


def report_head(results: dict) -> list[str]:
    """Summary sections that go between the mean-ratio table and the per-case tables."""
    from pagetide.harness.trackers import table_lines

    lines = (trends(results) + targets(results) + table_lines(results.get("trackers", {}), summary(results), TRACKER_RUNS)
             + speed_table(results.get("speed", {})))
    for path in results.get("plots", []):
        lines += ["", f"![{os.path.basename(path)}]({path})"]
    return lines


BASELINES = ("memory-optimizer", "memtierd", "hemem", "memtis", "demotion", "nbt", "nbt-ratelimit", "tpp", "damos",
             "first-touch")
KERNEL_TIERING = ("nbt", "nbt-ratelimit", "tpp", "damos")
HOTNESS_ONLY = ("memory-optimizer", "memtierd", "hemem", "memtis", "nbt", "nbt-ratelimit", "tpp")
RATE_LIMIT_COST = 0.05          # "little cost": memory time at most 5% longer on average
COLLOID_GAIN = 1.2              # a gain worth the name: memory time 1.2x shorter than the best hotness-only run
STABLE = ("zipf", "hotset", "idle-vm")
CACHE_LIKE = ("zipf", 4)        # the 1:4 cache-like case: a Zipf key-value cache with DRAM 1/4 of its footprint

WHY_NOT = {
    "rate-limit": "the cut is there, the little cost is not, in steady state: the limited NBT's memory time is "
                  "more than 5% longer over the last window of the long runs (see the row's figures per host in the "
                  "JSON, rate_limit_steady).",
    "rate-limit-30s": "the 30 s grid runs end while the limited NBT is still moving the hot set in and before the "
                      "hot threshold's first adjustment (every 60 s), so they measure the transient; the long runs "
                      "above are the published comparison. The transient is slow for a second reason, which the "
                      "kernel shares: the limit counts promotion candidates (pgpromote_candidate) before the room "
                      "check, and each scan arms the whole slow tier at once, so the hot pages fault together and "
                      "the first 1,024 candidates of each second use up the 4 MiB/s while DRAM has room for only "
                      "what kswapd freed to its promotion watermark; on zipf at DRAM 1/4 the limited NBT promotes 82 "
                      "pages a second in its first 30 s (of ~6,400 candidates), the unlimited 738.",
    "tpp-local": "TPP's promotion filter needs a page to fault twice (once to be activated, once to promote) and "
                 "NUMA scanning arms only 256 MB per second, so on a Zipf workload the long warm tail is promoted "
                 "slowly; the published numbers are for Meta's cache services, whose hot sets are smaller and "
                 "more stable than a Zipf(0.99) key space.",
    "first-touch": "the model charges every access its node's loaded latency in full, as if each one stalled the "
                   "program alone: it has no memory-level parallelism, and OSDI'25's point is that slow accesses "
                   "overlapped with others cost far less than their latency (its amortized offcore latency), so "
                   "much of what tiering promotes is not performance-critical. Its migration costs -- the copy at "
                   "the slower side's loaded bandwidth, 2 us of unmap/TLB shootdown per page, 1 us per hint fault "
                   "-- are small next to the 225 ns saved on every access to a promoted hot page, and it has no "
                   "migration lock contention and no TLB misses after unmapping. Only on the bandwidth-bound host "
                   "do costs of placement dominate, and there first-touch saturates the slow tier.",
    "colloid": "pagetide's search starts only once DRAM has been measured the slower tier (a period after the "
               "fact) and moves one bisection step per period, so in a short run the periods before it settles "
               "-- first touch saturating the slow tier, then DRAM -- weigh on the memory time as much as the "
               "balanced state after.",
}


def _cells(hosts: list[dict]) -> dict[tuple[str, int, str], dict]:
    return {(h["workload"], h["share"], h["run"]): h for h in hosts}


def trends(results: dict) -> list[str]:
    """Markdown: the published trends of DESIGN.md sections 2 and 4 next to this run's numbers, each marked
    as reproduced or not, with the reason where not. Rows whose runs are missing are left out."""
    hosts = results["hosts"]
    cell = _cells(hosts)
    runs = {h["run"] for h in hosts}
    rows, notes = [], []

    steady = results.get("rate_limit_steady")
    if {"nbt", "nbt-ratelimit"} <= runs or steady:
        grid = ""
        if {"nbt", "nbt-ratelimit"} <= runs:
            pairs = [(cell[(w, s, "nbt")], cell[(w, s, "nbt-ratelimit")]) for (w, s, r) in cell
                     if r == "nbt" and (w, s, "nbt-ratelimit") in cell]
            free = sum(a["promoted_bytes"] for a, _ in pairs)
            lim = sum(b["promoted_bytes"] for _, b in pairs)
            cost = sum(a["dram_share"] - b["dram_share"] for a, b in pairs) / len(pairs)
            # the cost that counts is performance: memory time (accesses at loaded latency, copies, shootdowns)
            slower = sum(b["slowdown"] / a["slowdown"] for a, b in pairs) / len(pairs) - 1
            cut = free / lim if lim else float("inf")
            ok = cut >= 2 and slower <= RATE_LIMIT_COST
            grid = (f"{free / (1 << 30):.2f} -> {lim / (1 << 30):.2f} GiB promoted ({cut:.1f}x less), DRAM-served "
                    f"share {abs(cost) * 100:.1f} points {'lower' if cost >= 0 else 'higher'}, memory time "
                    f"{abs(slower) * 100:.1f}% {'longer' if slower >= 0 else 'shorter'} on average over {len(pairs)} "
                    f"hosts")
        this = f"{RATE_LIMIT_MIB} MiB/s limit: {grid}"
        if steady:
            from pagetide.harness.steady import summarize

            m = summarize(steady)
            grid_ok = ok if grid else None
            ok = m["cut"] >= 2 and m["slower"] <= RATE_LIMIT_COST
            this = (f"{RATE_LIMIT_MIB} MiB/s limit, steady state (the last {m['window']} s of {m['seconds']} s runs "
                    f"on {m['hosts']} stable hosts): {m['free_bytes'] / (1 << 20):.0f} -> {m['limited_bytes'] / (1 << 20):.0f} "
                    f"MiB promoted ({m['cut']:.1f}x less), DRAM-served share {abs(m['share_lost']) * 100:.1f} points "
                    f"{'lower' if m['share_lost'] >= 0 else 'higher'}, memory time {abs(m['slower']) * 100:.1f}% "
                    f"{'longer' if m['slower'] >= 0 else 'shorter'} on average"
                    + (f"; the 30 s grid runs: {grid}" if grid else ""))
            if grid and not grid_ok:
                notes.append(f"- Rate limit, 30 s runs: {WHY_NOT['rate-limit-30s']}")
        rows.append(f"| NBT's promotion rate limit cuts promotion traffic several-fold at little cost (Linux 6.1) "
                    f"| several-fold less promotion traffic, small loss | {this} | {'yes' if ok else 'no'} |")
        if not ok:
            notes.append(f"- Rate limit: {WHY_NOT['rate-limit']}")

    w, s = CACHE_LIKE
    if (w, s, "tpp") in cell:
        h = cell[(w, s, "tpp")]
        ok = h["dram_share"] >= 0.72
        rows.append(f"| TPP keeps a 1:4 cache-like workload mostly local (ASPLOS'23) | 85% / 72% of accesses "
                    f"local (Cache1 / Cache2 at 1:4), 1.5-5% from all-local throughput | TPP on {w} at DRAM 1/{s}: "
                    f"{h['dram_share'] * 100:.1f}% local, memory time {h['slowdown']:.2f}x all-DRAM | "
                    f"{'yes' if ok else 'no'} |")
        if not ok:
            notes.append(f"- TPP locality: {WHY_NOT['tpp-local']}")

    eighth = [(w, h) for (w, sh, r), h in cell.items() if sh == 8 and r == "first-touch"]
    tiering = [r for r in KERNEL_TIERING + tuple(CONTROLLER_RUNS) if r in runs]
    if eighth and tiering:
        # ahead = performance: memory time no longer than the best tiering run's on that workload
        wins = sum(1 for w, h in eighth
                   if h["slowdown"] <= min(cell[(w, 8, r)]["slowdown"] for r in tiering if (w, 8, r) in cell))
        ft = sum(h["dram_share"] for _, h in eighth) / len(eighth)
        ft_slow = sum(h["slowdown"] for _, h in eighth) / len(eighth)
        mean_slow = {r: sum(cell[(w, 8, r)]["slowdown"] for w, _ in eighth if (w, 8, r) in cell) / len(eighth)
                     for r in tiering}
        top = min(mean_slow, key=mean_slow.get)
        top_share = sum(cell[(w, 8, top)]["dram_share"] for w, _ in eighth if (w, 8, top) in cell) / len(eighth)
        ok = wins * 2 > len(eighth)
        rows.append(f"| First-touch (no migration) beats tiering when the slow tier holds most memory (OSDI'25) "
                    f"| first-touch ahead at high slow ratios | DRAM 1/8: first-touch serves {ft * 100:.1f}% from "
                    f"DRAM at {ft_slow:.2f}x all-DRAM memory time, against {top_share * 100:.1f}% at "
                    f"{mean_slow[top]:.2f}x for {top} (mean over workloads); first-touch fastest on {wins} of "
                    f"{len(eighth)} workloads | {'yes' if ok else 'no'} |")
        if not ok:
            notes.append(f"- First-touch: {WHY_NOT['first-touch']}")

    hotness = [r for r in HOTNESS_ONLY if r in runs]     # Colloid's comparison, on the bandwidth-bound host
    gains, parts = [], []
    for s in sorted(s for (w, s, r) in cell if w == BANDWIDTH and r == "pagetide"):
        h = cell[(BANDWIDTH, s, "pagetide")]
        others = {r: cell[(BANDWIDTH, s, r)] for r in hotness if (BANDWIDTH, s, r) in cell}
        if others:
            top = min(others, key=lambda r: others[r]["slowdown"])
            gains.append(others[top]["slowdown"] / h["slowdown"])
            parts.append(f"DRAM 1/{s}: pagetide {h['slowdown']:.2f}x all-DRAM memory time "
                         f"({h['dram_share'] * 100:.1f}% from DRAM), the best hotness-only run {top} "
                         f"{others[top]['slowdown']:.2f}x ({others[top]['dram_share'] * 100:.1f}%): {gains[-1]:.2f}x")
    if gains:
        ok = min(gains) >= COLLOID_GAIN
        rows.append(f"| Balancing loaded latency beats hotness-only placement under load (Colloid, SOSP'24) | "
                    f"up to 2.3x over hotness-only tiering when the fast tier is loaded | {BANDWIDTH} "
                    f"({BANDWIDTH_RATE * 64 / 1e9:.0f} GB/s on a 100 GB/s DRAM node): {'; '.join(parts)} | "
                    f"{'yes' if ok else 'no'} |")
        if not ok:
            notes.append(f"- Loaded latency: {WHY_NOT['colloid']}")
    if not rows:
        return []
    return (["", "## Published trends, side by side (DESIGN.md sections 2 and 4)", "",
             "| trend (source) | published | this run | reproduced |", "|---|---|---|---|"] + rows +
            (["", "Where the model disagrees:", ""] + notes if notes else []))


def targets(results: dict) -> list[str]:
    """Markdown: pagetide against the best baseline per case, and the issue's targets, met or not."""
    hosts = results["hosts"]
    cell = _cells(hosts)
    cases = sorted({(h["workload"], h["share"]) for h in hosts if h["run"] == "pagetide"},
                   key=lambda c: (WORKLOADS.index(c[0]) if c[0] in WORKLOADS else 99, c[1]))
    if not cases:
        return []
    lines = ["", "## pagetide against the best baseline", "",
             "| workload | DRAM | pagetide ratio | best baseline | its ratio | difference | pagetide memory time "
             "| fastest baseline | its memory time |", "|---|---|---|---|---|---|---|---|---|"]
    at_or_above = at_or_faster = 0
    weighted = []
    for w, s in cases:
        p = cell[(w, s, "pagetide")]
        others = {r: cell[(w, s, r)] for r in BASELINES if (w, s, r) in cell}
        if not others:
            continue
        best = max(others, key=lambda r: others[r]["dram_share"])
        fastest = min(others, key=lambda r: others[r]["slowdown"])
        pr, br = ratio(p["dram_share"], p["oracle_share"]), ratio(others[best]["dram_share"], others[best]["oracle_share"])
        at_or_above += pr >= br
        at_or_faster += p["slowdown"] <= others[fastest]["slowdown"]
        lines.append(f"| {w} | 1/{s} | {pr:.3f} | {best} | {br:.3f} | {pr - br:+.3f} | {p['slowdown']:.3f}x | "
                     f"{fastest} | {others[fastest]['slowdown']:.3f}x |")
        if "weighted_share" in p:
            wbest = max(others, key=lambda r: others[r]["weighted_share"])
            wp = ratio(p["weighted_share"], p["weighted_oracle_share"])
            wb = ratio(others[wbest]["weighted_share"], others[wbest]["weighted_oracle_share"])
            weighted.append(f"| {w} (priority-weighted) | 1/{s} | {wp:.3f} | {wbest} | {wb:.3f} | {wp - wb:+.3f} "
                            f"| | | |")
    lines += weighted
    stable = [(w, s, ratio(cell[(w, s, 'pagetide')]['dram_share'], cell[(w, s, 'pagetide')]['oracle_share']))
              for w, s in cases if w in STABLE]
    lines += ["", f"pagetide is at or above the best baseline in {at_or_above} of {len(cases)} cases (unweighted).",
              f"By modelled memory time (slowdown against all-DRAM, which also charges migration, reclaim and hint "
              f"faults), pagetide is at least as fast as the fastest baseline in {at_or_faster} of {len(cases)} cases."]
    if weighted:
        lines.append("Priority-weighted rows weigh each VM's accesses by its VmPolicy weight (the host's "
                     "priorities, which pagetide's DRAM split honours and the baselines ignore), for pagetide's run "
                     "and the baselines' alike.")
    if stable:
        low = [f"{w} 1/{s}: {r:.3f}" for w, s, r in stable if r < 0.95]
        lines.append(f"Stable workloads ({', '.join(STABLE)}) at >= 0.95 of the per-epoch oracle: "
                     f"{len(stable) - len(low)} of {len(stable)}" + (f" (below: {'; '.join(low)})." if low else "."))
    w, s = CACHE_LIKE
    if (w, s, "pagetide") in cell:
        h = cell[(w, s, "pagetide")]
        lines.append(f"1:4 cache-like case ({w} at DRAM 1/{s}): pagetide's modelled memory time is "
                     f"{h['slowdown']:.3f}x all-DRAM; the per-epoch oracle's is {h['oracle_slowdown']:.3f}x.")
    return lines


def speed_table(speed: dict) -> list[str]:
    """Markdown: the speed measurements `measure_speed` made."""
    if not speed:
        return []
    lines = ["", "## Speed", "", f"Host model: `{speed['host_command']}`; controller rounds: "
             f"`{speed['sim_command']}` with N hosts.", "", "| measure | result |", "|---|---|",
             f"| idle_pages scan, fast path | {speed['scan_pages_per_s'] / 1e6:,.0f} M pages/s per core "
             f"({speed['scan_pages_per_s'] / KERNEL_WALK_PAGES_PER_S:.1f}x the kernel's 134 M/s) |",
             f"| simulated page-ticks (one tick of {speed['host_pages']:,} pages: sampled accesses + kswapd) | "
             f"{speed['page_ticks_per_s'] / 1e6:,.0f} M page-ticks/s |",
             f"| suite runs: hosts x pages x ticks over wall time (with gRPC, controller, accounting) | "
             f"{speed['suite_page_ticks_per_s'] / 1e6:,.0f} M page-ticks/s |"]
    for n, r in sorted(speed["rounds"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"| controller round, {n} hosts (median / max) | {r['median'] * 1e3:,.0f} / {r['max'] * 1e3:,.0f} ms; "
                     f"largest report {r['report_bytes'] / 1024:,.0f} KiB |")
    return lines


def plot(results: dict, outdir: str) -> list[str]:
    """Per share, a grouped bar chart of the ratio to the per-epoch oracle per workload and policy/mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    os.makedirs(outdir, exist_ok=True)
    hosts = results["hosts"]
    runs = [r for r in RUNS if any(h["run"] == r for h in hosts)]
    present = list(dict.fromkeys(h["workload"] for h in hosts))
    workloads = [w for w in WORKLOADS if w in present] + [w for w in present if w not in WORKLOADS]
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


def command_line(cfg: SuiteConfig, out: str, json_path: str | None, plots: str | None, quick: bool,
                 no_speed: bool = False, no_trackers: bool = False, no_steady: bool = False) -> str:
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
    if no_speed:
        parts.append("--no-speed")
    if no_trackers:
        parts.append("--no-trackers")
    if no_steady:
        parts.append("--no-steady")
    return shlex.join(parts)


# --------------------------------------------------------------------------------------------- shell

def trace_pages(names: list[str], rounds: int) -> dict[str, tuple[int, int]]:
    """Per trace (a shipped trace's name or a trace file's path), (pages in its address map, pages a run of
    `rounds` periods touches): the suite replays one trace epoch per 100 ms tick, looping, so the first
    rounds x 10 epochs."""
    import numpy as np

    from pagetide.agent.traces.shipped import open_trace

    out = {}
    for n in names:
        tf = open_trace(n)
        seen = np.zeros(tf.npages, dtype=bool)
        for i, e in enumerate(tf.epochs()):
            if i >= rounds * TICKS_PER_ROUND:
                break
            seen[e.pages] = True
        out[n] = (tf.npages, int(seen.sum()))
    return out


async def run_one(run: str, cases: list[HostCase], cfg: SuiteConfig, tmp: str) -> list[dict]:
    """Every case of the grid under one policy or kernel mode: one Controller, cfg.rounds rounds."""
    from pagetide.controller.policies import VmPolicy
    from pagetide.controller.store import PolicyStore
    from pagetide.harness.agents import launch_agents, scenario_commands
    from pagetide.harness.drive import IncompleteRound, controlled, drive

    files = []
    for c in cases:
        path = os.path.join(tmp, f"{c.host_id(run)}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(scenario_for(c, run), f, sort_keys=False)
        files.append(path)
    # the VM weights are in the controller's store before it starts, so every host's first round has them
    # (set after the start, they reached a host's loop one round late or not, with the machine's load)
    store = PolicyStore()
    store.put_policies([(c.host_id(run), vm, VmPolicy(weight=w)) for c in cases for vm, w in c.weights.items()])
    try:
        # strict: every host runs and is reconciled every round (a lagging host would otherwise be set aside and
        # simulate fewer periods than the others, changing its row with the machine's load)
        async with controlled(launch_agents(scenario_commands(files, cfg.agents)), set_aside=False,
                              policy=RUNS[run][0], store=store) as (ctl, sim):
            # on a loaded machine a host's first topology read can miss the controller's start-up deadline; its
            # loop reads it again
            deadline = time.monotonic() + TOPOLOGY_WAIT_S
            while not ctl.topologies:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{run}: no topology from any host after {TOPOLOGY_WAIT_S} s")
                await asyncio.sleep(0.2)
            topo = next(iter(ctl.topologies.values()))
            ticks = max(1, round(topo.period_ns / topo.tick_ns))
            await drive(ctl, sim, cfg.rounds, ticks, strict=True)
            stats = await sim.stats()
    finally:
        store.close()
    missing = sorted(c.host_id(run) for c in cases if c.host_id(run) not in stats)
    if missing:
        raise IncompleteRound(f"{run}: no accounting from {', '.join(missing)} after the last round")
    out = []
    for c in cases:
        st = stats[c.host_id(run)]
        tenants = [{"name": t.tenant, **{k: getattr(t, k) for k in (
                       "accesses", "dram_share", "oracle_share", "static_oracle_share", "oracle_slowdown",
                       "migrated_bytes", "promoted_bytes", "pingpong", "lag_oracle_share", "lag_cost_slowdown")}}
                   for t in st.tenants]
        stats_d = {"dram_share": st.dram_share, "oracle_share": st.oracle_share, "slowdown": st.slowdown,
                   "lag_oracle_share": st.lag_oracle_share, "lag_cost_slowdown": st.lag_cost_slowdown,
                   "tenants": tenants}
        pages = sum(parse_size(t["footprint"]) for t in c.scenario["tenants"]) // PAGE
        out.append({"run": run, "policy": RUNS[run][0], "kernel": RUNS[run][1], "workload": c.workload,
                    "share": c.share, "host": c.host_id(run), "page_ticks": pages * ticks * cfg.rounds,
                    **host_result(stats_d, c.weights)})
    return out


async def run_suite(cfg: SuiteConfig, progress=None) -> dict:
    from pagetide.controller.cluster import init_ray

    init_ray()
    traces = trace_workloads(cfg.workloads)
    cases = suite(cfg, trace_pages(traces, cfg.rounds) if traces else {})
    t0 = time.perf_counter()
    hosts, run_seconds = [], {}
    with tempfile.TemporaryDirectory(prefix="pagetide-bench-") as tmp:
        for i, run in enumerate(cfg.runs):
            r0 = time.perf_counter()
            hosts += await run_one(run, cases, cfg, tmp)
            run_seconds[run] = time.perf_counter() - r0
            if progress:
                progress(f"{run}: {len(cases)} hosts x {cfg.rounds} rounds in {time.perf_counter() - r0:.1f} s "
                         f"({i + 1}/{len(cfg.runs)})")
    return {"rounds": cfg.rounds, "seed": cfg.seed, "footprint_mib": cfg.footprint_mib,
            "wall_seconds": time.perf_counter() - t0, "run_seconds": run_seconds, "hosts": hosts}


def measure_trackers(cfg: SuiteConfig, progress=None) -> dict:
    """The tracker table's figures (harness/trackers.py) for every host of the grid and every tracker."""
    from pagetide.agent.scenario import parse_scenario
    from pagetide.harness.trackers import tracker_table

    traces = trace_workloads(cfg.workloads)
    cases = suite(cfg, trace_pages(traces, cfg.rounds) if traces else {})

    def scenario(c: HostCase, tracker: str):
        d = scenario_for(c, "pagetide")
        d["host"]["tracker"] = tracker
        return parse_scenario(d)

    return tracker_table(cases, scenario, tuple(TRACKER_RUNS), cfg.rounds, progress)


def measure_rate_limit(cfg: SuiteConfig, quick: bool, progress=None) -> list[dict]:
    """NBT with and without the rate limit in steady state (harness/steady.py): the grid's stable workloads at each
    of its shares."""
    from pagetide.agent.scenario import parse_scenario
    from pagetide.harness import steady

    stable = tuple(w for w in cfg.workloads if w in steady.STABLE)
    cases = suite(replace(cfg, workloads=stable), {}) if stable else []
    seconds, window = (steady.QUICK_SECONDS, steady.QUICK_WINDOW) if quick else (steady.SECONDS, steady.WINDOW)
    return steady.rate_limit_pairs(cases,
                                   lambda c, run: parse_scenario(scenario_for(c, run)), seconds, window, progress)


SPEED_HOSTS = (1, 4, 16, 64)
QUICK_SPEED_HOSTS = (1, 4)


def parse_host_bench(text: str) -> tuple[float, float, int]:
    """(fast-path scan pages/s, ms per tick, pages) from `pagetide bench-host` output."""
    try:
        scan = float(re.search(r"scan, fast path\s+([\d,]+) M pages/s", text).group(1).replace(",", "")) * 1e6
        tick_ms = float(re.search(r"tick \(sampled accesses \+ kswapd\)\s+([\d.]+) ms", text).group(1))
        pages = int(re.search(r"= ([\d,]+) pages", text).group(1).replace(",", ""))
    except AttributeError:
        raise ValueError(f"unexpected `pagetide bench-host` output:\n{text}") from None
    return scan, tick_ms, pages


def measure_speed(results: dict, host_counts: tuple[int, ...], quick: bool, progress=None) -> dict:
    """Scan speed and page-ticks/s from `pagetide bench-host`, controller round times from `pagetide sim`
    runs with N hosts (both through the CLI, as separate processes), page-ticks/s of the suite's own runs."""
    import ray

    ray.shutdown()              # each `pagetide sim` below starts a Ray instance of its own
    log = progress or (lambda msg: None)
    host_cmd = ["pagetide", "bench-host", "--size", "1GiB" if quick else "4GiB", "--repeat", "5" if quick else "20"]
    out = subprocess.run([sys.executable, "-m", "pagetide.harness.cli", *host_cmd[1:]], capture_output=True,
                         text=True, check=True).stdout
    scan, tick_ms, pages = parse_host_bench(out)
    duration = "5s" if quick else "20s"
    sim_cmd = ["pagetide", "sim", "--host-memory", "1GiB", "--duration", duration, "--quiet"]
    rounds = {}
    for n in host_counts:
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, "-m", "pagetide.harness.cli", *sim_cmd[1:], "--hosts", str(n),
                            "--json", f.name], capture_output=True, text=True, check=True)
            with open(f.name) as g:
                r = json.load(g)
        rounds[str(n)] = {"median": r["round_seconds"]["median"], "max": r["round_seconds"]["max"],
                          "report_bytes": r["report_bytes_per_host_max"]}
        log(f"speed: {n} hosts, round median {r['round_seconds']['median'] * 1e3:.0f} ms")
    return {"host_command": shlex.join(host_cmd), "sim_command": shlex.join(sim_cmd), "scan_pages_per_s": scan,
            "host_pages": pages, "page_ticks_per_s": pages / (tick_ms / 1e3),
            "suite_page_ticks_per_s": (sum(h["page_ticks"] for h in results["hosts"])
                                       / sum(results["run_seconds"].values())),
            "rounds": rounds}


def _csv(choices, cast=str):
    def parse(text: str) -> tuple:
        items = tuple(cast(x.strip()) for x in text.split(",") if x.strip())
        bad = [x for x in items if x not in choices]
        if not items or bad:
            raise argparse.ArgumentTypeError(f"unknown {bad or text!r}; valid: {', '.join(map(str, choices))}")
        return items
    return parse


def parse_workloads(text: str) -> tuple[str, ...]:
    """--workloads: the suite's workload names and paths of trace files (.pgtrace, 4 KiB pages), each file
    opened and checked here, so a missing or bad one is an error before anything starts."""
    from pagetide.agent.traces.shipped import SHIPPED_DIR, open_trace

    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"no workload in {text!r}; valid: {', '.join(WORKLOADS)} or trace files")
    out = []
    for w in items:
        if w not in WORKLOADS:
            try:
                t = open_trace(w)
            except (OSError, ValueError) as e:
                raise argparse.ArgumentTypeError(f"{w!r} is neither a workload ({', '.join(WORKLOADS)}) nor a "
                                                 f"trace file: {e}") from None
            if t.page_size != PAGE:
                raise argparse.ArgumentTypeError(f"{w}: a trace of {t.page_size}-byte pages; the suite's hosts "
                                                 f"have {PAGE}-byte pages (convert with --page-size 4KiB)")
            if t.path.parent == SHIPPED_DIR:        # `sort.pgtrace`: the shipped trace, by its name
                w = t.path.name.removesuffix(SUFFIX)
        out.append(w)
    by_label: dict[str, str] = {}
    for w in out:
        if not slug(workload_label(w)):
            raise argparse.ArgumentTypeError(f"{w}: a trace file's name needs a letter or digit to name its hosts")
        other = by_label.setdefault(slug(workload_label(w)), w)
        if other != w:
            raise argparse.ArgumentTypeError(f"{other!r} and {w!r} would name the same hosts "
                                             f"({slug(workload_label(w))}-...): rename one trace file")
    return tuple(dict.fromkeys(out))


def config_from_args(args: argparse.Namespace) -> SuiteConfig:
    base = QUICK if args.quick else SuiteConfig()
    return SuiteConfig(workloads=args.workloads or base.workloads, shares=args.shares or base.shares,
                       runs=args.policies or base.runs, rounds=args.rounds or base.rounds,
                       footprint_mib=(args.footprint >> 20) if args.footprint else base.footprint_mib,
                       seed=args.seed, agents=args.agents)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    log = lambda msg: print(f"pagetide bench: {msg}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    from pagetide.harness.drive import IncompleteRound
    try:
        results = asyncio.run(run_suite(cfg, progress=log))
    except IncompleteRound as e:
        log(f"error: {e}; no results written (a row needs every round on its host)")
        return 1
    results["wall_seconds"] = time.perf_counter() - t0
    if not args.no_trackers:
        results["trackers"] = measure_trackers(cfg, log)
    if not args.no_steady:
        results["rate_limit_steady"] = measure_rate_limit(cfg, args.quick, log)
    if not args.no_speed:
        results["speed"] = measure_speed(results, QUICK_SPEED_HOSTS if args.quick else SPEED_HOSTS, args.quick,
                                         log)
    results["command"] = command_line(cfg, args.out, args.json, args.plots, args.quick, args.no_speed,
                                      args.no_trackers, args.no_steady)
    if args.plots:
        files = plot(results, args.plots)
        for p in files:
            log(f"wrote {p}")
        # linked from the report, relative to it
        results["plots"] = [os.path.relpath(p, os.path.dirname(os.path.abspath(args.out))) for p in files]
    text = report(results)
    with open(args.out, "w") as f:
        f.write(text)
    log(f"wrote {args.out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        log(f"wrote {args.json}")
    for run, by in summary(results).items():
        print(f"{run:17s} " + "  ".join(f"1/{s}: {v:.3f}" for s, v in by.items()))
    return 0


def set_argparser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help=f"CI size: {', '.join(QUICK.workloads)} at DRAM 1/{QUICK.shares[0]}, {QUICK.rounds} rounds, "
                        f"{QUICK.footprint_mib} MiB hosts")
    p.add_argument("--workloads", type=parse_workloads,
                   help=f"comma-separated: any of {', '.join(WORKLOADS)}, and paths of .pgtrace files "
                        f"(`pagetide trace convert`)")
    p.add_argument("--shares", type=_csv(SHARES, int), help="DRAM shares as denominators, e.g. 2,4,8 (default)")
    p.add_argument("--policies", type=_csv(tuple(RUNS)), help=f"runs, comma-separated: {', '.join(RUNS)} (default all)")
    p.add_argument("--rounds", type=int, help="controller rounds of 1 s simulated time (default 30; quick 8)")
    p.add_argument("--footprint", type=parse_size, help="synthetic workloads' footprint (default 256MiB; quick 64MiB)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--agents", type=int, default=2, help="agent processes per run (default 2)")
    p.add_argument("--out", default="BENCHMARKS-suite.md", help="Markdown report (default BENCHMARKS-suite.md)")
    p.add_argument("--json", help="also write the results as JSON")
    p.add_argument("--plots", help="directory for PNG charts (linked from the report)")
    p.add_argument("--no-trackers", action="store_true",
                   help="skip the tracker table (each tracker on every host of the grid, in process)")
    p.add_argument("--no-steady", action="store_true",
                   help="skip NBT's rate limit in steady state (NBT with and without it, 300 s on each stable "
                        "host of the grid, in process, ~3 min; quick 120 s)")
    p.add_argument("--no-speed", action="store_true",
                   help="skip the speed section (bench-host and `pagetide sim` with 1-64 hosts, ~4 min)")
