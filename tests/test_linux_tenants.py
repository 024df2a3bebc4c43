"""A child process touching a known set of pages, found by pid and name, its pages moved with real move_pages."""

import errno
import subprocess
import time

import pytest

from pagetide.agent.linux.move_pages import move_pages
from pagetide.agent.linux.tenants import guest_ram, pids_by_name, pids_of_cgroup, private_writable

from helpers import CHILD_NPAGES

PAGE = 4096
NPAGES = CHILD_NPAGES  # the `child` fixture's pages (tests/conftest.py), every other one touched


def test_child_mapping_is_found_and_its_touched_pages_move_to_node_0(child):
    p, base = child
    ranges = private_writable(p.pid)
    assert any(r.start <= base and base + NPAGES * PAGE <= r.end for r in ranges)
    assert guest_ram(p.pid).size >= NPAGES * PAGE
    addrs = [base + i * PAGE for i in range(NPAGES)]
    st = move_pages(p.pid, addrs, [0] * NPAGES)
    assert st[0::2] == [0] * (NPAGES // 2)                      # touched: on node 0
    assert st[1::2] == [-errno.ENOENT] * (NPAGES // 2)          # never touched: no page
    assert move_pages(p.pid, addrs[0::2], None) == [0] * (NPAGES // 2)


def test_child_is_found_by_name():
    p = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while p.pid not in pids_by_name("sleep") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.pid in pids_by_name("sleep")
    finally:
        p.kill()
        p.wait(timeout=10)


def test_a_cgroup_outside_the_root_is_refused():
    with pytest.raises(ValueError):
        pids_of_cgroup("../../etc")
