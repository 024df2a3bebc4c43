"""`pagetide bench-host`: how fast the host model scans and how much state it keeps per page.

Builds a host whose tenants map `size` of 4 KiB pages (DRAM a quarter of memory), boots it, runs a few ticks
so Accessed bits are set, then times whole idle_pages scans of every tenant: the agent's vectorised fast path
and the byte-stream path (encode + decode). Reported per core: the process is single-threaded.
"""

from __future__ import annotations

import time

from pagetide.common import units
from pagetide.agent.host import Host
from pagetide.agent.idle_pages import decode_arrays, scan_fast, scan_stream
from pagetide.agent.pageflags import PAGE_SIZE
from pagetide.agent.scanner import Scanner
from pagetide.agent.scenario import parse_scenario

KERNEL_WALK_RATE = 134e6   # pages/s: 1 TiB of 4 KiB pages in 2 s of system time (DESIGN.md section 1.2)


def bench_scenario(size: int, nr_tenants: int = 4) -> dict:
    per = size // nr_tenants // (2 << 20) * (2 << 20)
    dram = size // 4
    slow = size - dram + (256 << 20)       # room for the page tables and watermarks
    return {
        "name": f"bench-{units.format_size(size).replace(' ', '')}", "seed": 1, "tick": "100ms",
        "duration": "1s",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": dram, "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": slow}]},
        "tenants": [{"name": f"vm{i}", "footprint": per, "workload": {"type": "zipf"}}
                    for i in range(nr_tenants)],
    }


def _timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_host_bench(size: str | int = "16GiB", repeat: int = 20) -> str:
    size = units.parse_size(size)
    t0 = time.perf_counter()
    host = Host(parse_scenario(bench_scenario(size)))
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    host.boot()
    t_boot = time.perf_counter() - t0
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
    rows = [
        ("host", f"{units.format_size(pages * PAGE_SIZE)} of 4 KiB pages = {pages:,} pages, "
                 f"{len(host.tenants)} VMs, DRAM {units.format_size(int(host.capacity[0]) * PAGE_SIZE)}"),
        ("build / boot (prefault)", f"{t_build:.2f} s / {t_boot:.2f} s"),
        ("tick (sampled accesses + kswapd)", f"{t_tick * 1e3:.1f} ms"),
        ("scan, fast path", f"{pages / t_fast / 1e6:,.0f} M pages/s per core "
                            f"({pages / t_fast / KERNEL_WALK_RATE:.1f}x the kernel's 134 M/s)"),
        ("scan, byte stream (read)", f"{pages / t_stream / 1e6:,.0f} M pages/s per core ({len(data):,} bytes per VM)"),
        ("decode byte stream", f"{pages / t_decode / 1e6:,.0f} M pages/s per core"),
        ("scanner.scan (refs += accessed)", f"{pages / t_scanner / 1e6:,.0f} M pages/s per core"),
        ("heat report, all tenants", f"{t_report * 1e3:.1f} ms"),
        ("state per page", f"{model_bytes} B host model (node, flags, lru_seq) + {scanner_bytes} B scanner "
                           f"(refs, heat) = {model_bytes + scanner_bytes} B"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
