"""The traces shipped with pagetide (this package's *.pgtrace files, described in its README.md) and how a
trace named anywhere -- a scenario's or fleet file's `{type: trace, path: ...}`, `pagetide trace info`,
`pagetide bench --workloads` -- resolves to a file: a shipped trace's bare name is that trace, anything else a
path (relative to the working directory). Everything that names a trace goes through `resolve_trace_path` or
`open_trace`, so a user's trace works wherever a shipped one does."""

from __future__ import annotations

import os
from pathlib import Path

from pagetide.agent.traces.format import SUFFIX, TraceFile

__all__ = ["SHIPPED_DIR", "shipped_traces", "resolve_trace_path", "open_trace"]

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


def open_trace(path: str | os.PathLike) -> TraceFile:
    """The trace a name or path resolves to, opened (its header, address map and epoch index read and checked):
    FileNotFoundError for a missing file, TraceFormatError for one that is not a trace, each naming the file."""
    return TraceFile(resolve_trace_path(path))
