"""The heat scale of sampled-loads trackers on the wire (agent.proto HeatReport.tracker "pebs"): a page's heat
byte is min(255, floor(32 log2(1 + samples))) of its PEBS/IBS samples in the period. The agent's tracker
encodes with it and the controller's sampling policies (HeMem, MEMTIS) decode with it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCALE", "SAMPLED_TRACKERS", "encode_samples", "decode_samples"]

SCALE = 32                  # heat per octave of samples
SAMPLED_TRACKERS = ("pebs",)   # trackers whose reports carry heat on this scale


def encode_samples(samples: np.ndarray) -> np.ndarray:
    """A period's sample counts as heat bytes: min(255, floor(32 log2(1 + samples)))."""
    e = np.floor(SCALE * np.log2(1.0 + np.asarray(samples, dtype=np.float64)) + 1e-9)
    return np.clip(e, 0, 255).astype(np.uint8)


def decode_samples(heat: np.ndarray) -> np.ndarray:
    """The least sample count a heat byte stands for (its inverse below ~45 samples)."""
    return np.ceil(2.0 ** (np.asarray(heat, dtype=np.float64) / SCALE) - 1 - 1e-9).astype(np.int64)
