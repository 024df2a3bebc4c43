"""The simulated model of the qemu guest's experiment (harness/guest.py), for a side-by-side with the real kernel.

`python -m pagetide.harness.guestmodel --scenario agent/scenarios/guest-nvdimm.yaml` runs the scenario that
mirrors the guest's nvdimm layout and workload (agent/scenarios/guest-nvdimm*.yaml: node sizes, 8192 pages
first-touched interleaved, a hot quarter, the filler) in the host model, once per mode as the guest does:
- `kernel`: the scenario's own kernel mode (NUMA-balancing tiering `nbt` with demotion on: the guest's
  numa_balancing=2 + demotion_enabled=1) and nothing else, for `--seconds`;
- `pagetide`: NUMA balancing and demotion off (as the guest's pagetide mode leaves them), the simulated host
  served by an in-process agent and reconciled one scan period at a time by the controller's host client with
  the pagetide policy and the VM's DRAM capped at 25 % of its footprint -- what harness/guest.py runs.
Per mode: the workload's hot pages (the workload's own hot set) on node 0 before and after, its cold pages on
node 1 after, the pages each side moved (the agent's move_pages count; the model's pgpromote_success,
pgdemote_* and pgmigrate_success), and whose pages kswapd demoted. The table's columns are harness/guest.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

from pagetide.agent.host import Host
from pagetide.agent.scenario import Scenario, load_scenario
from pagetide.agent.tiering import MODES, TieringSpec

WORKLOAD = "wl"          # the scenario's workload tenant; every other tenant is the filler
DRAM, SLOW = 0, 1


def placement(host: Host) -> tuple[np.ndarray, np.ndarray]:
    """The workload's pages' nodes (by page index) and its hot set as a mask."""
    t = host.tenant(WORKLOAD)
    hot = np.zeros(t.npages, dtype=bool)
    nhot = int(np.count_nonzero(t.workload.probabilities(0) > 1.0 / t.npages))
    hot[t.workload.hot_pages(0, nhot)] = True
    return host.node[t.start:t.end].astype(np.int64), hot


def summary(host: Host) -> dict[str, int]:
    node, hot = placement(host)
    return {"hot_on_0": int((node[hot] == DRAM).sum()), "hot_on_1": int((node[hot] == SLOW).sum()),
            "cold_on_0": int((node[~hot] == DRAM).sum()), "cold_on_1": int((node[~hot] == SLOW).sum()),
            "hot_pages": int(hot.sum()), "pages": int(hot.size)}


def demoted_by_tenant(host: Host) -> dict[str, int]:
    return {t.name: t.stats.demoted_pages for t in host.tenants if t.stats.demoted_pages}


def counters(host: Host) -> dict[str, int]:
    return {k: int(host.vmstat.get(k, 0)) for k in
            ("pgpromote_success", "pgdemote_kswapd", "pgdemote_direct", "pgmigrate_success", "numa_hint_faults")}


def run_kernel(scenario: Scenario, seconds: float) -> dict:
    host = Host(scenario)
    host.boot()
    before, v0 = summary(host), counters(host)
    hot_on_0 = []                     # the workload's hot pages on node 0 at the end of every epoch
    for _ in range(int(round(seconds / scenario.tick))):
        host.run_tick()
        if host.tick_no % scenario.ticks_per_epoch == 0:
            hot_on_0.append(summary(host)["hot_on_0"])
    v = counters(host)
    return {"mode": "kernel", "tiering": scenario.kernel.tiering.mode, "before": before, "after": summary(host),
            "hot_on_0_per_epoch": hot_on_0,
            "vmstat_delta": {k: v[k] - v0[k] for k in v}, "demoted_by_tenant": demoted_by_tenant(host)}


async def run_pagetide(scenario: Scenario, seconds: float, nr_scans: int = 4) -> dict:
    from pagetide.agent.server import start_agent
    from pagetide.agent.simhost import SimHost
    from pagetide.controller.hostclient import HostClient
    from pagetide.controller.policies import PolicyParams, VmPolicy

    scenario = scenario.with_kernel(demotion_enabled=False, tiering=TieringSpec())
    sim = SimHost(scenario, host_id="guest", nr_scans=nr_scans)
    host = sim.host
    before, v0 = summary(host), counters(host)
    agent = await start_agent([sim], "127.0.0.1:0", clock="driven")
    client = HostClient(f"127.0.0.1:{agent.port}", "guest")
    policies = {WORKLOAD: VmPolicy(max_dram_share=0.25)}
    rounds = []
    try:
        await client.get_topology()
        while sim.time < seconds - 1e-9:
            sim.advance(scenario.ticks_per_epoch)
            res = await client.reconcile(policies, PolicyParams(), wait=1.0)
            if res is None or not (res.promoted_bytes or res.demoted_bytes):
                continue
            rounds.append({"period": res.period, "seconds": round(sim.time, 1),
                           "promoted_pages": res.promoted_bytes // 4096, "demoted_pages": res.demoted_bytes // 4096,
                           "errors": {str(k): v for k, v in res.errors.items()}, **summary(host)})
    finally:
        await client.close()
        await agent.stop(grace=0)
    v = counters(host)
    wl = host.tenant(WORKLOAD).index
    return {"mode": "pagetide", "tiering": scenario.kernel.tiering.mode, "before": before, "after": summary(host),
            "rounds": rounds, "moved_pages": int(sum(r["promoted_pages"] + r["demoted_pages"] for r in rounds)),
            "vmstat_delta": {k: v[k] - v0[k] for k in v}, "demoted_by_tenant": demoted_by_tenant(host),
            "migrated_pages": host.migrated_pages.tolist(), "workload_index": wl}


def table(results: list[dict]) -> str:
    from pagetide.common.tables import table as fmt

    rows = []
    for r in results:
        b, a, v = r["before"], r["after"], r["vmstat_delta"]
        demoted = v["pgdemote_kswapd"] + v["pgdemote_direct"]
        moved = r["moved_pages"] if r["mode"] == "pagetide" else v["pgpromote_success"] + demoted
        rows.append([f"{r['mode']} (model, {r['tiering']})", f"{b['hot_on_0']}/{a['hot_pages']}",
                     f"{a['hot_on_0']}/{a['hot_pages']}", f"{a['cold_on_1']}/{a['pages'] - a['hot_pages']}",
                     str(moved), str(v["pgpromote_success"]), str(demoted), str(v["pgmigrate_success"]),
                     ", ".join(f"{k} {n}" for k, n in r["demoted_by_tenant"].items()) or "-"])
    return fmt(["mode", "hot on node 0 before", "hot on node 0 after", "cold on node 1 after", "pages moved",
                "pgpromote_success", "pgdemote_*", "pgmigrate_success", "demoted whose"], rows, left=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", type=Path, required=True, help="e.g. agent/scenarios/guest-nvdimm.yaml")
    p.add_argument("--mode", choices=("pagetide", "kernel"), action="append", help="default: both")
    p.add_argument("--seconds", type=float, default=30.0, help="simulated seconds per mode")
    p.add_argument("--tiering", choices=sorted(MODES),
                   help="the kernel mode's tiering instead of the scenario's (its default options), e.g. damos")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    scenario = load_scenario(str(args.scenario), tiering=args.tiering)
    if WORKLOAD not in {t.name for t in scenario.tenants}:
        p.error(f"--scenario: no tenant named {WORKLOAD!r} (the workload)")
    results = []
    for mode in args.mode or ["pagetide", "kernel"]:
        results.append(asyncio.run(run_pagetide(scenario, args.seconds)) if mode == "pagetide"
                       else run_kernel(scenario, args.seconds))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
