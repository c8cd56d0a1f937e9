"""What the gateway writes to its SD card per hour of a simulated home; prints one JSON line.

    nice .venv/bin/python bench/sd_writes.py [--hours 48] [--incidents sos]

The gateway's own ``Runtime`` on a ``SimClock`` (nothing sleeps), its outbox and learned state
on disk in a temporary folder, fed a simulated resident's days (``simulators.scenarios``: a
bed and a wristband status every minute, Zigbee door, motion and button check-ins hourly,
motion as the person moves about, the fridge, going out; ``--incidents`` as the scenarios
name them, an SOS press every morning by default; the band charged every night) plus the
wristband's accelerometer at 50 Hz
from 07:30 to 22:30 (25-sample notifications every 0.5 s with its sample counter). It ticks at
every deadline and at least every 60 s; the platform takes what is queued every minute;
staff acknowledge each alert 5 min after it is raised and resolve it 30 min after.

The learned state is written on the loop's thread here (the gateway's own writer thread would
put off a write still in flight while simulated time races on, and merge it with the next).
Counted per simulated hour: the SQLite transactions the gateway asks for, by file (learned
state, ``KeyValueFile.write``; outbox, ``Outbox._write`` for alert changes, summaries and
visits, ``Outbox.ack`` for each message the platform took), and what the process handed the
kernel (``/proc/self/io``: ``wchar`` bytes and ``syscw`` write calls; logging is off, so that is
SQLite's files, journals and write-ahead logs). The first ``--warm-up`` hours (a start: files
created, the picture and every device first heard) are left out of the per-hour figures.
fsyncs are not seen from inside; ``strace -f -y -e trace=pwrite64,write,fsync,fdatasync`` on
this script shows them per file, and ``--mark`` writes a line to stderr at each hour counted
to cut its log by hour (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import heapq
import itertools
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).absolute().parents[1]))
sys.path.insert(0, str(Path(__file__).absolute().parent))

import numpy as np
from soak_memory import Home

import gateway.detectors
from alerts.outbox import Outbox
from gateway.clock import Clock
from gateway.detection.routine.learning import LearnedStore, SqliteLearnedStore
from gateway.model import Reading
from gateway.storage import KeyValueFile
from simulators.scenarios import ACC_BATCH, WRIST_RATE_HZ, SimResident, day_readings

HOUR_S = 3600.0
TZ = "Europe/London"
START = dt.datetime(2026, 3, 2, 0, 0, tzinfo=ZoneInfo(TZ)).timestamp()  # a Monday


# -- counting ------------------------------------------------------------------------------------

TRANSACTIONS: Counter[str] = Counter()


def count_calls(cls: type, name: str, label: str) -> None:
    """Count each call of ``cls.name`` under ``label`` (one SQLite transaction each)."""
    original: Callable[..., Any] = getattr(cls, name)

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        TRANSACTIONS[label] += 1
        return original(self, *args, **kwargs)

    setattr(cls, name, counted)


def process_io() -> dict[str, int]:
    """``wchar`` (bytes handed to write calls) and ``syscw`` (write calls) of this process,
    every thread included; zeros where /proc is not Linux's."""
    try:
        with open("/proc/self/io") as io:
            fields = dict(line.split(": ") for line in io.read().splitlines())
        return {"bytes": int(fields["wchar"]), "write_calls": int(fields["syscw"])}
    except (OSError, KeyError, ValueError):
        return {"bytes": 0, "write_calls": 0}


def learned_in_the_foreground(state_dir: Path | None, clock: Clock) -> LearnedStore:
    """The gateway's learned store, its commits written before the call returns: on its own
    thread a write still in flight when simulated time races on (minutes of it in a
    millisecond) is put off and merged with the next, which real time does not do."""
    assert state_dir is not None
    return SqliteLearnedStore(Path(state_dir) / "routine.sqlite", clock)


def snapshot(mark: bool) -> dict[str, int]:
    if mark:
        os.write(2, b"sd_writes: hour\n")  # for an strace log; after the figures are read
    return {**TRANSACTIONS, **process_io()}


# -- the home ------------------------------------------------------------------------------------


def life(person: SimResident, start: float) -> Iterator[Reading]:
    """The scenario's days, the wristband charged every night (``resident_stream`` lets its
    battery run out after four weeks, and the band is then offline every night)."""
    day = dt.datetime.fromtimestamp(start, ZoneInfo(TZ)).date()
    while True:
        readings, _ = day_readings(person, day, 100.0, start)
        yield from readings
        day += dt.timedelta(days=1)


