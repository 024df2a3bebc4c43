"""The real-host trackers: decoding of byte streams and pagemap/bitmap words in the kernel's documented formats
(files the test writes, run everywhere), the heat fold, and each tracker on a live child process where this
kernel offers it (skipped, with the kernel's reason, where it does not)."""

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from pagetide.agent import idle_pages as ip
from pagetide.agent.linux import sysfs
from pagetide.agent.linux.tenants import Range, private_writable
from pagetide.agent.linux.trackers import (
    PM_PRESENT, PM_SOFT_DIRTY, HeatTracker, IdlePagesSampler, PageIdleSampler, SoftDirtySampler, TrackedTenant,
    bitmap_bits, idle_pages_accessed, mark_idle, pagemap,
)
from pagetide.agent.pageflags import NODE_NONE, PG_ACCESSED, PG_DIRTY

PAGE = 4096
AVAILABLE = {name: (ok, why) for name, ok, why in sysfs.trackers_available()}


def need(tracker):
    ok, why = AVAILABLE[tracker]
    if not ok:
        pytest.skip(why)


def set_hva(address):
    return bytes([ip.PIP_CMD_SET_HVA]) + address.to_bytes(8, "big")


def run(kind, n):
    return bytes([(kind << 4) | n])


def test_a_hand_written_idle_pages_stream_read_from_a_file_decodes_page_by_page(tmp_path):
    base = 0x7F00_0000_1000          # a real mapping need not be 2 MiB aligned
    stream = (set_hva(base) + run(ip.PageType.PTE_ACCESSED, 3) + run(ip.PageType.PTE_IDLE, 2)
              + run(ip.PageType.PTE_DIRTY, 1) + run(ip.PageType.PTE_HOLE, 2)
              + set_hva(base + 20 * PAGE) + run(ip.PageType.PTE_ACCESSED, 1))
    f = tmp_path / "idle_pages"
    f.write_bytes(stream)
    got = idle_pages_accessed(f.read_bytes(), [Range(base, base + 10 * PAGE, "rw-p", ""),
                                              Range(base + 20 * PAGE, base + 22 * PAGE, "rw-p", "")])
    assert got.tolist() == [True] * 3 + [False] * 2 + [True] + [False] * 4 + [True, False]


def test_a_thp_entry_marks_all_its_512_pages():
    base = 0x7F00_0020_0000
    stream = set_hva(base) + run(ip.PageType.PMD_ACCESSED, 1) + run(ip.PageType.PMD_IDLE, 1)
    got = idle_pages_accessed(stream, [Range(base, base + 1024 * PAGE, "rw-p", "")])
    assert got[:512].all() and not got[512:].any()


