"""The sampled-loads trackers (`host.tracker: pebs`, and `pebs-decayed` below): per-page counts of the loads
and stores that Intel PEBS (or AMD IBS) samples, one sample per `period` real accesses
(`host.tracker_options: {period: 4000}`, 200 .. 100,000; HeMem and MEMTIS sample about 1 in 4,000-5,000).

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

`host.tracker: pebs-decayed` (DecayedPebsTracker; options period and window, default 8) accumulates the same
samples across periods, for a policy that keeps no counts of its own (pagetide's). At 1 in 4,000 most pages
get no sample in a period (on the bench's 256 MiB zipf host 61k of 65k pages), so one period's counts cannot
rank the pages near the DRAM boundary. Each page has a short and a long window, as HeMem and MEMTIS cool
their counts by halving and agent/adaptive.py keeps A-bit levels:

- long: count <- count (1 - 1/window) + s, s the period's samples (window x the page's rate when steady);
- short: s. Where s differs from the long average count / window by more than CHANGE_Z Poisson standard
  errors (the square root of the average, floored at one sample) the page's rate changed -- a hot set moved,
  a phase ended -- and the count restarts at window x s.

Heat is the count on the wire's log scale (fractions of a sample have heats of their own: half a sample is
18), the count a fixed point of 1/256 sample in two bytes that saturates at 256 samples, where the heat byte
does; window 1 is the pebs tracker's heat byte for byte. Reports name the tracker "pebs-decayed": its heat is
not one period's samples, so HeMem and MEMTIS (which decode "pebs" heat as this round's samples and cool on
their own, controller/policies/placement.py listed_samples) do not read it as such; their hosts keep `pebs`.
pagetide's policy reads a bin as a level, the share of scans that would find a page accessed; here bin b has
the level of a page touched RATE_GAIN x (its centre count / window) times per scan interval, rates in
proportion to samples as pebs's are, but spread so that the DRAM boundary of the bench's hosts (counts near
one at DRAM 1/4) sits at levels 2-5 rather than below one, where the policy's 3-level hysteresis forbids
every swap. RATE_GAIN is a calibration, measured with pagetide bench --workloads zipf,drift,scan+hot
--shares 4 (mean ratio to the per-epoch oracle; pagetide on pebs 0.413): pebs's own levels 0.566, RATE_GAIN
0.5 / 1 / 2 / 4 / 8 gave 0.612 / 0.629 / 0.635 / 0.636 / 0.636; with levels of 1/8 access per scan
interval per count (RATE_GAIN 1 at window 8), window 4 / 8 / 16 gave 0.620 / 0.629 / 0.627 and window 8
without the change test 0.624. Cost: the samples', as pebs (the per-period fold, a few
vectorised passes, is not charged, as the seed's fold is not). State: pebs's, the count (two bytes) and the
change test's flag (one).
"""

from __future__ import annotations

import numpy as np

from pagetide.agent.host import Host
from pagetide.agent.scanner import MAX_LEVEL, Scanner
from pagetide.common.sampled_heat import SCALE, decode_samples, encode_samples

__all__ = ["PebsTracker", "DecayedPebsTracker", "SAMPLE_COST_S", "encode_samples", "decode_samples", "bin_levels",
           "decayed_bin_levels"]

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



DECAY_ONE = 256             # the decayed count's fixed point: 1/256 sample (uint16: up to 256, where heat saturates)
CHANGE_Z = 3.0              # Poisson standard errors between a period's samples and the long average that mean change
RATE_GAIN = 2.0             # accesses per scan interval a level stands for, per sample a period (measured, above)
DECAYED = encode_samples(np.arange(1 << 16) / DECAY_ONE)     # heat of every fixed-point count: a lookup


def decayed_bin_levels(window: int) -> np.ndarray:
    """Per heat bin the refs level (0..15) of a page whose count is the bin's centre: a Poisson rate of
    RATE_GAIN x (count / window) accesses per scan interval, 15 (1 - exp(-rate))."""
    b = np.arange(16, dtype=np.float64)
    count = 2.0 ** ((16 * b + 8) / SCALE) - 1
    out = MAX_LEVEL * -np.expm1(-RATE_GAIN * count / window)
    out[0] = 0.0
    return out


class DecayedPebsTracker(PebsTracker):
    """PEBS/IBS samples accumulated across periods (`host.tracker: pebs-decayed`): a decayed count per page,
    restarted where the period's samples say the page's rate changed."""
    name = "pebs-decayed"
    PAGE_ARRAYS = PebsTracker.PAGE_ARRAYS + ("decayed", "changed")

    def __init__(self, host: Host, nr_scans: int = 5, period: int = 4000, window: int = 8):
        super().__init__(host, nr_scans, period)
        self.window = int(window)
        self.BIN_LEVEL = tuple(float(x) for x in decayed_bin_levels(self.window))
        self.decayed = np.zeros(host.nr_pages, dtype=np.uint16)     # fixed point, DECAY_ONE = one sample
        self.changed = np.zeros(host.nr_pages, dtype=bool)          # the last period's change test, per page

    def period_heat(self) -> np.ndarray:
        """count <- count (1 - 1/window) + the period's samples, or window x the period's samples where they
        differ from the long average count / window by more than CHANGE_Z Poisson standard errors."""
        w = self.window
        live = np.flatnonzero((self.decayed > 0) | (self.count > 0))    # the rest stay at 0, unchanged
        s = self.count[live].astype(np.int64)
        c = self.decayed[live].astype(np.int64)
        avg = c / (w * DECAY_ONE)
        changed = np.abs(s - avg) > CHANGE_Z * np.sqrt(np.maximum(avg, 1.0))
        new = np.where(changed, s * (w * DECAY_ONE), c * (w - 1) // w + s * DECAY_ONE)
        self.changed[:] = False
        self.changed[live] = changed
        self.decayed[live] = np.minimum(new, 65535)
        return DECAYED[self.decayed]
