"""Converts the memory trace of valgrind's lackey tool into a pagetide trace (`convert_lackey`).

Input: the output of `valgrind --tool=lackey --trace-mem=yes --log-file=LOG PROGRAM`. Lines ` L addr,size`
(load: a read), ` S addr,size` (store: a write), ` M addr,size` (modify: a read and a write of the same bytes),
`I  addr,size` (instruction fetch: skipped by default, since pagetide models anonymous memory and program text
is file-backed; `instructions="read"` counts them as reads). Valgrind's own lines (`==pid==`, `--pid--`,
`**pid**`) and blank lines are ignored; anything else is an error naming the line. Addresses are hexadecimal,
sizes decimal. An access that straddles a page boundary counts once on every page it touches. Lackey has no
clock, so an epoch is `epoch_accesses` consecutive counted records (L, S, M, and I when counted; an M record is
one record); the last epoch may be shorter. An address must fit 64 bits (and so must the access's last byte),
a size 2**32 - 1 bytes.

The log is read in blocks of `chunk_size` bytes, each parsed at once with numpy (`_parse_block`: lines found by
their newlines, prefixes, digits and commas read as machine words, not a Python step per line), and each
epoch's touches counted with one sort of (page, read/write) keys; `parse_line` is the reference parser of one
line, which the block parser equals (tests/test_traces.py) and uses for the few lines off the common layout.
Finished epochs go to the spool (`spool`).
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

_PREFIXES = (b" L ", b" S ", b" M ", b"I  ")    # record kinds 0-3, in this order
_INSTRUCTION = 3
# a touch's read and write bits (read << 1 | write) per kind; I counts as a read when instructions are counted
_RW = np.array([0b10, 0b01, 0b11, 0b10], dtype=np.uint64)
_CHATTER = re.compile(rb"(==\d+==|--\d+--|\*\*\d+\*\*)")
_HEX = re.compile(rb"[0-9a-fA-F]+")
_DEC = re.compile(rb"[0-9]+")
SIZE_MAX = 2**32 - 1        # bytes of one access; lackey's are at most a few hundred

# The vectorised parser (_parse_block) reads a block's lines through these.
_PAD = 32                   # bytes before and after a block: the 8-byte reads of its first and last lines stay inside
_CODES = np.array([int.from_bytes(p, "little") for p in _PREFIXES], dtype=np.uint32)   # a prefix as a u32's low bytes
_CODE_ORDER = np.argsort(_CODES)
_SORTED_CODES = _CODES[_CODE_ORDER]
# each byte's hex digit value, 0xFF for a byte that is no hex digit
_DIGIT = bytes(int(chr(b), 16) if chr(b) in "0123456789abcdefABCDEF" else 0xFF for b in range(256))
_KEEP = np.array([(2**64 - 1) << (8 * n) & (2**64 - 1) for n in range(9)], dtype=np.uint64)  # zero n low bytes
_U64 = np.uint64
_NIBBLES = _U64(0xF0F0F0F0F0F0F0F0)     # a digit-value byte with any of these bits is no digit (0xFF)
_TOP_BITS = _U64(0x8080808080808080)


class _Malformed(ValueError):
    """A line that is not a lackey record, valgrind chatter or blank (the caller names the file and line)."""


def parse_line(line: bytes) -> tuple[int, int, int] | None:
    """The reference parser of one line (without its newline): (kind 0-3 as in _PREFIXES, address, size) for a
    record, None for valgrind's own lines and blank lines; anything else raises _Malformed. `_parse_block` gives
    the same results for a whole block of lines at once and uses this for lines off the common layout."""
    kind = _PREFIXES.index(line[:3]) if line[:3] in _PREFIXES else None
    if kind is not None:
        addr, comma, size = line[3:].strip().partition(b",")
        if comma and _HEX.fullmatch(addr) and _DEC.fullmatch(size):
            return kind, int(addr, 16), int(size)
    elif not line.strip() or _CHATTER.match(line):
        return None
    raise _Malformed(line)


def _error(path: Path, lineno: int, line: bytes, why: str = "") -> TraceFormatError:
    return TraceFormatError(
        f"{path}:{lineno}: malformed lackey line {line[:80].decode('utf-8', 'replace')!r}: "
        + (why or "expected ' L addr,size', ' S addr,size', ' M addr,size', 'I  addr,size' (hex address, "
                  "decimal size) or valgrind's '==pid==' lines (run valgrind with --log-file so the program's "
                  "output stays out)"))


def _blocks(path: Path, chunk_size: int) -> Iterator[tuple[int, bytes]]:
    """(number of the first line, whole lines each ending in a newline) per chunk of the file; a last line
    without a newline gets one."""
    lineno, carry = 1, b""
    with open(path, "rb") as f:
        while data := f.read(chunk_size):
            data = carry + data
            cut = data.rfind(b"\n") + 1
            block, carry = data[:cut], data[cut:]
            if block:
                yield lineno, block
                lineno += block.count(b"\n")
    if carry:
        yield lineno, carry + b"\n"


def _words(data: np.ndarray, at: np.ndarray, dtype: str) -> np.ndarray:
    """The little-endian words of `dtype` starting at each byte offset `at` of `data` (unaligned reads)."""
    size = np.dtype(dtype).itemsize
    return np.ndarray((data.size - size + 1,), dtype=dtype, buffer=data, strides=(1,))[at]


def _hex8(x: np.ndarray) -> np.ndarray:
    """8 hex digit values, one per byte, most significant first (lowest byte) -> their 32-bit number."""
    x = ((x & _U64(0x000F000F000F000F)) << _U64(4)) | ((x & _U64(0x0F000F000F000F00)) >> _U64(8))
    x = ((x & _U64(0x000000FF000000FF)) << _U64(8)) | ((x & _U64(0x00FF000000FF0000)) >> _U64(16))
    return ((x & _U64(0xFFFF)) << _U64(16)) | ((x >> _U64(32)) & _U64(0xFFFF))


def _dec8(x: np.ndarray) -> np.ndarray:
    """8 decimal digit values, one per byte, most significant first (lowest byte) -> their number."""
    x = (x & _U64(0x00FF00FF00FF00FF)) * _U64(10) + ((x >> _U64(8)) & _U64(0x00FF00FF00FF00FF))
    x = (x & _U64(0x0000FFFF0000FFFF)) * _U64(100) + ((x >> _U64(16)) & _U64(0x0000FFFF0000FFFF))
    return (x & _U64(0xFFFFFFFF)) * _U64(10000) + (x >> _U64(32))


def _parse_block(path: Path, first_lineno: int, block: bytes,
                 instructions: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kinds, addresses, sizes) of the records of a block of whole lines (without I records unless
    `instructions`; a malformed I line is an error all the same), vectorised over its lines.

    A line in the common layout -- a record prefix, 1-16 hex digits, a comma, 1-8 decimal digits, the newline --
    is read as machine words: its prefix as one 4-byte word; its digits, from the block translated to digit
    values, as 8-byte words whose bytes combine into numbers a lane at a time; the size's word also says where
    the comma is (the last byte before the newline that is no digit). Every other line (valgrind's own, blank
    ones, records with spaces or a '\\r', malformed ones) goes through `parse_line`, one at a time: they are
    few."""
    padded = b"".join((bytes(_PAD), block, bytes(_PAD)))
    raw = np.frombuffer(padded, dtype=np.uint8)
    digit = np.frombuffer(padded.translate(_DIGIT), dtype=np.uint8)
    end = np.flatnonzero(raw == ord("\n"))
    start = np.concatenate([[_PAD], end[:-1] + 1])
    code = _words(raw, start, "<u4") & np.uint32(0xFFFFFF)      # no prefix holds a newline: short lines miss
    slot = np.minimum(np.searchsorted(_SORTED_CODES, code), len(_CODES) - 1)
    kind = np.where(_SORTED_CODES[slot] == code, _CODE_ORDER[slot], -1)
    # the 8 bytes before the newline: the size's digits are those after the last byte that is no digit
    size = _words(digit, end - 8, "<u8")
    nondigit = size & _NIBBLES
    for shift in (8, 16, 32):
        nondigit |= nondigit >> _U64(shift)
    slen = 8 - np.bitwise_count(nondigit & _TOP_BITS).astype(np.int64)
    comma = end - 1 - slen
    alen = comma - start - 3
    size &= _KEEP[8 - slen]
    # the address's last 8 digits and the 8 before them, each word cleared of the bytes before the field
    lo = _words(digit, comma - 8, "<u8") & _KEEP[np.clip(8 - alen, 0, 8)]
    hi = _words(digit, comma - 16, "<u8") & _KEEP[np.clip(16 - alen, 0, 8)]
    fast = ((kind >= 0) & (raw[comma] == ord(",")) & (slen >= 1) & (alen >= 1) & (alen <= 16)
            & (((lo | hi) & _NIBBLES) == 0)                                       # the address all hex digits
            & (((size + _U64(0x0606060606060606)) & _NIBBLES) == 0))              # the size's all below 10
    addrs = (_hex8(hi) << _U64(32)) | _hex8(lo)
    sizes = _dec8(size)
    record = fast.copy()
    for i in np.flatnonzero(~fast):
        line = padded[start[i]:end[i]]
        try:
            parsed = parse_line(line)
        except _Malformed:
            raise _error(path, first_lineno + int(i), line) from None
        if parsed is not None:
            k, a, z = parsed
            if a > 2**64 - 1:
                raise _error(path, first_lineno + int(i), line, "the address does not fit 64 bits")
            kind[i], addrs[i], sizes[i], record[i] = k, a, min(z, SIZE_MAX + 1), True
    # an access's last byte must fit 64 bits; a size beyond SIZE_MAX is no memory access lackey makes
    bad = record & ((sizes > SIZE_MAX) | (addrs + np.maximum(sizes, 1) - np.uint64(1) < addrs))
    if bad.any():
        i = int(np.argmax(bad))
        raise _error(path, first_lineno + i, padded[start[i]:end[i]],
                     f"an access of more than {SIZE_MAX} bytes, or one past the end of the 64-bit address space")
    if not instructions:
        record &= kind != _INSTRUCTION
    return kind[record], addrs[record], sizes[record]


