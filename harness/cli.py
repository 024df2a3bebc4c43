"""`pagetide`: the one command-line entry. Every subcommand is one module with `set_argparser(parser)` and
`main(args) -> int`, listed in SUBCOMMANDS with its one-line help and living with the side it drives. Only
the chosen subcommand's module is imported, so `pagetide agent` on a host never loads the controller or Ray."""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "sim": ("pagetide.harness.sim", "multi-host simulation: agents, the Ray controller, results table"),
    "faults": ("pagetide.harness.faults",
               "inject agent kills, stalls and controller restarts into simulations; check what survives"),
    "bench": ("pagetide.harness.bench",
              "benchmark suite: every workload x DRAM share under every policy and kernel mode"),
    "controller": ("pagetide.controller.commands.controller",
                   "run the controller against running agents (local Ray or --ray-address)"),
    "policy": ("pagetide.controller.commands.policy",
               "ControllerService client: VM policies, VMs and hosts, heat, pause/resume, events"),
    "agent": ("pagetide.agent.commands.agent",
              "serve hosts over gRPC: AgentService (and SimulationService for simulated hosts)"),
    "run": ("pagetide.agent.commands.run",
            "simulate one host (kernel only) and print its results next to the references"),
    "bench-host": ("pagetide.agent.commands.bench_host", "page-scans/s per core and bytes of state per page"),
    "trace": ("pagetide.agent.traces.cli", "convert real programs' traces to .pgtrace workloads; describe one"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's arguments are set up (its module alone imported)."""
    p = argparse.ArgumentParser(prog="pagetide", description="Placement controller for tiered memory")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if only in (None, name):
            m = importlib.import_module(module)
            m.set_argparser(sp)
            sp.set_defaults(func=m.main)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in SUBCOMMANDS else None).parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
