"""How fast a resident-month replays (target: 10 s or less). Prints one JSON line.

    .venv/bin/python bench/replay_speed.py [RECORDING] [--days 30]

RECORDING defaults to the busiest TIHM home (``eldergate import tihm`` is run into a temporary
folder when no recording is given). The first ``--days`` days are replayed twice: through
``eldergate replay``'s code (:class:`gateway.replay.Replayer`, the full pipeline with whichever
detectors the gateway wires in), and through the routine detectors alone on the same tick
semantics (bench/silent_emergencies.py's loop), so each cost is visible.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from silent_emergencies import load_recording, new_replay

from gateway.detection.routine import RoutineSettings

TIHM = Path(__file__).resolve().parents[2] / "shared/data/routine/tihm"


def month_lines(path: Path, days: float) -> list[str]:
    lines = path.read_text().splitlines()
    readings = [json.loads(x) for x in lines if '"reading"' in x]
    start = min(r["t"] for r in readings)
    head = [x for x in lines if '"reading"' not in x]
    body = [json.dumps(r) for r in readings if r["t"] < start + days * 86400]
    return head + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", nargs="?", type=Path)
    parser.add_argument("--days", type=float, default=30.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.recording
        if path is None:
            from gateway.cli import main as cli

            cli(["import", "tihm", str(TIHM), "--out", tmp])
            path = max(Path(tmp).glob("*.jsonl"), key=lambda p: p.stat().st_size)
        lines = month_lines(path, args.days)
        month = Path(tmp) / "month.jsonl"
        month.write_text("\n".join(lines) + "\n")

        from gateway.replay import Replayer

        replay_s: float | None = None
        alerts: int | None = None
        replay_error = None
        try:  # the full pipeline depends on every detector of the gateway being buildable
            replayer = Replayer(gateway_id="bench")
            started = time.perf_counter()
            alerts = sum(1 for _ in replayer.run(io.StringIO(month.read_text()), None))
            replay_s = time.perf_counter() - started
        except Exception as exc:
            replay_error = f"{type(exc).__name__}: {exc}"

        recording = load_recording(month)
        replay = new_replay(recording, RoutineSettings(), 60.0)
        started = time.perf_counter()
        for reading in recording.readings:
            device = recording.home.devices.get(reading.device)
            if device is not None:
                replay.feed(reading, device)
        routine_s = time.perf_counter() - started
    readings = len(recording.readings)
    print(
        json.dumps(
            {
                "bench": "replay_speed",
                "recording": path.stem,
                "resident_days": args.days,
                "readings": readings,
                "replay_s": None if replay_s is None else round(replay_s, 2),
                "replay_alert_changes": alerts,
                "replay_error": replay_error,
                "routine_detectors_s": round(routine_s, 2),
                "routine_ticks": "deadlines + every 60 s",
                "target_s": 10.0,
                "ok": (replay_s is None or replay_s <= 10.0) and routine_s <= 10.0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
