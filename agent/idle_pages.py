"""Emulation of `/proc/PID/idle_pages`: the page-table walk that test-and-clears Accessed bits.

This module owns the byte-exact behaviour of the idle_pages file (DESIGN.md section 1 item 2) over the host
model's page arrays: `IdlePagesFile` (open/lseek/read/close) and `scan_stream` (one whole scan through it),
the stream decoder (`decode`, `decode_arrays`, and `page_report` turning runs into per-page masks), and
`scan_fast`, the vectorised whole scan the agent uses: it reports exactly what decoding a scan's stream
reports and leaves exactly the same flags and pmd_young behind.

The address space
    A tenant's address space is a list of `Vma`s sorted by start, non-overlapping; the gaps between them are
    unmapped. A 4 KiB VMA has one PTE per page and, per 2 MiB range, the A bit of the PMD entry pointing at
    the range's PTE table (`pmd_young`). A PTE table exists for a range iff some page of it has
    node != NODE_NONE; otherwise the range is pmd_none. A huge VMA maps every 2 MiB page by a PMD.

The stream
    Each run byte is `(type << 4) | n`, n = 1..15 consecutive entries of `PageType` type; longer runs are split
    into 15s. PTE_* entries cover 4 KiB, PMD_* 2 MiB, PUD_PRESENT 1 GiB (never produced here: the model has no
    1 GiB pages; the decoder accepts it). 0xA0 (PIP_CMD_SET_HVA) is followed by 8 bytes big-endian: the address
    the next run starts at.

A read at file offset `offset` with a buffer of `count` bytes
    - EINVAL (OSError) if offset is not 4 KiB aligned or count < 19; at offset >= TASK_SIZE it returns b"".
    - It walks [offset, end), end = min(offset + count * 8 * 4 KiB, TASK_SIZE).
    - The output starts with SET_HVA(first reported address). A SET_HVA is emitted again wherever the next
      entry is not contiguous with the previous one (a gap between VMAs), so gaps are skipped, never emitted
      as holes; adjacent VMAs continue without one.
    - The read stops before an emission that does not fit in `count` bytes. A run byte needs 1 byte; a
      SET_HVA for a gap is only emitted together with the run byte after it (10 bytes), so a read never ends
      on a SET_HVA that reports nothing. The offset is then set just past the last page reported.
    - If the walk reached `end` (nothing was left out for want of room) and the last reported page ends before
      `end` (a tail hole, or no VMA in the window at all), SET_HVA(end) is appended if its 9 bytes fit, and
      the offset becomes `end`.
    - So every read reports at least one entry or the trailing SET_HVA (19 = SET_HVA + run byte + SET_HVA)
      and makes progress; a reader loops reads until offset >= the end it wants.
    - Huge VMA: the window is widened down to the 2 MiB base of the page holding offset (reported from that
      base, after a SET_HVA of it); every PMD entry whose base is < end is reported whole (the offset may end
      past `end`). A present page is PMD_ACCESSED / PMD_DIRTY / PMD_IDLE, a non-present one (NODE_NONE or
      NODE_SWAP) PMD_HOLE. Its pmd_young is None: the options below do not apply to THPs.
    - 4 KiB VMA, per 2 MiB range: a range is *whole* if it is wholly inside [offset, end) and inside the VMA
      (a VMA's last range is partial if its length is not a multiple of 2 MiB). PMD-granular entries are only
      emitted for whole ranges:
        pmd_none range: whole -> one PMD_HOLE; partial -> PTE_HOLE per page.
        PTE table not walked (SCAN_HUGE_PAGE: no table is walked; SCAN_SKIM_IDLE: a table whose pmd_young is
        clear): whole -> one PMD_IDLE_PTES; partial -> PTE_IDLE per present page and PTE_HOLE per non-present
        page. No bit of a table that is not walked is touched, pmd_young included.
        PTE table walked: per page PTE_ACCESSED / PTE_DIRTY / PTE_IDLE if present, PTE_HOLE if not present
        (NODE_NONE or NODE_SWAP); pmd_young is test-and-cleared when the walk reports the table's last page.
      Deciding and clearing pmd_young per table, not per read, makes the results and side effects of a scan
      independent of how the reader splits it into reads.
    - Test-and-clear: a present entry of a walked table (or a THP) with PG_ACCESSED is reported *_ACCESSED,
      or *_DIRTY under SCAN_DIRTY_PAGE when PG_DIRTY is set too; its PG_ACCESSED is cleared and PG_TLB_CACHED
      set (the translation stays cached until the flush). Any other present entry is *_IDLE. PG_DIRTY is never
      cleared. Only entries actually reported (that fit in the buffer) are test-and-cleared.
    - close() is the TLB flush that ends a scan: it clears PG_TLB_CACHED in all the file's VMAs.

Open flags select the options, as in the kernel patch: O_NONBLOCK = SCAN_HUGE_PAGE, O_NOFOLLOW =
SCAN_SKIM_IDLE, O_NOATIME = SCAN_DIRTY_PAGE. The file works on the VMA list it was opened with.
"""

