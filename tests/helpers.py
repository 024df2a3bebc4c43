"""Small scenarios for unit tests (built as dicts, validated by the real parser)."""

from pagetide.agent.scenario import parse_scenario


def small_scenario(dram="64MiB", slow="192MiB", tenants=None, kernel=None, **top):
    d = {
        "seed": 3, "tick": "100ms", "duration": "2s", "epoch": "500ms",
        "host": {"nodes": [{"id": 0, "type": "dram", "capacity": dram, "peer_node": 1},
                           {"id": 1, "type": "pmem", "capacity": slow}],
                 "kernel": {"swap": "256MiB", **(kernel or {})}},
        "tenants": tenants or [{"name": "vm0", "footprint": "96MiB",
                                "workload": {"type": "zipf", "samples": 2048}}],
    }
    d.update(top)
    return parse_scenario(d)


CHILD_NPAGES = 64
# a child process with CHILD_NPAGES private anonymous pages, every other one touched; it prints the buffer's
# address and sleeps (the `child` fixture of tests/conftest.py runs it)
CHILD = f"""
import ctypes, mmap, time
buf = mmap.mmap(-1, {CHILD_NPAGES} * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, {CHILD_NPAGES}, 2):
    buf[i * 4096] = 1
print(ctypes.addressof(ctypes.c_char.from_buffer(buf)), flush=True)
time.sleep(60)
"""
