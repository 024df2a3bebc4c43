"""The agent-side subcommands of `pagetide`: `run` (a single-host simulation) and `bench-host`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from importlib import resources

from pagetide.agent.scenario import ScenarioError, load_scenario

DEFAULT_SCENARIO = "default.yaml"


def default_scenario_path() -> str:
    return str(resources.files("pagetide.agent") / "scenarios" / DEFAULT_SCENARIO)


def cmd_run(args: argparse.Namespace) -> int:
    from pagetide.agent.report import host_report
    from pagetide.agent.sim import reference_runs

    scenario = load_scenario(args.scenario or default_scenario_path())
    if args.seed is not None:
        scenario = type(scenario)(**{**scenario.__dict__, "seed": args.seed})
    refs = reference_runs(scenario)
    print(host_report(refs.kernel, refs.first_touch))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kernel": asdict(refs.kernel), "first_touch": asdict(refs.first_touch)}, f, indent=1)
    return 0


def cmd_bench_host(args: argparse.Namespace) -> int:
    from pagetide.agent.bench import run_host_bench

    print(run_host_bench(args.size, repeat=args.repeat))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="simulate one host (kernel only) and print its results next to the references")
    p.add_argument("--scenario", help="scenario YAML (default: the built-in default host)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("bench-host", help="page-scans/s per core and bytes of state per page")
    p.add_argument("--size", default="16GiB", help="host memory of 4 KiB pages (default 16GiB)")
    p.add_argument("--repeat", type=int, default=20, help="scans to time")
    p.set_defaults(func=cmd_bench_host)


def run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except ScenarioError as e:
        print(f"pagetide: invalid scenario: {e}", file=sys.stderr)
        return 2
