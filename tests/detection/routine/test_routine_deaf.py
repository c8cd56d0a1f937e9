"""While the gateway cannot hear the home (a dead bridge, an unreachable broker: gateway health
marks it), the routine detectors learn nothing from the silence it leaves: an outage is not the
person's quiet, night or bathroom stay. Alerts raised over such a silence say so."""

from __future__ import annotations

import datetime as dt

from gateway.detection.base import DeafPeriods
from gateway.detection.routine.inactivity import InactivityDetector
from gateway.detection.routine.long_bathroom import LongBathroomDetector
from gateway.detection.routine.not_up import NotUpDetector
from tests.detection.routine.routine_sim import PLAIN_DAY, P, Sim, local

FIRST = dt.date(2019, 5, 6)


def test_deaf_periods_overlap_what_they_touch() -> None:
    deaf = DeafPeriods(keep=2)
    deaf.update(0.0, False)
    assert not deaf.overlaps(-10.0, 100.0)
    deaf.update(10.0, True)
    deaf.update(20.0, True)  # still the same period
    deaf.update(30.0, False)
    assert deaf.overlaps(5.0, 15.0) and deaf.overlaps(25.0, 40.0) and deaf.overlaps(0.0, 100.0)
    assert not deaf.overlaps(0.0, 10.0) and not deaf.overlaps(30.0, 40.0)
    deaf.update(100.0, True)  # open: overlaps everything after its start
    assert deaf.overlaps(500.0, 600.0) and not deaf.overlaps(40.0, 90.0)
    deaf.update(110.0, False)
    deaf.update(200.0, True)
    deaf.update(210.0, False)
    assert not deaf.overlaps(5.0, 15.0)  # only the last `keep` periods are kept


def live_deaf(sim: Sim, deaf: DeafPeriods, day: dt.date, start: str, end: str) -> None:
    """One plain day with the gateway deaf from ``start`` to ``end`` (local, no sign between)."""
    before = [s for s in PLAIN_DAY if s[0] < start and s[0] >= "04:00"]
    after = [s for s in PLAIN_DAY if s[0] >= end or s[0] < "04:00"]
    sim.live(day, before)
    sim.run_until(local(day, start))
    deaf.update(sim.clock.monotonic(), True)
    sim.run_until(local(day, end))
    deaf.update(sim.clock.monotonic(), False)
    sim.live(day, after)


def quiets_from(sim: Sim, hhmm: str) -> int:
    inactivity = next(d for d in sim.detector.detectors if isinstance(d, InactivityDetector))
    hours, minutes = map(int, hhmm.split(":"))
    return int((inactivity.history(P).start_min == hours * 60 + minutes).sum())


def test_a_silence_the_gateway_could_not_hear_is_not_learned() -> None:
    deaf = DeafPeriods()
    sim = Sim(local(FIRST, "06:00"), deaf=deaf)
    sim.live(FIRST)
    assert quiets_from(sim, "13:20") == 1  # the after-lunch quiet of a plain day is learned
    day2 = FIRST + dt.timedelta(days=1)
    live_deaf(sim, deaf, day2, "13:30", "13:50")  # the bridge was down after lunch
    assert quiets_from(sim, "13:20") == 1  # not learned on the deaf day
    assert quiets_from(sim, "15:10") == 2  # the rest of the day is

    long_bathroom = next(d for d in sim.detector.detectors if isinstance(d, LongBathroomDetector))
    not_up = next(d for d in sim.detector.detectors if isinstance(d, NotUpDetector))
    stays = long_bathroom.stays(P).duration_s.size
    wakes = dict(not_up.wakes(P))
    day3 = FIRST + dt.timedelta(days=2)
    live_deaf(sim, deaf, day3, "07:05", "07:08")  # during the morning bathroom visit
    learned = long_bathroom.stays(P).duration_s[stays:]
    assert sorted(learned) == [300.0, 600.0]  # the 21:30 and the night visit; not 07:02's 480 s
    assert set(not_up.wakes(P)) == set(wakes)  # deaf before the first sign of being up
    day4 = FIRST + dt.timedelta(days=3)
    sim.run_until(local(day4, "04:30"))  # the night after day 3: deaf from 04:30 to 05:00
    deaf.update(sim.clock.monotonic(), True)
    sim.run_until(local(day4, "05:00"))
    deaf.update(sim.clock.monotonic(), False)
    sim.live(day4, PLAIN_DAY)
    assert set(not_up.wakes(P)) == set(wakes)  # a wake-up after a deaf night is no wake-up
    sim.live(FIRST + dt.timedelta(days=4), PLAIN_DAY)
    assert len(set(not_up.wakes(P)) - set(wakes)) == 1  # an ordinary morning is learned


def test_a_silence_alert_over_a_deaf_span_says_so() -> None:
    deaf = DeafPeriods()
    sim = Sim(local(FIRST, "06:00"), deaf=deaf)
    sim.live(FIRST, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.run_until(local(FIRST, "10:30"))
    deaf.update(sim.clock.monotonic(), True)
    sim.run_until(local(FIRST, "11:00"))
    deaf.update(sim.clock.monotonic(), False)
    sim.run_until(local(FIRST, "20:00"))
    (alert,) = [e for e in sim.raised() if e.type in ("inactivity", "not_up")]
    assert alert.details.get("gateway_deaf") is True


def test_a_night_excursion_the_gateway_could_not_hear_is_not_learned() -> None:
    deaf = DeafPeriods()
    night = dt.date(2019, 5, 6)
    sim = Sim(local(night, "21:00"), bed=True, deaf=deaf)
    bed_exit = next(d for d in sim.detector.detectors if d.name == "bed_exit_no_return")
    for n, deaf_trip in enumerate([False, True, False]):
        day = night + dt.timedelta(days=n)
        after = day + dt.timedelta(days=1)
        sim.feed(local(day, "22:30"), "bed", occupied=True)
        sim.feed(local(after, "02:00"), "bed", occupied=False)
        if deaf_trip:  # the bridge was down in the middle of the trip
            sim.run_until(local(after, "02:10"))
            deaf.update(sim.clock.monotonic(), True)
            sim.run_until(local(after, "02:20"))
            deaf.update(sim.clock.monotonic(), False)
        sim.feed(local(after, "02:40"), "bed", occupied=True)
        sim.feed(local(after, "07:00"), "bed", occupied=False)
        sim.feed(local(after, "07:05"), "kitchen")
    assert bed_exit.durations(P) == [2400.0, 2400.0]  # type: ignore[attr-defined]
