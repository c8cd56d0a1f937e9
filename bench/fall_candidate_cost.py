"""What one fall candidate costs, stage by stage; prints one JSON line.

    nice .venv/bin/python bench/fall_candidate_cost.py [--repeats 300]

The candidate stage of the live detector (``FallModel.score_windows``): the 92 features
(``fall.window_features``), the trees, and for the candidates the trees do not rule out the
six-channel sequences and the net. Each stage is timed alone on synthetic windows (gravity,
noise and an impact), for batches of 1, 3 and 10 candidates decided together, as the median
of ``--repeats`` calls after a warm-up (the median: a loaded machine adds outliers). With
100 wristbands a batch holds about one candidate (docs/BENCHMARKS.md), which is why this
stage, not the ring or the gate, sets the ratio to the floor there.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from gateway.detection import fall, fall_sequence
from gateway.detection.fall_model import FallModel


def _median_us(call: Callable[[], object], repeats: int) -> float:
    for _ in range(10):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1e6, 1)


def stage_costs(batch: int, repeats: int, model: FallModel) -> dict[str, float]:
    rng = np.random.default_rng(batch)
    xyz = rng.normal(0.0, 0.3, size=(batch, fall.PRE + fall.POST, 3))
    xyz[:, :, 2] += 1.0
    xyz[:, fall.PRE] += 3.0
    starts = np.zeros(batch, dtype=np.int64)
    impacts = np.full(batch, fall.PRE, dtype=np.int64)
    stops = np.full(batch, fall.PRE + fall.POST, dtype=np.int64)

    def source(rows: fall.IntArray, before: int, after: int) -> fall.FloatArray:
        return np.asarray(xyz[rows])

    features = fall.window_features(xyz, fall.PRE)
    sequences = fall_sequence.sequences_of(source, starts, impacts, stops)
    out = {
        "candidates": batch,
        "features_us": _median_us(lambda: fall.window_features(xyz, fall.PRE), repeats),
        "trees_us": _median_us(lambda: model.trees.raw_score(features), repeats),
        "sequences_us": _median_us(
            lambda: fall_sequence.sequences_of(source, starts, impacts, stops), repeats
        ),
    }
    if model.net is not None:
        net = model.net
        out["net_us"] = _median_us(lambda: net.raw_score(sequences), repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    model = FallModel.load()
    print(
        json.dumps(
            {
                "bench": "fall_candidate_cost",
                "machine": platform.machine(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "stages": [stage_costs(n, args.repeats, model) for n in (1, 3, 10)],
            }
        )
    )


if __name__ == "__main__":
    main()
