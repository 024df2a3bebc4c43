"""Real promotion and demotion across real NUMA nodes, run inside a qemu guest (harness/qemu.py).

Inside the guest (`python -m pagetide.harness.guest --out result.json`):
1. A workload process maps `pages` private anonymous pages and first-touches them interleaved over nodes 0
   and 1 (set_mempolicy MPOL_INTERLEAVE), then keeps writing a hot quarter of them (page i is hot when
   i % 8 is 0 or 3, so the hot pages start half on each node) and never touches the rest again.
2. `pagetide`: the agent's linux backend serves it as a VM (`vm:pid:N`: its buffer is the tracked range)
   with the soft-dirty tracker (the one Debian's 6.1 kernel offers), over gRPC on loopback; the controller's
   host client (controller/hostclient.py, what each Ray proxy runs) runs rounds with the pagetide policy and
   the VM's DRAM capped at a quarter of its footprint -- room for exactly its hot pages. The guest's NUMA
   balancing (on by default on a NUMA machine) is switched off, so pagetide alone moves pages.
   `kernel`: no pagetide; the guest's own tiering is switched on (demotion_enabled=1, numa_balancing=2) for
   the same time, on the same workload.
   `damos` (a 6.11+ kernel: `--kernel 6.12.118+deb12-amd64`): no pagetide, NUMA balancing off; DAMOS tiering
   through the guest's DAMON sysfs interface, a kdamond per node (`run_damos`): migrate_hot on node 1's
   physical range to node 0, migrate_cold on node 0's to node 1.
3. Where every page is, read back with move_pages queries, from its frame number, and the buffer's line of
   /proc/PID/numa_maps, before and after, and the pages each side moved: pagetide's move_pages results (and
   the agent's own count), the kernel's numa_pages_migrated, pgpromote_success and pgdemote_* (/proc/vmstat),
   the DAMOS schemes' stats.
   `--filler-mib` first fills node 0 with a cold process bound to it, for a run with DRAM under pressure.
The result is JSON (`--out`); tests/test_linux_guest.py boots the guest and checks it.

On the host, `--boot` boots one guest per `--mode` (harness/qemu.py, `--layout numa` or `nvdimm`: node 1 an
emulated NVDIMM onlined through dax kmem, in a lower memory tier, where the kernel's own tiering applies;
`--kernel RELEASE` for a kernel other than Debian's default) and
prints them side by side (BENCHMARKS.md "Real tiering in a guest").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PAGE = 4096
WORKLOAD = r"""
import ctypes, mmap, sys, time
n = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
mask = ctypes.c_ulong(0b11)
if libc.syscall(238, 3, ctypes.byref(mask), 64) != 0:          # set_mempolicy(MPOL_INTERLEAVE, {0,1})
    sys.exit("set_mempolicy failed: errno %d" % ctypes.get_errno())
