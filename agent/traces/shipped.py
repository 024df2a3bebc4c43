"""The traces shipped with pagetide (this package's *.pgtrace files, described in its README.md) and how a
trace named in a scenario or on the command line resolves to a file: a shipped trace's bare name is that
trace, anything else a path."""

from __future__ import annotations

import os
from pathlib import Path

from pagetide.agent.traces.format import SUFFIX

__all__ = ["SHIPPED_DIR", "shipped_traces", "resolve_trace_path"]

SHIPPED_DIR = Path(__file__).parent


def shipped_traces() -> list[str]:
    """Names of the shipped traces (`sort`, `python-dict`, ...)."""
    return sorted(p.name[:-len(SUFFIX)] for p in SHIPPED_DIR.glob("*" + SUFFIX))


def resolve_trace_path(path: str | os.PathLike) -> Path:
    """A shipped trace's bare name (`sort`, `sort.pgtrace`) is always the shipped trace -- never a file of that
    name in the working directory, which would replay another trace silently; anything else is a file path
    (`./sort` names the local file)."""
    text = str(path)
    if os.sep not in text and (os.altsep is None or os.altsep not in text):
        shipped = SHIPPED_DIR / (text if text.endswith(SUFFIX) else text + SUFFIX)
        if shipped.is_file():
            return shipped
    p = Path(path)
    if p.is_file():
        return p
    raise FileNotFoundError(f"no trace file {text!r}; shipped traces: {', '.join(shipped_traces()) or 'none'}")
