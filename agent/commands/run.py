"""`pagetide run`: simulate one host under its kernel mode and print its results next to the references."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from pagetide.agent.commands.scenarios import add_tiering_argument, default_scenario_path, scenario_errors



def set_argparser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", help="scenario YAML (default: the built-in default host)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--json", help="write the results as JSON to this file")
    add_tiering_argument(p)


@scenario_errors
def main(args: argparse.Namespace) -> int:
    from pagetide.agent.report import host_report
    from pagetide.agent.scenario import load_scenario
    from pagetide.agent.sim import reference_runs

    scenario = load_scenario(args.scenario or default_scenario_path(), tiering=args.tiering)
    if args.seed is not None:
        scenario = type(scenario)(**{**scenario.__dict__, "seed": args.seed})
    refs = reference_runs(scenario)
    print(host_report(refs.kernel, refs.first_touch))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kernel": asdict(refs.kernel), "first_touch": asdict(refs.first_touch)}, f, indent=1)
    return 0
