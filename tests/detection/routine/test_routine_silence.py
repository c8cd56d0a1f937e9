"""inactivity and not_up on the injected clock: firing on a collapse, quiet on ordinary life."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from gateway.detection.routine import LearnedStore
from gateway.detection.routine.not_up import NotUpDetector
from gateway.model import Alert, EventAction, Resident
from tests.detection.routine.routine_sim import PLAIN_DAY, P, Sim, days_from, local

FIRST = dt.date(2019, 5, 6)  # a Monday


@pytest.fixture(scope="module")
def learned() -> Sim:
    """Three weeks of plain days: the routine is learned."""
    sim = Sim(local(FIRST, "06:00"))
    for day in days_from(FIRST, 21):
        sim.live(day)
    return sim


def test_ordinary_days_raise_nothing(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    for day in days_from(FIRST + dt.timedelta(days=21), 3):
        sim.live(day)
    assert [e.type for e in sim.raised()] == []


def test_collapse_in_the_morning_is_found_within_three_hours(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    collapse = local(day, "10:05")
    sim.run_until(collapse + 24 * 3600)
    silence = [e for e in sim.raised() if e.type in ("inactivity", "not_up")]
    assert len(silence) == 1  # one silence, one alert
    assert silence[0].type == "inactivity"
    assert 0 < silence[0].t - collapse <= 3 * 3600
    assert silence[0].resident == P


@pytest.mark.parametrize("after_up", ["kitchen", "bathroom"])
def test_a_collapse_after_getting_up_before_night_end_is_not_left_to_the_next_day(
    learned: Sim, after_up: str
) -> None:
    """Up at 05:15 (kitchen), down at 05:40: not_up had seen this morning's up-sign, and
    inactivity took any quiet before night_end (06:00) for sleep, so the silence was found
    27 h later. A bathroom visit is not being up: that quiet is still sleep."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.feed(local(day, "05:10"), "bedroom")
    sim.feed(local(day, "05:15"), after_up)
    sim.feed(local(day, "05:40"), "lounge" if after_up == "kitchen" else "bedroom")
    collapse = local(day, "05:40")
    sim.run_until(collapse + 24 * 3600)
    silence = [e for e in sim.raised() if e.type in ("inactivity", "not_up")]
    assert len(silence) == 1
    if after_up == "kitchen":
        assert silence[0].type == "inactivity" and silence[0].t - collapse <= 3 * 3600
    else:
        assert silence[0].type == "not_up"  # asleep again: the morning check finds it


def test_sign_of_life_clears_inactivity(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.run_until(local(day, "15:00"))
    assert len(sim.raised("inactivity")) == 1
    sim.feed(local(day, "15:01"), "lounge")
    assert len(sim.cleared("inactivity")) == 1


def test_nap_as_usual_is_quiet(learned: Sim) -> None:
    # The plain day holds a 70-minute quiet after lunch; a nap of that length is normal.
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    nap = [s for s in PLAIN_DAY if not ("13:20" < s[0] < "15:10")]
    sim.live(day, [*nap, ("14:45", "lounge")])
    assert sim.raised() == []


def test_away_from_home_is_not_inactivity(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "09:35"])
    sim.feed(local(day, "09:40"), "hallway")
    sim.feed(local(day, "09:41"), "front-door", open=True)
    sim.feed(local(day, "09:41") + 5, "front-door", open=False)
    sim.feed(local(day, "09:41") + 20, "hallway")  # walking out past the sensor
    sim.run_until(local(day, "17:00"))
    assert sim.raised() == []
    sim.feed(local(day, "17:00"), "front-door", open=True)
    sim.feed(local(day, "17:01"), "lounge")
    sim.live(day, [s for s in PLAIN_DAY if s[0] >= "17:10" or s[0] < "04:00"])
    assert sim.raised() == []


