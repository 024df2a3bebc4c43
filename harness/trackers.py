"""The tracker table of `pagetide bench`: how well each heat tracker (agent/backend.py TRACKERS) ranks pages
against exact counts, and what it costs.

For every host of the suite and every tracker, the host model runs with no controller (placement does not
change what a tracker sees: the access stream is seeded and A bits are set by accesses wherever the page is)
and, after each period, the tracker's ranking is scored against the workload's exact expected accesses:

- same period: the share of the period's top-k accesses (k = the host's DRAM budget) that the tracker's top
  k pages hold -- pure resolution (ties at the cut split evenly);
- next period: the same for the *next* period's top k -- what placing the tracker's top k would serve a
  reactive policy with no migration limit; next to it the lag-one oracle's figure (this period's exact top
  k, scored on the next period), which bounds any reactive signal.

Cost: each tracker's own model of the host CPU it takes (`Tracker.cost_seconds()`: the idle_pages walk at the
RFC's 134 M pages/s, PEBS samples at ~300 ns each, CHMU hot-list reads, NUMA hint faults at 1 us each and
their arming walks; the trackers' docstrings cite their
figures), per simulated second and GiB tracked, as a share of one core; and the model's own tracker time
(scans, per-tick sampling, folds) per period measured here in CPU time. A tracker that cannot apply to a host
(chmu without a CXL or PMEM node) has no figures there, and the table says so. Pure shell around the model: no
Ray, no gRPC.
"""

from __future__ import annotations

import time

import numpy as np

GIB_PAGES = (1 << 30) // 4096