def test_the_emulations_stream_decodes_to_what_the_emulation_reports(tmp_path):
    rng = np.random.default_rng(7)
    npages = 3 * 512 + 77
    node = np.where(rng.random(npages) < 0.8, 0, NODE_NONE).astype(np.int8)
    flags = np.where(rng.random(npages) < 0.4, PG_ACCESSED, 0).astype(np.uint8)
    flags |= np.where(rng.random(npages) < 0.2, PG_DIRTY, 0).astype(np.uint8)
    start = 0x7F12_3440_0000
    vma = ip.Vma(start=start, huge=False, flags=flags.copy(), node=node,
                 pmd_young=np.ones(-(-npages // 512), np.uint8))
    expected = (flags & PG_ACCESSED).astype(bool) & (node >= 0)
    f = tmp_path / "stream"
    f.write_bytes(ip.scan_stream([vma], count=64))       # small reads: many SET_HVAs
    got = idle_pages_accessed(f.read_bytes(), [Range(start, start + npages * PAGE, "rw-p", "")])
    assert np.array_equal(got, expected)


def test_pagemap_entries_are_read_per_range_and_soft_dirty_is_bit_55(tmp_path):
    proc = tmp_path / "proc"
    (proc / "42").mkdir(parents=True)
    base = 0x10000
    entries = np.zeros(base // PAGE + 8, np.uint64)
    entries[base // PAGE + np.array([0, 1, 3])] = PM_PRESENT | 123
    entries[base // PAGE + np.array([1, 5])] |= np.uint64(PM_SOFT_DIRTY)   # 5: dirty bit but not present
    (proc / "42" / "pagemap").write_bytes(entries.astype("<u8").tobytes())
    (proc / "42" / "clear_refs").write_text("")
    r = [Range(base, base + 8 * PAGE, "rw-p", "")]
    assert pagemap(42, r, proc)[:4].tolist() == [PM_PRESENT | 123, PM_PRESENT | PM_SOFT_DIRTY | 123, 0,
                                                 PM_PRESENT | 123]
    got = SoftDirtySampler(proc).sample(42, r)
    assert got.tolist() == [False, True, False, False, False, False, False, False]
    assert (proc / "42" / "clear_refs").read_text() == "4"


def test_page_idle_bitmap_words_are_marked_and_read_bit_by_frame(tmp_path):
    bitmap = tmp_path / "bitmap"
    bitmap.write_bytes(bytes(8 * 4))
    pfns = np.array([1, 63, 64, 130], np.int64)
    fd = os.open(bitmap, os.O_RDWR)
    try:
        mark_idle(fd, pfns)
        words = struct.unpack("<4Q", bitmap.read_bytes())
        assert words == ((1 << 1) | (1 << 63), 1, 1 << 2, 0)
        assert bitmap_bits(fd, np.array([1, 2, 63, 64, 130, 129], np.int64)).tolist() == [
            True, False, True, True, True, False]
    finally:
        os.close(fd)


def test_page_idle_sampler_says_accessed_where_the_kernel_cleared_a_marked_frames_bit(tmp_path):
    proc, bitmap = tmp_path / "proc", tmp_path / "bitmap"
    (proc / "7").mkdir(parents=True)
    entries = np.array([PM_PRESENT | 10, PM_PRESENT | 11, 0, PM_PRESENT | 12], np.uint64)
    (proc / "7" / "pagemap").write_bytes(entries.astype("<u8").tobytes())
    bitmap.write_bytes(bytes(8))
    s = PageIdleSampler(bitmap, proc)
    r = [Range(0, 4 * PAGE, "rw-p", "")]
    assert not s.sample(7, r).any()                    # first sample only marks
    (w,) = struct.unpack("<Q", bitmap.read_bytes())
    assert w == (1 << 10) | (1 << 11) | (1 << 12)
    bitmap.write_bytes(struct.pack("<Q", w & ~(1 << 11)))   # the kernel saw frame 11 accessed
    assert s.sample(7, r).tolist() == [False, True, False, False]


class Script:
    """A sampler that replays given accessed arrays."""
    name = "script"

    def __init__(self, seq):
        self.seq = iter(seq)

    def sample(self, pid, ranges):
        return next(self.seq)


def test_heat_rises_on_pages_accessed_every_scan_and_stays_zero_on_the_rest():
    n = 8
    hot = np.array([True, False] * 4)
    ranges = [Range(0x1000, 0x1000 + n * PAGE, "rw-p", "")]
    tr = HeatTracker(Script([np.zeros(n, bool)] + [hot] * 20), nr_scans=2, ranges_of=lambda _: (1, ranges),
                     node_of=lambda pid, a: np.zeros(a.size, np.int64), is_fast=np.array([True]))
    tr.add("t")
    for _ in range(3):
        tr.scan(); tr.scan(); tr.end_period()
    heat = tr.tenants["t"].heat
    assert (heat[hot] > 200).all() and (heat[~hot] == 0).all()
    th = tr.tenant_heat("t", 4)
    assert th.hist[0].sum() == n and th.cold_fast.heat.tolist() == [0, 0, 0, 0]
    assert tr.tenants["t"].period_refs == 2 * int(hot.sum())


def test_a_tenant_whose_ranges_changed_keeps_the_heat_of_pages_still_there():
    t = TrackedTenant.of(1, [Range(0x10000, 0x10000 + 4 * PAGE, "rw-p", "")])
    t.heat[:] = [10, 20, 30, 40]
    t.relayout([Range(0x10000 + 2 * PAGE, 0x10000 + 6 * PAGE, "rw-p", "")])
    assert t.heat.tolist() == [30, 40, 0, 0] and t.refs.size == 4


CHILD = f"""
import ctypes, mmap, sys, time
buf = mmap.mmap(-1, 64 * {PAGE}, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(64):
    buf[i * {PAGE}] = 1
print(ctypes.addressof(ctypes.c_char.from_buffer(buf)), flush=True)
for line in sys.stdin:                      # each line: write every other page, then answer
    for i in range(0, 64, 2):
        buf[i * {PAGE}] = 2
    print("done", flush=True)
"""


@pytest.mark.parametrize("tracker, sampler", [("idle_pages", IdlePagesSampler), ("page_idle", PageIdleSampler),
                                              ("soft_dirty", SoftDirtySampler)])
def test_a_child_writing_every_other_page_is_tracked_by_the_kernels_tracker(tracker, sampler):
    need(tracker)
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        base = int(p.stdout.readline())
        r = [x for x in private_writable(p.pid) if x.start <= base < x.end][0]
        rng = [Range(base, base + 64 * PAGE, r.perms, r.path)]
        s = sampler()
        s.sample(p.pid, rng)                       # arm
        p.stdin.write("go\n"); p.stdin.flush()
        assert p.stdout.readline().strip() == "done"
        got = s.sample(p.pid, rng)
        assert got[0::2].all() and not got[1::2].any()
    finally:
        p.kill()
        p.wait(timeout=10)


class Failing:
    name = "failing"

    def sample(self, pid, ranges):
        raise PermissionError(13, "Permission denied")


def test_a_scan_the_kernel_refuses_is_counted_with_its_error_and_heat_stays_cold():
    ranges = [Range(0x1000, 0x1000 + 4 * PAGE, "rw-p", "")]
    tr = HeatTracker(Failing(), nr_scans=1, ranges_of=lambda _: (1, ranges),
                     node_of=lambda pid, a: np.zeros(a.size, np.int64), is_fast=np.array([True]))
    tr.add("t")
    tr.scan(); tr.end_period()
    assert tr.failed_scans == 2 and "Permission denied" in tr.last_error
    assert not tr.tenants["t"].heat.any() and tr.period == 1