def test_visitor_leaving_does_not_make_the_resident_away(learned: Sim) -> None:
    """A visitor comes and goes by the front door; the resident stays in and later collapses:
    the later lounge sign proves the resident is home, so the silence is still caught."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.feed(local(day, "10:20"), "front-door", open=True)
    sim.feed(local(day, "10:21"), "hallway")
    sim.feed(local(day, "11:30"), "front-door", open=True)  # the visitor leaves
    sim.feed(local(day, "11:31"), "hallway")
    sim.feed(local(day, "11:36"), "lounge")  # the resident, still in
    sim.run_until(local(day, "20:00"))
    assert [e.type for e in sim.raised()] == ["inactivity"]


def test_sleeping_in_on_sunday_is_not_an_alarm(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    sunday = FIRST + dt.timedelta(days=20)  # the learned sim ends on Sunday night's day
    monday = sunday + dt.timedelta(days=1)
    late = [(h, d) for h, d in PLAIN_DAY if h >= "08:35" or h < "04:00"]
    sim.live(monday, [("08:25", "bedroom"), ("08:30", "bathroom"), *late])
    assert sim.raised() == []
    assert monday.weekday() == 0


def test_not_up_fires_when_the_person_stays_in_bed(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.run_until(local(day, "13:30"))
    not_up = sim.raised("not_up")
    assert len(not_up) == 1
    assert local(day, "08:00") <= not_up[0].t <= local(day, "10:30")
    assert sim.raised("inactivity") == []  # the same silence is not alerted twice
    sim.feed(local(day, "13:31"), "kitchen")
    assert len(sim.cleared("not_up")) == 1


def test_not_up_waits_while_the_person_moves_about_the_bedroom(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    not_up = next(d for d in sim.detector.detectors if isinstance(d, NotUpDetector))
    deadline = local(day, "00:00") + 60 * not_up.deadline_minute(P, day.toordinal())
    moving = deadline + 1800  # still stirring in the bedroom half an hour after the deadline
    stirs = range(int(local(day, "07:30")), int(moving) + 1, 1200)
    for when in stirs:
        sim.feed(float(when), "bedroom")
    sim.run_until(stirs[-1] + 5000.0)
    assert sim.raised() == []  # lying in, alive: not a silence yet
    sim.run_until(moving + 4 * 3600)
    silence = sim.raised()
    assert len(silence) == 1  # then silent: not up and not moving, one alert
    assert silence[0].t == pytest.approx(stirs[-1] + 5400.0, abs=60.0)


def test_no_morning_is_judged_before_the_resident_was_first_seen() -> None:
    sim = Sim(local(FIRST, "06:00") - 86400.0)  # the gateway runs from the day before ...
    sim.run_until(local(FIRST, "12:30"))
    sim.feed(local(FIRST, "12:30"), "bedroom")  # ... but the sensors are paired at lunchtime
    sim.run_until(local(FIRST, "14:00"))
    assert sim.raised() == []  # nobody knows whether the person was up this morning
    sim.feed(local(FIRST, "16:00"), "kitchen")
    sim.feed(local(FIRST, "19:00"), "lounge")
    sim.feed(local(FIRST, "21:45"), "bedroom")
    sim.run_until(local(FIRST + dt.timedelta(days=1), "14:00"))
    assert [e.type for e in sim.raised()] == ["not_up"]  # the next morning is watched


def test_while_learning_a_quiet_already_seen_there_and_then_is_not_alarmed() -> None:
    sim = Sim(local(FIRST, "06:00"))
    # A long afternoon nap in the lounge every day: 5 h, longer than the 4 h safe default.
    nap_day = [s for s in PLAIN_DAY if not ("13:20" < s[0] < "18:40")] + [("18:40", "kitchen")]
    for day in days_from(FIRST, 6):
        sim.live(day, nap_day)
    naps = sim.raised("inactivity")
    assert 1 <= len(naps) <= 2  # the first naps alarm (nothing known yet) ...
    before = len(naps)
    for day in days_from(FIRST + dt.timedelta(days=6), 4):
        sim.live(day, nap_day)
    assert len(sim.raised("inactivity")) == before  # ... then the person's own nap is known
    day = FIRST + dt.timedelta(days=10)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.run_until(local(day, "18:00"))
    late = sim.raised("inactivity")[before:]
    assert len(late) == 1  # a morning collapse is still found at the safe default
    assert late[0].t - local(day, "10:05") == pytest.approx(4 * 3600, abs=120)


def test_new_resident_gets_safe_defaults_without_night_alarms() -> None:
    sim = Sim(local(FIRST, "06:00"))
    for day in days_from(FIRST, 3):
        sim.live(day)
    assert sim.raised() == []
    day = FIRST + dt.timedelta(days=3)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.run_until(local(day, "18:00"))
    alert = sim.raised("inactivity")
    assert len(alert) == 1 and alert[0].t - local(day, "10:05") == pytest.approx(4 * 3600, abs=120)


def test_wall_clock_jump_neither_raises_nor_hides(learned: Sim) -> None:
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.clock.jump_wall(+6 * 3600)  # NTP corrects the clock by six hours during the quiet
    sim.run_until(sim.clock.wall() + 1800)
    assert sim.raised() == []  # 30 min of real quiet is not 6.5 h
    sim.run_until(sim.clock.wall() + 3 * 3600)
    assert [e.type for e in sim.raised()] == ["inactivity"]


def test_clock_from_1970_then_synced_makes_no_false_morning() -> None:
    sim = Sim(local(FIRST, "06:00"))
    for day in days_from(FIRST, 15):
        sim.live(day)
    day = FIRST + dt.timedelta(days=15)
    offset = sim.clock.wall() - 3600.0  # the Pi reboots at 05:00 and believes it is 1970
    sim.clock.jump_wall(-offset)
    sim.run_until(sim.clock.wall() + 2 * 3600)  # 07:00 real time: up as usual, in 1970
    sim.feed(sim.clock.wall(), "kitchen")
    sim.clock.jump_wall(offset)  # NTP syncs at 07:00
    sim.live(day, [s for s in PLAIN_DAY if s[0] >= "07:15"])
    assert sim.raised() == []


def test_daylight_saving_change_keeps_the_morning_local() -> None:
    first = dt.date(2019, 10, 1)
    sim = Sim(local(first, "06:00"))
    for day in days_from(first, 30):  # across 27 October (clocks go back)
        sim.live(day)
    assert sim.raised() == []
    day = dt.date(2019, 10, 31)
    sim.run_until(local(day, "13:30"))
    not_up = sim.raised("not_up")
    assert len(not_up) == 1  # and the deadline is still morning, local time
    hour = (
        dt.datetime.fromtimestamp(not_up[0].t, tz=dt.UTC)
        .astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
        .hour
    )
    assert 7 <= hour <= 10


def test_per_resident_setting_overrides_the_default() -> None:
    person = Resident(P, settings={"tz": "Europe/London", "inactivity": {"default_day_s": 7200}})
    sim = Sim(local(FIRST, "06:00"), resident=person)
    sim.live(FIRST, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.run_until(local(FIRST, "15:00"))
    alert = sim.raised("inactivity")
    assert len(alert) == 1 and alert[0].t - local(FIRST, "10:05") == pytest.approx(7200, abs=120)
    assert all(e.action is EventAction.RAISE for e in alert)


def _restart(sim: Sim, at: float) -> Sim:
    """The gateway restarts at ``at``: a new process with the same learned state on disk."""
    sim.run_until(at)
    return Sim(at, store=sim.detector.store)


def _collapse_at_ten(learned: Sim) -> tuple[Sim, dt.date]:
    """The learned home (a copy, with its own store); the resident collapses at 10:05."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    return sim, day


