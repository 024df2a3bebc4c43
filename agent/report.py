"""Text tables of simulation results (the output of `pagetide run`), formatted with `units`."""

from __future__ import annotations

from pagetide.agent.accounting import HostResult
from pagetide.common.units import format_ratio, format_size


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _x(v: float) -> str:
    return f"{v:.3f}x"


def _lag(share: float, lag: float) -> str:
    """A DRAM share over the lag-one oracle's."""
    return f"{share / lag:.3f}" if lag else "-"


def host_report(kernel: HostResult, first_touch: HostResult | None = None) -> str:
    """Per tenant: DRAM-served share under the kernel mode, first-touch and the oracles (per-epoch, static,
    lag-one and the ratio to it), and modelled slowdown against all-DRAM (the lag-one oracle's paying the
    model's migration cost)."""
    headers = ["tenant", "workload", "footprint", "DRAM share", "first-touch", "epoch oracle",
               "static oracle", "lag-one", "vs lag-one", "lag-one+cost slowdown", "slowdown", "ft slowdown", "oracle slowdown", "all-slow", "migrated",
               "ping-pong"]
    ft = {t.name: t for t in first_touch.tenants} if first_touch else {}
    rows = []
    for t in kernel.tenants:
        f = ft.get(t.name)
        rows.append([t.name, t.workload, format_size(t.footprint), format_ratio(t.dram_share),
                     format_ratio(f.dram_share) if f else "-", format_ratio(t.oracle_share),
                     format_ratio(t.static_oracle_share), format_ratio(t.lag_oracle_share),
                     _lag(t.dram_share, t.lag_oracle_share), _x(t.lag_cost_slowdown), _x(t.slowdown), _x(f.slowdown) if f else "-",
                     _x(t.oracle_slowdown), _x(t.all_slow_slowdown), format_size(t.migrated_bytes),
                     str(t.pingpong)])
    rows.append(["(host)", "", format_size(sum(t.footprint for t in kernel.tenants)),
                 format_ratio(kernel.dram_share), format_ratio(first_touch.dram_share) if first_touch else "-",
                 format_ratio(kernel.oracle_share), "", format_ratio(kernel.lag_oracle_share),
                 _lag(kernel.dram_share, kernel.lag_oracle_share), _x(kernel.lag_cost_slowdown), _x(kernel.slowdown),
                 _x(first_touch.slowdown) if first_touch else "-", "", "",
                 format_size(sum(t.migrated_bytes for t in kernel.tenants)),
                 str(sum(t.pingpong for t in kernel.tenants))])
    out = [f"host {kernel.name}: {kernel.time:.1f} s simulated, kernel tiering mode {kernel.tiering}",
           table(headers, rows), ""]
    nodes = ["node", "used", "capacity"]
    out.append(table(nodes, [[str(i), format_size(u), format_size(c)]
                             for i, (u, c) in enumerate(zip(kernel.node_used_bytes, kernel.node_capacity_bytes))]))
    out.append("")
    if len(kernel.tier_share) > 2:
        out.append(tier_table(kernel))
        out.append("")
    out.append("vmstat: " + ", ".join(f"{k} {v}" for k, v in kernel.vmstat.items() if v))
    return "\n".join(out)


def tier_table(r: HostResult) -> str:
    """On a host of more than two memory tiers: per tenant, the share of its accesses each tier served (top
    first) beside the per-epoch oracle's."""
    n = len(r.tier_share)
    headers = ["tenant"] + [f"tier {i}" for i in range(n)] + [f"oracle tier {i}" for i in range(n)]
    rows = [[t.name] + [format_ratio(x) for x in t.tier_share] + [format_ratio(x) for x in t.oracle_tier_share]
            for t in r.tenants]
    rows.append(["(host)"] + [format_ratio(x) for x in r.tier_share] + [format_ratio(x) for x in r.oracle_tier_share])
    return "accesses served per memory tier (0 = DRAM)\n" + table(headers, rows)
