import errno

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from pagetide.agent.host import LRU_SEQ_LIMIT, MPOL_MF_MOVE, MPOL_MF_SW_YOUNG, Host
from pagetide.agent.pageflags import NODE_SWAP, PAGE_SIZE, PG_ACTIVE, PG_REFERENCED
from pagetide.agent.scenario import ScenarioError
from pagetide.agent.sim import simulate

from helpers import small_scenario

MiB = 1 << 20


def touch(host, t, pages, write=False):
    pages = np.asarray(pages, dtype=np.int64)
    return host.access(t, pages, np.full(pages.size, write), 1.0)


def addr(t, page):
    return t.vma_start + page * t.spec.page_size


def test_first_touch_allocates_on_the_home_dram_node_and_charges_page_tables_there():
    h = Host(small_scenario(tenants=[{"name": "vm0", "footprint": "16MiB", "prefault": False,
                                      "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    served = touch(h, t, np.arange(4096))
    assert (served == 0).all()
    assert h.node_used[0] == 4096 and h.node_used[1] == 0
    # 4096 PTEs = 8 page-table pages, doubled for the VM's EPT
    assert h.node_pgtable.tolist() == [16, 0]
    h.check_invariants()


def test_separate_zonelists_never_allocate_on_the_slow_node():
    h = Host(small_scenario(dram="16MiB", slow="64MiB", tenants=[
        {"name": "t", "kind": "task", "footprint": "48MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    for chunk in np.array_split(np.arange(t.npages), 12):
        touch(h, t, chunk)
        h._kswapd()
        h.check_invariants()
    # everything on the slow node got there by demotion, not by allocation
    demoted = h.vmstat["pgdemote_kswapd"] + h.vmstat["pgdemote_direct"]
    assert h.node_used[1] == demoted > 0


def test_unified_zonelist_first_touch_falls_back_to_the_slow_node_without_demotion():
    h = Host(small_scenario(dram="16MiB", slow="64MiB", kernel={"zonelist": "unified", "demotion_enabled": False},
                            tenants=[{"name": "t", "kind": "task", "footprint": "48MiB", "prefault": False,
                                      "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(t.npages))
    assert h.node_used[1] > 0
    assert h.vmstat["pgdemote_kswapd"] == h.vmstat["pgdemote_direct"] == 0
    # first-touch fills DRAM down to its low watermark first, in address order
    assert h.node[t.start] == 0 and h.node[t.end - 1] == 1
    h.check_invariants()


def test_interleaved_first_touch_alternates_nodes_and_falls_back_when_one_is_full():
    kernel = {"zonelist": "unified", "demotion_enabled": False}
    h = Host(small_scenario(kernel=kernel, tenants=[{"name": "t", "kind": "task", "footprint": "16MiB",
                                                     "interleave": [0, 1], "workload": {"type": "zipf"}}]))
    h.boot()
    t = h.tenants[0]
    assert h.node[t.start:t.end].tolist() == [0, 1] * (t.npages // 2)
    # 8 MiB of DRAM: page 2i asks for node 0 until it is at its low watermark, then falls back to node 1
    h = Host(small_scenario(dram="8MiB", kernel=kernel, tenants=[
        {"name": "t", "kind": "task", "footprint": "16MiB", "interleave": [0, 1], "workload": {"type": "zipf"}}]))
    h.boot()
    t = h.tenants[0]
    node = h.node[t.start:t.end]
    assert (node[1::2] == 1).all()
    assert node[0] == 0 and node[-2] == 1
    assert 0 <= h.free_pages(0) - h.wmark_low[0] < 16      # node 0 filled down to its low watermark
    h.check_invariants()
    with pytest.raises(ScenarioError, match=r"tenants\[0\]\.interleave\[1\]: node 2 does not exist"):
        small_scenario(tenants=[{"name": "t", "footprint": "16MiB", "interleave": [0, 2],
                                 "workload": {"type": "zipf"}}])
    with pytest.raises(ScenarioError, match=r"interleave\[1\]: node 0 is named twice"):
        small_scenario(tenants=[{"name": "t", "footprint": "16MiB", "interleave": [0, 0],
                                 "workload": {"type": "zipf"}}])


def test_demotion_keeps_dram_between_its_watermarks_under_a_growing_footprint():
    h = Host(small_scenario(dram="32MiB", slow="128MiB", tenants=[
        {"name": "grow", "kind": "task", "footprint": "120MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    frees = []
    for chunk in np.array_split(np.arange(t.npages), 60):      # the footprint grows 2 MiB a tick
        touch(h, t, chunk)
        h._kswapd()
        h.check_invariants()
        frees.append(h.free_pages(0))
    frees = np.array(frees)
    frees = frees[np.argmax(frees <= h.wmark_high[0]):]  # once DRAM has filled up
    assert frees.size > 40
    assert (frees >= h.wmark_min[0]).all()
    assert (frees >= h.wmark_low[0]).all()                     # kswapd restores low after every tick
    assert (frees <= h.wmark_high[0] + 2 * 512).all()          # ... and does not empty DRAM
    assert h.vmstat["pgdemote_kswapd"] > 0 and h.vmstat["pswpout"] == 0


def test_tpp_demotion_watermark_keeps_more_dram_free():
    kw = dict(dram="32MiB", slow="128MiB", tenants=[
        {"name": "grow", "kind": "task", "footprint": "120MiB", "prefault": False, "workload": {"type": "zipf"}}])
    free = {}
    for scale in ("0%", "2%"):
        h = Host(small_scenario(kernel={"demote_scale_factor": scale}, **kw))
        t = h.tenants[0]
        for chunk in np.array_split(np.arange(t.npages), 30):
            touch(h, t, chunk)
            h._kswapd()
        free[scale] = h.free_pages(0)
    assert free["2%"] - free["0%"] >= int(0.02 * 32 * MiB / PAGE_SIZE) - 1


def test_recently_accessed_pages_get_a_second_chance_in_reclaim():
    h = Host(small_scenario(dram="16MiB", slow="64MiB", tenants=[
        {"name": "t", "kind": "task", "footprint": "8MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(t.npages))
    h.flags[t.start:t.end] &= ~np.uint8(1)                    # as if scanned: all A bits clear
    touch(h, t, np.arange(0, 1024))                            # the first 4 MiB used again
    h._shrink_node(0, 1024, direct=False)
    assert (h.node[t.start:t.start + 1024] == 0).all()
    assert (h.node[t.start + 1024:t.end] == 1).sum() >= 1024


def test_sw_young_pages_survive_reclaim_longer():
    h = Host(small_scenario(dram="16MiB", slow="64MiB", tenants=[
        {"name": "t", "kind": "task", "footprint": "8MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(t.npages))
    h.flags[t.start:t.end] &= ~np.uint8(1)                    # the daemon's scans cleared the A bits
    young = np.arange(0, t.npages, 2)                          # the daemon saw every other page hot
    res = h.move_pages(0, addr(t, young), np.zeros(young.size), MPOL_MF_MOVE | MPOL_MF_SW_YOUNG)
    assert (res.status == 0).all() and res.moved_pages == 0
    assert (h.flags[t.start + young] & PG_REFERENCED).all()
    h._shrink_node(0, 1024, direct=False)
    demoted = np.flatnonzero(h.node[t.start:t.end] == 1)
    assert demoted.size >= 1024
    assert (demoted % 2 == 1).all()                            # only unmarked pages went
    h.check_invariants()


def test_without_sw_young_reclaim_takes_pages_in_lru_order():
    h = Host(small_scenario(dram="16MiB", slow="64MiB", tenants=[
        {"name": "t", "kind": "task", "footprint": "8MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(t.npages))
    h.flags[t.start:t.end] &= ~np.uint8(1)
    h._shrink_node(0, 512, direct=False)
    assert (h.node[t.start:t.start + 512] == 1).all()          # the oldest (first touched) pages


def test_when_every_node_is_full_pages_are_swapped():
    h = Host(small_scenario(dram="16MiB", slow="16MiB", tenants=[
        {"name": "a", "kind": "task", "footprint": "24MiB", "prefault": False, "workload": {"type": "zipf"}},
        {"name": "t", "kind": "task", "footprint": "24MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    a, t = h.tenants
    for tenant in h.tenants:
        for chunk in np.array_split(np.arange(tenant.npages), 12):
            touch(h, tenant, chunk)
            h._kswapd()
            h.check_invariants()
    assert h.vmstat["pswpout"] > 0
    assert (h.node == NODE_SWAP).sum() == h.swap_used
    # touching a swapped page faults it back in
    swapped = np.flatnonzero(h.node[t.start:t.end] == NODE_SWAP)[:10]
    touch(h, t, swapped)
    assert (h.node[t.start + swapped] >= 0).all()
    assert h.vmstat["pswpin"] == 10 and t.stats.swapin_time > 0
    h.check_invariants()


def test_move_pages_reports_per_page_status_like_the_syscall():
    h = Host(small_scenario(dram="16MiB", slow="64MiB", tenants=[
        {"name": "t", "kind": "task", "footprint": "8MiB", "prefault": False, "pinned": "1%",
         "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(100))
    pinned = int(np.flatnonzero(h.flags[t.start:t.start + t.npages] & 0x20)[0])
    touch(h, t, [pinned])
    req = [addr(t, 5), addr(t, 6) + 123, addr(t, 1000), t.vma_start - 4096, addr(t, 7), addr(t, 8),
           addr(t, 9), addr(t, 9), addr(t, pinned), addr(t, 5)]
    nodes = [1, 1, 1, 1, 0, 9, 1, 1, 1, 0]
    before_used = h.node_used.copy()
    res = h.move_pages("t", req, nodes, MPOL_MF_MOVE)
    # page 5 moves to node 1 and, named again in a later run, back to 0; page 9 named twice in one run is
    # busy the second time (already isolated); page 7 is already on node 0
    assert res.status.tolist() == [1, 1, -errno.ENOENT, -errno.EFAULT, 0, -errno.EINVAL, 1, -errno.EBUSY,
                                   -errno.EBUSY, 0]
    assert res.moved_pages == 4 and res.moved_bytes == 4 * PAGE_SIZE and res.time > 0
    assert h.node[t.start + 5] == 0 and h.node[t.start + 6] == 1 and h.node[t.start + 9] == 1
    assert (h.node_used - before_used).tolist() == [-2, 2]
    h.check_invariants()


def test_move_pages_gives_enomem_when_the_target_is_full_and_changes_nothing_else():
    h = Host(small_scenario(dram="16MiB", slow="64MiB", tenants=[
        {"name": "a", "kind": "task", "footprint": "8MiB", "prefault": False, "workload": {"type": "zipf"}},
        {"name": "b", "kind": "task", "footprint": "40MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    a, b = h.tenants
    touch(h, a, np.arange(a.npages))
    touch(h, b, np.arange(b.npages))
    h._kswapd()
    on_slow = np.flatnonzero(h.node[b.start:b.end] == 1)
    res = h.move_pages("b", addr(b, on_slow), np.zeros(on_slow.size))
    ok = res.status == 0
    assert (res.status[~ok] == -errno.ENOMEM).all() and (~ok).any()
    assert h.free_pages(0) >= h.wmark_min[0]
    assert h.vmstat["pgpromote_success"] == ok.sum()
    h.check_invariants()


def test_move_pages_rejects_bad_flags_and_unknown_tenants_without_changes():
    h = Host(small_scenario())
    with pytest.raises(ValueError):
        h.move_pages(0, [h.tenants[0].vma_start], [1], 1 << 12)
    with pytest.raises(KeyError):
        h.move_pages("nobody", [0], [1])
    assert h.vmstat["pgmigrate_success"] == 0


def test_pages_moved_back_and_forth_count_as_ping_pong():
    h = Host(small_scenario(tenants=[{"name": "t", "kind": "task", "footprint": "8MiB", "prefault": False,
                                      "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(10))
    a = addr(t, np.arange(10))
    h.move_pages(0, a, np.ones(10))
    h.move_pages(0, a, np.zeros(10))
    h.move_pages(0, a[:4], np.ones(4))
    assert t.stats.pingpong == 14
    assert t.stats.migrated_bytes == 24 * PAGE_SIZE


def test_thp_tenants_move_whole_2mib_pages():
    h = Host(small_scenario(tenants=[{"name": "t", "kind": "vm", "footprint": "32MiB", "page_size": "2MiB",
                                      "prefault": False, "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(4))
    assert h.node_used[0] == 4 * 512
    res = h.move_pages(0, [t.vma_start + (2 << 20) + 4096], [1])
    assert res.status.tolist() == [1] and res.moved_bytes == 2 << 20
    assert h.node_used.tolist() == [3 * 512, 512]
    h.check_invariants()


def test_a_scenario_with_all_memory_in_dram_runs_at_dram_speed():
    s = small_scenario(dram="256MiB", slow="64MiB")
    r = simulate(s)
    t = r.tenants[0]
    assert t.dram_share == 1.0 and t.slowdown == pytest.approx(1.0)
    assert t.oracle_share == pytest.approx(1.0)
    assert t.all_slow_slowdown == pytest.approx(305 / 80 * 0.9 + 90 / 80 * 0.1, rel=0.05)


@pytest.mark.parametrize("workload", [
    {"type": "hotset", "samples": 4096},
    # the hot set moves mid-epoch, and drift's ranking rotates every tick: the per-epoch oracle must rank by
    # the epoch's sum of distributions, not the one at its middle tick, to stay above the static oracle
    {"type": "hotset", "samples": 4096, "move_every": "2.5s"},
    {"type": "drift", "samples": 4096, "drift": "2%/s"},
])
def test_oracles_bound_the_kernel_on_a_tight_host(workload):
    s = small_scenario(dram="32MiB", slow="128MiB", tenants=[
        {"name": "vm0", "footprint": "96MiB", "workload": workload}])
    r = simulate(s)
    t = r.tenants[0]
    assert t.dram_share <= t.oracle_share + 1e-9
    assert t.static_oracle_share <= t.oracle_share * (1 + 1e-6)
    assert 0.0 < t.dram_share < 1.0
    assert 1.0 < t.slowdown < t.all_slow_slowdown


settings.register_profile("default", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@st.composite
def scenarios(draw, tierings=()):
    """Random small hosts; with `tierings`, one of those kernel tiering settings, half-second ticks and a run
    long enough for several NUMA-balancing scans."""
    dram = draw(st.sampled_from([16, 32]))
    slow = draw(st.sampled_from([16, 32, 64]))
    swap = draw(st.sampled_from([0, 16, 128]))
    n = draw(st.integers(1, 3))
    tenants = []
    budget = dram + slow + swap
    for i in range(n):
        huge = draw(st.booleans())
        fp = draw(st.integers(1, max(1, budget // (2 * n) // 16))) * 16
        tenants.append({"name": f"t{i}", "kind": draw(st.sampled_from(["vm", "task"])), "footprint": f"{fp}MiB",
                        "page_size": "2MiB" if huge else "4KiB", "prefault": draw(st.booleans()),
                        "pinned": draw(st.sampled_from(["0%", "5%"])),
                        "workload": {"type": draw(st.sampled_from(["zipf", "hotset", "scan+hot", "phases"])),
                                     "samples": 512}})
    sizes = [int(t["footprint"][:-3]) for t in tenants]
    assume(sum(sizes) <= budget and max(sizes) <= dram + slow)
    kernel = {"swap": f"{swap}MiB", "zonelist": draw(st.sampled_from(["separate", "unified"])),
              "demotion_enabled": draw(st.booleans()),
              "demote_scale_factor": draw(st.sampled_from(["0%", "2%"]))}
    timing = {"duration": "1s"}
    if tierings:
        kernel["tiering"] = draw(st.sampled_from(tierings))
        timing = {"tick": "500ms", "epoch": "500ms", "duration": "4s"}
    return small_scenario(dram=f"{dram}MiB", slow=f"{slow}MiB", tenants=tenants, kernel=kernel,
                          seed=draw(st.integers(0, 1000)), **timing)


@given(scenarios(), st.integers(0, 2**31))
def test_invariants_hold_after_every_tick_and_every_move(scenario, seed):
    h = Host(scenario)
    rng = np.random.default_rng(seed)
    h.boot()
    h.check_invariants()
    for _ in range(scenario.nr_ticks):
        h.run_tick()
        h.check_invariants()
        t = h.tenants[rng.integers(len(h.tenants))]
        pages = rng.integers(-2, t.npages + 2, size=64)
        addrs = t.vma_start + pages * t.spec.page_size + rng.integers(0, 2, 64) * 8
        res = h.move_pages(t.index, np.where(pages < 0, 4096, addrs), rng.integers(-1, 3, 64),
                           int(rng.choice([MPOL_MF_MOVE, MPOL_MF_MOVE | MPOL_MF_SW_YOUNG])))
        assert res.status.shape == (64,)
        ok = res.status >= 0
        assert set(res.status[~ok].tolist()) <= {-errno.EINVAL, -errno.EFAULT, -errno.ENOENT, -errno.EBUSY,
                                                 -errno.ENOMEM}
        h.check_invariants()


def test_the_lag_one_oracle_equals_the_per_epoch_oracle_on_a_static_workload_after_the_first_epoch():
    s = small_scenario(dram="32MiB", slow="128MiB", tenants=[
        {"name": "vm0", "footprint": "96MiB", "workload": {"type": "zipf", "samples": 4096}}], duration="5s")
    t = simulate(s).tenants[0]
    # a static distribution: the previous epoch's choice is this epoch's, so only the first epoch differs
    assert t.dram_share - 1e-9 <= t.lag_oracle_share <= t.oracle_share + 1e-9
    assert t.lag_oracle_share >= 0.9 * t.oracle_share
    assert t.lag_cost_slowdown >= t.lag_oracle_slowdown >= t.oracle_slowdown - 1e-9


def test_the_lag_one_oracle_loses_what_a_moving_hot_set_costs_a_reactive_policy_and_pays_for_its_moves():
    s = small_scenario(dram="32MiB", slow="128MiB", tenants=[
        {"name": "vm0", "footprint": "96MiB",
         "workload": {"type": "hotset", "samples": 4096, "move_every": "500ms"}}])
    r = simulate(s)
    t = r.tenants[0]
    # the hot set moves every epoch: last epoch's hottest pages are this epoch's cold ones
    assert t.lag_oracle_share < 0.6 * t.oracle_share
    assert t.lag_cost_slowdown > t.lag_oracle_slowdown > t.oracle_slowdown
    assert r.lag_oracle_share == pytest.approx(t.lag_oracle_share)
    assert r.lag_cost_slowdown == pytest.approx(t.lag_cost_slowdown)


def _oldest_by_scan(h, nid, lst, k):
    """The reference for Host._lru_oldest: node nid's pages on the list, by lru_seq, from every page."""
    want = 8 if lst else 0                                     # PG_ACTIVE
    on = np.flatnonzero((h.node == nid) & ((h.flags & h.LRU_LISTED) == want))
    return on[np.argsort(h.lru_seq[on], kind="stable")][:k]


def test_lru_lists_from_the_log_are_the_oldest_pages_of_every_list():
    """The LRU log (and its cursors, compaction, rebuilds after boot and churn) gives each node's inactive
    and active lists oldest first, as a sort of every page's lru_seq would, and its counts stay exact, on a
    host that reclaims, swaps, promotes (TPP activates), pins and has 4 KiB and 2 MiB tenants."""
    from pagetide.agent import churn
    from pagetide.agent.scenario import parse_tenant
    h = Host(small_scenario(dram="16MiB", slow="16MiB", kernel={"swap": "32MiB", "tiering": {"mode": "tpp"}},
                            tenants=[
        {"name": "z", "kind": "vm", "footprint": "16MiB", "pinned": "3%",
         "workload": {"type": "zipf", "samples": 512}},
        {"name": "h", "kind": "task", "footprint": "12MiB", "prefault": False,
         "workload": {"type": "hotset", "samples": 512, "move_every": "300ms"}},
        {"name": "g", "kind": "vm", "footprint": "8MiB", "page_size": "2MiB",
         "workload": {"type": "zipf", "samples": 64}}]))
    h.boot()
    assert h._lru_log is None                                  # dropped after boot
    h.lru_clock = LRU_SEQ_LIMIT - 3                            # the next _lru_add renumbers (building the log)
    compact, compacted = h._lru_compact, []
    h._lru_compact = lambda: (compacted.append(1), compact())[1]
    checked = 0
    for tick in range(26):
        if tick == 12:
            churn.add_tenant(h, parse_tenant({"name": "new", "footprint": "6MiB", "workload": {"type": "zipf"}},
                                             list(h.scenario.nodes), key="tenant"))
        if tick == 19:
            churn.remove_tenant(h, "h")
        h.run_tick()
        h.check_invariants()
        for nid in range(h.nr_nodes):
            for lst in (0, 1):
                for k in (1, 37, int(h.lru_count[nid, lst])):
                    ref = _oldest_by_scan(h, nid, lst, k)
                    assert ref.size == min(k, h.lru_count[nid, lst])
                    assert np.array_equal(h._lru_oldest(nid, lst, k), ref), (tick, nid, lst, k)
                    checked += ref.size
    assert h.vmstat["pswpout"] > 0 and h.vmstat["pgpromote_success"] > 0 and h.vmstat["pgdemote_kswapd"] > 0
    assert compacted and checked > 10_000 and h.lru_clock < LRU_SEQ_LIMIT // 2


@pytest.mark.parametrize("corrupt,message", [
    (lambda h, t: h.node_used.__setitem__(0, h.node_used[0] + 1), "node usage drifted"),
    (lambda h, t: h.node.__setitem__(t.start, 1 - h.node[t.start]), "node usage drifted"),
    (lambda h, t: setattr(h, "swap_used", h.swap_used + 1), "swap usage drifted"),
    (lambda h, t: setattr(t, "mapped", t.mapped - 1), "mapped count drifted"),
    (lambda h, t: h.lru_count.__setitem__((0, 0), h.lru_count[0, 0] + 1), "LRU list 0 counts drifted"),
    (lambda h, t: h.flags.__setitem__(t.start, h.flags[t.start] ^ PG_ACTIVE), "LRU list 0 counts drifted"),
])
def test_the_invariant_check_names_each_drifted_count(corrupt, message):
    h = Host(small_scenario(dram="16MiB", slow="16MiB", tenants=[
        {"name": "a", "kind": "task", "footprint": "24MiB", "prefault": False, "workload": {"type": "zipf"}}]))
    t = h.tenants[0]
    touch(h, t, np.arange(t.npages - 16))     # the last 16 pages never faulted
    h._kswapd()
    h.check_invariants()
    corrupt(h, t)
    with pytest.raises(AssertionError, match=message):
        h.check_invariants()
