"""``eldergate evaluate fall DIR [--out FILE]``: the live fall detector on recorded data.

Each recording of ``DIR/MANIFEST.csv`` (gzip or plain CSV ``t,x,y,z``; t in seconds, x/y/z in
g) is streamed through a fresh :class:`~gateway.detection.fall_alerts.FallAlerts` on a
:class:`~gateway.clock.SimClock`, in batches of 4-25 samples with per-sample times as a BLE
wristband sends them; the clock is advanced to each batch's last sample and to every deadline
the detector asks for, exactly as the pipeline does. A recording counts as detected when the
detector raises a ``fall`` alert; ``detected_at_s`` is the recording time at which it did, on
the recording's own ``t`` axis (which need not start at 0).

``--out`` writes ``file,label,detected,detected_at_s``; the last stdout line is a JSON summary
(``recordings``, ``falls``, ``adls``, ``tp``, ``fn``, ``fp``, ``tn``, ``sensitivity``,
``specificity``, per ``dataset`` when the manifest has that column).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gateway.clock import SimClock
from gateway.detection.fall import MIN_POST_S, POST_S
from gateway.detection.fall_alerts import FallAlerts, FallSettings, load_model
from gateway.model import Device, DeviceKind, Event, EventAction, Reading

EPOCH0 = 1_700_000_000.0
MONO0 = 1000.0
CHUNK_MIN, CHUNK_MAX = 4, 25


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector", choices=["fall"], help="what to evaluate")
    parser.add_argument("dir", type=Path, help="directory with MANIFEST.csv and recordings")
    parser.add_argument("--out", type=Path, default=None, help="per-recording CSV")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch sizes")
    parser.add_argument("--threshold", type=float, default=None, help="override the model's")
    parser.add_argument("--model", default=None, help="another exported fall model (.npz)")
    parser.add_argument("--limit", type=int, default=None, help="first N recordings only")


@dataclass(slots=True)
class Outcome:
    file: str
    label: str
    dataset: str
    activity: str
    detected: bool
    detected_at_s: float | None
    error: str | None = None


def _header_columns(first_line: str) -> tuple[int, int, int, int] | None:
    """The columns of ``t``, ``x``, ``y``, ``z`` named by a header line (any order, extra
    columns, quotes and spaces allowed); None when the line names them not."""
    names = [name.strip().strip('"').strip().lower() for name in first_line.split(",")]
    if not {"t", "x", "y", "z"} <= set(names):
        return None
    return names.index("t"), names.index("x"), names.index("y"), names.index("z")


def _is_numeric_row(line: str) -> bool:
    try:
        [float(field) for field in line.split(",")[:4]]
    except ValueError:
        return False
    return bool(line.strip())


def _parse_leniently(lines: list[str], cols: tuple[int, int, int, int]) -> np.ndarray:
    """Row by row: a missing or unreadable field is NaN, as a sensor's gap would be."""

    def number(fields: list[str], i: int) -> float:
        try:
            return float(fields[i].strip().strip('"'))
        except (IndexError, ValueError):
            return math.nan

    rows = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.split(",")
        rows.append([number(fields, i) for i in cols])
    return np.array(rows, dtype=float).reshape(-1, 4)


