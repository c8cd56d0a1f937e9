"""The fall benchmarks still run against the detector's current API (their figures are
measured by hand and recorded in docs/BENCHMARKS.md, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).absolute().parents[2]


def test_the_candidate_cost_bench_prints_one_json_line_per_stage() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fall_candidate_cost.py"), "--repeats", "1"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout
    [line] = out.splitlines()
    report = json.loads(line)
    assert [s["candidates"] for s in report["stages"]] == [1, 3, 10]
    for stage in report["stages"]:
        assert {"features_us", "trees_us", "sequences_us", "net_us"} <= set(stage)
        assert all(stage[k] > 0 for k in ("features_us", "trees_us", "sequences_us"))