def test_a_collapse_before_a_restart_is_still_found(learned: Sim) -> None:
    """A restart (power blip, watchdog, update) during a silence: the new run had no picture
    of the resident until their next sign of life, which never came. Now the picture is
    taken back and the silence watched from the restart on."""
    sim, day = _collapse_at_ten(learned)
    again = _restart(sim, local(day, "10:30"))
    again.run_until(local(day, "18:00"))
    (alert,) = again.raised()
    assert alert.type == "inactivity" and local(day, "12:00") <= alert.t <= local(day, "14:30")
    # the quiet that spans the restart is not learned (nobody heard all of it)
    inactivity = again.detector.detectors[0]
    known = len(inactivity.history(P).duration_s)  # type: ignore[attr-defined]
    again.feed(local(day, "18:05"), "kitchen")
    again.feed(local(day, "18:40"), "lounge")  # a 35-min quiet after it is learned as usual
    assert len(inactivity.history(P).duration_s) == known + 1  # type: ignore[attr-defined]


def test_a_resident_out_at_a_restart_stays_out_and_a_stale_picture_is_not_taken(
    learned: Sim,
) -> None:
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "09:00"])
    sim.feed(local(day, "09:30"), "hallway")
    sim.feed(local(day, "09:31"), "front-door", open=True)  # out, nothing inside after
    again = _restart(sim, local(day, "10:30"))
    state = again.detector.presence.residents[P]  # taken back: out since the door
    assert state.away(again.clock.monotonic())
    again.run_until(local(day, "20:00"))
    assert again.raised() == []
    # a picture saved more than 12 h before the restart (off overnight) is not taken back
    late = _restart(again, local(day, "09:31") + 13 * 3600)
    assert late.detector.presence.residents == {}


