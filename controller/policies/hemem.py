"""The "hemem" policy: HeMem (SOSP'21) -- per-page sample counts against fixed hot thresholds, all counts
halved whenever one reaches the cooling threshold; hot pages promoted, cold ones demoted only to make room
for them. The semantics follow the paper and its defaults; the code is pagetide's own."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pagetide.common.options import Option, integer
from pagetide.controller.policies.base import PlacementPolicy, Plan, PolicyParams, VmPolicy, validate_params
from pagetide.controller.policies.placement import PageCounts, hot_and_cold_moves, listed_samples, resolve_policies
from pagetide.controller.policies.view import HostView

__all__ = ["HeMem"]


class HeMem(PlacementPolicy):
    """HeMem's policy (Raybuck et al., SOSP'21): PEBS samples counted per page, fixed hot thresholds, cooling by
    halving (DESIGN.md section 4).

    Samples. HeMem counts PEBS samples (about one per 5000 loads/stores) per page. On a host whose tracker is
    `pebs` (the bench's HeMem hosts) the report's heat is the period's samples and HeMem counts those; on an
    idle_pages host the agent reports A-bit scans instead, and a page at refs level L (found accessed in L of
    15 scans, 0..15, the agent's heat >> 4) is taken to have yielded `samples_per_level * L` read samples this
    round. Pages not in the report's candidate lists have none. So a page accessed in every scan gets 15 samples a round -- at HeMem's sampling
    rate that stands for >= 75 000 accesses -- and with the defaults a page at level >= 8 is hot in its first
    round, one at 4..7 in its second unless cooling intervenes. An A bit saturates at one access per scan, so
    the mapping keeps the order of pages and how fast counts cross the thresholds, not HeMem's absolute
    rates. The agent's report carries no dirty bit, so every sample is a read; the write counter and its
    threshold are kept (see `observe`) for a report that does.

    Per round and VM: counts += samples; while any page's read or write count is >= `cooling_threshold`,
    every count of the VM is halved (HeMem advances a global cooling clock when a count reaches the
    threshold and halves counts lazily as pages are next sampled; halving at once gives the same counts at
    decision time). Then a page is hot at >= `hot_read_threshold` reads or >= `hot_write_threshold` writes.
    Hot pages on the slow tier are promoted, highest count first; a promotion takes free DRAM above the
    high watermark or, when there is none, the room of a cold DRAM page, demoted lowest count first --
    HeMem demotes only when DRAM is needed. HeMem's own migration limit (10 GB per 10 ms) is far above any
    host's, so `params.max_bytes_per_round` is the limit.

    Defaults are the paper's: hot at 8 read or 4 write samples, cooling at 18.

    Approximations. HeMem is a per-process library: here each VM has its own counters and cooling clock,
    and the VMs share the host's DRAM and migration limit (promotions hottest first across VMs). HeMem
    manages 2 MiB pages; here a page is whatever the tenant reports (often 4 KiB), which gives HeMem a finer
    placement than it had, and each page's samples come from its own level rather than 512 pages' worth.
    State: per VM, the counters of every page with a non-zero count; one object per host."""
    name = "hemem"
    OPTIONS = {
        "hot_read_threshold": Option(integer(1), 8, "a page is hot at this many read samples"),
        "hot_write_threshold": Option(integer(1), 4, "a page is hot at this many write samples"),
        "cooling_threshold": Option(integer(2), 18, "a VM's counts are halved once one reaches this"),
        "samples_per_level": Option(integer(1), 1, "samples a page at refs level L yields per round, per level"),
    }

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.hot_read_threshold = self.options["hot_read_threshold"]
        self.hot_write_threshold = self.options["hot_write_threshold"]
        self.cooling_threshold = self.options["cooling_threshold"]
        self.samples_per_level = self.options["samples_per_level"]
        if self.cooling_threshold <= max(self.hot_read_threshold, self.hot_write_threshold):
            # counts would be halved before any page could become hot
            raise self.invalid(f"cooling_threshold {self.cooling_threshold!r} must exceed hot_read_threshold "
                               f"{self.hot_read_threshold!r} and hot_write_threshold {self.hot_write_threshold!r}")
        self.counts = PageCounts(2)               # per page: read samples, write samples
        self.coolings: dict[str, int] = {}        # per VM: how many times its counts were halved

    def samples(self, tenant: str, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(read samples, write samples) of addresses, 0 for pages without samples."""
        counts, _ = self.counts.get(tenant, addresses)
        return counts[:, 0], counts[:, 1]

    def is_hot(self, reads: np.ndarray, writes: np.ndarray) -> np.ndarray:
        return (reads >= self.hot_read_threshold) | (writes >= self.hot_write_threshold)

    def observe(self, tenant: str, addresses: np.ndarray, reads: np.ndarray, writes: np.ndarray) -> None:
        """Add one round's samples of distinct addresses, then cool the VM's counts while one is at or above
        the cooling threshold."""
        counts, _ = self.counts.get(tenant, addresses)
        counts += np.stack([np.asarray(reads, np.int64), np.asarray(writes, np.int64)], axis=1)
        self.counts.put(tenant, addresses, counts)
        top, times = self.counts.max(tenant), 0
        while top >= self.cooling_threshold:
            top >>= 1
            times += 1
        self.counts.halve(tenant, times)
        self.coolings[tenant] = self.coolings.get(tenant, 0) + times

    def place(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_params(params, view)
        resolve_policies(view, policies)           # validated; HeMem has no per-VM policy
        topo = view.topology
        names = {t.name for t in view.tenants}
        self.counts.retain(names)
        self.coolings = {k: c for k, c in self.coolings.items() if k in names}

        ups, downs = [], []
        for v, t in enumerate(view.tenants):
            addr, samples, node = listed_samples(view, t, self.samples_per_level)
            self.observe(t.name, addr, samples, np.zeros(addr.size, np.int64))
            reads, writes = self.samples(t.name, addr)
            hot = self.is_hot(reads, writes)
            on_dram = topo.fast_pos[node] >= 0
            up, down = ~on_dram & hot, on_dram & ~hot
            ups.append((np.full(int(up.sum()), v), addr[up], node[up], (reads + writes)[up]))
            downs.append((np.full(int(down.sum()), v), addr[down], node[down], (reads + writes)[down]))
        return hot_and_cold_moves(view, params, ups, downs)
