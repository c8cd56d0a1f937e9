"""Train the fall model and measure it with subject-wise cross-validation (offline only).

    nice .venv/bin/python -m training.fall.train --data ../shared/data/fall \
        --cv-report docs/fall_cv.json --out gateway/detection/fall_model.npz

Needs scikit-learn and torch (offline only: the gateway runs the exported arrays with numpy
alone); ``--no-net`` trains the trees alone, without torch.
Cross-validation leaves one subject out at a time: the model scoring a subject never saw any
recording of that subject. A recording counts as detected when any of its candidates scores
above the threshold, exactly as the live detector decides.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from gateway.detection import fall
from gateway.detection.fall_model import FallModel
from training.fall.dataset import Recording, load
from training.fall.export import Arrays, hgb_arrays, in_memory, model_arrays, write_model
from training.fall.features import EXTRA_KINDS, Candidate, candidates

VARIANTS = 3
PARAMS = dict(
    max_iter=300,
    learning_rate=0.05,
    max_depth=6,
    l2_regularization=1.0,
    min_samples_leaf=30,
    max_features=0.5,  # each split sees a random half of the features: a little less overfit
    random_state=0,
)
NEGATIVE_WEIGHT = 3.0  # a false alarm sends someone across town: weigh daily activities more


def build(recs: list[Recording], seed: int = 0) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    out: list[Candidate] = []
    for i, rec in enumerate(recs):
        out.extend(candidates(rec, i, range(VARIANTS), rng, truncate=True))
    return out + build_extra(recs, seed)


def build_extra(recs: list[Recording], seed: int = 0) -> list[Candidate]:
    """The extra training copies (``features.EXTRA_KINDS``), from a random stream of their own
    so that the scored copies (kinds below ``VARIANTS``) do not depend on them."""
    if not EXTRA_KINDS:
        return []
    rng = np.random.default_rng([seed, 1])
    out: list[Candidate] = []
    for i, rec in enumerate(recs):
        out.extend(candidates(rec, i, sorted(EXTRA_KINDS), rng, truncate=True))
    return out


def sample_weights(cands: list[Candidate], recs: list[Recording]) -> np.ndarray:
    """Each dataset and class weighs the same in total; daily activities then count
    ``NEGATIVE_WEIGHT`` times (false alarms cost more than the class balance says)."""
    groups = [(recs[c.rec].dataset, c.target) for c in cands]
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for g in groups:
        counts[g] += 1
    w = np.array([1.0 / counts[g] for g in groups])
    w = w / w.mean()
    w[np.array([c.target for c in cands]) == 0] *= NEGATIVE_WEIGHT
    return w


def fit(
    cands: list[Candidate], recs: list[Recording], threshold: float, with_net: bool = True
) -> Arrays:
    """The model (trees, and the net unless ``with_net`` is False) trained on the labelled
    candidates, as the arrays of its file."""
    train = [c for c in cands if c.target >= 0]
    y = np.array([c.target for c in train])
    w = sample_weights(train, recs)
    clf = HistGradientBoostingClassifier(**PARAMS)
    clf.fit(np.array([c.features for c in train]), y, sample_weight=w)
    net = None
    if with_net:
        from training.fall import cnn  # torch: only when a net is trained

        net = cnn.export(cnn.train(np.stack([c.sequence for c in train]), y, w))
    return model_arrays(hgb_arrays(clf), net, threshold)


def recording_scores(
    model: FallModel, cands: list[Candidate], scores: np.ndarray, variant: int = 0
) -> None:
    """Into ``scores`` (per recording): the max probability over each recording's candidates
    of one variant, as the live detector decides (recordings without any keep their score)."""
    mine = [c for c in cands if c.variant == variant]
    if mine:
        probs = model.probability(
            np.stack([c.features for c in mine]), np.stack([c.sequence for c in mine])
        )
        for c, p in zip(mine, probs, strict=True):
            scores[c.rec] = max(scores[c.rec], float(p))


def cross_validate(
    recs: list[Recording], cands: list[Candidate], threshold: float, with_net: bool
) -> dict[int, np.ndarray]:
    subjects = sorted({r.subject for r in recs})
    scores = {v: np.zeros(len(recs)) for v in range(VARIANTS)}
    for subject in subjects:
        test = {i for i, r in enumerate(recs) if r.subject == subject}
        train = [c for c in cands if c.rec not in test]
        model = in_memory(fit(train, recs, threshold, with_net))
        held = [c for c in cands if c.rec in test]
        for v in range(VARIANTS):
            recording_scores(model, held, scores[v], v)
        print(f"fold {subject}: done", flush=True)
    return scores


def summarise(recs: list[Recording], scores: np.ndarray, threshold: float) -> dict:
    def block(idx: list[int]) -> dict:
        y = np.array([recs[i].label == "fall" for i in idx])
        d = scores[idx] >= threshold
        tp, fn = int((d & y).sum()), int((~d & y).sum())
        fp, tn = int((d & ~y).sum()), int((~d & ~y).sum())
        return {
            "recordings": len(idx),
            "tp": tp,
            "fn": fn,
            "fp": fp,
            "tn": tn,
            "sensitivity": round(tp / max(1, tp + fn), 4),
            "specificity": round(tn / max(1, tn + fp), 4),
        }

    out = {"threshold": threshold, "all": block(list(range(len(recs))))}
    for ds in sorted({r.dataset for r in recs}):
        out[ds] = block([i for i, r in enumerate(recs) if r.dataset == ds])
        acts: dict[str, dict] = {}
        for act in sorted({r.activity for r in recs if r.dataset == ds}):
            idx = [i for i, r in enumerate(recs) if r.dataset == ds and r.activity == act]
            b = block(idx)
            label = recs[idx[0]].label
            rate = b["tp"] / b["recordings"] if label == "fall" else b["fp"] / b["recordings"]
            acts[act] = {"label": label, "n": b["recordings"], "alarm_rate": round(rate, 4)}
        out[ds + "_activities"] = acts
    return out


def curve(recs: list[Recording], scores: np.ndarray) -> list[dict]:
    rows = []
    for thr in [*np.round(np.arange(0.05, 0.96, 0.05), 2), 0.97, 0.98, 0.99]:
        s = summarise(recs, scores, float(thr))
        rows.append(
            {"threshold": float(thr)}
            | {
                f"{ds}_{k}": s[ds][k]
                for ds in sorted({r.dataset for r in recs})
                for k in ("sensitivity", "specificity")
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fall"))
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the model trained on all data")
    ap.add_argument("--cv-report", type=Path, default=None)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--no-cv", action="store_true")
    ap.add_argument("--no-net", action="store_true", help="trees only (needs no torch)")
    args = ap.parse_args()
    recs = load(args.data, args.cache)
    cands = build(recs)
    print(f"{len(recs)} recordings, {len(cands)} candidates", flush=True)
    if not args.no_cv:
        scores = cross_validate(recs, cands, args.threshold, not args.no_net)
        report: dict[str, Any] = {
            "method": "leave-one-subject-out",
            "model": {"trees": PARAMS, "net": not args.no_net},
            "features": list(fall.FEATURE_NAMES),
            "at_threshold": summarise(recs, scores[0], args.threshold),
            "augmented_4g_rotated": summarise(recs, scores[1], args.threshold),
            "augmented_low_rate": summarise(recs, scores[2], args.threshold),
            "curve": curve(recs, scores[0]),
            "curve_low_rate": curve(recs, scores[2]),
        }
        print(
            json.dumps(
                {
                    k: report["at_threshold"][k]
                    for k in report["at_threshold"]
                    if not k.endswith("activities")
                }
            )
        )
        print(
            json.dumps(
                {
                    k: v
                    for k, v in report["augmented_low_rate"].items()
                    if not k.endswith("activities")
                }
            )
        )
        if args.cv_report:
            args.cv_report.write_text(json.dumps(report, indent=1))
    if args.out:
        write_model(args.out, fit(cands, recs, args.threshold, not args.no_net))
        print(f"model written to {args.out}")


if __name__ == "__main__":
    main()