from __future__ import annotations

import bisect
import errno
import os
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable, NamedTuple

import numpy as np

from pagetide.agent.pageflags import (
    HPAGE_PMD_NR,
    HPAGE_PMD_SHIFT,
    HPAGE_PMD_SIZE,
    NODE_NONE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PG_ACCESSED,
    PG_DIRTY,
    PG_TLB_CACHED,
)

assert PG_ACCESSED == 1 and PG_DIRTY == 2, "scan_fast reads A as bit 0 and D as bit 1"
TASK_SIZE = 1 << 47  # x86_64 with 4-level paging: user space ends at 128 TiB
MIN_READ_COUNT = 19  # room for SET_HVA (9) + one run byte + the trailing SET_HVA (9)
PAGES_PER_COUNT_BYTE = 8  # one read walks at most count * 8 pages of 4 KiB
MAX_RUN = 15  # the low nibble of a run byte
SET_HVA_LEN = 9
PIP_CMD_SET_HVA = 0xA0
DEFAULT_READ_COUNT = 1 << 16  # scan_stream's buffer: one read walks up to 2 GiB

SCAN_HUGE_PAGE = os.O_NONBLOCK
SCAN_SKIM_IDLE = os.O_NOFOLLOW
SCAN_DIRTY_PAGE = os.O_NOATIME


class PageType(IntEnum):
    """The high nibble of a stream byte."""

    PTE_ACCESSED = 0
    PMD_ACCESSED = 1
    PUD_PRESENT = 2
    PTE_DIRTY = 3
    PMD_DIRTY = 4
    PTE_IDLE = 5
    PMD_IDLE = 6
    PMD_IDLE_PTES = 7
    PTE_HOLE = 8
    PMD_HOLE = 9
    PIP_CMD = 10


# log2 of the bytes one entry of each type covers
_ENTRY_SHIFT = np.array([PAGE_SHIFT, HPAGE_PMD_SHIFT, 30, PAGE_SHIFT, HPAGE_PMD_SHIFT,
                         PAGE_SHIFT, HPAGE_PMD_SHIFT, HPAGE_PMD_SHIFT, PAGE_SHIFT, HPAGE_PMD_SHIFT], np.int64)
_ACCESSED_TYPES = np.array([PageType.PTE_ACCESSED, PageType.PMD_ACCESSED, PageType.PTE_DIRTY,
                            PageType.PMD_DIRTY], np.uint8)
_DIRTY_TYPES = np.array([PageType.PTE_DIRTY, PageType.PMD_DIRTY], np.uint8)

_RANGE_SHIFT = HPAGE_PMD_SHIFT - PAGE_SHIFT  # 4 KiB pages -> 2 MiB range index
_NO_PMD_ENTRY = np.uint8(0xFF)


class _EntryTypes(NamedTuple):
    """The entry types a present/accessed/dirty classification maps to, for PTEs or for PMDs."""

    hole: PageType
    idle: PageType
    accessed: PageType
    dirty: PageType


