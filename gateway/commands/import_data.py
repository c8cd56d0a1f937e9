"""``eldergate import tihm DIR --out DIR``: public datasets → recordings (contract 2).

TIHM (Palermo et al., Scientific Data 2023, CC BY 4.0): ``DIR`` is the dataset folder holding
``activity/<home>.csv`` (or the ``activity`` folder itself). Each home becomes
``<out>/<home>.jsonl``: a resident record (``tz`` Europe/London: TIHM times are UK local
time), one device per sensor location seen, then the readings in time order.

Mapping: motion locations (kitchen, hallway, lounge, bedroom, bathroom) → ``motion`` devices in
that room, each firing one ``{"motion": true}``. TIHM logs one row per *door firing* without
saying whether the door opened or closed, so each firing is read as the door being used: an
``{"open": true}`` at the firing time and an ``{"open": false}`` ``DOOR_CLOSE_AFTER_S`` later
(or halfway to that door's next firing, if sooner). front-door and back-door are ``exit``
doors in the entrance, fridge-door a ``fridge`` door in the kitchen. Rows that cannot be read
(repeated headers, bad times, unknown locations) are counted and skipped.

Withings Sleep Analyzer export (``raw_sleep-monitor_hr.csv`` and
``raw_sleep-monitor_respiratory-rate.csv``: ``start,duration,value`` with JSON arrays, one
value per duration): one recording ``<out>/withings.jsonl`` with one under-mattress ``bed``
device; each sample becomes ``{"occupied": true, "hr": .., "rr": ..}`` at its time, and a gap
of more than ``BED_GAP_S`` between samples an ``{"occupied": false}`` (out of bed).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

TIHM_TZ = "Europe/London"
BED_GAP_S = 1800.0
DOOR_CLOSE_AFTER_S = 5.0

TIHM_DEVICES: dict[str, dict[str, str]] = {
    "front-door": {"kind": "door", "room": "entrance", "role": "exit"},
    "back-door": {"kind": "door", "room": "entrance", "role": "exit"},
    "fridge-door": {"kind": "door", "room": "kitchen", "role": "fridge"},
    "kitchen": {"kind": "motion", "room": "kitchen"},
    "hallway": {"kind": "motion", "room": "hallway"},
    "lounge": {"kind": "motion", "room": "lounge"},
    "bedroom": {"kind": "motion", "room": "bedroom"},
    "bathroom": {"kind": "motion", "room": "bathroom"},
}
TIME_COLUMNS = ("date-time", "date")
LOCATION_COLUMNS = ("location", "location_name")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["tihm", "withings"], help="which public dataset")
    parser.add_argument("source", type=Path, help="the dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the recordings")


def run(args: argparse.Namespace) -> int:
    if args.dataset == "withings":
        return _run_withings(args)
    source: Path = args.source
    activity = source / "activity" if (source / "activity").is_dir() else source
    files = sorted(activity.glob("*.csv"))
    if not files:
        print(f"no activity CSV files under {source}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    totals: Counter[str] = Counter()
    for path in files:
        home = path.stem
        skipped: Counter[str] = Counter()
        with path.open(newline="") as handle:
            records = tihm_records(home, csv.DictReader(handle), skipped)
        with (args.out / f"{home}.jsonl").open("w") as out:
            for record in records:
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
        totals["homes"] += 1
        totals["readings"] += sum(1 for r in records if r["type"] == "reading")
        for reason, count in skipped.items():
            totals[f"skipped_{reason}"] += count
            print(f"{path.name}: skipped {count} rows ({reason})", file=sys.stderr)
    print(json.dumps(dict(totals)))
    return 0


def tihm_records(
    home: str, rows: Iterable[dict[str, str]], skipped: Counter[str] | None = None
) -> list[dict[str, Any]]:
    """One TIHM activity table → the records of one recording (resident, devices, readings)."""
    skipped = skipped if skipped is not None else Counter()
    zone = ZoneInfo(TIHM_TZ)
    firings: list[tuple[float, str]] = []
    for row in rows:
        location = next((row[c] for c in LOCATION_COLUMNS if row.get(c)), None)
        stamp = next((row[c] for c in TIME_COLUMNS if row.get(c) and " " in row[c]), None)
        if location is None or stamp is None:
            skipped["unreadable"] += 1
            continue
        location = location.strip().lower()
        if location not in TIHM_DEVICES:
            skipped["unknown location"] += 1
            continue
        try:
            local = dt.datetime.fromisoformat(stamp.strip())
        except ValueError:
            skipped["bad time"] += 1
            continue
        firings.append((local.replace(tzinfo=zone).timestamp(), location))
    firings.sort()
    readings = _readings(firings)
    seen = {location for _, location in firings}
    records: list[dict[str, Any]] = [{"type": "resident", "id": home, "tz": TIHM_TZ}]
    for location, spec in TIHM_DEVICES.items():
        if location in seen:
            records.append({"type": "device", "id": location, "resident": home, **spec})
    records.extend(readings)
    return records


def _readings(firings: list[tuple[float, str]]) -> list[dict[str, Any]]:
    next_firing: dict[int, float] = {}
    last_index: dict[str, int] = {}
    for index, (t, location) in enumerate(firings):
        if location in last_index:
            next_firing[last_index[location]] = t
        last_index[location] = index
    out: list[tuple[float, int, dict[str, Any]]] = []
    for index, (t, location) in enumerate(firings):
        if TIHM_DEVICES[location]["kind"] == "motion":
            out.append((t, 0, {"type": "reading", "t": t, "device": location, "motion": True}))
            continue
        out.append((t, 0, {"type": "reading", "t": t, "device": location, "open": True}))
        close = t + DOOR_CLOSE_AFTER_S
        if index in next_firing:
            close = min(close, (t + next_firing[index]) / 2.0)
        out.append((close, 1, {"type": "reading", "t": close, "device": location, "open": False}))
    out.sort(key=lambda item: (item[0], item[1]))
    return [record for _, _, record in out]


def _run_withings(args: argparse.Namespace) -> int:
    skipped: Counter[str] = Counter()
    try:
        records = withings_records(args.source, skipped)
    except OSError as exc:
        print(f"cannot read {args.source}: {exc.strerror}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "withings.jsonl").open("w") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    readings = sum(1 for r in records if r["type"] == "reading")
    print(json.dumps({"readings": readings, **{f"skipped_{k}": v for k, v in skipped.items()}}))
    return 0


def withings_series(path: Path, skipped: Counter[str] | None = None) -> dict[float, float]:
    """One Withings ``start,duration,value`` file → {epoch second: value}."""
    skipped = skipped if skipped is not None else Counter()
    series: dict[float, float] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                start = dt.datetime.fromisoformat(row["start"]).timestamp()
                durations = json.loads(row["duration"])
                values = json.loads(row["value"])
            except (KeyError, TypeError, ValueError):
                skipped["unreadable"] += 1
                continue
            if not isinstance(durations, list) or not isinstance(values, list):
                skipped["unreadable"] += 1
                continue
            t = start
            for duration, value in zip(durations, values, strict=False):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    series[t] = float(value)
                if isinstance(duration, (int, float)):
                    t += float(duration)
    return series


def withings_records(folder: Path, skipped: Counter[str] | None = None) -> list[dict[str, Any]]:
    hr = withings_series(folder / "raw_sleep-monitor_hr.csv", skipped)
    rr = withings_series(folder / "raw_sleep-monitor_respiratory-rate.csv", skipped)
    records: list[dict[str, Any]] = [
        {"type": "resident", "id": "withings"},
        {
            "type": "device",
            "id": "mattress",
            "kind": "bed",
            "room": "bedroom",
            "resident": "withings",
        },
    ]
    previous: float | None = None
    for t in sorted(set(hr) | set(rr)):
        if previous is not None and t - previous > BED_GAP_S:
            records.append(
                {"type": "reading", "t": previous + 60.0, "device": "mattress", "occupied": False}
            )
        reading: dict[str, Any] = {
            "type": "reading",
            "t": t,
            "device": "mattress",
            "occupied": True,
        }
        if t in hr:
            reading["hr"] = hr[t]
        if t in rr:
            reading["rr"] = rr[t]
        records.append(reading)
        previous = t
    return records
