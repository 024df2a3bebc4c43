"""Trace replay (DESIGN.md section 5): per-page access counts of real programs, and the `trace` workload.

This module owns the pagetide trace file format, the converters that write it from valgrind's lackey and from
`damo record` output, and `TraceWorkload`, which replays a converted file in the simulator.

## The file format (`.pgtrace`, version 1)

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

## Converters

Both stream their input in chunks (`chunk_size` bytes) and hold in memory only the open epoch's sparse counts
and the set of pages seen; finished epochs go to a spool file next to the output, and a second pass renumbers
their pages densely (the address order is only known at the end) into the final file.

* `convert_lackey`: the output of `valgrind --tool=lackey --trace-mem=yes --log-file=LOG PROGRAM`. Lines
  ` L addr,size` (load: a read), ` S addr,size` (store: a write), ` M addr,size` (modify: a read and a write of
  the same bytes), `I  addr,size` (instruction fetch: skipped by default, since pagetide models anonymous
  memory and program text is file-backed; `instructions="read"` counts them as reads). Valgrind's own lines
  (`==pid==`, `--pid--`, `**pid**`) and blank lines are ignored; anything else is an error naming the line.
  Addresses are hexadecimal, sizes decimal. An access that straddles a page boundary counts once on every page
  it touches. Lackey has no clock, so an epoch is `epoch_accesses` consecutive counted records (L, S, M, and I
  when counted; an M record is one record); the last epoch may be shorter.
* `convert_damo`: `damo record` output in damo's JSON record format, plain or zlib-compressed (damo's default
  `json_compressed`): a list of records, each with `kdamond_idx`, `context_idx`, `intervals` (`sample_us`,
  `aggr_us`, ...), `target_id` and `snapshots`; each snapshot has `start_time`, `end_time` (ns) and `regions`
  (`start`, `end`, `nr_accesses` {`samples`, `percent`}, `age`). Numbers may be JSON numbers or strings of
  digits (damo writes them raw). One record (a monitoring target) is converted, `record` by index. Every page of
  a region gets the region's `nr_accesses` samples as reads (DAMON's premise: the pages of a region are accessed
  alike; it does not tell reads from writes). An epoch is `snapshots_per_epoch` consecutive snapshots (one
  aggregation interval each); every page of every region belongs to the address map, accessed or not, so the
  footprint includes memory DAMON saw idle.

## The `trace` workload

`{type: trace, path: ..., loop: true, ticks_per_epoch: 1}`: tick t replays trace epoch t // ticks_per_epoch
(modulo the number of epochs when `loop`, else the last epoch holds once the trace is over). Each tick draws
`samples` accesses among that epoch's reads and writes, each read and write equally likely: page i is drawn
with probability (reads_i + writes_i) / total and a draw is a write with the share of the page's accesses that
are writes (unless `write_ratio` is given, which then applies to every draw). An epoch without accesses replays
the nearest earlier epoch that has some (or the first one that has some). Trace page i is the tenant's page i,
in address order (the real layout, so 2 MiB regions keep their real density); the footprint must be at least
the trace's npages, and the extra pages are never touched. Trace pages map one to one onto the tenant's pages:
convert with `page_size` equal to the tenant's page size. `path` is a file path, or the name of a trace shipped
in agent/traces/ (`sort`, `python-dict`, `sqlite-index`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pagetide.common import units
from pagetide.agent.workloads import _STREAM_TICK, Param, Workload, _positive_count, _register, _rng

__all__ = ["TraceFormatError", "TraceFile", "TraceWriter", "convert_lackey", "convert_damo", "TraceWorkload",
           "SHIPPED_DIR", "shipped_traces", "resolve_trace_path", "add_parser"]

MAGIC = b"PGTRACE\0"
VERSION = 1
SUFFIX = ".pgtrace"
SHIPPED_DIR = Path(__file__).with_name("traces")
DEFAULT_CHUNK = 4 << 20
_U32_MAX = 2**32 - 1


class TraceFormatError(ValueError):
    """Input that is not what its format says: the message names the file and, for text, the line."""


# ---- reading and writing the file format -------------------------------------------------------------------

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
        if pages.size and max(int(reads.max()), int(writes.max())) > _U32_MAX:
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


# ---- the spool: epochs with raw page numbers, renumbered at the end ------------------------------------------

class _Spool:
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


class _EpochAccumulator:
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


def _page_shift(page_size: int) -> int:
    if page_size <= 0 or page_size & (page_size - 1):
        raise ValueError(f"page_size: must be a power of two, got {page_size}")
    return page_size.bit_length() - 1


def _convert(out_path: str | os.PathLike, header: dict[str, Any], fill) -> TraceFile:
    out = Path(out_path)
    spool = _Spool(out)
    try:
        fill(spool)
        if spool.nepochs == 0:
            raise TraceFormatError(f"{header['input']}: no accesses to convert")
        return spool.finish(out, header)
    except BaseException:
        spool.discard()
        out.with_name(out.name + ".part").unlink(missing_ok=True)
        raise


# ---- valgrind lackey ---------------------------------------------------------------------------------------

_LACKEY_KIND = {b" L ": 0, b" S ": 1, b" M ": 2, b"I  ": 3}
_LACKEY_READ = np.array([1, 0, 1, 1], dtype=np.int64)   # I counts as a read when instructions are counted
_LACKEY_WRITE = np.array([0, 1, 1, 0], dtype=np.int64)
_CHATTER = re.compile(rb"(==\d+==|--\d+--|\*\*\d+\*\*)")
_HEX = re.compile(rb"[0-9a-fA-F]+")
_DEC = re.compile(rb"[0-9]+")


def _lackey_chunks(path: Path, chunk_size: int) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, complete lines) per chunk of the file."""
    lineno, carry = 1, b""
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk_size)
            if not data:
                break
            lines = (carry + data).split(b"\n")
            carry = lines.pop()
            yield lineno, lines
            lineno += len(lines)
    if carry:
        yield lineno, [carry]


