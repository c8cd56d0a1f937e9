"""``inactivity`` conditioned on how busy the person was before a quiet began: maths, learned
state, and on the SimClock (a collapse mid-activity vs the person's usual wind-down nap)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import numpy as np
import pytest

from gateway.detection.routine import RoutineSettings
from gateway.detection.routine import inactivity as inactivity_module
from gateway.detection.routine.inactivity import MAX_RECENT_SIGNS, InactivityDetector, QuietHistory
from gateway.detection.routine.maths import quiet_survival_threshold_s
from tests.detection.routine.routine_sim import PLAIN_DAY, Sim, days_from, local

FIRST = dt.date(2019, 5, 6)
HOUR = 3600.0


def _mixed_history() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Quiets starting around 14:00: short ones after a busy spell (activity log(1+12)), long
    naps after a calm one (log(1+2))."""
    rng = np.random.default_rng(7)
    starts = 840.0 + rng.normal(0.0, 15.0, size=80)
    busy = np.arange(80) % 2 == 0
    durations = np.where(busy, rng.uniform(900, 2400, 80), rng.uniform(2.5 * HOUR, 3 * HOUR, 80))
    activities = np.full(80, np.log1p(2.0))
    activities[busy] = np.log1p(12.0)
    rooms = np.zeros(80, dtype=np.int64)
    return starts, durations, rooms, activities


def test_a_busy_start_is_judged_against_busy_starts_and_a_calm_one_against_calm_ones() -> None:
    starts, durations, rooms, activities = _mixed_history()
    args = (starts, durations, rooms, 840.0, 0, 45.0, 5.0, 0.01, 0.5)
    plain = quiet_survival_threshold_s(*args)
    busy = quiet_survival_threshold_s(*args, activities, float(np.log1p(12.0)), 0.5)
    calm = quiet_survival_threshold_s(*args, activities, float(np.log1p(2.0)), 0.5)
    assert plain is not None and busy is not None and calm is not None
    assert busy < 1.5 * HOUR < 2.5 * HOUR < plain
    assert calm > 3 * HOUR


def test_unknown_or_switched_off_activity_changes_nothing() -> None:
    starts, durations, rooms, _ = _mixed_history()
    args = (starts, durations, rooms, 840.0, 0, 45.0, 5.0, 0.01, 0.5)
    plain = quiet_survival_threshold_s(*args)
    unknown = np.full(starts.size, np.nan)
    assert quiet_survival_threshold_s(*args, unknown, 1.0, 0.5) == pytest.approx(plain)
    assert quiet_survival_threshold_s(*args, unknown, None, 0.5) == pytest.approx(plain)
    assert quiet_survival_threshold_s(*args, unknown, 1.0, None) == pytest.approx(plain)


def test_activity_is_kept_in_the_learned_state_and_old_state_still_loads() -> None:
    history = QuietHistory()
    history.add(600.0, 1800.0, 0, 737000, 2.5)
    history.add(610.0, 1900.0, 0, 737000)  # unknown activity
    again = QuietHistory(history.to_json())
    assert again.activity[0] == pytest.approx(2.5) and np.isnan(again.activity[1])
    old = history.to_json()
    del old["activity"]
    assert np.isnan(QuietHistory(old).activity).all() and QuietHistory(old).day.size == 2


def _busy_afternoon(seed: int = 0) -> list[tuple[str, str]]:
    """Busy from 12:00 to 16:00: bursts of a sign a minute for 20 min, then 20-38 min quiet."""
    burst: list[tuple[str, str]] = []
    minute = 12 * 60
    gap = seed
    while minute < 16 * 60:
        for k in range(20):
            burst.append((f"{(minute + k) // 60:02d}:{(minute + k) % 60:02d}", "kitchen"))
        minute += 20 + 20 + 3 * (gap % 7)
        gap += 1
    day = [s for s in PLAIN_DAY if not ("12:00" <= s[0] < "16:00")] + burst
    return sorted(day, key=lambda s: (s[0] < "04:00", s[0]))


def _calm_afternoon(nap_end: str) -> list[tuple[str, str]]:
    """A calm late morning (one sign in two hours), then a long nap in the lounge from 13:45."""
    day = [s for s in PLAIN_DAY if not ("10:00" <= s[0] < "17:00")]
    day += [("10:30", "lounge"), ("13:45", "lounge"), (nap_end, "lounge"), ("17:10", "kitchen")]
    return sorted(day, key=lambda s: (s[0] < "04:00", s[0]))


NAP_ENDS = ("16:20", "16:40", "16:30", "16:50", "16:35")


