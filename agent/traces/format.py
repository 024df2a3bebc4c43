"""The pagetide trace file format (`.pgtrace`, version 1): `TraceWriter` writes one, `TraceFile` reads one.

A trace is a sequence of *epochs*; each epoch holds, for every page touched in it, how many reads and writes the
page received. Pages are numbered densely 0..npages-1 in ascending address order; the file keeps the address map.
All integers are little-endian.

    offset  size        field
    0       8           magic b"PGTRACE\\0"
    8       4           u32 version = 1
    12      4           u32 H, the header's length in bytes
    16      H           header: a UTF-8 JSON object (keys below)
    ...     8 + A       u64 A, then A bytes: zlib(u64[npages]), the start address of each page, ascending
    ...     8 (E + 1)   u64[E + 1]: the file offset of each epoch block, then the file's length
    ...                 E epoch blocks: u32 nnz, u32 C, then C bytes: zlib(u32 page_delta[nnz] ||
                        u32 reads[nnz] || u32 writes[nnz]); pages ascending, page_delta[0] is the first page
                        and page_delta[i] = page[i] - page[i-1]; only pages with reads + writes > 0 appear

Header keys: `format` ("pagetide-trace"), `version` (1), `source` ("valgrind-lackey" or "damo"), `program` (free
text: what was traced), `page_size` (bytes), `epoch_length` and `epoch_unit` (how long one epoch is:
"accesses" for lackey, which has no clock; "us" for damo), `npages`, `nepochs`, `reads`, `writes` (totals),
and `options` (the converter's settings). Readers reject an unknown version and ignore unknown keys.

A reader holds the header, the address map (8 bytes per page) and the epoch index in memory and reads one epoch
block at a time, so replaying a long trace needs memory for the footprint and one epoch, not the whole file.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["MAGIC", "VERSION", "SUFFIX", "COUNT_MAX", "TraceFormatError", "Epoch", "TraceWriter", "TraceFile"]

MAGIC = b"PGTRACE\0"
VERSION = 1
SUFFIX = ".pgtrace"
COUNT_MAX = 2**32 - 1   # an epoch's reads or writes of one page are stored as u32


class TraceFormatError(ValueError):
    """Input that is not what its format says: the message names the file and, for text, the line."""


@dataclass(frozen=True)
class Epoch:
    """One epoch's sparse counts: distinct pages (ascending int64) and their reads and writes (int64)."""
    pages: np.ndarray
    reads: np.ndarray
    writes: np.ndarray


class TraceWriter:
    """Writes a trace whose page count, epoch count and address map are known up front; epochs in order."""

    def __init__(self, path: str | os.PathLike, header: Mapping[str, Any], addresses: np.ndarray, nepochs: int):
        self.path = Path(path)
        self.header = {"format": "pagetide-trace", "version": VERSION, **header,
                       "npages": int(addresses.size), "nepochs": int(nepochs)}
        self._f: BinaryIO = open(self.path, "wb")
        head = json.dumps(self.header, sort_keys=True).encode()
        self._f.write(MAGIC + struct.pack("<II", VERSION, len(head)) + head)
        amap = zlib.compress(np.ascontiguousarray(addresses, dtype="<u8").tobytes())
        self._f.write(struct.pack("<Q", len(amap)) + amap)
        self._index_at = self._f.tell()
        self._offsets: list[int] = []
        self._f.write(bytes(8 * (nepochs + 1)))
        self.npages = int(addresses.size)
        self.nepochs = int(nepochs)

    def add_epoch(self, pages: np.ndarray, reads: np.ndarray, writes: np.ndarray) -> None:
        if len(self._offsets) >= self.nepochs:
            raise ValueError(f"{self.path}: more than the {self.nepochs} epochs announced")
        keep = (reads + writes) > 0
        pages, reads, writes = pages[keep], reads[keep], writes[keep]
        if pages.size and (pages[0] < 0 or pages[-1] >= self.npages or np.any(np.diff(pages) <= 0)):
            raise ValueError(f"{self.path}: epoch pages must be distinct, ascending and < npages")
        if pages.size and max(int(reads.max()), int(writes.max())) > COUNT_MAX:
            raise ValueError(f"{self.path}: an epoch count exceeds 2**32 - 1; use shorter epochs")
        delta = np.diff(pages, prepend=0)
        body = np.concatenate([delta, reads, writes]).astype("<u4").tobytes()
        packed = zlib.compress(body)
        self._offsets.append(self._f.tell())
        self._f.write(struct.pack("<II", pages.size, len(packed)) + packed)

    def close(self) -> None:
        if len(self._offsets) != self.nepochs:
            self._f.close()
            raise ValueError(f"{self.path}: {len(self._offsets)} epochs written, {self.nepochs} announced")
        end = self._f.tell()
        self._f.seek(self._index_at)
        self._f.write(np.array([*self._offsets, end], dtype="<u8").tobytes())
        self._f.close()


