"""The controller's policy store (pagetide.controller.store): policies and pauses survive a restart (the
file reopened), changes are all or nothing, one controller writes a database."""

import sqlite3

import pytest

from pagetide.controller.policies import VmPolicy
from pagetide.controller.store import CLUSTER, PolicyStore, StoreError, default_path

PINNED = VmPolicy(min_dram_share=0.25, max_dram_share=0.5, weight=2.5, pinned_tier="dram")
FROZEN = VmPolicy(min_dram_bytes=64 << 20, max_dram_bytes=1 << 40, migrate=False)
GUARDED = VmPolicy(weight=2.0, max_slowdown=1.25)

# the schema of version 1 (before VmPolicy.max_slowdown), as the store of 0695a61..230a2b1 wrote it
SCHEMA_1 = """
CREATE TABLE vm_policies (
    host_id TEXT NOT NULL, vm TEXT NOT NULL, min_dram_bytes INTEGER NOT NULL, max_dram_bytes INTEGER,
    min_dram_share REAL, max_dram_share REAL, weight REAL NOT NULL, pinned_tier TEXT, migrate INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL, PRIMARY KEY (host_id, vm)) WITHOUT ROWID;
CREATE TABLE pauses (host_id TEXT PRIMARY KEY, reason TEXT NOT NULL, since_ns INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
"""


def test_policies_and_pauses_survive_reopening_the_file(tmp_path):
    path = str(tmp_path / "state" / "controller.db")       # the directory is created
    with PolicyStore(path) as s:
        s.put_policies([("h1", "vm-b", PINNED), ("h0", "vm-a", FROZEN), ("h0", "vm-c", VmPolicy())])
        s.set_paused("h1", True, "maintenance")
        s.set_paused(CLUSTER, True)
    with PolicyStore(path) as s:
        assert s.policies() == {"h0": {"vm-a": FROZEN, "vm-c": VmPolicy()}, "h1": {"vm-b": PINNED}}
        assert s.pauses() == {"": "", "h1": "maintenance"}
        assert s.delete_policies([("h0", "vm-a"), ("h0", "ghost")]) == 1
        s.set_paused(CLUSTER, False)
        s.put_policies([("h1", "vm-b", VmPolicy(weight=3))])     # replaces
    with PolicyStore(path) as s:
        assert s.policies() == {"h0": {"vm-c": VmPolicy()}, "h1": {"vm-b": VmPolicy(weight=3)}}
        assert s.pauses() == {"h1": "maintenance"}


def test_a_per_vm_slowdown_limit_is_stored_and_read_back(tmp_path):
    path = str(tmp_path / "c.db")
    with PolicyStore(path) as s:
        s.put_policies([("h0", "a", GUARDED), ("h0", "b", VmPolicy())])
    with PolicyStore(path) as s:
        assert s.policies() == {"h0": {"a": GUARDED, "b": VmPolicy()}}
        assert s.policies()["h0"]["b"].max_slowdown is None


def test_a_database_of_the_old_schema_opens_and_keeps_every_policy_and_pause(tmp_path):
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.executescript(SCHEMA_1)
    old.executemany("INSERT INTO vm_policies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        ("h0", "vm-a", 64 << 20, 1 << 40, None, None, 1.0, None, 0, 1),
        ("h1", "vm-b", 0, None, 0.25, 0.5, 2.5, "dram", 1, 2)])
    old.execute("INSERT INTO pauses VALUES ('h1', 'maintenance', 3)")
    old.commit()
    old.close()
    with PolicyStore(path) as s:
        assert s.policies() == {"h0": {"vm-a": FROZEN}, "h1": {"vm-b": PINNED}}
        assert s.pauses() == {"h1": "maintenance"}
        s.put_policies([("h0", "vm-c", GUARDED)])         # the new column is writable at once
    with PolicyStore(path) as s:                          # and the migrated file reopens as it is
        assert s.policies() == {"h0": {"vm-a": FROZEN, "vm-c": GUARDED}, "h1": {"vm-b": PINNED}}
        assert s.db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_the_database_is_in_wal_mode_and_a_write_is_on_disk_when_the_call_returns(tmp_path):
    path = str(tmp_path / "c.db")
    with PolicyStore(path) as s:
        s.put_policies([("h0", "vm", FROZEN)])
        # another connection (as after a crash of this process) sees the committed row
        other = sqlite3.connect(path)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT vm, migrate FROM vm_policies").fetchall() == [("vm", 0)]
        other.close()


def test_a_failed_write_of_several_vms_changes_nothing(tmp_path):
    with PolicyStore(str(tmp_path / "c.db")) as s:
        s.put_policies([("h0", "a", VmPolicy(weight=2))])
        with pytest.raises(OverflowError):
            s.put_policies([("h0", "a", VmPolicy(weight=5)), ("h0", "b", VmPolicy(max_dram_bytes=1 << 64))])
        assert s.policies() == {"h0": {"a": VmPolicy(weight=2)}}


def test_a_second_controller_cannot_open_a_database_in_use(tmp_path):
    path = str(tmp_path / "c.db")
    with PolicyStore(path):
        with pytest.raises(StoreError, match="in use by another controller"):
            PolicyStore(path)
    PolicyStore(path).close()            # free again once the first is closed


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path):
    path = tmp_path / "c.db"
    path.write_bytes(b"not sqlite at all, just some bytes" * 100)
    with pytest.raises(StoreError, match="c.db"):
        PolicyStore(str(path))


def test_an_in_memory_store_keeps_nothing_after_close():
    with PolicyStore() as s:
        s.put_policies([("h0", "a", PINNED)])
        assert s.policies() == {"h0": {"a": PINNED}}
    with PolicyStore() as s:
        assert s.policies() == {} and s.pauses() == {}


def test_the_default_path_follows_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_path() == str(tmp_path / "pagetide" / "controller.db")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path() == str(tmp_path / ".local" / "state" / "pagetide" / "controller.db")
