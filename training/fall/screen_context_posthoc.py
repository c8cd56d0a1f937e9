"""After ``screen_context.py``: the trees alone (base, new, new with the pre-context cut at 3 s),
how often the new trees split on the family, and which FallAllD falls the combined model misses
at 0.98 specificity (as recorded). Reads /tmp/r7 (scores and fold models); adds "posthoc" to the
results json.

    PYTHONPATH=. nice .venv/bin/python -m training.fall.screen_context_posthoc \
        --cache /tmp/fall_recs_main.pkl --json training/fall/screen_context.json
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np

from training.fall import screen_context as S
from training.fall.dataset import load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fall_recs_main.pkl"))
    ap.add_argument("--json", type=Path, default=Path("training/fall/screen_context.json"))
    ap.add_argument("--splits", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    recs = load(Path("unused"), args.cache)
    with (S.WORK / "prep.pkl").open("rb") as fh:
        data = pickle.load(fh)
    rec, var = data["rec"], data["variant"]
    ds = np.array([r.dataset for r in recs])
    y = np.array([r.label == "fall" for r in recs])
    act = np.array([r.activity for r in recs])
    out: dict = {}
    for split in args.splits:
        z = np.load(S.WORK / f"scores_split{split}.npz")
        res: dict = {}
        for vv, name in ((0, "as recorded"), (2, "20-30 Hz")):
            sel = var == vv
            for key in ("lt_base", "lt_new", "lt_cut3"):
                s = S.recording_scores(len(recs), rec[sel], z[key][sel])
                res[f"trees alone|{name}|{key}"] = S.metrics(recs, s)
        used = Counter()
        total = 0
        for f in range(S.FOLDS):
            with (S.WORK / f"trees_split{split}_fold{f}.pkl").open("rb") as fh:
                clf = pickle.load(fh)["new"]
            for pred in clf._predictors:
                nodes = pred[0].nodes
                idx = nodes["feature_idx"][~nodes["is_leaf"].astype(bool)]
                total += idx.size
                for j, name in enumerate(S.CONTEXT_NAMES):
                    used[name] += int(np.sum(idx == 92 + j))
        res["new trees: splits on the family"] = dict(used) | {"all splits": total}
        sel = var == 0
        d = ds == "FallAllD"
        missed = {}
        for key in ("lt_base", "lt_new"):
            s = S.recording_scores(len(recs), rec[sel], S.combine(z[key][sel], z["ln"][sel], -6.0))
            neg = np.sort(s[d & ~y])
            thr = neg[int(np.ceil(0.98 * neg.size)) - 1]
            missed[key] = d & y & (s <= thr)
            res[f"FallAllD falls missed at spec 0.98|{key}"] = dict(
                Counter(act[missed[key]].tolist()).most_common()
            )
        res["newly missed by new"] = dict(
            Counter(act[missed["lt_new"] & ~missed["lt_base"]].tolist()).most_common()
        )
        res["newly caught by new"] = dict(
            Counter(act[missed["lt_base"] & ~missed["lt_new"]].tolist()).most_common()
        )
        out[str(split)] = res
        for k, v in res.items():
            print(f"split {split} {k}: {v}")
    report = json.loads(args.json.read_text())
    report["posthoc"] = out
    args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
