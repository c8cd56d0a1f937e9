"""The fall model's second half: the candidates' sequences and the numpy 1-D conv net.

The net's numpy forward is checked against a plain loop-by-loop reference of the layers torch
ran in training (convolution, ReLU, adaptive average pooling with torch's bin edges, flattening
channel by channel, dense layers); torch itself is an offline tool and not needed here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gateway.detection import fall, fall_sequence
from gateway.detection.fall_model import DEFAULT_MODEL_PATH, ConvNet, FallModel
from tests.detection.fall_spy import SpyModel
from tests.detection.test_fall_maths import _fall_like_window

CHANNELS = len(fall_sequence.CHANNELS)


def _random_layers(rng: np.random.Generator) -> dict:
    shapes = [(16, CHANNELS, 7, 2, 3), (32, 16, 5, 2, 2), (32, 32, 5, 2, 2)]
    convs = [
        (rng.normal(0, 0.3, (o, i, k)), rng.normal(0, 0.1, o), stride, pad)
        for o, i, k, stride, pad in shapes
    ]
    dense = [(rng.normal(0, 0.2, (16, 32 * 10)), rng.normal(0, 0.1, 16))]
    dense.append((rng.normal(0, 0.3, (1, 16)), rng.normal(0, 0.1, 1)))
    return {"convs": convs, "bins": 10, "dense": dense}


def _reference_forward(net_args: dict, x: np.ndarray) -> float:
    """One candidate ``x`` ``(channels, length)`` through the layers, written as loops."""
    h = x.astype(np.float64)
    for weight, bias, stride, pad in net_args["convs"]:
        out_ch, in_ch, k = weight.shape
        padded = np.zeros((in_ch, h.shape[1] + 2 * pad))
        padded[:, pad : pad + h.shape[1]] = h
        n_out = (padded.shape[1] - k) // stride + 1
        y = np.empty((out_ch, n_out))
        for o in range(out_ch):
            for t in range(n_out):
                y[o, t] = bias[o] + np.sum(weight[o] * padded[:, t * stride : t * stride + k])
        h = np.maximum(y, 0.0)
    n, bins = h.shape[1], net_args["bins"]
    pooled = np.empty((h.shape[0], bins))
    for b in range(bins):
        lo, hi = math.floor(b * n / bins), math.ceil((b + 1) * n / bins)  # torch's edges
        pooled[:, b] = h[:, lo:hi].mean(axis=1)
    v = pooled.reshape(-1)  # channel by channel, as torch's Flatten
    for i, (weight, bias) in enumerate(net_args["dense"]):
        v = weight @ v + bias
        if i < len(net_args["dense"]) - 1:
            v = np.maximum(v, 0.0)
    return float(v[0])


def test_net_forward_equals_a_loop_by_loop_reference() -> None:
    rng = np.random.default_rng(50)
    args = _random_layers(rng)
    net = ConvNet(**args)
    x = rng.normal(0, 1, (3, CHANNELS, fall_sequence.LENGTH)).astype(np.float32)
    expected = [_reference_forward(args, row) for row in x]
    np.testing.assert_allclose(net.raw_score(x), expected, rtol=1e-4, atol=1e-4)
    # one candidate alone scores as in a batch
    np.testing.assert_allclose(net.raw_score(x[1:2]), net.raw_score(x)[1:2], rtol=1e-5)


def test_net_rejects_sequences_of_another_length() -> None:
    net = ConvNet(**_random_layers(np.random.default_rng(51)))
    with pytest.raises(ValueError, match="expected"):
        net.raw_score(np.zeros((2, CHANNELS, 100), dtype=np.float32))


def _windows(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Candidate windows the trees score on both sides of the net floor."""
    falls = [_fall_like_window(rng) for _ in range(3)]
    impact = falls[0][1]
    windows = np.stack([w for w, _ in falls])
    # a wrist at rest knocked once (one sample of 2.4 g), as the benchmark's streams
    gentle = np.tile([-1.0, 0.0, 0.0], (3, windows.shape[1], 1))
    gentle += rng.normal(0, 0.02, gentle.shape)
    gentle[:, impact] *= 2.4
    return np.concatenate([windows, gentle]), impact


def test_shipped_model_asks_the_net_only_above_the_floor() -> None:
    model = FallModel.load()
    assert model.net is not None, "the shipped model has a net"
    windows, impact = _windows(np.random.default_rng(52))
    feats = fall.window_features(windows, impact)
    seqs = fall_sequence.window_sequences(windows, impact)
    trees = model.trees.raw_score(feats)
    asked = trees >= model.net_floor
    assert asked.any() and not asked.all(), trees  # the windows straddle the floor
    stacked = (trees + model.net.raw_score(seqs)) / 2
    expected = np.where(asked, stacked, trees)
    np.testing.assert_allclose(model.raw_score(feats, seqs), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="sequences"):
        model.raw_score(feats)
    trees_only = FallModel(model.trees, None, model.decision_threshold)
    np.testing.assert_allclose(trees_only.raw_score(feats), trees)


