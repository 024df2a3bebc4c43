"""The controller's Prometheus metrics (`pagetide_controller_*`, and the RPCs of its ControllerService), on
their own registry: tests read it directly, `pagetide controller --metrics-port` serves it over HTTP.

What an operator needs to see placement working or failing, from the controller's side: rounds per host and
their durations (round, report transfer, plan, moves) as histograms; heat report sizes; bytes and pages the
controller moved (promote, demote) and the pages move_pages refused, by errno; per VM the DRAM target the
policy set, the share of its resident pages on DRAM and the share of its heat on DRAM (its DRAM-served share as
the controller can estimate it on a real host); hosts up and down, outages and missed deadlines; the policies in
force (the placement policy, VM policies per host, paused hosts). Kernel moves, memory per node and vmstat are
the agents' (agent/metrics.py); simulation-only figures are the harness's (harness/simmetrics.py).

Labels are bounded: host, VM, direction, errno name, host state, policy name. `per_vm=False` drops the per-VM
series for fleets of thousands of hosts (README "Metrics").
"""

from __future__ import annotations

import errno as errno_names
import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from pagetide.common.rpcmetrics import RpcMetrics

PAGE_SIZE = 4096
# a host's round on loopback takes 5-50 ms; a 1 s scan period is the budget (README, alert rules)
ROUND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# a heat report is ~10-200 KiB (4096 candidates per list; limits.py bounds it)
REPORT_BUCKETS = (1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20)
HOST_STATES = ("starting", "up", "down")


def heat_share(pages: list[int], fast: list[int]) -> float | None:
    """Share of a VM's heat on DRAM: pages per heat bin weighted by the bin (its refs level per period), the
    part on DRAM over all; None for a VM with no heat at all."""
    total = sum(b * n for b, n in enumerate(pages))
    if not total:
        return None
    return sum(b * n for b, n in enumerate(fast)) / total


