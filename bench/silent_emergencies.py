"""Measure the silent-emergency detectors on real homes (issue 5 protocol), through the live path.

    eldergate import tihm ../shared/data/routine/tihm --out /tmp/tihm
    .venv/bin/python bench/silent_emergencies.py /tmp/tihm [--cuts 20] [--seed 1]

(a) every ``inactivity`` or ``not_up`` alert raised on the real logs counts as a false alarm;
(b) each log is cut at random moments when the person is home and active (at least 14 days into
    the log, 08:00-21:00 local, motion in the previous 10 min, no exit door in the previous
    15 min), replayed to the cut + 24 h with nothing after the cut, and the first
    ``inactivity`` or ``not_up`` alert is timed. ``night_exit``, ``bed_exit_no_return`` and
    ``long_bathroom`` rates per resident-day are reported too.

Everything runs through :class:`gateway.replay.Replayer` (what ``eldergate replay`` runs: every
detector the gateway builds, the pipeline, the alert manager), and alerts are the manager's
``raised`` changes. Each home is replayed once; at each cut the replayer has read exactly the
lines before the first reading at or after the cut and has not yet moved its clock towards the
cut, which is the state a replay of the truncated recording reaches before ``--until``; a deep
copy of it is advanced to cut + 24 h (``tests/detection/routine/test_routine_bench.py`` checks
that this equals ``eldergate replay --until`` on the truncated file).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).absolute().parents[1]))

from alerts.manager import AlertChange
from gateway.detection.routine import RoutineSettings
from gateway.detection.routine.localtime import LocalTime
from gateway.model import Device, DeviceKind, Reading, Resident
from gateway.recording import RecordError, TimeFormat, parse_line
from gateway.replay import Replayer

SILENCE_TYPES = ("inactivity", "not_up")
REPORTED_TYPES = ("inactivity", "not_up", "night_exit", "bed_exit_no_return", "long_bathroom")
DAY_S = 86400.0


@dataclass
class Recording:
    name: str
    lines: list[str]
    readings: list[tuple[int, Reading]]  # (line index, reading), in file order
    devices: dict[str, Device]
    tz: str | None = None


def load_recording(path: Path) -> Recording:
    lines = path.read_text().splitlines()
    readings: list[tuple[int, Reading]] = []
    devices: dict[str, Device] = {}
    tz: str | None = None
    times = TimeFormat()
    for index, line in enumerate(lines):
        try:
            record = parse_line(line, times)
        except RecordError:
            continue  # the replayer reports it
        if isinstance(record, Reading):
            readings.append((index, record))
        elif isinstance(record, Device):
            devices[record.id] = record
        elif isinstance(record, Resident) and tz is None:
            found = record.settings.get("tz")
            tz = found if isinstance(found, str) else None
    return Recording(path.stem, lines, readings, devices, tz)


def pick_cuts(recording: Recording, count: int, rng: np.random.Generator) -> list[float]:
    """Random moments when the person is home and active (the issue's protocol)."""
    if not recording.readings:
        return []
    t = np.array([r.t for _, r in recording.readings])
    kinds = [recording.devices.get(r.device) for _, r in recording.readings]
    motion_t = np.sort(
        np.array([x for x, d in zip(t, kinds, strict=True) if _is_motion(d)], dtype=float)
    )
    exit_t = np.sort(
        np.array(
            [
                x
                for x, d, (_, r) in zip(t, kinds, recording.readings, strict=True)
                if _is_exit_open(d, r)
            ],
            dtype=float,
        )
    )
    local = LocalTime(recording.tz or "Europe/London")
    low, high = float(t.min()) + 14 * DAY_S, float(t.max())
    cuts: list[float] = []
    for _ in range(count * 200):
        if len(cuts) >= count or high <= low:
            break
        cut = float(rng.uniform(low, high))
        minute = local.minute_of_day(cut)
        if not 8 * 60 <= minute < 21 * 60:
            continue
        i = np.searchsorted(motion_t, cut, side="right")
        if i == 0 or cut - motion_t[i - 1] > 600.0:
            continue
        j = np.searchsorted(exit_t, cut, side="right")
        if j > 0 and cut - exit_t[j - 1] < 900.0:
            continue
        cuts.append(cut)
    return sorted(cuts)


def _is_motion(device: Device | None) -> bool:
    return device is not None and device.kind is DeviceKind.MOTION


def _is_exit_open(device: Device | None, reading: Reading) -> bool:
    return device is not None and device.is_exit and reading.get("open") is True


def truncated_lines(recording: Recording, cut: float) -> list[str]:
    """The recording as it would have been written up to ``cut``: every line before the first
    reading at or after the cut."""
    end = next((i for i, r in recording.readings if r.t >= cut), len(recording.lines))
    return recording.lines[:end]


def raised(changes: Iterable[AlertChange], types: Iterable[str]) -> list[AlertChange]:
    wanted = set(types)
    return [c for c in changes if c.change == "raised" and c.alert.type in wanted]


def first_silence_alert(changes: Iterable[AlertChange], after: float) -> float | None:
    times = [c.alert.t for c in raised(changes, SILENCE_TYPES) if c.alert.t >= after]
    return min(times) if times else None


def new_replayer(settings: RoutineSettings) -> Replayer:
    return Replayer(gateway_id="bench", languages=("en",), detection={"routine": settings})


def replay_with_cuts(
    recording: Recording, settings: RoutineSettings, cuts: list[float]
) -> tuple[list[AlertChange], list[list[AlertChange]]]:
    """One replay of the whole recording (all its alert changes), and for each cut the alert
    changes of a replay of the recording cut there, from its end to the cut + 24 h."""
    replayer = new_replayer(settings)
    changes: list[AlertChange] = []
    branches: list[list[AlertChange]] = []
    start = 0
    for cut in cuts:
        end = max(len(truncated_lines(recording, cut)), start)
        changes.extend(replayer.run(recording.lines[start:end]))
        start = end
        branch = copy.deepcopy(replayer)
        branches.append(list(branch.run([], until=cut + DAY_S)))
    changes.extend(replayer.run(recording.lines[start:]))
    return changes, branches


def evaluate_home(recording: Recording, settings: RoutineSettings, cuts: list[float]) -> dict:
    changes, branches = replay_with_cuts(recording, settings, cuts)
    found = [first_silence_alert(b, cut) for b, cut in zip(branches, cuts, strict=True)]
    delays = [None if f is None else f - cut for f, cut in zip(found, cuts, strict=True)]
    t = [r.t for _, r in recording.readings]
    days = (max(t) - min(t)) / DAY_S
    alerts = raised(changes, REPORTED_TYPES)
    return {
        "home": recording.name,
        "days": round(days, 2),
        "alerts": {kind: sum(1 for c in alerts if c.alert.type == kind) for kind in REPORTED_TYPES},
        "alert_times": [(c.alert.type, round(c.alert.t)) for c in alerts],
        "delays_s": [None if d is None else round(d) for d in delays],
    }


def summarise(results: list[dict]) -> dict:
    days = sum(r["days"] for r in results)
    false_alarms = sum(r["alerts"]["inactivity"] + r["alerts"]["not_up"] for r in results)
    delays = [d for r in results for d in r["delays_s"]]
    found = [d for d in delays if d is not None]
    summary: dict[str, Any] = {
        "homes": len(results),
        "resident_days": round(days, 1),
        "false_alarms": false_alarms,
        "false_alarms_per_resident_day": round(false_alarms / days, 4) if days else None,
        "cuts": len(delays),
        "missed_24h": len(delays) - len(found),
        "mean_delay_h": round(float(np.mean(found)) / 3600, 2) if found else None,
        "median_delay_h": round(float(np.median(found)) / 3600, 2) if found else None,
        "p90_delay_h": round(float(np.quantile(found, 0.9)) / 3600, 2) if found else None,
    }
    for kind in REPORTED_TYPES:
        total = sum(r["alerts"][kind] for r in results)
        summary[f"{kind}_per_resident_day"] = round(total / days, 4) if days else None
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("recordings", type=Path, help="folder of recordings (eldergate import)")
    parser.add_argument("--cuts", type=int, default=20, help="simulated collapses per home")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="home names to run (default: all)")
    parser.add_argument("--per-home", action="store_true", help="print one line per home")
    parser.add_argument("--alerts", action="store_true", help="list false-alarm times per home")
    parser.add_argument("--settings", help='JSON overrides: {"inactivity": {...}, ...}')
    args = parser.parse_args(argv)
    settings = parse_settings(args.settings)
    rng = np.random.default_rng(args.seed)
    results = []
    started = time.perf_counter()
    for path in sorted(args.recordings.glob("*.jsonl")):
        recording = load_recording(path)
        cuts = pick_cuts(recording, args.cuts, rng)  # drawn for every home: same cuts with --only
        if (args.only and path.stem not in args.only) or not recording.readings:
            continue
        result = evaluate_home(recording, settings, cuts)
        results.append(result)
        if args.per_home or args.alerts:
            print(json.dumps(_home_line(result, args.alerts)), file=sys.stderr)
    summary = summarise(results)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary))
    return 0


def _home_line(result: dict, with_alerts: bool) -> dict:
    found = [d for d in result["delays_s"] if d is not None]
    line = {k: v for k, v in result.items() if k not in ("alert_times", "delays_s")}
    line["mean_delay_h"] = round(float(np.mean(found)) / 3600, 2) if found else None
    line["missed"] = sum(1 for d in result["delays_s"] if d is None)
    if with_alerts:
        import datetime as dt

        line["false_alarms"] = [
            (kind, dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M"))
            for kind, t in result["alert_times"]
            if kind in SILENCE_TYPES
        ]
    return line


def parse_settings(text: str | None) -> RoutineSettings:
    settings = RoutineSettings()
    if not text:
        return settings
    for name, values in json.loads(text).items():
        if isinstance(values, dict):
            current = getattr(settings, name)
            settings = dataclasses.replace(
                settings, **{name: dataclasses.replace(current, **values)}
            )
        else:
            settings = dataclasses.replace(settings, **{name: values})
    return settings


if __name__ == "__main__":
    sys.exit(main())