buf = mmap.mmap(-1, n * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
buf.madvise(mmap.MADV_NOHUGEPAGE)       # 4 KiB pages: a THP would put hot and cold pages in one 2 MiB page
for i in range(n):
    buf[i * 4096] = 1
libc.syscall(238, 0, None, 0)                                    # back to the default policy
hot = [i * 4096 for i in range(n) if i % 8 in (0, 3)]
print(ctypes.addressof(ctypes.c_char.from_buffer(buf)), flush=True)
v = 1
while True:
    v = v % 250 + 1
    for a in hot:
        buf[a] = v
    time.sleep(0.02)
"""
FILLER = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
mask = ctypes.c_ulong(0b1)
if libc.syscall(238, 2, ctypes.byref(mask), 64) != 0:          # set_mempolicy(MPOL_BIND, {0})
    sys.exit("set_mempolicy failed: errno %d" % ctypes.get_errno())
n = int(sys.argv[1]) * 256
buf = mmap.mmap(-1, n * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
buf.madvise(mmap.MADV_NOHUGEPAGE)
for i in range(n):
    buf[i * 4096] = 1
print("filled", flush=True)
sys.stdin.read()
"""
VMSTAT = ("numa_pages_migrated", "pgpromote_success", "pgdemote_kswapd", "pgdemote_direct", "pgmigrate_success",
          "numa_hint_faults")


def hot_mask(pages: int) -> np.ndarray:
    return np.isin(np.arange(pages) % 8, (0, 3))


def placement(pid: int, base: int, pages: int) -> np.ndarray:
    from pagetide.agent.linux.move_pages import move_pages_array
    return move_pages_array(pid, np.arange(base, base + pages * PAGE, PAGE, dtype=np.uint64), None)


def placement_by_frame(pid: int, base: int, pages: int) -> np.ndarray:
    """Each page's node from its frame number (/proc/PID/pagemap) and the memory blocks of each node in sysfs:
    unlike a move_pages query it also sees pages whose PTE NUMA balancing made PROT_NONE (-1: not present)."""
    from pagetide.agent.linux.tenants import Range
    from pagetide.agent.linux.trackers import PM_PFN_MASK, PM_PRESENT, pagemap

    block = int(Path("/sys/devices/system/memory/block_size_bytes").read_text(), 16)
    owner = {}
    for d in Path("/sys/devices/system/node").glob("node[0-9]*"):
        for m in d.glob("memory[0-9]*"):
            owner[int(m.name.removeprefix("memory"))] = int(d.name.removeprefix("node"))
    table = np.full(max(owner) + 1, -1, np.int64)
    table[list(owner)] = list(owner.values())
    e = pagemap(pid, [Range(base, base + pages * PAGE, "rw-p", "")])
    blk = ((e & np.uint64(PM_PFN_MASK)).astype(np.int64) * PAGE) // block
    return np.where((e & np.uint64(PM_PRESENT)) != 0, table[np.minimum(blk, table.size - 1)], -1)


def numa_maps(pid: int, base: int) -> dict[str, int]:
    """The buffer's line of /proc/PID/numa_maps: pages per node (N0=..., N1=...)."""
    for line in Path(f"/proc/{pid}/numa_maps").read_text().splitlines():
        if int(line.split()[0], 16) == base:
            return {k: int(v) for k, v in re.findall(r"\b(N\d+)=(\d+)", line)}
    raise ValueError(f"no numa_maps line at {base:#x}")


def summary(node: np.ndarray, hot: np.ndarray) -> dict[str, int]:
    return {"hot_on_0": int((node[hot] == 0).sum()), "hot_on_1": int((node[hot] == 1).sum()),
            "cold_on_0": int((node[~hot] == 0).sum()), "cold_on_1": int((node[~hot] == 1).sum()),
            "not_found": int((node < 0).sum())}


def node0_free_mib() -> int:
    from pagetide.agent.linux.sysfs import node_meminfo
    return node_meminfo(0)["MemFree"] >> 20


def vmstat() -> dict[str, int]:
    from pagetide.agent.linux.sysfs import vmstat as read
    v = read()
    return {k: v.get(k, 0) for k in VMSTAT}


async def run_pagetide(pid: int, base: int, pages: int, seconds: float, period: float) -> dict:
    from pagetide.agent.linux.backend import LinuxHost, TenantSpec
    from pagetide.agent.server import start_agent
    from pagetide.controller.policies import PolicyParams, VmPolicy
    from pagetide.controller.hostclient import HostClient

    hot = hot_mask(pages)
    host = LinuxHost([TenantSpec("pid", str(pid), "wl", vm=True)], host_id="guest", tracker="soft_dirty",
                     nr_scans=4, period=period)
    agent = await start_agent([host], "127.0.0.1:0", clock="realtime")
    client = HostClient(f"127.0.0.1:{agent.port}", "guest")
    policies = {"wl": VmPolicy(max_dram_share=0.25)}
    rounds, t0 = [], time.monotonic()
    try:
        topo = await client.get_topology()
        while time.monotonic() - t0 < seconds:
            res = await client.reconcile(policies, PolicyParams(), wait=3 * period)
            if res is None:
                continue
            now = summary(placement(pid, base, pages), hot)
            rounds.append({"period": res.period, "promoted_pages": res.promoted_bytes // PAGE,
                           "demoted_pages": res.demoted_bytes // PAGE,
                           "errors": {str(k): v for k, v in res.errors.items()},
                           "seconds": round(time.monotonic() - t0, 2), **now})
            if now["hot_on_0"] == hot.sum() and now["cold_on_1"] == (~hot).sum():
                break
    finally:
        await client.close()
        await agent.stop(grace=0)
    usage = host.usage()
    return {"rounds": rounds, "tracker": host.tracker.name, "failed_scans": host.tracker.failed_scans,
            "move_pages_migrated": usage.move_pages_migrated, "migrated_pages": usage.migrated_pages, "tenant_kind": host.processes["wl"].kind,
            "footprint_pages": int(host.tracker.tenants["wl"].addresses.size),
            "nodes": [(n.id, int(n.type)) for n in topo.nodes],
            "moved_pages": int(sum(r["promoted_pages"] + r["demoted_pages"] for r in rounds))}


NUMA_BALANCING = Path("/proc/sys/kernel/numa_balancing")
DEMOTION = Path("/sys/kernel/mm/numa/demotion_enabled")


def knobs() -> dict[str, str]:
    return {"numa_balancing": NUMA_BALANCING.read_text().strip(), "demotion_enabled": DEMOTION.read_text().strip()}


def run_kernel(seconds: float) -> dict:
    DEMOTION.write_text("1")          # the guest's own settings, in the guest it booted
    NUMA_BALANCING.write_text("2")
    time.sleep(seconds)
    return {"knobs_kernel": knobs()}


DAMON = Path("/sys/kernel/mm/damon/admin")
# DAMOS tiering as HMSDK sets it up on 6.11+ (one kdamond per node, physical addresses: 6.12's migrate actions
# are implemented by the paddr operations set only): (action, the node monitored, the target node)
DAMOS_SCHEMES = (("migrate_hot", 1, 0), ("migrate_cold", 0, 1))
ULONG_MAX, UINT_MAX = 2 ** 64 - 1, 2 ** 32 - 1
DAMOS_STATS = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds")


def node_range(nid: int) -> tuple[int, int]:
    """The physical address range spanned by node nid's memory blocks."""
    block = int(Path("/sys/devices/system/memory/block_size_bytes").read_text(), 16)
    ids = [int(m.name.removeprefix("memory")) for m in Path(f"/sys/devices/system/node/node{nid}").glob("memory[0-9]*")]
    return min(ids) * block, (max(ids) + 1) * block


def _w(path: Path, value) -> None:
    path.write_text(f"{value}\n")


def run_damos(seconds: float, pid: int, ops: str = "paddr", sample_us: int = 5000, aggr_us: int = 100_000,
              cold_age: int = 10) -> dict:
    """DAMOS tiering in the guest: a kdamond per scheme through the DAMON sysfs interface, `migrate_hot` to node
    0 (regions accessed in at least 1 of an aggregation's samples) and `migrate_cold` to node 1 (regions not
    accessed for `cold_age` aggregations), no quotas; NUMA balancing off, demotion on. With `ops` paddr (what
    6.12 implements the migrate actions for) each monitors its source node's physical range, migrate_hot node
    1's and migrate_cold node 0's; with vaddr both monitor process `pid`. After `seconds`, each scheme's stats,
    then the kdamonds are switched off."""
    if not (DAMON / "kdamonds").is_dir():
        raise RuntimeError(f"no DAMON sysfs interface ({DAMON}): this mode needs a kernel with CONFIG_DAMON_SYSFS "
                           "and DAMOS migrate actions (6.11+, e.g. Debian's 6.12 backport)")
    NUMA_BALANCING.write_text("0")          # the guest's own settings, in the guest it booted
    DEMOTION.write_text("1")
    _w(DAMON / "kdamonds/nr_kdamonds", len(DAMOS_SCHEMES))
    schemes = []
    for k, (action, src, dst) in enumerate(DAMOS_SCHEMES):
        kd = DAMON / f"kdamonds/{k}"
        _w(kd / "contexts/nr_contexts", 1)
        ctx = kd / "contexts/0"
        _w(ctx / "operations", ops)
        attrs = ctx / "monitoring_attrs"
        _w(attrs / "intervals/sample_us", sample_us)
        _w(attrs / "intervals/aggr_us", aggr_us)
        _w(attrs / "intervals/update_us", 1_000_000)
        _w(attrs / "nr_regions/min", 10)
        _w(attrs / "nr_regions/max", 1000)
        _w(ctx / "targets/nr_targets", 1)
        if ops == "vaddr":
            _w(ctx / "targets/0/pid_target", pid)        # regions from the process's mappings
            target = {"pid": pid}
        else:
            _w(ctx / "targets/0/regions/nr_regions", 1)
            start, end = node_range(src)
            _w(ctx / "targets/0/regions/0/end", end)
            _w(ctx / "targets/0/regions/0/start", start)
            target = {"node": src, "range": [start, end]}
        _w(ctx / "schemes/nr_schemes", 1)
        sc = ctx / "schemes/0"
        _w(sc / "action", action)
        _w(sc / "target_nid", dst)
        # every bound written: a new scheme's ranges are [0, 0] (only empty, never-accessed, new regions)
        pattern = {"sz": (0, ULONG_MAX), "nr_accesses": (1, UINT_MAX), "age": (0, UINT_MAX)}
        if action == "migrate_cold":
            pattern.update(nr_accesses=(0, 0), age=(cold_age, UINT_MAX))
        for key, (lo, hi) in pattern.items():
            _w(sc / f"access_pattern/{key}/min", lo)
            _w(sc / f"access_pattern/{key}/max", hi)
        _w(kd / "state", "on")
        if (kd / "state").read_text().strip() != "on":
            raise RuntimeError(f"kdamond {k} ({action}) did not start: {(kd / 'state').read_text().strip()}")
        schemes.append({"action": action, "target_nid": dst, **target})
    time.sleep(seconds)
    for k, sc in enumerate(schemes):
        kd = DAMON / f"kdamonds/{k}"
        _w(kd / "state", "update_schemes_stats")
        stats = kd / "contexts/0/schemes/0/stats"
        sc["stats"] = {f: int((stats / f).read_text()) for f in DAMOS_STATS}
        _w(kd / "state", "off")
    return {"damos": schemes, "damon_ops": ops, "knobs_damos": knobs(),
            "damon_attrs": {"sample_us": sample_us, "aggr_us": aggr_us, "cold_age": cold_age}}


def boot_and_compare(modes: list[str], layout: str, pages: int, seconds: float, period: float,
                     filler_mib: int = 0, release: str | None = None, damon_ops: str = "paddr") -> list[dict]:
    """On the host: one fresh guest per mode, each running this module; their results, with the guest's time."""
    from pagetide.harness import qemu

    root = Path(__file__).resolve().parent.parent
    results = []
    for mode in modes:
        script = (qemu.SETUP_NVDIMM if layout == "nvdimm" else "") + (
            f"D=$(pwd); cd {root} && {sys.executable} -m pagetide.harness.guest --mode {mode} --pages {pages} "
            f"--seconds {seconds} --period {period} --filler-mib {filler_mib} --damon-ops {damon_ops} "
            "--out $D/result.json\n")
        run = qemu.boot(script, layout=layout, timeout=seconds + 240, release=release)
        if run.returncode != 0:
            raise RuntimeError(f"guest ({mode}) failed: {run.log[-2000:]}")
        r = json.loads((run.directory / "result.json").read_text())
        r["guest_seconds"] = round(run.seconds, 1)
        results.append(r)
    return results


def table(results: list[dict]) -> str:
    from pagetide.common.tables import table as fmt

    rows = []
    for r in results:
        b, a = r["before"], r["after_by_frame"]
        moved = (r["moved_pages"] if r["mode"] == "pagetide"
                 else sum(sc["stats"]["sz_applied"] for sc in r["damos"]) // PAGE if r["mode"] == "damos"
                 else r["vmstat_delta"]["pgpromote_success"] + r["vmstat_delta"]["pgdemote_kswapd"]
                 + r["vmstat_delta"]["pgdemote_direct"])
        mode = f"damos/{r['damon_ops']}" if r["mode"] == "damos" else r["mode"]
        rows.append([f"{mode} ({r['kernel']})", f"{b['hot_on_0']}/{r['hot_pages']}",
                     f"{a['hot_on_0']}/{r['hot_pages']}",
                     f"{a['cold_on_1']}/{r['pages'] - r['hot_pages']}", str(moved),
                     str(r["vmstat_delta"]["pgpromote_success"]),
                     str(r["vmstat_delta"]["pgdemote_kswapd"] + r["vmstat_delta"]["pgdemote_direct"]),
                     str(r["vmstat_delta"]["pgmigrate_success"]), f"{r['seconds']:.1f}", str(r["guest_seconds"])])
    return fmt(["mode", "hot on node 0 before", "hot on node 0 after", "cold on node 1 after", "pages moved",
                "pgpromote_success", "pgdemote_*", "pgmigrate_success", "run s", "guest s"], rows, left=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("pagetide", "kernel", "damos"), action="append",
                   help="pagetide (default), kernel (NUMA-balancing tiering) or damos (DAMOS migrate_hot/cold: a "
                        "6.11+ kernel, e.g. --kernel 6.12.118+deb12-amd64); with --boot repeat for a side-by-side")
    p.add_argument("--pages", type=int, default=8192)
    p.add_argument("--seconds", type=float, default=20.0, help="longest the mode runs")
    p.add_argument("--period", type=float, default=1.0, help="pagetide's scan period, seconds")
    p.add_argument("--filler-mib", type=int, default=0,
                   help="first fill this much of node 0 with a cold process bound to it (DRAM pressure)")
    p.add_argument("--damon-ops", choices=("paddr", "vaddr"), default="paddr",
                   help="damos: each node's physical range (paddr, default) or the workload process (vaddr)")
    p.add_argument("--out", type=Path, help="(in the guest) where the result goes")
    p.add_argument("--boot", action="store_true", help="on the host: boot a guest per --mode and compare")
    p.add_argument("--layout", choices=("numa", "nvdimm"), default="numa", help="with --boot: the guest's memory")
    p.add_argument("--json", type=Path, help="with --boot: write the results here")
    p.add_argument("--kernel", metavar="RELEASE",
                   help="with --boot: the guest's kernel, /boot/vmlinuz-RELEASE (default: harness/qemu.py kernel())")
    args = p.parse_args(argv)
    modes = args.mode or ["pagetide"]
    if args.boot:
        results = boot_and_compare(modes, args.layout, args.pages, args.seconds, args.period, args.filler_mib,
                                   args.kernel, args.damon_ops)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        print(table(results))
        return 0
    if args.out is None or len(modes) != 1:
        p.error("in the guest: one --mode and --out")
    args.mode = modes[0]
    t_start = time.monotonic()
    knobs_booted = knobs()
    if args.mode == "pagetide":
        NUMA_BALANCING.write_text("0")      # the guest's kernel moves nothing on its own (the guest's settings)
    filler = None
    if args.filler_mib:
        filler = subprocess.Popen([sys.executable, "-c", FILLER, str(args.filler_mib)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        if filler.stdout.readline().strip() != "filled":
            raise RuntimeError("the filler did not fill node 0")
    wl = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(args.pages)], stdout=subprocess.PIPE, text=True)
    try:
        base = int(wl.stdout.readline())
        hot = hot_mask(args.pages)
        out: dict = {"mode": args.mode, "pages": args.pages, "hot_pages": int(hot.sum()),
                     "kernel": Path("/proc/sys/kernel/osrelease").read_text().strip(),
                     "tiers": sorted(x.name for x in Path("/sys/devices/virtual/memory_tiering").glob("memory_tier*"))}
        out["workload_start_seconds"] = round(time.monotonic() - t_start, 2)
        out["filler_mib"] = args.filler_mib
        out["node0_free_mib"] = node0_free_mib()
        out["before"] = summary(placement(wl.pid, base, args.pages), hot)
        out["knobs_booted"], out["knobs_run"] = knobs_booted, knobs()
        out["numa_maps_before"] = numa_maps(wl.pid, base)
        v0, t0 = vmstat(), time.monotonic()
        if args.mode == "pagetide":
            out.update(asyncio.run(run_pagetide(wl.pid, base, args.pages, args.seconds, args.period)))
        elif args.mode == "damos":
            out.update(run_damos(args.seconds, wl.pid, args.damon_ops))
        else:
            out.update(run_kernel(args.seconds))
        out["seconds"] = round(time.monotonic() - t0, 2)
        out["vmstat_delta"] = {k: v - v0[k] for k, v in vmstat().items()}
        out["after"] = summary(placement(wl.pid, base, args.pages), hot)
        out["after_by_frame"] = summary(placement_by_frame(wl.pid, base, args.pages), hot)
        out["node0_free_mib_after"] = node0_free_mib()
        out["numa_maps_after"] = numa_maps(wl.pid, base)
    finally:
        wl.kill()
        if filler is not None:
            filler.kill()
            filler.wait()
        wl.wait()
    print(json.dumps(out), flush=True)
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
