"""The "memtis" policy: MEMTIS (SOSP'23) -- per-page access counts in 16 log2 bins, the hot bin fitted to the
DRAM budget minus a 3% promotion watermark, a warm band below it that stays put, counts halved
periodically. The semantics follow the paper and its defaults; the code is pagetide's own."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pagetide.common.options import Option, integer, ratio
from pagetide.controller.policies.base import PlacementPolicy, Plan, PolicyParams, VmPolicy, validate_params
from pagetide.controller.policies.placement import (
    PageCounts, bin_samples, hot_and_cold_moves, listed_samples, resolve_policies, tenant_bytes, usable_dram,
)
from pagetide.controller.policies.view import HEAT_BINS, HostView

__all__ = ["Memtis"]


class Memtis(PlacementPolicy):
    """MEMTIS's policy (Lee et al., SOSP'23): per-page access counts in a log2 histogram, the hot threshold
    fitted to the fast tier, a warm band, periodic cooling (DESIGN.md section 4).

    Counts. MEMTIS counts PEBS samples per page: on a `pebs` host the report's samples, else, as for `HeMem`,
    a page at refs level L yields `samples_per_level * L` samples a round. A page's bin is floor(log2(count + 1)), capped at 15: bin 0
    holds pages never sampled, bin b counts of 2^b - 1 .. 2^(b+1) - 2. Every `cooling_rounds` rounds all
    counts are halved (MEMTIS cools every 2M samples and adapts its thresholds every 100k, 20 adaptations
    per cooling; here the thresholds adapt every round, so the default cools every 20 rounds). Between
    coolings a page at constant level L holds (N + p + 1) * L, N = cooling_rounds, p = rounds since the last
    cooling, so a page first seen in the report starts there: the agent's heat already carries its history.

    The host's VMs form one memcg (MEMTIS's unit): one histogram, one threshold, one cooling clock. The
    histogram covers every page of every VM: the report's per-bin page counts give each level's pages the
    count a page at that level holds, in bytes (VMs may mix 4 KiB and 2 MiB pages). Candidate pages carry
    their own tracked counts, which lag a change of level until the next cooling, as MEMTIS's do.

    Threshold (MEMTIS's adaptation): walking bins from 15 down, the hot bin is the coldest one such that the
    bytes in it and above fit in the DRAM budget minus the promotion watermark -- the fast tier MEMTIS keeps
    free for promotions, `promotion_watermark` (3%) of the budget; the budget is the DRAM the host's tenants
    can hold (capacity above the high watermarks, minus memory held outside the view). It is never below
    bin 1 (MEMTIS's minimum hot threshold), never falls between coolings and falls by at most one bin at a
    cooling. If the hot bytes use less than 75% of what fits, the bin below is the warm band (else there is
    none): warm pages stay where they are. Pages never sampled (bin 0) are never warm -- without that, a
    DRAM full of idle pages would block every promotion when everything sampled fits.

    Moves: hot slow pages promoted, highest count first, into free DRAM above the high watermark or into
    the room of cold DRAM pages demoted lowest count first, within `params.max_bytes_per_round` (MEMTIS
    migrates every 500 ms at a rate limit; the host's limit stands in for it).

    Not modelled: MEMTIS's huge-page splitting (pages are the tenant's), its sampling-rate control, and
    the extra cooling on memcg growth. State: the tracked counts, the round, the thresholds; one object
    per host."""
    name = "memtis"
    OPTIONS = {
        "cooling_rounds": Option(integer(1), 20, "rounds between two halvings of every count"),
        "promotion_watermark": Option(ratio(), 0.03, "share of the DRAM budget kept free for promotions, below 1"),
        "samples_per_level": Option(integer(1), 1, "samples a page at refs level L yields per round, per level"),
    }

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.cooling_rounds = self.options["cooling_rounds"]
        if not self.options["promotion_watermark"] < 1:
            raise self.invalid(f"must be below 100%, got {self.options['promotion_watermark']!r}",
                               "promotion_watermark")
        self.promotion_watermark = float(self.options["promotion_watermark"])
        self.samples_per_level = self.options["samples_per_level"]
        self.counts = PageCounts(1)
        self.round = 0
        self.coolings = 0
        self.hot_threshold = 1                     # MEMTIS's active threshold, a bin
        self.warm_threshold = 1
        self.hot_budget = 0                        # bytes the hot bins had to fit in, last round
        self.histogram = np.zeros(HEAT_BINS, dtype=np.int64)   # bytes per count bin, last round

    @staticmethod
    def count_bin(counts: np.ndarray) -> np.ndarray:
        """Histogram bin of access counts: floor(log2(count + 1)), at most 15."""
        _, exp = np.frexp(np.asarray(counts, dtype=np.float64) + 1)
        return np.minimum(exp.astype(np.int64) - 1, HEAT_BINS - 1)

    def access_counts(self, tenant: str, addresses: np.ndarray) -> np.ndarray:
        """Tracked access counts of addresses (0 for pages without samples)."""
        return self.counts.get(tenant, addresses)[0][:, 0]

    def steady_count(self, samples: np.ndarray, phase: int) -> np.ndarray:
        """The count of a page that has had `samples` a round for ever, `phase` rounds after a cooling."""
        return (self.cooling_rounds + phase + 1) * np.asarray(samples, dtype=np.int64)

    def fitted_bin(self, bin_bytes: np.ndarray, budget: int) -> tuple[int, int]:
        """(coldest bin whose bytes and all hotter bins' fit in `budget`, or 15 if even bin 15 does not;
        the bytes that fit)."""
        above = np.cumsum(bin_bytes[::-1])[::-1]          # above[b]: bytes in bins >= b
        fits = np.flatnonzero(above <= budget)
        if not fits.size:
            return HEAT_BINS - 1, 0
        return int(fits[0]), int(above[fits[0]])

    def place(self, view: HostView, policies: Mapping[str, VmPolicy], params: PolicyParams) -> Plan:
        validate_params(params, view)
        resolve_policies(view, policies)           # validated; MEMTIS has no per-VM policy
        topo = view.topology
        self.counts.retain({t.name for t in view.tenants})
        self.round += 1
        phase = (self.round - 1) % self.cooling_rounds
        cooled = self.round > 1 and phase == 0
        if cooled:
            for tenant in list(self.counts.tables):
                self.counts.halve(tenant)
            self.coolings += 1

        # the histogram over every page: each level's pages at the count a page at that level holds
        bins, dram = tenant_bytes(view)    # pages per level [tenant, level], DRAM bytes per tenant
        page_size = np.array([t.page_size for t in view.tenants], dtype=np.int64)
        level_bin = self.count_bin(self.steady_count(bin_samples(view, self.samples_per_level), phase))
        self.histogram = np.zeros(HEAT_BINS, dtype=np.int64)
        np.add.at(self.histogram, level_bin, (bins * page_size[:, None]).sum(axis=0))

        budget = usable_dram(view, dram)
        self.hot_budget = budget - int(self.promotion_watermark * budget)
        fitted, hot_bytes = self.fitted_bin(self.histogram, self.hot_budget)
        fitted = max(fitted, 1)
        if cooled:
            if fitted < self.hot_threshold and self.hot_threshold > 1:
                self.hot_threshold -= 1
        elif fitted > self.hot_threshold:
            self.hot_threshold = fitted
        need_warm = hot_bytes < 0.75 * self.hot_budget
        self.warm_threshold = max(1, self.hot_threshold - 1) if need_warm else self.hot_threshold

        ups, downs = [], []
        for v, t in enumerate(view.tenants):
            addr, samples, node = listed_samples(view, t, self.samples_per_level)
            counts, known = self.counts.get(t.name, addr)
            counts = counts[:, 0]
            # a page first seen starts where its level would have brought it by the end of the last round
            counts[~known] = self.steady_count(samples[~known], phase - 1)
            counts += samples
            self.counts.put(t.name, addr, counts)
            b = self.count_bin(counts)
            on_dram = topo.fast_pos[node] >= 0
            up, down = ~on_dram & (b >= self.hot_threshold), on_dram & (b < self.warm_threshold)
            ups.append((np.full(int(up.sum()), v), addr[up], node[up], counts[up]))
            downs.append((np.full(int(down.sum()), v), addr[down], node[down], counts[down]))
        return hot_and_cold_moves(view, params, ups, downs)