def read_recording(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Gzip or plain CSV, told apart by the content (gzip's magic number), not the name.

    A header naming ``t``, ``x``, ``y`` and ``z`` picks those columns (any order, others
    ignored); another header, or none (a first row of numbers), means ``t,x,y,z`` in order.
    A missing or unreadable value is NaN, which the live detector treats as a sensor's gap;
    rows without a finite time are dropped (they have no place in the stream). A file with no
    complete sample is unreadable (``ValueError``)."""
    with path.open("rb") as raw:
        packed = raw.read(2) == b"\x1f\x8b"
    opener: Any = gzip.open if packed else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
        text = fh.read()
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ValueError("no samples")
    cols = _header_columns(lines[first])
    # a header that names other columns ("time,ax,ay,az") is read by position, as always
    body = lines[first:] if _is_numeric_row(lines[first]) else lines[first + 1 :]
    cols = cols or (0, 1, 2, 3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # loadtxt's "input contained no data"
            data = np.loadtxt(body, delimiter=",", ndmin=2, usecols=cols, dtype=float)
    except (ValueError, IndexError):
        data = _parse_leniently(body, cols)
    data = data.reshape(-1, 4)
    data = data[np.isfinite(data[:, 0])]
    if not np.isfinite(data).all(axis=1).any():  # nothing but gaps: not a recording
        raise ValueError("no samples")
    return data[:, 0], data[:, 1:4]


def stream_recording(
    t: np.ndarray, xyz: np.ndarray, settings: FallSettings, rng: np.random.Generator
) -> tuple[float | None, list[Event]]:
    """Run one recording through a fresh live detector; returns the recording time at which
    a fall alert was raised (or None) and every event emitted."""
    clock = SimClock(start_wall=EPOCH0, start_mono=MONO0)
    detector = FallAlerts(clock, settings, model=load_model(settings.model_path))
    device = Device(id="wristband", kind=DeviceKind.WRISTBAND, resident="evaluated")
    t = t - t[0]
    events: list[Event] = []
    raised_at: float | None = None

    def run_until(mono: float) -> None:
        nonlocal raised_at
        for _ in range(10_000):
            deadline = detector.next_deadline()
            if deadline is None or deadline > mono:
                break
            if deadline > clock.monotonic():
                clock.advance(deadline - clock.monotonic())
            new = detector.on_tick()
            events.extend(new)
            if raised_at is None and any(e.action is EventAction.RAISE for e in new):
                raised_at = clock.monotonic() - MONO0
            if deadline <= clock.monotonic() and not new and detector.next_deadline() == deadline:
                break  # nothing moves at this deadline: do not spin
        if mono > clock.monotonic():
            clock.advance(mono - clock.monotonic())

    start = 0
    n = t.size
    while start < n:
        stop = min(n, start + int(rng.integers(CHUNK_MIN, CHUNK_MAX + 1)))
        run_until(MONO0 + float(t[stop - 1]))
        reading = Reading(
            t=EPOCH0 + float(t[start]),
            device=device.id,
            values={"acc": xyz[start:stop], "ts": EPOCH0 + t[start:stop]},
        )
        new = detector.on_reading(reading, device)
        events.extend(new)
        if raised_at is None and any(e.action is EventAction.RAISE for e in new):
            raised_at = clock.monotonic() - MONO0
        start = stop
    # the wristband goes quiet: let pending decisions and confirmations run out
    horizon = float(t[-1]) + max(POST_S, MIN_POST_S) + settings.confirmation_s + 2.0
    run_until(MONO0 + horizon)
    return raised_at, events


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    falls = [o for o in outcomes if o.label == "fall"]
    adls = [o for o in outcomes if o.label != "fall"]
    tp = sum(o.detected for o in falls)
    fp = sum(o.detected for o in adls)
    return {
        "recordings": len(outcomes),
        "falls": len(falls),
        "adls": len(adls),
        "tp": tp,
        "fn": len(falls) - tp,
        "fp": fp,
        "tn": len(adls) - fp,
        "sensitivity": round(tp / len(falls), 4) if falls else None,
        "specificity": round((len(adls) - fp) / len(adls), 4) if adls else None,
    }


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    manifest = root / "MANIFEST.csv"
    if not manifest.is_file():
        print(f"evaluate: {manifest} not found", file=sys.stderr)
        return 2
    with manifest.open(newline="", encoding="utf-8-sig") as fh:  # a spreadsheet's BOM
        reader = csv.DictReader(fh)
        if reader.fieldnames:  # "file, label" or "File,Label" by hand: the same columns
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
        rows = list(reader)
    if rows and not {"file", "label"} <= set(rows[0]):
        print("evaluate: MANIFEST.csv needs the columns file and label", file=sys.stderr)
        return 2
    if args.limit is not None:
        rows = rows[: args.limit]
    settings = FallSettings(threshold=args.threshold, model_path=args.model)
    rng = np.random.default_rng(args.seed)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    for row in rows:
        label = (row.get("label") or "").strip().lower()
        outcome = Outcome(
            row["file"], label, row.get("dataset") or "", row.get("activity") or "", False, None
        )
        try:
            t, xyz = read_recording(root / row["file"])
            at, _events = stream_recording(t, xyz, settings, rng)
            outcome.detected = at is not None
            # stream_recording counts from the first sample; report on the recording's t axis
            outcome.detected_at_s = None if at is None else at + float(t[0])
        except (OSError, ValueError, EOFError) as exc:
            outcome.error = type(exc).__name__
            print(f"evaluate: {row['file']}: unreadable ({exc})", file=sys.stderr)
        outcomes.append(outcome)
    if args.out is not None:
        with args.out.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "label", "detected", "detected_at_s"])
            for o in outcomes:
                when = "" if o.detected_at_s is None else f"{o.detected_at_s:.2f}"
                writer.writerow([o.file, o.label, int(o.detected), when])
    summary = _summary(outcomes)
    by_dataset: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.dataset:
            by_dataset[o.dataset].append(o)
    if by_dataset:
        summary["datasets"] = {name: _summary(group) for name, group in sorted(by_dataset.items())}
    summary["errors"] = sum(o.error is not None for o in outcomes)
    summary["seconds"] = round(time.monotonic() - started, 1)
    if not summary["falls"] or not summary["adls"]:
        summary["note"] = "no falls or no daily activities: one of the rates is undefined"
    print(json.dumps(summary))
    return 0
