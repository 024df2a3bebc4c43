"""The agent-side subcommands of `pagetide`: `run` (a single-host simulation) and `bench-host`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from importlib import resources

from pagetide.common import units
from pagetide.agent.scenario import ScenarioError, load_scenario

DEFAULT_SCENARIO = "default.yaml"


def default_scenario_path() -> str:
    return str(resources.files("pagetide.agent") / "scenarios" / DEFAULT_SCENARIO)


def cmd_run(args: argparse.Namespace) -> int:
    from pagetide.agent.report import host_report
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


def cmd_bench_host(args: argparse.Namespace) -> int:
    from pagetide.agent.bench import run_host_bench

    print(run_host_bench(args.size, repeat=args.repeat))
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from pagetide.agent.runtime import SimHost
    from pagetide.agent.server import start_server

    if args.fleet:
        from pagetide.agent.fleet import fleet

        part, parts = (int(x) for x in args.fleet_part.split("/"))
        memory = units.parse_size(args.fleet_memory) >> 20
        scenarios = [s for i, s in enumerate(fleet(args.fleet, seed=args.seed, duration=args.duration,
                                                   memory_mib=memory, tiering=args.tiering)) if i % parts == part]
    else:
        scenarios = [load_scenario(p, tiering=args.tiering) for p in (args.scenario or [default_scenario_path()])]
    hosts = [SimHost(s, nr_scans=args.nr_scans) for s in scenarios]

    async def main() -> None:
        server, port, _ = await start_server(hosts, args.listen, realtime=args.clock == "realtime")
        print(f"pagetide agent: serving {', '.join(h.host_id for h in hosts)} on port {port} "
              f"({args.clock} clock)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(grace=1.0)

    asyncio.run(main())
    return 0


def add_tiering_argument(p: argparse.ArgumentParser) -> None:
    from pagetide.agent.tiering import MODES

    p.add_argument("--tiering", choices=sorted(MODES),
                   help="kernel tiering mode of every host, replacing the scenario's host.kernel.tiering "
                        "(with the mode's default parameters)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="serve simulated hosts over gRPC (AgentService, health, reflection)")
    p.add_argument("--scenario", action="append", help="host scenario YAML; repeat to serve several hosts")
    p.add_argument("--listen", default="127.0.0.1:50051", help="address:port (port 0 picks a free one)")
    p.add_argument("--clock", choices=("realtime", "driven"), default="realtime",
                   help="realtime: time advances with the wall clock; driven: only AdvanceClock advances it")
    p.add_argument("--nr-scans", type=int, default=5, help="idle_pages scans per period")
    p.add_argument("--fleet", type=int, default=0, help="serve generated hosts host-00..host-(N-1) instead")
    p.add_argument("--fleet-part", default="0/1", help="I/K: serve the fleet's hosts j with j %% K == I")
    p.add_argument("--seed", type=int, default=1, help="fleet seed")
    p.add_argument("--duration", default="60s", help="fleet hosts' scenario duration")
    p.add_argument("--fleet-memory", default="2GiB", help="memory of each fleet host, DRAM 1/4 (default 2GiB)")
    add_tiering_argument(p)
    p.set_defaults(func=cmd_agent)
    p = sub.add_parser("run", help="simulate one host (kernel only) and print its results next to the references")
    p.add_argument("--scenario", help="scenario YAML (default: the built-in default host)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--json", help="write the results as JSON to this file")
    add_tiering_argument(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("bench-host", help="page-scans/s per core and bytes of state per page")
    p.add_argument("--size", default="16GiB", help="host memory of 4 KiB pages (default 16GiB)")
    p.add_argument("--repeat", type=int, default=20, help="scans to time")
    p.set_defaults(func=cmd_bench_host)
    from pagetide.agent import traces
    traces.add_parser(sub)  # `trace convert {lackey,damo} ...`, `trace info`


def run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except ScenarioError as e:
        print(f"pagetide: invalid scenario: {e}", file=sys.stderr)
        return 2
