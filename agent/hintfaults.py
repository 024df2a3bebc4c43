"""The NUMA hint-fault tracker (`host.tracker: hint_faults`): the slow tier's pages sampled as NUMA balancing
samples them, by unmapping them and counting the faults that follow; the DRAM pages by the seed's idle_pages
scans.

NUMA balancing (task_numa_work, change_prot_numa) makes a range of a task's PTEs PROT_NONE; the next access
to such a page takes a NUMA hint fault (do_numa_page), which restores the PTE: one fault per page per arming,
however often the page is touched after. Here, at each of the tracker's scans (nr_scans a period, the seed's
schedule), every present page on a slow node (CXL or PMEM) is armed; a sampled access to an armed page still
on a slow node (the host model's samples, handed over by `observe` after every tick) is a hint fault, which
disarms the page and counts one in its `refs`. So a slow page's refs is the number of scan intervals in which
it was touched -- the share of scans the seed's A-bit scans measure, through faults instead of A bits --
and the DRAM pages' refs come from the seed's idle_pages scans (test-and-clear of the A bits). Both are folded
with the seed's halving (agent/scanner.py), refs capped at the period's scans, so reports, levels and
candidate lists are the seed's and pagetide's policy reads them as it reads idle_pages.

Unlike the kernel, the tracker arms the whole slow tier at every scan rather than numa_balancing_scan_size
(256 MiB) per scan period (1 s at the least): finer than NUMA balancing, at a cost the model counts. It is
the kernel's own mechanism; on a host whose tiering mode is NUMA balancing (nbt, tpp) the model keeps the
two samplings apart, as if the tracker had PTEs of its own.

Cost (`cost_seconds`, host CPU):
- each hint fault HINT_FAULT_COST_S, the 1 us of a minor fault agent/tiering.py charges NBT's faults
  (TieringSpec.hint_fault_cost); the model charges it to the tracker's host CPU only, not to the faulting
  workload's access time (agent/accounting.py's stall accounting is the tiering mode's);
- arming: change_prot_numa's walk of the armed pages, ASSUMED at the idle_pages walk's 134 M pages/s (both
  walk page tables PTE by PTE; no published per-PTE figure for change_prot_numa);
- the idle_pages walk of DRAM-resident pages at 134 M pages/s (as agent/chmu.py charges its DRAM walk).
State: the seed's two bytes per page and one armed flag.
"""

from __future__ import annotations

import numpy as np

from pagetide.agent.chmu import dram_lookup, slow_lookup
from pagetide.agent.host import Host
from pagetide.agent.idle_pages import scan_fast
from pagetide.agent.scanner import KERNEL_WALK_PAGES_PER_S, Scanner, fold
from pagetide.agent.tiering import TieringSpec

__all__ = ["HintFaultTracker", "HINT_FAULT_COST_S"]

HINT_FAULT_COST_S = TieringSpec.hint_fault_cost      # 1 us: a NUMA hint fault is a minor fault


class HintFaultTracker(Scanner):
    """NUMA hint faults on the slow tier's pages (armed at every scan), idle_pages scans on DRAM's."""
    name = "hint_faults"

    def __init__(self, host: Host, nr_scans: int = 5):
        super().__init__(host, nr_scans)
        self.armed = np.zeros(host.nr_pages, dtype=bool)      # PROT_NONE: the next access faults
        self.pages_armed = 0                                   # so far, every arming
        self.dram_pages_walked = 0
        self._faults_before = 0                                # faults of the armings before the last
        self._last_armed = 0                                   # pages the last arming armed

    @property
    def faults(self) -> int:
        """Hint faults so far: a fault is the one way an armed page is disarmed, so the last arming's are the
        pages it armed that are no longer armed (counted so, a tick needs no per-page uniqueness)."""
        return self._faults_before + self._last_armed - int(np.count_nonzero(self.armed))

    def _settle(self) -> None:
        self._faults_before, self._last_armed = self.faults, 0
        self.armed[:] = False

    def relayout(self, change) -> None:
        """Armed pages that survive stay armed; the faults so far are counted first."""
        armed = self.armed.copy()
        self._settle()
        super().relayout(change)
        self.armed = change.pages(armed, False)
        self._last_armed = int(np.count_nonzero(self.armed))

    def scan(self) -> None:
        """The idle_pages walk (A bits of DRAM pages into refs), then every present slow page armed."""
        h = self.host
        on_dram, on_slow = dram_lookup(h)[h.node], slow_lookup(h)[h.node]
        for t in h.tenants:
            rep = scan_fast([h.vma(t)], self.open_flags)[0]
            self.refs[t.start:t.end] += rep.accessed & on_dram[t.start:t.end]
        self.dram_pages_walked += int(np.count_nonzero(on_dram))
        self._settle()
        self.armed = on_slow
        self._last_armed = int(np.count_nonzero(self.armed))
        self.pages_armed += self._last_armed
        self.scans_in_period += 1

    def observe(self, tick_samples) -> None:
        """A tick's sampled accesses: the first to an armed page still on a slow node is its hint fault."""
        h = self.host
        on_slow = slow_lookup(h)
        for t, pages in zip(h.tenants, tick_samples):
            slots = t.start + pages
            hit = slots[self.armed[slots] & on_slow[h.node[slots]]]
            self.armed[hit] = False
            self.refs[hit] += 1                # a page sampled twice is incremented once (buffered fancy add)

    def cost_seconds(self) -> float:
        """Host CPU so far: the hint faults, the arming walks and the DRAM pages' idle_pages walks."""
        return (self.faults * HINT_FAULT_COST_S
                + (self.pages_armed + self.dram_pages_walked) / KERNEL_WALK_PAGES_PER_S)

    def period_heat(self) -> np.ndarray:
        """The seed's fold, refs capped at the period's scans (a slow page armed at the last scan of the period
        before may fault once more than the period has scans)."""
        n = max(1, self.scans_in_period)
        return fold(self.heat, np.minimum(self.refs, n), n)
