"""How fast a resident-month replays (target: 10 s or less). Prints one JSON line.

    .venv/bin/python bench/replay_speed.py [RECORDING] [--days 30]

RECORDING defaults to the busiest TIHM home (``eldergate import tihm`` is run into a temporary
folder when no recording is given). The first ``--days`` days are replayed through
``eldergate replay``'s code (:class:`gateway.replay.Replayer`: every detector the gateway builds,
the pipeline and the alert manager, ticking at every deadline and at least every 60 s), which is
also what bench/silent_emergencies.py measures.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).absolute().parents[1]))

from gateway.replay import Replayer

TIHM = Path(__file__).absolute().parents[2] / "shared/data/routine/tihm"


def month_lines(path: Path, days: float) -> list[str]:
    lines = path.read_text().splitlines()
    readings = [json.loads(x) for x in lines if '"reading"' in x]
    start = min(r["t"] for r in readings)
    head = [x for x in lines if '"reading"' not in x]
    body = [json.dumps(r) for r in readings if r["t"] < start + days * 86400]
    return head + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("recording", nargs="?", type=Path)
    parser.add_argument("--days", type=float, default=30.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.recording
        if path is None:
            from gateway.cli import main as cli

            cli(["import", "tihm", str(TIHM), "--out", tmp])
            path = max(Path(tmp).glob("*.jsonl"), key=lambda p: p.stat().st_size)
        text = "\n".join(month_lines(path, args.days)) + "\n"
    replayer = Replayer(gateway_id="bench")
    started = time.perf_counter()
    alerts = sum(1 for _ in replayer.run(io.StringIO(text), None))
    replay_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "bench": "replay_speed",
                "recording": path.stem,
                "resident_days": args.days,
                "readings": replayer.stats.readings,
                "replay_s": round(replay_s, 2),
                "replay_alert_changes": alerts,
                "ticks": "deadlines + every 60 s",
                "target_s": 10.0,
                "ok": replay_s <= 10.0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
