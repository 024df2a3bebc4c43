"""The traces shipped with pagetide (this package's *.pgtrace files, described in its README.md) and how a
trace named in a scenario or on the command line resolves to a file: a path as given, else a shipped trace."""

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
    """A trace file path as given, else the shipped trace of that name."""
    p = Path(path)
    if p.is_file():
        return p
    shipped = SHIPPED_DIR / (p.name if p.name.endswith(SUFFIX) else p.name + SUFFIX)
    if os.sep not in str(path) and shipped.is_file():
        return shipped
    raise FileNotFoundError(f"no trace file {str(path)!r}; shipped traces: {', '.join(shipped_traces()) or 'none'}")
