"""Screen augmentation for the variety between people (offline research, not shipped).

    PYTHONPATH=. nice .venv/bin/python -m training.fall.screen_warp \
        --data ../shared/data/fall --cache /tmp/fall_recs_main.pkl --splits 0 1 \
        --out training/fall/screen_warp.json

Eighth round. Training-only copies of every recording (``features.WARP_KINDS``), each kind from
a random stream of its own (``default_rng([0, 2, kind])``), so kinds 0-4 (``train.build``) stay
exactly as they are and the scored copies (kinds 0 and 2) do not change:

- kind 5, time warp: the whole recording played at speed s ~ U(0.8, 1.25): t' = t0 + (t - t0) / s
  on the source's own samples (its rate becomes rate * s); the fall marks (WEDA-FALL's
  fall_start/end, FallAllD's 6-15 s region) divided by s too;
- kind 6, dynamic magnitude scaling: g(t) = per axis mean of the samples within +-0.5 s (1 s
  moving average in time), a' = g + k (a - g), k ~ U(0.7, 1.3) per recording;
- kind 7: both (warp, then scaling on the warped times);
then, like every augmented kind, a random rotation (drawn first), noise N(0, 0.01 g) and clipping
at 4 g (p 0.6) or 8 g; and, like every training candidate, each labelled impact also cut 2-8 s
after it (variant kind + 10).

5-fold subject-wise CV exactly as ``screen_context.py`` (commit c0af018) / ``screen_rocket.py``
(bea7665): the 19 subjects permuted by ``default_rng(split)``, subject j of the permutation in
fold j % 5. In each fold, three settings, each with trees and net trained as ``train.fit``
(``train.sample_weights``, ``HistGradientBoostingClassifier(**train.PARAMS)``, ``cnn.train``):
base (kinds 0-4, the shipped training set), warp56 (+ kinds 5 and 6), warp567 (+ 5, 6, 7).
Scored: the held-out subjects' as-recorded (kind 0) and 20-30 Hz (kind 2) candidates, cascade
and mean of log-odds as ``FallModel``, per recording the max over its candidates; and the same
candidates with their stream cut 4 s after the impact. Per-candidate log-odds go to
/tmp/r8/scores_split{s}.npz fold by fold.

Result (2026-12-07, splits 0 and 1, ``screen_warp.json``): NOT passed (rule: as-recorded FallAllD
s@98 +0.015 on both splits, no other matched point more than 0.01 worse). Base reproduces the
fourth-round 5-fold figures exactly on both splits. As recorded FallAllD s@98, base -> warp56 ->
warp567: split 0 0.912 -> 0.908 -> 0.905, split 1 0.905 -> 0.890 -> 0.918; WEDA-FALL s@98 loses
1-3 falls of 200 in every new setting and split. 20-30 Hz FallAllD s@98 gains on both splits
(+0.022 / +0.022 warp56, +0.013 / +0.041 warp567), but 20-30 Hz WEDA-FALL s@98 loses up to 0.02.
Cut 4 s after the impact, matched points move by <= 0.038 (base <= 0.035).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from gateway.detection import fall, fall_sequence
from training.fall import cnn
from training.fall import train as T
from training.fall.cv_live import matched_points
from training.fall.dataset import Recording, load
from training.fall.export import hgb_arrays, in_memory, model_arrays
from training.fall.features import WARP_KINDS, candidates

WORK = Path("/tmp/r8")
FOLDS = 5
SCORED = (0, 2)
CUT_S = 4.0
SETTINGS = {"base": (0, 1, 2, 3, 4), "warp56": (0, 1, 2, 3, 4, 5, 6)}
SETTINGS["warp567"] = (0, 1, 2, 3, 4, 5, 6, 7)


# --- candidates ----------------------------------------------------------------------------


def arrays(cands) -> dict:
    return {
        "rec": np.array([c.rec for c in cands]),
        "variant": np.array([c.variant for c in cands]),
        "target": np.array([c.target for c in cands]),
        "F": np.array([c.features for c in cands]),
        "X": np.stack([c.sequence for c in cands]),
    }


def prepare_base(recs: list[Recording]) -> dict:
    """``train.build`` (kinds 0-4) and 4 s-cut copies of the scored kinds (as screen_rocket)."""
    grids: list[np.ndarray] = []
    original = fall.resample_recording

    def capture(t: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        grid = original(t, xyz)
        grids.append(grid)
        return grid

    fall.resample_recording = capture
    try:
        cands = T.build(recs)
    finally:
        fall.resample_recording = original
    grids = grids[: len(recs) * T.VARIANTS]
    cut_idx, cut_f, cut_x = [], [], []
    checked = 0
    for k, c in enumerate(cands):
        if c.variant not in SCORED:
            continue
        grid = grids[c.rec * T.VARIANTS + c.variant]
        impact = round(c.impact_s * fall.GRID_HZ)
        start = max(0, impact - fall.PRE)
        if checked < 50:
            stop = min(impact + fall.POST, len(grid))
            assert np.allclose(fall.impact_features(grid[start:stop], impact - start), c.features)
            checked += 1
        stop = min(impact + round(CUT_S * fall.GRID_HZ), len(grid))
        window = grid[start:stop]
        cut_idx.append(k)
        cut_f.append(fall.impact_features(window, impact - start))
        cut_x.append(fall_sequence.window_sequences(window[None], impact - start)[0])
    data = arrays(cands)
    data |= {"cut_idx": np.array(cut_idx), "cut_F": np.array(cut_f), "cut_X": np.stack(cut_x)}
    return data


def prepare_warp(recs: list[Recording], kind: int, seed: int = 0) -> dict:
    rng = np.random.default_rng([seed, 2, kind])
    out = []
    for i, rec in enumerate(recs):
        out.extend(candidates(rec, i, [kind], rng, truncate=True))
    return arrays(out)


def prepare(recs: list[Recording], path: Path, cache: Path) -> dict:
    if path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    t0 = time.time()
    with ProcessPoolExecutor(2) as ex:
        base = ex.submit(_base_job, cache)
        warps = [ex.submit(_warp_job, cache, k) for k in sorted(WARP_KINDS)]
        data = base.result()
        parts = [w.result() for w in warps]
    n_base = len(data["rec"])
    for key in ("rec", "variant", "target", "F", "X"):
        data[key] = np.concatenate([data[key]] + [p[key] for p in parts])
    data["n_base"] = n_base
    print(f"candidates built in {time.time() - t0:.0f} s", flush=True)
    with path.open("wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return data


def _base_job(cache: Path) -> dict:
    return prepare_base(load(Path("."), cache))


def _warp_job(cache: Path, kind: int) -> dict:
    return prepare_warp(load(Path("."), cache), kind)


# --- metrics -------------------------------------------------------------------------------


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


def misses_at_98(recs: list[Recording], scores: np.ndarray) -> dict:
    """Per dataset: the falls missed at the threshold of sensitivity at 0.98 specificity (as
    matched_points chooses it), per subject, and the false alarms there."""
    out = {}
    for ds in sorted({r.dataset for r in recs}):
        idx = np.array([i for i, r in enumerate(recs) if r.dataset == ds])
        y = np.array([recs[i].label == "fall" for i in idx])
        s = scores[idx]
        best, thr = -1.0, np.inf
        for t in np.unique(np.concatenate([s, [np.inf]])):
            if (s[~y] < t).mean() >= 0.98 and (s[y] >= t).mean() > best:
                best, thr = (s[y] >= t).mean(), t
        per: dict[str, int] = {}
        for i in idx[y & (s < thr)]:
            per[recs[i].subject] = per.get(recs[i].subject, 0) + 1
        out[ds] = {
            "missed": int((y & (s < thr)).sum()),
            "false_alarms": int((~y & (s >= thr)).sum()),
            "per_subject": dict(sorted(per.items())),
        }
    return out


# --- the screen ----------------------------------------------------------------------------


def combine(lt: np.ndarray, ln: np.ndarray, floor: float) -> np.ndarray:
    return np.where(lt >= floor, (lt + ln) / 2.0, lt)


def run_split(split: int, recs: list[Recording], data: dict) -> tuple[dict, dict]:
    path = WORK / f"scores_split{split}.npz"
    rec, var, tgt = data["rec"], data["variant"], data["target"]
    cut_idx = data["cut_idx"]
    subjects = sorted({r.subject for r in recs})
    perm = np.random.default_rng(split).permutation(subjects)
    fold_of = {s: j % FOLDS for j, s in enumerate(perm)}
    rec_fold = np.array([fold_of[r.subject] for r in recs])
    cand_fold = rec_fold[rec]
    n = len(rec)
    kind = var % 10
    assert set(np.unique(kind)) == set(range(8)), np.unique(kind)
    cands = [  # for train.sample_weights (it reads rec, target)
        T.Candidate(int(rec[i]), int(var[i]), 0.0, data["F"][i], data["X"][i], int(tgt[i]))
        for i in range(n)
    ]
    lt = {s: np.full(n, np.nan) for s in SETTINGS}
    ln = {s: np.full(n, np.nan) for s in SETTINGS}
    clt = {s: np.full(len(cut_idx), np.nan) for s in SETTINGS}
    cln = {s: np.full(len(cut_idx), np.nan) for s in SETTINGS}
    floor = None
    times: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for f in range(FOLDS):
        held_recs = set(np.flatnonzero(rec_fold == f).tolist())
        te = np.flatnonzero((cand_fold == f) & np.isin(var, SCORED))
        ct = np.flatnonzero(cand_fold[cut_idx] == f)
        for name, kinds in SETTINGS.items():
            t1 = time.time()
            tr = np.flatnonzero((cand_fold != f) & (tgt >= 0) & np.isin(kind, kinds))
            assert not held_recs & set(rec[tr].tolist())
            assert not {recs[i].subject for i in held_recs} & {recs[i].subject for i in rec[tr]}
            y = tgt[tr]
            w = T.sample_weights([cands[i] for i in tr], recs)
            clf = HistGradientBoostingClassifier(**T.PARAMS)
            clf.fit(data["F"][tr], y, sample_weight=w)
            net = cnn.export(cnn.train(data["X"][tr], y, w))
            model = in_memory(model_arrays(hgb_arrays(clf), net, 0.5))
            floor = model.net_floor
            lt[name][te] = model.trees.raw_score(data["F"][te])
            ln[name][te] = model.net.raw_score(data["X"][te])
            shipped = model.raw_score(data["F"][te], data["X"][te])
            assert np.allclose(shipped, combine(lt[name][te], ln[name][te], floor), atol=1e-9)
            clt[name][ct] = model.trees.raw_score(data["cut_F"][ct])
            cln[name][ct] = model.net.raw_score(data["cut_X"][ct])
            times[name].append(round(time.time() - t1, 1))
            print(
                f"split {split} fold {f} {name}: trees+net {time.time() - t1:.0f} s, "
                f"{len(tr)} train / {len(te)} held",
                flush=True,
            )
        np.savez(
            path,
            **{f"lt_{s}": lt[s] for s in SETTINGS},
            **{f"ln_{s}": ln[s] for s in SETTINGS},
            **{f"clt_{s}": clt[s] for s in SETTINGS},
            **{f"cln_{s}": cln[s] for s in SETTINGS},
            cut_idx=cut_idx,
            cand_fold=cand_fold,
            folds_done=f + 1,
            floor=floor,
        )
    return evaluate(recs, data, lt, ln, clt, cln, floor), times


def evaluate(recs, data, lt, ln, clt, cln, floor) -> dict:
    rec, var, cut_idx = data["rec"], data["variant"], data["cut_idx"]
    out: dict = {}
    for vv, vname in ((0, "as recorded"), (2, "20-30 Hz")):
        sel = var == vv
        csel = var[cut_idx] == vv
        for s in lt:
            assert not np.isnan(lt[s][sel]).any()
            sc = recording_scores(len(recs), rec[sel], combine(lt[s][sel], ln[s][sel], floor))
            out[f"{vname}|{s}"] = metrics(recs, sc)
            out[f"{vname}|{s}|misses_at_98"] = misses_at_98(recs, sc)
            sc = recording_scores(
                len(recs), rec[cut_idx][csel], combine(clt[s][csel], cln[s][csel], floor)
            )
            out[f"{vname}|{s}|cut4s"] = metrics(recs, sc)
    return out


def rule(results: dict, combo: str) -> dict:
    """The decision rule fixed before the run."""
    ok, notes = True, []
    for split, res in results.items():
        base, new = res["as recorded|base"], res[f"as recorded|{combo}"]
        gain = new["FallAllD"][0] - base["FallAllD"][0]
        notes.append(f"split {split}: as recorded FallAllD s@98 {gain:+.4f}")
        if gain < 0.015 - 1e-9:
            ok = False
        for name in ("as recorded", "20-30 Hz"):
            for ds in ("FallAllD", "WEDA-FALL"):
                for j, point in ((0, "s@98"), (1, "sp@95")):
                    if (name, ds, j) == ("as recorded", "FallAllD", 0):
                        continue
                    drop = res[f"{name}|base"][ds][j] - res[f"{name}|{combo}"][ds][j]
                    if drop > 0.01 + 1e-9:
                        ok = False
                        notes.append(f"split {split}: {name} {ds} {point} -{drop:.4f} (fails)")
    return {"passes": ok, "notes": notes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fall"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fall_recs_main.pkl"))
    ap.add_argument("--splits", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    recs = load(args.data, args.cache)
    data = prepare(recs, WORK / "prep.pkl", args.cache)
    kinds, counts = np.unique(data["variant"], return_counts=True)
    per_kind = dict(zip(kinds.tolist(), counts.tolist(), strict=True))
    print(f"{len(recs)} recordings, candidates per kind {per_kind}")
    results, times = {}, {}
    for split in args.splits:
        results[split], times[split] = run_split(split, recs, data)
        for key, val in results[split].items():
            print(f"split {split} {key:40s} {val}", flush=True)
        report = {
            "augmentation": {
                "5": "time warp: t' = t0 + (t - t0) / s, s ~ U(0.8, 1.25), native samples; "
                "fall marks / s",
                "6": "dynamic magnitude scaling: g = per-axis mean within +-0.5 s; "
                "a' = g + k (a - g), k ~ U(0.7, 1.3)",
                "7": "5 then 6",
                "all": "rotation first; noise N(0, 0.01); clip 4 g (p 0.6) else 8 g; each "
                "labelled impact also cut 2-8 s after it; rng default_rng([0, 2, kind])",
            },
            "settings": {k: list(v) for k, v in SETTINGS.items()},
            "cells": "s@98, sp@95, sensitivity at 0.5, specificity at 0.5",
            "candidates_per_kind": per_kind,
            "fold_seconds": times,
            "results": results,
            "rule_warp56": rule(results, "warp56"),
            "rule_warp567": rule(results, "warp567"),
        }
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({"warp56": rule(results, "warp56"), "warp567": rule(results, "warp567")}))


if __name__ == "__main__":
    main()
