"""Loaded latency: what a NUMA node's accesses cost as the bandwidth it serves approaches its limit.

A device's idle latency (DESIGN.md section 3) holds only while few requests queue at it. Under load the
latency an access sees rises -- slowly at first, then sharply near saturation -- so a DRAM node serving most of
a host's bandwidth can become slower than the idle slow tier (Colloid, SOSP'24: even under moderate loads the
default tier's latency inflated to 2.5x the alternate tier's). The model's curve has that shape: with u the
node's utilization (bytes read over its read bandwidth plus bytes written over its write bandwidth, per second),

    factor(u) = 1 + KNEE * u**POWER / (1 - u)            for u <= U_CAP
    factor(u) = factor(U_CAP) * u / U_CAP                 beyond

flat below half the bandwidth (u = 0.1: +0.006%, u = 0.5: +6%), twice idle at u = 0.8, about 9x at 0.95 and
12x at the cap. Demand beyond the cap (the workloads' accesses do not slow down: their rates are given) is
served at the node's bandwidth, so the time its accesses take stretches in proportion: linear in u.

`NodeLoad` keeps each node's bytes of the current tick -- accesses (a 64-byte cache line each) and migration
copies (the source's read and the destination's write) -- and at the end of the tick turns them into the
latency factor the next tick's accesses pay (one tick of lag: accesses are charged as they are made), plus
running sums from which a period's mean utilization and loaded latency are read. Per node, vectorised: no
state per page.
"""

from __future__ import annotations

import numpy as np

LINE_BYTES = 64        # bytes one access moves (a cache line)
KNEE = 0.5             # the curve's scale
POWER = 4              # how flat it stays at low load
U_CAP = 0.96           # utilization beyond which the queueing term stops growing as 1 / (1 - u)


def latency_factor(u: np.ndarray) -> np.ndarray:
    """Loaded over idle latency at utilization u (>= 0), elementwise."""
    u = np.maximum(np.asarray(u, dtype=np.float64), 0.0)
    c = np.minimum(u, U_CAP)
    return (1.0 + KNEE * c ** POWER / (1.0 - c)) * np.maximum(u / U_CAP, 1.0)


class NodeLoad:
    """Bandwidth each node serves, tick by tick, and the latency factor it gives."""

    def __init__(self, read_bw: np.ndarray, write_bw: np.ndarray):
        self.read_bw = np.asarray(read_bw, dtype=np.float64)
        self.write_bw = np.asarray(write_bw, dtype=np.float64)
        n = self.read_bw.size
        self.read_bytes = np.zeros(n)          # this tick's
        self.write_bytes = np.zeros(n)
        self.factor = np.ones(n)               # what accesses pay now: from the last tick's load
        self.utilization = np.zeros(n)         # the last tick's
        self.busy_s = np.zeros(n)              # running sums over ticks: utilization x tick length
        self.factor_s = np.zeros(n)            # latency factor x tick length
        self.elapsed_s = 0.0
        self.migration_bytes = 0.0             # bytes copied by migrations, ever (read + write counted once)

    def accesses(self, reads: np.ndarray, writes: np.ndarray) -> None:
        """Accesses served per node (real accesses, not samples)."""
        self.read_bytes += reads * LINE_BYTES
        self.write_bytes += writes * LINE_BYTES

    def migration(self, src: np.ndarray, dst: int, nbytes: np.ndarray) -> None:
        """Pages copied from nodes src to node dst, nbytes each: read on the source, written on the
        destination."""
        self.read_bytes += np.bincount(src, weights=nbytes, minlength=self.read_bytes.size)   # whole bytes: exact
        total = float(np.sum(nbytes))
        self.write_bytes[dst] += total
        self.migration_bytes += total

    def end_tick(self, tick_s: float) -> None:
        """Close a tick of tick_s seconds: its utilization sets the factor of the next one."""
        u = (self.read_bytes / self.read_bw + self.write_bytes / self.write_bw) / tick_s
        self.utilization = u
        self.factor = latency_factor(u)
        self.busy_s += u * tick_s
        self.factor_s += self.factor * tick_s
        self.elapsed_s += tick_s
        self.discard_tick()

    def discard_tick(self) -> None:
        """Forget the bytes of the tick so far (what happened before the clock started)."""
        self.read_bytes[:] = 0.0
        self.write_bytes[:] = 0.0

    def sums(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(busy seconds, factor seconds, elapsed seconds) so far: the mean over an interval is the
        difference of two readings over the elapsed time between them."""
        return self.busy_s.copy(), self.factor_s.copy(), self.elapsed_s
