"""Simulation-only metrics (`pagetide_sim_*`) and the metrics options of `pagetide sim`.

The figures only a simulation has -- each VM's and host's share of accesses served by DRAM, the per-epoch
oracle's, the modelled slowdown against all-DRAM -- come from the agents' accounting (SimulationService
GetStats) and go on the controller's registry under the `pagetide_sim_` prefix, so a dashboard or an alert can
never mistake them for something a real host reports (real hosts have no such series). The controller's own
estimate of a VM's DRAM-served share is `pagetide_controller_vm_dram_heat_ratio`.

`pagetide sim` also gives its agents metrics endpoints on fixed ports (`--agent-metrics-port BASE`: agent
process i on BASE + i, so a Prometheus configuration can name them) and can keep every endpoint up after the
last round (`--linger`), for a scraper to read the final values.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from prometheus_client import CollectorRegistry, Gauge


def add_metrics_arguments(p: argparse.ArgumentParser) -> None:
    from pagetide.controller.commands.controller import duration_argument

    p.add_argument("--agent-metrics-port", type=int, metavar="BASE",
                   help="agent process i serves Prometheus metrics on 127.0.0.1:BASE+i")
    p.add_argument("--no-vm-metrics", action="store_true",
                   help="leave out per-VM series (controller, agents and simulation-only ones)")
    p.add_argument("--linger", type=duration_argument, default=0.0,
                   help="after the last round keep the metrics endpoints (and agents) up this long, or until "
                        "SIGTERM (default 0)")


def metrics_errors(args: argparse.Namespace) -> str | None:
    """Why the metrics options cannot work, or None."""
    for name, port, n in (("--metrics-port", args.metrics_port, 1), ("--agent-metrics-port", args.agent_metrics_port,
                                                                      args.agents)):
        if port is not None and not (1 <= port and port + n - 1 <= 65535):
            return f"{name} must leave room for {n} port(s) in 1..65535, got {port}"
    if args.linger < 0:
        return "--linger must be >= 0"
    return None


def with_agent_metrics(cmds: list[list[str]], args: argparse.Namespace) -> list[list[str]]:
    """The agent commands with their metrics options (agent i on BASE + i)."""
    if args.agent_metrics_port is None:
        return cmds
    extra = ["--no-vm-metrics"] if args.no_vm_metrics else []
    return [[*c, "--metrics-port", str(args.agent_metrics_port + i), *extra] for i, c in enumerate(cmds)]


async def linger(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Keep everything up for --linger seconds after the last round, or until `stop` (SIGTERM)."""
    if args.linger <= 0 or stop.is_set():
        return
    print(f"pagetide sim: done; metrics stay up for {args.linger:g} s (SIGTERM ends it)", file=sys.stderr,
          flush=True)
    try:
        await asyncio.wait_for(stop.wait(), args.linger)
    except asyncio.TimeoutError:
        pass


class SimMetrics:
    """Simulation-only figures (from the agents' accounting), on the controller's registry."""

    def __init__(self, registry: CollectorRegistry, per_vm: bool = True):
        self.per_vm = per_vm

        def gauge(name: str, text: str, labels: list[str]) -> Gauge:
            return Gauge(name, f"Simulation only: {text}", labels, registry=registry)

        vm, host = ["host", "vm"], ["host"]
        self.vm = {
            "dram_share": gauge("pagetide_sim_vm_dram_served_ratio", "share of the VM's accesses served by DRAM "
                                "so far", vm),
            "oracle_share": gauge("pagetide_sim_vm_oracle_dram_served_ratio", "the per-epoch oracle's DRAM-served "
                                  "share of the VM's accesses", vm),
            "slowdown": gauge("pagetide_sim_vm_slowdown_ratio", "the VM's modelled memory time over all-DRAM", vm),
            "oracle_slowdown": gauge("pagetide_sim_vm_oracle_slowdown_ratio", "the per-epoch oracle's modelled "
                                     "memory time over all-DRAM", vm),
        }
        self.host = {
            "dram_share": gauge("pagetide_sim_host_dram_served_ratio", "share of the host's accesses served by "
                                "DRAM so far", host),
            "oracle_share": gauge("pagetide_sim_host_oracle_dram_served_ratio", "the per-epoch oracle's "
                                  "DRAM-served share of the host's accesses", host),
            "slowdown": gauge("pagetide_sim_host_slowdown_ratio", "the host's modelled memory time over all-DRAM",
                              host),
        }
        self.sim_time = Gauge("pagetide_sim_time_seconds", "Simulation only: simulated time of the slowest host",
                              registry=registry)

    def observe(self, stats: dict) -> None:
        """The agents' GetStats answers (host id -> GetStatsResponse)."""
        for st in stats.values():
            for key, g in self.host.items():
                g.labels(st.host_id).set(getattr(st, key))
            if self.per_vm:
                for t in st.tenants:
                    for key, g in self.vm.items():
                        g.labels(st.host_id, t.tenant).set(getattr(t, key))
        if stats:
            self.sim_time.set(min(s.time_ns for s in stats.values()) / 1e9)
