"""Giving freed heap back to the kernel: `HeapTrim.after_work()` calls glibc's malloc_trim(0) at most once per
`interval` seconds.

A simulated host's ticks and heat reports free megabytes of numpy temporaries every period. glibc serves them
from its heap once its dynamic mmap threshold has risen (to the size of the largest block freed, up to 32 MiB),
and keeps the freed pages resident: measured on 8 generated 16 GiB hosts in one process (BENCHMARKS.md), RSS
above the interpreter is 9.25 B per host page where the arrays the hosts hold are 7.39; trimmed after each round,
8.01. A trim costs about 2 ms with that heap, hence the rate limit. Where the C library has no malloc_trim
(musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

__all__ = ["HeapTrim"]

INTERVAL = 1.0     # seconds of wall time between two trims at most


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class HeapTrim:
    """Trims the process's heap after work, at most once per `interval` seconds (`clock` for tests)."""

    def __init__(self, interval: float = INTERVAL, clock=time.monotonic):
        self.interval, self.clock = interval, clock
        self._trim = _malloc_trim()
        self._last = None
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def after_work(self) -> bool:
        """Trim if the last trim is at least `interval` ago; True if it trimmed."""
        now = self.clock()
        if self._trim is None or (self._last is not None and now - self._last < self.interval):
            return False
        self._last = now
        self._trim(0)
        self.trims += 1
        return True
