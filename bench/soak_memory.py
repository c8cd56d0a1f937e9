"""Memory over months of simulated time (tracemalloc); prints one JSON line.

    nice .venv/bin/python bench/soak_memory.py [RECORDING] [--days 90] [--band-hours 4]

Every phase runs on a ``SimClock`` (nothing sleeps) under one tracemalloc session (one frame
per allocation); ``traced_mib`` is what Python and numpy hold after a ``gc.collect()``, and
``top_growth`` the lines whose allocations still alive grew most between two snapshots.

* ``home``: the gateway's own ``Runtime`` (every detector it builds, gateway health, the alert
  manager, the daily summary, the outbox and the learned state on disk in a temporary
  folder), fed the busiest TIHM home's three months (``eldergate import tihm`` into a
  temporary folder when no recording is given; looped when ``--days`` is longer) through
  ``Runtime._feed``/``_commit``/``_tick`` as its loop would: a tick at every deadline and at
  least every 60 s. Added to the recording: a bed (occupied at night with heart rate and
  breathing every 2 min, empty every 30 min in the day), a wristband (20 s of motion every 3 h:
  50 Hz, 250-sample notifications with its sample counter running on), a daily SOS press, the
  staff visit button every third day, a door whose availability flaps every day, a battery
  jittering around its threshold (the bed and the band report less often than real ones, to
  keep the run short, and have an ``offline_after_s`` to match). Inputs are made as fed.
  Staff acknowledge every alert 5 min after it is raised and resolve it 30 min after; the
  platform takes what is queued every hour, except in the last ``--platform-down-days`` days.
  Snapshots after days 1, 30, 60 and the last; ``growth_kib_per_day`` is from day 60 (the
  60-day learned histories full) to the last.
* ``broken_devices`` (``--broken-days``): on the same kind of runtime, a bed whose clock
  dates its reports up to 30 years ahead (once a minute), and a bathroom and a hallway sensor
  setting each other off (a "stay" a minute).
* ``band``: one wristband worn for ``--band-hours`` without a break (the pipeline's
  ``feed``, 250-sample notifications with the counter, an impact-like spike every 60 s).
* ``bad_input``: the local-broker driver's message handling (the JSON device topic,
  Zigbee2MQTT, the bed profile) for ``--bad`` rounds of 9 messages each from distinct unknown
  devices and malformed payloads; the BLE driver's advertisement handling for 3 distinct
  unknown addresses a round; the runtime's command handling for a command about an unknown
  alert id and a malformed command a round; the pipeline for a reading of an unknown device a
  round.
* ``alert_cycles``: the alert manager alone for ``--days`` days of raise / repeat / clear /
  cancel / escalate / acknowledge / resolve and visits, an event every 5 min.
* ``platform_down``: the outbox with no delivery for ``--days`` days: 3 residents' daily
  summaries and alerts (the non-alert rows are bounded by ``outbox.max_other_rows`` and
  ``max_other_age_h``; alerts are kept on disk, never dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import heapq
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).absolute().parents[1]))

import aiomqtt
import numpy as np

from alerts.manager import AlertChange, AlertManager
from alerts.outbox import ALERT, SUMMARY, Message, Outbox
from drivers.ble.base import Advertisement
from drivers.ble.driver import BleDeviceSpec, BleDriver
from drivers.decoders.bed import BedProfileCodec
from drivers.local_mqtt import DeviceJsonCodec, LocalMqttDriver, TopicCodec
from drivers.zigbee2mqtt import Zigbee2MqttCodec
from gateway.clock import SimClock
from gateway.model import Device, Event, EventAction, Reading, Severity
from gateway.recording import TimeFormat, parse_line
from gateway.runtime import Runtime
from gateway.settings import LocalBrokerSettings, parse_settings

ROOT = Path(__file__).absolute().parents[1]
TIHM = ROOT.parent / "shared/data/routine/tihm"
DAY_S = 86400.0
TICK_S = 60.0
MIB = 1024.0 * 1024.0
HERE = str(Path(__file__).absolute())


# -- measuring ----------------------------------------------------------------------------------


def traced() -> tuple[float, tracemalloc.Snapshot]:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / MIB, tracemalloc.take_snapshot()


def rss_mib() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
    except OSError:
        return float("nan")


def top_growth(after: tracemalloc.Snapshot, before: tracemalloc.Snapshot, n: int = 5) -> list[str]:
    """The ``n`` lines whose live allocations grew most, as 'file:line +KiB (+count)'
    (tracemalloc's own and this script's left out)."""
    found: list[str] = []
    stats = sorted(after.compare_to(before, "lineno"), key=lambda st: -st.size_diff)
    for stat in stats:
        if len(found) == n or stat.size_diff <= 0:
            break
        frame = stat.traceback[0]
        if frame.filename in (tracemalloc.__file__, HERE):
            continue
        where = os.path.relpath(frame.filename, ROOT) if frame.filename.startswith("/") else ""
        if where.startswith(".."):  # the standard library or a package: its last two parts
            where = "/".join(Path(frame.filename).parts[-2:])
        kib = stat.size_diff / 1024
        found.append(
            f"{where or frame.filename}:{frame.lineno} +{kib:.1f} KiB ({stat.count_diff:+d})"
        )
    return found


def mib(value: float) -> float:
    return round(value, 3)


# -- the home: a runtime on simulated time -----------------------------------------------------


def load_recording(path: Path) -> tuple[list[Device], str, float, float]:
    """The recording's devices, its resident, and its first and last reading times (the
    readings themselves are read again as they are fed: :func:`recording_readings`)."""
    times = TimeFormat()
    devices: list[Device] = []
    resident = ""
    first: float | None = None
    last: float | None = None
    with path.open() as lines:
        for line in lines:
            record = parse_line(line, times)
            if isinstance(record, Device):
                devices.append(record)
                resident = resident or record.resident
            elif isinstance(record, Reading):
                first = record.t if first is None else first
                last = record.t
    assert first is not None and last is not None, f"{path}: no readings"
    return devices, resident, first, last


def recording_readings(path: Path, first: float, last: float, days: int) -> Iterator[Reading]:
    """The recording's readings for ``days`` from its first, looped (shifted by whole days)
    when it is shorter."""
    span = (last - first) // DAY_S * DAY_S + DAY_S
    end = first + days * DAY_S
    shift = 0.0
    while True:
        times = TimeFormat()
        with path.open() as lines:
            for line in lines:
                record = parse_line(line, times)
                if not isinstance(record, Reading):
                    continue
                if record.t + shift >= end:
                    return
                yield Reading(record.t + shift, record.device, record.values)
        shift += span


def home_config(devices: list[Device], resident: str, storage: str) -> dict[str, Any]:
    def device(id_: str, kind: str, room: str, **more: Any) -> dict[str, Any]:
        return {"id": id_, "kind": kind, "room": room, "resident": resident, **more}

    listed = [
        device(d.id, d.kind.value, d.room.value, **({"role": d.role} if d.role else {}))
        for d in devices
    ]
    listed += [  # reporting less often than real ones (the soak's time): offline later too
        device("bed", "bed", "bedroom", options={"offline_after_s": 3600}),
        device("band", "wristband", "other", options={"offline_after_s": 4 * 3600}),
        device("sos", "button", "bedroom"),
        device("visit", "button", "entrance", role="visit"),
    ]
    for entry in listed:
        entry["transport"] = "simulated"
    return {
        "gateway": {"id": "gw-soak", "storage_path": storage, "timezone": "Europe/London"},
        "residents": [{"id": resident}],
        "devices": listed,
    }


class Home:
    """A :class:`Runtime` driven the way its processing loop drives it, with staff (each alert
    acknowledged after 5 min, resolved after 30) and a platform taking what is queued every
    ``delivery_every_s`` (while ``platform_up``). Also bench/sd_writes.py's home."""

    def __init__(
        self, config: dict[str, Any], start: float, delivery_every_s: float = 3600.0
    ) -> None:
        self.clock = SimClock(start_wall=start, start_mono=1000.0)
        self.runtime = Runtime(parse_settings(config), self.clock, None, [])
        self.staff: list[tuple[float, int, bytes]] = []  # (wall, order, command)
        self._order = 0
        self.platform_up = True
        self._delivery_every_s = delivery_every_s
        self._next_delivery = start + delivery_every_s
        self.delivered = 0
        self.raised: Counter[str] = Counter()  # alert type -> how many raised
        self.changes = 0  # alert changes committed (raised, escalated, acknowledged, ...)
        commit = self.runtime._commit

        async def staff_watching(changes: list[AlertChange]) -> None:
            self.changes += len(changes)
            for change in changes:
                if change.change == "raised":
                    self.raised[change.alert.type] += 1
                    self._command(300.0, "ack", change.alert.id)
                    self._command(1800.0, "resolve", change.alert.id)
            await commit(changes)

        self.runtime._commit = staff_watching  # type: ignore[method-assign]

    def _command(self, after_s: float, name: str, alert_id: str) -> None:
        self._order += 1
        payload = json.dumps({"command": name, "alert_id": alert_id}).encode()
        heapq.heappush(self.staff, (self.clock.wall() + after_s, self._order, payload))

    async def advance(self, wall: float) -> None:
        """Simulated time on to ``wall``: a tick at every deadline (at least every 60 s), the
        staff's commands and the platform's deliveries when due."""
        runtime, clock = self.runtime, self.clock
        while True:
            due = [wall, self._next_delivery]
            if self.staff:
                due.append(self.staff[0][0])
            target = min(due)
            target_mono = clock.monotonic() + max(0.0, target - clock.wall())
            while (deadline := runtime.pipeline.next_deadline()) <= target_mono:
                clock.advance(max(deadline - clock.monotonic(), 0.1))
                await runtime._tick()
            clock.advance(max(0.0, target_mono - clock.monotonic()))
            while self.staff and self.staff[0][0] <= clock.wall():
                await runtime.handle_command(heapq.heappop(self.staff)[2])
            if clock.wall() >= self._next_delivery:
                self._next_delivery += self._delivery_every_s
                if self.platform_up:
                    for item in await runtime.outbox.pending(10_000):
                        await runtime.outbox.ack(item.seq)
                        self.delivered += 1
            if clock.wall() >= wall:
                return

    async def feed(self, reading: Reading) -> None:
        await self.advance(reading.t)
        await self.runtime._commit(self.runtime._feed(reading))


