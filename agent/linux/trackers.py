"""Trackers of a real Linux host: which pages of a process were used since the last look, folded into heat.

Three samplers, best first, each over a tenant's pages (4 KiB virtual addresses of the ranges it tracks):
- `idle_pages`: the seed kernel's /proc/PID/idle_pages. Each read test-and-clears the Accessed bits of the
  page tables it walks and returns the byte stream agent/idle_pages.py specifies; decoded by the same decoder
  the emulation is proven against (`decode_arrays`, `range_report`).
- `page_idle`: idle page tracking. /proc/PID/pagemap gives each present page's frame number (root only);
  /sys/kernel/mm/page_idle/bitmap holds one bit per frame, set by a write, cleared by the kernel when the page
  is accessed. A page is accessed if its frame was marked idle at the last sample and the bit is clear now.
- `soft_dirty`: writes only. `clear_refs` 4 clears every soft-dirty bit of the process; a page written since
  has pagemap bit 55 set. Reads are invisible to it.

`HeatTracker` (agent/backend.py's `Tracker`) runs a sampler `nr_scans` times per period and folds each page's
refs into heat with the simulated hosts' formula and candidate picking (agent/scanner.py `fold`,
`tenant_heat`), so real and simulated heat mean the same. Which sampler a kernel offers is
agent/linux/sysfs.py's `trackers_available` (each with its reason).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from pagetide.agent.idle_pages import DEFAULT_READ_COUNT, decode_arrays, range_report
from pagetide.agent.linux.tenants import Range
from pagetide.agent.scanner import TenantHeat, fold, tenant_heat

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PM_PRESENT = 1 << 63
PM_SOFT_DIRTY = 1 << 55
PM_PFN_MASK = (1 << 55) - 1
PAGE_IDLE_BITMAP = Path("/sys/kernel/mm/page_idle/bitmap")


def page_addresses(ranges: list[Range]) -> np.ndarray:
    """Every 4 KiB page of `ranges`, in order (uint64)."""
    parts = [np.arange(r.start, r.end, PAGE_SIZE, dtype=np.uint64) for r in ranges]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def pagemap(pid: int, ranges: list[Range], proc: Path = Path("/proc")) -> np.ndarray:
    """/proc/PID/pagemap entries (uint64) of every page of `ranges`, in order: one pread per range."""
    out = []
    fd = os.open(proc / str(pid) / "pagemap", os.O_RDONLY)
    try:
        for r in ranges:
            n = (r.end - r.start) >> PAGE_SHIFT
            data = os.pread(fd, 8 * n, (r.start >> PAGE_SHIFT) * 8)
            if len(data) != 8 * n:
                raise OSError(f"/proc/{pid}/pagemap: short read at {r.start:#x}")
            out.append(np.frombuffer(data, "<u8"))
    finally:
        os.close(fd)
    return np.concatenate(out) if out else np.zeros(0, np.uint64)


def read_idle_pages(fd: int, ranges: list[Range], count: int = DEFAULT_READ_COUNT) -> bytes:
    """One scan of `ranges` through an open /proc/PID/idle_pages: seek to each range, read until the file's
    offset (which the kernel sets past the last page reported) reaches its end."""
    chunks = []
    for r in ranges:
        offset = os.lseek(fd, r.start, os.SEEK_SET)
        while offset < r.end:
            data = os.read(fd, count)
            chunks.append(data)
            new = os.lseek(fd, 0, os.SEEK_CUR)
            if not data or new <= offset:
                raise OSError(f"idle_pages: no progress at {offset:#x}")
            offset = new
    return b"".join(chunks)


def idle_pages_accessed(stream: bytes, ranges: list[Range]) -> np.ndarray:
    """Per page of `ranges`, in order: reported accessed (or dirty) by the idle_pages byte stream."""
    runs = decode_arrays(stream)
    parts = [range_report(r.start, (r.end - r.start) >> PAGE_SHIFT, PAGE_SHIFT, runs).accessed for r in ranges]
    return np.concatenate(parts) if parts else np.zeros(0, bool)


class Sampler(Protocol):
    """Where one scan's accessed bits come from: pages of `ranges` (in order) used since the last sample of
    the same process; each sample re-arms the mechanism for the next."""
    name: str

    def sample(self, pid: int, ranges: list[Range]) -> np.ndarray: ...


class IdlePagesSampler:
    name = "idle_pages"

    def __init__(self, proc: Path = Path("/proc")):
        self.proc = proc

    def sample(self, pid: int, ranges: list[Range]) -> np.ndarray:
        fd = os.open(self.proc / str(pid) / "idle_pages", os.O_RDONLY)
        try:
            stream = read_idle_pages(fd, ranges)
        finally:
            os.close(fd)          # the kernel's TLB flush that ends a scan
        return idle_pages_accessed(stream, ranges)


class PageIdleSampler:
    name = "page_idle"

    def __init__(self, bitmap: Path = PAGE_IDLE_BITMAP, proc: Path = Path("/proc")):
        self.bitmap, self.proc = bitmap, proc
        self.marked: dict[int, np.ndarray] = {}     # pid -> frame marked idle at the last sample, per page (-1)

    def sample(self, pid: int, ranges: list[Range]) -> np.ndarray:
        entries = pagemap(pid, ranges, self.proc)
        present = (entries & np.uint64(PM_PRESENT)) != 0
        pfn = np.where(present, (entries & np.uint64(PM_PFN_MASK)).astype(np.int64), -1)
        if present.any() and not pfn[present].any():
            raise PermissionError("page_idle needs frame numbers from /proc/PID/pagemap (CAP_SYS_ADMIN)")
        before = self.marked.get(pid)
        accessed = np.zeros(pfn.size, bool)
        fd = os.open(self.bitmap, os.O_RDWR)
        try:
            if before is not None and before.size == pfn.size:
                same = present & (pfn == before)          # a frame that changed (migrated) was not marked
                if same.any():
                    idle = bitmap_bits(fd, pfn[same])
                    accessed[np.flatnonzero(same)] = ~idle
            mark_idle(fd, pfn[present])
        finally:
            os.close(fd)
        self.marked[pid] = pfn
        return accessed


def _span(pfns: np.ndarray) -> tuple[int, int]:
    words = pfns >> 6
    return int(words.min()), int(words.max()) + 1


def bitmap_bits(fd: int, pfns: np.ndarray) -> np.ndarray:
    """The idle bit of each frame, read in one pread of the 64-bit words spanning them."""
    lo, hi = _span(pfns)
    words = np.frombuffer(os.pread(fd, 8 * (hi - lo), 8 * lo), "<u8")
    return ((words[(pfns >> 6) - lo] >> (pfns & 63).astype(np.uint64)) & np.uint64(1)).astype(bool)


def mark_idle(fd: int, pfns: np.ndarray) -> None:
    """Mark frames idle in one pwrite (the kernel sets a frame's bit for each 1 written, ignores 0s)."""
    if pfns.size == 0:
        return
    lo, hi = _span(pfns)
    words = np.zeros(hi - lo, np.uint64)
    np.bitwise_or.at(words, (pfns >> 6) - lo, np.uint64(1) << (pfns & 63).astype(np.uint64))
    os.pwrite(fd, words.astype("<u8").tobytes(), 8 * lo)


class SoftDirtySampler:
    name = "soft_dirty"

    def __init__(self, proc: Path = Path("/proc")):
        self.proc = proc

    def sample(self, pid: int, ranges: list[Range]) -> np.ndarray:
        entries = pagemap(pid, ranges, self.proc)
        (self.proc / str(pid) / "clear_refs").write_text("4")
        return (entries & np.uint64(PM_PRESENT | PM_SOFT_DIRTY)) == np.uint64(PM_PRESENT | PM_SOFT_DIRTY)


class NoSampler:
    """No tracker at all (a kernel with none of the three): nothing is ever accessed, reports show only
    where pages are."""
    name = "none"

    def sample(self, pid: int, ranges: list[Range]) -> np.ndarray:
        return np.zeros(int(sum(r.end - r.start for r in ranges)) >> PAGE_SHIFT, bool)


# best first: the order detection tries them in
SAMPLERS: dict[str, Callable[[], Sampler]] = {
    "idle_pages": IdlePagesSampler,
    "page_idle": PageIdleSampler,
    "soft_dirty": SoftDirtySampler,
}


@dataclass
class TrackedTenant:
    """A tenant's tracked pages (sorted addresses), their refs in this period and heat."""
    pid: int
    ranges: list[Range]
    addresses: np.ndarray
    refs: np.ndarray
    heat: np.ndarray
    period_refs: int = 0

    @classmethod
    def of(cls, pid: int, ranges: list[Range]) -> TrackedTenant:
        addrs = page_addresses(ranges)
        return cls(pid, ranges, addrs, np.zeros(addrs.size, np.uint8), np.zeros(addrs.size, np.uint8))

    def relayout(self, ranges: list[Range]) -> None:
        """The process's ranges now: pages still there keep their heat, new ones start cold."""
        addrs = page_addresses(ranges)
        heat = np.zeros(addrs.size, np.uint8)
        if self.addresses.size and addrs.size:
            at = np.minimum(np.searchsorted(self.addresses, addrs), self.addresses.size - 1)
            kept = self.addresses[at] == addrs
            heat[kept] = self.heat[at[kept]]
        self.ranges, self.addresses, self.heat = ranges, addrs, heat
        self.refs = np.zeros(addrs.size, np.uint8)


@dataclass
class HeatTracker:
    """agent/backend.py's Tracker over a sampler: `scan()` adds each tenant's accessed pages to its refs,
    `end_period()` folds refs into heat and re-reads each tenant's ranges (`ranges_of(name)`); reports place
    pages by `node_of(pid, addresses)` (< 0: not present) and `is_fast[node]` (DRAM)."""
    sampler: Sampler
    nr_scans: int
    ranges_of: Callable[[str], tuple[int, list[Range]]]
    node_of: Callable[[int, np.ndarray], np.ndarray]
    is_fast: np.ndarray
    tenants: dict[str, TrackedTenant] = field(default_factory=dict)
    period: int = 0
    scans_in_period: int = 0
    failed_scans: int = 0
    last_error: str = ""

    BIN_LEVEL = ()          # the linear scale of agent/scanner.py

    @property
    def name(self) -> str:
        return self.sampler.name

    def add(self, name: str) -> None:
        pid, ranges = self.ranges_of(name)
        self.tenants[name] = TrackedTenant.of(pid, ranges)
        self._sample(self.tenants[name])      # arms the mechanism: what happened before tracking is not heat

    def _sample(self, t: TrackedTenant) -> np.ndarray:
        try:
            return self.sampler.sample(t.pid, t.ranges)
        except (ProcessLookupError, FileNotFoundError):
            return np.zeros(t.addresses.size, bool)       # the process exited: nothing accessed
        except OSError as e:                              # a failed scan is counted, and the next one tried
            self.failed_scans += 1
            self.last_error = f"{self.sampler.name} scan of pid {t.pid}: {e}"
            return np.zeros(t.addresses.size, bool)

    def scan(self) -> None:
        for t in self.tenants.values():
            t.refs += self._sample(t)
        self.scans_in_period += 1

    def end_period(self) -> None:
        for name, t in self.tenants.items():
            t.heat = fold(t.heat, t.refs, self.scans_in_period)
            t.period_refs = int(t.refs.sum(dtype=np.int64))
            try:
                _, ranges = self.ranges_of(name)
            except (OSError, ValueError):
                ranges = []                                # the process exited
            if ranges != t.ranges:
                t.relayout(ranges)
            else:
                t.refs[:] = 0
        self.scans_in_period = 0
        self.period += 1

    def window_scans(self, name: str) -> float:
        """Halving heat each period averages over 3 periods (agent/scanner.py)."""
        return 3.0 * self.nr_scans

    def nodes(self, name: str) -> np.ndarray:
        t = self.tenants[name]
        try:
            return self.node_of(t.pid, t.addresses)
        except ProcessLookupError:
            return np.full(t.addresses.size, -1, np.int64)

    def tenant_heat(self, name: str, max_candidates: int, max_hot_fast: int | None = None) -> TenantHeat:
        return tenant_heat(name, self.tenants[name].heat, self.nodes(name), self.is_fast, max_candidates,
                           max_hot_fast)
