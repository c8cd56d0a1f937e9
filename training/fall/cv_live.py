"""Leave-one-subject-out figures through the live code path (offline only).

For each subject: train on everyone else (same features, augmentation and model as
``train.py``), export the model, and stream that subject's recordings through the live
``FallAlerts`` shell exactly as ``eldergate evaluate fall`` does. Prints one JSON line per
dataset and overall, per activity too with ``--per-activity``.

    nice .venv/bin/python -m training.fall.cv_live --data ../shared/data/fall --out cv_live.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from gateway.commands.evaluate import stream_recording
from gateway.detection.fall_alerts import FallSettings
from gateway.detection.fall_model import FallModel
from training.fall.dataset import Recording, load
from training.fall.export import write_model
from training.fall.train import build, curve, fit, recording_scores, summarise


def matched_points(recs: list[Recording], scores: np.ndarray) -> dict[str, dict[str, float]]:
    """Per dataset: the best sensitivity with specificity >= 0.98 and the best specificity with
    sensitivity >= 0.95, over every threshold (recording score = max over its candidates)."""
    out = {}
    for ds in sorted({r.dataset for r in recs}):
        idx = [i for i, r in enumerate(recs) if r.dataset == ds]
        fall = np.array([recs[i].label == "fall" for i in idx])
        s = scores[idx]
        thresholds = np.unique(np.concatenate([s, [np.inf]]))
        sens = np.array([(s[fall] >= t).mean() for t in thresholds])
        spec = np.array([(s[~fall] < t).mean() for t in thresholds])
        out[ds] = {
            "sensitivity_at_specificity_0.98": round(float(sens[spec >= 0.98].max()), 4),
            "specificity_at_sensitivity_0.95": round(float(spec[sens >= 0.95].max(initial=0)), 4),
        }
    return out


def rates(rows: list[tuple[str, bool]]) -> dict[str, float | int]:
    falls = [d for label, d in rows if label == "fall"]
    adls = [d for label, d in rows if label != "fall"]
    tp, fp = sum(falls), sum(adls)
    return {
        "recordings": len(rows),
        "tp": tp,
        "fn": len(falls) - tp,
        "fp": fp,
        "tn": len(adls) - fp,
        "sensitivity": round(tp / len(falls), 4) if falls else float("nan"),
        "specificity": round(1 - fp / len(adls), 4) if adls else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fall"))
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-net", action="store_true", help="trees only (needs no torch)")
    ap.add_argument(
        "--scores",
        type=Path,
        default=None,
        help="also write every recording's held-out score and live decision (for bootstrap.py)",
    )
    args = ap.parse_args()
    recs = load(args.data, args.cache)
    cands = build(recs)
    rng = np.random.default_rng(0)
    detected: dict[int, bool] = {}
    as_recorded, low_rate = np.zeros(len(recs)), np.zeros(len(recs))
    with tempfile.TemporaryDirectory() as tmp:
        for subject in sorted({r.subject for r in recs}):
            test = [i for i, r in enumerate(recs) if r.subject == subject]
            held = set(test)
            path = Path(tmp) / f"{subject.replace(':', '_')}.npz"
            train = [c for c in cands if c.rec not in held]
            write_model(path, fit(train, recs, args.threshold, not args.no_net))
            settings = FallSettings(model_path=str(path))
            model = FallModel.load(path)
            held_cands = [c for c in cands if c.rec in held]
            # the same file the live shell loads, on the offline candidates: the whole curve
            recording_scores(model, held_cands, as_recorded, variant=0)
            recording_scores(model, held_cands, low_rate, variant=2)
            for i in test:
                at, _ = stream_recording(recs[i].t, recs[i].xyz, settings, rng)
                detected[i] = at is not None
            print(f"{subject}: {rates([(recs[i].label, detected[i]) for i in test])}", flush=True)
    report: dict[str, object] = {"threshold": args.threshold, "net": not args.no_net}
    report["all"] = rates([(r.label, detected[i]) for i, r in enumerate(recs)])
    by_activity: dict[str, dict[str, object]] = defaultdict(dict)
    for ds in sorted({r.dataset for r in recs}):
        idx = [i for i, r in enumerate(recs) if r.dataset == ds]
        report[ds] = rates([(recs[i].label, detected[i]) for i in idx])
        for act in sorted({recs[i].activity for i in idx}):
            rows = [(recs[i].label, detected[i]) for i in idx if recs[i].activity == act]
            by_activity[ds][act] = {
                "label": rows[0][0],
                "n": len(rows),
                "alarms": sum(d for _, d in rows),
            }
    report["activities"] = by_activity
    report["offline_at_threshold"] = summarise(recs, as_recorded, args.threshold)
    report["low_rate_at_threshold"] = summarise(recs, low_rate, args.threshold)
    report["curve"] = curve(recs, as_recorded)
    report["curve_low_rate"] = curve(recs, low_rate)
    report["matched"] = matched_points(recs, as_recorded)
    report["matched_low_rate"] = matched_points(recs, low_rate)
    print(json.dumps({k: v for k, v in report.items() if k != "activities"}))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    if args.scores:
        rows = [
            {
                "file": r.file,
                "dataset": r.dataset,
                "subject": r.subject,
                "activity": r.activity,
                "label": r.label,
                "score": round(float(as_recorded[i]), 6),
                "score_low_rate": round(float(low_rate[i]), 6),
                "detected": detected[i],
            }
            for i, r in enumerate(recs)
        ]
        args.scores.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
