"""Trace replay of real programs (DESIGN.md section 5): lackey and damo logs convert to exact per-page counts in
bounded memory, and the `trace` workload replays them deterministically."""

import json
import re
import zlib

import numpy as np
import pytest

from pagetide.agent.sim import simulate
from pagetide.agent.traces.damo import convert_damo
from pagetide.agent.traces.format import TraceFile, TraceFormatError, TraceWriter
from pagetide.agent.traces.lackey import _blocks, _parse_block, convert_lackey, parse_line
from pagetide.agent.traces.shipped import resolve_trace_path, shipped_traces
from pagetide.agent.traces.workload import TraceWorkload
from pagetide.agent.workloads import WORKLOADS, make_workload

from helpers import small_scenario
from lackey_log import lackey_log

LACKEY = """\
==4242== Lackey, an example Valgrind tool
==4242== Command: ./prog
I  04000a30,3
 L 00001ff8,8
 S 00001ffc,8
 M 00003010,4
I  04000a33,5

 L 00003020,8
 M 00005ffe,4
 S 00001000,1
==4242== Counted 2 calls to main()
"""
# pages touched: 0x1000 (L, S straddling, S), 0x2000 (S straddling), 0x3000 (M, L), 0x5000/0x6000 (M straddling)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_lackey_loads_stores_and_modifies_become_exact_per_page_reads_and_writes(tmp_path):
    t = convert_lackey(write(tmp_path, "a.log", LACKEY), tmp_path / "a.pgtrace", epoch_accesses=100)
    assert t.header["source"] == "valgrind-lackey" and t.nepochs == 1 and t.page_size == 4096
    # pages renumbered densely in address order; the map keeps each page's address
    assert t.addresses.tolist() == [0x1000, 0x2000, 0x3000, 0x5000, 0x6000]
    reads, writes = t.dense_counts()
    assert reads.tolist() == [[1, 0, 2, 1, 1]]    # M is a read ...
    assert writes.tolist() == [[2, 1, 1, 1, 1]]   # ... and a write; straddling accesses count on both pages
    assert (t.header["reads"], t.header["writes"]) == (5, 6)


def test_lackey_instruction_fetches_are_skipped_or_counted_as_reads(tmp_path):
    t = convert_lackey(write(tmp_path, "a.log", LACKEY), tmp_path / "a.pgtrace", instructions="read")
    assert t.addresses.tolist() == [0x1000, 0x2000, 0x3000, 0x5000, 0x6000, 0x4000000]
    reads, writes = t.dense_counts()
    assert reads[0].tolist() == [1, 0, 2, 1, 1, 2] and writes[0, 5] == 0


