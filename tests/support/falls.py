"""A real fall for tests that stream it as a band would: WEDA-FALL U01 F02 R01 (Marques &
Moreno, Sensors 2023; the fixture in tests/fixtures/fall), resampled to an even 50 Hz (the
band profile's rate), then lying still."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gateway.commands.evaluate import read_recording

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fall" / "U01_F02_R01.csv.gz"
FALL_MARKS_S = (5.1, 8.1)  # the dataset's own onset and end marks
FS = 50.0


def real_fall_at_50hz(still_s: float = 30.0) -> tuple[np.ndarray, float]:
    """(samples (n, 3) in g, the impact's time in seconds from the first sample: the peak)."""
    t, xyz = read_recording(FIXTURE)
    grid = np.arange(0.0, t[-1] - t[0], 1.0 / FS)
    samples = np.stack([np.interp(grid, t - t[0], xyz[:, k]) for k in range(3)], axis=1)
    lying = np.tile([0.0, 0.0, 1.0], (round(still_s * FS), 1))
    peak = float(np.argmax(np.linalg.norm(samples, axis=1))) / FS
    return np.concatenate([samples, lying]), peak
