"""Converts the memory trace of valgrind's lackey tool into a pagetide trace (`convert_lackey`).

Input: the output of `valgrind --tool=lackey --trace-mem=yes --log-file=LOG PROGRAM`. Lines ` L addr,size`
(load: a read), ` S addr,size` (store: a write), ` M addr,size` (modify: a read and a write of the same bytes),
`I  addr,size` (instruction fetch: skipped by default, since pagetide models anonymous memory and program text
is file-backed; `instructions="read"` counts them as reads). Valgrind's own lines (`==pid==`, `--pid--`,
`**pid**`) and blank lines are ignored; anything else is an error naming the line. Addresses are hexadecimal,
sizes decimal. An access that straddles a page boundary counts once on every page it touches. Lackey has no
clock, so an epoch is `epoch_accesses` consecutive counted records (L, S, M, and I when counted; an M record is
one record); the last epoch may be shorter. The log is read in chunks of `chunk_size` bytes (`spool`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pagetide.agent.traces.format import COUNT_MAX, TraceFile, TraceFormatError
from pagetide.agent.traces.spool import DEFAULT_CHUNK, EpochAccumulator, Spool, convert, page_shift

__all__ = ["convert_lackey"]

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
    shift = page_shift(page_size)
    if instructions not in ("skip", "read"):
        raise ValueError(f"instructions: must be 'skip' or 'read', got {instructions!r}")
    if not 1 <= epoch_accesses <= COUNT_MAX:
        raise ValueError(f"epoch_accesses: must be within [1, 2**32 - 1], got {epoch_accesses}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: must be at least 1, got {chunk_size}")
    header = {"source": "valgrind-lackey", "program": program, "input": src.name, "page_size": page_size,
              "epoch_length": epoch_accesses, "epoch_unit": "accesses",
              "options": {"instructions": instructions}}

    def fill(spool: Spool) -> None:
        acc = EpochAccumulator()
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

    return convert(out_path, header, fill)
