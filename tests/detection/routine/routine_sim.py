"""A simulated home for routine-detector tests: devices, a SimClock on Europe/London local
time, and a loop with the pipeline's semantics (tick at deadlines and at least every 60 s)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.clock import SimClock
from gateway.detection.base import DeafPeriods, Home
from gateway.detection.routine import RoutineDetectors, RoutineSettings
from gateway.detection.routine.learning import LearnedStore
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Resident, Room

LONDON = ZoneInfo("Europe/London")
P = "p1"
DOOR_OPEN_S = 5.0  # a door opened is closed again this much later


def local(day: dt.date, hhmm: str) -> float:
    hours, minutes = hhmm.split(":")
    naive = dt.datetime(day.year, day.month, day.day, int(hours), int(minutes))
    return naive.replace(tzinfo=LONDON).timestamp()


def devices(bed: bool = False) -> list[Device]:
    found = [
        Device("front-door", DeviceKind.DOOR, P, Room.ENTRANCE, role="exit"),
        Device("fridge", DeviceKind.DOOR, P, Room.KITCHEN, role="fridge"),
        Device("kitchen", DeviceKind.MOTION, P, Room.KITCHEN),
        Device("hallway", DeviceKind.MOTION, P, Room.HALLWAY),
        Device("lounge", DeviceKind.MOTION, P, Room.LOUNGE),
        Device("bedroom", DeviceKind.MOTION, P, Room.BEDROOM),
        Device("bathroom", DeviceKind.MOTION, P, Room.BATHROOM),
    ]
    if bed:
        found.append(Device("bed", DeviceKind.BED, P, Room.BEDROOM))
    return found


# A plain day: up at 07:00, about the house, a quiet hour after lunch, in bed by 22:00.
PLAIN_DAY = (
    [("07:00", "bedroom"), ("07:02", "bathroom"), ("07:10", "hallway"), ("07:15", "kitchen")]
    + [
        (f"{h:02d}:{m:02d}", room)
        for h in range(8, 13)
        for m, room in ((5, "kitchen"), (35, "lounge"))
    ]
    + [("13:00", "kitchen"), ("13:10", "fridge"), ("13:20", "lounge"), ("14:30", "lounge")]
    + [
        (f"{h:02d}:{m:02d}", room)
        for h in range(15, 21)
        for m, room in ((10, "lounge"), (40, "kitchen"))
    ]
    + [("21:30", "bathroom"), ("21:40", "hallway"), ("21:45", "bedroom"), ("03:00", "bathroom")]
    + [("03:05", "bedroom")]
)


class Sim:
    def __init__(
        self,
        start: float,
        *,
        resident: Resident | None = None,
        settings: RoutineSettings | None = None,
        store: LearnedStore | None = None,
        bed: bool = False,
        deaf: DeafPeriods | None = None,
    ) -> None:
        self.clock = SimClock(start_wall=start, start_mono=5000.0)
        person = resident or Resident(P, settings={"tz": "Europe/London"})
        self.home = Home([person], devices(bed))
        self.detector = RoutineDetectors(self.clock, self.home, settings, store, deaf)
        self.events: list[Event] = []
        self.last_tick = self.clock.monotonic()

    def run_until(self, wall: float) -> None:
        while True:
            deadline = self.detector.next_deadline()
            due = self.last_tick + 60.0
            if deadline is not None and deadline > self.last_tick + 1e-6:
                due = min(due, deadline)
            due_wall = self.clock.wall() + (due - self.clock.monotonic())
            if due_wall > wall:
                break
            self.clock.set_wall(due_wall)
            self.last_tick = self.clock.monotonic()
            self.events.extend(self.detector.on_tick())
        self.clock.set_wall(wall)

    def feed(self, wall: float, device: str, **values: object) -> None:
        self.run_until(wall)
        if not values and self.home.devices[device].kind is DeviceKind.DOOR:
            self.feed(wall, device, open=True)  # a door used: opened, closed again
            self.feed(wall + DOOR_OPEN_S, device, open=False)
            return
        reading = Reading(wall, device, values or {"motion": True})
        self.events.extend(self.detector.on_reading(reading, self.home.devices[device]))

    def live(self, day: dt.date, schedule: Iterable[tuple[str, str]] = PLAIN_DAY) -> None:
        """One day of the schedule; times before 04:00 belong to the night after ``day``."""
        for hhmm, device in schedule:
            when = day + dt.timedelta(days=1) if hhmm < "04:00" else day
            self.feed(local(when, hhmm), device)

    def raised(self, kind: str | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.action is EventAction.RAISE and (kind is None or e.type == kind)
        ]

    def cleared(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.action is EventAction.CLEAR and e.type == kind]


def days_from(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


def nights_ending_in_the_bathroom(first: dt.date, days: int = 25) -> Sim:
    """``days`` days whose last sign each night is the bathroom at 22:30 (the bedroom sensor
    never fires), so bathroom stays begun then routinely end unseen."""
    sim = Sim(local(first, "06:00"))
    for day in days_from(first, days):
        sim.feed(local(day, "07:30"), "kitchen")
        sim.feed(local(day, "12:00"), "bathroom")
        sim.feed(local(day, "12:05"), "lounge")
        sim.feed(local(day, "22:30"), "bathroom")
    return sim


def write_recording(path: Path, first: dt.date, days: int, quiet_every: int = 5) -> Path:
    """A recording (contract 2) of ``days`` plain days from ``first``; every ``quiet_every``-th
    day of the month the afternoon is quiet from 13:20 to 17:00 (something to learn and to
    alarm on)."""
    lines = [json.dumps({"type": "resident", "id": P, "tz": "Europe/London"})]
    for d in devices():
        record = {"type": "device", "id": d.id, "resident": P, "kind": d.kind.value}
        record["room"] = d.room.value
        if d.role:
            record["role"] = d.role
        lines.append(json.dumps(record))
    for day in days_from(first, days):
        for hhmm, device in PLAIN_DAY:
            if day.day % quiet_every == 0 and "13:20" < hhmm < "17:00":
                continue
            when = day + dt.timedelta(days=1) if hhmm < "04:00" else day
            t = local(when, hhmm)
            if device in ("front-door", "fridge"):
                for at, is_open in ((t, True), (t + DOOR_OPEN_S, False)):
                    lines.append(json.dumps(_reading(at, device, open=is_open)))
            else:
                lines.append(json.dumps(_reading(t, device, motion=True)))
    path.write_text("\n".join(lines) + "\n")
    return path


def _reading(t: float, device: str, **values: object) -> dict[str, object]:
    return {"type": "reading", "t": t, "device": device, **values}
