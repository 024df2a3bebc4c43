"""pagetide's idle swaps (pagetide.controller.policies.thrash and plan_host's idle_swaps): which idle pages an
idle swap may take, when a VM's idle swaps are stopped and released, and the bounds on what is remembered."""

import numpy as np
import pytest

from pagetide.controller.policies import PolicyParams
from pagetide.controller.policies.pagetide import IDLE_SWAP_BIN, POOL_ROUNDS, PagetidePolicy, plan_host
from pagetide.controller.policies.thrash import IdleAge, ThrashGuard

from test_policy import MiB, NO_RESERVE, PAGE, moved, one_socket

E = np.zeros(0, np.uint64)


def addrs(*xs):
    return np.array(xs, dtype=np.uint64)


# ----------------------------------------------------------------------------------------------- ThrashGuard

def test_a_vm_whose_idle_swaps_are_moved_back_is_throttled():
    g = ThrashGuard(horizon=4, max_reversal=0.25, min_pages=4, hold=2)
    promoted, demoted = np.arange(100, 110, dtype=np.uint64), np.arange(200, 210, dtype=np.uint64)
    g.end_round({"vm0": (promoted, demoted)}, {"vm0": (promoted, demoted)})
    assert not g.throttled("vm0")
    # next round the plan demotes 3 of the pages the idle swaps promoted and promotes 2 they demoted: 5 of 20
    g.end_round({"vm0": (demoted[:2], promoted[:3])}, {})
    assert g.reversal_rate("vm0") == pytest.approx(5 / 20)
    assert g.throttled("vm0")


def test_a_vm_whose_idle_swaps_stay_put_is_not_throttled():
    g = ThrashGuard(horizon=4, max_reversal=0.25, min_pages=4, hold=2)
    for r in range(6):
        p = np.arange(1000 * r, 1000 * r + 10, dtype=np.uint64)
        d = p + np.uint64(500)
        # each round's idle swaps move new pages; none an earlier round moved is moved back
        g.end_round({"vm0": (p, d)}, {"vm0": (p, d)})
        assert not g.throttled("vm0")
    assert g.reversal_rate("vm0") == 0.0


def test_a_throttled_vm_is_released_after_a_quiet_while():
    g = ThrashGuard(horizon=2, max_reversal=0.25, min_pages=2, hold=3)
    p, d = addrs(1, 2, 3, 4), addrs(11, 12, 13, 14)
    g.end_round({"vm0": (p, d)}, {"vm0": (p, d)})
    g.end_round({"vm0": (d, p)}, {})                # all 8 moved back
    states = []
    for _ in range(6):                               # quiet rounds: nothing moves
        states.append(g.throttled("vm0"))
        g.end_round({"vm0": (E, E)}, {})
    # the reversals leave the 2-round window after the round they were seen; then `hold` rounds, then free
    assert states == [True, True, True, True, False, False]


def test_the_guard_remembers_at_most_max_pages_per_vm_as_an_even_sample():
    g = ThrashGuard(horizon=4, max_pages=64, min_pages=1)
    for r in range(10):
        p = np.arange(10_000 * r, 10_000 * r + 1000, dtype=np.uint64)
        g.end_round({"vm0": (p, p + np.uint64(5000))}, {"vm0": (p, p + np.uint64(5000))})
        h = g.vms["vm0"]
        assert sum(x.promoted.size + x.demoted.size for x in h.rounds) <= 64
        assert len(h.rounds) <= 4
    kept = g.vms["vm0"].rounds[-1].promoted
    assert kept.size == 8 and kept.min() < 10_000 * 9 + 200 and kept.max() > 10_000 * 9 + 800   # spread out
    # moving back the sampled pages still reads as a rate of 1 over what was remembered
    g.end_round({"vm0": (g.vms["vm0"].rounds[-1].demoted, kept)}, {})
    assert g.throttled("vm0")


def test_the_guard_forgets_a_vm_that_left_the_host():
    g = ThrashGuard(horizon=4, min_pages=1, hold=5)
    p, d = addrs(1, 2), addrs(3, 4)
    g.end_round({"vm0": (p, d), "vm1": (E, E)}, {"vm0": (p, d)})
    g.end_round({"vm0": (d, p), "vm1": (E, E)}, {})
    assert g.throttled("vm0")
    g.end_round({"vm1": (E, E)}, {})
    assert "vm0" not in g.vms and not g.throttled("vm0")


def test_guard_bounds_are_checked():
    with pytest.raises(ValueError, match="max_reversal"):
        ThrashGuard(max_reversal=0)
    with pytest.raises(ValueError, match="horizon"):
        ThrashGuard(horizon=0)


# -------------------------------------------------------------------------------------------------- IdleAge

def test_idle_pages_that_stay_idle_are_offered_after_the_watch_window_and_their_own_rounds():
    age = IdleAge(rounds=2, window=3, max_wake=0.05)
    idle = np.arange(0, 100, dtype=np.uint64)
    offered = [age.update({"vm0": idle}).get("vm0") for _ in range(6)]
    # rounds 1-3: the window (3 comparisons, from round 2) is not full yet; from round 4 every page qualifies
    assert [o is None for o in offered] == [True, True, True, False, False, False]
    assert np.array_equal(offered[3], idle)


