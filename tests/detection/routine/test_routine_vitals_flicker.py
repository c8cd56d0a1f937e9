"""``vitals`` and a bed sensor whose occupancy flickers, through the real detectors and alert
manager on the SimClock: a sleeper with a heart rate out of range whose mattress reports "not
occupied" for one report every few minutes keeps one alert, never a resolved and a new raise per
flicker (each resolve told staff the heart rate was fine); getting up for real still clears it,
and a new episode after that is raised at once."""

from __future__ import annotations

import datetime as dt

from alerts.manager import AlertChange, AlertManager
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detectors import build_detectors
from gateway.model import Device, DeviceKind, Reading, Resident, Room
from gateway.pipeline import Pipeline, advance_to

T0 = dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC).timestamp()
MIN = 60.0


def pipeline() -> tuple[SimClock, Pipeline]:
    clock = SimClock(T0)
    home = Home([Resident("r1")], [Device("bed", DeviceKind.BED, "r1", Room.BEDROOM)])
    home.zone = dt.UTC
    return clock, Pipeline(home, build_detectors(clock, home), AlertManager("gw", clock), clock)


def minutes(clock: SimClock, p: Pipeline, n: int, hr: float, flicker_every: int = 0) -> list:
    """A bed report a minute; every ``flicker_every``-th says "not occupied"."""
    changes: list[AlertChange] = []
    for i in range(n):
        if flicker_every and i % flicker_every == flicker_every - 1:
            values: dict[str, object] = {"occupied": False}
        else:
            values = {"occupied": True, "hr": hr, "rr": 14}
        changes += p.feed(Reading(clock.wall(), "bed", values))
        changes += advance_to(p, clock, clock.wall() + MIN)
    return changes


def vitals(changes: list[AlertChange]) -> list[str]:
    """Raised and resolved (an unacknowledged HIGH alert also escalates every 15 min)."""
    return [
        c.change for c in changes if c.alert.type == "vitals" and c.change in ("raised", "resolved")
    ]


def test_a_flickering_bed_sensor_keeps_one_vitals_alert() -> None:
    clock, p = pipeline()
    changes = minutes(clock, p, 60, hr=36, flicker_every=10)
    assert vitals(changes) == ["raised"]  # before: raised/resolved 6 times in the hour
    assert len({c.alert.id for c in changes if c.alert.type == "vitals"}) == 1


def test_getting_up_clears_it_and_a_new_episode_raises_at_once() -> None:
    clock, p = pipeline()
    changes = minutes(clock, p, 8, hr=36)
    assert vitals(changes) == ["raised"]
    left = clock.wall()
    up = p.feed(Reading(left, "bed", {"occupied": False}))
    up += advance_to(p, clock, clock.wall() + 5 * MIN)  # up for 5 min, the sensor silent
    assert vitals(up) == ["resolved"]
    assert up[-1].alert.last_t == left  # resolved as of getting up
    back = minutes(clock, p, 8, hr=36)
    assert vitals(back) == ["raised"]  # as soon as a new window says so, as before


def test_back_in_bed_and_in_range_clears_after_a_whole_window() -> None:
    clock, p = pipeline()
    minutes(clock, p, 8, hr=36)
    p.feed(Reading(clock.wall(), "bed", {"occupied": False}))
    calm = minutes(clock, p, 10, hr=60)
    assert vitals(calm) == ["resolved"]