class Metrics:
    """pagetide_controller_* metrics on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None, per_vm: bool = True):
        disable_created_metrics()          # a *_created sample per counter would double their series
        self.registry = registry or CollectorRegistry()
        self.per_vm = per_vm
        r = self.registry
        self.rpc = RpcMetrics(r)
        self.rounds = Counter("pagetide_controller_host_rounds_total", "Host rounds completed (report, plan, "
                              "moves)", ["host"], registry=r)
        self.last_round = Gauge("pagetide_controller_host_last_round_timestamp_seconds", "Unix time of the "
                                "host's last completed round", ["host"], registry=r)
        self.round_seconds = Histogram("pagetide_controller_round_duration_seconds", "Wall time of one host's "
                                       "round (report transfer, plan, moves; not the wait for the period)",
                                       buckets=ROUND_BUCKETS, registry=r)
        self.phase_seconds = {phase: Histogram(f"pagetide_controller_{phase}_duration_seconds", text,
                                               buckets=ROUND_BUCKETS, registry=r)
                              for phase, text in (("report", "Wall time from a heat report's arrival to its "
                                                             "decoded view"),
                                                  ("plan", "Wall time of the placement policy's plan"),
                                                  ("move", "Wall time of a round's move_pages requests"))}
        self.report_bytes = Gauge("pagetide_controller_heat_report_bytes", "Serialized size of the host's last "
                                  "heat report", ["host"], registry=r)
        self.report_size = Histogram("pagetide_controller_heat_report_size_bytes", "Serialized size of heat "
                                     "reports", buckets=REPORT_BUCKETS, registry=r)
        self.migrated = Counter("pagetide_controller_migrated_bytes_total", "Bytes the controller moved with "
                                "move_pages", ["host", "direction"], registry=r)
        self.migrated_pages = Counter("pagetide_controller_migrated_pages_total", "Base pages (4 KiB) the "
                                      "controller moved with move_pages", ["host", "direction"], registry=r)
        self.move_errors = Counter("pagetide_controller_move_page_errors_total", "Pages a move_pages call "
                                   "refused, by errno", ["host", "errno"], registry=r)
        self.dram_target = Gauge("pagetide_controller_vm_dram_target_bytes", "DRAM the policy gave the VM in "
                                 "its last round", ["host", "vm"], registry=r)
        self.dram_resident = Gauge("pagetide_controller_vm_dram_resident_ratio", "Share of the VM's resident "
                                   "pages on DRAM in its last heat report", ["host", "vm"], registry=r)
        self.dram_heat = Gauge("pagetide_controller_vm_dram_heat_ratio", "Share of the VM's heat (pages "
                               "weighted by refs level) on DRAM in its last heat report: the DRAM-served share "
                               "as idle page tracking sees it", ["host", "vm"], registry=r)
        self.host_up = Gauge("pagetide_controller_host_up", "1 while the host's agent answers, 0 once it is "
                             "marked down (and before its first answer)", ["host"], registry=r)
        self.hosts = Gauge("pagetide_controller_hosts", "Hosts managed, by state", ["state"], registry=r)
        self.outages = Counter("pagetide_controller_host_outages_total", "Times the host was marked down",
                               ["host"], registry=r)
        self.missed = Counter("pagetide_controller_host_missed_deadlines_total", "Calls to a host that failed "
                              "or missed their deadline", ["host"], registry=r)
        self.policy = Gauge("pagetide_controller_placement_policy_info", "1 for the placement policy in force",
                            ["policy"], registry=r)
        self.vm_policies = Gauge("pagetide_controller_vm_policies", "Users' VM policies in force on the host",
                                 ["host"], registry=r)
        self._vms: dict[str, set[str]] = {}        # host -> VMs with per-VM series
        self.paused = Gauge("pagetide_controller_migration_paused", "1 while migration is paused on the host "
                            "(its own pause or the cluster-wide one)", ["host"], registry=r)

    def observe(self, res) -> None:
        """One host round's result (proxy.RoundResult)."""
        h = res.host_id
        self.rounds.labels(h).inc()
        self.last_round.labels(h).set(time.time())
        self.round_seconds.observe(res.seconds)
        self.phase_seconds["report"].observe(res.report_seconds)
        self.phase_seconds["plan"].observe(res.plan_seconds)
        self.phase_seconds["move"].observe(res.move_seconds)
        self.report_bytes.labels(h).set(res.report_bytes)
        self.report_size.observe(res.report_bytes)
        for direction, b in (("promote", res.promoted_bytes), ("demote", res.demoted_bytes)):
            self.migrated.labels(h, direction).inc(b)
            self.migrated_pages.labels(h, direction).inc(b // PAGE_SIZE)
        for err, n in res.errors.items():
            self.move_errors.labels(h, errno_names.errorcode.get(-err, str(-err))).inc(n)
        if not self.per_vm:
            return
        vms = set(res.heat_pages) | set(res.dram_target_bytes) | set(res.dram_resident_share)
        for gone in self._vms.get(h, set()) - vms:       # a VM no longer on the host: its series go with it
            for g in (self.dram_target, self.dram_resident, self.dram_heat):
                try:
                    g.remove(h, gone)
                except KeyError:
                    pass
        self._vms[h] = vms
        for vm, b in res.dram_target_bytes.items():
            self.dram_target.labels(h, vm).set(b)
        for vm, share in res.dram_resident_share.items():
            self.dram_resident.labels(h, vm).set(share)
        for vm, pages in res.heat_pages.items():
            share = heat_share(pages, res.heat_fast_pages.get(vm, []))
            if share is not None:
                self.dram_heat.labels(h, vm).set(share)

    def state(self, statuses: Mapping[str, str], policies: Mapping[str, Mapping], paused: Mapping[str, bool],
              policy: str) -> None:
        """The controller's state now: each host's status (starting, up, down), VM policies per host, whether
        migration is paused there, the placement policy's name."""
        for s in HOST_STATES:
            self.hosts.labels(s).set(sum(1 for v in statuses.values() if v == s))
        for h, s in statuses.items():
            self.host_up.labels(h).set(1 if s == "up" else 0)
            self.vm_policies.labels(h).set(len(policies.get(h, {})))
            self.paused.labels(h).set(1 if paused.get(h) else 0)
            self.rounds.labels(h)
            self.missed.labels(h)
            self.outages.labels(h)
        self.policy.labels(policy).set(1)

    def host_missed(self, host_id: str, down_now: bool) -> None:
        self.missed.labels(host_id).inc()
        if down_now:
            self.outages.labels(host_id).inc()