def test_lackey_epochs_are_fixed_numbers_of_accesses_and_the_last_may_be_shorter(tmp_path):
    t = convert_lackey(write(tmp_path, "a.log", LACKEY), tmp_path / "a.pgtrace", epoch_accesses=2)
    assert t.header["epoch_length"] == 2 and t.header["epoch_unit"] == "accesses"
    reads, writes = t.dense_counts()
    # records: L 1ff8 | S 1ffc | M 3010 | L 3020 | M 5ffe | S 1000 (I lines skipped, not counted)
    assert reads.tolist() == [[1, 0, 0, 0, 0], [0, 0, 2, 0, 0], [0, 0, 0, 1, 1]]
    assert writes.tolist() == [[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [1, 0, 0, 1, 1]]


@pytest.mark.parametrize("chunk_size", [1, 7, 13, 64])
def test_lackey_chunk_boundaries_do_not_change_the_trace(tmp_path, chunk_size):
    src = write(tmp_path, "a.log", LACKEY * 50)
    convert_lackey(src, tmp_path / "big.pgtrace", epoch_accesses=7)
    convert_lackey(src, tmp_path / "small.pgtrace", epoch_accesses=7, chunk_size=chunk_size)
    assert (tmp_path / "big.pgtrace").read_bytes() == (tmp_path / "small.pgtrace").read_bytes()


def test_a_lackey_log_without_a_final_newline_keeps_its_last_access(tmp_path):
    t = convert_lackey(write(tmp_path, "a.log", " L 00001000,4\n S 00002000,4"), tmp_path / "a.pgtrace")
    assert t.dense_counts()[1].tolist() == [[0, 1]]


@pytest.mark.parametrize("bad", [" X 00001000,4", " L 0000zz00,4", " L 00001000", "hello from the program",
                                 " S 00001000,-4"])
def test_malformed_lackey_input_is_an_error_naming_the_line(tmp_path, bad):
    src = write(tmp_path, "a.log", "==1== hi\n L 00001000,4\n\n" + bad + "\n L 00002000,4\n")
    with pytest.raises(TraceFormatError, match=r"a\.log:4: malformed lackey line"):
        convert_lackey(src, tmp_path / "a.pgtrace", chunk_size=5)
    assert list(tmp_path.iterdir()) == [src]  # no partial output or spool left behind


# A generated log (tests/lackey_log.py) with every odd line the format allows spliced in: CRLF endings, spaces
# around the fields, upper-case hex, leading zeros, 16-digit addresses, sizes of 0, 8 and 10 digits, blank lines
# and valgrind's lines; the block parser must read it exactly as the reference line parser does.
ODD_LINES = [b" L 00001ff8,8\r", b" S   00002000,4  ", b" M 0000ABCD,2", b"I  0000000000001000,12345678",
             b" L ffffffffffff0000,16", b" S 00003000,0", b" L 00004000,1234567890", b"", b"   ", b"==42== x",
             b"--42-- y", b"**42** z", b" L 00000000000000000000000005000,1", b" M 7ffe,64"]


def lackey_with_odd_lines(records=4000, seed=2, odd_lines=ODD_LINES):
    lines = lackey_log(records, seed).split(b"\n")
    rng = np.random.default_rng(seed)
    for at, odd in zip(rng.integers(0, len(lines), 300), rng.choice(len(odd_lines), 300)):
        lines.insert(int(at), odd_lines[odd])
    return b"\n".join(lines)


def reference_records(data: bytes, instructions=True):
    """The records parse_line reads, line by line."""
    out = [r for r in map(parse_line, data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"))
           if r is not None and (instructions or r[0] != 3)]
    return [np.array(x, dtype=np.uint64) for x in zip(*out)]


@pytest.mark.parametrize("chunk_size", [13, 257, 4096, 1 << 20])
@pytest.mark.parametrize("instructions", [True, False])
def test_the_block_parser_reads_every_line_as_the_reference_line_parser_does(tmp_path, chunk_size, instructions):
    data = lackey_with_odd_lines(records=500 if chunk_size < 4096 else 20000)
    src = write(tmp_path, "a.log", data)
    parts = [_parse_block(src, n, b, instructions) for n, b in _blocks(src, chunk_size)]
    got = [np.concatenate([p[i] for p in parts]).astype(np.uint64) for i in range(3)]
    want = reference_records(data, instructions)
    assert got[0].size == want[0].size > 150
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def test_lines_in_the_common_layout_never_take_the_one_line_at_a_time_path(tmp_path, monkeypatch):
    from pagetide.agent.traces import lackey

    seen = []
    monkeypatch.setattr(lackey, "parse_line", lambda line: seen.append(line) or parse_line(line))
    data = lackey_log(20000, seed=4)
    kinds, _, _ = _parse_block(tmp_path / "a.log", 1, data)
    assert kinds.size == 20000 and seen == [x for x in data.split(b"\n") if x.startswith((b"==", b"--"))]


def test_a_converted_generated_log_holds_exactly_the_reference_counts_and_is_the_same_for_any_chunk_size(tmp_path):
    # (without the 1.2 GB access, which the pure-Python count below would take seconds over)
    data = lackey_with_odd_lines(records=6000, odd_lines=[x for x in ODD_LINES if not x.endswith(b"1234567890")])
    src = write(tmp_path, "a.log", data)
    t = convert_lackey(src, tmp_path / "a.pgtrace", epoch_accesses=500)
    convert_lackey(src, tmp_path / "b.pgtrace", epoch_accesses=500, chunk_size=997)
    assert (tmp_path / "a.pgtrace").read_bytes() == (tmp_path / "b.pgtrace").read_bytes()
    kinds, addrs, sizes = reference_records(data, instructions=False)
    touches = {}         # (epoch, page) -> [reads, writes], record by record
    for i, (k, a, z) in enumerate(zip(kinds.tolist(), addrs.tolist(), sizes.tolist())):
        for page in range(a >> 12, ((a + max(z, 1) - 1) >> 12) + 1):
            c = touches.setdefault((i // 500, page << 12), [0, 0])
            c[0] += k in (0, 2)
            c[1] += k in (1, 2)
    reads, writes = t.dense_counts()
    assert t.nepochs == -(-kinds.size // 500) and t.addresses.tolist() == sorted({p for _, p in touches})
    column = {a: i for i, a in enumerate(t.addresses.tolist())}
    want_r, want_w = np.zeros_like(reads), np.zeros_like(writes)
    for (e, page), (r, w) in touches.items():
        want_r[e, column[page]], want_w[e, column[page]] = r, w
    assert np.array_equal(reads, want_r) and np.array_equal(writes, want_w)


@pytest.mark.parametrize("bad, why", [
    (b" L 00001000,4a", "expected ' L addr,size'"),       # a hex digit in the size
    (b" L 00001000;4", "expected ' L addr,size'"),
    (b" L 00001000,4,4", "expected ' L addr,size'"),
    (b"I 00001000,4", "expected ' L addr,size'"),          # one space after I
    (b" l 00001000,4", "expected ' L addr,size'"),
    (b" L 0000-1000,4", "expected ' L addr,size'"),
    (b" L ,4", "expected ' L addr,size'"),
    (b" L 00001000,", "expected ' L addr,size'"),
    (b" L 00001000", "expected ' L addr,size'"),
    (b" L 10000000000000000,4", "does not fit 64 bits"),
    (b" L ffffffffffffffff,2", "past the end of the 64-bit address space"),
    (b" L 00001000,4294967296", "more than 4294967295 bytes")])
def test_a_malformed_line_deep_in_a_block_is_an_error_naming_its_line_number(tmp_path, bad, why):
    lines = lackey_log(3000, seed=3).split(b"\n")
    lines[2500] = bad
    src = write(tmp_path, "a.log", b"\n".join(lines))
    with pytest.raises(TraceFormatError, match=rf"a\.log:2501: malformed lackey line .*{re.escape(why)}"):
        convert_lackey(src, tmp_path / "a.pgtrace")
    with pytest.raises(TraceFormatError, match=r"a\.log:2501: "):     # split over many small blocks too
        convert_lackey(src, tmp_path / "a.pgtrace", chunk_size=100)
    assert list(tmp_path.iterdir()) == [src]


# ---- damo ------------------------------------------------------------------------------------------------

def region(start, end, samples, age=1):
    return {"start": str(start), "end": str(end), "nr_accesses": {"samples": samples, "percent": None},
            "age": {"usec": None, "aggr_intervals": str(age)}, "probe_hits": [], "sz_filter_passed": "0"}


def damo_record(target_id, snapshots):
    return {"kdamond_idx": 0, "context_idx": 0,
            "intervals": {"sample_us": "5000", "aggr_us": "100000", "ops_update_us": "1000000"},
            "scheme_idx": None, "target_id": target_id, "scheme_filters": [],
            "snapshots": [{"start_time": str(100_000_000 * i), "end_time": str(100_000_000 * (i + 1)),
                           "regions": regs, "total_bytes": None, "damos_stats": None, "sample_interval_us": None}
                          for i, regs in enumerate(snapshots)],
            "data_source": "unknown"}


DAMO = [damo_record(0, [
    [region(0x10000, 0x12000, 3), region(0x12000, 0x13000, 0), region(0x20000, 0x21000, 20)],
    [region(0x10000, 0x11000, 1), region(0x11000, 0x13000, 5), region(0x20000, 0x21000, 0)],
]), damo_record(1, [[region(0x40000, 0x41000, 9)]])]


def test_damo_region_accesses_become_per_page_counts_per_snapshot(tmp_path):
    t = convert_damo(write(tmp_path, "damon.json", json.dumps(DAMO, indent=4)), tmp_path / "d.pgtrace")
    assert t.header["source"] == "damo" and t.header["epoch_length"] == 100_000 and t.header["epoch_unit"] == "us"
    # idle regions belong to the footprint too (page 0x12000 was never accessed in snapshot 0)
    assert t.addresses.tolist() == [0x10000, 0x11000, 0x12000, 0x20000]
    reads, writes = t.dense_counts()
    assert reads.tolist() == [[3, 3, 0, 20], [1, 5, 5, 0]]
    assert not writes.any()  # DAMON does not tell reads from writes


def test_damo_snapshots_merge_into_epochs_and_records_are_chosen_by_index(tmp_path):
    src = write(tmp_path, "damon.json", json.dumps(DAMO))
    t = convert_damo(src, tmp_path / "d.pgtrace", snapshots_per_epoch=2)
    assert t.header["epoch_length"] == 200_000 and t.dense_counts()[0].tolist() == [[4, 8, 5, 20]]
    other = convert_damo(src, tmp_path / "d1.pgtrace", record=1)
    assert other.addresses.tolist() == [0x40000] and other.dense_counts()[0].tolist() == [[9]]
    with pytest.raises(TraceFormatError, match="has no record 2"):
        convert_damo(src, tmp_path / "d2.pgtrace", record=2)


def test_damo_compressed_records_and_tiny_chunks_give_the_same_trace(tmp_path):
    text = json.dumps(DAMO, indent=4)
    (tmp_path / "z").mkdir()
    convert_damo(write(tmp_path, "damon.data", text), tmp_path / "a.pgtrace")
    convert_damo(write(tmp_path, "z/damon.data", zlib.compress(text.encode())), tmp_path / "b.pgtrace", chunk_size=3)
    assert (tmp_path / "a.pgtrace").read_bytes() == (tmp_path / "b.pgtrace").read_bytes()


def test_malformed_damo_input_is_an_error_naming_the_line(tmp_path):
    text = json.dumps(DAMO, indent=4)
    truncated = text[:text.index('"nr_accesses"', 800)]
    with pytest.raises(TraceFormatError, match=r"damon\.json:\d+: invalid JSON"):
        convert_damo(write(tmp_path, "damon.json", truncated), tmp_path / "d.pgtrace", chunk_size=64)
    bad = json.loads(text)
    del bad[0]["snapshots"][1]["regions"][0]["nr_accesses"]
    lines = json.dumps(bad, indent=4)
    with pytest.raises(TraceFormatError, match=r"records\[0\]\.snapshots\[1\]\.regions\[0\]: missing nr_accesses"):
        convert_damo(write(tmp_path, "damon.json", lines), tmp_path / "d.pgtrace")
    bad[0]["snapshots"][1]["regions"] = [region(0x2000, 0x1000, 1)]
    with pytest.raises(TraceFormatError, match=r"damon\.json:\d+: .*end 4096 must be greater than start 8192"):
        convert_damo(write(tmp_path, "damon.json", json.dumps(bad)), tmp_path / "d.pgtrace")


# ---- the file format -------------------------------------------------------------------------------------

def test_a_trace_file_round_trips_and_reads_one_epoch_at_a_time(tmp_path):
    w = TraceWriter(tmp_path / "t.pgtrace", {"source": "test", "page_size": 4096, "epoch_length": 1,
                                              "epoch_unit": "accesses", "reads": 9, "writes": 1},
                    np.array([0, 4096, 1 << 40], dtype=np.uint64), nepochs=2)
    w.add_epoch(np.array([0, 2]), np.array([5, 0]), np.array([0, 1]))
    w.add_epoch(np.array([1]), np.array([4]), np.array([0]))
    w.close()
    t = TraceFile(tmp_path / "t.pgtrace")
    assert (t.npages, t.nepochs, t.header["version"]) == (3, 2, 1)
    assert t.addresses.tolist() == [0, 4096, 1 << 40]
    e = t.epoch(1)
    assert (e.pages.tolist(), e.reads.tolist(), e.writes.tolist()) == ([1], [4], [0])
    with pytest.raises(IndexError):
        t.epoch(2)


def test_files_that_are_not_traces_or_of_another_version_are_rejected(tmp_path):
    with pytest.raises(TraceFormatError, match="not a pagetide trace"):
        TraceFile(write(tmp_path, "x.pgtrace", "hello"))
    convert_lackey(write(tmp_path, "a.log", LACKEY), tmp_path / "a.pgtrace")
    data = bytearray((tmp_path / "a.pgtrace").read_bytes())
    data[8] = 2
    with pytest.raises(TraceFormatError, match="version 2"):
        TraceFile(write(tmp_path, "v2.pgtrace", bytes(data)))


# ---- the trace workload ----------------------------------------------------------------------------------

@pytest.fixture
def small_trace(tmp_path):
    """Three epochs over 4 pages; epoch 1 has no accesses."""
    path = tmp_path / "small.pgtrace"
    w = TraceWriter(path, {"source": "test", "page_size": 4096, "epoch_length": 10, "epoch_unit": "accesses",
                           "reads": 14, "writes": 6}, np.arange(4, dtype=np.uint64) * 4096, nepochs=3)
    w.add_epoch(np.array([0, 3]), np.array([6, 0]), np.array([2, 2]))
    w.add_epoch(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    w.add_epoch(np.array([1, 2]), np.array([4, 4]), np.array([0, 2]))
    w.close()
    return str(path)


def test_trace_is_a_registered_workload_type_that_needs_a_path(small_trace):
    assert WORKLOADS["trace"] is TraceWorkload
    with pytest.raises(ValueError, match="workload.path: missing"):
        make_workload({"type": "trace"}, 16, 0, 0.1)
    with pytest.raises(ValueError, match="workload.path: no trace file 'nope'; shipped traces: "):
        make_workload({"type": "trace", "path": "nope"}, 16, 0, 0.1)
    with pytest.raises(ValueError, match="touches 4 pages .* the footprint has only 3"):
        make_workload({"type": "trace", "path": small_trace}, 3, 0, 0.1)
    with pytest.raises(ValueError, match="workload.loop: must be true or false"):
        make_workload({"type": "trace", "path": small_trace, "loop": "sometimes"}, 16, 0, 0.1)


def test_trace_probabilities_are_the_epochs_counts_and_extra_pages_are_never_touched(small_trace):
    w = make_workload({"type": "trace", "path": small_trace, "ticks_per_epoch": 2}, 10, seed=1, tick_s=0.1)
    np.testing.assert_array_equal(w.probabilities(0), [0.8, 0, 0, 0.2, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(w.probabilities(1), w.probabilities(0))
    # epoch 1 is empty: epoch 0 holds through it
    assert [w.trace_epoch(t) for t in range(8)] == [0, 0, 0, 0, 2, 2, 0, 0]
    np.testing.assert_array_equal(w.probabilities(4)[:4], [0, 0.4, 0.6, 0])
    assert w.hot_pages(4, 3).tolist() == [2, 1, 0]
    pages = np.concatenate([w.sample(t)[0] for t in range(12)])
    assert pages.max() < 4


def test_without_loop_the_last_epoch_holds_after_the_trace_ends(small_trace):
    w = make_workload({"type": "trace", "path": small_trace, "loop": False}, 4, seed=1, tick_s=0.1)
    assert [w.trace_epoch(t) for t in (0, 2, 3, 1000)] == [0, 2, 2, 2]


def test_trace_samples_follow_probabilities_and_the_traces_write_mix(small_trace):
    w = make_workload({"type": "trace", "path": small_trace, "samples": 20_000}, 4, seed=5, tick_s=0.1)
    for tick in (0, 2):
        pages, is_write = w.sample(tick)
        freq = np.bincount(pages, minlength=4) / pages.size
        np.testing.assert_allclose(freq, w.probabilities(tick), atol=0.01)
    pages, is_write = w.sample(0)
    assert is_write[pages == 3].all()                            # page 3 was only written
    assert is_write[pages == 0].mean() == pytest.approx(0.25, abs=0.02)  # 2 writes of 8 accesses
    assert w.write_ratio == pytest.approx(6 / 20)


def test_an_explicit_write_ratio_overrides_the_traces_mix(small_trace):
    w = make_workload({"type": "trace", "path": small_trace, "write_ratio": 0.5, "samples": 20_000}, 4, 5, 0.1)
    pages, is_write = w.sample(0)
    assert is_write.mean() == pytest.approx(0.5, abs=0.02)
    assert w.describe()["write_ratio"] == 0.5


def test_trace_replay_is_deterministic_under_its_seed_and_describe_rebuilds_it(small_trace):
    spec = {"type": "trace", "path": small_trace, "samples": 500}
    a, b, c = (make_workload(spec, 8, seed, 0.1) for seed in (3, 3, 4))
    for tick in (5, 0, 2):
        np.testing.assert_array_equal(a.sample(tick)[0], b.sample(tick)[0])
        np.testing.assert_array_equal(a.sample(tick)[1], b.sample(tick)[1])
    assert not np.array_equal(a.sample(0)[0], c.sample(0)[0])
    again = make_workload(a.describe(), 8, 3, 0.1)
    assert again.describe() == a.describe() and a.describe()["write_ratio"] is None
    np.testing.assert_array_equal(again.sample(7)[0], a.sample(7)[0])


# ---- the shipped traces ----------------------------------------------------------------------------------

def test_the_project_ships_traces_of_real_programs():
    assert set(shipped_traces()) >= {"sort", "python-dict", "sqlite-index"}
    for name in shipped_traces():
        t = TraceFile(resolve_trace_path(name))
        assert t.header["source"] == "valgrind-lackey" and t.page_size == 4096
        assert t.nepochs > 10 and t.npages > 100
        assert t.path.stat().st_size < 2 << 20


def test_a_shipped_trace_replays_in_a_small_host_scenario():
    # without prefault only the pages the program touches are ever allocated: the trace's 1.5 MiB fit in DRAM
    s = small_scenario(dram="8MiB", slow="64MiB", tenants=[
        {"name": "sort", "footprint": "32MiB", "prefault": False,
         "workload": {"type": "trace", "path": "sort", "samples": 2048}}])
    r = simulate(s, check=True)
    t = r.tenants[0]
    assert t.workload == "trace" and t.accesses == pytest.approx(50e6 * 2)
    assert 0 < sum(t.resident_bytes) <= TraceFile(resolve_trace_path("sort")).npages * 4096
    assert t.dram_share == 1.0 and t.oracle_share == 1.0


def test_a_shipped_traces_name_never_resolves_to_a_file_of_that_name_in_the_working_directory(tmp_path, monkeypatch):
    from pagetide.agent.traces.shipped import SHIPPED_DIR

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sort").write_bytes(b"not a trace")
    (tmp_path / "mine.pgtrace").write_bytes(b"x")
    assert resolve_trace_path("sort") == SHIPPED_DIR / "sort.pgtrace"
    assert resolve_trace_path("sort.pgtrace") == SHIPPED_DIR / "sort.pgtrace"
    assert resolve_trace_path("./sort").resolve() == tmp_path / "sort"
    assert resolve_trace_path("mine.pgtrace").resolve() == tmp_path / "mine.pgtrace"
    with pytest.raises(FileNotFoundError, match="no trace file 'nope'"):
        resolve_trace_path("nope")


def test_a_users_trace_runs_in_pagetide_run_by_a_relative_path_and_trace_info_describes_it(tmp_path, monkeypatch,
                                                                                            capsys):
    import yaml

    from pagetide.harness.cli import main

    monkeypatch.chdir(tmp_path)
    convert_lackey(write(tmp_path, "mine.lackey", lackey_log(20000, seed=6)), "mine.pgtrace", epoch_accesses=1000)
    scenario = {"seed": 1, "tick": "100ms", "duration": "1s", "epoch": "500ms",
                "host": {"nodes": [{"id": 0, "type": "dram", "capacity": "2MiB", "peer_node": 1},
                                   {"id": 1, "type": "pmem", "capacity": "16MiB"}], "kernel": {"swap": "16MiB"}},
                "tenants": [{"name": "vm0", "footprint": "16MiB",
                             "workload": {"type": "trace", "path": "mine.pgtrace", "samples": 512}}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    assert main(["run", "--scenario", "s.yaml", "--json", "out.json"]) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["kernel"]["tenants"][0]["accesses"] > 0
    capsys.readouterr()
    assert main(["trace", "info", "mine.pgtrace"]) == 0
    assert capsys.readouterr().out.startswith("mine.pgtrace: valgrind-lackey trace of ?: ")


def test_a_missing_or_bad_trace_in_a_scenario_is_an_error_naming_the_key_and_the_file(tmp_path, monkeypatch):
    from pagetide.agent.scenario import ScenarioError

    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.pgtrace", "hello")
    for path, why in (("nope.pgtrace", "no trace file 'nope.pgtrace'"), ("bad.pgtrace", "not a pagetide trace")):
        with pytest.raises(ScenarioError, match=rf"workload\.path: .*{why}"):
            small_scenario(tenants=[{"name": "vm0", "footprint": "16MiB",
                                     "workload": {"type": "trace", "path": path}}])


def test_a_users_trace_in_a_fleet_file_is_checked_by_the_same_resolver_and_a_bad_one_names_its_key(tmp_path,
                                                                                                   monkeypatch):
    from pagetide.agent.scenario import parse_scenario
    from pagetide.agent.traces.shipped import SHIPPED_DIR
    from pagetide.harness.fleetfile import FleetError, parse_fleet

    monkeypatch.chdir(tmp_path)
    convert_lackey(write(tmp_path, "mine.lackey", lackey_log(5000, seed=7)), "mine.pgtrace", epoch_accesses=500)
    (tmp_path / "sort").write_text("not a trace")          # never shadows the shipped trace of that name

    def fleet(path):
        return {"duration": "2s", "host_classes": {"h": {"count": 1, "host": {
                    "nodes": [{"id": 0, "type": "dram", "capacity": "16MiB", "peer_node": 1},
                              {"id": 1, "type": "pmem", "capacity": "48MiB"}], "kernel": {"swap": "64MiB"}},
                    "vms": [{"vm": "mine"}, {"vm": "sort"}]}},
                "vms": {"mine": {"footprint": "16MiB", "workload": {"type": "trace", "path": path}},
                        "sort": {"footprint": "2MiB", "workload": {"type": "trace", "path": "sort"}}}}

    (scenario,) = parse_fleet(fleet("mine.pgtrace")).scenarios()
    replayed = [make_workload(t.workload, t.npages, 0, 0.1).trace.path.resolve()
                for t in parse_scenario(scenario).tenants]
    assert replayed == [tmp_path / "mine.pgtrace", SHIPPED_DIR / "sort.pgtrace"]
    with pytest.raises(FleetError, match=r"vms\.mine\.workload\.path: .*no trace file 'gone\.pgtrace'"):
        parse_fleet(fleet("gone.pgtrace"))
    with pytest.raises(FleetError, match=r"vms\.mine\.workload\.path: .*not a pagetide trace"):
        parse_fleet(fleet("./sort"))
