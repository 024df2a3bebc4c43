"""The CXL hotness-monitoring tracker (`host.tracker: chmu`): a CXL 3.2 memory device's Hotness Monitoring
Unit (CHMU) for the pages on slow nodes, fused with the seed's idle_pages scans for the pages on DRAM.

A CHMU counts, inside the device, the accesses the device itself serves, per unit of memory, and once per
epoch the host reads its hot list: at most `hot_list` units (`host.tracker_options: {hot_list: 4096}`,
1,024 .. 65,536 per device) whose count reached `threshold` (default 16 accesses), hottest first. Here the
unit is a page and every node that is not DRAM (CXL or PMEM) is a device with its own list; the counters
count the host model's sampled accesses to pages while they sit on that device (each standing for the
workload's `accesses_per_sample`), handed over by `observe` after every tick.

The device says nothing about DRAM pages, so the tracker fuses two sources on one scale, the seed's refs
level (0..15, the share of a period's scans that would find the page accessed):
- pages on a slow node: promotion candidates ranked by the CHMU. A page in its device's hot list with a
  accesses in the epoch gets the level its rate implies, 15 (1 - exp(-a / nr_scans)) -- no binomial noise of
  five A-bit samples, which is what ranks the pages near the DRAM boundary; a page not in the list gets 0
  (the device reported nothing of it: below the threshold, or beyond the list's length);
- pages on DRAM: demotion candidates ranked by the seed's idle_pages scans (agent/scanner.py, unchanged).
Both are folded with the seed's halving into one heat byte, so reports, histograms and candidate lists are
the seed's and a policy compares a slow page and a DRAM page level for level (a saturated DRAM page and a
hot CXL page both sit at 15, so the two sources never ping-pong a page between them).

Cost (`cost_seconds`): the idle_pages walk of DRAM-resident pages only (the page_idle bitmap over DRAM's
page frames; the model test-and-clears every page's A bit, as the seed does, but charges DRAM's), at the
kernel's 134 M pages/s, plus HOT_LIST_ENTRY_COST_S per hot-list entry read -- ASSUMED, 10 ns (an MMIO read of
a few 8-byte entries per cache line; no published figure): the counting is the device's, near zero host
CPU. State: the seed's two bytes per page plus the device counters, four bytes per page in the model (added to in
place each tick; read saturated at 65,535 sampled accesses a period).
"""

from __future__ import annotations

import numpy as np

from pagetide.agent.host import Host
from pagetide.agent.scanner import HEAT_ONE, KERNEL_WALK_PAGES_PER_S, MAX_LEVEL, Scanner, fold_target

__all__ = ["ChmuTracker", "HOT_LIST_ENTRY_COST_S", "dram_lookup", "slow_lookup"]

HOT_LIST_ENTRY_COST_S = 10e-9       # assumed: host CPU per hot-list entry read


def dram_lookup(host: Host) -> np.ndarray:
    """Per node id, then -2 (swapped out) and -1 (not present) last: whether a page there is on DRAM (index it
    with host.node)."""
    return np.append(host.is_fast, [False, False])


def slow_lookup(host: Host) -> np.ndarray:
    """The same for a slow node (CXL, PMEM): a present page that is not on DRAM."""
    out = ~dram_lookup(host)
    out[-2:] = False
    return out


class ChmuTracker(Scanner):
    """CXL CHMU hot lists rank the pages on slow nodes, idle_pages scans the DRAM pages; one fused heat."""
    name = "chmu"
    PAGE_ARRAYS = Scanner.PAGE_ARRAYS + ("device_count",)

    def __init__(self, host: Host, nr_scans: int = 5, hot_list: int = 4096, threshold: int = 16):
        super().__init__(host, nr_scans)
        self.hot_list = int(hot_list)
        self.threshold = int(threshold)
        self.device_count = np.zeros(host.nr_pages, dtype=np.int32)    # sampled accesses this epoch, slow pages
        self.dram_pages_walked = 0
        self.entries_read = 0
        self.hot_listed = np.zeros(0, dtype=np.int64)                   # the last epoch's hot lists' pages

    def scan(self) -> None:
        super().scan()
        self.dram_pages_walked += int(np.count_nonzero(dram_lookup(self.host)[self.host.node]))

    def observe(self, tick_samples) -> None:
        """The device counts the accesses it serves: sampled accesses to pages on slow nodes (added in place)."""
        h = self.host
        on_slow = slow_lookup(h)
        for t, pages in zip(h.tenants, tick_samples):
            slots = t.start + pages
            slots = slots[on_slow[h.node[slots]]]
            if slots.size:
                np.add.at(self.device_count, slots, np.ones(slots.size, np.int32))    # add.at's fast path

    def cost_seconds(self) -> float:
        """Host CPU so far: the DRAM pages' idle_pages walks plus the hot-list entries read."""
        return self.dram_pages_walked / KERNEL_WALK_PAGES_PER_S + self.entries_read * HOT_LIST_ENTRY_COST_S

    def hot_lists(self) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's hot lists of every device together: (page slots, accesses), each device's at most
        `hot_list` units at or above `threshold`, hottest first within a device."""
        h = self.host
        counted = np.flatnonzero(self.device_count)                  # ascending, as every page's order was
        starts = np.array([t.start for t in h.tenants], dtype=np.int64)
        weight = np.array([0.0] + [t.workload.accesses_per_sample for t in h.tenants])
        owner = np.searchsorted(starts, counted, side="right")        # 1 + the tenant a counted page is of
        acc_all = np.minimum(self.device_count[counted], 65535) * weight[owner]
        node = h.node[counted]
        out_p, out_a = [], []
        for nid in np.flatnonzero(~h.is_fast):
            sel = np.flatnonzero((node == nid) & (acc_all >= self.threshold))
            cand, acc = counted[sel], acc_all[sel]
            if cand.size > self.hot_list:
                keep = np.argpartition(-acc, self.hot_list - 1)[:self.hot_list]
                cand, acc = cand[keep], acc[keep]
            order = np.argsort(-acc, kind="stable")
            out_p.append(cand[order])
            out_a.append(acc[order])
        if not out_p:
            return np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(out_p), np.concatenate(out_a)

    def period_heat(self) -> np.ndarray:
        """DRAM pages at their idle_pages level, slow pages at their hot-list rate (0 when not listed), folded
        with the seed's halving."""
        h = self.host
        n = max(1, self.scans_in_period)
        target = ((self.refs.astype(np.uint16) * MAX_LEVEL + n // 2) // n) * HEAT_ONE     # the seed's level
        target[slow_lookup(h)[h.node]] = 0                                              # pages on slow nodes
        pages, acc = self.hot_lists()
        level = MAX_LEVEL * -np.expm1(-acc / self.nr_scans)
        target[pages] = np.rint(level * HEAT_ONE).astype(np.uint16)
        self.entries_read += int(pages.size)
        self.hot_listed = pages
        return fold_target(self.heat, target)

    def end_period(self) -> None:
        super().end_period()
        self.device_count[:] = 0
