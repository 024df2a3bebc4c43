"""The sampled-loads tracker (`host.tracker: pebs`): per-page counts of the loads and stores that Intel PEBS
(or AMD IBS) samples, one sample per `period` real accesses (`host.tracker_options: {period: 4000}`, 200 ..
100,000; HeMem and MEMTIS sample about 1 in 4,000-5,000).

The host model's ticks draw access samples per tenant, each standing for the workload's `accesses_per_sample`
real accesses (agent/host.py Host.run_tick); the simulated host hands every tick's samples to `observe`. Each
model sample of weight w yields Poisson(w / period) PEBS samples (the binomial thinning of its w accesses at
1 / period, in its Poisson limit), drawn vectorised from a generator seeded with the scenario's seed, so a run
is reproducible. A page's samples of the period are counted in its `refs` byte (saturating at 255) and at
the period's end exported, without decay -- PEBS hands out raw samples and the policy keeps its own counts
and cooling (HeMem, MEMTIS) -- as heat on a log scale:

    heat = min(255, floor(32 log2(1 + samples)))         (bin = heat >> 4: half an octave of samples)

so heat 0 is exactly "no sample this period", bin 2 one sample, bin 3 two, bin 4 three or four, ... (bin 1
stays empty) and a policy decodes a count as ceil(2^(heat/32) - 1) (exact up to ~45 samples, within 2.2%
above). Reports name
the tracker "pebs"; `BIN_LEVEL` gives pagetide's policy, which reads levels as shares of scans, each bin's
access rate relative to the top bin's: the level a page would have whose rate per scan interval is 3.5 x
(the bin's samples / the top bin's) -- rates in proportion to samples, comparable across the host's VMs.

Cost (`cost_seconds`): SAMPLE_COST_S per PEBS sample. Akiyama and Hirofuchi (ROSS'17, "Quantitative
Evaluation of Intel PEBS Overhead for Online System-Noise Analysis", doi 10.1145/3095770.3095773) measured
200-300 ns of workload slowdown per PEBS record written; we take 250 ns for the record and ASSUME 50 ns more
for the sampling thread to read it from the buffer and count it against its page (not measured; HeMem and
MEMTIS do not publish a per-sample figure). State: the seed's two bytes per page (refs, heat) and the period's
unsaturated count (four); no scans.
"""

from __future__ import annotations

import numpy as np

from pagetide.agent.host import Host
from pagetide.agent.scanner import MAX_LEVEL, Scanner
from pagetide.common.sampled_heat import SCALE, decode_samples, encode_samples

__all__ = ["PebsTracker", "SAMPLE_COST_S", "encode_samples", "decode_samples", "bin_levels"]

SAMPLE_COST_S = 300e-9      # 250 ns per PEBS record (Akiyama & Hirofuchi, ROSS'17) + 50 ns handling, assumed
TOP_RATE = 3.5              # the top bin's rate, per scan interval: a share of scans of 0.97 (pagetide's cap)
STREAM = 0x9EB5             # the tracker's random stream beside the scenario's seed
ENCODED = encode_samples(np.arange(256))      # heat of 0..255 samples: a lookup instead of a log per page


def bin_levels() -> np.ndarray:
    """Per heat bin the refs level (0..15) of a page whose rate is TOP_RATE x its samples / the top bin's."""
    b = np.arange(16, dtype=np.float64)
    samples = 2.0 ** ((16 * b + 8) / SCALE) - 1         # each bin's centre
    rate = TOP_RATE * samples / samples[-1]
    out = MAX_LEVEL * -np.expm1(-rate)
    out[0] = 0.0
    return out


class PebsTracker(Scanner):
    """PEBS/IBS samples per page per period (agent/backend.py Tracker), heat on a log scale of samples."""
    name = "pebs"
    PAGE_ARRAYS = Scanner.PAGE_ARRAYS + ("count",)
    BIN_LEVEL = tuple(float(x) for x in bin_levels())

    def __init__(self, host: Host, nr_scans: int = 5, period: int = 4000):
        super().__init__(host, nr_scans)
        self.sample_period = int(period)
        self.rng = np.random.default_rng([host.scenario.seed, STREAM])
        self.samples_handled = 0
        self.count = np.zeros(host.nr_pages, dtype=np.int32)      # the period's samples per page, unsaturated

    def scan(self) -> None:
        """PEBS needs no scans."""

    def window_scans(self, tenant_index: int) -> float:
        return 0.0                  # no window of scans: the heat is the period's samples

    def observe(self, tick_samples) -> None:
        """Thin each model sample to Poisson(weight / period) PEBS samples; count them per page (`count`, the
        period's exact samples, added in place; `refs` the same saturated at 255)."""
        for t, pages in zip(self.host.tenants, tick_samples):
            if not pages.size:
                continue
            k = self.rng.poisson(t.workload.accesses_per_sample / self.sample_period, pages.size)
            hit = np.flatnonzero(k)
            if not hit.size:
                continue
            slots = t.start + pages[hit]
            np.add.at(self.count, slots, k[hit].astype(np.int32))      # same dtypes: add.at's fast path
            self.refs[slots] = np.minimum(self.count[slots], 255)
            self.samples_handled += int(k.sum())

    def cost_seconds(self) -> float:
        """Host CPU so far: SAMPLE_COST_S per PEBS sample taken."""
        return self.samples_handled * SAMPLE_COST_S

    def period_heat(self) -> np.ndarray:
        """The period's samples, no decay."""
        return ENCODED[self.refs]

    def end_period(self) -> None:
        super().end_period()
        self.count[:] = 0