def home_extras(start: float, days: int, zone: dt.tzinfo, seed: int = 1) -> Iterator[Reading]:
    """What the recording lacks, day by day in time order: a bed (every 2 min at night, every
    30 min in the day), a wristband (20 s of motion every 3 h, its counter running on while
    away), a daily SOS press, the visit button, a flapping door, a battery."""
    rng = np.random.default_rng(seed)
    t = np.arange(250) / 50.0
    first = dt.datetime.fromtimestamp(start, zone).date()
    seq = 0
    for n in range(days):
        day = first + dt.timedelta(days=n)
        midnight = dt.datetime.combine(day, dt.time(), zone).timestamp()
        out: list[Reading] = []
        for minute in range(0, 24 * 60, 2):
            at = midnight + minute * 60.0 + 7.0
            if minute >= 23 * 60 or minute < 7 * 60:
                night = {"occupied": True, "hr": float(rng.normal(60, 4)), "rr": 14.0}
                out.append(Reading(at, "bed", night))
            elif minute % 30 == 0:
                out.append(Reading(at, "bed", {"occupied": False, "hr": None, "rr": None}))
        for hour in range(0, 24, 3):
            begin = midnight + hour * 3600.0 + 900.0
            seq = (seq + 3 * 3600 * 50) % 2**32
            g = rng.normal(size=3)
            g /= np.linalg.norm(g)
            for k in range(4):
                acc = g + 0.3 * np.sin(2 * np.pi * t)[:, None] * rng.normal(size=3)
                acc += rng.normal(0, 0.02, size=(250, 3))
                if k == 2 and hour % 6 == 0:
                    acc[100] += 2.5 * g  # an impact-like spike
                batch = {"acc": acc, "fs": 50.0, "seq": (seq + 250 * k) % 2**32}
                out.append(Reading(begin + 5.0 * k, "band", batch))
        out.append(Reading(midnight + 10.5 * 3600.0, "sos", {"action": "sos"}))
        if n % 3 == 0:
            out.append(Reading(midnight + 15 * 3600.0, "visit", {"action": "press"}))
            out.append(Reading(midnight + 16 * 3600.0, "visit", {"action": "press"}))
        out.append(Reading(midnight + 13 * 3600.0, "front-door", {"online": False}))
        out.append(Reading(midnight + 13.2 * 3600.0, "front-door", {"online": True}))
        battery = 13.0 + 9.0 * float(rng.random())
        out.append(Reading(midnight + 12 * 3600.0, "sos", {"battery": battery}))
        yield from sorted(out, key=lambda r: r.t)