def _parse_lackey_lines(path: Path, first_lineno: int, lines: list[bytes]) -> tuple[list[int], list[int], list[int]]:
    kinds: list[int] = []
    addrs: list[int] = []
    sizes: list[int] = []
    for i, line in enumerate(lines):
        kind = _LACKEY_KIND.get(line[:3])
        if kind is not None:
            addr, comma, size = line[3:].strip().partition(b",")
            if comma and _HEX.fullmatch(addr) and _DEC.fullmatch(size):
                kinds.append(kind)
                addrs.append(int(addr, 16))
                sizes.append(int(size))
                continue
        elif not line.strip() or _CHATTER.match(line):
            continue
        raise TraceFormatError(
            f"{path}:{first_lineno + i}: malformed lackey line {line[:80].decode('utf-8', 'replace')!r}: expected "
            f"' L addr,size', ' S addr,size', ' M addr,size', 'I  addr,size' (hex address, decimal size) or "
            f"valgrind's '==pid==' lines (run valgrind with --log-file so the program's output stays out)")
    return kinds, addrs, sizes


def convert_lackey(in_path: str | os.PathLike, out_path: str | os.PathLike, *, epoch_accesses: int = 1_000_000,
                   page_size: int = 4096, instructions: str = "skip", program: str = "",
                   chunk_size: int = DEFAULT_CHUNK) -> TraceFile:
    """Convert a lackey `--trace-mem=yes` log into a trace; returns the written file, opened.

    epoch_accesses: counted records per epoch; instructions: "skip" or "read" (I lines); program: what was
    traced, for the header; chunk_size: bytes read at a time (the result does not depend on it)."""
    src = Path(in_path)
    shift = _page_shift(page_size)
    if instructions not in ("skip", "read"):
        raise ValueError(f"instructions: must be 'skip' or 'read', got {instructions!r}")
    if not 1 <= epoch_accesses <= _U32_MAX:
        raise ValueError(f"epoch_accesses: must be within [1, 2**32 - 1], got {epoch_accesses}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: must be at least 1, got {chunk_size}")
    header = {"source": "valgrind-lackey", "program": program, "input": src.name, "page_size": page_size,
              "epoch_length": epoch_accesses, "epoch_unit": "accesses",
              "options": {"instructions": instructions}}

    def fill(spool: _Spool) -> None:
        acc = _EpochAccumulator()
        open_epoch = 0
        records = 0
        for lineno, lines in _lackey_chunks(src, chunk_size):
            kinds_l, addrs_l, sizes_l = _parse_lackey_lines(src, lineno, lines)
            kinds = np.array(kinds_l, dtype=np.int64)
            addrs = np.array(addrs_l, dtype=np.uint64)
            sizes = np.array(sizes_l, dtype=np.uint64)
            if instructions == "skip":
                keep = kinds != 3
                kinds, addrs, sizes = kinds[keep], addrs[keep], sizes[keep]
            if kinds.size == 0:
                continue
            epoch = (records + np.arange(kinds.size, dtype=np.int64)) // epoch_accesses
            records += kinds.size
            first = addrs >> np.uint64(shift)
            last = (addrs + np.maximum(sizes, 1) - np.uint64(1)) >> np.uint64(shift)
            span = (last - first + np.uint64(1)).astype(np.int64)
            rec = np.repeat(np.arange(kinds.size), span)  # one row per (record, page touched)
            offset = np.arange(rec.size) - np.repeat(np.cumsum(span) - span, span)
            pages = first[rec] + offset.astype(np.uint64)
            reads, writes, epoch = _LACKEY_READ[kinds[rec]], _LACKEY_WRITE[kinds[rec]], epoch[rec]
            bounds = np.flatnonzero(np.diff(epoch)) + 1
            for lo, hi in zip([0, *bounds], [*bounds, epoch.size]):
                e = int(epoch[lo])
                if e != open_epoch:
                    spool.add_epoch(*acc.merged())
                    acc.clear()
                    open_epoch = e
                acc.add(pages[lo:hi], reads[lo:hi], writes[lo:hi])
        if records:
            spool.add_epoch(*acc.merged())

    return _convert(out_path, header, fill)


