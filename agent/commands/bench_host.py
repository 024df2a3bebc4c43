"""`pagetide bench-host`: the host model's scan speed and state per page."""

from __future__ import annotations

import argparse



def set_argparser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="16GiB", help="host memory of 4 KiB pages (default 16GiB)")
    p.add_argument("--repeat", type=int, default=20, help="scans to time")


def main(args: argparse.Namespace) -> int:
    from pagetide.agent.bench import run_host_bench

    print(run_host_bench(args.size, repeat=args.repeat))
    return 0
