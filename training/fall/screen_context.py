"""Screen longer pre-impact context for the trees (offline research, not shipped).

    PYTHONPATH=. nice .venv/bin/python -m training.fall.screen_context \
        --data ../shared/data/fall --cache /tmp/fall_recs_main.pkl --splits 0 1 \
        --out training/fall/screen_context.json

A family of 6 rotation-invariant features on ``[impact - 10 s, impact - 3 s)`` of the 50 Hz
grid (what the person did before the 3 s the 92 features see), NaN where that span holds less
than 1 s of data (:func:`context_features`). The net is unchanged (its 3 s window).

Clip starts must not leak the class (WEDA-FALL falls start 2.6-6 s into their clips): in
training, every candidate of both classes and every copy has its pre-context cut at a random
point uniform in 0-10 s before the impact (one draw per candidate, independent of class and
split) and the family computed on what remains; the 92 features stay as they are. Held out:
the family on all the pre-context the clip holds (as live would), and again with every held
out candidate's pre-context cut at 3 s (family all NaN).

5-fold subject-wise CV exactly as ``screen_rocket.py`` (commit bea7665): the 19 subjects
permuted by ``default_rng(split)``, subject j of the permutation in fold j % 5; per fold the
trees trained as ``train.fit`` on the 92 features (base) and on 92 + 6 (new), the net trained
once as ``train.fit`` and shared; cascade (net where the trees' log-odds >= the floor) and mean
of log-odds as ``FallModel``. Scored: as recorded (kind 0) and the 20-30 Hz copy (kind 2);
per recording the max over its candidates. Per-candidate log-odds go to
/tmp/r7/scores_split{s}.npz as they come (fold models to /tmp/r7/trees_split{s}_fold{f}.pkl);
``screen_context_posthoc.py`` adds the trees alone and the family's split counts to the json.

Result (2026-12-07, splits 0 and 1, ``screen_context.json``): NOT passed. Base reproduces
screen_rocket's (fourth-round) 5-fold figures exactly. As recorded FallAllD s@98 0.912 -> 0.896
(split 0) and 0.905 -> 0.896 (split 1); 20-30 Hz WEDA-FALL s@98 -0.025 and FallAllD -0.016 on
split 1. The trees alone gain a little (FallAllD s@98 +0.009 / +0.013) but not beside the net.
With every held-out pre-context cut at 3 s (family NaN) the figures barely move (as recorded
FallAllD s@98 0.899 / 0.896): the family contributes about nothing to the stacked model.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from gateway.detection import fall
from training.fall import cnn
from training.fall import train as T
from training.fall.cv_live import matched_points
from training.fall.dataset import Recording, load
from training.fall.export import hgb_arrays, in_memory, model_arrays
from training.fall.features import CONTEXT

WORK = Path("/tmp/r7")
FOLDS = 5
SCORED = (0, 2)  # as recorded, 20-30 Hz copy
CUT_SEED = 7

# the family: span [impact - CTX_FAR, impact - CTX_NEAR) of the grid
CTX_FAR = CONTEXT  # 10 s
CTX_NEAR = round(3.0 * fall.GRID_HZ)
CTX_MIN = round(1.0 * fall.GRID_HZ)  # less data in the span: NaN
RECENT = (round(3.0 * fall.GRID_HZ), round(0.2 * fall.GRID_HZ))  # [-3, -0.2) s
LP = round(0.5 * fall.GRID_HZ)  # moving average for the low-passed |a|
LAGS = (round(0.4 * fall.GRID_HZ), round(1.2 * fall.GRID_HZ))
CONTEXT_NAMES = (
    "ctx_moving_fraction",  # share of samples with | |a| - 1 g | > 0.1 g
    "ctx_std_g",  # std of |a|
    "ctx_lp_std_g",  # std of |a| after a 0.5 s moving average
    "ctx_periodicity",  # max autocorrelation of |a| - mean at lags 0.4-1.2 s (walking)
    "ctx_vs_recent_deg",  # angle: mean gravity in the span vs in [-3, -0.2) s
    "ctx_peaks_2g",  # upward crossings of 2 g by |a| in the span
)


def context_features(pre: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """``(n, 6)`` family of candidates whose grid before the impact is ``pre`` ``(n, CONTEXT,
    3)`` (sample ``CONTEXT - 1`` just before the impact) of which only the last ``avail[i]``
    samples may be used."""
    n = len(pre)
    out = np.full((n, len(CONTEXT_NAMES)), np.nan)
    box = np.full(LP, 1.0 / LP)
    for i in range(n):
        lo = CONTEXT - min(int(avail[i]), CONTEXT)
        hi = CONTEXT - CTX_NEAR
        if hi - lo < CTX_MIN:
            continue
        xyz = pre[i, lo:hi].astype(np.float64)
        assert not np.isnan(xyz).any()
        m = np.linalg.norm(xyz, axis=1)
        x = m - m.mean()
        energy = float(x @ x)
        period = 0.0
        if energy > 1e-9 * len(x):
            top = min(LAGS[1], len(x) - 1)
            period = max(float(x[:-lag] @ x[lag:]) / energy for lag in range(LAGS[0], top + 1))
        recent = pre[i, CONTEXT - RECENT[0] : CONTEXT - RECENT[1]].astype(np.float64).mean(axis=0)
        far = xyz.mean(axis=0)
        cos = far @ recent / max(1e-12, np.linalg.norm(far) * np.linalg.norm(recent))
        above = m > 2.0
        out[i] = (
            np.mean(np.abs(m - 1.0) > 0.1),
            m.std(),
            np.convolve(m, box, mode="valid").std(),
            period,
            np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))),
            int(above[0]) + int(np.count_nonzero(above[1:] & ~above[:-1])),
        )
    return out


# --- candidates ----------------------------------------------------------------------------


def prepare(recs: list[Recording], path: Path) -> dict:
    """Every candidate as ``train.build`` makes it (the local ``features.candidates`` keeps
    each candidate's 10 s before the impact), and the family three ways."""
    if path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    cands = T.build(recs)
    pre = np.stack([c.pre for c in cands])
    avail = CONTEXT - np.isnan(pre[:, :, 0]).sum(axis=1)  # samples the clip holds, <= 10 s
    cut = np.random.default_rng(CUT_SEED).uniform(0.0, 10.0, len(cands))  # one per candidate
    avail_train = np.minimum(avail, np.round(cut * fall.GRID_HZ).astype(int))
    t0 = time.time()
    data = {
        "rec": np.array([c.rec for c in cands]),
        "variant": np.array([c.variant for c in cands]),
        "target": np.array([c.target for c in cands]),
        "impact_s": np.array([c.impact_s for c in cands]),
        "F": np.array([c.features for c in cands]),
        "X": np.stack([c.sequence for c in cands]),
        "avail": avail,
        "cut_s": cut,
        "C_train": context_features(pre, avail_train),
        "C_full": context_features(pre, avail),
        "C_cut3": context_features(pre, np.minimum(avail, CTX_NEAR)),
        # every candidate at most 6 s before the impact (a family span of <= 3 s for all)
        "C_cut6": context_features(pre, np.minimum(avail, 2 * CTX_NEAR)),
    }
    print(f"context features: {time.time() - t0:.0f} s", flush=True)
    with path.open("wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return data


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


def availability(recs: list[Recording], data: dict) -> dict:
    """Per dataset and class: how much pre-context the clips hold (as recorded). Falls: the
    fall impact's candidate; daily activities: every candidate, and per recording its largest
    impact."""
    rec, var, tgt, avail = data["rec"], data["variant"], data["target"], data["avail"]
    peak = data["F"][:, 0]
    out: dict = {}
    for ds in sorted({r.dataset for r in recs}):
        in_ds = np.array([recs[r].dataset == ds for r in rec])
        base = in_ds & (var == 0)
        falls = base & (tgt == 1)
        adl = base & (tgt == 0)
        best: dict[int, int] = {}
        for k in np.flatnonzero(adl):
            if rec[k] not in best or peak[k] > peak[best[rec[k]]]:
                best[rec[k]] = k
        adl_rec = np.array(sorted(best.values()))
        row = {}
        for label, sel in (("falls", falls), ("adl_candidates", adl), ("adl_largest", adl_rec)):
            a = avail[sel] / fall.GRID_HZ
            row[label] = {
                "n": int(a.size),
                ">=10s_before_impact (family span full 7 s)": round(float((a >= 10).mean()), 4),
                ">=7s_before_impact": round(float((a >= 7).mean()), 4),
                ">=4s_before_impact (family defined)": round(float((a >= 4).mean()), 4),
                "median_s (capped at 10)": round(float(np.median(a)), 2),
            }
        out[ds] = row
    return out


# --- the screen ----------------------------------------------------------------------------


def fit_trees(f: np.ndarray, y: np.ndarray, w: np.ndarray) -> HistGradientBoostingClassifier:
    clf = HistGradientBoostingClassifier(**T.PARAMS)
    clf.fit(f, y, sample_weight=w)
    return clf


def run_split(split: int, recs: list[Recording], data: dict) -> dict:
    path = WORK / f"scores_split{split}.npz"
    rec, var, tgt = data["rec"], data["variant"], data["target"]
    subjects = sorted({r.subject for r in recs})
    perm = np.random.default_rng(split).permutation(subjects)
    fold_of = {s: j % FOLDS for j, s in enumerate(perm)}
    rec_fold = np.array([fold_of[r.subject] for r in recs])
    cand_fold = rec_fold[rec]
    n = len(rec)
    lt_base, lt_new, lt_cut3, lt_cut6, ln = (np.full(n, np.nan) for _ in range(5))
    floor = None
    f_new_train = np.concatenate([data["F"], data["C_train"]], axis=1)
    f_new_full = np.concatenate([data["F"], data["C_full"]], axis=1)
    f_new_cut3 = np.concatenate([data["F"], data["C_cut3"]], axis=1)
    f_new_cut6 = np.concatenate([data["F"], data["C_cut6"]], axis=1)
    cands = [  # for train.sample_weights (it reads rec, target)
        T.Candidate(int(rec[i]), int(var[i]), 0.0, data["F"][i], data["X"][i], int(tgt[i]))
        for i in range(n)
    ]
    for f in range(FOLDS):
        t1 = time.time()
        tr = np.flatnonzero((cand_fold != f) & (tgt >= 0))
        held_recs = set(np.flatnonzero(rec_fold == f).tolist())
        assert not held_recs & set(rec[tr].tolist())
        assert not {recs[i].subject for i in held_recs} & {recs[i].subject for i in rec[tr]}
        y = tgt[tr]
        w = T.sample_weights([cands[i] for i in tr], recs)
        # as train.fit: trees on the 92 features, the net on the sequences
        clf_base = fit_trees(data["F"][tr], y, w)
        net = cnn.export(cnn.train(data["X"][tr], y, w))
        model = in_memory(model_arrays(hgb_arrays(clf_base), net, 0.5))
        floor = model.net_floor
        t2 = time.time()
        clf_new = fit_trees(f_new_train[tr], y, w)
        t3 = time.time()
        te = np.flatnonzero((cand_fold == f) & np.isin(var, SCORED))
        lt_base[te] = model.trees.raw_score(data["F"][te])
        ln[te] = model.net.raw_score(data["X"][te])
        shipped = model.raw_score(data["F"][te], data["X"][te])
        assert np.allclose(shipped, combine(lt_base[te], ln[te], floor), atol=1e-9)
        # the exported trees equal sklearn's (no NaN in the 92 features)
        assert np.allclose(lt_base[te], clf_base.decision_function(data["F"][te]), atol=1e-6)
        # the new trees through sklearn itself: its NaN routing (missing_go_to_left) is not
        # in the exported arrays
        lt_new[te] = clf_new.decision_function(f_new_full[te])
        lt_cut3[te] = clf_new.decision_function(f_new_cut3[te])
        lt_cut6[te] = clf_new.decision_function(f_new_cut6[te])
        with (WORK / f"trees_split{split}_fold{f}.pkl").open("wb") as fh:
            pickle.dump({"base": clf_base, "new": clf_new, "net": net}, fh)
        np.savez(
            path,
            lt_base=lt_base,
            lt_new=lt_new,
            lt_cut3=lt_cut3,
            lt_cut6=lt_cut6,
            ln=ln,
            cand_fold=cand_fold,
            folds_done=f + 1,
        )
        print(
            f"split {split} fold {f}: base trees+net {t2 - t1:.0f} s, new trees {t3 - t2:.0f} s, "
            f"{len(tr)} train / {len(te)} held",
            flush=True,
        )
    trees = {"base": lt_base, "new": lt_new, "new, pre cut at 3 s": lt_cut3}
    trees["new, pre cut at 6 s"] = lt_cut6
    return evaluate(recs, data, trees, ln, floor)


def combine(lt: np.ndarray, ln: np.ndarray, floor: float) -> np.ndarray:
    return np.where(lt >= floor, (lt + ln) / 2.0, lt)


def evaluate(recs, data, trees: dict, ln: np.ndarray, floor: float) -> dict:
    rec, var = data["rec"], data["variant"]
    out: dict = {}
    for vv, name in ((0, "as recorded"), (2, "20-30 Hz")):
        sel = var == vv
        for combo, lt in trees.items():
            assert not np.isnan(lt[sel]).any()
            s = recording_scores(len(recs), rec[sel], combine(lt[sel], ln[sel], floor)[...])
            out[f"{name}|{combo}"] = metrics(recs, s)
    return out


def rule(results: dict, combo: str = "new") -> dict:
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
                        continue  # the gain above
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
    t0 = time.time()
    recs = load(args.data, args.cache)
    data = prepare(recs, WORK / "prep.pkl")
    print(
        f"{len(recs)} recordings, {len(data['rec'])} candidates ({time.time() - t0:.0f} s)",
        flush=True,
    )
    avail = availability(recs, data)
    print(json.dumps(avail, indent=1), flush=True)
    results = {}
    for split in args.splits:
        results[split] = run_split(split, recs, data)
        for key, val in results[split].items():
            print(f"split {split} {key:34s} {val}", flush=True)
        report = {
            "family": {
                "span": "[impact - 10 s, impact - 3 s) of the 50 Hz grid, NaN if < 1 s of data",
                "names": list(CONTEXT_NAMES),
                "train_cut": "pre-context cut at U(0, 10) s before the impact, every candidate",
                "cut_seed": CUT_SEED,
            },
            "cells": "s@98, sp@95, sensitivity at 0.5, specificity at 0.5",
            "availability": avail,
            "results": results,
            "rule": rule(results),
            "rule_pre_cut_at_3s": rule(results, "new, pre cut at 3 s"),
            "rule_pre_cut_at_6s": rule(results, "new, pre cut at 6 s"),
        }
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(rule(results), indent=1))


if __name__ == "__main__":
    main()
