"""How the fall figures would vary on other people: a subject-level bootstrap (offline only).

The project is also checked on people it never saw, so the leave-one-subject-out figures are
one sample of a few subjects. This resamples the subjects of each dataset with replacement
(each keeping all of their recordings and held-out scores, from ``cv_live.py --scores``) and
reports, per dataset and threshold, the spread of sensitivity and specificity and how often
both targets are met at once.

    nice .venv/bin/python -m training.fall.cv_live --data ../shared/data/fall \\
        --out /tmp/cv_live.json --scores /tmp/fall_scores.json
    .venv/bin/python -m training.fall.bootstrap /tmp/fall_scores.json --draws 20000

At the shipped threshold the live decision (``detected``) is used; elsewhere the held-out
score (``score >= threshold``, the same counts as live at the shipped threshold). With
``--low-rate`` the scores of the 20-30 Hz copy are used instead (no live decisions there).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SENSITIVITY = 0.95
TARGET_SPECIFICITY = 0.98
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def per_subject_counts(
    rows: list[dict[str, Any]], flagged: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per subject (sorted): falls, falls detected, daily activities, daily activities alarmed."""
    subjects = sorted({r["subject"] for r in rows})
    index = {s: i for i, s in enumerate(subjects)}
    counts = np.zeros((4, len(subjects)))
    for row, hit in zip(rows, flagged, strict=True):
        i = index[row["subject"]]
        if row["label"] == "fall":
            counts[0, i] += 1
            counts[1, i] += hit
        else:
            counts[2, i] += 1
            counts[3, i] += hit
    return counts[0], counts[1], counts[2], counts[3]


def resampled(
    rows: list[dict[str, Any]], flagged: np.ndarray, draws: int, seed: int
) -> dict[str, Any]:
    """Sensitivity and specificity over ``draws`` resamples of the subjects of ``rows``."""
    falls, caught, adls, alarmed = per_subject_counts(rows, flagged)
    picks = np.random.default_rng(seed).integers(0, falls.size, size=(draws, falls.size))
    fall_n, adl_n = falls[picks].sum(axis=1), adls[picks].sum(axis=1)
    ok = (fall_n > 0) & (adl_n > 0)  # a draw of subjects with no fall (or no activity) says nothing
    sens = caught[picks].sum(axis=1)[ok] / fall_n[ok]
    spec = 1.0 - alarmed[picks].sum(axis=1)[ok] / adl_n[ok]
    meets_sens, meets_spec = sens >= TARGET_SENSITIVITY, spec >= TARGET_SPECIFICITY
    return {
        "sensitivity": round(float(caught.sum() / falls.sum()), 4),
        "specificity": round(float(1.0 - alarmed.sum() / adls.sum()), 4),
        "sensitivity_p05_p50_p95": [
            round(float(np.quantile(sens, q)), 3) for q in (0.05, 0.5, 0.95)
        ],
        "specificity_p05_p50_p95": [
            round(float(np.quantile(spec, q)), 3) for q in (0.05, 0.5, 0.95)
        ],
        "p_sensitivity": round(float(meets_sens.mean()), 3),
        "p_specificity": round(float(meets_spec.mean()), 3),
        "p_both": round(float((meets_sens & meets_spec).mean()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scores", type=Path, help="the --scores file of cv_live.py")
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shipped", type=float, default=0.5, help="the threshold cv_live ran at")
    parser.add_argument("--low-rate", action="store_true", help="the 20-30 Hz copy's scores")
    args = parser.parse_args(argv)
    rows = json.loads(args.scores.read_text())
    key = "score_low_rate" if args.low_rate else "score"
    for dataset in sorted({r["dataset"] for r in rows}):
        subset = [r for r in rows if r["dataset"] == dataset]
        for threshold in THRESHOLDS:
            if threshold == args.shipped and not args.low_rate:
                flagged = np.array([r["detected"] for r in subset], dtype=float)
            else:
                flagged = np.array([r[key] >= threshold for r in subset], dtype=float)
            figures = resampled(subset, flagged, args.draws, args.seed)
            print(
                json.dumps(
                    {
                        "dataset": dataset,
                        "threshold": threshold,
                        "low_rate": args.low_rate,
                        **figures,
                    }
                )
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