def test_a_model_file_whose_net_does_not_fit_fails_at_load() -> None:
    with np.load(DEFAULT_MODEL_PATH) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"]))
    assert FallModel.from_arrays(arrays, meta).net is not None
    longer = meta | {"net": meta["net"] | {"length": fall_sequence.LENGTH + 50}}
    with pytest.raises(ValueError, match="retrain"):
        FallModel.from_arrays(arrays, longer)
    # a dense layer of another width: caught at load, not at the first impact
    narrow = arrays | {"dense0_weight": arrays["dense0_weight"][:, :-10]}
    with pytest.raises(ValueError):
        FallModel.from_arrays(narrow, meta)
    # meta without a net entry: trees only, the net's arrays are ignored
    trees_only = FallModel.from_arrays(arrays, {k: v for k, v in meta.items() if k != "net"})
    assert trees_only.net is None


def test_the_net_is_asked_from_the_floor_up() -> None:
    windows, impact = _windows(np.random.default_rng(55))
    feats = fall.window_features(windows, impact)
    shipped = FallModel.load()
    trees = shipped.trees.raw_score(feats)
    for floor, expected in ((trees[0], 1), (np.nextafter(trees[0], np.inf), 0)):
        spy = SpyModel(net_floor=float(floor))
        spy.raw_score(feats[:1], fall_sequence.window_sequences(windows[:1], impact))
        assert len(spy.sequences) == expected


def test_score_windows_builds_sequences_only_for_the_net_and_scores_alike() -> None:
    windows, impact = _windows(np.random.default_rng(53))
    # the same windows with a shorter span after the impact (a stalled stream) as well
    n = len(windows)
    model = SpyModel()
    impacts = np.full(2 * n, impact + 10_000)
    starts = impacts - impact
    stops = np.concatenate([starts[:n] + windows.shape[1], impacts[n:] + 150])

    def source(rows: np.ndarray, before: int, after: int) -> np.ndarray:
        idx = rows % n
        return windows[idx][:, impact - before : impact + after]

    feats, probs = model.score_windows(source, starts, impacts, stops)
    seen = len(model.sequences)
    cut = windows[:, : impact + 150]
    expected_feats = np.concatenate(
        [fall.window_features(windows, impact), fall.window_features(cut, impact)]
    )
    expected_seqs = np.concatenate(
        [
            fall_sequence.window_sequences(windows, impact),
            fall_sequence.window_sequences(cut, impact),
        ]
    )
    np.testing.assert_allclose(feats, expected_feats)
    np.testing.assert_allclose(probs, model.probability(expected_feats, expected_seqs), rtol=1e-6)
    asked = model.trees.raw_score(expected_feats) >= model.net_floor
    assert seen == asked.sum() < 2 * n


# --- sequences -----------------------------------------------------------------------------


def _reference_sequence(win: np.ndarray, impact: int) -> np.ndarray:
    """The sequences of one window, written out one window at a time (the definition the net
    was first trained on, in the probe of ``training/fall/cnn.py``'s docstring)."""
    pre, length = fall.PRE, fall_sequence.LENGTH
    s0, s1 = pre - impact, pre - impact + len(win)
    full = np.empty((length, 3))
    full[s0:s1] = win
    full[:s0] = win[0]  # no data there: the edge value is held, the mask is 0
    full[s1:] = win[-1]
    mask = np.zeros(length)
    mask[s0:s1] = 1
    lp = fall.smooth(full[None])[0]
    lp_norm = np.linalg.norm(lp, axis=1)
    # gravity: the mean direction up to 0.2 s before the impact (to the impact if < 5 samples)
    g = lp[s0 : pre - 10].mean(axis=0) if pre - 10 - s0 >= 5 else lp[s0 : pre + 1].mean(axis=0)
    g = g / np.linalg.norm(g)
    # settled: 1.5-4 s after, or the last 1.5 s that arrived when less than 0.5 s of that exists
    a, b = pre + 75, min(pre + 200, s1)
    if b - a < 25:
        a, b = max(pre, s1 - 75), s1
    h = lp[a:b].mean(axis=0)
    h = h / np.linalg.norm(h)
    jerk = np.r_[0.0, np.linalg.norm(np.diff(full, axis=0), axis=1) * fall.GRID_HZ]
    return np.stack(
        [
            np.clip(np.linalg.norm(full, axis=1), 0, 8) - 1,
            np.clip(lp_norm, 0, 8) - 1,
            np.arccos(np.clip(lp @ g / lp_norm, -1, 1)) / np.pi,
            np.arccos(np.clip(lp @ h / lp_norm, -1, 1)) / np.pi,
            np.log1p(jerk / 10.0),
            mask,
        ]
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [(150, 400), (0, 400), (3, 120), (14, 400), (16, 400), (150, 100), (150, 80), (40, 60)],
)
def test_sequences_equal_the_one_window_reference(before: int, after: int) -> None:
    """Spans that take every branch: a stream that began late (edge hold, a short or no
    pre-impact gravity), one that stopped early (the settled direction from the last 1.5 s)."""
    rng = np.random.default_rng(before * 1000 + after)
    windows = rng.normal(0, 0.5, (3, before + after, 3)) + np.array([0.0, 0.0, 1.0])
    got = fall_sequence.window_sequences(windows, before)
    for row, window in zip(got, windows, strict=True):
        np.testing.assert_allclose(row, _reference_sequence(window, before), atol=2e-6)