def test_a_door_re_reporting_its_state_with_each_check_in_is_no_sign_of_life(
    learned: Sim,
) -> None:
    """Zigbee2MQTT re-sends a contact's cached state with every check-in and battery report:
    the untouched fridge door of a person who collapsed at 10:05 is no sign of life (and not
    "up" either), nor is the front door left open a new departure each time."""
    sim, day = _collapse_at_ten(learned)
    sim.feed(local(day, "10:06"), "front-door", open=True)  # left open, still inside
    sim.feed(local(day, "10:07"), "lounge")
    for minutes in range(50, 30 * 60, 50):
        at = local(day, "10:05") + minutes * 60
        sim.feed(at, "fridge", open=False, battery=97)
        sim.feed(at + 60, "front-door", open=True, battery=96)
    raised = [e for e in sim.raised() if e.t >= local(day, "10:05")]
    assert [e.type for e in raised][:1] == ["inactivity"]
    assert raised[0].t - local(day, "10:07") < 6 * 3600


def test_a_door_opened_after_its_state_was_re_reported_is_a_sign_again(learned: Sim) -> None:
    sim, day = _collapse_at_ten(learned)
    sim.feed(local(day, "10:30"), "fridge", open=False)  # a check-in: nothing new
    state = sim.detector.presence.residents[P]
    assert state.last_sign_mono == sim.clock.monotonic() - 25 * 60
    sim.feed(local(day, "10:31"), "fridge", open=True)  # used
    assert state.last_sign_mono == sim.clock.monotonic()


@pytest.mark.parametrize("boot_in_1970", [False, True])
def test_a_silence_alert_taken_over_from_before_a_restart_is_not_raised_again_by_not_up(
    learned: Sim, boot_in_1970: bool
) -> None:
    """Also when the Pi boots with its clock in 1970: the alert is taken over at start, the
    picture only once NTP has set the clock."""
    sim, day = _collapse_at_ten(learned)
    sim.run_until(local(day, "15:00"))
    (raised,) = sim.raised()
    assert raised.type == "inactivity"
    if boot_in_1970:
        again = Sim(BOOT_1970, store=sim.detector.store)
    else:
        again = _restart(sim, local(day, "15:00"))
    alert = Alert("id-1", raised.type, raised.severity, P, raised.t)
    assert again.detector.resume(alert)
    if boot_in_1970:
        again.run_until(BOOT_1970 + 120)
        _set_clock(again, local(day, "15:02"))  # NTP
    again.run_until(local(day + dt.timedelta(days=1), "14:00"))
    assert again.raised() == []  # the silence already has its alert: no not_up on top
    again.feed(local(day + dt.timedelta(days=1), "14:00"), "kitchen")  # found, up
    assert [(e.type, e.action) for e in again.events if e.t >= local(day, "15:00")] == [
        ("inactivity", EventAction.CLEAR)
    ]


