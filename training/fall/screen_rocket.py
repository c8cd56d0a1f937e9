"""Screen a third fall model: ROCKET-style random convolution features + logistic regression
on the candidates' sequences, beside the shipped trees + net (offline research, not shipped).

    PYTHONPATH=. nice .venv/bin/python -m training.fall.screen_rocket \
        --data ../shared/data/fall --cache /tmp/fall_recs.pkl --splits 0 1 \
        --out training/fall/screen_rocket.json

5-fold subject-wise CV (the 19 subjects permuted by ``default_rng(split)``, subject j of the
permutation in fold j % 5, as the fourth-round probes). In each fold, on the same training
candidates (every kind, target >= 0) and sample weights: the trees and the net exactly as
``train.fit`` (exported, scored through ``FallModel``'s own arrays), and the random-kernel model.
Held out: the as-recorded (kind 0) and 20-30 Hz (kind 2) candidates, and the same candidates
with their stream cut 4 s after the impact (``--cut``). The kernels are fixed (one seed); each
kernel's bias is a quantile of its output on one random training sequence of the fold, so
nothing is drawn from a held-out subject.

Per-candidate log-odds go to /tmp/r6/scores_split{s}.npz as they come.

Result (2026-12-07, splits 0 and 1, ``screen_rocket.json``): NOT passed. The shipped combination
reproduces the fourth round's documented 5-fold figures exactly. The rocket model alone is far
weaker (as recorded FallAllD s@98 0.80 / 0.82 against base 0.912 / 0.905); mean(lt, ln, lr)
with the cascade gives FallAllD s@98 0.905 / 0.924 (-0.006 / +0.019) and loses 0.03 of
20-30 Hz WEDA-FALL s@98 on split 0; 0.5 base + 0.5 rocket -0.003 / -0.013.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from gateway.detection import fall, fall_sequence
from training.fall import train as T
from training.fall.cv_live import matched_points
from training.fall.dataset import Recording, load
from training.fall.export import in_memory

WORK = Path("/tmp/r6")
FOLDS = 5
CUT_S = 4.0
SCORED = (0, 2)  # as recorded, 20-30 Hz copy

# the random-kernel model (nothing tuned: first settings tried)
KERNELS = 400
TAPS = 9
MAX_DILATION = 32
ROCKET_CHANNELS = 5  # every channel but the mask
ROCKET_SEED = 0
C = 0.1


# --- candidates ----------------------------------------------------------------------------


def prepare(recs: list[Recording], path: Path) -> dict:
    """Every candidate as ``train.build`` makes it, plus 4 s-cut copies of the scored kinds."""
    if path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    grids: list[np.ndarray] = []
    original = fall.resample_recording

    def capture(t: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        grid = original(t, xyz)
        grids.append(grid)
        return grid

    fall.resample_recording = capture  # features.candidates calls it once per recording copy
    try:
        cands = T.build(recs)
    finally:
        fall.resample_recording = original
    grids = grids[: len(recs) * T.VARIANTS]  # build: recording by recording, kinds 0..2
    cut_idx, cut_f, cut_x = [], [], []
    checked = 0
    for k, c in enumerate(cands):
        if c.variant not in SCORED:
            continue
        grid = grids[c.rec * T.VARIANTS + c.variant]
        impact = round(c.impact_s * fall.GRID_HZ)
        start = max(0, impact - fall.PRE)
        if checked < 50:  # the captured grid is the candidate's own
            stop = min(impact + fall.POST, len(grid))
            assert np.allclose(fall.impact_features(grid[start:stop], impact - start), c.features)
            seq = fall_sequence.window_sequences(grid[start:stop][None], impact - start)[0]
            assert np.allclose(seq, c.sequence, atol=1e-5)
            checked += 1
        stop = min(impact + round(CUT_S * fall.GRID_HZ), len(grid))
        window = grid[start:stop]
        cut_idx.append(k)
        cut_f.append(fall.impact_features(window, impact - start))
        cut_x.append(fall_sequence.window_sequences(window[None], impact - start)[0])
    data = {
        "rec": np.array([c.rec for c in cands]),
        "variant": np.array([c.variant for c in cands]),
        "target": np.array([c.target for c in cands]),
        "F": np.array([c.features for c in cands]),
        "X": np.stack([c.sequence for c in cands]),
        "cut_idx": np.array(cut_idx),
        "cut_F": np.array(cut_f),
        "cut_X": np.stack(cut_x),
    }
    with path.open("wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return data


# --- the random-kernel model ---------------------------------------------------------------


class Rocket:
    """``KERNELS`` random kernels of ``TAPS`` taps (normal, mean-centred), dilation
    ``floor(2 ** U(0, log2(MAX_DILATION + 1)))``, each reading the sum of 1-3 random channels
    (not the mask); valid convolution. Per kernel: PPV (share of outputs above its bias) and
    max. Kernels of one dilation are one matrix product over all candidates."""

    def __init__(self, seed: int = ROCKET_SEED, kernels: int = KERNELS) -> None:
        rng = np.random.default_rng(seed)
        self.dilation = np.floor(2 ** rng.uniform(0, np.log2(MAX_DILATION + 1), kernels))
        self.dilation = self.dilation.astype(int)
        taps = rng.normal(size=(kernels, TAPS))
        taps -= taps.mean(axis=1, keepdims=True)
        mix = np.zeros((kernels, ROCKET_CHANNELS))
        for k in range(kernels):
            mix[k, rng.choice(ROCKET_CHANNELS, rng.integers(1, 4), replace=False)] = 1.0
        # weight (k, channel, tap)
        self.weight = (mix[:, :, None] * taps[:, None, :]).astype(np.float32)
        self.quantile = rng.uniform(size=kernels)
        self.groups = [(d, np.flatnonzero(self.dilation == d)) for d in np.unique(self.dilation)]
        self.kernels = kernels

    def convolve(self, x: np.ndarray, d: int, ks: np.ndarray) -> np.ndarray:
        """``(m, n_out, len(ks))`` outputs of the kernels ``ks`` (all of dilation ``d``)."""
        x = np.asarray(x[:, :ROCKET_CHANNELS], dtype=np.float32)
        m, c, _ = x.shape
        span = (TAPS - 1) * d + 1
        win = np.lib.stride_tricks.sliding_window_view(x, span, axis=2)[..., ::d]  # m,c,n_out,T
        n_out = win.shape[2]
        cols = np.ascontiguousarray(win.transpose(0, 2, 1, 3)).reshape(m * n_out, c * TAPS)
        w = self.weight[ks].reshape(len(ks), c * TAPS).T
        return (cols @ w).reshape(m, n_out, len(ks))

    def biases(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per kernel: its quantile of its output on one random sequence of ``x``."""
        b = np.empty(self.kernels, dtype=np.float32)
        pick = rng.integers(0, len(x), self.kernels)
        for d, ks in self.groups:
            for k in ks:
                out = self.convolve(x[pick[k] : pick[k] + 1], d, np.array([k]))[0, :, 0]
                b[k] = np.quantile(out, self.quantile[k])
        return b

    def transform(
        self, x: np.ndarray, biases: np.ndarray, chunk: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(max (m, K), ppv (B, m, K))`` for bias sets ``biases`` ``(B, K)``."""
        m = len(x)
        mx = np.empty((m, self.kernels), dtype=np.float32)
        ppv = np.empty((len(biases), m, self.kernels), dtype=np.float32)
        for a in range(0, m, chunk):
            part = x[a : a + chunk]
            for d, ks in self.groups:
                out = self.convolve(part, d, ks)
                mx[a : a + len(part), ks] = out.max(axis=1)
                for j, b in enumerate(biases):
                    ppv[j][a : a + len(part), ks] = (out > b[ks]).mean(axis=1)
        return mx, ppv


def fit_linear(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple:
    mean, std = z.mean(axis=0), z.std(axis=0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=3000)
    clf.fit((z - mean) / std, y, sample_weight=w)
    return mean, std, clf


def linear_logit(model: tuple, z: np.ndarray) -> np.ndarray:
    mean, std, clf = model
    return clf.decision_function((z - mean) / std)


# --- combinations and metrics --------------------------------------------------------------


def combine(lt: np.ndarray, ln: np.ndarray, lr: np.ndarray, floor: float) -> dict:
    ask = lt >= floor
    base = np.where(ask, (lt + ln) / 2.0, lt)
    return {
        "base": base,
        "rocket": lr,
        "mean3": np.where(ask, (lt + ln + lr) / 3.0, lt),
        "half": 0.5 * base + 0.5 * lr,
    }


def recording_scores(n_recs: int, rec: np.ndarray, logit: np.ndarray) -> np.ndarray:
    s = np.zeros(n_recs)
    np.maximum.at(s, rec, 1.0 / (1.0 + np.exp(-logit)))
    return s


def metrics(recs: list[Recording], scores: np.ndarray) -> dict:
    mp = matched_points(recs, scores)
    out = {}
    for ds, m in mp.items():
        idx = [i for i, r in enumerate(recs) if r.dataset == ds]
        y = np.array([recs[i].label == "fall" for i in idx])
        d = scores[idx] >= 0.5
        out[ds] = [
            m["sensitivity_at_specificity_0.98"],
            m["specificity_at_sensitivity_0.95"],
            round(float(d[y].mean()), 4),
            round(float((~d[~y]).mean()), 4),
        ]
    return out


# --- the screen ----------------------------------------------------------------------------


def run_split(split: int, recs: list[Recording], data: dict, rocket: Rocket, cut: bool) -> dict:
    path = WORK / f"scores_split{split}.npz"
    rec, var, tgt = data["rec"], data["variant"], data["target"]
    subjects = sorted({r.subject for r in recs})
    perm = np.random.default_rng(split).permutation(subjects)
    fold_of = {s: j % FOLDS for j, s in enumerate(perm)}
    rec_fold = np.array([fold_of[r.subject] for r in recs])
    cand_fold = rec_fold[rec]
    cut_idx = data["cut_idx"]
    n = len(rec)
    lt, ln, lr = (np.full(n, np.nan) for _ in range(3))
    clt, cln, clr = (np.full(len(cut_idx), np.nan) for _ in range(3))
    floor = None
    # the kernels' biases of every fold, each from that fold's training sequences only
    bias_rng = np.random.default_rng([ROCKET_SEED, split])
    train_of = [np.flatnonzero((cand_fold != f) & (tgt >= 0)) for f in range(FOLDS)]
    biases = np.stack([rocket.biases(data["X"][train_of[f]], bias_rng) for f in range(FOLDS)])
    t0 = time.time()
    x_all = np.concatenate([data["X"], data["cut_X"]]) if cut else data["X"]
    mx, ppv = rocket.transform(x_all, biases)
    print(
        f"split {split}: rocket transform of {len(x_all)} sequences {time.time() - t0:.0f} s",
        flush=True,
    )
    # candidate objects for train.fit (it reads rec, target, features, sequence)
    cands = [
        T.Candidate(int(rec[i]), int(var[i]), 0.0, data["F"][i], data["X"][i], int(tgt[i]))
        for i in range(n)
    ]
    for f in range(FOLDS):
        t1 = time.time()
        tr = train_of[f]
        held_recs = {i for i in range(len(recs)) if rec_fold[i] == f}
        assert not held_recs & set(rec[tr].tolist())
        train = [cands[i] for i in tr]
        model = in_memory(T.fit(train, recs, 0.5))
        floor = model.net_floor
        te = np.flatnonzero((cand_fold == f) & np.isin(var, SCORED))
        lt[te] = model.trees.raw_score(data["F"][te])
        ln[te] = model.net.raw_score(data["X"][te])
        # the shipped combination, reproduced: must equal FallModel.raw_score
        shipped = model.raw_score(data["F"][te], data["X"][te])
        mine = combine(lt[te], ln[te], ln[te], floor)["base"]
        assert np.allclose(shipped, mine, atol=1e-9), np.abs(shipped - mine).max()
        t2 = time.time()
        z = np.concatenate([ppv[f], mx], axis=1)
        y = tgt[tr]
        w = T.sample_weights(train, recs)
        lin = fit_linear(z[tr], y, w)
        lr[te] = linear_logit(lin, z[te])
        if cut:
            ct = np.flatnonzero(cand_fold[cut_idx] == f)
            clt[ct] = model.trees.raw_score(data["cut_F"][ct])
            cln[ct] = model.net.raw_score(data["cut_X"][ct])
            clr[ct] = linear_logit(lin, z[n + ct])
        np.savez(
            path, lt=lt, ln=ln, lr=lr, clt=clt, cln=cln, clr=clr, cut_idx=cut_idx, folds_done=f + 1
        )
        print(
            f"split {split} fold {f}: trees+net {t2 - t1:.0f} s, rocket fit "
            f"{time.time() - t2:.0f} s, {len(tr)} train / {len(te)} held",
            flush=True,
        )
    return evaluate(recs, data, lt, ln, lr, clt, cln, clr, floor, cut)


def evaluate(recs, data, lt, ln, lr, clt, cln, clr, floor, cut) -> dict:
    rec, var, cut_idx = data["rec"], data["variant"], data["cut_idx"]
    out: dict = {}
    sets = [("", rec, var, (lt, ln, lr))]
    if cut:
        sets.append(("cut4s ", rec[cut_idx], var[cut_idx], (clt, cln, clr)))
    for pre, r, v, (a, b, c) in sets:
        combos = combine(a, b, c, floor)
        for vv, name in ((0, "as recorded"), (2, "20-30 Hz")):
            sel = v == vv
            assert not np.isnan(a[sel]).any()
            for combo, logit in combos.items():
                s = recording_scores(len(recs), r[sel], logit[sel])
                out[f"{pre}{name}|{combo}"] = metrics(recs, s)
    return out


def rule(results: dict) -> dict:
    """The decision rule fixed before the run."""
    verdict = {}
    for combo in ("rocket", "mean3", "half"):
        ok, notes = True, []
        for split, res in results.items():
            base, new = res["as recorded|base"], res[f"as recorded|{combo}"]
            gain = new["FallAllD"][0] - base["FallAllD"][0]
            if gain < 0.015 - 1e-9:
                ok = False
                notes.append(f"split {split}: FallAllD s@98 {gain:+.3f}")
            for name in ("as recorded", "20-30 Hz"):
                for ds in ("FallAllD", "WEDA-FALL"):
                    for j, point in ((0, "s@98"), (1, "sp@95")):
                        if (name, ds, j) == ("as recorded", "FallAllD", 0):
                            continue  # the gain above
                        drop = res[f"{name}|base"][ds][j] - res[f"{name}|{combo}"][ds][j]
                        if drop > 0.01 + 1e-9:
                            ok = False
                            notes.append(f"split {split}: {name} {ds} {point} -{drop:.3f}")
        verdict[combo] = {"passes": ok, "failures": notes}
    return verdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fall"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fall_recs.pkl"))
    ap.add_argument("--splits", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--no-cut", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    t0 = time.time()
    recs = load(args.data, args.cache)
    data = prepare(recs, WORK / "prep.pkl")
    print(
        f"{len(recs)} recordings, {len(data['rec'])} candidates, "
        f"{len(data['cut_idx'])} cut copies ({time.time() - t0:.0f} s)",
        flush=True,
    )
    rocket = Rocket()
    results = {}
    for split in args.splits:
        results[split] = run_split(split, recs, data, rocket, not args.no_cut)
        for key, val in results[split].items():
            print(f"split {split} {key:28s} {val}", flush=True)
        report = {
            "rocket": {
                "kernels": KERNELS,
                "taps": TAPS,
                "max_dilation": MAX_DILATION,
                "channels": list(fall_sequence.CHANNELS[:ROCKET_CHANNELS]),
                "features": "ppv, max per kernel",
                "C": C,
                "seed": ROCKET_SEED,
            },
            "cells": "s@98, sp@95, sensitivity at 0.5, specificity at 0.5",
            "results": results,
            "rule": rule(results),
        }
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(rule(results), indent=1))


if __name__ == "__main__":
    main()
