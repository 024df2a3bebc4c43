"""`pagetide bench-host`: the host model's start-up, simulated seconds, scan speed and memory per page."""

from __future__ import annotations

import argparse



def set_argparser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="16GiB", help="host memory of 4 KiB pages (default 16GiB)")
    p.add_argument("--repeat", type=int, default=20, help="scans to time")
    p.add_argument("--workload", default="zipf",
                   help="every VM's workload type, with its defaults (default zipf; hotset: a small hot set)")
    p.add_argument("--seconds", type=int, default=5, help="simulated seconds to time (default 5)")


def main(args: argparse.Namespace) -> int:
    from pagetide.agent.bench import run_host_bench

    print(run_host_bench(args.size, repeat=args.repeat, workload=args.workload, seconds=args.seconds))
    return 0