def _learned(settings: RoutineSettings) -> Sim:
    sim = Sim(local(FIRST, "06:00"), settings=settings)
    for i, day in enumerate(days_from(FIRST, 30)):
        sim.live(day, _busy_afternoon(i) if i % 2 else _calm_afternoon(NAP_ENDS[i // 2 % 5]))
    return sim


OFF = RoutineSettings(
    inactivity=dataclasses.replace(RoutineSettings().inactivity, activity_bandwidth=None)
)


@pytest.fixture(scope="module")
def sims() -> dict[str, Sim]:
    return {"on": _learned(RoutineSettings()), "off": _learned(OFF)}


def _collapse_mid_burst(sim: Sim) -> float:
    """Collapse at the end of a burst at 14:05 on a busy afternoon: seconds until the alarm."""
    sim = copy.deepcopy(sim)
    day = FIRST + dt.timedelta(days=30)
    before = len(sim.raised("inactivity"))
    sim.live(day, [s for s in _busy_afternoon() if "04:00" <= s[0] <= "14:05"])
    sim.run_until(local(day, "23:00"))
    alarms = sim.raised("inactivity")[before:]
    assert len(alarms) == 1
    return alarms[0].t - local(day, "14:05")


def test_a_collapse_mid_activity_is_found_sooner_than_by_time_of_day_alone(
    sims: dict[str, Sim],
) -> None:
    on, off = _collapse_mid_burst(sims["on"]), _collapse_mid_burst(sims["off"])
    assert on <= 2.5 * HOUR and on < off - HOUR


def test_the_usual_nap_after_a_calm_spell_is_no_alarm(sims: dict[str, Sim]) -> None:
    sim = copy.deepcopy(sims["on"])
    day = FIRST + dt.timedelta(days=30)
    before = len(sim.raised())
    sim.live(day, _calm_afternoon("16:55"))  # a little longer than any nap seen
    sim.run_until(local(day, "20:00"))
    assert sim.raised()[before:] == []


def test_activity_survives_a_restart_of_the_detector(sims: dict[str, Sim]) -> None:
    sim = sims["on"]
    detector = next(d for d in sim.detector.detectors if isinstance(d, InactivityDetector))
    reloaded = QuietHistory(detector.history("p1").to_json())
    assert np.isfinite(reloaded.activity).sum() >= 100
    assert reloaded.activity.max() > np.log1p(40.0) > np.log1p(3.0) > reloaded.activity.min()


def test_a_resident_can_switch_the_activity_kernel_off_but_not_mistype_it() -> None:
    from gateway.detection.routine.inactivity import InactivitySettings
    from gateway.detection.routine.shell import resident_settings
    from gateway.model import Resident

    base = InactivitySettings()
    off = Resident("p1", settings={"inactivity": {"activity_bandwidth": None}})
    assert resident_settings(base, off, "inactivity").activity_bandwidth is None
    narrow = Resident("p1", settings={"inactivity": {"activity_bandwidth": 1}})
    assert resident_settings(base, narrow, "inactivity").activity_bandwidth == 1.0
    mistyped = {"activity_bandwidth": "wide", "buffer_s": None}
    wrong = Resident("p1", settings={"inactivity": mistyped})
    kept = resident_settings(base, wrong, "inactivity")
    assert kept.activity_bandwidth == base.activity_bandwidth and kept.buffer_s == base.buffer_s


def test_a_mistyped_time_of_day_for_one_resident_is_ignored_not_fatal_for_all() -> None:
    """``default_deadline = "10.30"`` for one resident made not_up raise on every tick, and
    the tick's loop over residents lost everyone's alerts: a person who never got up was not
    found (config check names it too, tests/test_settings.py)."""
    import datetime as dt

    from gateway.clock import SimClock
    from gateway.detection.base import Home
    from gateway.detection.routine import RoutineDetectors
    from gateway.detection.routine.not_up import NotUpSettings
    from gateway.detection.routine.shell import resident_settings
    from gateway.model import Device, DeviceKind, EventAction, Reading, Resident, Room
    from tests.detection.routine.routine_sim import local

    typo = {"not_up": {"default_deadline": "10.30", "earliest_deadline": "07:00"}}
    kept = resident_settings(NotUpSettings(), Resident("p2", settings=typo), "not_up")
    assert (kept.default_deadline, kept.earliest_deadline) == ("10:30", "07:00")

    london = {"tz": "Europe/London"}
    people = [Resident("p1", settings=london), Resident("p2", settings={**london, **typo})]
    devices = [
        Device(f"{p}-{room.value}", DeviceKind.MOTION, p, room)
        for p in ("p1", "p2")
        for room in (Room.BEDROOM, Room.KITCHEN)
    ]
    home = Home(people, devices)
    day = dt.date(2019, 5, 6)
    clock = SimClock(start_wall=local(day, "22:00"), start_mono=5000.0)
    routine = RoutineDetectors(clock, home)
    events = []
    for p in ("p1", "p2"):
        device = home.devices[f"{p}-bedroom"]
        events += routine.on_reading(Reading(clock.wall(), device.id, {"motion": True}), device)
    while clock.wall() < local(day + dt.timedelta(days=1), "14:00"):
        clock.advance(60)
        events += routine.on_tick()
    raised = {(e.type, e.resident) for e in events if e.action is EventAction.RAISE}
    assert ("not_up", "p1") in raised


def test_a_device_flooding_readings_keeps_the_activity_window_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every sign of life in the 2 h activity window was kept, one entry per reading: a device
    sending as fast as the gateway takes readings in (~1,500 a second on a Pi) held hundreds of
    MB for as long as it went on. The count saturates at MAX_RECENT_SIGNS (50,000: ~7 signs a
    second over the window, above any real device's rate; 1,000 here to keep the test short)."""
    assert MAX_RECENT_SIGNS == 50_000
    monkeypatch.setattr(inactivity_module, "MAX_RECENT_SIGNS", 1_000)
    sim = Sim(local(dt.date(2019, 5, 6), "09:00"))
    inactivity = next(d for d in sim.detector.detectors if isinstance(d, InactivityDetector))
    start = sim.clock.wall()
    for n in range(1_500):  # 20 readings a second
        sim.feed(start + n * 0.05, "kitchen")
    assert len(inactivity._recent["p1"]) == 1_000
    last = sim.clock.monotonic()
    assert inactivity.activity_at("p1", last) == pytest.approx(np.log1p(1_000))