def band_stream(device: str, start: float, hours: float) -> Iterator[Reading]:
    """The wristband's accelerometer, 50 Hz in 25-sample notifications, 07:30 to 22:30."""
    rng = np.random.default_rng(3)
    n = int(600 * WRIST_RATE_HZ)  # ten minutes of wear, looped
    t = np.arange(n) / WRIST_RATE_HZ
    g = np.array([0.1, 0.2, 0.97])
    loop = g + 0.25 * np.sin(2 * np.pi * 1.8 * t)[:, None] * (t % 120 < 40)[:, None]
    loop = loop + rng.normal(0, 0.02, size=(n, 3))
    zone = ZoneInfo(TZ)
    seq = 0
    day = dt.datetime.fromtimestamp(start, zone).date()
    end = start + hours * HOUR_S
    while True:
        on = dt.datetime.combine(day, dt.time(7, 30), zone).timestamp()
        off = dt.datetime.combine(day, dt.time(22, 30), zone).timestamp()
        at = on
        while at < off:
            if at >= end:
                return
            if at >= start:
                i = seq % n // ACC_BATCH * ACC_BATCH
                batch = loop[i : i + ACC_BATCH]
                yield Reading(at, device, {"acc": batch, "fs": WRIST_RATE_HZ, "seq": seq})
            seq = (seq + ACC_BATCH) % 2**32
            at += ACC_BATCH / WRIST_RATE_HZ
        day += dt.timedelta(days=1)


def config_for(person: SimResident, storage: str) -> dict[str, Any]:
    resident = person.resident()
    return {
        "gateway": {"id": "gw-sd", "storage_path": storage, "timezone": TZ},
        "residents": [
            {
                "id": resident.id,
                "night_start": resident.night_start,
                "night_end": resident.night_end,
            }
        ],
        "devices": [
            {
                "id": d.id,
                "kind": d.kind.value,
                "room": d.room.value,
                "resident": d.resident,
                "transport": "simulated",
                **({"role": d.role} if d.role else {}),
            }
            for d in person.devices()
        ],
    }


# -- the run -------------------------------------------------------------------------------------


def per_hour(marks: list[dict[str, int]]) -> dict[str, dict[str, float]]:
    """Total, mean and largest figure per hour over consecutive snapshots."""
    keys = sorted({k for m in marks for k in m})
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        steps = [b.get(key, 0) - a.get(key, 0) for a, b in itertools.pairwise(marks)]
        out[key] = {
            "total": sum(steps),
            "mean": round(sum(steps) / len(steps), 1),
            "max": max(steps),
        }
    return out


def file_sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    gateway.detectors.open_learned_store = learned_in_the_foreground  # type: ignore[assignment]
    count_calls(KeyValueFile, "write", "learned_commits")
    count_calls(Outbox, "_write", "outbox_commits")
    count_calls(Outbox, "ack", "outbox_deletes")
    person = SimResident("r1", tuple(args.incidents), seed=1, tz=TZ)
    end = START + args.hours * HOUR_S
    with tempfile.TemporaryDirectory(prefix="eldergate-sd-") as storage:
        home = Home(config_for(person, storage), START, delivery_every_s=60.0)
        readings = heapq.merge(
            life(person, START),
            band_stream(person.device_id("wristband"), START, args.hours),
            key=lambda r: r.t,
        )
        marks: list[dict[str, int]] = []
        fed = 0
        next_hour = START + args.warm_up * HOUR_S
        began = time.perf_counter()
        for reading in readings:
            if reading.t >= end:
                break
            while reading.t >= next_hour:
                await home.advance(next_hour)
                await home.runtime.outbox.run(lambda: None)  # the outbox thread's work done
                home.runtime.pipeline.detectors[3].store.commit_due()  # type: ignore[attr-defined]
                marks.append(snapshot(args.mark))
                next_hour += HOUR_S
            await home.feed(reading)
            fed += 1
        while next_hour <= end:
            await home.advance(next_hour)
            await home.runtime.outbox.run(lambda: None)
            home.runtime.pipeline.detectors[3].store.commit_due()  # type: ignore[attr-defined]
            marks.append(snapshot(args.mark))
            next_hour += HOUR_S
        elapsed = time.perf_counter() - began
        await home.runtime.close()
        files = file_sizes(Path(storage))
    hours = len(marks) - 1
    return {
        "bench": "sd_writes",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "hours": args.hours,
        "measured_hours": hours,
        "warm_up_hours": args.warm_up,
        "incidents": list(args.incidents),
        "readings": fed,
        "readings_per_hour": round(fed / args.hours),
        "alerts_raised": dict(sorted(home.raised.items())),
        "alert_changes": home.changes,
        "delivered": home.delivered,
        "per_hour": per_hour(marks),
        "files_at_end": files,
        "run_s": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--warm-up", type=float, default=1.0, help="hours left out at the start")
    parser.add_argument("--incidents", nargs="*", default=["sos"])
    parser.add_argument("--mark", action="store_true", help="a stderr line at each hour counted")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the journal is the SD card too, but not this count
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