def test_sequences_are_rotation_invariant() -> None:
    rng = np.random.default_rng(53)
    xyz, i0 = _fall_like_window(rng)
    base = fall_sequence.window_sequences(xyz[None], i0)[0]
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = fall_sequence.window_sequences((xyz @ q.T)[None], i0)[0]
    np.testing.assert_allclose(rotated, base, atol=2e-5)


def test_sequences_of_a_wrist_at_rest_and_of_a_turn() -> None:
    n = fall_sequence.LENGTH
    still = np.tile([0.0, 0.0, 1.0], (n, 1))
    seq = fall_sequence.window_sequences(still[None], fall.PRE)[0]
    by_name = dict(zip(fall_sequence.CHANNELS, seq, strict=True))
    for name in ("mag", "mag_lp", "tilt_pre", "tilt_post", "jerk"):
        np.testing.assert_allclose(by_name[name], 0.0, atol=1e-6, err_msg=name)
    assert np.all(by_name["mask"] == 1.0)
    # the wrist turns by 90 degrees at the impact and stays there
    turned = still.copy()
    turned[fall.PRE :] = [1.0, 0.0, 0.0]
    seq = dict(
        zip(
            fall_sequence.CHANNELS,
            fall_sequence.window_sequences(turned[None], fall.PRE)[0],
            strict=True,
        )
    )
    assert seq["tilt_pre"][fall.PRE + 100] == pytest.approx(0.5, abs=1e-6)
    assert seq["tilt_post"][fall.PRE - 100] == pytest.approx(0.5, abs=1e-6)
    assert seq["tilt_post"][fall.PRE + 100] == pytest.approx(0.0, abs=1e-6)
    assert seq["jerk"][fall.PRE] > 1.0  # a step of 1.4 g in 20 ms


def test_sequences_of_a_window_that_stops_early_hold_the_edge_and_mask_it() -> None:
    rng = np.random.default_rng(54)
    xyz, i0 = _fall_like_window(rng)
    before, after = 60, 150  # the stream began 1.2 s before the impact and stopped 3 s after
    window = xyz[i0 - before : i0 + after]
    seq = fall_sequence.window_sequences(window[None], before)[0]
    mask = seq[fall_sequence.CHANNELS.index("mask")]
    assert mask[: fall.PRE - before].sum() == 0 and mask[fall.PRE + after :].sum() == 0
    assert mask[fall.PRE - before : fall.PRE + after].min() == 1.0
    mag = seq[0]
    held = np.linalg.norm(window[-1]) - 1.0
    np.testing.assert_allclose(mag[fall.PRE + after :], held, rtol=1e-5)
    # the same window among full ones, computed together, is the same
    many = np.stack([window, window[::-1] * 0.5, window + 0.1])
    np.testing.assert_allclose(fall_sequence.window_sequences(many, before)[0], seq)


def test_sequences_of_bad_windows() -> None:
    bad = np.full((1, 200, 3), np.nan)
    seq = fall_sequence.window_sequences(bad, 100)
    assert np.all(np.isfinite(seq))
    with pytest.raises(ValueError, match="does not fit"):
        fall_sequence.window_sequences(np.zeros((1, 100, 3)), fall.PRE + 1)
    with pytest.raises(ValueError, match="does not fit"):
        fall_sequence.window_sequences(np.zeros((1, fall_sequence.LENGTH + 1, 3)), fall.PRE)


def test_exported_torch_net_scores_alike_in_numpy() -> None:
    """Offline check (skipped where torch is not installed, as in CI): batch norm folded into
    the convolutions at export gives the torch net's log-odds."""
    torch = pytest.importorskip("torch")
    from training.fall import cnn

    torch.manual_seed(56)
    net = cnn.Net()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.normal_()
            module.bias.data.normal_()
    net.eval()
    x = np.random.default_rng(56).normal(0, 1, (40, CHANNELS, fall_sequence.LENGTH))
    x = x.astype(np.float32)
    ours = ConvNet.from_arrays(*cnn.export(net)).raw_score(x)
    np.testing.assert_allclose(ours, cnn.logits(net, x), rtol=1e-4, atol=1e-4)
