"""The feature pass equals, bit for bit, the pass the shipped model was trained on
(``fall_batched_reference``, frozen before it was restructured for fewer numpy calls): random,
clipped, constant and real windows, whole and cut short after the impact, batches of 1-10."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gateway.commands.evaluate import read_recording
from gateway.detection import fall
from tests.detection import fall_batched_reference as reference

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fall"
SHARED = Path("/work/shared/data/fall")


def _assert_equal(xyz: np.ndarray, impact: int) -> None:
    ours = fall.window_features(xyz, impact)
    expected = reference.window_features(xyz, impact)
    assert ours.shape == expected.shape == (len(xyz), fall.N_FEATURES)
    bad = np.flatnonzero(~(ours == expected).all(axis=0))
    assert bad.size == 0, [fall.FEATURE_NAMES[c] for c in bad]


def _spans(rng: np.random.Generator) -> Iterator[tuple[int, int]]:
    """(impact index, window length): whole windows, cut after the impact, short before it."""
    yield fall.PRE, fall.PRE + fall.POST
    for post in (fall.MIN_POST, fall.MIN_POST + 1, fall.EARLY_POST, fall.EARLY_POST + 7):
        yield fall.PRE, fall.PRE + post
    for pre in (0, 1, 3, 20, 60, 120):
        yield pre, pre + int(rng.integers(fall.MIN_POST, fall.POST + 1))
    for _ in range(6):
        pre = int(rng.integers(0, fall.PRE + 1))
        yield pre, pre + int(rng.integers(fall.MIN_POST, fall.POST + 1))


def _random_windows(rng: np.random.Generator, m: int, n: int, impact: int) -> np.ndarray:
    xyz = rng.normal(0.0, rng.uniform(0.01, 0.6), size=(m, n, 3))
    xyz += rng.normal(size=(m, 1, 3))  # gravity, any orientation
    xyz[:, impact] += rng.normal(0.0, 3.0, size=(m, 3))
    kind = rng.integers(4)
    if kind == 1:
        xyz = np.clip(xyz * 3.0, -4.0, 4.0)  # a +-4 g sensor clipping
    elif kind == 2:
        xyz[:, : impact // 2] = xyz[:, :1]  # held still before
        xyz[:, impact + 30 :] = xyz[:, -1:]  # and lying still after
    elif kind == 3:
        xyz = np.round(xyz * 64.0) / 64.0  # quantised like a real sensor
    return xyz


@pytest.mark.parametrize("m", [1, 2, 3, 5, 10])
def test_random_windows_equal_the_reference(m: int) -> None:
    rng = np.random.default_rng(100 + m)
    for _ in range(4):
        for impact, n in _spans(rng):
            _assert_equal(_random_windows(rng, m, n, impact), impact)


def test_constant_and_degenerate_windows_equal_the_reference() -> None:
    n = fall.PRE + fall.POST
    still = np.tile([0.0, 0.0, 1.0], (2, n, 1))
    for xyz in (still, np.zeros((3, n, 3)), np.full((1, n, 3), 4.0), still * 1e-7):
        for impact, stop in ((fall.PRE, n), (0, fall.MIN_POST), (5, 5 + fall.MIN_POST + 3)):
            _assert_equal(xyz[:, :stop], impact)


def _grids(paths: list[Path]) -> Iterator[np.ndarray]:
    for path in paths:
        t, xyz = read_recording(path)
        yield fall.resample_recording(t - t[0], xyz)


def _recording_batches(
    grid: np.ndarray, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, int]]:
    """Every candidate's windows at every span it is decided on, in batches of 1-10."""
    mag = np.linalg.norm(grid, axis=1)
    impacts = np.array(fall.candidate_impacts(mag, fall.LOW_RATE_GATE_G), dtype=np.int64)
    impacts = impacts[(impacts + fall.MIN_POST <= len(grid)) & (impacts >= 0)]
    for impact in impacts.tolist():
        start = max(0, impact - fall.PRE)
        for stop in {min(len(grid), impact + post) for post in (fall.POST, fall.MIN_POST, 170)}:
            if stop - impact < fall.MIN_POST:
                continue
            window = grid[start:stop]
            m = int(rng.integers(1, 11))
            # the candidate among others: noisy copies of its own window
            batch = np.repeat(window[None], m, axis=0)
            batch[1:] += rng.normal(0.0, 0.05, size=batch[1:].shape)
            yield batch, impact - start


def test_fixture_recordings_equal_the_reference() -> None:
    rng = np.random.default_rng(7)
    with (FIXTURES / "MANIFEST.csv").open() as fh:
        paths = [FIXTURES / row["file"] for row in csv.DictReader(fh)]
    count = 0
    for grid in _grids(paths):
        for batch, impact in _recording_batches(grid, rng):
            _assert_equal(batch, impact)
            count += 1
    assert count > 20


@pytest.mark.skipif(not (SHARED / "MANIFEST.csv").exists(), reason="shared fall data absent")
def test_shared_recordings_equal_the_reference() -> None:
    rng = np.random.default_rng(8)
    with (SHARED / "MANIFEST.csv").open() as fh:
        paths = [SHARED / row["file"] for row in csv.DictReader(fh)]
    for grid in _grids(paths[:: max(1, len(paths) // 150)]):
        for batch, impact in _recording_batches(grid, rng):
            _assert_equal(batch, impact)
