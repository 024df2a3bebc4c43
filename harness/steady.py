"""NBT's promotion rate limit in steady state, for `pagetide bench`'s published-trends table.

Linux 6.1's rate limit (numa_balancing_promote_rate_limit_MBps) was published with long runs of a stable
workload: the hot threshold adapts every 60 s until the promotion candidates match the limit, and from then
on the limit trims promotions at little cost. The suite's 30 s host runs end before the first adjustment
and while the limited NBT is still moving the hot set in, so they measure the transient. Here each stable
synthetic host of the grid runs in process (no controller: NBT is the kernel's) with and without the limit
for `seconds`, and only the last `window` seconds are compared: memory time per access (accesses at loaded
latency, copies, shootdowns, hint faults, reclaim and swap-in stalls, as the report's slowdown counts) and
bytes promoted. Pure shell around the model: no Ray, no gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass

from pagetide.agent.pageflags import PAGE_SIZE

STABLE = ("zipf", "hotset", "write-heavy", "idle-vm")   # workloads whose hot set does not move (no scan)
SECONDS, WINDOW = 300, 60
QUICK_SECONDS, QUICK_WINDOW = 120, 30


@dataclass
class Window:
    """What the host's tenants did in the measured window."""
    accesses: float
    memory_time: float        # seconds
    dram_accesses: float
    promoted_bytes: int

    @property
    def ns_per_access(self) -> float:
        return self.memory_time / self.accesses * 1e9 if self.accesses else 0.0


def _totals(host) -> tuple[float, float, float, int]:
    acc = stall = dram = 0.0
    for t in host.tenants:
        st = t.stats
        served = st.reads + st.writes
        acc += float(served.sum())
        dram += float(served[host.is_fast].sum())
        stall += st.access_time + st.migration_time + st.reclaim_time + st.swapin_time + st.hint_fault_time
    return acc, stall, dram, int(host.vmstat["pgpromote_success"]) * PAGE_SIZE


def steady_window(scenario, seconds: int, window: int) -> Window:
    """Run a host of `scenario` for `seconds` and measure its last `window` seconds."""
    from pagetide.agent.simhost import SimHost

    if not 0 < window <= seconds:
        raise ValueError(f"window must be within 1..{seconds} s, got {window}")
    sim = SimHost(scenario)
    per_second = int(round(1.0 / scenario.tick))
    sim.advance((seconds - window) * per_second)
    a0 = _totals(sim.host)
    sim.advance(window * per_second)
    a1 = _totals(sim.host)
    return Window(*(y - x for x, y in zip(a0, a1)))


def rate_limit_pairs(cases, scenario_for, seconds: int = SECONDS, window: int = WINDOW, progress=None) -> list[dict]:
    """Per stable case: the unlimited and the limited NBT's last window. `scenario_for(case, run)` gives the
    parsed scenario of a run ("nbt" or "nbt-ratelimit")."""
    rows = []
    for c in cases:
        if c.workload not in STABLE:
            continue
        free, lim = (steady_window(scenario_for(c, run), seconds, window) for run in ("nbt", "nbt-ratelimit"))
        rows.append({"workload": c.workload, "share": c.share, "seconds": seconds, "window": window,
                     "free": vars(free), "limited": vars(lim)})
    if progress:
        progress(f"rate limit in steady state: {len(rows)} hosts, {seconds} s each, last {window} s compared")
    return rows


def summarize(rows: list[dict]) -> dict:
    """Promotion traffic of the window, unlimited over limited, and the limited runs' mean extra memory time
    per access and mean DRAM-served share points lost."""
    free = sum(r["free"]["promoted_bytes"] for r in rows)
    lim = sum(r["limited"]["promoted_bytes"] for r in rows)
    ns = lambda w: w["memory_time"] / w["accesses"] if w["accesses"] else 0.0
    share = lambda w: w["dram_accesses"] / w["accesses"] if w["accesses"] else 1.0
    slower = sum(ns(r["limited"]) / ns(r["free"]) for r in rows if ns(r["free"])) / len(rows) - 1
    lost = sum(share(r["free"]) - share(r["limited"]) for r in rows) / len(rows)
    return {"free_bytes": free, "limited_bytes": lim, "cut": free / lim if lim else float("inf"),
            "slower": slower, "share_lost": lost, "hosts": len(rows),
            "seconds": rows[0]["seconds"], "window": rows[0]["window"]}
