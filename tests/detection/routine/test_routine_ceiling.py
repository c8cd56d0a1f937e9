"""``inactivity``'s ceilings: where nights are left to ``not_up`` (room sensors), no quiet
judged by ``inactivity`` waits longer than ``day_ceiling_s`` (10 h), however long this
person's quiets have been; where nothing can say "up" (a wristband alone) the nights are
judged by ``inactivity`` too, and only ``ceiling_s`` (14 h) bounds them."""

from __future__ import annotations

import datetime as dt

from gateway.detection.routine import RoutineSettings
from gateway.detection.routine.inactivity import InactivitySettings
from gateway.model import Device, DeviceKind, Room
from tests.detection.routine.routine_sim import Sim, days_from, local
from tests.detection.routine.test_routine_few_sensors import MOVING, Home1

FIRST = dt.date(2019, 5, 6)
HOUR = 3600.0
# A home where the kitchen sensor sees the person in the morning and the lounge in the
# afternoon, and nothing in between: quiets of 8.5 to 9.5 h every day (as in TIHM's sparsest
# homes), whose learned tail lies beyond 10 h.
SPARSE_ENDS = ("17:05", "17:35", "16:35", "17:20", "16:50")


def _sparse_day(evening: str) -> list[tuple[str, str]]:
    return [
        ("07:00", "bedroom"),
        ("07:05", "bathroom"),
        ("07:40", "kitchen"),
        ("08:05", "kitchen"),
        (evening, "lounge"),
        ("21:40", "bathroom"),
        ("21:45", "bedroom"),
    ]


def _silent_from_0805(settings: RoutineSettings | None) -> float:
    """How long after the last sign at 08:05 inactivity alarms, on the 29th sparse day."""
    sim = Sim(local(FIRST, "06:00"), settings=settings)
    for i, day in enumerate(days_from(FIRST, 28)):
        sim.live(day, _sparse_day(SPARSE_ENDS[i % len(SPARSE_ENDS)]))
    learned = local(FIRST + dt.timedelta(days=15), "00:00")
    assert [a for a in sim.raised("inactivity") if a.t > learned] == []  # ordinary days
    before = len(sim.raised("inactivity"))
    day = FIRST + dt.timedelta(days=28)
    sim.live(day, _sparse_day("17:05")[:4])
    sim.run_until(local(day, "23:59"))
    (alarm,) = sim.raised("inactivity")[before:]
    return alarm.t - local(day, "08:05")


def test_a_daytime_silence_is_raised_by_the_day_ceiling_however_long_the_usual_quiet() -> None:
    assert 9.5 * HOUR < _silent_from_0805(None) <= 10 * HOUR + 60
    # what the person's own quiets alone give: later than the ceiling
    fourteen = RoutineSettings(inactivity=InactivitySettings(day_ceiling_s=14 * HOUR))
    assert _silent_from_0805(fourteen) > 10.25 * HOUR


def test_a_wristband_taken_off_in_the_evening_for_the_night_raises_nothing() -> None:
    """A wristband alone: the band comes off at 19:45 and goes on again at 07:05 (an 11 h 20
    quiet starting before the evening hand-over). The day ceiling would raise it every
    morning; the 14 h ceiling lets the learned nights through, and a band still off at 09:45
    the next day (14 h) is raised."""
    sim = Home1([Device("band", DeviceKind.WRISTBAND, "p1", Room.OTHER)])
    for day in days_from(FIRST + dt.timedelta(days=1), 24):
        for hour in range(7, 20):
            for minute in (5, 25, 45):
                sim.feed(local(day, f"{hour:02d}:{minute:02d}"), "band", acc=MOVING, worn=True)
    last = local(FIRST + dt.timedelta(days=24), "19:45")
    learned = [a for a in sim.raised("inactivity") if a.t > local(FIRST, "00:00") + 15 * 86400]
    assert learned == []
    sim.feed(last + 15 * HOUR, "band", acc=MOVING, worn=True)
    (alarm,) = [a for a in sim.raised("inactivity") if a.t > last]
    assert 11.5 * HOUR < alarm.t - last <= 14 * HOUR + 60
