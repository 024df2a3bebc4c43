"""`python -m pagetide.agent.traces convert|info ...`: `pagetide trace` without the rest of the CLI."""

import argparse
import sys

from pagetide.agent.traces.cli import main, set_argparser

parser = argparse.ArgumentParser(prog="python -m pagetide.agent.traces")
set_argparser(parser)
sys.exit(main(parser.parse_args()))
