"""Converts `damo record` output, DAMON's monitoring results, into a pagetide trace (`convert_damo`).

Input: damo's JSON record format, plain or zlib-compressed (damo's default `json_compressed`): a list of
records, each with `kdamond_idx`, `context_idx`, `intervals` (`sample_us`, `aggr_us`, ...), `target_id` and
`snapshots`; each snapshot has `start_time`, `end_time` (ns) and `regions` (`start`, `end`, `nr_accesses`
{`samples`, `percent`}, `age`). Numbers may be JSON numbers or strings of digits (damo writes them raw). One
record (a monitoring target) is converted, `record` by index. Every page of a region gets the region's
`nr_accesses` samples as reads (DAMON's premise: the pages of a region are accessed alike; it does not tell
reads from writes). An epoch is `snapshots_per_epoch` consecutive snapshots (one aggregation interval each);
every page of every region belongs to the address map, accessed or not, so the footprint includes memory DAMON
saw idle. The file is parsed as a stream, one snapshot at a time (`_JsonStream`), in chunks of `chunk_size`.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pagetide.common import units
from pagetide.agent.traces.format import TraceFile, TraceFormatError
from pagetide.agent.traces.spool import DEFAULT_CHUNK, EpochAccumulator, Spool, convert, page_shift

__all__ = ["convert_damo"]

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
    shift = page_shift(page_size)
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

    def fill(spool: Spool) -> None:
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
                acc = EpochAccumulator()
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

    return convert(out_path, header, fill)
