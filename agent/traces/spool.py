"""What both converters share: the spool that holds finished epochs until the address map is known, the open
epoch's accumulator, and `convert`, which runs a converter's pass over its input and writes the final trace.

A converter streams its input in chunks and keeps in memory only the open epoch's sparse counts and the set of
pages seen; finished epochs go to a spool file next to the output, keyed by raw page number (address //
page_size), and a second pass renumbers their pages densely in address order (known only at the end) into the
final file. A failed conversion leaves neither the spool nor a partial output behind.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pagetide.agent.traces.format import TraceFile, TraceFormatError, TraceWriter

__all__ = ["DEFAULT_CHUNK", "Spool", "EpochAccumulator", "page_shift", "convert"]

DEFAULT_CHUNK = 4 << 20   # bytes of input a converter reads at a time


class Spool:
    """Finished epochs keyed by raw page number (address // page_size), in a temporary file; the set of
    pages seen so far in memory. `finish` renumbers pages densely in address order into the final trace."""

    def __init__(self, out_path: Path):
        fd, name = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".spool", dir=out_path.parent or ".")
        self._path = Path(name)
        self._f = os.fdopen(fd, "w+b")
        self.nepochs = 0
        self.reads = 0
        self.writes = 0
        self._seen: list[np.ndarray] = []
        self._seen_size = 0
        self.known = np.empty(0, dtype=np.uint64)

    def note_pages(self, pages: np.ndarray) -> None:
        """Add pages to the address map (sorted, unique); folded in batches to keep this O(n log n) overall."""
        self._seen.append(pages)
        self._seen_size += pages.size
        if self._seen_size > max(1 << 20, self.known.size):
            self._fold()

    def _fold(self) -> None:
        if self._seen:
            self.known = np.unique(np.concatenate([self.known, *self._seen]))
            self._seen, self._seen_size = [], 0

    def add_epoch(self, pages: np.ndarray, reads: np.ndarray, writes: np.ndarray) -> None:
        """pages: distinct uint64, ascending; reads, writes: int64."""
        self.note_pages(pages)
        self._f.write(struct.pack("<Q", pages.size))
        self._f.write(pages.astype("<u8").tobytes() + reads.astype("<i8").tobytes() + writes.astype("<i8").tobytes())
        self.nepochs += 1
        self.reads += int(reads.sum())
        self.writes += int(writes.sum())

    def finish(self, out_path: Path, header: Mapping[str, Any]) -> TraceFile:
        self._fold()
        page_size = int(header["page_size"])
        tmp_out = out_path.with_name(out_path.name + ".part")
        writer = TraceWriter(tmp_out, {**header, "reads": self.reads, "writes": self.writes},
                             self.known * np.uint64(page_size), self.nepochs)
        self._f.seek(0)
        for _ in range(self.nepochs):
            (n,) = struct.unpack("<Q", self._f.read(8))
            raw = np.frombuffer(self._f.read(24 * n), dtype="<u8")
            dense = np.searchsorted(self.known, raw[:n])
            writer.add_epoch(dense.astype(np.int64), raw[n:2 * n].view("<i8"), raw[2 * n:].view("<i8"))
        writer.close()
        self.discard()
        os.replace(tmp_out, out_path)
        return TraceFile(out_path)

    def discard(self) -> None:
        self._f.close()
        self._path.unlink(missing_ok=True)


def _sum_by_page(pages: np.ndarray, reads: np.ndarray, writes: np.ndarray) -> tuple[np.ndarray, ...]:
    uniq, inverse = np.unique(pages, return_inverse=True)
    return (uniq, np.bincount(inverse, weights=reads, minlength=uniq.size).astype(np.int64),
            np.bincount(inverse, weights=writes, minlength=uniq.size).astype(np.int64))


class EpochAccumulator:
    """The open epoch's sparse counts, merged chunk by chunk."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.size = 0

    def add(self, pages: np.ndarray, reads: np.ndarray, writes: np.ndarray) -> None:
        self.parts.append((pages, reads, writes))
        self.size += pages.size
        if len(self.parts) > 1 and self.size > 4 * max(1 << 16, self.parts[0][0].size):
            self.parts = [self.merged()]
            self.size = self.parts[0][0].size

    def merged(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            empty = np.empty(0, dtype=np.int64)
            return empty.astype(np.uint64), empty, empty
        return _sum_by_page(*(np.concatenate(x) for x in zip(*self.parts)))


def page_shift(page_size: int) -> int:
    """log2 of a converter's `page_size`, which must be a power of two."""
    if page_size <= 0 or page_size & (page_size - 1):
        raise ValueError(f"page_size: must be a power of two, got {page_size}")
    return page_size.bit_length() - 1


def convert(out_path: str | os.PathLike, header: dict[str, Any], fill: Callable[[Spool], None]) -> TraceFile:
    """Run `fill` (a converter's pass over its input, adding epochs to the spool) and write the trace to
    `out_path` with `header`; returns it, opened."""
    out = Path(out_path)
    spool = Spool(out)
    try:
        fill(spool)
        if spool.nepochs == 0:
            raise TraceFormatError(f"{header['input']}: no accesses to convert")
        return spool.finish(out, header)
    except BaseException:
        spool.discard()
        out.with_name(out.name + ".part").unlink(missing_ok=True)
        raise
