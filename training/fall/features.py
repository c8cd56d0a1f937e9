"""Candidates and features of the shared recordings, with augmentation (offline only).

Uses :mod:`gateway.detection.fall` itself, so training sees exactly what the live detector
computes. Augmentations imitate other wrist devices: random axis rotation (the features are
rotation-invariant, but clipping per axis is not), clipping at 4 g, a lower sampling rate with
jitter (kind 2 at 20-30 Hz, scored in cross-validation; two more training copies at 18-35 Hz,
one low-passed first), sensor noise, and a stream that stops early after an impact (so the
model cannot learn that a short post-impact window means "a daily activity that ended the
clip").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gateway.detection import fall, fall_sequence
from training.fall.dataset import Recording


@dataclass
class Candidate:
    rec: int  # index of the recording
    variant: int
    impact_s: float
    features: np.ndarray
    sequence: np.ndarray  # float32 (channels, length), see gateway.detection.fall_sequence
    target: int  # 1 fall impact, 0 daily activity, -1 other candidate in a fall recording


# Extra training copies of slower devices, never scored (the 20-30 Hz copy, kind 2, stays the
# measure of slow devices): kind -> (lowest rate Hz, highest rate Hz, anti-alias). Built from a
# random stream of their own (train.build_extra), so kinds 0-2 stay exactly as they were.
# 5-fold subject-wise CV, two splits: 20-30 Hz FallAllD s@98 +3 and +1 of 317 falls (0.836 ->
# 0.845 / 0.839), sensitivity at 0.5 +13 / +14 falls, specificity at 0.5 -6 / -9 of 1,272
# activities; as recorded, s@98 and sp@95 lost at most 1 recording on either dataset.
EXTRA_KINDS: dict[int, tuple[float, float, bool]] = {
    3: (18.0, 35.0, False),  # instantaneous samples, like kind 2
    4: (18.0, 35.0, True),  # each sample the mean over its period (a sensor averaging)
}


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def variant(rec: Recording, kind: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(t, xyz) of one augmented copy. kind 0 is the recording as it is."""
    t, xyz = rec.t.copy(), rec.xyz.copy()
    if kind == 0:
        return t, xyz
    xyz = xyz @ random_rotation(rng).T
    if kind == 2:  # a slower device: 20-30 Hz with jittered sample times
        t, xyz = slower_device(t, xyz, rng.uniform(20.0, 30.0), False, rng)
    elif kind in EXTRA_KINDS:  # extra training copies of other devices (never scored)
        lo, hi, anti_alias = EXTRA_KINDS[kind]
        t, xyz = slower_device(t, xyz, rng.uniform(lo, hi), anti_alias, rng)
    xyz = xyz + rng.normal(0, 0.01, xyz.shape)
    clip = 4.0 if kind == 1 or rng.random() < 0.6 else 8.0
    return t, np.clip(xyz, -clip, clip)


def slower_device(
    t: np.ndarray, xyz: np.ndarray, rate: float, anti_alias: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(t, xyz) as a device sampling at ``rate`` Hz with jittered sample times would give them;
    with ``anti_alias`` each sample is the mean over its sample period first (a simple low-pass,
    as a low-rate sensor averaging internally), else the instantaneous value."""
    if anti_alias:
        t, xyz = period_average(*fall.clean_times(t, xyz), 1.0 / rate)
    new_t = np.arange(t[0], t[-1], 1.0 / rate)
    new_t = np.clip(new_t + rng.normal(0, 0.1 / rate, new_t.size), t[0], t[-1])
    new_t.sort()
    return new_t, np.stack([np.interp(new_t, t, xyz[:, a]) for a in range(3)], axis=1)


def period_average(t: np.ndarray, xyz: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Centred moving average over ``period`` seconds, on a uniform grid at the source's mean
    rate (the input times may be irregular)."""
    src = fall.source_rate(t)
    if not np.isfinite(src):
        return t, xyz
    width = round(src * period)
    if width < 2:
        return t, xyz
    fine = np.arange(t[0], t[-1], 1.0 / src)
    grid = np.stack([np.interp(fine, t, xyz[:, a]) for a in range(3)], axis=1)
    padded = np.pad(grid, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    kernel = np.full(width, 1.0 / width)
    smooth = [np.convolve(padded[:, a], kernel, mode="valid") for a in range(3)]
    return fine, np.stack(smooth, axis=1)


def fall_region(rec: Recording) -> tuple[float, float]:
    if rec.fall_start_s is not None and rec.fall_end_s is not None:
        return rec.fall_start_s - 1.0, rec.fall_end_s + 2.0
    if rec.dataset == "FallAllD":
        return 6.0, 15.0  # "impact near 10 s"
    return 0.0, float(rec.t[-1] - rec.t[0])


def candidates(
    rec: Recording, index: int, kinds: Iterable[int], rng: np.random.Generator, truncate: bool
) -> list[Candidate]:
    out: list[Candidate] = []
    for kind in kinds:
        t, xyz = variant(rec, kind, rng)
        grid = fall.resample_recording(t - t[0], xyz)
        gate = fall.gate_level(fall.source_rate(fall.clean_times(t, xyz)[0]))
        found = fall.recording_candidates(grid, gate)
        targets = [0] * len(found)
        if rec.label == "fall" and found:
            lo, hi = fall_region(rec)
            inside = [
                (feat[0], i)
                for i, (imp, feat) in enumerate(found)
                if lo <= imp / fall.GRID_HZ <= hi
            ]
            targets = [-1] * len(found)
            if inside:
                targets[max(inside)[1]] = 1
        sequences = grid_sequences(grid, [impact for impact, _ in found])
        for (impact, feats), seq, target in zip(found, sequences, targets, strict=True):
            impact_s = impact / fall.GRID_HZ
            out.append(Candidate(index, kind, impact_s, feats, seq, target))
            if truncate and target >= 0:
                # the same impact with the stream stopping early (falls and daily activities
                # alike, so that a short post-impact window says nothing about the class)
                stop = impact + int(rng.integers(fall.MIN_POST, fall.POST))
                if stop < len(grid):
                    start = max(0, impact - fall.PRE)
                    window = grid[start:stop]
                    feats_cut = fall.impact_features(window, impact - start)
                    seq_cut = fall_sequence.window_sequences(window[None], impact - start)[0]
                    out.append(Candidate(index, kind + 10, impact_s, feats_cut, seq_cut, target))
    return out


def grid_sequences(grid: np.ndarray, impacts: list[int]) -> np.ndarray:
    """Sequences of the candidates at ``impacts`` of a whole recording on the grid, on the same
    windows as their features (``fall.recording_candidates``)."""
    if not impacts:
        return np.empty((0, len(fall_sequence.CHANNELS), fall_sequence.LENGTH), np.float32)
    at = np.array(impacts, dtype=np.int64)
    starts, stops = fall.grid_spans(grid, at)
    return fall_sequence.sequences_of(fall.grid_source(grid, at), starts, at, stops)
