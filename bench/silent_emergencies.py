"""Measure the silent-emergency detectors on real homes (issue 5 protocol).

    eldergate import tihm ../shared/data/routine/tihm --out /tmp/tihm
    .venv/bin/python bench/silent_emergencies.py /tmp/tihm [--cuts 20] [--seed 1]

(a) every ``inactivity`` or ``not_up`` alert on the real logs counts as a false alarm;
(b) each log is cut at random moments when the person is home and active (at least 14 days into
    the log, 08:00-21:00 local, motion in the previous 10 min, no exit door in the previous
    15 min), replayed to the cut + 24 h with nothing after the cut, and the first
    ``inactivity`` or ``not_up`` alert is timed. ``night_exit`` and ``bed_exit_no_return``
    rates per resident-day are reported too.

The replay loop has the pipeline's semantics: the simulated clock is set to each reading's
time, detectors tick at their deadlines and at least every ``--tick`` seconds, and the cut
replay continues the same detector state (a copy taken at the cut) with no more readings, as
``eldergate replay --until`` does with a truncated recording.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.routine import RoutineDetectors, RoutineSettings
from gateway.detection.routine.localtime import LocalTime
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Resident
from gateway.recording import RecordError, TimeFormat, parse_line

SILENCE_TYPES = ("inactivity", "not_up")
REPORTED_TYPES = ("inactivity", "not_up", "night_exit", "bed_exit_no_return", "long_bathroom")


@dataclass
class Recording:
    name: str
    home: Home
    readings: list[Reading]
    tz: str | None = None


def load_recording(path: Path) -> Recording:
    residents: list[Resident] = []
    devices: list[Device] = []
    readings: list[Reading] = []
    times = TimeFormat()
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = parse_line(line, times)
            except RecordError as exc:
                print(f"{path.name}:{number}: {exc}", file=sys.stderr)
                continue
            if isinstance(record, Reading):
                readings.append(record)
            elif isinstance(record, Device):
                devices.append(record)
            elif isinstance(record, Resident):
                residents.append(record)
    readings.sort(key=lambda r: r.t)
    tz = next((r.settings.get("tz") for r in residents if r.settings.get("tz")), None)
    return Recording(path.stem, Home(residents, devices), readings, tz)


@dataclass
class Replay:
    """The minimal pipeline loop (see module docstring)."""

    clock: SimClock
    detector: RoutineDetectors
    tick_s: float = 60.0
    events: list[Event] = field(default_factory=list)
    last_tick_mono: float = 0.0

    def advance_to(self, wall: float) -> None:
        while True:
            now = self.clock.wall()
            deadline = self.detector.next_deadline()
            next_tick = self.last_tick_mono + self.tick_s
            if deadline is not None and deadline <= self.last_tick_mono + 1e-6:
                deadline = None  # already ticked at that moment: never spin
            due = next_tick if deadline is None else min(deadline, next_tick)
            due_wall = now + (due - self.clock.monotonic())
            if due_wall > wall:
                break
            self.clock.set_wall(max(due_wall, now))
            self.tick()
        self.clock.set_wall(wall)

    def tick(self) -> None:
        self.last_tick_mono = self.clock.monotonic()
        self.events.extend(self.detector.on_tick())

    def feed(self, reading: Reading, device: Device) -> None:
        self.advance_to(reading.t)
        self.events.extend(self.detector.on_reading(reading, device))


def new_replay(recording: Recording, settings: RoutineSettings, tick_s: float) -> Replay:
    start = recording.readings[0].t if recording.readings else 1.6e9
    clock = SimClock(start_wall=start - 1.0)
    detector = RoutineDetectors(clock, recording.home, settings)
    return Replay(clock, detector, tick_s, last_tick_mono=clock.monotonic())


def pick_cuts(recording: Recording, count: int, rng: np.random.Generator) -> list[float]:
    """Random moments when the person is home and active (the issue's protocol)."""
    if not recording.readings:
        return []
    devices = recording.home.devices
    t = np.array([r.t for r in recording.readings])
    kinds = [devices.get(r.device) for r in recording.readings]
    motion_t = np.array([x for x, d in zip(t, kinds, strict=True) if _is_motion(d)])
    exit_t = np.array(
        [x for x, d, r in zip(t, kinds, recording.readings, strict=True) if _is_exit_open(d, r)]
    )
    local = LocalTime(recording.tz or "Europe/London")
    low, high = t[0] + 14 * 86400.0, t[-1]
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


def first_silence_alert(replay: Replay, after: float) -> float | None:
    for event in replay.events:
        if event.action is EventAction.RAISE and event.type in SILENCE_TYPES and event.t >= after:
            return event.t
    return None


def evaluate_home(
    recording: Recording, settings: RoutineSettings, cuts: list[float], tick_s: float
) -> dict:
    replay = new_replay(recording, settings, tick_s)
    delays: list[float | None] = []
    pending = list(cuts)
    for reading in recording.readings:
        while pending and pending[0] < reading.t:
            cut = pending.pop(0)
            replay.advance_to(cut)
            branch = copy.deepcopy(replay)
            branch.events = []
            branch.advance_to(cut + 24 * 3600.0)
            found = first_silence_alert(branch, cut)
            delays.append(None if found is None else found - cut)
        device = recording.home.devices.get(reading.device)
        if device is not None:
            replay.feed(reading, device)
    days = (recording.readings[-1].t - recording.readings[0].t) / 86400.0
    counts = {
        kind: sum(1 for e in replay.events if e.type == kind and e.action is EventAction.RAISE)
        for kind in REPORTED_TYPES
    }
    return {
        "home": recording.name,
        "days": round(days, 2),
        "alerts": counts,
        "alert_times": [
            (e.type, round(e.t)) for e in replay.events if e.action is EventAction.RAISE
        ],
        "delays_s": [None if d is None else round(d) for d in delays],
    }


def summarise(results: list[dict]) -> dict:
    days = sum(r["days"] for r in results)
    false_alarms = sum(r["alerts"]["inactivity"] + r["alerts"]["not_up"] for r in results)
    delays = [d for r in results for d in r["delays_s"]]
    found = [d for d in delays if d is not None]
    summary = {
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", type=Path, help="folder of recordings (eldergate import)")
    parser.add_argument("--cuts", type=int, default=20, help="simulated collapses per home")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tick", type=float, default=60.0, help="longest tick interval, s")
    parser.add_argument("--only", nargs="*", help="home names to run (default: all)")
    parser.add_argument("--per-home", action="store_true", help="print one line per home")
    parser.add_argument("--settings", help='JSON overrides: {"inactivity": {...}, ...}')
    args = parser.parse_args(argv)
    settings = _settings(args.settings)
    rng = np.random.default_rng(args.seed)
    results = []
    for path in sorted(args.recordings.glob("*.jsonl")):
        if args.only and path.stem not in args.only:
            continue
        recording = load_recording(path)
        if not recording.readings:
            continue
        cuts = pick_cuts(recording, args.cuts, rng)
        result = evaluate_home(recording, settings, cuts, args.tick)
        results.append(result)
        if args.per_home:
            line = {k: v for k, v in result.items() if k not in ("alert_times",)}
            found = [d for d in result["delays_s"] if d is not None]
            line["delays_s"] = None
            line["mean_delay_h"] = round(float(np.mean(found)) / 3600, 2) if found else None
            line["missed"] = sum(1 for d in result["delays_s"] if d is None)
            print(json.dumps(line), file=sys.stderr)
    print(json.dumps(summarise(results)))
    return 0


def _settings(text: str | None) -> RoutineSettings:
    import dataclasses

    settings = RoutineSettings()
    if not text:
        return settings
    overrides = json.loads(text)
    for name, values in overrides.items():
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
