"""`pagetide bench-host`: how fast the host model runs and scans, and how much memory it keeps per page.

Builds a host whose tenants map `size` of 4 KiB pages (DRAM a quarter of memory) as the agent's simulated host
(`SimHost`: the model, its idle_pages tracker and the run's accounting with its oracles) and times its start-up
(building it and booting: the prefault of every page) and whole simulated seconds (the period's ticks of
sampled accesses and kswapd, its scans, the oracles' epoch and a heat report). Then, on the same host, times
single ticks and whole idle_pages scans of every tenant: the agent's vectorised fast path and the byte-stream
path (encode + decode). Reported per core: the process is single-threaded, so on an idle machine its wall
time is its CPU time; on a shared one the CPU time is the figure that compares between runs. Peak memory is
the process's peak resident set (getrusage), which includes the interpreter and numpy (about 36 MiB before
the host is built); bytes per page count what the host added to it.
"""

from __future__ import annotations

import resource
import time

from pagetide.common import units
from pagetide.agent.idle_pages import decode_arrays, scan_fast, scan_stream
from pagetide.agent.pageflags import PAGE_SIZE
from pagetide.agent.scanner import KERNEL_WALK_PAGES_PER_S, Scanner
from pagetide.agent.scenario import parse_scenario
from pagetide.agent.simhost import SimHost


def bench_scenario(size: int, nr_tenants: int = 4, workload: str = "zipf") -> dict:
    per = size // nr_tenants // (2 << 20) * (2 << 20)
    dram = size // 4
    slow = size - dram + (256 << 20)       # room for the page tables and watermarks
    return {
        "name": f"bench-{units.format_size(size).replace(' ', '')}", "seed": 1, "tick": "100ms",
        "duration": "1s", "epoch": "1s",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": dram, "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": slow}]},
        "tenants": [{"name": f"vm{i}", "footprint": per, "workload": {"type": workload}}
                    for i in range(nr_tenants)],
    }


def peak_rss() -> int:
    """The process's peak resident set so far, in bytes (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_host_bench(size: str | int = "16GiB", repeat: int = 20, workload: str = "zipf", seconds: int = 5) -> str:
    size = units.parse_size(size)
    rss0 = peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    sim = SimHost(parse_scenario(bench_scenario(size, workload=workload)))
    t_start, c_start = time.perf_counter() - t0, time.process_time() - c0
    rss_start = peak_rss()
    host = sim.host
    per = sim.scenario.ticks_per_epoch
    sim.advance(per)                  # the first period: the oracles' first epoch, the tracker's first fold
    sim.heat_report(4096)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(seconds):
        sim.advance(per)
        sim.heat_report(4096)
    simulated = seconds * per * sim.scenario.tick
    t_second, c_second = (time.perf_counter() - t0) / simulated, (time.process_time() - c0) / simulated
    rss_run = peak_rss()
    ticks = 10
    t0 = time.perf_counter()
    for _ in range(ticks):
        host.run_tick()
    t_tick = (time.perf_counter() - t0) / ticks
    host.check_invariants()
    pages = host.nr_pages
    vmas = [host.vma(t) for t in host.tenants]

    t_fast = _timed(lambda: scan_fast(vmas), repeat)
    t_stream = _timed(lambda: [scan_stream([v]) for v in vmas], max(1, repeat // 5))
    data = scan_stream(vmas[:1])
    t_decode = _timed(lambda: decode_arrays(data), max(1, repeat // 5)) * len(vmas)
    scanner = Scanner(host)
    t_scanner = _timed(scanner.scan, repeat)
    t_report = _timed(lambda: [scanner.tenant_heat(t, 4096) for t in host.tenants], max(1, repeat // 5))

    model_bytes = host.state_bytes_per_page()
    scanner_bytes = scanner.refs.itemsize + scanner.heat.itemsize
    mib = 1 << 20
    rows = [
        ("host", f"{units.format_size(pages * PAGE_SIZE)} of 4 KiB pages = {pages:,} pages, "
                 f"{len(host.tenants)} VMs ({workload}), DRAM {units.format_size(int(host.capacity[0]) * PAGE_SIZE)}"),
        ("start-up (build + boot: prefault)", f"{t_start:.2f} s wall, {c_start:.2f} s CPU"),
        ("simulated second (ticks, scans, oracles, heat report)", f"{t_second:.3f} s wall, {c_second:.3f} s CPU"),
        ("peak RSS: before / after start-up / after running", f"{rss0 / mib:,.0f} / {rss_start / mib:,.0f} / "
                                                              f"{rss_run / mib:,.0f} MiB = "
                                                              f"{(rss_run - rss0) / pages:.1f} B per page above the "
                                                              f"interpreter"),
        ("tick (sampled accesses + kswapd)", f"{t_tick * 1e3:.1f} ms"),
        ("scan, fast path", f"{pages / t_fast / 1e6:,.0f} M pages/s per core "
                            f"({pages / t_fast / KERNEL_WALK_PAGES_PER_S:.1f}x the kernel's 134 M/s)"),
        ("scan, byte stream (read)", f"{pages / t_stream / 1e6:,.0f} M pages/s per core ({len(data):,} bytes per VM)"),
        ("decode byte stream", f"{pages / t_decode / 1e6:,.0f} M pages/s per core"),
        ("scanner.scan (refs += accessed)", f"{pages / t_scanner / 1e6:,.0f} M pages/s per core"),
        ("heat report, all tenants", f"{t_report * 1e3:.1f} ms"),
        ("state per page", f"{model_bytes} B host model (node, flags, lru_seq) + {scanner_bytes} B scanner "
                           f"(refs, heat) = {model_bytes + scanner_bytes} B"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
