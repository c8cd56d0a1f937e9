"""The batched fall features, model and ring equal their per-impact references: the shipped
model was trained on the per-impact features (``fall_reference``), so every path that feeds it
(offline ``recording_candidates``, ``impact_features`` for cut windows in training, the live
shell deciding several candidates in one tick) must give the same numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.clock import SimClock
from gateway.commands.evaluate import read_recording
from gateway.detection import fall, fall_sequence
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.detection.fall_model import FallModel, TreeEnsemble
from gateway.model import Device, DeviceKind, Reading
from tests.detection import fall_reference
from tests.detection.fall_spy import SpyModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fall"
# float32 tolerance; the two differ only in the order of a few float64 additions
RTOL = ATOL = 1e-6


def _reference(grid: np.ndarray, impact: int, stop: int, start: int | None = None) -> np.ndarray:
    """The per-impact features of the window and of the same window low-passed."""
    start = max(0, impact - fall.PRE) if start is None else start
    window = grid[start:stop]
    return np.concatenate(
        [
            fall_reference.impact_features(window, impact - start),
            fall_reference.impact_features(_moving_average(window), impact - start),
        ]
    )


def _moving_average(window: np.ndarray) -> np.ndarray:
    half = fall.SMOOTH // 2
    padded = np.pad(window, ((half, half), (0, 0)), mode="edge")
    kernel = np.ones(fall.SMOOTH) / fall.SMOOTH
    return np.stack([np.convolve(padded[:, a], kernel, mode="valid") for a in range(3)], axis=1)


# the reference's features among FEATURE_NAMES (new features are appended or inserted there),
# then the same on the low-passed window
_COLUMNS = [fall.FEATURE_NAMES.index(name) for name in fall_reference.NAMES] + [
    fall.FEATURE_NAMES.index(f"lp_{name}") for name in fall_reference.NAMES
]


def _assert_reference(ours: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(np.asarray(ours)[_COLUMNS], expected, rtol=RTOL, atol=ATOL)


def _matches_reference(ours: np.ndarray, expected: np.ndarray) -> bool:
    return bool(np.allclose(np.asarray(ours)[_COLUMNS], expected, rtol=RTOL, atol=ATOL))


def _fixture_grids() -> list[tuple[str, np.ndarray]]:
    with (FIXTURES / "MANIFEST.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        t, xyz = read_recording(FIXTURES / row["file"])
        out.append((row["file"], fall.resample_recording(t - t[0], xyz)))
    return out


def _fall_like(rng: np.random.Generator, n: int, impact: int) -> np.ndarray:
    """Arm swinging, a descent, an impact at ``impact``, a bounce, lying at a new angle, with
    clapping-like spikes before it and clipping at 4 g."""
    t = np.arange(n) / fall.GRID_HZ
    g0 = fall_reference_rotation(rng) @ np.array([-1.0, 0.0, 0.0])
    g1 = fall_reference_rotation(rng) @ np.array([-1.0, 0.0, 0.0])
    xyz = np.tile(g0, (n, 1)) + 0.3 * np.sin(2 * np.pi * 1.3 * t)[:, None] * rng.normal(size=3)
    xyz[impact - 25 : impact] *= rng.uniform(0.2, 0.8)
    xyz[impact] = rng.normal(0, 3, 3)
    xyz[impact] *= 3.5 / np.linalg.norm(xyz[impact])
    xyz[impact + 1 : impact + 30] = g1 + rng.normal(0, 0.4, (29, 3))
    xyz[impact + 30 :] = g1
    for k in rng.integers(0, n, 4):
        xyz[k] += rng.normal(0, 1.5, 3)
    return np.clip(xyz + rng.normal(0, 0.01, xyz.shape), -4.0, 4.0)


def fall_reference_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


# --- features ------------------------------------------------------------------------------


def _points(grid: np.ndarray) -> list[int]:
    """The candidates, the largest |a| and a sample 0.6 s into the recording (less than PRE
    before it): every point with MIN_POST after it."""
    mag = np.linalg.norm(grid, axis=1)
    points = [i for i, _ in fall.recording_candidates(grid)] + [int(mag.argmax()), 30]
    return sorted({i for i in points if i + fall.MIN_POST <= grid.shape[0]})


def test_the_fixtures_have_candidates() -> None:
    assert sum(len(fall.recording_candidates(g)) for _, g in _fixture_grids()) >= 5


@pytest.mark.parametrize("name_grid", _fixture_grids(), ids=lambda x: x[0])
def test_recording_candidates_equal_the_per_impact_reference(name_grid) -> None:
    _, grid = name_grid
    for impact, feats in fall.recording_candidates(grid):
        stop = min(grid.shape[0], impact + fall.POST)
        _assert_reference(feats, _reference(grid, impact, stop))


@pytest.mark.parametrize("name_grid", _fixture_grids(), ids=lambda x: x[0])
def test_cut_windows_of_real_recordings_equal_the_reference(name_grid) -> None:
    """The stream stopped 2-8 s after each point (training's truncation, live stalls): one
    batch of all the windows, of different lengths and starts."""
    _, grid = name_grid
    impacts, starts, stops = [], [], []
    for impact in _points(grid):
        for after in np.linspace(fall.MIN_POST, fall.POST, 7).astype(int):
            if impact + after <= grid.shape[0]:
                impacts.append(impact)
                starts.append(max(0, impact - fall.PRE))
                stops.append(impact + after)
    assert len(set(np.subtract(stops, impacts))) > 1
    imp, sta, sto = (np.array(v, dtype=np.int64) for v in (impacts, starts, stops))

    def windows(rows: np.ndarray, before: int, after: int) -> np.ndarray:
        return grid[imp[rows, None] + np.arange(-before, after)]

    batch = fall.features_of(windows, sta, imp, sto)
    for row, (i, a, b) in enumerate(zip(impacts, starts, stops, strict=True)):
        _assert_reference(batch[row], _reference(grid, i, b, a))
        np.testing.assert_allclose(
            fall.impact_features(grid[a:b], i - a), batch[row], rtol=RTOL, atol=ATOL
        )


def test_synthetic_batch_with_every_kind_of_window_equals_the_reference() -> None:
    """Full windows, streams stopped 2-8 s after the impact, segments that started shortly
    before it, both, and a dead (all-zero) sensor, mixed in one batch."""
    rng = np.random.default_rng(40)
    grids, impacts, starts, stops = [], [], [], []
    n = fall.PRE + fall.POST + 50
    for case in range(60):
        impact = fall.PRE + 20
        grid = _fall_like(rng, n, impact) if case % 15 else np.zeros((n, 3))
        if case % 15 == 0:
            grid[impact] = [0.0, 0.0, 3.0]
        start = impact - fall.PRE
        if case % 3 == 1:
            start = impact - int(rng.integers(0, fall.PRE))  # segment started just before
        stop = impact + fall.POST
        if case % 2:
            stop = impact + int(rng.integers(fall.MIN_POST, fall.POST + 1))  # stream stopped
        grids.append(grid)
        impacts.append(case * n + impact)
        starts.append(case * n + start)
        stops.append(case * n + stop)
    flat = np.concatenate(grids)
    imp, sta, sto = (np.array(v, dtype=np.int64) for v in (impacts, starts, stops))

    def windows(rows: np.ndarray, before: int, after: int) -> np.ndarray:
        return flat[imp[rows, None] + np.arange(-before, after)]

    batch = fall.features_of(windows, sta, imp, sto)
    assert batch.shape == (60, fall.N_FEATURES)
    assert np.all(np.isfinite(batch))
    for row in range(60):
        expected = _reference(flat, int(imp[row]), int(sto[row]), int(sta[row]))
        _assert_reference(batch[row], expected)


def test_windows_with_the_same_span_are_one_group_in_any_order() -> None:
    rng = np.random.default_rng(41)
    windows = np.stack([_fall_like(rng, fall.PRE + fall.POST, fall.PRE) for _ in range(5)])
    together = fall.window_features(windows, fall.PRE)
    reversed_ = fall.window_features(windows[::-1], fall.PRE)[::-1]
    np.testing.assert_array_equal(together, reversed_)
    for row in range(5):
        np.testing.assert_allclose(together[row], fall.impact_features(windows[row], fall.PRE))


def test_every_feature_name_is_computed_once() -> None:
    rng = np.random.default_rng(42)
    padded = fall._zero_padded(_fall_like(rng, fall.PRE + fall.POST, fall.PRE)[None])
    w = fall.Windows(padded, fall.PRE)
    plan = fall._plan(w.n, fall.PRE)
    early = w.until(fall.EARLY_POST_S)
    gravity = fall.Gravity(early, w, plan)
    names: list[str] = []
    for family in fall._FAMILIES:
        names.extend(family(early, w, gravity, plan))
    assert sorted(names) == sorted(fall.RAW_FEATURE_NAMES)
    assert (
        fall.RAW_FEATURE_NAMES + tuple(f"lp_{n}" for n in fall.RAW_FEATURE_NAMES)
        == fall.FEATURE_NAMES
    )


def test_smoothing_is_a_centred_moving_average_within_the_window() -> None:
    rng = np.random.default_rng(3)
    windows = rng.normal(size=(4, 37, 3))
    out = fall.smooth(windows)
    assert out.shape == windows.shape
    for row in range(4):
        np.testing.assert_allclose(out[row], _moving_average(windows[row]), atol=1e-12)
    step = np.zeros((1, 20, 3))
    step[0, 10:] = 1.0
    assert fall.smooth(step)[0, :, 0].tolist()[7:13] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1])


# --- the live shell: candidates of many wristbands decided in one tick ----------------------


def test_live_shell_scores_simultaneous_candidates_like_the_reference() -> None:
    """Six wristbands impact at the same moment (one batch), two of them stop streaming 3-4 s
    later (decided after the stall grace with what arrived)."""
    rng = np.random.default_rng(43)
    n_bands, seconds = 6, 24
    n = seconds * round(fall.GRID_HZ)
    impact = 8 * round(fall.GRID_HZ) + 3
    streams = np.stack([_fall_like(rng, n, impact) for _ in range(n_bands)])
    stop_at = {4: 550, 5: 600}  # 2.9 s and 3.9 s after the impact
    # a small epoch: once bands stop, the others are resampled per reading, and grid times
    # near 1.7e9 s would blend neighbouring samples by ~1e-5
    clock = SimClock(start_wall=1000.0, start_mono=100.0)
    model = SpyModel(net_floor=-np.inf)  # the net is asked about every candidate
    detector = FallAlerts(clock, FallSettings(), model=model)
    devices = [Device(f"w{i}", DeviceKind.WRISTBAND, f"p{i}") for i in range(n_bands)]
    t0 = clock.wall()
    for start in range(0, n, 10):
        clock.advance(10 * fall.GRID_DT)
        live = [i for i in range(n_bands) if start + 10 <= stop_at.get(i, n)]
        block = streams[live, start : start + 10]
        detector.on_grid_block([devices[i] for i in live], t0 + start * fall.GRID_DT, block)
    clock.advance(5.0)
    detector.on_tick()
    decision = round(FallSettings().decision_s * fall.GRID_HZ)
    assert len(model.rows) >= n_bands
    # the ring holds float32: the live features equal the reference on float32 samples
    for i in range(n_bands):
        as32 = streams[i].astype(np.float32).astype(np.float64)
        stop = min(stop_at.get(i, n), impact + decision)
        expected = _reference(as32, impact, stop)
        assert any(_matches_reference(row, expected) for row in model.rows), i
        # and the net's sequences are those of the same window
        window = as32[impact - fall.PRE : stop][None]
        seq = fall_sequence.window_sequences(window, fall.PRE)[0]
        assert any(np.allclose(s, seq, atol=1e-5) for s in model.sequences), i


# --- the model -----------------------------------------------------------------------------


def _walk_trees(model: TreeEnsemble, row: np.ndarray) -> float:
    leaves = []
    for tree in range(model.feature.shape[0]):
        node = 0
        while model.feature[tree, node] >= 0:
            x = row[model.feature[tree, node]]
            go_left = x <= model.threshold[tree, node]
            node = model.left[tree, node] if go_left else model.right[tree, node]
        leaves.append(model.value[tree, node])
    return model.base_score + model.learning_rate * float(np.sum(leaves))


def test_model_scores_equal_a_plain_walk_of_every_tree() -> None:
    model = FallModel.load().trees
    rng = np.random.default_rng(44)
    rows = np.stack([fall.impact_features(_fall_like(rng, 550, 150), 150) for _ in range(6)])
    rows[3] *= rng.uniform(0.2, 3.0, fall.N_FEATURES)
    rows[4, ::3] = np.nan  # NaN goes right at every split, as in the trees' own walk
    rows[5] = 0.0
    walked = np.array([_walk_trees(model, r) for r in rows])
    np.testing.assert_array_equal(model.raw_score(rows), walked)
    np.testing.assert_array_equal(model.raw_score(rows[2]), walked[2:3])


# --- the ring ------------------------------------------------------------------------------


def _mag32(samples: np.ndarray) -> list[float]:
    return list(np.sqrt(np.einsum("ij,ij->i", samples, samples)).astype(np.float32))


def _gate_reference(mag: list[list[float]], scanned: list[int]) -> list[tuple[int, int]]:
    hits = []
    for slot, values in enumerate(mag):
        start = max(scanned[slot], len(values) - fall.RING)
        for k in range(start, len(values)):
            if values[k] > fall.GATE_G:
                hits.append((slot, k))
                break
    return hits


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["block", "one", "gate", "slot"]), st.integers(1, 60)),
        min_size=1,
        max_size=40,
    )
)
def test_ring_gate_and_writes_equal_a_plain_reference(ops: list[tuple[str, int]]) -> None:
    """Blocks for all slots (the sliced lock-step path), single-slot writes that break the
    lock-step, new slots and wrap-arounds: the gate finds what a plain scan finds."""
    rng = np.random.default_rng(len(ops))
    ring = fall.WristRing(2)
    ring.add_slot()
    history: list[list[float]] = [[]]
    scanned = [0]
    for op, k in ops:
        if op == "slot":
            ring.add_slot()
            history.append([])
            scanned.append(0)
        elif op == "block" and ring.used:
            block = rng.normal(0, 1.6, (ring.used, k, 3))
            ring.write_block(block)
            for slot in range(ring.used):
                history[slot].extend(_mag32(block[slot]))
        elif op == "one":
            slot = int(rng.integers(ring.used))
            samples = rng.normal(0, 1.6, (k, 3))
            ring.write(slot, samples)
            history[slot].extend(_mag32(samples))
        else:
            hits = [(h.slot, h.crossing) for h in ring.gate()]
            assert hits == _gate_reference(history, scanned)
            scanned = [len(h) for h in history]
        for slot in range(ring.used):
            held = history[slot][-fall.RING :]
            got = ring.magnitudes(slot, len(history[slot]) - len(held), len(history[slot]))
            np.testing.assert_allclose(got, held, rtol=1e-6)


def test_a_block_after_a_single_bands_reading_is_not_written_blindly() -> None:
    """One band also sends on its own between blocks: the next block no longer continues
    every stream, so it is ingested per band (the overlap dropped), not written as a block."""
    clock = SimClock(start_wall=1000.0, start_mono=100.0)
    detector = FallAlerts(clock, FallSettings())
    bands = [Device("a", DeviceKind.WRISTBAND, "p1"), Device("b", DeviceKind.WRISTBAND, "p2")]
    still = np.tile([0.0, 0.0, 1.0], (2, 10, 1))
    t0 = clock.wall()
    for i in range(5):
        clock.advance(0.2)
        detector.on_grid_block(bands, t0 + 0.2 * i, still)
    assert detector.ring.written[:2].tolist() == [50, 50]
    ts = t0 + 1.0 + np.arange(10) * fall.GRID_DT
    detector.on_reading(Reading(ts[0], "a", {"acc": still[0], "ts": ts}), bands[0])
    assert detector.ring.written[:2].tolist() == [60, 50]
    clock.advance(0.2)
    detector.on_grid_block(bands, t0 + 1.0, still)  # band a already has these times
    assert detector.ring.written[:2].tolist() == [60, 60]
    clock.advance(0.2)
    detector.on_grid_block(bands, t0 + 1.2, still)
    assert detector.ring.written[:2].tolist() == [70, 70]


def test_a_block_with_the_devices_in_another_order_goes_to_each_devices_own_slot() -> None:
    """The first and last devices are slots 0 and n-1 but the middle ones are swapped: each
    band's samples land in its own slot (the block used to be written row i -> slot i)."""
    clock = SimClock(start_wall=1000.0, start_mono=100.0)
    detector = FallAlerts(clock, FallSettings())
    bands = [Device(c, DeviceKind.WRISTBAND, f"p{c}") for c in "abcd"]
    block = np.zeros((4, 10, 3))
    block[:, :, 0] = np.arange(4)[:, None] + 0.1  # row i: |a| = i + 0.1
    clock.advance(0.2)
    detector.on_grid_block(bands, 1000.0, block)
    swapped = [bands[0], bands[2], bands[1], bands[3]]
    clock.advance(0.2)
    detector.on_grid_block(swapped, 1000.2, block)
    latest = {d.id: float(detector.ring.mag[detector._wrists[d.id].slot, 19]) for d in bands}
    assert latest == pytest.approx({"a": 0.1, "c": 1.1, "b": 2.1, "d": 3.1})
