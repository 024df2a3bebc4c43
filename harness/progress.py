"""Progress of a long run, on stderr: a bar redrawn in place on a terminal, plain lines in a log.

On a terminal each step redraws one line with a carriage return. Redirected to a file or a pipe, a carriage
return would pile every frame onto one line of the log, so there `Progress` writes one whole line every
`every` steps (by default a run of any length writes about `LOG_LINES` lines) and the last step, and never a
'\\r'.
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["LOG_LINES", "Progress"]

LOG_LINES = 15      # lines a log gets for a whole run, by default
WIDTH = 30          # the bar's characters on a terminal


class Progress:
    """`progress(i, extra)` after step i of `total` (1-based); `end()` before other output if the run stops early.

    label: what the plain lines start with (`pagetide sim`); what: the steps' unit (`rounds`); stream: default
    sys.stderr; every: steps between plain lines (default: total / LOG_LINES, rounded up)."""

    def __init__(self, total: int, *, label: str, what: str = "rounds", stream: TextIO | None = None,
                 every: int | None = None):
        if total < 1:
            raise ValueError(f"total: must be at least 1, got {total}")
        if every is not None and every < 1:
            raise ValueError(f"every: must be at least 1, got {every}")
        self.total, self.label, self.what = total, label, what
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = _is_terminal(self.stream)
        self.every = every or -(-total // LOG_LINES)
        self._drawn = 0     # characters of the frame on the terminal's current line; 0: none

    def __call__(self, i: int, extra: str = "") -> None:
        if self.terminal:
            done = WIDTH * min(i, self.total) // self.total
            frame = f"[{'#' * done}{'.' * (WIDTH - done)}] {i}/{self.total} {self.what} {extra}".rstrip()
            self.stream.write("\r" + frame.ljust(self._drawn))
            self._drawn = len(frame)
            if i >= self.total:
                self.end()
        elif i % self.every == 0 or i == self.total:
            self.stream.write(f"{self.label}: {i}/{self.total} {self.what} ({100 * i // self.total}%)"
                              f"{', ' + extra if extra else ''}\n")
        self.stream.flush()

    def end(self) -> None:
        """Finish the terminal's line of a drawn frame, so what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):     # no isatty, or a closed stream
        return False