# ---- damo record (JSON) ------------------------------------------------------------------------------------

class _JsonStream:
    """Pull parser for the outer levels of a (possibly zlib-compressed) JSON file: values are decoded one at a
    time with `json.JSONDecoder.raw_decode` from a buffer refilled by chunks, so a long list of snapshots never
    sits in memory at once. Errors name the line."""

    def __init__(self, path: Path, chunk_size: int, max_value: int = 1 << 30):
        self.path = path
        self._f = open(path, "rb")
        self._chunk = chunk_size
        self._max_value = max_value
        head = self._f.read(2)
        self._f.seek(0)
        # a zlib stream starts with CMF 0x78 and a header checksum; JSON text never does
        self._z = zlib.decompressobj() if len(head) == 2 and head[0] == 0x78 and int.from_bytes(head) % 31 == 0 \
            else None
        self._dec = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.line = 1    # line number of buf[0]
        self.eof = False

    def close(self) -> None:
        self._f.close()

    def _more(self) -> bool:
        if self.eof:
            return False
        raw = self._f.read(self._chunk)
        try:
            if self._z is not None:
                data = self._z.decompress(raw) if raw else self._z.flush()
            else:
                data = raw
        except zlib.error as e:
            raise TraceFormatError(f"{self.path}: corrupt zlib stream: {e}") from None
        if not raw:
            self.eof = True
        self.line += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos:] + data.decode("utf-8", "replace")
        self.pos = 0
        return True

    def error(self, what: str, at: int | None = None) -> TraceFormatError:
        at = self.pos if at is None else at
        return TraceFormatError(f"{self.path}:{self.line + self.buf.count(chr(10), 0, at)}: {what}")

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the input)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos:self.pos + 1]

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise self.error(f"expected {what}, found {c or 'the end of the file'!r}")
        self.pos += 1
        return c

    def value(self, what: str) -> Any:
        self.peek()
        while True:
            try:
                v, end = self._dec.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number may continue in the next chunk
                    self.pos = end
                    return v
            except json.JSONDecodeError as e:
                if self.eof:
                    raise self.error(f"invalid JSON in {what}: {e.msg}", e.pos) from None
            if len(self.buf) - self.pos > self._max_value:
                raise self.error(f"{what} is larger than {units.format_size(self._max_value)} or not valid JSON")
            self._more()

    def items(self, what: str) -> Iterator[None]:
        """Steps through a JSON array: yields once per element, positioned at it (the caller consumes it)."""
        self.expect("[", f"a list of {what}")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield
            if self.expect(",]", f"',' or ']' after one of the {what}") == "]":
                return

    def members(self, what: str) -> Iterator[str]:
        """Steps through a JSON object: yields each key, positioned at its value (the caller consumes it)."""
        self.expect("{", what)
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            key = self.value(f"a key of {what}")
            if not isinstance(key, str):
                raise self.error(f"expected a string key in {what}, got {key!r}")
            self.expect(":", f"':' after key {key!r}")
            yield key
            if self.expect(",}", f"',' or '}}' in {what}") == "}":
                return