_PTE_TYPES = _EntryTypes(PageType.PTE_HOLE, PageType.PTE_IDLE, PageType.PTE_ACCESSED, PageType.PTE_DIRTY)
_PMD_TYPES = _EntryTypes(PageType.PMD_HOLE, PageType.PMD_IDLE, PageType.PMD_ACCESSED, PageType.PMD_DIRTY)
# log2 of the VMA pages one entry of each type covers: in a 4 KiB VMA a PMD entry spans a range; in a huge
# VMA every entry is one (2 MiB) page
_ENTRY_PAGES_SHIFT_4K = np.where(_ENTRY_SHIFT == HPAGE_PMD_SHIFT, _RANGE_SHIFT, 0).astype(np.int64)
_ENTRY_PAGES_SHIFT_HUGE = np.zeros(len(_ENTRY_SHIFT), np.int64)
_ALL_NODE_NONE = np.full(8, NODE_NONE, np.int8).view(np.uint64)[0]  # 8 pte_none pages in one word


@dataclass
class Vma:
    """One scannable anonymous mapping (for a VM: a guest memslot in QEMU's host-virtual address space).

    flags and node are views into the host model's arrays, modified in place. end = start + npages *
    page_size. A PTE table exists for a 2 MiB range iff some page in it has node != NODE_NONE.
    """

    start: int  # virtual address, 2 MiB aligned
    huge: bool  # True: every page is a 2 MiB THP mapped by a PMD; False: 4 KiB PTEs
    flags: np.ndarray  # uint8 per page, pageflags.PG_*
    node: np.ndarray  # int8 per page: >= 0 present on that node; NODE_NONE or NODE_SWAP: not present
    pmd_young: np.ndarray | None  # 4 KiB VMAs: uint8 per 2 MiB range, the PMD entry's A bit; huge: None

    def __post_init__(self) -> None:
        if self.start % HPAGE_PMD_SIZE:
            raise ValueError(f"VMA start {self.start:#x} is not 2 MiB aligned")
        if self.flags.dtype != np.uint8 or self.flags.ndim != 1 or len(self.flags) == 0:
            raise ValueError("flags must be a non-empty 1-D uint8 array")
        if self.node.dtype != np.int8 or self.node.shape != self.flags.shape:
            raise ValueError("node must be an int8 array with one entry per page")
        if self.huge:
            if self.pmd_young is not None:
                raise ValueError("a huge VMA has no PTE tables: pmd_young must be None")
        elif (self.pmd_young is None or self.pmd_young.dtype != np.uint8
              or self.pmd_young.shape != (-(-len(self.flags) // HPAGE_PMD_NR),)):
            raise ValueError("pmd_young must be uint8 with one entry per 2 MiB range")

    @property
    def page_shift(self) -> int:
        return HPAGE_PMD_SHIFT if self.huge else PAGE_SHIFT

    @property
    def page_size(self) -> int:
        return 1 << self.page_shift

    @property
    def npages(self) -> int:
        return len(self.flags)

    @property
    def end(self) -> int:
        return self.start + (self.npages << self.page_shift)


class PageReport(NamedTuple):
    """Per page of one VMA: what a scan reported."""

    accessed: np.ndarray  # bool: reported *_ACCESSED or *_DIRTY
    dirty: np.ndarray  # bool: reported *_DIRTY (only under SCAN_DIRTY_PAGE)


class Run(NamedTuple):
    """One run byte of a decoded stream."""

    address: int
    type: PageType
    npages: int  # entries of the type's size


class DecodedRuns(NamedTuple):
    """A decoded stream as arrays, one element per run byte."""

    address: np.ndarray  # int64
    type: np.ndarray  # uint8 PageType
    npages: np.ndarray  # uint8, 1..15


# --------------------------------------------------------------------------------------------------------
# classification shared by the byte stream and the fast path


def _tables_exist(node: np.ndarray) -> np.ndarray:
    """Per 2 MiB range of `node` (which starts on a range boundary): does a PTE table exist?"""
    n = len(node)
    nfull = n >> _RANGE_SHIFT
    exists = np.empty(-(-n // HPAGE_PMD_NR), bool)
    body = np.ascontiguousarray(node[: nfull << _RANGE_SHIFT])
    # a range is pmd_none iff all of its 512 node bytes are NODE_NONE: compare 8 pages per word
    words = body.view(np.uint64).reshape(nfull, HPAGE_PMD_NR // 8)
    exists[:nfull] = np.bitwise_and.reduce(words, axis=1) != _ALL_NODE_NONE
    if nfull < len(exists):
        exists[nfull] = bool((node[nfull << _RANGE_SHIFT:] != NODE_NONE).any())
    return exists


def _walk_if_table(pmd_young: np.ndarray, options: int) -> np.ndarray | None:
    """Per range: is its PTE table (if it exists) walked? None means every table is."""
    if options & SCAN_HUGE_PAGE:
        return np.zeros(len(pmd_young), bool)
    if options & SCAN_SKIM_IDLE:
        return pmd_young != 0
    return None


def _classify(flags: np.ndarray, node: np.ndarray, walked_pages: np.ndarray | None,
              dirty_option: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per page: present; found accessed (present, in a walked table, A set); reported dirty."""
    present = node >= 0
    accessed = (flags & PG_ACCESSED).astype(bool)
    accessed &= present
    if walked_pages is not None:
        accessed &= walked_pages
    dirty = accessed & (flags & PG_DIRTY).astype(bool) if dirty_option else None
    return present, accessed, dirty


def _entry_types(types: _EntryTypes, present: np.ndarray, accessed: np.ndarray,
                 dirty: np.ndarray | None) -> np.ndarray:
    """Per page: its entry type (accessed implies present, dirty implies accessed)."""
    # uint8 arithmetic modulo 256 instead of a table lookup: 5x faster than fancy indexing
    out = present.view(np.uint8) * np.uint8((types.idle - types.hole) & 0xFF)
    out += accessed.view(np.uint8) * np.uint8((types.accessed - types.idle) & 0xFF)
    if dirty is not None:
        out += dirty.view(np.uint8) * np.uint8((types.dirty - types.accessed) & 0xFF)
    out += np.uint8(types.hole)
    return out


def _test_and_clear(flags: np.ndarray, accessed: np.ndarray) -> None:
    """Clear A of the entries found accessed; their translations stay in the TLB until the flush."""
    hit = accessed.view(np.uint8)
    np.bitwise_and(flags, ~(hit * PG_ACCESSED), out=flags)
    np.bitwise_or(flags, hit * PG_TLB_CACHED, out=flags)


# --------------------------------------------------------------------------------------------------------
# the byte stream


@dataclass
class _Runs:
    """A window's pages run-length encoded, and how to map a prefix of the run bytes back to pages."""

    run_bytes: np.ndarray  # uint8
    complete: bool  # the bytes cover the whole window (else the buffer is full after them)
    run_start: np.ndarray  # window page index of each run
    run_end: np.ndarray
    entries: np.ndarray  # entries in each run
    entry_shift: np.ndarray  # log2 of the pages one entry of the run covers
    last_byte: np.ndarray | None  # index of each run's last byte; None: one byte per run

    def pages_reported(self, nbytes: int) -> int:
        """Window pages covered by the first `nbytes` run bytes."""
        if self.last_byte is None:
            return int(self.run_end[nbytes - 1])
        i = int(np.searchsorted(self.last_byte, nbytes - 1))
        first_byte = int(self.last_byte[i - 1]) + 1 if i else 0
        done = min((nbytes - first_byte) * MAX_RUN, int(self.entries[i]))
        return int(self.run_start[i]) + (done << int(self.entry_shift[i]))


def _encode_runs(types: np.ndarray, entry_pages_shift: np.ndarray, max_runs: int) -> _Runs:
    """Run bytes for consecutive pages of the given entry types (a PMD-level entry's pages all carry its type).

    Only the first `max_runs` runs are encoded: each needs at least one byte of the buffer.
    """
    bounds = np.flatnonzero(types[1:] != types[:-1]) + 1
    nruns = min(len(bounds) + 1, max_runs)
    run_start = np.empty(nruns, np.int64)
    run_start[0] = 0
    run_start[1:] = bounds[: nruns - 1]
    run_end = np.empty(nruns, np.int64)
    run_end[:-1] = run_start[1:]
    run_end[-1] = bounds[nruns - 1] if nruns <= len(bounds) else len(types)
    complete = bool(run_end[-1] == len(types))
    run_type = types[run_start]
    entry_shift = entry_pages_shift.take(run_type)
    entries = (run_end - run_start) >> entry_shift
    if entries.max() <= MAX_RUN:
        run_bytes, last_byte = (run_type << 4) | entries.astype(np.uint8), None
    else:
        nbytes = (entries + (MAX_RUN - 1)) // MAX_RUN
        last_byte = np.cumsum(nbytes) - 1
        n = np.full(int(last_byte[-1]) + 1, MAX_RUN, np.uint8)  # every byte of a run is full but its last
        n[last_byte] = entries - MAX_RUN * (nbytes - 1)
        run_bytes = np.repeat(run_type << 4, nbytes) | n
    return _Runs(run_bytes, complete, run_start, run_end, entries, entry_shift, last_byte)


@dataclass
class _Segment:
    """What one VMA contributes to a read: its runs, and the test-and-clear to commit for the prefix of them
    that fits in the buffer."""

    vma: Vma
    first_addr: int
    runs: _Runs
    first_page: int  # VMA page index at first_addr
    accessed: np.ndarray  # bool per page from first_page: found accessed
    walked_ranges: np.ndarray | None = None  # 4 KiB VMA: ranges whose PTE table is walked
    walked_ranges_end: np.ndarray | None = None  # page index just past each one's last page

    def reported_end(self, nbytes: int) -> int:
        """The address just past the pages the first `nbytes` run bytes report."""
        return self.first_addr + (self.runs.pages_reported(nbytes) << self.vma.page_shift)

    def commit(self, reported_end: int) -> None:
        vma = self.vma
        stop = (reported_end - vma.start) >> vma.page_shift
        _test_and_clear(vma.flags[self.first_page:stop], self.accessed[: stop - self.first_page])
        if self.walked_ranges is not None:
            vma.pmd_young[self.walked_ranges[self.walked_ranges_end <= stop]] = 0


def _segment_huge(vma: Vma, lo: int, hi: int, options: int, max_runs: int) -> _Segment:
    a = (lo - vma.start) >> HPAGE_PMD_SHIFT
    b = (hi - vma.start + HPAGE_PMD_SIZE - 1) >> HPAGE_PMD_SHIFT
    present, accessed, dirty = _classify(vma.flags[a:b], vma.node[a:b], None, bool(options & SCAN_DIRTY_PAGE))
    first_addr = vma.start + (a << HPAGE_PMD_SHIFT)
    runs = _encode_runs(_entry_types(_PMD_TYPES, present, accessed, dirty), _ENTRY_PAGES_SHIFT_HUGE, max_runs)
    return _Segment(vma, first_addr, runs, a, accessed)


def _segment_4k(vma: Vma, lo: int, hi: int, options: int, max_runs: int) -> _Segment:
    n = vma.npages
    a = (lo - vma.start) >> PAGE_SHIFT
    b = (hi - vma.start) >> PAGE_SHIFT
    r0, r1 = a >> _RANGE_SHIFT, ((b - 1) >> _RANGE_SHIFT) + 1
    range_start = np.arange(r0, r1, dtype=np.int64) << _RANGE_SHIFT
    range_end = np.minimum(range_start + HPAGE_PMD_NR, n)
    exists = _tables_exist(vma.node[range_start[0]:range_end[-1]])
    walk_if_table = _walk_if_table(vma.pmd_young[r0:r1], options)
    walked = exists if walk_if_table is None else exists & walk_if_table
    window = slice(a - range_start[0], b - range_start[0])  # window pages within the ranges' pages
    walked_pages = None if walk_if_table is None else np.repeat(walk_if_table, HPAGE_PMD_NR)[window]
    present, accessed, dirty = _classify(vma.flags[a:b], vma.node[a:b], walked_pages,
                                         bool(options & SCAN_DIRTY_PAGE))
    types = _entry_types(_PTE_TYPES, present, accessed, dirty)
    whole = (range_start >= a) & (range_end <= b) & (range_end - range_start == HPAGE_PMD_NR)
    pmd_level = whole & ~walked
    if pmd_level.any():
        pmd_type = np.where(exists, np.uint8(PageType.PMD_IDLE_PTES), np.uint8(PageType.PMD_HOLE))
        pmd_type = np.repeat(np.where(pmd_level, pmd_type, _NO_PMD_ENTRY), HPAGE_PMD_NR)[window]
        types = np.where(pmd_type != _NO_PMD_ENTRY, pmd_type, types)
    first_addr = vma.start + (a << PAGE_SHIFT)
    runs = _encode_runs(types, _ENTRY_PAGES_SHIFT_4K, max_runs)
    return _Segment(vma, first_addr, runs, a, accessed,
                    r0 + np.flatnonzero(walked), range_end[walked])


def _set_hva(address: int) -> bytes:
    return bytes([PIP_CMD_SET_HVA]) + address.to_bytes(8, "big")


class IdlePagesFile:
    """An open /proc/PID/idle_pages of a tenant whose address space is `vmas` (see the module docstring)."""

    def __init__(self, vmas: Iterable[Vma], open_flags: int = 0) -> None:
        self._vmas = list(vmas)
        for prev, vma in zip(self._vmas, self._vmas[1:]):
            if vma.start < prev.end:
                raise ValueError(f"VMAs overlap or are unsorted at {vma.start:#x}")
        if self._vmas and self._vmas[-1].end > TASK_SIZE:
            raise ValueError("a VMA ends beyond TASK_SIZE")
        self._ends = [vma.end for vma in self._vmas]
        self.options = open_flags & (SCAN_HUGE_PAGE | SCAN_SKIM_IDLE | SCAN_DIRTY_PAGE)
        self._offset = 0
        self.closed = False

    @property
    def offset(self) -> int:
        return self._offset

    @offset.setter
    def offset(self, value: int) -> None:
        self.lseek(value)

    def lseek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_CUR:
            offset += self._offset
        elif whence != os.SEEK_SET:
            raise OSError(errno.EINVAL, "idle_pages supports SEEK_SET and SEEK_CUR only")
        if offset < 0:
            raise OSError(errno.EINVAL, "negative offset")
        self._offset = offset
        return offset

    def read(self, count: int) -> bytes:
        """One read(2): walk [offset, offset + count * 8 pages), test-and-clear what is reported."""
        self._check_open()
        offset = self._offset
        if offset % PAGE_SIZE:
            raise OSError(errno.EINVAL, f"offset {offset:#x} is not page aligned")
        if count < MIN_READ_COUNT:
            raise OSError(errno.EINVAL, f"buffer of {count} bytes is smaller than {MIN_READ_COUNT}")
        if offset >= TASK_SIZE:
            return b""
        end = min(offset + count * PAGES_PER_COUNT_BYTE * PAGE_SIZE, TASK_SIZE)
        out: list[bytes] = []
        used = 0
        last_end: int | None = None  # address just past the last reported page
        walk_complete = True
        i = bisect.bisect_right(self._ends, offset)
        while i < len(self._vmas) and self._vmas[i].start < end:
            vma = self._vmas[i]
            lo, hi = max(offset, vma.start), min(end, vma.end)
            head = 0 if vma.start == last_end else SET_HVA_LEN  # not adjacent to what was reported last
            room = count - used - head
            if room < 1:  # a SET_HVA is only emitted with the run after it
                walk_complete = False
                break
            seg = (_segment_huge if vma.huge else _segment_4k)(vma, lo, hi, self.options, room)
            run_bytes = seg.runs.run_bytes
            fit = min(len(run_bytes), room)
            if head:
                out.append(_set_hva(seg.first_addr))
            out.append(run_bytes[:fit].tobytes())
            used += head + fit
            last_end = seg.reported_end(fit)
            seg.commit(last_end)
            if fit < len(run_bytes) or not seg.runs.complete:
                walk_complete = False
                break
            i += 1
        if walk_complete and (last_end is None or last_end < end) and used + SET_HVA_LEN <= count:
            out.append(_set_hva(end))
            last_end = end
        if last_end is not None:
            self._offset = last_end
        return b"".join(out)

    def pread(self, count: int, offset: int) -> bytes:
        """pread(2): read at `offset` without moving the file offset (the scan's side effects still happen)."""
        saved = self._offset
        self.lseek(offset)
        try:
            return self.read(count)
        finally:
            self._offset = saved

    def close(self) -> None:
        """End of the scan: flush the TLB, so accesses set A bits again."""
        if self.closed:
            return
        for vma in self._vmas:
            np.bitwise_and(vma.flags, ~PG_TLB_CACHED, out=vma.flags)
        self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "idle_pages file is closed")

    def __enter__(self) -> IdlePagesFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scan_stream(vmas: list[Vma], open_flags: int = 0, count: int = DEFAULT_READ_COUNT) -> bytes:
    """One scan through the file (open, read every VMA with `count`-byte reads, close): the whole stream.

    Like a reader of /proc/PID/maps, it seeks over the gaps between VMAs instead of reading through them.
    """
    chunks = []
    with IdlePagesFile(vmas, open_flags) as f:
        for vma in vmas:
            if f.offset < vma.start:
                f.lseek(vma.start)
            while f.offset < vma.end:
                chunks.append(f.read(count))
    return b"".join(chunks)


# --------------------------------------------------------------------------------------------------------
# decoding


def decode_arrays(data: bytes) -> DecodedRuns:
    """Decode a stream (one read, or reads concatenated) into one element per run byte.

    Raises ValueError on a run byte before any SET_HVA, a truncated SET_HVA, an unknown type or command, or a
    run of 0 entries.
    """
    buf = np.frombuffer(data, np.uint8)
    commands = np.flatnonzero((buf >> 4) == PageType.PIP_CMD)  # also hits address bytes: only a guide
    addresses, types, counts = [], [], []
    pos = 0
    while pos < len(buf):
        if buf[pos] >> 4 != PageType.PIP_CMD:
            raise ValueError(f"run byte {buf[pos]:#04x} at offset {pos} before any SET_HVA")
        if buf[pos] != PIP_CMD_SET_HVA:
            raise ValueError(f"unknown command {buf[pos]:#04x} at offset {pos}")
        if pos + SET_HVA_LEN > len(buf):
            raise ValueError(f"truncated SET_HVA at offset {pos}")
        address = int.from_bytes(buf[pos + 1:pos + SET_HVA_LEN].tobytes(), "big")
        body_start = pos + SET_HVA_LEN
        k = np.searchsorted(commands, body_start)
        pos = int(commands[k]) if k < len(commands) else len(buf)
        body = buf[body_start:pos]
        if len(body) == 0:
            continue
        run_type, n = body >> 4, body & 0x0F
        if (run_type > PageType.PIP_CMD).any():
            raise ValueError(f"unknown page type in {body[run_type > PageType.PIP_CMD][0]:#04x}")
        if not n.all():
            raise ValueError("run of 0 entries")
        size = n.astype(np.int64) << _ENTRY_SHIFT[run_type]
        offsets = np.cumsum(size) - size
        addresses.append(address + offsets)
        types.append(run_type)
        counts.append(n)
    if not addresses:
        return DecodedRuns(np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint8))
    return DecodedRuns(np.concatenate(addresses), np.concatenate(types), np.concatenate(counts))


def decode(data: bytes) -> list[Run]:
    """Decode a stream into its runs (see decode_arrays)."""
    runs = decode_arrays(data)
    return [Run(a, PageType(t), n) for a, t, n in zip(runs.address.tolist(), runs.type.tolist(),
                                                      runs.npages.tolist())]


def page_report(vma: Vma, runs: DecodedRuns | Iterable[Run]) -> PageReport:
    """Per page of `vma`: was it reported accessed / dirty by any of `runs` (which may cover other VMAs).

    PUD_PRESENT tests no A bit, so it reports neither.
    """
    return range_report(vma.start, vma.npages, vma.page_shift, runs)


def range_report(start: int, npages: int, page_shift: int, runs: DecodedRuns | Iterable[Run]) -> PageReport:
    """page_report for any range of `npages` pages of 1 << page_shift bytes from `start` (a real process's
    mapping read through the kernel's /proc/PID/idle_pages, whose start need not be 2 MiB aligned)."""
    if not isinstance(runs, DecodedRuns):
        runs = list(runs)
        runs = DecodedRuns(np.array([r.address for r in runs], np.int64), np.array([r.type for r in runs], np.uint8),
                           np.array([r.npages for r in runs], np.uint8))
    end, page_size = start + (npages << page_shift), 1 << page_shift
    lo = runs.address
    hi = lo + (runs.npages.astype(np.int64) << _ENTRY_SHIFT[runs.type])
    lo, hi = np.maximum(lo, start), np.minimum(hi, end)

    def pages_covered(select: np.ndarray) -> np.ndarray:
        select &= hi > lo
        first = (lo[select] - start) >> page_shift
        last = (hi[select] - start + page_size - 1) >> page_shift
        depth = np.bincount(first, minlength=npages + 1) - np.bincount(last, minlength=npages + 1)
        return np.cumsum(depth[:npages]) > 0

    return PageReport(pages_covered(np.isin(runs.type, _ACCESSED_TYPES)),
                      pages_covered(np.isin(runs.type, _DIRTY_TYPES)))


# --------------------------------------------------------------------------------------------------------
# the fast path


def scan_fast(vmas: list[Vma], open_flags: int = 0) -> list[PageReport]:
    """A whole scan (open, read everything, close) without the byte stream: per VMA, what decoding the stream
    would report, with identical side effects on flags and pmd_young. Pages in tables that are not walked
    (SCAN_HUGE_PAGE, skimmed) are reported not accessed."""
    options = open_flags & (SCAN_HUGE_PAGE | SCAN_SKIM_IDLE | SCAN_DIRTY_PAGE)
    dirty_option = bool(options & SCAN_DIRTY_PAGE)
    reports = []
    for vma in vmas:
        if not vma.huge and options & SCAN_HUGE_PAGE:
            found = np.zeros(vma.npages, np.uint8)
        else:
            walked_pages = None
            if not vma.huge:
                walk_if_table = _walk_if_table(vma.pmd_young, options)
                # a present page implies its table exists, so walk_if_table alone decides which pages are walked
                if walk_if_table is not None:
                    walked_pages = np.repeat(walk_if_table, HPAGE_PMD_NR)[: vma.npages]
            found = _found_accessed(vma.flags, vma.node, walked_pages)
            if not vma.huge:
                # SKIM only walks tables whose pmd_young is set, so clearing every existing table's is the same
                vma.pmd_young[_tables_exist(vma.node)] = 0
        # reported dirty: found accessed with PG_DIRTY (bit 1), read before the flags change
        dirty = np.bitwise_and(vma.flags >> 1, found) if dirty_option else np.zeros(vma.npages, np.uint8)
        # test-and-clear A of the accessed pages (set in flags wherever found is 1), then the flush at close
        # clears every PG_TLB_CACHED
        np.bitwise_and(vma.flags, np.uint8(~PG_TLB_CACHED & 0xFF), out=vma.flags)
        np.bitwise_xor(vma.flags, found, out=vma.flags)
        reports.append(PageReport(found.view(bool), dirty.view(bool)))
    return reports


def _found_accessed(flags: np.ndarray, node: np.ndarray, walked_pages: np.ndarray | None) -> np.ndarray:
    """Per page, 1 if a scan finds it accessed (present: node >= 0; PG_ACCESSED, bit 0; in a walked table) else
    0, as uint8: the bool `_classify` gives, in byte arithmetic without bool casts."""
    found = np.empty(node.size, np.uint8)
    np.greater_equal(node, 0, out=found.view(bool))     # 1 where present
    np.bitwise_and(found, flags, out=found)             # & PG_ACCESSED (bit 0)
    if walked_pages is not None:
        np.bitwise_and(found, walked_pages.view(np.uint8), out=found)
    return found
