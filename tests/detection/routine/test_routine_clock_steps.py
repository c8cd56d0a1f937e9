"""The routine detectors when the wall clock steps while monotonic time runs on: a Pi without a
real-time clock boots on fake-hwclock's time (saved hourly, so hours or days old after a power
cut) and NTP sets it later, once the router or the internet is back."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from gateway.model import Resident, Severity
from tests.detection.routine.routine_sim import (
    PLAIN_DAY,
    P,
    Sim,
    days_from,
    local,
    nights_ending_in_the_bathroom,
)

FIRST = dt.date(2019, 5, 6)  # a Monday
DAY = FIRST + dt.timedelta(days=21)


@pytest.fixture(scope="module")
def learned() -> Sim:
    """Three weeks of plain days: the routine is learned."""
    sim = Sim(local(FIRST, "06:00"))
    for day in days_from(FIRST, 21):
        sim.live(day)
    return sim


def _set_clock(sim: Sim, wall: float) -> None:
    """NTP sets the wall clock."""
    sim.clock.jump_wall(wall - sim.clock.wall())


def _restart_behind(learned: Sim, cut: float) -> Sim:
    """The power fails at ``cut`` and comes back hours later; the Pi boots on the time
    fake-hwclock saved, ``cut``: a new run on the learned state, its clock still at ``cut``."""
    sim = copy.deepcopy(learned)
    sim.run_until(cut)
    return Sim(cut, store=sim.detector.store)


def test_a_collapse_before_ntp_sets_a_clock_hours_behind_is_found(learned: Sim) -> None:
    """Power cut at 03:30, back at 10:00 with the clock at 03:30 (no internet yet). The
    resident is up and about, then collapses in the lounge at 10:05 (03:35 on the clock).
    Its threshold was taken at 03:50 by the clock: a quiet that began at night, sleep, left
    to not_up; and not_up saw them up this morning. NTP at 10:30: the threshold was kept, and
    the collapse was never reported."""
    again = _restart_behind(learned, local(DAY, "03:30"))
    again.feed(local(DAY, "03:31"), "kitchen")  # 10:01
    again.feed(local(DAY, "03:35"), "lounge")  # 10:05, then nothing
    again.run_until(local(DAY, "04:00"))
    _set_clock(again, local(DAY, "10:30"))
    again.run_until(local(DAY, "23:00"))
    collapse = local(DAY, "10:05")
    silence = [e for e in again.raised() if e.type in ("inactivity", "not_up")]
    assert [e.type for e in silence] == ["inactivity"]
    assert 0 < silence[0].t - collapse <= 5 * 3600


def test_going_to_bed_before_ntp_sets_a_clock_hours_behind_is_no_daytime_silence(
    learned: Sim,
) -> None:
    """Power cut at 12:00, back at 22:00 with the clock at 12:00. The resident goes to bed at
    22:10 (12:10 on the clock); NTP at 22:40. The threshold taken at 12:25 by the clock, a
    daytime one, was kept: the night's sleep alarmed staff at about 02:00."""
    sim = copy.deepcopy(learned)
    sim.live(DAY, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "12:00"])
    again = _restart_behind(sim, local(DAY, "12:00"))
    again.feed(local(DAY, "12:01"), "hallway")  # 22:01
    again.feed(local(DAY, "12:05"), "bathroom")
    again.feed(local(DAY, "12:10"), "bedroom")  # 22:10: to bed
    again.run_until(local(DAY, "12:40"))
    _set_clock(again, local(DAY, "22:40"))
    tomorrow = DAY + dt.timedelta(days=1)
    again.run_until(local(tomorrow, "07:00"))
    assert again.raised() == []
    again.live(tomorrow, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "12:00"])
    assert again.raised() == []


def test_a_fall_in_the_bathroom_before_ntp_sets_a_clock_hours_behind_is_found() -> None:
    """Every night the last sign is the bathroom at 22:30 (the bedroom sensor never fires), so
    a stay begun then gets no long_bathroom alarm. Power back at 10:00 with the clock at
    22:25: the resident goes to the bathroom at 10:05 (22:30 on the clock) and falls there.
    NTP at 10:20: the 'no alarm' taken at 22:30 was kept for the stay."""
    sim = nights_ending_in_the_bathroom(FIRST)
    day = FIRST + dt.timedelta(days=25)
    sim.run_until(local(day, "07:00"))  # the power fails
    again = Sim(local(FIRST + dt.timedelta(days=24), "22:25"), store=sim.detector.store)
    again.feed(local(FIRST + dt.timedelta(days=24), "22:26"), "kitchen")  # 10:01
    again.feed(local(FIRST + dt.timedelta(days=24), "22:30"), "bathroom")  # 10:05
    again.run_until(local(FIRST + dt.timedelta(days=24), "22:45"))
    _set_clock(again, local(day, "10:20"))
    again.run_until(local(day, "12:00"))
    (alert,) = again.raised("long_bathroom")
    assert alert.t - local(day, "10:05") <= 90 * 60


def test_a_morning_judged_on_a_clock_a_day_ahead_is_judged_again_once_it_comes(
    learned: Sim,
) -> None:
    """A router that serves its own unset clock over NTP puts the gateway a day ahead at
    22:00, then the real time comes back at 23:00. Read a day ahead, tomorrow's morning was
    judged at 22:00 (the person was up today), and when tomorrow came not_up took it as done:
    a resident who did not get up was reported the morning after."""
    sim = copy.deepcopy(learned)
    sim.live(DAY, [s for s in PLAIN_DAY if s[0] >= "07:00"])  # in bed at 21:45
    tomorrow = DAY + dt.timedelta(days=1)
    sim.run_until(local(DAY, "22:00"))
    sim.clock.jump_wall(24 * 3600)
    sim.run_until(local(tomorrow, "23:00"))
    sim.clock.jump_wall(-24 * 3600)
    sim.run_until(local(tomorrow, "14:00"))  # no sign of life all morning
    assert [(e.type, e.t < local(tomorrow, "13:01")) for e in sim.raised()] == [("not_up", True)]