def _number(v: Any, what: str, stream: _JsonStream) -> int:
    """A damo number: a JSON integer or a string of digits (damo writes raw numbers as strings)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise stream.error(f"{what}: expected a number, got {v!r}")
    if isinstance(v, str):
        text = v.strip().replace(",", "")
        if not re.fullmatch(r"\d+(\.\d*)?", text):
            raise stream.error(f"{what}: expected a raw number, got {v!r} (damo's human-readable units are not "
                               f"supported; damo record writes raw numbers)")
        v = float(text) if "." in text else int(text)
    if v < 0 or not math.isfinite(v):
        raise stream.error(f"{what}: must be a finite number >= 0, got {v!r}")
    return int(round(v))


def _region_samples(region: Any, max_samples: float | None, stream: _JsonStream, where: str) -> tuple[int, int, int]:
    if not isinstance(region, dict) or "start" not in region or "end" not in region:
        raise stream.error(f"{where}: expected a region with 'start', 'end' and 'nr_accesses', got {region!r:.120}")
    start = _number(region["start"], f"{where}.start", stream)
    end = _number(region["end"], f"{where}.end", stream)
    if end <= start:
        raise stream.error(f"{where}: end {end} must be greater than start {start}")
    nr = region.get("nr_accesses")
    if isinstance(nr, dict):
        if nr.get("samples") is not None:
            samples = _number(nr["samples"], f"{where}.nr_accesses.samples", stream)
        elif nr.get("percent") is not None and max_samples is not None:
            samples = int(_number(nr["percent"], f"{where}.nr_accesses.percent", stream) * max_samples / 100)
        else:
            raise stream.error(f"{where}.nr_accesses: needs 'samples' (or 'percent' with the record's intervals)")
    elif nr is not None:
        samples = _number(nr, f"{where}.nr_accesses", stream)  # older damo: a plain count
    else:
        raise stream.error(f"{where}: missing nr_accesses")
    return start, end, samples


def convert_damo(in_path: str | os.PathLike, out_path: str | os.PathLike, *, record: int = 0,
                 snapshots_per_epoch: int = 1, page_size: int = 4096, program: str = "",
                 chunk_size: int = DEFAULT_CHUNK) -> TraceFile:
    """Convert `damo record` output (JSON or zlib-compressed JSON) into a trace; returns the written file.

    record: index of the monitoring target's record to convert; snapshots_per_epoch: DAMON aggregation
    intervals merged into one epoch; program: what was recorded, for the header."""
    src = Path(in_path)
    shift = _page_shift(page_size)
    if snapshots_per_epoch < 1:
        raise ValueError(f"snapshots_per_epoch: must be at least 1, got {snapshots_per_epoch}")
    header: dict[str, Any] = {"source": "damo", "program": program, "input": src.name, "page_size": page_size,
                              "epoch_unit": "us", "options": {"record": record,
                                                              "snapshots_per_epoch": snapshots_per_epoch}}

    def snapshot_pages(snap: Any, where: str, max_samples: float | None, s: _JsonStream):
        if not isinstance(snap, dict) or not isinstance(snap.get("regions"), list):
            raise s.error(f"{where}: expected a snapshot with a 'regions' list")
        spans = [_region_samples(r, max_samples, s, f"{where}.regions[{j}]") for j, r in enumerate(snap["regions"])]
        if not spans:
            return np.empty(0, np.uint64), np.empty(0, np.int64), 0
        start, end, samples = (np.array(x, dtype=np.uint64) for x in zip(*spans))
        first = start >> np.uint64(shift)
        span = (((end - np.uint64(1)) >> np.uint64(shift)) - first + np.uint64(1)).astype(np.int64)
        rows = np.repeat(np.arange(span.size), span)
        pages = first[rows] + (np.arange(rows.size) - np.repeat(np.cumsum(span) - span, span)).astype(np.uint64)
        duration_us = None
        if "start_time" in snap and "end_time" in snap:
            t0 = _number(snap["start_time"], f"{where}.start_time", s)
            t1 = _number(snap["end_time"], f"{where}.end_time", s)
            duration_us = (t1 - t0) / 1000 if t1 > t0 else None
        return pages, samples.astype(np.int64)[rows], duration_us

    def fill(spool: _Spool) -> None:
        s = _JsonStream(src, chunk_size)
        try:
            if s.peek() == "{":  # a wrapper: {"damo_record_ver": 1, "damo_records": {"damon_records": {...}}}
                raise s.error("damo's versioned record wrapper is not supported; convert a list of records "
                              "(damo record --output_type json or json_compressed)")
            found = False
            for i, _ in enumerate(s.items("damo records")):
                if i != record:
                    s.value(f"record {i}")
                    continue
                found = True
                max_samples = None
                acc = _EpochAccumulator()
                in_epoch, epoch_us = 0, 0.0
                for key in s.members(f"record {i}"):
                    if key == "intervals":
                        iv = s.value("intervals")
                        if isinstance(iv, dict) and "sample_us" in iv and "aggr_us" in iv:
                            sample_us = _number(iv["sample_us"], "intervals.sample_us", s)
                            aggr_us = _number(iv["aggr_us"], "intervals.aggr_us", s)
                            max_samples = aggr_us / sample_us if sample_us else None
                            header["options"]["intervals"] = {"sample_us": sample_us, "aggr_us": aggr_us}
                    elif key == "snapshots":
                        for j, _ in enumerate(s.items("snapshots")):
                            where = f"records[{i}].snapshots[{j}]"
                            pages, counts, dur = snapshot_pages(s.value(where), where, max_samples, s)
                            spool.note_pages(pages)  # idle regions are part of the footprint too
                            acc.add(pages, counts, np.zeros_like(counts))
                            epoch_us += dur or 0.0
                            in_epoch += 1
                            if in_epoch == snapshots_per_epoch:
                                spool.add_epoch(*acc.merged())
                                acc.clear()
                                in_epoch = 0
                        if in_epoch:
                            spool.add_epoch(*acc.merged())
                    else:
                        header.setdefault("damon", {})[key] = s.value(key)
                if spool.nepochs:
                    aggr = header["options"].get("intervals", {}).get("aggr_us")
                    header["epoch_length"] = (aggr * snapshots_per_epoch if aggr
                                              else round(epoch_us / spool.nepochs))
            if not found:
                raise TraceFormatError(f"{src}: has no record {record} (records are numbered from 0)")
            if s.peek():
                raise s.error("unexpected data after the list of records")
        finally:
            s.close()

    return _convert(out_path, header, fill)


# ---- the workload ------------------------------------------------------------------------------------------

def shipped_traces() -> list[str]:
    """Names of the traces shipped in agent/traces/."""
    return sorted(p.name[:-len(SUFFIX)] for p in SHIPPED_DIR.glob("*" + SUFFIX))


def resolve_trace_path(path: str | os.PathLike) -> Path:
    """A trace file path as given, else the shipped trace of that name."""
    p = Path(path)
    if p.is_file():
        return p
    shipped = SHIPPED_DIR / (p.name if p.name.endswith(SUFFIX) else p.name + SUFFIX)
    if os.sep not in str(path) and shipped.is_file():
        return shipped
    raise FileNotFoundError(f"no trace file {str(path)!r}; shipped traces: {', '.join(shipped_traces()) or 'none'}")


def _path(v: Any, name: str) -> str:
    if not isinstance(v, (str, os.PathLike)) or not str(v):
        raise ValueError(f"{name}: expected the path of a converted trace or a shipped trace's name, got {v!r}")
    return str(v)


def _bool(v: Any, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name}: expected true or false, got {v!r}")
    return bool(v)


@dataclass(frozen=True)
class _Draw:
    """One epoch ready to sample: each item is a (page, read or write) with an integer weight."""
    pages: np.ndarray      # int64 page of each item
    is_write: np.ndarray   # bool
    cum: np.ndarray        # int64 cumulative weights; cum[-1] is the total


@_register
class TraceWorkload(Workload):
    """Replays a converted trace of a real program (module docstring: the `trace` workload)."""

    name = "trace"
    MOVES_EVERY_TICK = True  # the distribution changes at every trace epoch, which may be every tick
    PARAMS = {
        "path": Param(_path, None, "converted trace file, or the name of a shipped trace"),
        "loop": Param(_bool, True, "start over at the end of the trace (else the last epoch holds)"),
        "ticks_per_epoch": Param(_positive_count, 1, "ticks each trace epoch lasts"),
    }

    def _setup(self, path: str | None, loop: bool, ticks_per_epoch: int) -> None:
        if path is None:
            raise self._fail("path", "missing: a trace workload replays a converted trace file")
        try:
            self.trace = TraceFile(resolve_trace_path(path))
        except (OSError, TraceFormatError) as e:
            raise self._fail("path", str(e)) from None
        if self.trace.npages > self.npages:
            raise self._fail("path", f"the trace touches {self.trace.npages} pages "
                                     f"({units.format_size(self.trace.npages * self.trace.page_size)}) but the "
                                     f"footprint has only {self.npages}")
        totals = self.trace.header.get("reads", 0) + self.trace.header.get("writes", 0)
        if totals <= 0:
            raise self._fail("path", f"{self.trace.path}: the trace has no accesses")
        self._own_write_mix = self._spec_write_ratio is None
        if self._own_write_mix:
            self.write_ratio = self.trace.header.get("writes", 0) / totals
        self._nonempty = self._nonempty_epochs()
        self._cache: dict[int, tuple[Epoch, _Draw]] = {}

    def _parse_spec(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        self._spec_write_ratio = spec.get("write_ratio")
        return super()._parse_spec(spec)

    def _nonempty_epochs(self) -> np.ndarray:
        """For each epoch, the epoch replayed in its place: itself if it has accesses, else the nearest earlier
        one that has, else the first one that has."""
        has = np.array([e.pages.size > 0 for e in self.trace.epochs()])
        last = np.maximum.accumulate(np.where(has, np.arange(has.size), -1))
        return np.where(last >= 0, last, int(np.argmax(has)))

    def trace_epoch(self, tick: int) -> int:
        """The trace epoch replayed at tick `tick`."""
        e = self._check_tick(tick) // self._params["ticks_per_epoch"]
        n = self.trace.nepochs
        return int(self._nonempty[e % n if self._params["loop"] else min(e, n - 1)])

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

    def sample(self, tick: int) -> tuple[np.ndarray, np.ndarray]:
        tick = self._check_tick(tick)
        rng = _rng(self.seed, _STREAM_TICK, tick)
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


# ---- command line ------------------------------------------------------------------------------------------

def _cmd_convert(args: argparse.Namespace) -> int:
    try:
        if args.format == "lackey":
            t = convert_lackey(args.input, args.output, epoch_accesses=units.parse_count(args.epoch_accesses),
                               page_size=units.parse_size(args.page_size), instructions=args.instructions,
                               program=args.program, chunk_size=units.parse_size(args.chunk_size))
        else:
            t = convert_damo(args.input, args.output, record=args.record,
                             snapshots_per_epoch=args.snapshots_per_epoch, page_size=units.parse_size(args.page_size),
                             program=args.program, chunk_size=units.parse_size(args.chunk_size))
    except (OSError, ValueError) as e:
        print(f"pagetide: trace convert: {e}", file=sys.stderr)
        return 2
    print(_summary(t))
    return 0


def _summary(t: TraceFile) -> str:
    h = t.header
    return (f"{t.path}: {h['source']} trace of {h.get('program') or '?'}: {t.npages} pages "
            f"({units.format_size(t.npages * t.page_size)}), {t.nepochs} epochs of {h.get('epoch_length')} "
            f"{h.get('epoch_unit')}, {h.get('reads', 0)} reads, {h.get('writes', 0)} writes, "
            f"{units.format_size(t.path.stat().st_size)} on disk")


def _cmd_info(args: argparse.Namespace) -> int:
    try:
        print(_summary(TraceFile(resolve_trace_path(args.trace))))
    except (OSError, ValueError) as e:
        print(f"pagetide: trace info: {e}", file=sys.stderr)
        return 2
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`trace convert {lackey,damo} INPUT OUTPUT [options]` and `trace info TRACE`."""
    _add_subcommands(sub.add_parser("trace", help="convert real programs' memory traces for the trace workload"))


