"""The controller's durable state: the users' per-VM policies and the migration pauses (per host and
cluster-wide), in an embedded SQLite database. This module owns the file, its schema and its one writer.

Everything else the controller knows is observed again from the hosts (level-triggered), so this is all a
restarted controller needs to act as before: it reads the store at start, for every host it manages, up or
down. Each change is one transaction committed before the call returns (WAL journal, synchronous=FULL: the
commit is on disk when the ControllerService RPC answers), and a change of several VMs is all or nothing.
One controller writes a database: the store holds an exclusive lock on `<path>.lock` while it is open, and a
second controller opening the same file fails with StoreError instead of interleaving its writes. A database
of an older schema is brought up to this one in place as it is opened (`_MIGRATIONS`, one transaction),
keeping everything stored.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable

from pagetide.controller.policies import VmPolicy

__all__ = ["StoreError", "PolicyStore", "CLUSTER", "default_path"]

SCHEMA_VERSION = 2
CLUSTER = ""                  # the pause scope of the whole cluster (host ids are never empty)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vm_policies (
    host_id        TEXT NOT NULL,
    vm             TEXT NOT NULL,
    min_dram_bytes INTEGER NOT NULL,
    max_dram_bytes INTEGER,            -- NULL: unlimited
    min_dram_share REAL,               -- NULL: not given as a share
    max_dram_share REAL,
    weight         REAL NOT NULL,
    pinned_tier    TEXT,               -- 'dram', 'slow' or NULL
    migrate        INTEGER NOT NULL,   -- 0: the controller moves none of the VM's pages
    updated_ns     INTEGER NOT NULL,   -- wall clock of the last change, for people reading the file
    max_slowdown   REAL,               -- the fleet advice's limit for the VM; NULL: the fleet-wide guard
    PRIMARY KEY (host_id, vm)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pauses (
    host_id    TEXT PRIMARY KEY,       -- '' (CLUSTER): every host
    reason     TEXT NOT NULL,
    since_ns   INTEGER NOT NULL
) WITHOUT ROWID;
"""
# schema version N -> the statements that bring a database of version N - 1 up to N (a new database, version
# 0, gets _SCHEMA as it is). 2: VmPolicy.max_slowdown.
_MIGRATIONS = {2: "ALTER TABLE vm_policies ADD COLUMN max_slowdown REAL;"}
_COLUMNS = ("min_dram_bytes", "max_dram_bytes", "min_dram_share", "max_dram_share", "weight", "pinned_tier",
            "migrate", "max_slowdown")


class StoreError(Exception):
    """The database cannot be used: locked by another controller, unreadable, or of a newer schema."""


def default_path() -> str:
    """`$XDG_STATE_HOME/pagetide/controller.db` (XDG base directories: state that survives restarts)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "pagetide", "controller.db")


class PolicyStore:
    def __init__(self, path: str = ":memory:"):
        """Open (creating if needed) the database at `path`; ":memory:" keeps nothing after close (tests, and
        callers that want no persistence). Raises StoreError if another controller has it open, or it is
        not a pagetide database this version can read."""
        self.path = path
        self._lock_fd: int | None = None
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(self._lock_fd)
                self._lock_fd = None
                raise StoreError(f"{path} is in use by another controller (lock {path}.lock is held)") from None
        try:
            # autocommit mode: every write below is its own explicit transaction
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{path}: schema version {version} is newer than this pagetide's "
                                 f"({SCHEMA_VERSION})")
            migrate = " ".join(_MIGRATIONS[v] for v in range(version + 1, SCHEMA_VERSION + 1)) if version else ""
            self.db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} {migrate} PRAGMA user_version = {SCHEMA_VERSION}; "
                                  f"COMMIT;")
        except sqlite3.Error as e:
            self.close()
            raise StoreError(f"{path}: {e}") from None
        except StoreError:
            self.close()
            raise

    # ------------------------------------------------------------------------------------------- policies

    def policies(self) -> dict[str, dict[str, VmPolicy]]:
        """host id -> VM -> policy, everything stored."""
        out: dict[str, dict[str, VmPolicy]] = {}
        rows = self.db.execute(f"SELECT host_id, vm, {', '.join(_COLUMNS)} FROM vm_policies ORDER BY host_id, vm")
        for host, vm, lo, hi, lo_share, hi_share, weight, tier, migrate, slowdown in rows:
            out.setdefault(host, {})[vm] = VmPolicy(min_dram_bytes=lo, max_dram_bytes=hi, min_dram_share=lo_share,
                                                    max_dram_share=hi_share, weight=weight, pinned_tier=tier,
                                                    migrate=bool(migrate), max_slowdown=slowdown)
        return out

    def put_policies(self, items: Iterable[tuple[str, str, VmPolicy]]) -> None:
        """Set (replace) the policies of (host, VM) pairs, all in one transaction."""
        now = time.time_ns()
        rows = [(h, vm, p.min_dram_bytes, p.max_dram_bytes, p.min_dram_share, p.max_dram_share, float(p.weight),
                 p.pinned_tier, int(p.migrate), p.max_slowdown, now) for h, vm, p in items]
        with self._transaction():
            self.db.executemany(f"INSERT OR REPLACE INTO vm_policies (host_id, vm, {', '.join(_COLUMNS)}, "
                                f"updated_ns) VALUES ({', '.join('?' * (len(_COLUMNS) + 3))})", rows)

    def delete_policies(self, keys: Iterable[tuple[str, str]]) -> int:
        """Forget the policies of (host, VM) pairs, in one transaction; how many there were."""
        keys = list(keys)
        with self._transaction():
            before = self.db.total_changes
            self.db.executemany("DELETE FROM vm_policies WHERE host_id = ? AND vm = ?", keys)
            return self.db.total_changes - before

    # --------------------------------------------------------------------------------------------- pauses

    def pauses(self) -> dict[str, str]:
        """Paused scope (a host id, or CLUSTER) -> the reason given."""
        return dict(self.db.execute("SELECT host_id, reason FROM pauses ORDER BY host_id"))

    def set_paused(self, scope: str, paused: bool, reason: str = "") -> None:
        """Pause (or resume) migration on one host, or with CLUSTER on every host."""
        with self._transaction():
            if paused:
                self.db.execute("INSERT OR REPLACE INTO pauses (host_id, reason, since_ns) VALUES (?, ?, ?)",
                                (scope, reason, time.time_ns()))
            else:
                self.db.execute("DELETE FROM pauses WHERE host_id = ?", (scope,))

    # ----------------------------------------------------------------------------------------------- file

    def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
            self.db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)            # releases the flock
            self._lock_fd = None

    def __enter__(self) -> PolicyStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (so a failed write changes nothing)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
