"""Homes with few sensors: not_up must be able to tell a person who got up from one who did
not, or stay out of the way."""

from __future__ import annotations

import datetime as dt

from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.routine import RoutineDetectors
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Resident, Room
from tests.detection.routine.routine_sim import local

FIRST = dt.date(2019, 5, 6)
MOVING = [[0.0, 0.0, 1.0], [0.3, 0.1, 1.4], [0.0, 0.2, 0.7], [0.5, 0.0, 1.2]]
BAND_HOURS = [*range(7, 12), *range(14, 22)]


class Home1:
    """A resident with the devices given, on the injected clock from 21:00 on FIRST."""

    def __init__(self, devices: list[Device]) -> None:
        self.home = Home([Resident("p1", settings={"tz": "Europe/London"})], devices)
        self.clock = SimClock(start_wall=local(FIRST, "21:00"), start_mono=5000.0)
        self.routine = RoutineDetectors(self.clock, self.home)
        self.events: list[Event] = []

    def feed(self, t: float, device: str, **values: object) -> None:
        while self.clock.wall() + 60 < t:
            self.clock.advance(60)
            self.events += self.routine.on_tick()
        self.clock.set_wall(t)
        reading = Reading(t, device, values)
        self.events += self.routine.on_reading(reading, self.home.devices[device])

    def band_day(self, day: dt.date, out_of_bed: str | None = "07:00") -> None:
        if out_of_bed is not None:
            self.feed(local(day, out_of_bed), "bed", occupied=False)
        for hour in BAND_HOURS:
            for minute in (5, 25, 45):
                self.feed(local(day, f"{hour:02d}:{minute:02d}"), "band", acc=MOVING, worn=True)

    def raised(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_ and e.action is EventAction.RAISE]


def _bed_and_band() -> Home1:
    return Home1(
        [
            Device("bed", DeviceKind.BED, "p1", Room.BEDROOM),
            Device("band", DeviceKind.WRISTBAND, "p1", Room.OTHER),
            Device("door", DeviceKind.DOOR, "p1", Room.ENTRANCE, role="exit"),
        ]
    )


def test_with_a_bed_and_a_wristband_being_out_of_bed_and_moving_is_being_up() -> None:
    """No sensor watches a room outside the bedroom: not_up alarmed on the first ordinary
    morning, the alert was never cleared, and every later morning went unwatched."""
    sim = _bed_and_band()
    sim.feed(local(FIRST, "22:00"), "bed", occupied=True)
    for i in range(1, 9):
        day = FIRST + dt.timedelta(days=i)
        sim.band_day(day)
        sim.feed(local(day, "22:00"), "bed", occupied=True)
    assert sim.raised("not_up") == []
    # ... and the morning the person stays in bed is found
    day = FIRST + dt.timedelta(days=9)
    sim.feed(local(day, "05:00"), "bed", occupied=False)  # to the bathroom and back
    sim.feed(local(day, "05:08"), "bed", occupied=True)
    sim.feed(local(day, "14:00"), "bed", occupied=True, movement=0)
    (alert,) = sim.raised("not_up")
    assert local(day, "06:30") <= alert.t <= local(day, "13:00")


def test_a_wristband_alone_cannot_say_up_so_not_up_stays_out_of_the_way() -> None:
    sim = Home1([Device("band", DeviceKind.WRISTBAND, "p1", Room.OTHER)])
    for i in range(1, 4):
        sim.band_day(FIRST + dt.timedelta(days=i), out_of_bed=None)
    assert sim.raised("not_up") == []


def test_a_wristband_alone_an_evening_collapse_is_still_found() -> None:
    """not_up is off where nothing can say "up", but inactivity still left every quiet from
    21:00 to 06:00 to it as sleep: still at 21:45 (a stroke in the armchair) was never
    alarmed, for days. Such a night is judged by inactivity, never before the ceiling while
    learning, so ordinary nights stay quiet."""
    still = [[0.0, 0.0, 1.0]] * 4
    for learned_days in (4, 22):
        sim = Home1([Device("band", DeviceKind.WRISTBAND, "p1", Room.OTHER)])
        for i in range(1, learned_days):
            sim.band_day(FIRST + dt.timedelta(days=i), out_of_bed=None)
        assert sim.raised("inactivity") == []
        day = FIRST + dt.timedelta(days=learned_days)
        sim.band_day(day, out_of_bed=None)  # last moving at 21:45
        sim.feed(local(day, "21:45") + 3 * 86400, "band", acc=still, worn=True)
        (alert,) = sim.raised("inactivity")
        assert alert.t - local(day, "21:45") <= 14 * 3600 + 60, learned_days


def test_a_wristband_and_an_exit_door_a_collapse_on_coming_home_is_found() -> None:
    """A wristband and the front door, no room sensor: out at 09:50 (the band out of range),
    home at 12:00, the band moving 30 s later, then still (a collapse in the chair). A door
    opened while away lets the person in, but only signs with a room counted as inside within
    the leave grace: the band's did not, the resident stayed 'away' and nothing watched."""
    sim = Home1(
        [
            Device("band", DeviceKind.WRISTBAND, "p1", Room.OTHER),
            Device("door", DeviceKind.DOOR, "p1", Room.ENTRANCE, role="exit"),
        ]
    )
    day = FIRST + dt.timedelta(days=1)
    for hhmm in ("07:05", "08:00", "09:00", "09:45"):
        sim.feed(local(day, hhmm), "band", acc=MOVING, worn=True)
    for at, is_open in ((local(day, "09:50"), True), (local(day, "09:50") + 5, False)):
        sim.feed(at, "door", open=is_open)  # out
    for at, is_open in ((local(day, "12:00"), True), (local(day, "12:00") + 5, False)):
        sim.feed(at, "door", open=is_open)  # home
    sim.feed(local(day, "12:00") + 30, "band", acc=MOVING, worn=True)  # ... and collapses
    sim.feed(local(day, "20:00"), "band", acc=None, worn=True)  # a still band: no sign
    (alert,) = sim.raised("inactivity")
    assert alert.t - local(day, "12:00") <= 6 * 3600
