"""`pagetide`: the command line. Each subcommand lives with the side that owns it; this module only
dispatches (the agent's subcommands are imported from pagetide.agent, the controller's from here)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from pagetide.agent import cli as agent_cli
    from pagetide.controller import bench, sim

    p = argparse.ArgumentParser(prog="pagetide", description="Placement controller for tiered memory")
    sub = p.add_subparsers(dest="command", required=True)
    sim.add_parser(sub)
    bench.add_parser(sub)
    agent_cli.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from pagetide.agent import cli as agent_cli

    args = build_parser().parse_args(argv)
    return agent_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
