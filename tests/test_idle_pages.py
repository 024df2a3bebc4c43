"""The /proc/PID/idle_pages emulation: byte-exact streams, read semantics, side effects, and the fast path."""

import errno

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagetide.agent.idle_pages import (
    SCAN_DIRTY_PAGE,
    SCAN_HUGE_PAGE,
    SCAN_SKIM_IDLE,
    TASK_SIZE,
    IdlePagesFile,
    PageType,
    Run,
    Vma,
    decode,
    decode_arrays,
    page_report,
    scan_fast,
    scan_stream,
)
from pagetide.agent.pageflags import (
    NODE_NONE,
    NODE_SWAP,
    PG_ACCESSED,
    PG_ACTIVE,
    PG_DIRTY,
    PG_REFERENCED,
    PG_TLB_CACHED,
)

BASE = 0x7F0000000000
KiB4 = 4096
MiB2 = 2 << 20


def hva(address: int) -> bytes:
    return b"\xa0" + address.to_bytes(8, "big")


def window_end(offset: int, count: int) -> int:
    return offset + count * 8 * KiB4


def vma_4k(start=BASE, npages=20, accessed=(), dirty=(), node=0, young=1) -> Vma:
    flags = np.zeros(npages, np.uint8)
    flags[list(accessed)] |= PG_ACCESSED
    flags[list(dirty)] |= PG_DIRTY
    return Vma(start, False, flags, np.full(npages, node, np.int8),
               np.full(-(-npages // 512), young, np.uint8))


def vma_huge(start=BASE, npages=4, accessed=(), dirty=(), node=0) -> Vma:
    flags = np.zeros(npages, np.uint8)
    flags[list(accessed)] |= PG_ACCESSED
    flags[list(dirty)] |= PG_DIRTY
    return Vma(start, True, flags, np.full(npages, node, np.int8), None)


def read_at(vmas, offset, count, open_flags=0):
    """One read in a fresh file; returns the bytes and the offset after it (the file stays open: no flush)."""
    f = IdlePagesFile(vmas, open_flags)
    f.lseek(offset)
    return f.read(count), f.offset


# ---------------------------------------------------------------------------------------------- hand-worked bytes


def test_accessed_then_idle_ptes_are_two_runs_and_dirty_is_folded_into_accessed_without_the_option():
    vma = vma_4k(npages=20, accessed=[0, 1, 2, 3], dirty=[3])
    data, offset = read_at([vma], BASE, 100)
    end = window_end(BASE, 100)
    assert data == hva(BASE) + bytes([0x04, 0x5F, 0x51]) + hva(end)
    assert offset == end


def test_scan_dirty_page_reports_accessed_dirty_ptes_as_pte_dirty():
    vma = vma_4k(npages=20, accessed=[0, 1, 2, 3], dirty=[3])
    data, _ = read_at([vma], BASE, 100, SCAN_DIRTY_PAGE)
    assert data == hva(BASE) + bytes([0x03, 0x31, 0x5F, 0x51]) + hva(window_end(BASE, 100))


def test_runs_longer_than_15_pages_are_split_into_15s():
    vma = vma_4k(npages=47, accessed=range(40))
    data, _ = read_at([vma], BASE, 100)
    assert data == hva(BASE) + bytes([0x0F, 0x0F, 0x0A, 0x57]) + hva(window_end(BASE, 100))


def test_gap_between_vmas_is_skipped_with_set_hva_and_adjacent_vmas_continue_without_one():
    first = vma_4k(BASE, npages=4)
    after_gap = vma_4k(BASE + 2 * MiB2, npages=2, accessed=[0, 1])
    data, _ = read_at([first, after_gap], BASE, 200)
    assert data == hva(BASE) + b"\x54" + hva(BASE + 2 * MiB2) + b"\x02" + hva(window_end(BASE, 200))

    whole_range = vma_4k(BASE, npages=512)
    adjacent = vma_4k(BASE + MiB2, npages=1, accessed=[0])
    data, _ = read_at([whole_range, adjacent], BASE, 200)
    assert data == hva(BASE) + b"\x5f" * 34 + b"\x52" + b"\x01" + hva(window_end(BASE, 200))


def test_never_touched_2mib_range_inside_the_read_is_one_pmd_hole():
    vma = vma_4k(npages=3 * 512)
    vma.node[512:1024] = NODE_NONE
    idle_range = b"\x5f" * 34 + b"\x52"  # 512 = 34 * 15 + 2
    data, offset = read_at([vma], BASE, 3 * 64)  # the read covers exactly the VMA
    assert data == hva(BASE) + idle_range + b"\x91" + idle_range
    assert offset == vma.end  # no tail hole: no trailing SET_HVA


def test_never_touched_range_cut_by_the_read_window_is_reported_as_pte_holes():
    vma = vma_4k(npages=3 * 512)
    vma.node[512:1024] = NODE_NONE
    data, offset = read_at([vma], BASE + MiB2, 32)  # 256 pages: half the range
    assert data == hva(BASE + MiB2) + b"\x8f" * 17 + b"\x81"
    assert offset == BASE + MiB2 + 256 * KiB4


def test_swapped_pages_in_an_existing_pte_table_are_pte_holes():
    vma = vma_4k(npages=4)
    vma.node[1:3] = NODE_SWAP
    data, _ = read_at([vma], BASE, 100)
    assert data == hva(BASE) + bytes([0x51, 0x82, 0x51]) + hva(window_end(BASE, 100))


def test_thp_entries_are_pmd_accessed_dirty_idle_and_hole():
    vma = vma_huge(npages=4, accessed=[0, 1], dirty=[1])
    vma.node[3] = NODE_NONE
    data, _ = read_at([vma], BASE, 1024)
    assert data == hva(BASE) + bytes([0x12, 0x61, 0x91]) + hva(window_end(BASE, 1024))
    vma = vma_huge(npages=4, accessed=[0, 1], dirty=[1])
    vma.node[3] = NODE_SWAP
    data, _ = read_at([vma], BASE, 1024, SCAN_DIRTY_PAGE)
    assert data == hva(BASE) + bytes([0x11, 0x41, 0x61, 0x91]) + hva(window_end(BASE, 1024))


def test_offset_inside_a_thp_reports_the_whole_thp_from_its_base():
    vma = vma_huge(npages=4, accessed=[1, 2])
    data, offset = read_at([vma], BASE + MiB2 + 3 * KiB4, 19)
    # the 608 KiB window holds only THP 1's base; the entry is reported whole, so the offset passes the end
    assert data == hva(BASE + MiB2) + b"\x11"
    assert offset == BASE + 2 * MiB2
    assert vma.flags[2] & PG_ACCESSED


def test_skim_idle_reports_a_table_with_clear_pmd_young_as_pmd_idle_ptes_without_walking_it():
    vma = vma_4k(npages=1024, accessed=[0, 512])
    vma.pmd_young[0] = 0
    data, _ = read_at([vma], BASE, 128, SCAN_SKIM_IDLE)
    assert data == hva(BASE) + b"\x71" + b"\x01" + b"\x5f" * 34 + b"\x51"
    assert vma.flags[0] == PG_ACCESSED  # not walked: its A bit survives
    assert vma.flags[512] == PG_TLB_CACHED
    assert vma.pmd_young.tolist() == [0, 0]


def test_scan_huge_page_reports_every_pte_table_as_pmd_idle_ptes_and_touches_nothing():
    vma = vma_4k(npages=1024 + 512, accessed=[0, 512])
    vma.node[1024:] = NODE_NONE
    thp = vma_huge(BASE + 4 * MiB2, npages=1, accessed=[0])
    data, _ = read_at([vma, thp], BASE, 512, SCAN_HUGE_PAGE)
    assert data == hva(BASE) + b"\x72\x91" + hva(BASE + 4 * MiB2) + b"\x11" + hva(window_end(BASE, 512))
    assert vma.flags[[0, 512]].tolist() == [PG_ACCESSED, PG_ACCESSED]
    assert vma.pmd_young.tolist() == [1, 1, 1]
    assert thp.flags[0] == PG_TLB_CACHED  # THPs are still test-and-cleared


def test_skipped_table_cut_by_the_read_window_is_reported_as_idle_ptes_and_holes_without_walking():
    vma = vma_4k(npages=512, accessed=[0, 1])
    vma.node[2] = NODE_SWAP
    data, _ = read_at([vma], BASE, 40, SCAN_HUGE_PAGE)  # 320 pages: not a whole range
    assert data == hva(BASE) + b"\x52\x81" + b"\x5f" * 21 + b"\x52"  # 317 idle = 21 * 15 + 2
    assert vma.flags[:2].tolist() == [PG_ACCESSED, PG_ACCESSED]


# ---------------------------------------------------------------------------------------------- read(2) semantics


def test_unaligned_offset_and_buffer_under_19_bytes_are_einval():
    f = IdlePagesFile([vma_4k()])
    f.lseek(BASE + 1)
    with pytest.raises(OSError) as err:
        f.read(100)
    assert err.value.errno == errno.EINVAL
    f.lseek(BASE)
    with pytest.raises(OSError) as err:
        f.read(18)
    assert err.value.errno == errno.EINVAL


def test_read_at_task_size_is_eof():
    f = IdlePagesFile([vma_4k()])
    f.lseek(TASK_SIZE)
    assert f.read(100) == b""


def test_a_19_byte_buffer_holds_set_hva_one_run_and_the_trailing_set_hva():
    data, offset = read_at([vma_4k(npages=3)], BASE, 19)
    assert data == hva(BASE) + b"\x53" + hva(window_end(BASE, 19))
    assert offset == window_end(BASE, 19)


def test_a_full_buffer_stops_the_read_just_past_the_last_reported_page():
    vma = vma_4k(npages=64, accessed=range(0, 64, 2))  # every page is its own run
    data, offset = read_at([vma], BASE, 19)
    assert data == hva(BASE) + b"\x01\x51" * 5
    assert offset == BASE + 10 * KiB4
    assert (vma.flags[:10:2] == PG_TLB_CACHED).all()
    assert (vma.flags[10::2] == PG_ACCESSED).all()  # not reported, so not cleared


def test_a_full_buffer_can_stop_inside_a_run_of_pmd_holes():
    vma = vma_4k(npages=64 * 512, accessed=range(0, 4084, 2))  # 4083 one-page runs, then 13 idle pages
    vma.node[8 * 512:] = NODE_NONE  # 56 never-touched ranges
    data, offset = read_at([vma], BASE, 4096)  # walks all 64 ranges; 3 bytes are left for the holes
    assert data == hva(BASE) + b"\x01\x51" * 2041 + b"\x01\x5d" + b"\x9f" * 3
    assert offset == BASE + (8 + 45) * MiB2


def test_a_set_hva_for_a_gap_is_only_emitted_with_the_run_after_it():
    first = vma_4k(BASE, npages=47, accessed=range(0, 47, 2))  # 47 one-page runs
    second = vma_4k(BASE + MiB2, npages=1)
    f = IdlePagesFile([first, second])
    f.lseek(BASE)
    # a 65-byte read walks 520 pages, into the second VMA; 9 bytes are left for it, but it needs 10
    assert f.read(65) == hva(BASE) + b"\x01\x51" * 23 + b"\x01"
    assert f.offset == BASE + 47 * KiB4
    assert f.read(65) == hva(BASE + MiB2) + b"\x51" + hva(window_end(BASE + 47 * KiB4, 65))


def test_a_read_with_no_vma_in_its_window_is_only_a_set_hva_of_its_end():
    data, offset = read_at([vma_4k(BASE)], BASE + MiB2, 100)
    assert data == hva(window_end(BASE + MiB2, 100))
    assert offset == window_end(BASE + MiB2, 100)


def test_pread_leaves_the_offset_where_it_was():
    f = IdlePagesFile([vma_4k()])
    assert f.pread(100, BASE).startswith(hva(BASE))
    assert f.offset == 0


def test_many_small_reads_reconstruct_the_same_report_as_one_large_read():
    def layout():
        big = vma_4k(BASE, npages=2000, accessed=range(0, 2000, 3), dirty=range(0, 2000, 7))
        big.node[512:1024] = NODE_NONE  # one PMD_HOLE for large reads, PTE_HOLEs for 19-byte ones
        return [big, vma_huge(BASE + 4 * MiB2, npages=5, accessed=[1, 3])]

    small, large = layout(), layout()
    small_stream = scan_stream(small, SCAN_DIRTY_PAGE, count=19)
    large_stream = scan_stream(large, SCAN_DIRTY_PAGE, count=1 << 16)
    assert len(decode(small_stream)) > len(decode(large_stream))
    for s, l in zip(small, large):
        assert all(np.array_equal(x, y) for x, y in zip(page_report(s, decode_arrays(small_stream)),
                                                       page_report(l, decode_arrays(large_stream))))
        assert np.array_equal(s.flags, l.flags) and np.array_equal(s.pmd_young, l.pmd_young)
    present_dirty = [p for p in range(0, 2000, 21) if not 512 <= p < 1024]
    assert np.flatnonzero(page_report(small[0], decode_arrays(small_stream)).dirty).tolist() == present_dirty


# ---------------------------------------------------------------------------------------------- side effects


def test_a_second_scan_right_after_a_scan_reports_everything_idle():
    vmas = [vma_4k(npages=20, accessed=range(10)), vma_huge(BASE + MiB2, accessed=[0])]
    first = decode_arrays(scan_stream(vmas))
    assert page_report(vmas[0], first).accessed.sum() == 10
    second = decode_arrays(scan_stream(vmas))
    assert not page_report(vmas[0], second).accessed.any()
    assert not page_report(vmas[1], second).accessed.any()


def test_found_accessed_pages_stay_tlb_cached_until_close_flushes_every_vma():
    vma, untouched = vma_4k(npages=20, accessed=[5], dirty=[5]), vma_4k(BASE + MiB2, npages=1)
    untouched.flags[0] = PG_TLB_CACHED  # left over from an earlier, unflushed scan
    f = IdlePagesFile([vma, untouched])
    f.lseek(BASE)
    f.read(19)
    assert vma.flags[5] == PG_TLB_CACHED | PG_DIRTY  # A cleared, dirty is never cleared
    f.close()
    assert vma.flags[5] == PG_DIRTY and untouched.flags[0] == 0
    with pytest.raises(OSError):
        f.read(100)


def test_walking_a_pte_table_clears_its_pmd_young_once_its_last_page_is_reported():
    vma = vma_4k(npages=1024)
    f = IdlePagesFile([vma])
    f.lseek(BASE)
    f.read(32)  # 256 pages: half of range 0
    assert vma.pmd_young.tolist() == [1, 1]
    f.read(64)  # the rest of range 0 and half of range 1
    assert vma.pmd_young.tolist() == [0, 1]


def test_scan_touches_only_the_accessed_and_tlb_bits():
    vma = vma_4k(npages=3, accessed=[0, 1])
    vma.flags |= PG_REFERENCED | PG_ACTIVE
    scan_stream([vma])
    assert vma.flags.tolist() == [PG_REFERENCED | PG_ACTIVE] * 3


# ---------------------------------------------------------------------------------------------- decoder


def test_decoder_advances_4k_per_pte_2m_per_pmd_and_1g_per_pud():
    data = hva(0x40000000) + bytes([0x33, 0x12, 0x21, 0x71])
    assert decode(data) == [Run(0x40000000, PageType.PTE_DIRTY, 3),
                            Run(0x40000000 + 3 * KiB4, PageType.PMD_ACCESSED, 2),
                            Run(0x40000000 + 3 * KiB4 + 2 * MiB2, PageType.PUD_PRESENT, 1),
                            Run(0x80000000 + 3 * KiB4 + 2 * MiB2, PageType.PMD_IDLE_PTES, 1)]


def test_decoder_skips_address_bytes_that_look_like_commands():
    assert decode(hva(0xA0A0A0A0A000) + b"\x51") == [Run(0xA0A0A0A0A000, PageType.PTE_IDLE, 1)]


@pytest.mark.parametrize("data, message", [
    (b"\x51" + hva(BASE), "before any SET_HVA"),
    (hva(BASE)[:5], "truncated SET_HVA"),
    (hva(BASE) + b"\x51" + hva(BASE)[:8], "truncated SET_HVA"),
    (hva(BASE) + b"\xb1", "unknown page type"),
    (hva(BASE) + b"\xa1", "unknown command"),
    (hva(BASE) + b"\x50", "0 entries"),
])
def test_decoder_rejects_malformed_streams(data, message):
    with pytest.raises(ValueError, match=message):
        decode(data)


def test_page_report_counts_pmd_entries_as_512_pages_of_a_4k_vma():
    vma = vma_4k(npages=1024 + 1)
    runs = decode(hva(BASE) + bytes([0x41, 0x71, 0x01]))
    report = page_report(vma, runs)
    assert report.accessed.tolist() == [True] * 512 + [False] * 512 + [True]
    assert report.dirty.tolist() == [True] * 512 + [False] * 513


# ---------------------------------------------------------------------------------------------- the fast path


FLAG_BITS = np.array([PG_ACCESSED, PG_DIRTY, PG_REFERENCED, PG_TLB_CACHED], np.uint8)


def random_vmas(rng: np.random.Generator, nvmas: int) -> list[Vma]:
    vmas, start = [], BASE
    for _ in range(nvmas):
        start += int(rng.integers(0, 3)) * MiB2  # adjacent VMAs or a gap
        huge = rng.random() < 0.3
        npages = int(rng.integers(1, 8)) if huge else int(rng.integers(1, 1600))
        flags = np.bitwise_or.reduce(FLAG_BITS[None, :] * (rng.random((npages, 4)) < 0.5), axis=1)
        flags = flags.astype(np.uint8)
        node = rng.choice(np.array([0, 1, NODE_SWAP, NODE_NONE], np.int8), npages, p=[0.4, 0.3, 0.1, 0.2])
        young = None
        if not huge:
            nranges = -(-npages // 512)
            node.reshape(-1)[np.repeat(rng.random(nranges) < 0.3, 512)[:npages]] = NODE_NONE  # pmd_none
            young = (rng.random(nranges) < 0.5).astype(np.uint8)
        vma = Vma(start, huge, flags, node, young)
        vmas.append(vma)
        start = -(-vma.end // MiB2) * MiB2
    return vmas


def copy_vmas(vmas: list[Vma]) -> list[Vma]:
    return [Vma(v.start, v.huge, v.flags.copy(), v.node.copy(), None if v.pmd_young is None else v.pmd_young.copy())
            for v in vmas]


def times_reported(vma: Vma, runs) -> np.ndarray:
    lo = np.maximum(runs.address, vma.start)
    pte_level = np.isin(runs.type, [PageType.PTE_ACCESSED, PageType.PTE_DIRTY, PageType.PTE_IDLE, PageType.PTE_HOLE])
    size = runs.npages.astype(np.int64) << np.where(pte_level, 12, np.where(runs.type == PageType.PUD_PRESENT, 30, 21))
    hi = np.minimum(runs.address + size, vma.end)
    keep = hi > lo
    first = (lo[keep] - vma.start) // vma.page_size
    last = -(-(hi[keep] - vma.start) // vma.page_size)
    return np.cumsum(np.bincount(first, minlength=vma.npages + 1) - np.bincount(last, minlength=vma.npages + 1))[:-1]


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nvmas=st.integers(1, 3),
       options=st.sets(st.sampled_from([SCAN_HUGE_PAGE, SCAN_SKIM_IDLE, SCAN_DIRTY_PAGE])),
       count=st.one_of(st.integers(19, 80), st.integers(81, 3000)))
def test_fast_path_reports_and_changes_exactly_what_reading_the_stream_does(seed, nvmas, options, count):
    open_flags = sum(options)
    via_stream = random_vmas(np.random.default_rng(seed), nvmas)
    via_fast, before = copy_vmas(via_stream), copy_vmas(via_stream)

    runs = decode_arrays(scan_stream(via_stream, open_flags, count))
    fast = scan_fast(via_fast, open_flags)

    for s, f, b, report in zip(via_stream, via_fast, before, fast):
        assert (times_reported(s, runs) == 1).all()  # every page reported exactly once
        stream_report = page_report(s, runs)
        assert np.array_equal(stream_report.accessed, report.accessed)
        assert np.array_equal(stream_report.dirty, report.dirty)
        assert np.array_equal(s.flags, f.flags)
        assert s.pmd_young is None or np.array_equal(s.pmd_young, f.pmd_young)
        cleared = PG_TLB_CACHED | np.where(report.accessed, PG_ACCESSED, 0).astype(np.uint8)
        assert np.array_equal(f.flags, b.flags & ~cleared)
        assert not (report.accessed & ((b.flags & PG_ACCESSED) == 0)).any()