BOOT_1970 = 60.0  # a Pi without a real-time clock boots with the wall clock at 1970


def _down_at_1005(learned: Sim) -> tuple[Sim, LearnedStore, dt.date]:
    """The learned home; the resident collapses at 10:05 and the picture is saved by 10:30."""
    sim, day = _collapse_at_ten(learned)
    sim.run_until(local(day, "10:30"))
    return sim, sim.detector.store, day


def _set_clock(sim: Sim, wall: float) -> None:
    """NTP sets the wall clock."""
    sim.clock.jump_wall(wall - sim.clock.wall())


def test_a_restart_before_the_clock_is_set_takes_the_picture_back_once_it_is(
    learned: Sim,
) -> None:
    """The picture was taken back only at start: booted in 1970, the restart took nothing back
    and never tried again once NTP had set the clock, so the collapse was never found."""
    _, store, day = _down_at_1005(learned)
    again = Sim(BOOT_1970, store=store)
    again.run_until(BOOT_1970 + 120)
    assert again.detector.presence.residents == {}
    _set_clock(again, local(day, "10:33"))
    again.run_until(local(day, "18:00"))
    (alert,) = again.raised()
    assert alert.type == "inactivity" and local(day, "12:00") <= alert.t <= local(day, "14:30")


def test_a_restart_before_the_clock_is_set_does_not_overwrite_the_saved_picture(
    learned: Sim,
) -> None:
    """Restarted again before NTP (a watchdog): the picture in 1970 times must not replace the
    one still to be taken back."""
    _, store, day = _down_at_1005(learned)
    again = Sim(BOOT_1970, store=store)
    again.run_until(BOOT_1970 + 120)
    again.detector.close()
    third = Sim(local(day, "10:40"), store=store)
    assert P in third.detector.presence.residents


def test_signs_before_the_clock_is_set_win_over_the_saved_picture(learned: Sim) -> None:
    """Out at 09:31 before the restart, back in the kitchen before NTP set the clock: this
    run's picture (home) is kept, the saved one (away) is not taken back over it."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "09:00"])
    sim.feed(local(day, "09:30"), "hallway")
    sim.feed(local(day, "09:31"), "front-door", open=True)
    sim.run_until(local(day, "10:30"))
    again = Sim(BOOT_1970, store=sim.detector.store)
    again.feed(BOOT_1970 + 60, "kitchen")
    _set_clock(again, local(day, "10:33"))
    again.run_until(local(day, "18:00"))
    assert not again.detector.presence.residents[P].away(again.clock.monotonic())
    assert [e.type for e in again.raised()] == ["inactivity"]


def test_a_boot_clock_a_little_behind_still_takes_the_picture_back(learned: Sim) -> None:
    """The clock restored from a file at boot was behind the saved picture: a negative age
    took nothing back. Now it is taken back with nothing dated after "now"."""
    _, store, day = _down_at_1005(learned)
    again = Sim(local(day, "10:01"), store=store)  # really 10:31, the clock says 10:01
    state = again.detector.presence.residents[P]
    now = again.clock.monotonic()
    assert state.last_up_mono is not None and state.last_up_mono <= now
    assert state.first_sign_mono is not None and state.first_sign_mono <= now
    again.run_until(local(day, "18:00"))
    assert [e.type for e in again.raised()] == ["inactivity"]


def test_a_fall_on_coming_home_is_found(learned: Sim) -> None:
    """Out at 09:41, home at 12:00: the front door, the hallway sensor 30 s later, then
    nothing (a fall with the shopping). The hallway sign fell within the leave grace of the
    door, which counts only signs from other rooms (the person may be walking out), so the
    resident stayed "away" and no detector watched the silence, for days. A door opened while
    the person was away lets them in: the hallway sign is them inside."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "09:35"])
    sim.feed(local(day, "09:40"), "hallway")
    sim.feed(local(day, "09:41"), "front-door")
    sim.feed(local(day, "09:41") + 20, "hallway")  # walking out past the sensor: still away
    sim.run_until(local(day, "12:00"))
    assert sim.detector.presence.residents[P].away(sim.clock.monotonic())
    sim.feed(local(day, "12:00"), "front-door")  # home again
    sim.feed(local(day, "12:00") + 30, "hallway")  # ... and falls
    sim.run_until(local(day, "12:00") + 24 * 3600)
    (alert,) = sim.raised()
    assert alert.type == "inactivity" and alert.t - local(day, "12:00") <= 6 * 3600