def _add_subcommands(p: argparse.ArgumentParser) -> None:
    tsub = p.add_subparsers(dest="trace_command", required=True)
    c = tsub.add_parser("convert", help="convert a lackey log or a damo record into a .pgtrace file")
    c.add_argument("format", choices=("lackey", "damo"))
    c.add_argument("input")
    c.add_argument("output")
    c.add_argument("--program", default="", help="what was traced (stored in the header)")
    c.add_argument("--page-size", default="4KiB")
    c.add_argument("--chunk-size", default="4MiB", help="bytes of input read at a time")
    c.add_argument("--epoch-accesses", default="1M", help="lackey: memory accesses per epoch")
    c.add_argument("--instructions", choices=("skip", "read"), default="skip",
                   help="lackey: skip instruction fetches or count them as reads")
    c.add_argument("--record", type=int, default=0, help="damo: index of the record (monitoring target)")
    c.add_argument("--snapshots-per-epoch", type=int, default=1, help="damo: snapshots merged into one epoch")
    c.set_defaults(func=_cmd_convert)
    i = tsub.add_parser("info", help="print a trace's header summary")
    i.add_argument("trace", help="a .pgtrace file or a shipped trace's name")
    i.set_defaults(func=_cmd_info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pagetide.agent.traces")
    _add_subcommands(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
