"""Generated valgrind lackey logs (`--tool=lackey --trace-mem=yes`) for the converter's tests and its benchmark.

`lackey_log(lines, seed)` returns a log shaped like a real one: valgrind's `==pid==` banner and summary lines
around instruction fetches (`I  addr,size`, about 60% of records, program text near 0x0400_0000) and loads,
stores and modifies (` L`, ` S`, ` M`) on a heap near 0x04a0_0000 and a stack near 0x1f_fefff000, Zipf-like
over a few thousand pages, sizes 1-32 bytes (some straddle a page boundary), with a `--pid--` line now and then.

    .venv/bin/python tests/lackey_log.py OUT [--lines 20M] [--seed 1]

writes a log of that many records (20M records are about 300 MB) in blocks, in bounded memory.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

PID = 4242
BANNER = (f"=={PID}== Lackey, an example Valgrind tool\n=={PID}== Copyright (C) 2002-2022, and GNU GPL'd, by "
          f"Nicholas Nethercote.\n=={PID}== Using Valgrind-3.19.0 and LibVEX; rerun with -h for copyright info\n"
          f"=={PID}== Command: ./prog\n=={PID}== \n").encode()
SUMMARY = f"=={PID}== \n=={PID}== Counted 1 call to main()\n=={PID}== \n".encode()
_PREFIX = np.frombuffer(b" L  S  M I  ", dtype=np.uint8).reshape(4, 3)   # L, S, M, I
_HEXDIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_WIDTH = 12          # hex digits wide enough for every generated address (lackey prints at least 8: %08lx)


def _records(n: int, rng: np.random.Generator) -> bytes:
    """n lackey record lines."""
    kind = rng.choice(4, size=n, p=[0.25, 0.10, 0.05, 0.60])
    region = np.where(kind == 3, 0, rng.choice(3, size=n, p=[0.0, 0.6, 0.4]))   # text, heap, stack
    base = np.array([0x0400_0000, 0x04a0_0000, 0x1f_fefff000 - (1 << 22)], dtype=np.uint64)[region]
    page = np.minimum(rng.zipf(1.3, size=n), 1 << 10).astype(np.uint64) * np.uint64(7) % np.uint64(1 << 10)
    addr = base + (page << np.uint64(12)) + rng.integers(0, 4096, size=n, dtype=np.uint64)
    size = np.where(kind == 3, rng.integers(1, 16, size=n), np.array([1, 2, 4, 8, 8, 8, 16, 32])[rng.integers(0, 8, size=n)])
    ndig = np.maximum(8, (np.floor(np.log2(addr.astype(np.float64))).astype(np.int64) // 4) + 1)
    shifts = np.uint64(4) * (np.uint64(_WIDTH - 1) - np.arange(_WIDTH, dtype=np.uint64))
    hexd = _HEXDIGITS[((addr[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]
    sdig = np.stack([size // 10, size % 10], axis=1).astype(np.uint8) + ord("0")
    rows = np.concatenate([_PREFIX[kind], hexd, np.full((n, 1), ord(","), np.uint8), sdig,
                           np.full((n, 1), ord("\n"), np.uint8)], axis=1)
    keep = np.ones(rows.shape, dtype=bool)
    keep[:, 3:3 + _WIDTH] = np.arange(_WIDTH) >= (_WIDTH - ndig)[:, None]
    keep[:, 4 + _WIDTH] = size >= 10
    return rows[keep].tobytes()


def lackey_log(lines: int, seed: int = 1, *, block: int = 1 << 20) -> bytes:
    """A whole log of `lines` records (for tests; `write_log` streams a big one)."""
    return b"".join(_blocks(lines, seed, block))


def _blocks(lines: int, seed: int, block: int):
    rng = np.random.default_rng(seed)
    yield BANNER
    done = 0
    while done < lines:
        n = min(block, lines - done)
        yield _records(n, rng)
        done += n
        if done < lines:
            yield f"--{PID}-- a valgrind message between records\n".encode()
    yield SUMMARY


def write_log(path: str, lines: int, seed: int = 1) -> None:
    with open(path, "wb") as f:
        for b in _blocks(lines, seed, 1 << 20):
            f.write(b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--lines", default="20M", help="records (a count: 20M, 500k)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    from pagetide.common.units import parse_count

    write_log(args.out, parse_count(args.lines), args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
