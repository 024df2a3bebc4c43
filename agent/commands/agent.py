"""`pagetide agent`: serve hosts over gRPC (AgentService, SimulationService, health, reflection)."""

from __future__ import annotations

import argparse
import sys

from pagetide.agent.commands.scenarios import add_tiering_argument, default_scenario_path, scenario_errors
from pagetide.common.security import add_server_security_arguments


def set_argparser(p: argparse.ArgumentParser) -> None:
    from pagetide.agent.backend import BACKENDS
    from pagetide.agent.server import CLOCKS

    p.add_argument("--backend", choices=sorted(BACKENDS), default="sim",
                   help="the hosts served: sim = simulated hosts from scenarios (default); linux = this machine "
                        "(--tenant, --tracker, --period)")
    p.add_argument("--scenario", action="append", help="host scenario YAML; repeat to serve several hosts")
    p.add_argument("--listen", default="127.0.0.1:50051",
                   help="address:port (port 0 picks a free one); off loopback it needs --token-file or mutual "
                        "TLS, or --insecure")
    p.add_argument("--clock", choices=CLOCKS, default="realtime",
                   help="realtime: simulated time advances with the wall clock; driven: only "
                        "SimulationService.AdvanceClock advances it (a simulation harness)")
    p.add_argument("--nr-scans", type=int, default=5, help="tracker scans per period")
    linux = p.add_argument_group("linux backend (README \"A real host\")")
    linux.add_argument("--tenant", action="append", metavar="[NAME=][vm:]pid:N|name:COMM|cgroup:PATH",
                       help="a process (or a cgroup's processes) to serve; repeat for several; a QEMU process (or "
                            "one given with vm:) is a VM whose guest RAM, its largest writable mapping, is tracked")
    linux.add_argument("--tracker", default="auto",
                       help="auto (the best the kernel offers), idle_pages, page_idle, soft_dirty or none")
    linux.add_argument("--period", type=float, default=10.0, help="seconds per scan period (default 10)")
    linux.add_argument("--host-id", default="", help="the host's id (default: the hostname)")
    linux.add_argument("--slow-type", choices=("pmem", "cxl"), default="pmem",
                       help="the node type reported for nodes that are not DRAM")
    linux.add_argument("--set-knob", action="append", metavar="NAME=VALUE", default=[],
                       help="write a kernel knob at start (demotion_enabled, numa_balancing, "
                            "watermark_scale_factor); without it the agent writes none")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on --metrics-address:PORT (0 picks a free port)")
    p.add_argument("--metrics-address", default="127.0.0.1",
                   help="address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 for a Prometheus elsewhere)")
    p.add_argument("--no-vm-metrics", action="store_true",
                   help="leave out per-VM series (fleets of thousands of hosts)")
    add_tiering_argument(p)
    add_server_security_arguments(p, what="the agent")


def linux_hosts(cls, args: argparse.Namespace) -> list | None:
    """This machine as the one host served (None after printing what is wrong with the options)."""
    from pagetide.agent.linux.backend import ConfigError, TenantSpec, write_knobs

    try:
        if args.scenario:
            raise ConfigError("--scenario is for --backend sim; the linux backend serves --tenant processes")
        knobs = {}
        for item in args.set_knob:
            name, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"--set-knob {item!r}: expected NAME=VALUE")
            knobs[name] = value
        host = cls([TenantSpec.parse(t) for t in args.tenant or []], host_id=args.host_id, tracker=args.tracker,
                   nr_scans=args.nr_scans, period=args.period, slow_type=args.slow_type)
        if knobs:
            print(f"pagetide agent: kernel knobs set: {write_knobs(knobs)}", flush=True)
    except (ConfigError, OSError) as e:
        print(f"pagetide agent: {e}", file=sys.stderr)
        return None
    print(f"pagetide agent: linux host {host.host_id}: {host.describe()}", flush=True)
    return [host]


@scenario_errors
def main(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from pagetide.agent.backend import backend_class
    from pagetide.agent.scenario import load_scenario
    from pagetide.agent.server import start_agent

    from pagetide.common.security import SecurityError, bound_address, listen_error, server_security

    try:
        security = server_security(args)
    except SecurityError as e:
        print(f"pagetide agent: {e}", file=sys.stderr)
        return 2
    refused = listen_error(args.listen, security)
    if refused:
        print(f"pagetide agent: {refused}", file=sys.stderr)
        return 2
    cls = backend_class(args.backend)
    if args.backend == "linux":
        hosts = linux_hosts(cls, args)
        if hosts is None:
            return 2
    else:
        scenarios = [load_scenario(p, tiering=args.tiering) for p in (args.scenario or [default_scenario_path()])]
        hosts = [cls(s, nr_scans=args.nr_scans) for s in scenarios]

    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        print(f"pagetide agent: --metrics-port must be in 0..65535, got {args.metrics_port}", file=sys.stderr)
        return 2

    async def serve() -> int:
        stop = asyncio.Event()              # a SIGTERM from here on, even during start-up, ends it cleanly
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        metrics = None
        if args.metrics_port is not None:
            from pagetide.agent.metrics import AgentMetrics
            metrics = AgentMetrics(per_vm=not args.no_vm_metrics)
        try:
            agent = await start_agent(hosts, args.listen, clock=args.clock, security=security, metrics=metrics)
        except OSError as e:
            print(f"pagetide agent: {e}", file=sys.stderr)
            return 2
        if metrics is not None:
            from prometheus_client import start_http_server

            try:
                http, _ = start_http_server(args.metrics_port, addr=args.metrics_address, registry=metrics.registry)
            except OSError as e:
                await agent.stop(grace=0)
                raise SystemExit(f"pagetide agent: cannot serve metrics on "
                                 f"{args.metrics_address}:{args.metrics_port}: {e}") from None
            print(f"pagetide agent: metrics on http://{args.metrics_address}:{http.server_port}/metrics",
                  flush=True)
        print(f"pagetide agent: serving {', '.join(h.host_id for h in hosts)} on "
              f"{bound_address(args.listen, agent.port)} (port {agent.port}, {args.clock} clock, "
              f"{security.describe()})", flush=True)
        await stop.wait()
        await agent.stop(grace=1.0)
        return 0

    return asyncio.run(serve())