def _night_home(clock_at: float, wander_risk: bool) -> Sim:
    person = Resident(P, wander_risk=wander_risk, settings={"tz": "Europe/London"})
    return Sim(clock_at, resident=person)


def test_a_wanderer_out_at_night_before_ntp_sets_a_clock_hours_behind_is_reported() -> None:
    """Power back at 02:00 with the clock at 14:00 the day before. A resident at risk of
    wandering walks out at 02:05 (14:05 on the clock: the day, not watched); NTP at 02:30.
    Nothing was ever raised: the door was judged once, by the clock it opened on."""
    sim = _night_home(local(FIRST, "14:00"), wander_risk=True)
    sim.feed(local(FIRST, "14:03"), "hallway")
    sim.feed(local(FIRST, "14:05"), "front-door")
    sim.run_until(local(FIRST, "14:30"))
    assert sim.raised() == []
    night = FIRST + dt.timedelta(days=1)
    _set_clock(sim, local(night, "02:30"))
    sim.run_until(local(night, "02:32"))
    (alert,) = sim.raised("night_exit")
    assert alert.severity is Severity.CRITICAL and local(night, "02:04") <= alert.t
    sim.feed(local(night, "02:50"), "front-door")
    sim.feed(local(night, "02:51"), "lounge")  # brought back
    assert len(sim.cleared("night_exit")) == 1


def test_going_out_in_the_day_before_ntp_sets_a_clock_hours_behind_is_no_night_exit() -> None:
    """Power back at 15:00 with the clock at 02:00: out shopping at 15:05 (02:05 on the
    clock), NTP at 15:10; the exit watched as a night one was raised at 15:20."""
    sim = _night_home(local(FIRST, "02:00"), wander_risk=False)
    sim.feed(local(FIRST, "02:03"), "hallway")
    sim.feed(local(FIRST, "02:05"), "front-door")
    sim.run_until(local(FIRST, "02:10"))
    _set_clock(sim, local(FIRST, "15:10"))
    sim.run_until(local(FIRST, "18:00"))
    assert sim.raised() == []


def test_up_early_before_ntp_sets_a_clock_hours_behind_then_a_collapse_is_found(
    learned: Sim,
) -> None:
    """Power back at 05:00 with the clock at 23:00 the evening before. Up at 05:15 (kitchen,
    23:15 on the clock), NTP at 05:30, down in the hallway at 05:40. A quiet that starts
    before night_end is sleep unless the person was up since 04:00, which was judged by the
    up-sign's time on the clock then: 23:15, so sleep; and not_up had seen them up."""
    again = _restart_behind(learned, local(DAY - dt.timedelta(days=1), "23:00"))
    again.feed(local(DAY - dt.timedelta(days=1), "23:10"), "bedroom")  # 05:10
    again.feed(local(DAY - dt.timedelta(days=1), "23:15"), "kitchen")  # 05:15
    again.run_until(local(DAY - dt.timedelta(days=1), "23:30"))
    _set_clock(again, local(DAY, "05:30"))
    again.feed(local(DAY, "05:40"), "hallway")
    again.run_until(local(DAY, "23:00"))
    silence = [e for e in again.raised() if e.type in ("inactivity", "not_up")]
    assert [e.type for e in silence] == ["inactivity"]
    assert silence[0].t - local(DAY, "05:40") <= 3 * 3600


def test_out_of_bed_at_night_before_ntp_sets_a_clock_hours_behind_is_watched() -> None:
    """Power back at 01:00 with the clock at 13:00 the day before. Out of bed at 02:00 (14:00
    on the clock: the day, no excursion), down in the hallway; NTP at 02:10. Getting out of
    bed was judged once, by the clock it happened on: no bed_exit_no_return, the fall left to
    the morning's check."""
    sim = Sim(local(FIRST, "13:00"), bed=True)
    sim.feed(local(FIRST, "13:05"), "bed", occupied=True)  # 01:05
    sim.feed(local(FIRST, "14:00"), "bed", occupied=False)  # 02:00
    sim.feed(local(FIRST, "14:02"), "hallway")
    sim.run_until(local(FIRST, "14:10"))
    night = FIRST + dt.timedelta(days=1)
    _set_clock(sim, local(night, "02:10"))
    sim.run_until(local(night, "04:00"))
    (alert,) = sim.raised("bed_exit_no_return")
    assert alert.t - local(night, "02:00") == pytest.approx(45 * 60, abs=60)


def test_out_of_bed_in_the_day_before_ntp_sets_a_clock_hours_behind_is_no_bed_exit() -> None:
    """Power back at 13:00 with the clock at 01:00: up from a nap at 14:00 (02:00 on the
    clock), NTP at 14:10; the excursion ends with the night it was read in."""
    sim = Sim(local(FIRST, "01:00"), bed=True)
    sim.feed(local(FIRST, "01:05"), "bed", occupied=True)
    sim.feed(local(FIRST, "02:00"), "bed", occupied=False)
    sim.feed(local(FIRST, "02:02"), "kitchen")
    sim.run_until(local(FIRST, "02:10"))
    _set_clock(sim, local(FIRST, "14:10"))
    sim.run_until(local(FIRST, "18:00"))
    assert sim.raised("bed_exit_no_return") == []