def test_a_vm_whose_idle_pages_keep_waking_gets_no_idle_swaps():
    age = IdleAge(rounds=0, window=3, max_wake=0.05)
    rng = np.random.default_rng(1)
    pages = np.arange(0, 1000, dtype=np.uint64)
    for _ in range(8):
        listed = np.sort(rng.choice(pages, 500, replace=False))   # a tail: which pages read heat 0 changes
        out = age.update({"vm0": listed})
        assert "vm0" not in out
    assert age.wake_rate("vm0") > 0.3


def test_pages_the_policy_demoted_or_that_fell_off_the_list_end_are_not_counted_as_woken():
    age = IdleAge(rounds=0, window=1, max_wake=0.0)
    age.update({"vm0": addrs(10, 20, 30, 40)})
    age.note_demoted({"vm0": addrs(20)})
    # 20 was demoted; 40 is above the new list's last address (lower pages took its place): neither woke
    out = age.update({"vm0": addrs(5, 10, 30)})
    assert age.wake_rate("vm0") == 0.0
    assert np.array_equal(out["vm0"], addrs(5, 10, 30))
    age.update({"vm0": addrs(5, 30)})            # 10 left while 30 stayed: woke
    assert age.wake_rate("vm0") == pytest.approx(1 / 3)


def test_a_page_that_wakes_starts_its_idle_age_again_and_a_vm_that_left_is_forgotten():
    age = IdleAge(rounds=2, window=1, max_wake=1.0)
    for _ in range(3):
        out = age.update({"vm0": addrs(1, 2, 3)})
    assert np.array_equal(out["vm0"], addrs(1, 2, 3))
    age.update({"vm0": addrs(1, 3)})
    out = age.update({"vm0": addrs(1, 2, 3)})
    assert np.array_equal(out["vm0"], addrs(1, 3))
    age.update({})
    assert age.since == {} and age.wakes == {}


# ------------------------------------------------------------------------------------------ idle swaps in plans

def idle_vm(warm_heat=40):
    """DRAM (16 MiB) full of never-touched pages (heat 0) and a little warm memory; 2 MiB of warm pages
    (bin 2 at heat 40) on PMEM, too cool for the 3-bin hysteresis against bin 0."""
    m = one_socket(dram=16 * MiB, wmark=0)
    idle, warm = 16 * MiB // PAGE, 2 * MiB // PAGE
    heat = np.concatenate([np.zeros(idle), np.full(warm, warm_heat)])
    node = np.concatenate([np.zeros(idle), np.ones(warm)])
    addr = m.add("vm0", heat, node)
    return m, addr[:idle], addr[idle:]


def test_idle_swaps_trade_long_idle_dram_pages_for_warm_slow_pages_the_hysteresis_keeps_out():
    m, idle, warm = idle_vm()
    view = m.view()
    assert moved(plan_host(view, {}, NO_RESERVE), "promote").size == 0       # the gap keeps bin 2 out
    plan = plan_host(view, {}, NO_RESERVE, idle_swaps={"vm0": idle[:100]})
    assert np.array_equal(np.sort(moved(plan, "promote")), warm[:100])
    assert np.array_equal(np.sort(moved(plan, "demote")), idle[:100])       # only the pages offered


def test_idle_swaps_do_not_promote_a_page_seen_in_one_scan_only():
    m, idle, _ = idle_vm(warm_heat=24)          # bin 1: one touch in one scan of five
    assert IDLE_SWAP_BIN == 2
    plan = plan_host(m.view(), {}, NO_RESERVE, idle_swaps={"vm0": idle})
    assert plan.promote_bytes == 0 and plan.demote_bytes == 0


def test_idle_swaps_leave_a_frozen_vm_alone():
    from pagetide.controller.policies import VmPolicy
    m, idle, _ = idle_vm()
    plan = plan_host(m.view(), {"vm0": VmPolicy(migrate=False)}, NO_RESERVE, idle_swaps={"vm0": idle})
    assert plan.promote_bytes == 0 and plan.demote_bytes == 0


def test_the_policy_starts_idle_swaps_once_the_idle_pages_have_been_watched_and_stops_them_when_off():
    rounds_until_swap = {}
    for options in ({}, {"idle_swaps": False}, {"idle_swaps": False, "narrow_idle": False}):
        m, _, _ = idle_vm()
        policy = PagetidePolicy(**options)
        first = None
        for r in range(8):
            plan = policy.place(m.view(), {}, NO_RESERVE)
            m.apply(plan)
            if plan.promote_bytes and first is None:
                first = r + 1
        rounds_until_swap[str(options)] = first
    # watched for its window (4 comparisons: rounds 2-5), and the pages idle 2 rounds: swaps from round 5;
    # without idle swaps, the narrow swaps of a steady idle pool take the same pairs once the pool has been
    # watched POOL_ROUNDS rounds (its footprint unknown, so not resident in full), and without those none
    assert rounds_until_swap == {"{}": 5, "{'idle_swaps': False}": POOL_ROUNDS,
                                 "{'idle_swaps': False, 'narrow_idle': False}": None}
