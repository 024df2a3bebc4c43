"""Loaded latency (agent/bandwidth.py) and the costs the host model charges with it."""

import numpy as np

from pagetide.agent.bandwidth import LINE_BYTES, NodeLoad, latency_factor
from pagetide.agent.host import Host
from pagetide.agent.pageflags import PAGE_SIZE

from helpers import small_scenario


def test_latency_stays_idle_at_low_load_and_rises_sharply_near_saturation():
    u = np.linspace(0, 2, 201)
    f = latency_factor(u)
    assert (np.diff(f) > 0).all() and f[0] == 1.0
    assert latency_factor(0.1) < 1.001                 # below 10%: within 0.1% of idle
    assert latency_factor(0.5) < 1.1                   # half the bandwidth: still within 10%
    assert latency_factor(0.8) > 1.9                   # twice idle at 80%
    # a DRAM node near saturation is slower than idle PMEM (80 ns x factor > 305 ns)
    assert 80e-9 * latency_factor(0.95) > 305e-9


def test_node_load_counts_accesses_and_both_sides_of_a_copy():
    load = NodeLoad(np.array([100e9, 40e9]), np.array([100e9, 14e9]))
    load.accesses(np.array([1e8, 0.0]), np.array([0.0, 1e7]))
    load.migration(np.array([1, 1]), 0, np.array([4096.0, 4096.0]))
    assert load.read_bytes.tolist() == [1e8 * LINE_BYTES, 8192.0]
    assert load.write_bytes.tolist() == [8192.0, 1e7 * LINE_BYTES]
    load.end_tick(0.1)
    expect = [(1e8 * LINE_BYTES / 100e9 + 8192 / 100e9) / 0.1, (8192 / 40e9 + 1e7 * LINE_BYTES / 14e9) / 0.1]
    assert np.allclose(load.utilization, expect)
    assert np.allclose(load.factor, latency_factor(np.array(expect)))
    assert load.read_bytes.sum() == load.write_bytes.sum() == 0     # the next tick starts empty
    busy, fac, elapsed = load.sums()
    assert elapsed == 0.1 and np.allclose(busy, np.array(expect) * 0.1)


def _host(rate: str) -> Host:
    # one task whose memory all fits in DRAM, sampling uniformly
    return Host(small_scenario(dram="64MiB", slow="64MiB", tenants=[
        {"name": "t", "kind": "task", "footprint": "16MiB",
         "workload": {"type": "zipf", "s": 0.0, "rate": rate, "samples": 512, "write_ratio": 0}}]))


def _amat_ns(h: Host, ticks: int) -> float:
    st = h.tenants[0].stats
    for _ in range(ticks):
        h.run_tick()
    return st.access_time / st.accesses * 1e9


def test_a_lightly_loaded_node_is_charged_its_idle_latency():
    h = _host("100M/s")                         # 6.4 GB/s of 100 GB/s DRAM: 6%
    assert np.isclose(_amat_ns(h, 10), 80.0, rtol=1e-3)
    assert h.load.utilization[0] < 0.1
    assert np.isclose(h.tenants[0].stats.dram_time / h.tenants[0].stats.accesses * 1e9, 80.0)


def test_a_saturated_dram_node_becomes_slower_than_the_idle_slow_tier():
    h = _host("1.5G/s")                          # 96 GB/s of 100 GB/s
    amat = _amat_ns(h, 10)
    assert h.load.utilization[0] > 0.9
    assert amat > 305.0                          # slower than idle PMEM
    # the all-DRAM reference stays at idle latency: the ceiling
    assert np.isclose(h.tenants[0].stats.dram_time / h.tenants[0].stats.accesses * 1e9, 80.0)


def test_migration_copies_load_both_nodes_and_pay_unmap_and_tlb_shootdown_per_page():
    h = _host("1M/s")
    h.run_tick()
    t = h.tenants[0]
    slots = np.arange(t.start, t.start + 256)
    before = h.load.read_bytes.copy(), h.load.write_bytes.copy()
    tm = h.migrate_pages(slots, np.ones(256, dtype=np.int64), 0, 1)
    assert h.load.read_bytes[0] - before[0][0] == 256 * PAGE_SIZE
    assert h.load.write_bytes[1] - before[1][1] == 256 * PAGE_SIZE
    copy = 256 * PAGE_SIZE / min(h.read_bw[0], h.write_bw[1])
    assert np.isclose(tm, copy + 256 * h.k.migration_overhead, rtol=1e-3)
    h.check_invariants()


def test_page_tables_take_dram_capacity():
    h = _host("1M/s")
    h.run_tick()
    assert h.node_pgtable[0] > 0 and h.node_pgtable[1] == 0
    assert h.free_pages(0) == h.capacity[0] - h.node_used[0] - h.node_pgtable[0]
