"""Screen the eighth round's side finding (offline research, not shipped).

    PYTHONPATH=. nice /work/main/.venv/bin/python -m training.fall.screen_warp2 \
        --data /work/shared/data/fall --cache /tmp/wt-screen-recs.pkl --splits 0 1 \
        --out training/fall/screen_warp2.json

The eighth round (``screen_warp.py``, commit 0f66a9a) found that time-warp and magnitude copies
lifted 20-30 Hz FallAllD s@98 (+0.013 to +0.041) while WEDA-FALL as recorded lost 3-4 falls at
0.98 specificity. Two settings against the base, same candidates, folds and seeds as
``screen_warp.py`` (so the base reproduces ``screen_warp.json``'s base figures; checked below,
the run stops if it does not):

- ``warp5``: kinds 0-4 + kind 5 (time warp only, speed U(0.8, 1.25));
- ``warp56_half``: kinds 0-4 + kinds 5 and 6, each candidate of kinds 5/6 (and their 2-8 s cut
  copies 15/16) at half the weight of an original one. The existing weighting is kept: each
  (dataset, class) group weighs the same in total and daily activities then count 3x; within a
  group a kind-5/6 candidate weighs half of a kind-0-4 candidate (group totals computed with
  those multipliers, so with all multipliers 1 this is ``train.sample_weights`` exactly).

Decision rule, fixed before any run: a setting PASSES only if on BOTH splits (a) 20-30 Hz
FallAllD s@98 is at least +0.015 above base, and (b) none of as-recorded FallAllD s@98 / sp@95,
as-recorded WEDA-FALL s@98 / sp@95, 20-30 Hz WEDA-FALL s@98 / sp@95 is more than 0.01 below base.

Result (2026-12-07, splits 0 and 1, ``screen_warp2.json``, 44 min): base identical to
screen_warp.json on both splits. Neither setting passes. 20-30 Hz FallAllD s@98 (base 0.845 /
0.839): warp5 +0.006 / +0.013 (fails (a) on both splits; also 20-30 Hz WEDA-FALL s@98 -0.015 on
split 0); warp56_half +0.022 / +0.016 (meets (a)) but 20-30 Hz WEDA-FALL s@98 -0.025 on split 0
(0.995 -> 0.970, 1 -> 6 missed falls). Not in the rule: 20-30 Hz FallAllD sp@95 fell in all four
cases (-0.004 to -0.016).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from training.fall import cnn
from training.fall import screen_warp as W
from training.fall import train as T
from training.fall.dataset import Recording, load
from training.fall.export import hgb_arrays, in_memory, model_arrays
from training.fall.features import candidates

WORK = Path("/tmp/r8b")
FOLDS = W.FOLDS
SCORED = W.SCORED
WARP = (5, 6)  # the only copies this screen builds (kind 7 is not needed)
SETTINGS = {
    "base": ((0, 1, 2, 3, 4), {}),
    "warp5": ((0, 1, 2, 3, 4, 5), {}),
    "warp56_half": ((0, 1, 2, 3, 4, 5, 6), {5: 0.5, 6: 0.5}),
}
REFERENCE = Path(__file__).with_name("screen_warp.json")


def sample_weights(cands, recs, mult: np.ndarray) -> np.ndarray:
    """``train.sample_weights`` with per-candidate multipliers inside each group."""
    groups = [(recs[c.rec].dataset, c.target) for c in cands]
    total: dict[tuple[str, int], float] = defaultdict(float)
    for g, m in zip(groups, mult, strict=True):
        total[g] += m
    w = np.array([m / total[g] for g, m in zip(groups, mult, strict=True)])
    w = w / w.mean()
    w[np.array([c.target for c in cands]) == 0] *= T.NEGATIVE_WEIGHT
    return w


def prepare(recs: list[Recording], path: Path, cache: Path) -> dict:
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    if path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    t0 = time.time()
    with ProcessPoolExecutor(2) as ex:
        base = ex.submit(W._base_job, cache)
        warps = [ex.submit(W._warp_job, cache, k) for k in WARP]
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


def check_base(split: int, res: dict) -> list[str]:
    """Every base cell (metrics, misses, cut 4 s) against screen_warp.json; the differences."""
    ref = json.loads(REFERENCE.read_text())["results"][str(split)]
    bad = []
    for key, val in res.items():
        if "|base" in key and json.loads(json.dumps(val)) != ref[key]:
            bad.append(f"{key}: {val} != {ref[key]}")
    return bad


def run_setting(split, name, recs, data, cands, state) -> list[float]:
    kinds, mults = SETTINGS[name]
    rec, var, tgt = data["rec"], data["variant"], data["target"]
    kind = var % 10
    cut_idx, cand_fold = data["cut_idx"], state["cand_fold"]
    times = []
    for f in range(FOLDS):
        t1 = time.time()
        held_recs = set(np.flatnonzero(state["rec_fold"] == f).tolist())
        te = np.flatnonzero((cand_fold == f) & np.isin(var, SCORED))
        ct = np.flatnonzero(cand_fold[cut_idx] == f)
        tr = np.flatnonzero((cand_fold != f) & (tgt >= 0) & np.isin(kind, kinds))
        assert not held_recs & set(rec[tr].tolist())
        assert not {recs[i].subject for i in held_recs} & {recs[i].subject for i in rec[tr]}
        y = tgt[tr]
        mult = np.array([mults.get(int(k), 1.0) for k in kind[tr]])
        sub = [cands[i] for i in tr]
        w = sample_weights(sub, recs, mult) if mults else T.sample_weights(sub, recs)
        clf = HistGradientBoostingClassifier(**T.PARAMS)
        clf.fit(data["F"][tr], y, sample_weight=w)
        net = cnn.export(cnn.train(data["X"][tr], y, w))
        model = in_memory(model_arrays(hgb_arrays(clf), net, 0.5))
        state["floor"] = model.net_floor
        lt, ln = state["lt"][name], state["ln"][name]
        lt[te] = model.trees.raw_score(data["F"][te])
        ln[te] = model.net.raw_score(data["X"][te])
        shipped = model.raw_score(data["F"][te], data["X"][te])
        assert np.allclose(shipped, W.combine(lt[te], ln[te], state["floor"]), atol=1e-9)
        state["clt"][name][ct] = model.trees.raw_score(data["cut_F"][ct])
        state["cln"][name][ct] = model.net.raw_score(data["cut_X"][ct])
        times.append(round(time.time() - t1, 1))
        extra = ""
        if mults:
            extra = f", weight share of kinds 5/6 {w[np.isin(kind[tr], list(mults))].sum() / w.sum():.3f}"
        print(
            f"split {split} {name} fold {f}: {time.time() - t1:.0f} s, "
            f"{len(tr)} train / {len(te)} held{extra}",
            flush=True,
        )
        np.savez(
            WORK / f"scores_split{split}_{name}.npz",
            lt=lt, ln=ln, clt=state["clt"][name], cln=state["cln"][name],
            cut_idx=cut_idx, cand_fold=cand_fold, folds_done=f + 1, floor=state["floor"],
        )
    return times


def rule(results: dict, combo: str) -> dict:
    """The decision rule fixed before the run."""
    ok, notes = True, []
    others = [
        ("as recorded", "FallAllD", 0), ("as recorded", "FallAllD", 1),
        ("as recorded", "WEDA-FALL", 0), ("as recorded", "WEDA-FALL", 1),
        ("20-30 Hz", "WEDA-FALL", 0), ("20-30 Hz", "WEDA-FALL", 1),
    ]
    for split, res in results.items():
        if f"20-30 Hz|{combo}" not in res:
            ok = False
            notes.append(f"split {split}: not run")
            continue
        gain = res[f"20-30 Hz|{combo}"]["FallAllD"][0] - res["20-30 Hz|base"]["FallAllD"][0]
        verdict = "ok" if gain >= 0.015 - 1e-9 else "fails"
        notes.append(f"split {split}: 20-30 Hz FallAllD s@98 {gain:+.4f} ({verdict})")
        ok &= verdict == "ok"
        for name, ds, j in others:
            diff = res[f"{name}|{combo}"][ds][j] - res[f"{name}|base"][ds][j]
            verdict = "ok" if diff >= -0.01 - 1e-9 else "fails"
            point = ("s@98", "sp@95")[j]
            notes.append(f"split {split}: {name} {ds} {point} {diff:+.4f} ({verdict})")
            ok &= verdict == "ok"
    return {"passes": bool(ok and len(results) == 2), "notes": notes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/fall"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/wt-screen-recs.pkl"))
    ap.add_argument("--splits", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    t_start = time.time()
    WORK.mkdir(exist_ok=True)
    recs = load(args.data, args.cache)
    print(f"{len(recs)} recordings loaded in {time.time() - t_start:.0f} s", flush=True)
    data = prepare(recs, WORK / "prep.pkl", args.cache)
    kinds, counts = np.unique(data["variant"], return_counts=True)
    per_kind = dict(zip(kinds.tolist(), counts.tolist(), strict=True))
    print(f"candidates per kind {per_kind}", flush=True)
    ref_counts = json.loads(REFERENCE.read_text())["candidates_per_kind"]
    for k, c in per_kind.items():
        assert ref_counts[str(k)] == c, (k, c, ref_counts[str(k)])
    rec, var, tgt = data["rec"], data["variant"], data["target"]
    assert set(np.unique(var % 10)) == set(range(7))
    n = len(rec)
    cands = [
        T.Candidate(int(rec[i]), int(var[i]), 0.0, data["F"][i], data["X"][i], int(tgt[i]))
        for i in range(n)
    ]
    results, times, base_check = {}, {}, {}
    for split in args.splits:
        subjects = sorted({r.subject for r in recs})
        perm = np.random.default_rng(split).permutation(subjects)
        fold_of = {s: j % FOLDS for j, s in enumerate(perm)}
        rec_fold = np.array([fold_of[r.subject] for r in recs])
        state = {
            "rec_fold": rec_fold,
            "cand_fold": rec_fold[rec],
            "lt": {s: np.full(n, np.nan) for s in SETTINGS},
            "ln": {s: np.full(n, np.nan) for s in SETTINGS},
            "clt": {s: np.full(len(data["cut_idx"]), np.nan) for s in SETTINGS},
            "cln": {s: np.full(len(data["cut_idx"]), np.nan) for s in SETTINGS},
            "floor": None,
        }
        times[split] = {}
        done = []
        for name in SETTINGS:
            times[split][name] = run_setting(split, name, recs, data, cands, state)
            done.append(name)
            sub = {k: state[k] for k in ("lt", "ln", "clt", "cln")}
            res = W.evaluate(recs, data, *({s: sub[k][s] for s in done} for k in sub),
                             state["floor"])
            results[split] = res
            if name == "base":
                bad = check_base(split, res)
                base_check[split] = "identical to screen_warp.json" if not bad else bad
                print(f"split {split} base check: {base_check[split]}", flush=True)
                if bad:
                    raise SystemExit("base does not reproduce screen_warp.json: stop")
            for key, val in res.items():
                if f"|{name}" in key:
                    print(f"split {split} {key:40s} {val}", flush=True)
            report = {
                "settings": {k: {"kinds": list(v[0]), "weight_multiplier": v[1]}
                             for k, v in SETTINGS.items()},
                "cells": "s@98, sp@95, sensitivity at 0.5, specificity at 0.5",
                "candidates_per_kind": per_kind,
                "base_check": base_check,
                "fold_seconds": times,
                "wall_seconds": round(time.time() - t_start),
                "results": results,
                "rule_warp5": rule(results, "warp5"),
                "rule_warp56_half": rule(results, "warp56_half"),
            }
            if args.out:
                args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({"warp5": rule(results, "warp5"),
                      "warp56_half": rule(results, "warp56_half")}, indent=1))


if __name__ == "__main__":
    main()