def captured(score: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of the top-k of `truth` that the top-k pages by `score` hold (ties at the cut split evenly)."""
    k = min(k, truth.size)
    if k <= 0:
        return 1.0
    best = np.partition(truth, truth.size - k)[truth.size - k:].sum()
    if best <= 0:
        return 1.0
    cut = np.partition(score, score.size - k)[score.size - k]
    above, at = score > cut, score == cut
    need = k - int(above.sum())
    got = truth[above].sum() + truth[at].sum() * need / max(1, int(at.sum()))
    return float(got / best)


def expected(host, start: int, ticks: int) -> np.ndarray:
    """Expected accesses per page slot over ticks [start, start + ticks) (as the oracles rank pages)."""
    out = np.zeros(host.nr_pages)
    for t in host.tenants:
        wl = t.workload
        if wl.MOVES_EVERY_TICK:
            p = sum(wl.probabilities(start + i) for i in range(ticks))
        else:
            p = wl.probabilities(start + ticks // 2) * ticks
        out[t.start:t.end] = p * wl.rate * wl.tick_s
    return out


def score_of(tracker) -> np.ndarray:
    """The tracker's ranking key per page: its finest internal heat where it keeps one."""
    return np.asarray(getattr(tracker, "long", tracker.heat), dtype=np.float64)


def applies(scenario) -> bool:
    """Whether the scenario's tracker can run on its host: chmu needs a device-side slow node (CXL or PMEM)."""
    return scenario.tracker != "chmu" or any(n.type != "dram" for n in scenario.nodes)


def timed(sim) -> list[float]:
    """Wrap the tracker's per-tick, per-scan and per-period work so its CPU seconds (this process's: a figure
    that other work on a shared machine does not inflate, as it does wall time) add up in the returned list."""
    spent = [0.0]
    for name in ("observe", "scan", "end_period"):
        inner = getattr(sim.tracker, name)

        def wrapper(*a, _inner=inner):
            t0 = time.process_time()
            _inner(*a)
            spent[0] += time.process_time() - t0
        setattr(sim.tracker, name, wrapper)
    return spent


def measure(scenario, periods: int, skip: int = 2) -> dict:
    """One tracker on one host (the scenario's host.tracker) over `periods` periods; {"applies": False} where
    it cannot run."""
    from pagetide.agent.simhost import SimHost

    if not applies(scenario):
        return {"applies": False}
    sim = SimHost(scenario)
    spent = timed(sim)
    h = sim.host
    k = sim.recorder.dram_budget()
    ticks = h.scenario.ticks_per_epoch
    same, nxt, lag = [], [], []
    prev_score = prev_truth = None
    seconds = 0.0
    for r in range(periods):
        start = h.tick_no
        t0 = time.perf_counter()
        sim.advance(ticks)
        seconds += time.perf_counter() - t0
        truth = expected(h, start, ticks)
        if r >= skip:
            same.append(captured(score_of(sim.tracker), truth, k))
            if prev_score is not None:
                nxt.append(captured(prev_score, truth, k))
                lag.append(captured(prev_truth, truth, k))
        prev_score, prev_truth = score_of(sim.tracker), truth
    gib = h.nr_pages / GIB_PAGES
    return {"applies": True, "same": float(np.mean(same)), "next": float(np.mean(nxt)), "lag": float(np.mean(lag)),
            "core_share_per_gib": sim.tracker.cost_seconds() / h.time / gib,
            "scan_ms_per_gib_period": spent[0] * 1e3 / periods / gib}


def tracker_table(cases, scenario_for, trackers: tuple[str, ...], periods: int, progress=None) -> dict:
    """Per tracker and case: `measure`. `scenario_for(case, tracker)` gives the parsed scenario."""
    out = {}
    for name in trackers:
        rows = []
        for c in cases:
            m = measure(scenario_for(c, name), periods)
            rows.append({"workload": c.workload, "share": c.share, **m})
        out[name] = rows
        if progress:
            progress(f"tracker table: {name} on {len(cases)} hosts")
    return out


def table_lines(table: dict, placement: dict[str, dict[int, float]], runs: dict[str, str]) -> list[str]:
    """Markdown: per tracker, mean captures over the suite's hosts, cost, and pagetide's placement with it
    (`placement`: run -> share -> mean ratio to the per-epoch oracle; `runs`: tracker -> its bench run)."""
    if not table:
        return []
    lines = ["", "## Trackers", "",
             "Resolution against exact counts (each workload's expected accesses), mean over the suite's hosts: "
             "*same period* is the share of a period's top-k accesses (k = the DRAM budget) that the tracker's top "
             "k pages hold; *next period* the share of the next period's, which placing the tracker's top k would "
             "serve -- beside the lag-one oracle's (this period's exact top k) on the same footing. Cost: the "
             "host CPU each tracker models for itself (idle_pages walks at the RFC's 134 M pages/s; pebs ~300 ns "
             "per sample at 1 in 4,000 loads; chmu the DRAM pages' walks and the devices' hot-list reads; hint_faults "
             "1 us per NUMA hint fault, the slow pages' arming and the DRAM pages' walks), as a "
             "share of one core per GiB tracked, and the model's own tracker time (CPU time of its scans, per-tick "
             "sampling and folds). Placement: pagetide's "
             "policy on hosts with that tracker, mean ratio to the per-epoch oracle.", "",
             "| tracker | same period | next period | lag-one, next period | host CPU per GiB | model CPU ms per "
             "GiB-period | pagetide placement (1/2, 1/4, 1/8) |", "|---|---|---|---|---|---|---|"]
    for name, all_rows in table.items():
        rows = [r for r in all_rows if r.get("applies", True)]
        if not rows:
            lines.append(f"| {name} | n/a: no host of the suite has a slow node it can monitor | | | | | |")
            continue
        mean = lambda k: sum(r[k] for r in rows) / len(rows)
        pl = placement.get(runs.get(name, ""), {})
        note = f" (not on {len(all_rows) - len(rows)} hosts without a slow node)" if len(rows) < len(all_rows) else ""
        lines.append(f"| {name}{note} | {mean('same'):.3f} | {mean('next'):.3f} | {mean('lag'):.3f} | "
                     f"{mean('core_share_per_gib') * 100:.3f}% | {mean('scan_ms_per_gib_period'):.1f} | "
                     + (", ".join(f"{pl[s]:.3f}" for s in sorted(pl)) if pl else "n/a") + " |")
    worst = {name: min(rows, key=lambda r: r["next"] - r["lag"])
             for name, rows in ((n, [r for r in rs if r.get("applies", True)]) for n, rs in table.items()) if rows}
    lines += ["", "Largest shortfall of the next-period figure against the lag-one oracle's: " + "; ".join(
        f"{n} {r['workload']} 1/{r['share']}: {r['next']:.3f} vs {r['lag']:.3f}" for n, r in worst.items()) + "."]
    return lines
