"""Real move_pages(2) on this machine's kernel, on pages of this test process (node 0 exists everywhere)."""

import ctypes
import errno
import mmap
import os

import pytest

from pagetide.agent.linux.move_pages import MPOL_MF_MOVE, move_pages

PAGE = mmap.PAGESIZE


def _touched_buffer(npages):
    buf = mmap.mmap(-1, npages * PAGE)
    for i in range(npages):
        buf[i * PAGE] = 1
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    return buf, base


def test_touched_pages_move_to_node_0_with_status_0_and_query_says_node_0():
    buf, base = _touched_buffer(8)
    addrs = [base + i * PAGE for i in range(8)]
    assert move_pages(os.getpid(), addrs, [0] * 8, MPOL_MF_MOVE) == [0] * 8
    assert move_pages(os.getpid(), addrs, None) == [0] * 8


def test_untouched_page_is_enoent_and_unmapped_address_is_efault():
    buf, base = _touched_buffer(1)
    fresh = mmap.mmap(-1, PAGE)  # never touched: no page behind it
    fresh_addr = ctypes.addressof(ctypes.c_char.from_buffer(fresh))
    st = move_pages(os.getpid(), [base, fresh_addr, 0x1000], [0, 0, 0])
    assert st[0] == 0
    assert st[1] == -errno.ENOENT
    assert st[2] == -errno.EFAULT


def test_bad_input_is_refused_before_the_call():
    with pytest.raises(ValueError):
        move_pages(os.getpid(), [0x1000], [0, 0])
    with pytest.raises(OSError):
        move_pages(os.getpid(), [0x1000], [4096])  # no such node


def test_paced_batches_keep_to_the_bandwidth():
    import time
    from pagetide.agent.linux.move_pages import move_paced
    buf, base = _touched_buffer(64)
    addrs = [base + i * PAGE for i in range(64)]
    t0 = time.monotonic()
    st = move_paced(os.getpid(), addrs, [0] * 64, bytes_per_s=16 * PAGE / 0.1, batch_pages=16, page_size=PAGE)
    took = time.monotonic() - t0
    assert st == [0] * 64
    assert took >= 0.3  # 4 batches, 0.1 s apart
    with pytest.raises(TimeoutError):
        move_paced(os.getpid(), addrs, [0] * 64, bytes_per_s=PAGE, batch_pages=1, page_size=PAGE, deadline_s=5)
    assert time.monotonic() - t0 < took + 1  # refused at once, nothing moved or waited for


def test_sw_young_is_reported_as_the_kernel_has_it():
    from pagetide.agent.linux.move_pages import sw_young_supported
    ok, why = sw_young_supported()
    print(why)
    if not ok:
        assert "unsupported" in why and "Invalid argument" in why
