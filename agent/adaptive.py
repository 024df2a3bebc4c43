"""The adaptive idle_pages tracker: the seed's scans (agent/scanner.py, byte-exact idle_pages reads), a heat
that follows a page within one period when its access rate changes and averages over many when it does not.

The seed folds each period's refs into heat with a fixed halving, `heat <- (heat + level) / 2`: about three
periods of memory. That is too short to rank a stable Zipf tail (a page near the DRAM boundary is found in
one scan of five, or none, by chance) and too long for a phase change (after one period the old working set
and the new one tie at half their level, and the seed's 3-bin hysteresis waits a second period before any
swap). Here each page has two windows (DESIGN.md section 8: "a short and a long window", HybridTier's
momentum):

- short: this period's level L = 15 x refs / nr_scans (n = nr_scans scans);
- long: an average over ~1/LONG_ALPHA periods, `long <- long + LONG_ALPHA (L - long)`.

A change test decides which one the page's heat is: if L differs from `long` by more than CHANGE_Z standard
errors of a level measured over n scans when the page's rate is `long` (15 sqrt(p (1 - p) / n), p =
long / 15, floored at half a scan), the page changed -- it became hot, or its working set went idle -- and
heat = L, with `long` restarted at L; else heat = long. A stable page near the DRAM boundary keeps the long
average; a new hot page (found in every scan) or a page of the phase that just ended is seen for what it is
after one period.

Heat is exported on a log scale -- each bin above 0 spans half an octave of level (bin 15: levels
10.6..15, bin 1: from 0.117), so a long average near the DRAM boundary still falls in a bin of its own --
and the report says so (`bin_level`, the level each bin stands for) with the window the test allows
(`window_scans`). State: the seed's byte of refs, two bytes of `long` and the exported heat byte per page.
Scanning costs what the seed's does (the same scans); the fold is a few vectorised passes per period.
"""

from __future__ import annotations

import numpy as np

from pagetide.agent.host import Host
from pagetide.agent.scanner import MAX_LEVEL, Scanner

__all__ = ["AdaptiveScanner", "LONG_ALPHA", "CHANGE_Z", "export_heat", "bin_levels"]

ONE = 256                  # fixed point: one level
LONG_ALPHA = 1 / 8         # the long window: an average over ~8 periods (~40 scans of 5)
CHANGE_Z = 2.5             # standard errors between this period's level and the long average that mean change


def export_heat(heat16: np.ndarray) -> np.ndarray:
    """Heat bytes on the log scale: 16 x (15 + 2 log2(level / 15)), clipped to 0..240, so each bin (heat
    >> 4) above 0 spans half an octave of level -- bin 15 is levels 10.6..15, bin 1 from 0.117 -- and a long
    average near the DRAM boundary (a page seen in one scan of twenty) still falls in a bin of its own."""
    lvl = heat16.astype(np.float64) / ONE
    with np.errstate(divide="ignore"):
        e = np.floor(16 * (MAX_LEVEL + 2 * np.log2(np.maximum(lvl, 1e-9) / MAX_LEVEL)))
    return np.clip(e, 0, 240).astype(np.uint8)


def bin_levels() -> np.ndarray:
    """The representative refs level of each bin of the log scale (the geometric centre; bin 0: none)."""
    b = np.arange(16, dtype=np.float64)
    out = MAX_LEVEL * 2.0 ** (-(MAX_LEVEL - b - 0.5) / 2)
    out[0] = 0.0
    return np.minimum(out, MAX_LEVEL)


class AdaptiveScanner(Scanner):
    """idle_pages scans as the seed's tracker; heat is a per-page long average, replaced by the period's level
    where a change test says the page's rate moved."""
    name = "idle_pages-adaptive"
    BIN_LEVEL = tuple(float(x) for x in bin_levels())
    PAGE_ARRAYS = Scanner.PAGE_ARRAYS + ("long", "changed")

    def __init__(self, host: Host, nr_scans: int = 5, open_flags: int = 0):
        super().__init__(host, nr_scans, open_flags)
        self.long = np.zeros(host.nr_pages, dtype=np.uint16)     # fixed point, ONE = one level
        self.changed = np.zeros(host.nr_pages, dtype=bool)       # the last period's change test, per page

    def window_scans(self, tenant_index: int) -> float:
        """Scans the long window averages over: nr_scans x (2 - a) / a for weight a (an EWMA's equivalent)."""
        return self.nr_scans * (2 - LONG_ALPHA) / LONG_ALPHA

    def period_heat(self) -> np.ndarray:
        """The long average moved towards the period's level, or reset to it on a significant change."""
        n = max(1, self.scans_in_period)
        refs = self.refs
        level = (refs.astype(np.int32) * (MAX_LEVEL * ONE) + n // 2) // n        # 0..15 levels, fixed point
        long = self.long.astype(np.int32)
        p = np.clip(long / (MAX_LEVEL * ONE), 0.5 / n, 1 - 0.5 / n)
        se = MAX_LEVEL * ONE * np.sqrt(p * (1 - p) / n)
        changed = np.abs(level - long) > CHANGE_Z * se
        step = np.rint(LONG_ALPHA * (level - long)).astype(np.int32)
        # as the seed's rounding: a long average that differs from the level always moves towards it
        step = np.where(step == 0, np.sign(level - long), step)
        long = np.where(changed, level, long + step)
        self.long = np.clip(long, 0, MAX_LEVEL * ONE).astype(np.uint16)
        self.changed = changed
        return export_heat(self.long)