class TraceFile:
    """A converted trace: header, address map and epoch index in memory; epochs read from disk on demand."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            fixed = f.read(16)
            if len(fixed) < 16 or fixed[:8] != MAGIC:
                raise TraceFormatError(f"{self.path}: not a pagetide trace (bad magic)")
            version, hlen = struct.unpack("<II", fixed[8:])
            if version != VERSION:
                raise TraceFormatError(f"{self.path}: trace format version {version}; this pagetide reads "
                                       f"version {VERSION}")
            try:
                self.header: dict[str, Any] = json.loads(self._read(f, hlen, "header"))
                self.npages = int(self.header["npages"])
                self.nepochs = int(self.header["nepochs"])
                self.page_size = int(self.header["page_size"])
            except (ValueError, KeyError, TypeError) as e:
                raise TraceFormatError(f"{self.path}: bad header: {e}") from None
            (alen,) = struct.unpack("<Q", self._read(f, 8, "address map length"))
            try:
                self.addresses = np.frombuffer(zlib.decompress(self._read(f, alen, "address map")), dtype="<u8")
            except zlib.error as e:
                raise TraceFormatError(f"{self.path}: corrupt address map: {e}") from None
            if self.addresses.size != self.npages:
                raise TraceFormatError(f"{self.path}: address map has {self.addresses.size} pages, header "
                                       f"says {self.npages}")
            self._offsets = np.frombuffer(self._read(f, 8 * (self.nepochs + 1), "epoch index"), dtype="<u8")

    def _read(self, f: BinaryIO, n: int, what: str) -> bytes:
        data = f.read(n)
        if len(data) != n:
            raise TraceFormatError(f"{self.path}: truncated {what}")
        return data

    def epoch(self, i: int) -> Epoch:
        """Counts of epoch i (0-based)."""
        if not 0 <= i < self.nepochs:
            raise IndexError(f"{self.path}: epoch {i} out of range (0..{self.nepochs - 1})")
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        with open(self.path, "rb") as f:
            f.seek(start)
            block = self._read(f, end - start, f"epoch {i}")
        nnz, clen = struct.unpack("<II", block[:8])
        try:
            body = np.frombuffer(zlib.decompress(block[8:8 + clen]), dtype="<u4").astype(np.int64)
        except zlib.error as e:
            raise TraceFormatError(f"{self.path}: corrupt epoch {i}: {e}") from None
        if body.size != 3 * nnz:
            raise TraceFormatError(f"{self.path}: epoch {i} holds {body.size} numbers, expected {3 * nnz}")
        pages = np.cumsum(body[:nnz])
        if nnz and pages[-1] >= self.npages:
            raise TraceFormatError(f"{self.path}: epoch {i} names page {pages[-1]} >= npages {self.npages}")
        return Epoch(pages, body[nnz:2 * nnz], body[2 * nnz:])

    def epochs(self) -> Iterator[Epoch]:
        for i in range(self.nepochs):
            yield self.epoch(i)

    def dense_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(reads, writes) as [nepochs, npages] int64 arrays: for tests and small traces only."""
        reads = np.zeros((self.nepochs, self.npages), dtype=np.int64)
        writes = np.zeros_like(reads)
        for i, e in enumerate(self.epochs()):
            reads[i, e.pages] = e.reads
            writes[i, e.pages] = e.writes
        return reads, writes
