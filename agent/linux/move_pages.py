"""move_pages(2) through ctypes: real page migration and placement queries with per-page statuses.

A negative status is a negated errno (-EFAULT, -ENOENT, ...), as the kernel returns it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import numpy as np

from pagetide.agent.mempolicy import MPOL_MF_MOVE, MPOL_MF_MOVE_ALL, MPOL_MF_SW_YOUNG

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_move_pages = getattr(_libc, "move_pages", None)  # glibc >= 2.x has no wrapper without libnuma
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_NR_MOVE_PAGES = {"x86_64": 279, "aarch64": 239}.get(os.uname().machine)
CHUNK_PAGES = 1 << 16     # pages per syscall


def move_pages(pid: int, addrs: list[int], nodes: list[int] | None, flags: int = MPOL_MF_MOVE) -> list[int]:
    """Move each page at `addrs` of `pid` to `nodes[i]` (or, with nodes None, query where each page is).

    Returns one status per page: the node it is on now, or a negated errno. Raises OSError when the call
    itself fails (bad pid, no permission, bad node)."""
    if any(a < 0 for a in addrs):
        raise ValueError("move_pages: negative address")
    return move_pages_array(pid, np.asarray(addrs, dtype=np.uint64),
                            None if nodes is None else np.asarray(nodes, dtype=np.int64), flags).tolist()


def move_pages_array(pid: int, addrs: np.ndarray, nodes: np.ndarray | None, flags: int = MPOL_MF_MOVE,
                     chunk: int = CHUNK_PAGES) -> np.ndarray:
    """move_pages on numpy arrays (addresses uint64, nodes int), in calls of at most `chunk` pages: the
    statuses as int32, one per page."""
    if _NR_MOVE_PAGES is None:
        raise OSError(f"move_pages: unknown syscall number on {os.uname().machine}")
    if nodes is not None and len(nodes) != len(addrs):
        raise ValueError(f"move_pages: {len(addrs)} addresses but {len(nodes)} nodes")
    pages = np.ascontiguousarray(addrs, dtype=np.uint64)
    node_arr = None if nodes is None else np.ascontiguousarray(nodes, dtype=np.int32)
    status = np.full(pages.size, -1, dtype=np.int32)
    for lo in range(0, pages.size, chunk):
        n = min(chunk, pages.size - lo)
        rc = _syscall(ctypes.c_long(_NR_MOVE_PAGES), ctypes.c_long(pid), ctypes.c_ulong(n),
                      ctypes.c_void_p(pages.ctypes.data + 8 * lo),
                      None if node_arr is None else ctypes.c_void_p(node_arr.ctypes.data + 4 * lo),
                      ctypes.c_void_p(status.ctypes.data + 4 * lo), ctypes.c_int(flags))
        if rc < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"move_pages(pid={pid}, {n} pages): {os.strerror(err)}")
    return status


def sw_young_supported() -> tuple[bool, str]:
    """Probe on one page of this process: does the kernel accept MPOL_MF_SW_YOUNG?"""
    import mmap
    buf = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buf[0] = 1
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    try:
        move_pages(os.getpid(), [addr], None, MPOL_MF_MOVE | MPOL_MF_SW_YOUNG)
    except OSError as e:
        return False, f"MPOL_MF_SW_YOUNG unsupported: move_pages refused it ({os.strerror(e.errno)})"
    return True, "MPOL_MF_SW_YOUNG accepted"


def move_paced(pid: int, addrs: list[int], nodes: list[int], *, bytes_per_s: float, batch_pages: int,
               page_size: int = 4096, flags: int = MPOL_MF_MOVE, deadline_s: float = 60.0) -> list[int]:
    """move_pages in batches of `batch_pages`, paced so no more than `bytes_per_s` move per second.

    Refuses with TimeoutError, before moving anything, a plan whose pacing would pass `deadline_s`."""
    import time
    if bytes_per_s <= 0 or batch_pages <= 0:
        raise ValueError("move_paced: bytes_per_s and batch_pages must be positive")
    if len(nodes) != len(addrs):
        raise ValueError(f"move_paced: {len(addrs)} addresses but {len(nodes)} nodes")
    last = (len(addrs) - 1) // batch_pages * batch_pages * page_size / bytes_per_s if addrs else 0.0
    if last > deadline_s:
        raise TimeoutError(f"move_paced: {len(addrs)} pages at {bytes_per_s:.0f} B/s need {last:.1f} s, "
                           f"past the {deadline_s} s deadline")
    start = time.monotonic()
    out: list[int] = []
    for i in range(0, len(addrs), batch_pages):
        due = start + i * page_size / bytes_per_s
        time.sleep(max(0.0, due - time.monotonic()))
        out += move_pages(pid, addrs[i:i + batch_pages], nodes[i:i + batch_pages], flags)
    return out