async def home_phase(
    recording_path: Path, days: int, down_days: int, storage: str
) -> dict[str, Any]:
    devices, resident, start, last = load_recording(recording_path)
    config = home_config(devices, resident, storage)
    home = Home(config, start)
    readings = heapq.merge(
        recording_readings(recording_path, start, last, days),
        home_extras(start, days, home.runtime.summary.zone),
        key=lambda r: r.t,
    )
    marks = sorted({1, min(30, days), min(60, days), days})
    snapshots: dict[int, tuple[float, tracemalloc.Snapshot]] = {}
    rss: dict[int, float] = {}
    next_mark = 0
    began = time.perf_counter()
    for reading in readings:
        while next_mark < len(marks) and reading.t >= start + marks[next_mark] * DAY_S:
            await home.advance(start + marks[next_mark] * DAY_S)
            snapshots[marks[next_mark]] = traced()
            rss[marks[next_mark]] = rss_mib()
            next_mark += 1
        home.platform_up = reading.t < start + (days - down_days) * DAY_S
        await home.feed(reading)
    for mark in marks[next_mark:]:
        await home.advance(start + mark * DAY_S)
        snapshots[mark] = traced()
        rss[mark] = rss_mib()
    elapsed = time.perf_counter() - began
    runtime = home.runtime
    depth = await runtime.outbox.depth()
    learned = runtime.pipeline.detectors[3].store  # type: ignore[attr-defined]
    from_day = min(60, days) if days > 60 else 1
    since, until = snapshots[from_day], snapshots[days]
    result = {
        "days": days,
        "readings": runtime.pipeline.counters["readings"],
        "alerts_raised": dict(sorted(home.raised.items())),
        "open_alerts": len(runtime.manager.active),
        "delivered": home.delivered,
        "platform_down_days": down_days,
        "outbox_rows": {ALERT: depth.get(ALERT, 0), SUMMARY: depth.get(SUMMARY, 0)},
        "learned_keys": len(learned._cache),
        "traced_mib": {str(d): mib(s[0]) for d, s in sorted(snapshots.items())},
        "rss_mib": {str(d): round(v, 1) for d, v in sorted(rss.items())},
        "growth_kib_per_day": round((until[0] - since[0]) * 1024 / max(1, days - from_day), 2),
        "growth_from_day": from_day,
        "top_growth": top_growth(until[1], since[1]),
        "run_s": round(elapsed, 1),
    }
    await runtime.close()
    return result


