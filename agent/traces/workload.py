"""The `trace` workload: replays a converted trace (`format`) of a real program in the simulator, a peer of the
synthetic workloads in `pagetide.agent.workloads`' registry.

`{type: trace, path: ..., loop: true, ticks_per_epoch: 1}`: tick t replays trace epoch t // ticks_per_epoch
(modulo the number of epochs when `loop`, else the last epoch holds once the trace is over). Each tick draws
`samples` accesses among that epoch's reads and writes, each read and write equally likely: page i is drawn
with probability (reads_i + writes_i) / total and a draw is a write with the share of the page's accesses that
are writes (unless `write_ratio` is given, which then applies to every draw). An epoch without accesses replays
the nearest earlier epoch that has some (or the first one that has some). Trace page i is the tenant's page i,
in address order (the real layout, so 2 MiB regions keep their real density); the footprint must be at least
the trace's npages, and the extra pages are never touched. Trace pages map one to one onto the tenant's pages:
convert with `page_size` equal to the tenant's page size. `path` is a file path (relative to the working
directory), or the name of a shipped trace (`shipped`: `sort`, `python-dict`, `sqlite-index`), which a file of
that name in the working directory never shadows (`./sort` names the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pagetide.common import units
from pagetide.common.options import Option, count, flag, text
from pagetide.agent.traces.format import Epoch, TraceFormatError
from pagetide.agent.traces.shipped import open_trace
from pagetide.agent.workloads import Workload, register

__all__ = ["TraceWorkload"]


@dataclass(frozen=True)
class _Draw:
    """One epoch ready to sample: each item is a (page, read or write) with an integer weight."""
    pages: np.ndarray      # int64 page of each item
    is_write: np.ndarray   # bool
    cum: np.ndarray        # int64 cumulative weights; cum[-1] is the total


@register
class TraceWorkload(Workload):
    """Replays a converted trace of a real program (module docstring)."""

    name = "trace"
    MOVES_EVERY_TICK = True  # the distribution changes at every trace epoch, which may be every tick
    DEFAULT_WRITE_RATIO = None  # the trace's own mix of reads and writes
    OPTIONS = {
        "path": Option(text("the path of a converted trace or a shipped trace's name"), None,
                       "converted trace file, or the name of a shipped trace"),
        "loop": Option(flag(), True, "start over at the end of the trace (else the last epoch holds)"),
        "ticks_per_epoch": Option(count(1), 1, "ticks each trace epoch lasts"),
    }

    def _setup(self, path: str | None, loop: bool, ticks_per_epoch: int) -> None:
        if path is None:
            raise self._fail("path", "missing: a trace workload replays a converted trace file")
        try:
            self.trace = open_trace(path)
        except (OSError, TraceFormatError) as e:
            raise self._fail("path", str(e)) from None
        if self.trace.npages > self.npages:
            raise self._fail("path", f"the trace touches {self.trace.npages} pages "
                                     f"({units.format_size(self.trace.npages * self.trace.page_size)}) but the "
                                     f"footprint has only {self.npages}")
        totals = self.trace.header.get("reads", 0) + self.trace.header.get("writes", 0)
        if totals <= 0:
            raise self._fail("path", f"{self.trace.path}: the trace has no accesses")
        self._own_write_mix = self.write_ratio is None
        if self._own_write_mix:
            self.write_ratio = self.trace.header.get("writes", 0) / totals
        self._nonempty = self._nonempty_epochs()
        self._cache: dict[int, tuple[Epoch, _Draw]] = {}

    def _nonempty_epochs(self) -> np.ndarray:
        """For each epoch, the epoch replayed in its place: itself if it has accesses, else the nearest earlier
        one that has, else the first one that has."""
        has = np.array([e.pages.size > 0 for e in self.trace.epochs()])
        last = np.maximum.accumulate(np.where(has, np.arange(has.size), -1))
        return np.where(last >= 0, last, int(np.argmax(has)))

    def trace_epoch(self, tick: int) -> int:
        """The trace epoch replayed at tick `tick`."""
        e = self._check_tick(tick) // self.options["ticks_per_epoch"]
        n = self.trace.nepochs
        return int(self._nonempty[e % n if self.options["loop"] else min(e, n - 1)])

    def _epoch(self, tick: int) -> tuple[Epoch, _Draw]:
        i = self.trace_epoch(tick)
        if i not in self._cache:
            if len(self._cache) >= 2:  # ticks come in order: the current epoch and the one before suffice
                self._cache.pop(next(iter(self._cache)))
            ep = self.trace.epoch(i)
            if self._own_write_mix:
                draw = _Draw(np.concatenate([ep.pages, ep.pages]),
                             np.repeat([False, True], ep.pages.size), np.cumsum(np.concatenate([ep.reads, ep.writes])))
            else:
                draw = _Draw(ep.pages, np.zeros(ep.pages.size, bool), np.cumsum(ep.reads + ep.writes))
            self._cache[i] = (ep, draw)
        return self._cache[i]

    def _draw_accesses(self, tick: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        _, d = self._epoch(tick)
        u = rng.integers(0, d.cum[-1], self.samples)
        u.sort()  # sorted keys make searchsorted cheaper; the order of a tick's samples carries no meaning
        item = np.searchsorted(d.cum, u, side="right")
        if self._own_write_mix:
            return d.pages[item], d.is_write[item]
        return d.pages[item], rng.random(item.size) < self.write_ratio

    def _probabilities(self, tick: int) -> np.ndarray:
        ep, _ = self._epoch(tick)
        probs = np.zeros(self.npages)
        weight = ep.reads + ep.writes
        probs[ep.pages] = weight / weight.sum()
        return probs

    def _hot_pages(self, tick: int, k: int) -> np.ndarray:
        return np.argsort(-self._probabilities(tick), kind="stable")[:k]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self._own_write_mix:
            d["write_ratio"] = None  # the trace's own reads and writes
        return d
