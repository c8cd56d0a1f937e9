"""bench/soak_memory.py still runs against the gateway's current API (its figures are measured
by hand and recorded in docs/BENCHMARKS.md; here only a short run and the bounds it reports)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from tests.detection.routine.routine_sim import write_recording

ROOT = Path(__file__).absolute().parents[1]


def test_a_short_soak_prints_one_json_line_with_every_phase(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "home.jsonl", dt.date(2019, 5, 6), 3)
    argv = ["--days", "2", "--platform-down-days", "1", "--broken-days", "1"]
    argv += ["--band-hours", "1", "--bad", "200"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak_memory.py"), str(recording), *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    ).stdout
    [line] = out.splitlines()
    report = json.loads(line)
    for phase in ("home", "broken_devices", "band", "bad_input", "alert_cycles", "platform_down"):
        assert report[phase]["traced_mib"], phase
    assert set(report["home"]["traced_mib"]) == {"1", "2"}
    assert report["home"]["alerts_raised"]["sos"] == 2  # the daily press
    assert report["broken_devices"]["summary_days_held"] <= 2  # a clock years ahead
    assert report["bad_input"]["unknown_device_readings"] == 200
