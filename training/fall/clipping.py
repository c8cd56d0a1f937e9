"""How the shipped fall model holds up on a sensor that clips lower than any in training.

Streams every recording through the live ``FallAlerts`` shell (as ``eldergate evaluate fall``
does), each randomly rotated and clipped per axis at each ``--clip`` value, and prints one JSON
line per value: the fraction of falls detected and of daily activities alarmed, per dataset.
The shipped model was trained on these recordings, so the figures are in-sample: what they tell
is how much they move as the clipping tightens, not how well the model generalises.

    PYTHONPATH=. nice .venv/bin/python -m training.fall.clipping --clip 8 4 3 2
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from gateway.commands.evaluate import stream_recording
from gateway.detection.fall_alerts import FallSettings
from training.fall.dataset import load
from training.fall.features import random_rotation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fall"))
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--clip", type=float, nargs="+", default=[8.0, 4.0, 3.0, 2.0])
    args = ap.parse_args()
    recs = load(args.data, args.cache)
    settings = FallSettings()
    for clip in args.clip:
        rng = np.random.default_rng(1)
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for rec in recs:
            xyz = np.clip(rec.xyz @ random_rotation(rng).T, -clip, clip)
            raised_at, _ = stream_recording(rec.t, xyz, settings, rng)
            count = counts[(rec.dataset, rec.label)]
            count[0] += raised_at is not None
            count[1] += 1
        rates = {f"{ds} {label}": round(n / total, 4) for (ds, label), (n, total) in counts.items()}
        print(json.dumps({"clip_g": clip, "alarm_rate": dict(sorted(rates.items()))}), flush=True)


if __name__ == "__main__":
    main()