async def broken_devices_phase(recording_path: Path, days: int, storage: str) -> dict[str, Any]:
    devices, resident, start, _ = load_recording(recording_path)
    config = home_config(devices, resident, storage)
    home = Home(config, start)
    runtime = home.runtime
    before = traced()
    began = time.perf_counter()
    n = 0
    for day in range(days):
        midnight = start + day * DAY_S
        for k in range(int(DAY_S // 60)):  # bathroom and hallway set each other off
            at = midnight + k * 60.0 + 2.0
            await home.feed(Reading(at, "bathroom", {"motion": True}))
            await home.feed(Reading(at + 30.0, "hallway", {"motion": True}))
            # a bed dated up to 30 years ahead, once a minute
            ahead = ((day * 1440 + k) * 7919 % 10_957) * DAY_S
            bed = Reading(at + 40.0 + ahead, "bed", {"occupied": True, "hr": 61, "rr": 14})
            await runtime._commit(runtime._feed(bed))
            n += 3
        await home.advance(midnight + DAY_S)
    after = traced()
    summary = runtime.summary
    routine = runtime.pipeline.detectors[3]
    bathroom = routine.store.get(f"long_bathroom/{resident}") or {}  # type: ignore[attr-defined]
    result = {
        "days": days,
        "readings": n,
        "traced_mib": {"before": mib(before[0]), "after": mib(after[0])},
        "growth_kib_per_day": round((after[0] - before[0]) * 1024 / days, 1),
        "summary_days_held": len(summary._days),
        "bathroom_stays_kept": len(bathroom.get("duration_s", [])),
        "top_growth": top_growth(after[1], before[1]),
        "run_s": round(time.perf_counter() - began, 1),
    }
    await runtime.close()
    return result


# -- a wristband worn without a break ------------------------------------------------------------


def band_phase(hours: int) -> dict[str, Any]:
    from alerts.manager import AlertManager
    from gateway.detection.base import Home as DetectionHome
    from gateway.detectors import build_detectors
    from gateway.model import DeviceKind, Resident, Room
    from gateway.pipeline import Pipeline, advance_to

    clock = SimClock(start_wall=1_700_000_000.0)
    home = DetectionHome(
        [Resident("r1")],
        [
            Device("band", DeviceKind.WRISTBAND, "r1", Room.OTHER),
            Device("kitchen", DeviceKind.MOTION, "r1", Room.KITCHEN),
        ],
    )
    manager = AlertManager("gw-soak", clock)
    pipeline = Pipeline(home, build_detectors(clock, home), manager, clock)
    rng = np.random.default_rng(2)
    seconds = 600
    t = np.arange(seconds * 50) / 50.0
    g = np.array([0.0, 0.0, 1.0])
    stream = g + 0.3 * np.sin(2 * np.pi * t)[:, None] * rng.normal(size=3)
    stream += rng.normal(0, 0.02, size=stream.shape)
    stream[::3000] += 2.5 * g  # an impact-like spike every 60 s
    marks = sorted({1, max(1, hours // 2), hours})
    snapshots: dict[int, tuple[float, tracemalloc.Snapshot]] = {}
    wall = clock.wall()
    seq = 0
    began = time.perf_counter()
    for hour in range(1, hours + 1):
        for k in range(3600 // 5):
            i = (seq % stream.shape[0]) // 250 * 250
            acc = stream[i : i + 250]
            advance_to(pipeline, clock, wall)
            pipeline.feed(Reading(wall, "band", {"acc": acc, "fs": 50.0, "seq": seq}))
            if k % 120 == 0:
                pipeline.feed(Reading(wall, "kitchen", {"motion": True}))
            seq = (seq + 250) % 2**32
            wall += 5.0
        if hour in marks:
            snapshots[hour] = traced()
    first, last = snapshots[marks[0]], snapshots[hours]
    return {
        "hours": hours,
        "notifications": hours * 720,
        "alerts_raised": manager.counters["raised"],
        "traced_mib": {f"{h}h": mib(s[0]) for h, s in sorted(snapshots.items())},
        "growth_kib_per_hour": round((last[0] - first[0]) * 1024 / max(1, hours - marks[0]), 2),
        "top_growth": top_growth(last[1], first[1]),
        "run_s": round(time.perf_counter() - began, 1),
    }


# -- bad input ---------------------------------------------------------------------------------


def _messages(i: int, rng: random.Random) -> Iterable[tuple[str, bytes]]:
    u = f"{i:08x}{rng.getrandbits(32):08x}"
    yield f"eldergate/devices/dev-{u}", b'{"open": true}'
    yield "eldergate/devices/bed", f'{{"occupied": "x{u}"}}'.encode()
    yield "eldergate/devices/sos", f'{{"action": "sos", "t": "garbage-{u}"}}'.encode()
    yield f"zigbee2mqtt/Name {u}", b'{"contact": true}'
    yield "zigbee2mqtt/Button/action", f"act_{u}".encode()
    yield "zigbee2mqtt/Button", json.dumps({"action": f"x{u}", "last_seen": i}).encode()
    yield f"eldergate/bed/{u}", b'{"occupied": true}'
    yield f"other/{u}", b"{}"
    yield "eldergate/devices/sos", b"\xff\xfe" + u.encode()


async def bad_input_phase(rounds: int, storage: str) -> dict[str, Any]:
    clock = SimClock()
    codecs: list[TopicCodec] = [
        DeviceJsonCodec("eldergate/devices", {"bed", "sos"}),
        Zigbee2MqttCodec("zigbee2mqtt", {"Door": "door", "Button": "sos-z"}),
        BedProfileCodec("eldergate/bed", {"bed2": "bed2"}),
    ]
    local = LocalMqttDriver(LocalBrokerSettings(host="127.0.0.1"), codecs, clock)
    band = BleDeviceSpec("C0:FF:EE:00:00:01", "band", "wristband")
    ble = BleDriver(cast(Any, None), clock, [band])  # advertisements need no backend
    config = {
        "gateway": {"id": "gw-soak", "storage_path": storage},
        "residents": [{"id": "r1"}],
        "devices": [
            {
                "id": "sos",
                "kind": "button",
                "room": "lounge",
                "resident": "r1",
                "transport": "simulated",
            }
        ],
    }
    runtime = Runtime(parse_settings(config), clock, None, [])
    readings: list[Reading] = []

    async def sink(reading: Reading) -> None:
        if len(readings) < 1000:
            readings.append(reading)

    rng = random.Random(3)
    before = traced()
    began = time.perf_counter()
    for i in range(rounds):
        clock.advance(0.5)
        for topic, payload in _messages(i, rng):
            await local._handle(aiomqtt.Message(topic, payload, 1, False, 1, None), sink)
        for _ in range(3):  # phones nearby change their random addresses every ~15 min
            address = ":".join(f"{b:02X}" for b in rng.getrandbits(48).to_bytes(6, "big"))
            ble._on_advertisement(Advertisement(address, None, -70, {0x004C: b"\x02\x15"}, {}))
        alert_id = f"gw-soak-{rng.getrandbits(80):020x}"
        await runtime.handle_command(json.dumps({"command": "ack", "alert_id": alert_id}).encode())
        await runtime.handle_command(f'{{"command": "x{i}"}}'.encode())
        runtime._feed(Reading(clock.wall(), f"unknown-{i}", {"motion": True}))
    after = traced()
    result = {
        "rounds": rounds,
        "messages": local.counters["messages"],
        "rejected": local.counters["rejected"],
        "advertisements_unknown": ble.counters["advertisements_unknown"],
        "ble_unknown_addresses_held": len(ble._unknown_addresses),
        "commands_rejected": runtime.counters["commands_rejected"],
        "unknown_alert_commands": runtime.manager.counters["unknown_alert_commands"],
        "unknown_device_readings": runtime.pipeline.counters["unknown_device"],
        "traced_mib": {"before": mib(before[0]), "after": mib(after[0])},
        "growth_bytes_per_round": round((after[0] - before[0]) * MIB / rounds, 1),
        "top_growth": top_growth(after[1], before[1]),
        "run_s": round(time.perf_counter() - began, 1),
    }
    await runtime.close()
    return result


# -- the alert manager alone -------------------------------------------------------------------


def alert_cycles_phase(days: int) -> dict[str, Any]:
    clock = SimClock()
    manager = AlertManager("gw-soak", clock)
    rng = random.Random(4)
    maintenance = ["device_offline", "battery_low", "tamper", "gateway_degraded"]
    behaviour = ["inactivity", "not_up", "night_exit"]

    def event(type_: str, action: EventAction, severity: Severity, key: str = "") -> Event:
        resident = f"r{rng.randrange(3)}"
        return Event(type_, resident, clock.wall(), severity, action, device=key or None, key=key)

    def maintenance_event(action: EventAction) -> Event:
        return event(rng.choice(maintenance), action, Severity.WARNING, f"d{rng.randrange(20)}")

    def behaviour_event(action: EventAction) -> Event:
        return event(rng.choice(behaviour), action, Severity.HIGH)

    choices: list[tuple[float, Callable[[], list[AlertChange]]]] = [
        (0.1, lambda: manager.handle(event("sos", EventAction.RAISE, Severity.CRITICAL))),
        (0.2, lambda: fall()),
        (0.5, lambda: manager.handle(maintenance_event(EventAction.RAISE))),
        (0.8, lambda: manager.handle(maintenance_event(EventAction.CLEAR))),
        (0.9, lambda: manager.handle(behaviour_event(EventAction.RAISE))),
        (1.0, lambda: manager.handle(behaviour_event(EventAction.CLEAR))),
    ]

    def fall() -> list[AlertChange]:
        raised = event("fall", EventAction.RAISE, Severity.CRITICAL, f"band{rng.randrange(3)}")
        changes = manager.handle(raised)
        if rng.random() < 0.5:
            cancel = Event(
                "fall",
                raised.resident,
                raised.t,
                Severity.CRITICAL,
                EventAction.CANCEL,
                device=raised.device,
                key=raised.key,
            )
            changes += manager.handle(cancel)
        return changes

    marks = sorted({1, max(1, days // 3), days})
    snapshots: dict[int, tuple[float, tracemalloc.Snapshot]] = {}
    began = time.perf_counter()
    for day in range(1, days + 1):
        for _ in range(288):
            clock.advance(300.0)
            x = rng.random()
            next(action for limit, action in choices if x < limit)()
            if rng.random() < 0.02:
                manager.start_visit(f"r{rng.randrange(3)}")
            if rng.random() < 0.02:
                manager.end_visit(f"r{rng.randrange(3)}")
            manager.on_tick()
            for alert in list(manager.active.values()):
                if alert.state.value in ("open", "escalated") and rng.random() < 0.5:
                    manager.acknowledge(alert.id)
                elif clock.wall() - alert.t > 3600 and rng.random() < 0.3:
                    manager.resolve(alert.id)
        if day in marks:
            snapshots[day] = traced()
    base = marks[-2] if len(marks) > 1 else marks[0]
    first, last = snapshots[base], snapshots[days]
    sizes = {
        name: len(getattr(manager, name))
        for name in ("active", "_by_key", "_escalate_at", "_settle_at", "_cleared_at", "_held")
    }
    return {
        "days": days,
        **{k: manager.counters[k] for k in ("raised", "acknowledged", "resolved", "escalated")},
        "sizes_at_end": sizes,
        "traced_mib": {str(d): mib(s[0]) for d, s in sorted(snapshots.items())},
        "growth_kib_per_day": round((last[0] - first[0]) * 1024 / max(1, days - base), 3),
        "top_growth": top_growth(last[1], first[1]),
        "run_s": round(time.perf_counter() - began, 1),
    }


# -- the outbox with the platform down ----------------------------------------------------------


def platform_down_phase(days: int, storage: str) -> dict[str, Any]:
    clock = SimClock()
    outbox = Outbox(Path(storage) / "outbox.sqlite3", clock)
    residents = ["r1", "r2", "r3"]
    marks = sorted({1, max(1, days // 3), days})
    snapshots: dict[int, tuple[float, tracemalloc.Snapshot]] = {}
    rows: dict[int, dict[str, int]] = {}
    payload = json.dumps({"kind": "daily_summary", "rooms": {"kitchen": 12}} | {"x": "y" * 300})
    began = time.perf_counter()
    for day in range(1, days + 1):
        for hour in range(24):
            clock.advance(3600.0)
            if hour == 8:
                for resident in residents:
                    outbox.put(SUMMARY, resident, f"s/{resident}", payload.encode())
            if hour % 6 == 0:  # an alert change every 6 h, with the open alerts
                message = Message(ALERT, "r1", "a/r1", payload.encode())
                outbox.commit([message], {f"alert-{day % 5}": {"id": day}})
        if day in marks:
            snapshots[day] = traced()
            rows[day] = outbox.depth()
    base = marks[-2] if len(marks) > 1 else marks[0]
    first, last = snapshots[base], snapshots[days]
    result = {
        "days": days,
        "max_other_rows": outbox.max_other_rows,
        "max_other_age_h": outbox.max_other_age_s / 3600.0,
        "rows": {str(d): r for d, r in sorted(rows.items())},
        "queued_mono_entries": len(outbox._queued_mono),
        "dropped_other": outbox.counters["dropped_other"],
        "traced_mib": {str(d): mib(s[0]) for d, s in sorted(snapshots.items())},
        "growth_kib_per_day": round((last[0] - first[0]) * 1024 / max(1, days - base), 3),
        "top_growth": top_growth(last[1], first[1]),
        "run_s": round(time.perf_counter() - began, 1),
    }
    outbox.close()
    return result


# -- main ----------------------------------------------------------------------------------------


def busiest_recording(out: str) -> Path:
    from gateway.cli import main as cli

    with contextlib.redirect_stdout(sys.stderr):  # its own summary line: stdout is this one's
        cli(["import", "tihm", str(TIHM), "--out", out])
    return max(Path(out).glob("*.jsonl"), key=lambda p: p.stat().st_size)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        recording = args.recording or busiest_recording(str(Path(tmp) / "tihm"))
        result: dict[str, Any] = {
            "bench": "soak_memory",
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "recording": recording.stem,
        }
        started = time.perf_counter()
        tracemalloc.start(1)
        result["home"] = await home_phase(
            recording, args.days, args.platform_down_days, str(Path(tmp) / "home")
        )
        result["broken_devices"] = await broken_devices_phase(
            recording, args.broken_days, str(Path(tmp) / "broken")
        )
        result["band"] = band_phase(args.band_hours)
        result["bad_input"] = await bad_input_phase(args.bad, str(Path(tmp) / "bad"))
        result["alert_cycles"] = alert_cycles_phase(args.days)
        result["platform_down"] = platform_down_phase(args.days, tmp)
        tracemalloc.stop()
        result["run_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("recording", nargs="?", type=Path)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--platform-down-days", type=int, default=5)
    parser.add_argument("--broken-days", type=int, default=1)
    parser.add_argument("--band-hours", type=int, default=4)
    parser.add_argument("--bad", type=int, default=5_000, help="rounds of bad input")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the bad input logs by design; nothing to see here
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