def _touches(kinds: np.ndarray, addrs: np.ndarray, sizes: np.ndarray, shift: int) -> tuple[np.ndarray, ...]:
    """(record of each touch, page, read/write bits): one touch per (record, page it touches)."""
    first = addrs >> np.uint64(shift)
    last = (addrs + np.maximum(sizes, 1) - np.uint64(1)) >> np.uint64(shift)
    span = (last - first + np.uint64(1)).astype(np.int64)
    rec = np.repeat(np.arange(kinds.size), span)
    offset = np.arange(rec.size) - np.repeat(np.cumsum(span) - span, span)
    return rec, first[rec] + offset.astype(np.uint64), _RW[kinds[rec]]


def _counts(pages: np.ndarray, rw: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Touches -> (distinct pages ascending, reads, writes): one sort of page << 2 | rw keys, then runs."""
    if shift < 2:       # pages of 1 or 2 bytes: page << 2 could overflow; the accumulator sums the touches
        return pages, (rw >> np.uint64(1)).astype(np.int64), (rw & np.uint64(1)).astype(np.int64)
    keys = np.sort((pages << np.uint64(2)) | rw)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    count = np.diff(np.append(starts, keys.size))
    key = keys[starts]
    page = key >> np.uint64(2)
    first = np.flatnonzero(np.concatenate([[True], page[1:] != page[:-1]]))
    reads = np.add.reduceat(count * ((key >> np.uint64(1)) & np.uint64(1)).astype(np.int64), first)
    writes = np.add.reduceat(count * (key & np.uint64(1)).astype(np.int64), first)
    return page[first], reads, writes


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
        for lineno, block in _blocks(src, chunk_size):
            kinds, addrs, sizes = _parse_block(src, lineno, block, instructions == "read")
            if kinds.size == 0:
                continue
            epoch = (records + np.arange(kinds.size, dtype=np.int64)) // epoch_accesses
            records += kinds.size
            rec, pages, rw = _touches(kinds, addrs, sizes, shift)
            epoch = epoch[rec]
            bounds = np.flatnonzero(np.diff(epoch)) + 1
            for lo, hi in zip([0, *bounds], [*bounds, epoch.size]):
                e = int(epoch[lo])
                if e != open_epoch:
                    spool.add_epoch(*acc.merged())
                    acc.clear()
                    open_epoch = e
                acc.add(*_counts(pages[lo:hi], rw[lo:hi], shift))
        if records:
            spool.add_epoch(*acc.merged())

    return convert(out_path, header, fill)