def test_up_early_then_a_restart_the_silence_is_still_watched(learned: Sim) -> None:
    """Up at 05:15 (kitchen), down at 05:25, the gateway restarts at 05:30: the new run did
    not know the person had been up, took the silence since the restart (before night_end)
    for sleep, and not_up had the morning's up-sign: found by the next day's check, 29 h on."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.feed(local(day, "05:10"), "bedroom")
    sim.feed(local(day, "05:15"), "kitchen")
    sim.feed(local(day, "05:25"), "lounge")
    again = _restart(sim, local(day, "05:30"))
    again.run_until(local(day, "05:30") + 24 * 3600)
    (alert,) = again.raised()
    assert alert.type == "inactivity" and alert.t - local(day, "05:25") <= 4 * 3600


def test_a_night_threshold_taken_before_the_clock_is_set_is_taken_again(learned: Sim) -> None:
    """Restarted at 22:00 with the clock in 1970 (no RTC, the router still booting), to bed
    before NTP: the quiet's threshold was taken 15 min in, on the 1970 clock (the 4 h
    daytime default), and kept once NTP had set it: a night's sleep alarmed at 02:16."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "21:40"])
    sim.run_until(local(day, "22:00"))
    again = Sim(BOOT_1970, store=sim.detector.store)
    again.feed(BOOT_1970 + 60, "bedroom")
    again.run_until(BOOT_1970 + 1200)
    _set_clock(again, local(day, "22:35"))
    morning = day + dt.timedelta(days=1)
    again.run_until(local(morning, "07:00"))
    again.live(morning, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "12:00"])
    assert again.raised() == []


def test_a_restart_as_the_resident_comes_home_still_lets_them_in(learned: Sim) -> None:
    """Out at 09:41, the front door at 12:00, the gateway restarts at 12:01 (the picture saved
    with the door), the hallway at 12:01:40, then nothing: the picture taken back did not know
    the door had let the person in, so the hallway sign within the leave grace was someone
    walking out and the resident stayed 'away'."""
    sim = copy.deepcopy(learned)
    day = FIRST + dt.timedelta(days=21)
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "09:35"])
    sim.feed(local(day, "09:40"), "hallway")
    sim.feed(local(day, "09:41"), "front-door")
    sim.feed(local(day, "12:00"), "front-door")  # home again
    again = _restart(sim, local(day, "12:01") + 10)
    again.feed(local(day, "12:01") + 40, "hallway")  # ... and falls
    again.run_until(local(day, "12:00") + 24 * 3600)
    (alert,) = again.raised()
    assert alert.type == "inactivity" and alert.t - local(day, "12:00") <= 6 * 3600
