"""pagetide's Grafana dashboards, built with grafana-foundation-sdk (Grafana's own schema as Python builders):
fleet overview, one host, one VM, controller health. `python -m pagetide.harness.dashboards` writes them to
deploy/grafana/dashboards/ (`--check`: exit 1 if the files there differ from what this module builds).

Every panel queries the provisioned Prometheus datasource by its fixed uid (deploy/grafana/provisioning/);
variables `host` and `vm` are label values of the agents' series. Panels whose series exist only after
something went wrong (move_pages errors, RPC errors) end in `or vector(0)`, so a healthy fleet shows 0 rather
than "No data" -- and CI (tests/test_dashboards.py) can demand data from every panel. Simulation-only panels
read `pagetide_sim_*` and say so in their titles.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE_UID = "pagetide-prometheus"
OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
RATE = "$__rate_interval"


@dataclass(frozen=True)
class P:
    """One panel: title, kind (timeseries or stat), unit, (PromQL, legend) targets, width, description."""
    title: str
    targets: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    description: str = ""
    stack: bool = False


@dataclass(frozen=True)
class D:
    uid: str
    title: str
    description: str
    rows: tuple[tuple[str, tuple[P, ...]], ...]
    variables: tuple[tuple[str, str], ...] = field(default=())     # (name, label_values query)


def q(expr: str, legend: str = "") -> tuple[str, str]:
    return expr, legend


def quantiles(metric: str, selector: str = "", by: str = "", qs=(0.5, 0.99)) -> tuple[tuple[str, str], ...]:
    group = f"{by}, le" if by else "le"
    return tuple(q(f"histogram_quantile({x}, sum by ({group}) (rate({metric}_bucket{selector}[{RATE}])))",
                   f"p{int(x * 100)}" + (f" {{{{{by}}}}}" if by else "")) for x in qs)


HOST = '{host="$host"}'
VM = '{host="$host", vm="$vm"}'
HOST_VAR = ("host", "label_values(pagetide_node_used_bytes, host)")
VM_VAR = ("vm", 'label_values(pagetide_vm_resident_bytes{host="$host"}, vm)')


def vmstat(names: list[str], sel: str) -> tuple[tuple[str, str], ...]:
    return tuple(q(f"sum(rate(pagetide_vmstat_{n}_total{sel}[{RATE}]))", n) for n in names)


FLEET = D("pagetide-fleet", "pagetide: fleet overview", "Every host at once: hosts up, memory by tier, "
          "migration traffic, round time, DRAM-served share in simulations.", (
    ("Fleet", (
        P("Hosts up", (q('sum(pagetide_controller_hosts{state="up"})'),), kind="stat", width=6),
        P("Hosts down", (q('sum(pagetide_controller_hosts{state="down"})'),), kind="stat", width=6),
        P("Agents scraped", (q('sum(up{job="pagetide-agent"})'),), kind="stat", width=6,
          description="Agent metrics endpoints Prometheus reaches"),
        P("Placement policy", (q("pagetide_controller_placement_policy_info", "{{policy}}"),), kind="stat",
          width=6),
    )),
    ("Memory", (
        P("Memory used by tier", (q("sum by (tier) (pagetide_node_used_bytes)", "{{tier}}"),), "bytes"),
        P("Memory free by tier", (q("sum by (tier) (pagetide_node_free_bytes)", "{{tier}}"),), "bytes"),
        P("DRAM used per host", (q('sum by (host) (pagetide_node_used_bytes{tier="dram"}) / sum by (host) '
                                   '(pagetide_node_capacity_bytes{tier="dram"})', "{{host}}"),), "percentunit"),
        P("Kernel reclaim (pages/s)", vmstat(["pgsteal_kswapd", "pgsteal_direct", "pswpout"], ""), "short"),
    )),
    ("Migration", (
        P("Migration traffic by mover", (q(f"sum by (mover) (rate(pagetide_migrated_bytes_total[{RATE}]))",
                                           "{{mover}}"),), "Bps"),
        P("Promotions and demotions (pages/s)", (q(
            f"sum by (mover, source_tier, destination_tier) (rate(pagetide_migrated_pages_total[{RATE}]))",
            "{{mover}} {{source_tier}} -> {{destination_tier}}"),), "short"),
    )),
    ("Controller", (
        P("Round time", quantiles("pagetide_controller_round_duration_seconds"), "s"),
        P("Rounds per second", (q(f"sum(rate(pagetide_controller_host_rounds_total[{RATE}]))", "rounds/s"),),
          "short"),
    )),
    ("Simulation only", (
        P("DRAM-served share against the oracle (simulation)", (
            q("avg(pagetide_sim_host_dram_served_ratio)", "pagetide"),
            q("avg(pagetide_sim_host_oracle_dram_served_ratio)", "per-epoch oracle")), "percentunit"),
        P("Slowdown against all-DRAM (simulation)", (q("avg(pagetide_sim_host_slowdown_ratio)", "mean"),
                                                     q("max(pagetide_sim_host_slowdown_ratio)", "worst host")),
          "short"),
    )),
))

HOST_DASH = D("pagetide-host", "pagetide: host", "One host: memory by node, VMs' placement, migration traffic, "
              "kernel against controller moves, vmstat, move_pages errors, scan time.", (
    ("Memory by node", (
        P("Memory by node", (q(f"pagetide_node_used_bytes{HOST}", "used node {{node}} ({{tier}})"),
                             q(f"pagetide_node_free_bytes{HOST}", "free node {{node}} ({{tier}})"),
                             q(f"pagetide_node_page_table_bytes{HOST}", "page tables node {{node}}")), "bytes"),
        P("VMs on DRAM", (q(f'sum by (vm) (pagetide_vm_resident_bytes{{host="$host", tier="dram"}})', "{{vm}}"),),
          "bytes", stack=True),
        P("VMs on slow tiers", (q(f'sum by (vm) (pagetide_vm_resident_bytes{{host="$host", tier!="dram"}})',
                                  "{{vm}}"),), "bytes", stack=True),
        P("Host up (controller's view)", (q(f"pagetide_controller_host_up{HOST}", "up"),), kind="stat", width=6),
        P("VM policies, paused", (q(f"pagetide_controller_vm_policies{HOST}", "VM policies"),
                                  q(f"pagetide_controller_migration_paused{HOST}", "paused")), kind="stat", width=6),
    )),
    ("Migration", (
        P("Migration traffic", (q(f"sum by (mover, source_tier, destination_tier) "
                                  f"(rate(pagetide_migrated_bytes_total{HOST}[{RATE}]))",
                                  "{{mover}} {{source_tier}} -> {{destination_tier}}"),), "Bps"),
        P("Kernel against controller moves (pages/s)", (q(
            f"sum by (mover) (rate(pagetide_migrated_pages_total{HOST}[{RATE}]))", "{{mover}}"),), "short"),
        P("Demotion and promotion (vmstat, pages/s)", vmstat(["pgdemote_kswapd", "pgdemote_direct",
                                                             "pgpromote_success"], HOST), "short"),
        P("Migration and reclaim (vmstat, pages/s)", vmstat(["pgmigrate_success", "pgmigrate_fail",
                                                            "pgsteal_kswapd", "pgsteal_direct", "pswpout",
                                                            "pswpin"], HOST), "short"),
        P("move_pages errors by errno (pages/s)", (q(
            f"sum by (errno) (rate(pagetide_agent_move_page_errors_total{HOST}[{RATE}])) or vector(0)",
            "{{errno}}"),), "short"),
        P("Controller's moves (bytes/s)", (q(
            f"sum by (direction) (rate(pagetide_controller_migrated_bytes_total{HOST}[{RATE}]))", "{{direction}}"),),
          "Bps"),
    )),
    ("Tracking and rounds", (
        P("Scan time", quantiles("pagetide_agent_scan_duration_seconds", HOST), "s"),
        P("Heat report size", (q(f"pagetide_controller_heat_report_bytes{HOST}", "last report"),), "bytes"),
        P("Rounds per second", (q(f"rate(pagetide_controller_host_rounds_total{HOST}[{RATE}])", "rounds/s"),),
          "short"),
        P("DRAM-served share against the oracle (simulation)", (
            q(f"pagetide_sim_host_dram_served_ratio{HOST}", "pagetide"),
            q(f"pagetide_sim_host_oracle_dram_served_ratio{HOST}", "per-epoch oracle")), "percentunit"),
    )),
), variables=(HOST_VAR,))

VM_DASH = D("pagetide-vm", "pagetide: VM", "One VM: placement over time against its DRAM target, DRAM-served "
            "share against the oracle (simulations), slowdown.", (
    ("Placement", (
        P("Placement over time", (q(f"pagetide_vm_resident_bytes{VM}", "{{tier}}"),), "bytes", stack=True),
        P("DRAM target and resident", (q(f"pagetide_controller_vm_dram_target_bytes{VM}", "DRAM target"),
                                       q(f'pagetide_vm_resident_bytes{{host="$host", vm="$vm", tier="dram"}}',
                                         "on DRAM")), "bytes"),
        P("Footprint", (q(f"pagetide_vm_footprint_bytes{VM}"),), "bytes", kind="stat", width=6),
        P("Resident on DRAM", (q(f"pagetide_controller_vm_dram_resident_ratio{VM}"),), "percentunit", kind="stat",
          width=6),
    )),
    ("Service", (
        P("DRAM-served share", (q(f"pagetide_sim_vm_dram_served_ratio{VM}", "served by DRAM (simulation)"),
                                q(f"pagetide_sim_vm_oracle_dram_served_ratio{VM}", "per-epoch oracle (simulation)"),
                                q(f"pagetide_controller_vm_dram_heat_ratio{VM}", "heat on DRAM (controller)")),
          "percentunit", description="The simulation's accounting and its oracle (absent on real hosts) "
          "beside the controller's estimate from idle page tracking"),
        P("Slowdown against all-DRAM (simulation)", (q(f"pagetide_sim_vm_slowdown_ratio{VM}", "pagetide"),
                                                     q(f"pagetide_sim_vm_oracle_slowdown_ratio{VM}",
                                                       "per-epoch oracle")), "short"),
    )),
), variables=(HOST_VAR, VM_VAR))

CONTROLLER = D("pagetide-controller", "pagetide: controller health", "The controller itself: round time and "
               "its phases, heat report sizes, errors, RPCs, hosts down.", (
    ("Rounds", (
        P("Round time", quantiles("pagetide_controller_round_duration_seconds", qs=(0.5, 0.9, 0.99)), "s"),
        P("Round phases (p99)", tuple(q(f"histogram_quantile(0.99, sum by (le) (rate("
                                        f"pagetide_controller_{ph}_duration_seconds_bucket[{RATE}])))", ph)
                                      for ph in ("report", "plan", "move")), "s"),
        P("Heat report size", (q("max(pagetide_controller_heat_report_bytes)", "largest host"),
                               *quantiles("pagetide_controller_heat_report_size_bytes", qs=(0.99,))), "bytes"),
        P("Seconds since each host's last round", (q("time() - pagetide_controller_host_last_round_timestamp_seconds",
                                                     "{{host}}"),), "s"),
    )),
    ("Hosts", (
        P("Hosts by state", (q("pagetide_controller_hosts", "{{state}}"),), "short"),
        P("Missed deadlines and outages (per second)", (
            q(f"sum(rate(pagetide_controller_host_missed_deadlines_total[{RATE}]))", "missed deadlines"),
            q(f"sum(rate(pagetide_controller_host_outages_total[{RATE}]))", "outages")), "short"),
        P("move_pages errors seen by the controller (pages/s)", (q(
            f"sum by (errno) (rate(pagetide_controller_move_page_errors_total[{RATE}])) or vector(0)", "{{errno}}"),),
          "short"),
        P("Policies in force", (q("sum(pagetide_controller_vm_policies)", "VM policies"),
                                q("sum(pagetide_controller_migration_paused)", "hosts paused")), kind="stat"),
    )),
    ("RPCs", (
        P("RPCs per second by method", (q(f"sum by (job, method) (rate(pagetide_rpc_server_handled_total[{RATE}]))",
                                          "{{job}} {{method}}"),), "reqps"),
        P("RPC errors by method and code", (q(
            f'sum by (job, method, code) (rate(pagetide_rpc_server_handled_total{{code!="OK"}}[{RATE}])) '
            "or vector(0)", "{{job}} {{method}} {{code}}"),), "reqps"),
        P("RPC latency p99 by method", quantiles("pagetide_rpc_server_handling_seconds", by="method", qs=(0.99,)),
          "s", width=24),
        P("Agent readings shown stale (per second)", (q(
            f"sum by (host) (rate(pagetide_agent_stale_readings_total[{RATE}])) or vector(0)", "{{host}}"),), "short",
          description="Scrapes that found a host busy past the deadline and showed its previous reading"),
    )),
))

DASHBOARDS = (FLEET, HOST_DASH, VM_DASH, CONTROLLER)


def build(d: D) -> dict:
    """The dashboard as Grafana JSON, through the SDK's builders."""
    from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.builders import common
    from grafana_foundation_sdk.models.common import (
        BigValueGraphMode, LegendDisplayMode, LegendPlacement, SortOrder, StackingMode, TooltipDisplayMode,
    )
    from grafana_foundation_sdk.models.dashboard import DashboardLinkType, DataSourceRef, VariableRefresh

    ds = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    b = (dashboard.Dashboard(d.title).uid(d.uid).description(d.description).tags(["pagetide"])
         .refresh("30s").time("now-1h", "now").timezone("browser")
         # the other pagetide dashboards, keeping the time range and the host and VM chosen
         .link(dashboard.DashboardLink("pagetide").type(DashboardLinkType.DASHBOARDS).tags(["pagetide"])
               .as_dropdown(True).include_vars(True).keep_time(True)))
    for name, query in d.variables:
        b = b.with_variable(dashboard.QueryVariable(name).label(name).datasource(ds).query(query)
                            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
    pid = 0
    for row, panels in d.rows:
        pid += 1
        b = b.with_row(dashboard.Row(row).id(pid))
        for p in panels:
            pid += 1
            if p.kind == "stat":
                pb = (stat.Panel().graph_mode(BigValueGraphMode.AREA)
                      .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
            else:
                pb = (timeseries.Panel()
                      .legend(common.VizLegendOptions().display_mode(LegendDisplayMode.LIST)
                              .placement(LegendPlacement.BOTTOM).show_legend(True))
                      .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)))
            pb = pb.id(pid).title(p.title).datasource(ds)
            pb = pb.unit(p.unit).span(p.width).height(4 if p.kind == "stat" else 8)
            if p.description:
                pb = pb.description(p.description)
            if p.stack and p.kind == "timeseries":
                pb = pb.stacking(common.StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(40)
            for i, (expr, legend) in enumerate(p.targets):
                t = prometheus.Dataquery().expr(expr).ref_id(chr(ord("A") + i)).datasource(ds)
                if legend:
                    t = t.legend_format(legend)
                pb = pb.with_target(t)
            b = b.with_panel(pb)
    return json.loads(json.dumps(b.build(), cls=JSONEncoder))


def render(d: D) -> str:
    return json.dumps(build(d), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pagetide.harness.dashboards", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(OUT), help=f"directory (default {OUT})")
    ap.add_argument("--check", action="store_true", help="only compare: exit 1 naming the files that differ")
    args = ap.parse_args(argv)
    out, stale = Path(args.out), []
    for d in DASHBOARDS:
        path = out / f"{d.uid}.json"
        text = render(d)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("stale (run python -m pagetide.harness.dashboards): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
