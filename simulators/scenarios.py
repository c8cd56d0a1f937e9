"""Scenarios: a day in the life of a simulated resident, with incidents, as a stream of
normalised readings in time order. Transports (in-process, MQTT, BLE) carry them to a gateway.

A resident sleeps in bed, gets up, moves between rooms, opens the fridge, sometimes goes out,
and wears a wristband. The devices report like real ones whatever the person does: the bed and
the wristband every minute, Zigbee sensors and buttons check in hourly. Incidents are layered on
top by name:

* ``fall``          a fall at 14:02 (a wrist acceleration burst, then lying still, no motion)
* ``sos``           the emergency button pressed at 10:15
* ``night_wander``  out of bed and out of the front door at 02:30, back an hour later
* ``dead_battery``  the wristband's battery drains to nothing and it falls silent
* ``collapse``      all signs of life stop at 15:30 (a silent emergency)
* ``day``           no incident

Deterministic for a seed, so a scenario replays the same way in tests.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from gateway.model import Device, DeviceKind, Reading, Resident, Room

SCENARIOS = ("day", "fall", "sos", "night_wander", "dead_battery", "collapse")
WRIST_RATE_HZ = 50.0
ACC_BATCH = 25  # samples per wristband notification (0.5 s at 50 Hz)
STATUS_PERIOD_S = 60.0  # wristband status and bed reports, all day
CHECKIN_PERIOD_S = 3600.0  # Zigbee door, motion and button check-ins


@dataclass(frozen=True)
class SimResident:
    id: str
    incidents: tuple[str, ...] = ()
    seed: int = 0
    tz: str = "UTC"
    battery_start: float = 100.0  # wristband battery (%) at the start of the stream

    def device_id(self, name: str) -> str:
        return f"{self.id}-{name}"

    def devices(self) -> list[Device]:
        d = self.device_id
        rooms = [Room.BEDROOM, Room.BATHROOM, Room.KITCHEN, Room.LOUNGE, Room.HALLWAY]
        devices = [
            Device(d("front-door"), DeviceKind.DOOR, self.id, Room.ENTRANCE, "exit"),
            Device(d("fridge"), DeviceKind.DOOR, self.id, Room.KITCHEN, "fridge"),
            Device(d("bed"), DeviceKind.BED, self.id, Room.BEDROOM),
            Device(d("wristband"), DeviceKind.WRISTBAND, self.id, Room.OTHER),
            Device(d("sos"), DeviceKind.BUTTON, self.id, Room.BEDROOM),
        ]
        devices += [Device(d(f"motion-{r.value}"), DeviceKind.MOTION, self.id, r) for r in rooms]
        return devices

    def resident(self) -> Resident:
        return Resident(self.id, "23:00", "06:00", wander_risk="night_wander" in self.incidents)


@dataclass
class _Day:
    resident: SimResident
    midnight: float
    rng: random.Random
    out: list[Reading] = field(default_factory=list)

    def at(self, hhmm: str, jitter_min: float = 0.0) -> float:
        h, m = map(int, hhmm.split(":"))
        return self.midnight + h * 3600 + m * 60 + self.rng.uniform(-jitter_min, jitter_min) * 60

    def emit(self, t: float, name: str, **values: object) -> None:
        self.out.append(Reading(t, self.resident.device_id(name), dict(values)))

    def motion(self, t: float, room: str) -> None:
        self.emit(t, f"motion-{room}", motion=True)


def fall_signal(rng: random.Random, seconds_after: float = 20.0) -> np.ndarray:
    """A wrist acceleration trace of a fall (g, 50 Hz): walking, ~0.4 s of free fall, an
    impact of several g with the arm twisting, then lying still at a new orientation."""
    fs = WRIST_RATE_HZ
    walk = int(3 * fs)
    t = np.arange(walk) / fs
    walking = np.stack(
        [
            0.15 * np.sin(2 * np.pi * 1.8 * t),
            0.1 * np.cos(2 * np.pi * 1.8 * t),
            1.0 + 0.2 * np.sin(2 * np.pi * 3.6 * t),
        ],
        axis=1,
    )
    freefall = np.tile([0.05, 0.1, 0.25], (int(0.4 * fs), 1))
    impact_len = int(0.3 * fs)
    peak = rng.uniform(4.0, 6.0)
    shape = np.hanning(impact_len)[:, None]
    impact = shape * np.array([peak * 0.6, -peak * 0.5, peak * 0.6])
    settle = np.linspace([0.0, 0.0, 1.0], [0.95, 0.2, 0.1], int(0.6 * fs))
    lying = np.tile([0.97, 0.18, 0.08], (int(seconds_after * fs), 1))
    trace = np.concatenate([walking, freefall, impact, settle, lying])
    return trace + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 0.01, trace.shape)


def _wrist_batches(day: _Day, start: float, trace: np.ndarray) -> None:
    for i in range(0, len(trace), ACC_BATCH):
        chunk = trace[i : i + ACC_BATCH]
        day.emit(
            start + i / WRIST_RATE_HZ, "wristband", acc=chunk.round(4).tolist(), fs=WRIST_RATE_HZ
        )


def _routine(day: _Day, until: float) -> None:
    """Ordinary daytime life between waking and bedtime, stopping at ``until``."""
    rng = day.rng
    t = day.at("07:00", 20)
    if t >= until:
        return
    day.emit(t, "bed", occupied=False)
    day.motion(t + 20, "bedroom")
    day.motion(t + 90, "bathroom")
    bedtime = day.at("22:45", 20)
    went_out = rng.random() < 0.5
    out_from, out_to = day.at("10:30", 30), day.at("11:40", 20)
    t += 600
    while t < min(bedtime, until):
        if went_out and out_from <= t < out_to:
            day.emit(out_from, "front-door", open=True)
            day.emit(out_from + 20, "front-door", open=False)
            day.emit(out_to, "front-door", open=True)
            day.emit(out_to + 15, "front-door", open=False)
            day.motion(out_to + 40, "hallway")
            t = out_to + 60
            continue
        room = rng.choices(
            ["kitchen", "lounge", "bathroom", "hallway", "bedroom"], [3, 5, 1, 2, 1]
        )[0]
        day.motion(t, room)
        if room == "kitchen" and rng.random() < 0.4:
            day.emit(t + 30, "fridge", open=True)
            day.emit(t + 45, "fridge", open=False)
        if rng.random() < 0.15:
            day.emit(t + 5, "wristband", worn=True, hr=round(rng.gauss(74, 6)))
        t += rng.uniform(4, 25) * 60
    if bedtime < until:
        day.motion(bedtime, "bedroom")
        day.emit(bedtime + 120, "bed", occupied=True)


def _night(day: _Day, start: float, end: float, until: float) -> None:
    """In bed from ``start`` to ``end``, with one bathroom trip (the bed sensor's own periodic
    reports are added by :func:`_bed_reports`)."""
    rng = day.rng
    trip = start + (end - start) * rng.uniform(0.4, 0.6)
    if trip >= until:
        return
    day.emit(trip, "bed", occupied=False)
    day.motion(trip + 30, "hallway")
    day.motion(trip + 60, "bathroom")
    day.motion(trip + 400, "hallway")
    day.emit(trip + 480, "bed", occupied=True)


def _bed_reports(day: _Day, in_bed_at_midnight: bool) -> None:
    """The bed sensor reports every ``STATUS_PERIOD_S`` all day, like a real one: occupancy,
    and heart and breathing rate while someone lies on it. Occupancy follows the day's
    get-in / get-out events."""
    bed = day.resident.device_id("bed")
    changes = sorted((r.t, bool(r.values["occupied"])) for r in day.out if r.device == bed)
    occupied, i = in_bed_at_midnight, 0
    for t in np.arange(day.midnight + 15.0, day.midnight + 86400.0, STATUS_PERIOD_S):
        while i < len(changes) and changes[i][0] <= t:
            occupied = changes[i][1]
            i += 1
        if occupied:
            hr, rr = round(day.rng.gauss(58, 3)), round(day.rng.gauss(14, 1.5))
            day.emit(float(t), "bed", occupied=True, hr=hr, rr=rr)
        else:
            day.emit(float(t), "bed", occupied=False)


def _wristband_reports(day: _Day, battery: float, drain_per_h: float, since: float) -> float:
    """The wristband's status (worn, battery) every ``STATUS_PERIOD_S`` until its battery is
    empty, after which it says nothing more; returns the battery left at the end of the day."""
    band = day.resident.device_id("wristband")
    for t in np.arange(day.midnight + 30.0, day.midnight + 86400.0, STATUS_PERIOD_S):
        if t < since:
            continue
        if battery <= 0:
            day.out = [r for r in day.out if r.device != band or r.t < t]
            break
        day.emit(float(t), "wristband", worn=True, battery=round(battery))
        battery = max(0.0, battery - drain_per_h * STATUS_PERIOD_S / 3600.0)
    return battery


def _zigbee_checkins(day: _Day) -> None:
    """Door contacts, motion sensors and buttons check in about hourly (battery, link quality),
    as Zigbee end devices do, whether or not anyone moves."""
    for d in day.resident.devices():
        if d.kind in (DeviceKind.DOOR, DeviceKind.MOTION, DeviceKind.BUTTON):
            offset = day.rng.uniform(0, CHECKIN_PERIOD_S)
            for t in np.arange(day.midnight + offset, day.midnight + 86400.0, CHECKIN_PERIOD_S):
                day.out.append(Reading(float(t), d.id, {"battery": 90, "linkquality": 120}))


def day_readings(
    resident: SimResident,
    date: dt.date,
    battery: float,
    since: float = 0.0,
    collapsed_before: bool = False,
) -> tuple[list[Reading], float]:
    """One calendar day of readings for ``resident`` (sorted), and the battery left after it
    (the battery drains only from ``since`` on). ``collapsed_before``: a day after the
    collapse, with the devices still reporting and no sign of life at all."""
    zone = ZoneInfo(resident.tz)
    midnight = dt.datetime.combine(date, dt.time(), zone).timestamp()
    rng = random.Random(f"{resident.seed}-{resident.id}-{date.isoformat()}")
    day = _Day(resident, midnight, rng)
    stop = midnight + 86400.0
    if collapsed_before:
        stop = midnight
    elif "collapse" in resident.incidents:
        stop = day.at("15:30")
    _night(day, midnight, day.at("07:00", 20), stop)
    _routine(day, stop)
    incidents = set(resident.incidents)
    if "sos" in incidents and day.at("10:15") < stop:
        day.emit(day.at("10:15"), "sos", action="sos")
    if "fall" in incidents:
        impact_at = day.at("14:02")
        trace = fall_signal(rng)
        _wrist_batches(day, impact_at - 3.7, trace)
        day.out = [
            r
            for r in day.out
            if not (impact_at < r.t < impact_at + 3 * 3600)
            or r.device == resident.device_id("wristband")
        ]
    if "night_wander" in incidents:
        t = day.at("02:30")
        day.emit(t - 120, "bed", occupied=False)
        day.motion(t - 60, "hallway")
        day.emit(t, "front-door", open=True)
        day.emit(t + 30, "front-door", open=False)
        day.out = [r for r in day.out if not (t < r.t < t + 3600) or r.device.endswith("door")]
        # back after an hour, and to bed
        day.emit(t + 3600, "front-door", open=True)
        day.emit(t + 3615, "front-door", open=False)
        day.motion(t + 3640, "hallway")
        day.motion(t + 3700, "bedroom")
        day.emit(t + 3760, "bed", occupied=True)
    # Devices keep reporting whatever the person does (a collapsed resident's bed still says
    # "empty"); a wristband out of range (night wander) or with an empty battery goes quiet.
    _bed_reports(day, in_bed_at_midnight=not collapsed_before)
    _zigbee_checkins(day)
    battery = _wristband_reports(day, battery, 4.5 if "dead_battery" in incidents else 0.15, since)
    if "night_wander" in incidents:
        t = day.at("02:30")
        band = resident.device_id("wristband")
        day.out = [r for r in day.out if not (r.device == band and t < r.t < t + 3600)]
    return sorted(day.out, key=lambda r: r.t), battery


def resident_stream(resident: SimResident, start: float) -> Iterator[Reading]:
    """Endless readings for one resident from ``start`` (epoch seconds) on."""
    date = dt.datetime.fromtimestamp(start, ZoneInfo(resident.tz)).date()
    battery = resident.battery_start
    collapsed = False
    while True:
        readings, battery = day_readings(resident, date, battery, start, collapsed)
        yield from (r for r in readings if r.t >= start)
        date += dt.timedelta(days=1)
        collapsed = "collapse" in resident.incidents  # the home stays silent afterwards


def home_stream(residents: Iterable[SimResident], start: float) -> Iterator[Reading]:
    """All residents' readings merged in time order."""
    return heapq.merge(*(resident_stream(r, start) for r in residents), key=lambda r: r.t)
