"""Tenants of a real host: processes by pid, name or cgroup, and the memory ranges to track in each.

A QEMU/KVM guest's RAM is its largest private writable mapping (anonymous or a memfd/hugetlbfs
memory-backend) in /proc/PID/maps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_MAPS = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$")


@dataclass(frozen=True)
class Range:
    start: int
    end: int
    perms: str
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start


def read_maps(pid: int, proc: Path = PROC) -> list[Range]:
    out = []
    for line in (proc / str(pid) / "maps").read_text().splitlines():
        m = _MAPS.match(line)
        if not m:
            raise ValueError(f"/proc/{pid}/maps: line not understood: {line!r}")
        out.append(Range(int(m[1], 16), int(m[2], 16), m[3], m[4]))
    return out


def private_writable(pid: int, proc: Path = PROC) -> list[Range]:
    """Ranges whose pages the tenant owns: private, writable, anonymous or memfd, no stacks or vdso."""
    return [r for r in read_maps(pid, proc) if r.perms.startswith("rw") and r.perms[3] == "p"
            and (r.path == "" or r.path == "[heap]" or r.path.startswith("/memfd:"))]


def guest_ram(pid: int, proc: Path = PROC) -> Range:
    """A QEMU process's guest RAM: its largest writable mapping (shared memory-backends included)."""
    cands = [r for r in read_maps(pid, proc) if r.perms.startswith("rw")
             and (r.path == "" or r.path.startswith("/memfd:") or "hugepages" in r.path)]
    if not cands:
        raise ValueError(f"pid {pid}: no writable anonymous mapping to be guest RAM")
    return max(cands, key=lambda r: r.size)


def pids_by_name(name: str, proc: Path = PROC) -> list[int]:
    out = []
    for d in proc.iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == name:
                    out.append(int(d.name))
            except OSError:
                continue  # exited while we looked
    return sorted(out)


def pids_of_cgroup(cgroup: str, root: Path = Path("/sys/fs/cgroup")) -> list[int]:
    """The processes of a cgroup v2 path relative to the root (e.g. 'machine.slice/vm0.scope')."""
    p = (root / cgroup.lstrip("/")).resolve()
    if root.resolve() not in p.parents and p != root.resolve():
        raise ValueError(f"cgroup {cgroup!r} is outside {root}")
    return sorted(int(x) for x in (p / "cgroup.procs").read_text().split())
