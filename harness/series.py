"""How many Prometheus series a fleet produces: scrape a running controller and its agents (a simulation or a
real deployment), sort every series by what it grows with, and project the count to N hosts x M VMs.

Simulation-only series (`pagetide_sim_*`, SimulationService's RPCs) are counted apart: real hosts have none.
A series with a `vm` label grows with the VMs, one with a `host` label (and no `vm`) with the hosts; on an agent
the rest (its RPC metrics) is one set per agent process -- on a real fleet one process per host. Prometheus adds
five series of its own per target (up, scrape_duration_seconds, scrape_samples_scraped,
scrape_samples_post_metric_relabeling, scrape_series_added). Labels that appear only when something happens
(an errno, an RPC status code other than OK) add series per host or process as they appear: the count is for
what the scraped run showed.

    python -m pagetide.harness.series --controller http://127.0.0.1:9464/metrics \\
        --agent http://127.0.0.1:9465/metrics --agent http://127.0.0.1:9466/metrics --hosts 1000 --vms 20
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS_PER_TARGET = 5
SCRAPE_TIMEOUT = 10.0


@dataclass
class Count:
    fixed: int = 0                     # the controller's series with neither host nor vm
    per_process: int = 0               # an agent process's series with neither host nor vm
    per_host: int = 0
    per_vm: int = 0
    hosts: set = field(default_factory=set)
    vms: set = field(default_factory=set)
    agents: int = 0
    sim_per_host: int = 0              # simulation-only series (pagetide_sim_*, SimulationService RPCs)
    sim_per_vm: int = 0
    sim_per_process: int = 0
    sim_fixed: int = 0

    def add(self, text: str, agent: bool) -> None:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                host, vm = s.labels.get("host"), s.labels.get("vm")
                if s.name.startswith("pagetide_sim_") or s.labels.get("service", "").endswith(".SimulationService"):
                    if vm is not None:
                        self.sim_per_vm += 1
                    elif host is not None:
                        self.sim_per_host += 1
                    elif agent:
                        self.sim_per_process += 1
                    else:
                        self.sim_fixed += 1
                    continue
                if vm is not None:
                    self.per_vm += 1
                    self.vms.add((host, vm))
                elif host is not None:
                    self.per_host += 1
                    self.hosts.add(host)
                elif agent:
                    self.per_process += 1
                else:
                    self.fixed += 1
        self.agents += agent

    def project(self, hosts: int, vms_per_host: int) -> dict[str, float]:
        """Series for `hosts` hosts with `vms_per_host` VMs each, one agent process per host."""
        h = max(1, len(self.hosts))
        v = max(1, len(self.vms))
        a = max(1, self.agents)
        out = {"controller (fixed)": float(self.fixed),
               "per host": self.per_host / h * hosts,
               "per VM": self.per_vm / v * hosts * vms_per_host,
               "per agent process": self.per_process / a * hosts,
               "Prometheus's own (per target)": float(PROMETHEUS_PER_TARGET * (hosts + 1))}
        out["total on real hosts"] = sum(out.values())
        out["simulation only"] = (self.sim_fixed + self.sim_per_host / h * hosts + self.sim_per_vm / v * hosts
                                  * vms_per_host + self.sim_per_process / a * hosts)
        out["total in a simulation"] = out["total on real hosts"] + out["simulation only"]
        return out


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as r:
        return r.read().decode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pagetide.harness.series", description=__doc__.split("\n")[0])
    ap.add_argument("--controller", required=True, help="the controller's (or pagetide sim's) metrics URL")
    ap.add_argument("--agent", action="append", default=[], help="an agent's metrics URL (repeatable)")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=20, help="VMs per host")
    args = ap.parse_args(argv)
    if args.hosts < 1 or args.vms < 0:
        print("series: --hosts must be >= 1 and --vms >= 0", file=sys.stderr)
        return 2
    c = Count()
    try:
        c.add(scrape(args.controller), agent=False)
        for url in args.agent:
            c.add(scrape(url), agent=True)
    except OSError as e:
        print(f"series: cannot scrape: {e}", file=sys.stderr)
        return 1
    print(f"scraped: {len(c.hosts)} hosts, {len(c.vms)} VMs, {c.agents} agent processes; series: controller "
          f"fixed {c.fixed}, per host {c.per_host / max(1, len(c.hosts)):.1f}, per VM "
          f"{c.per_vm / max(1, len(c.vms)):.1f}, per agent process {c.per_process / max(1, c.agents):.1f}; "
          f"simulation only: per host {c.sim_per_host / max(1, len(c.hosts)):.1f}, per VM "
          f"{c.sim_per_vm / max(1, len(c.vms)):.1f}, per agent process {c.sim_per_process / max(1, c.agents):.1f}")
    print(f"projected to {args.hosts} hosts x {args.vms} VMs (one agent process per host):")
    for k, n in c.project(args.hosts, args.vms).items():
        print(f"  {k:32s} {n:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
