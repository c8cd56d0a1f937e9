from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.replay import Replayer

DEVICE = {"type": "device", "id": "btn", "kind": "button", "room": "lounge", "resident": "p1"}


def lines(*records: object) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) for r in records]


def test_sos_alert_at_press_time_and_bad_lines_skipped() -> None:
    replayer = Replayer()
    changes = list(
        replayer.run(
            lines(
                DEVICE,
                "{not json",
                {"type": "reading", "t": 1554076990.0, "device": "btn", "action": "sos"},
                {"type": "reading", "t": 1554076995.0, "device": "ghost", "action": "sos"},
                {"type": "reading", "t": "yesterday", "device": "btn", "action": "sos"},
                {"type": "reading", "t": 1554077000.0, "device": "btn", "open": "yes"},
                [1, 2],
                {"type": "reading", "t": 1554078000.0, "device": "btn", "action": "press"},
            )
        )
    )
    raised = [c for c in changes if c.change == "raised"]
    assert [(c.alert.type, c.alert.resident, c.alert.t) for c in raised] == [
        ("sos", "p1", 1554076990.0),
        ("sos", "p1", 1554078000.0),
    ]
    reasons = replayer.stats.errors
    assert [r.split(":")[0] for r in reasons] == ["line 2", "line 4", "line 5", "line 6", "line 7"]
    assert "unknown device 'ghost'" in reasons[1] and "open: expected true or false" in reasons[3]


def test_until_keeps_the_clock_running() -> None:
    replayer = Replayer()
    press = {"type": "reading", "t": 1000.0, "device": "btn", "action": "sos"}
    without = [c.change for c in replayer.run(lines(DEVICE, press))]
    assert without == ["raised"]
    replayer = Replayer()
    with_until = [c.change for c in replayer.run(lines(DEVICE, press), until=1000.0 + 301)]
    assert with_until == ["raised", "escalated"]


def test_cli_keeps_iso_time_convention(tmp_path: Path) -> None:
    rec = tmp_path / "r.jsonl"
    rec.write_text(
        "\n".join(
            lines(
                DEVICE,
                {"type": "reading", "t": "2019-04-01T10:03:10", "device": "btn", "action": "sos"},
                "garbage",
            )
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "replay", str(rec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (alert,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert alert["t"] == "2019-04-01T10:03:10" and alert["type"] == "sos"
    assert {"id", "type", "severity", "resident", "t"} <= set(alert)
    assert "line 3: not JSON" in proc.stderr
