"""move_pages(2) through ctypes: real page migration and placement queries with per-page statuses.

A negative status is a negated errno (-EFAULT, -ENOENT, ...), as the kernel returns it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MPOL_MF_MOVE = 1 << 1
MPOL_MF_MOVE_ALL = 1 << 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_move_pages = getattr(_libc, "move_pages", None)  # glibc >= 2.x has no wrapper without libnuma
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_NR_MOVE_PAGES = {"x86_64": 279, "aarch64": 239}.get(os.uname().machine)


def move_pages(pid: int, addrs: list[int], nodes: list[int] | None, flags: int = MPOL_MF_MOVE) -> list[int]:
    """Move each page at `addrs` of `pid` to `nodes[i]` (or, with nodes None, query where each page is).

    Returns one status per page: the node it is on now, or a negated errno. Raises OSError when the call
    itself fails (bad pid, no permission, bad node)."""
    if _NR_MOVE_PAGES is None:
        raise OSError(f"move_pages: unknown syscall number on {os.uname().machine}")
    if nodes is not None and len(nodes) != len(addrs):
        raise ValueError(f"move_pages: {len(addrs)} addresses but {len(nodes)} nodes")
    if any(a < 0 for a in addrs):
        raise ValueError("move_pages: negative address")
    n = len(addrs)
    if n == 0:
        return []
    pages = (ctypes.c_void_p * n)(*addrs)
    status = (ctypes.c_int * n)(*([-1] * n))
    node_arr = (ctypes.c_int * n)(*nodes) if nodes is not None else None
    rc = _syscall(ctypes.c_long(_NR_MOVE_PAGES), ctypes.c_long(pid), ctypes.c_ulong(n), pages,
                  node_arr, status, ctypes.c_int(flags))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"move_pages(pid={pid}, {n} pages): {os.strerror(err)}")
    return list(status)
