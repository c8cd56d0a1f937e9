"""Pure fall-detection maths: resampling, the gate, ring buffers, features, the numpy model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.detection import fall, fall_sequence
from gateway.detection.fall_model import FallModel


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q


@pytest.mark.parametrize("rate", [20.0, 25.0, 50.0, 100.0, 238.0])
def test_resampling_follows_the_signal_at_any_rate(rate: float) -> None:
    ts = np.arange(0, 10, 1 / rate)
    xyz = np.stack([np.sin(2 * np.pi * 0.5 * ts), np.cos(ts), 0.1 * ts], axis=1)
    grid, next_t = fall.resample_onto_grid(ts, xyz, 0.0)
    times = np.arange(grid.shape[0]) * fall.GRID_DT
    expected = np.stack([np.sin(2 * np.pi * 0.5 * times), np.cos(times), 0.1 * times], axis=1)
    assert grid.shape[0] == int(np.floor(ts[-1] * fall.GRID_HZ + 1e-9)) + 1
    assert next_t == pytest.approx(grid.shape[0] * fall.GRID_DT)
    # linear interpolation error of a 0.5 Hz sine sampled at >= 20 Hz stays small
    assert np.abs(grid - expected).max() < 0.02


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_chunked_resampling_equals_whole(chunks: list[int]) -> None:
    rng = np.random.default_rng(len(chunks))
    n = sum(chunks) + 1
    ts = np.cumsum(rng.uniform(0.002, 0.05, n))
    xyz = rng.normal(size=(n, 3))
    whole, _ = fall.resample_onto_grid(ts, xyz, float(ts[0]))
    parts = []
    next_t = float(ts[0])
    start = 0
    for size in chunks:
        stop = min(n, start + size + 1)  # each chunk carries the previous last sample
        part, next_t = fall.resample_onto_grid(ts[start:stop], xyz[start:stop], next_t)
        parts.append(part)
        start = stop - 1
    part, next_t = fall.resample_onto_grid(ts[start:], xyz[start:], next_t)
    parts.append(part)
    joined = np.concatenate(parts)
    assert joined.shape == whole.shape
    np.testing.assert_allclose(joined, whole, atol=1e-9)


def test_clean_times_drops_duplicates_reordered_and_non_finite() -> None:
    ts = np.array([0.0, 0.02, 0.02, 0.01, 0.04, np.nan, 0.06])
    xyz = np.arange(21, dtype=float).reshape(7, 3)
    xyz[4, 1] = np.inf
    out_t, out_xyz = fall.clean_times(ts, xyz)
    assert out_t.tolist() == [0.0, 0.02, 0.06]
    assert out_xyz[:, 0].tolist() == [0.0, 3.0, 18.0]


def test_an_impact_is_the_largest_peak_within_half_a_second_either_side() -> None:
    mag = np.ones(500)
    mag[100:104] = [2.2, 3.0, 5.0, 2.5]  # one impact, peak at 102
    mag[130] = 4.0  # 0.56 s later and smaller: an impact of its own
    mag[140] = 4.5  # 0.2 s after that and larger: supersedes 130
    mag[200:203] = [3.0, 3.0, 3.0]  # a clipped plateau: its first sample
    mag[300] = 1.9  # below the gate
    mag[480] = 6.0  # too close to the end of the stream to be confirmed
    assert fall.candidate_impacts(mag) == [102, 140, 200]
    assert fall.candidate_impacts(np.ones(100)) == []
    # running: every step crosses the gate, the hard hit among them is the impact
    steps = np.ones(600)
    steps[::17] = 3.0
    steps[306] = 5.0
    assert 306 in fall.candidate_impacts(steps)
    assert all(abs(i - 306) > fall.PEAK_HALF for i in fall.candidate_impacts(steps) if i != 306)


def test_ring_gate_is_vectorised_over_slots_and_survives_wraparound() -> None:
    ring = fall.WristRing(capacity=2)
    slots = [ring.add_slot() for _ in range(5)]  # grows past the initial capacity
    quiet = np.tile([0.0, 0.0, 1.0], (fall.RING - 7, 1))
    for slot in slots:
        ring.write(slot, quiet)
    assert ring.gate() == []
    bump = np.tile([0.0, 0.0, 1.0], (20, 1))
    bump[11] = [0.0, 3.0, 0.0]
    ring.write(slots[1], bump)  # wraps around the ring end
    ring.write(slots[3], np.tile([0.0, 0.0, 1.0], (3, 1)))
    hits = ring.gate()
    assert [(h.slot, h.crossing) for h in hits] == [(slots[1], fall.RING - 7 + 11)]
    assert ring.gate() == []  # already scanned
    centre = np.array([fall.RING - 7 + 11])
    window = ring.windows(np.array([slots[1]]), centre, 1, 2)[0]  # across the ring's end
    assert window.tolist() == [[0.0, 0.0, 1.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]]


def test_block_write_equals_per_slot_writes() -> None:
    rng = np.random.default_rng(3)
    block = rng.normal(size=(4, 30, 3))
    a, b = fall.WristRing(4), fall.WristRing(4)
    for ring in (a, b):
        for _ in range(4):
            ring.add_slot()
    a.write_block(block)
    for slot in range(4):
        b.write(slot, block[slot])
    np.testing.assert_allclose(a.xyz, b.xyz)
    np.testing.assert_allclose(a.mag, b.mag, rtol=1e-6)
    assert a.written.tolist() == b.written.tolist()


def _fall_like_window(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    n = fall.PRE + fall.POST
    xyz = np.tile([-1.0, 0.0, 0.0], (n, 1)) + rng.normal(0, 0.03, (n, 3))
    i0 = fall.PRE
    xyz[i0 - 20 : i0] *= 0.4
    xyz[i0] = [3.0, -4.0, 2.0]
    xyz[i0 + 30 :] = [0.1, 0.0, 0.99]
    return xyz, i0


def test_features_are_rotation_invariant() -> None:
    rng = np.random.default_rng(5)
    xyz, i0 = _fall_like_window(rng)
    base = fall.impact_features(xyz, i0)
    for _ in range(5):
        rotated = xyz @ _rotation(rng).T
        # atol: arccos near 1 turns rounding into ~1e-5 degrees on a still (smoothed) arm
        np.testing.assert_allclose(fall.impact_features(rotated, i0), base, rtol=1e-6, atol=1e-4)


def test_features_are_finite_on_edge_windows() -> None:
    rng = np.random.default_rng(6)
    xyz, i0 = _fall_like_window(rng)
    cases = [
        (xyz[i0 - 3 :], 3),  # the segment started just before the impact
        (xyz[: i0 + fall.MIN_POST], i0),  # the stream stopped early
        (np.zeros((fall.PRE + fall.POST, 3)), fall.PRE),  # a dead sensor
        (np.clip(xyz * 3, -4, 4), i0),  # clipping at 4 g
    ]
    for window, impact in cases:
        feats = fall.impact_features(window, impact)
        assert feats.shape == (fall.N_FEATURES,)
        assert np.all(np.isfinite(feats))


def test_shipped_model_scores_in_batch_like_one_by_one() -> None:
    model = FallModel.load()
    rng = np.random.default_rng(7)
    windows = np.stack([_fall_like_window(rng)[0] for _ in range(4)])
    impact = _fall_like_window(rng)[1]
    rows = fall.window_features(windows, impact)
    rows[1] *= rng.uniform(0.5, 1.5, fall.N_FEATURES)
    sequences = fall_sequence.window_sequences(windows, impact)
    batch = model.probability(rows, sequences)
    single = np.array([model.probability(rows[r], sequences[r : r + 1])[0] for r in range(4)])
    np.testing.assert_allclose(batch, single, rtol=1e-5)  # the net runs in float32
    assert np.all((batch >= 0) & (batch <= 1))
    assert 0.0 < model.decision_threshold < 1.0


def _feature(feats: np.ndarray, name: str) -> float:
    return float(feats[fall.FEATURE_NAMES.index(name)])


def test_late_features_tell_lying_still_from_getting_up() -> None:
    rng = np.random.default_rng(11)
    lying, i0 = _fall_like_window(rng)
    up = lying.copy()
    t = np.arange(up.shape[0] - (i0 + round(fall.LATE_S * fall.GRID_HZ))) / fall.GRID_HZ
    # from LATE_S on the arm swings again, back near its pre-impact orientation
    up[i0 + round(fall.LATE_S * fall.GRID_HZ) :] = np.stack(
        [-np.ones_like(t), 0.5 * np.sin(2 * np.pi * 1.2 * t), 0.3 * np.cos(2 * np.pi * 1.2 * t)],
        axis=1,
    )
    still, moving = fall.impact_features(lying, i0), fall.impact_features(up, i0)
    assert _feature(still, "late_still_fraction") > 0.9 > _feature(moving, "late_still_fraction")
    assert _feature(still, "post_active_fraction") < _feature(moving, "post_active_fraction")
    assert _feature(still, "late_std_g") < _feature(moving, "late_std_g")
    assert _feature(still, "late_return_tilt_deg") > 60.0 > _feature(moving, "late_return_tilt_deg")


def test_repetition_features_see_clapping() -> None:
    rng = np.random.default_rng(12)
    single, i0 = _fall_like_window(rng)
    clapping = single.copy()
    for k in range(-5, 6):  # a hard clap every 0.5 s around the impact
        clapping[i0 + 25 * k] = [2.8, 1.0, 0.0]
    one, many = fall.impact_features(single, i0), fall.impact_features(clapping, i0)
    assert _feature(one, "peaks_2g") == 0
    assert _feature(many, "peaks_2g") >= 8
    assert _feature(many, "periodicity") > _feature(one, "periodicity") + 0.2


def test_late_features_use_what_arrived_when_the_stream_stops_early() -> None:
    rng = np.random.default_rng(13)
    xyz, i0 = _fall_like_window(rng)
    full = fall.impact_features(xyz, i0)
    cut = fall.impact_features(xyz[: i0 + round(3.0 * fall.GRID_HZ)], i0)
    # the arm lay still at the new angle from 0.6 s on: the last 1.5 s that arrived say so too
    for name in ("late_vs_pre_deg", "late_return_tilt_deg"):
        assert _feature(cut, name) == pytest.approx(_feature(full, name), abs=3.0)
    assert _feature(cut, "late_still_fraction") > 0.5


def test_slow_wristbands_get_a_lower_gate() -> None:
    assert fall.gate_level(25.0) == fall.LOW_RATE_GATE_G < fall.GATE_G
    assert fall.gate_level(50.0) == fall.gate_level(238.0) == fall.GATE_G
    assert fall.source_rate(np.arange(0, 10, 0.04)) == pytest.approx(25.0)
    assert fall.source_rate(np.array([1.0])) == float("inf")
    ring = fall.WristRing()
    slow, fast = ring.add_slot(), ring.add_slot()
    ring.gate_g[slow] = fall.gate_level(25.0)
    bump = np.tile([0.0, 0.0, 1.0], (60, 1))
    bump[12] = [0.0, 1.8, 0.0]
    for slot in (slow, fast):
        ring.write(slot, bump)
    assert [(h.slot, h.crossing) for h in ring.gate()] == [(slow, 12)]
    mag = np.linalg.norm(bump, axis=1)
    assert fall.candidate_impacts(mag) == []
    assert fall.candidate_impacts(mag, fall.gate_level(25.0)) == [12]
