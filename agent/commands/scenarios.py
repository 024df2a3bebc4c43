"""Where the agent's subcommands find scenarios: the shipped default, files, and a kernel mode override."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from importlib import resources

DEFAULT_SCENARIO = "default.yaml"


def default_scenario_path() -> str:
    return str(resources.files("pagetide.agent") / "scenarios" / DEFAULT_SCENARIO)


def add_tiering_argument(p: argparse.ArgumentParser) -> None:
    from pagetide.agent.tiering import MODES

    p.add_argument("--tiering", choices=sorted(MODES),
                   help="kernel tiering mode of every host, replacing the scenario's host.kernel.tiering "
                        "(with the mode's default parameters)")


def scenario_errors(main: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """An invalid scenario ends the command with its message and status 2, not a traceback."""
    @functools.wraps(main)
    def wrapped(args: argparse.Namespace) -> int:
        from pagetide.agent.scenario import ScenarioError

        try:
            return main(args)
        except ScenarioError as e:
            print(f"pagetide: invalid scenario: {e}", file=sys.stderr)
            return 2
    return wrapped
