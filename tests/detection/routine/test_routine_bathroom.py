"""long_bathroom learned per person and time of day, on the injected clock."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from gateway.detection.routine import RoutineSettings
from gateway.detection.routine.learning import MemoryLearnedStore
from gateway.detection.routine.long_bathroom import LongBathroomDetector, LongBathroomSettings
from gateway.detection.routine.maths import usual_stay_s
from tests.detection.routine.routine_sim import Sim, days_from, local, nights_ending_in_the_bathroom

FIRST = dt.date(2019, 5, 6)


def bath_day(sim: Sim, day: dt.date) -> None:
    """A long morning bath (07:30-08:20, the sensor firing throughout), short visits later."""
    sim.feed(local(day, "07:00"), "bedroom")
    for minute in range(30, 80, 10):
        sim.feed(local(day, f"{7 + minute // 60:02d}:{minute % 60:02d}"), "bathroom")
    sim.feed(local(day, "08:20"), "hallway")
    sim.feed(local(day, "08:25"), "kitchen")
    for hour in (11, 15, 19):
        sim.feed(local(day, f"{hour}:00"), "bathroom")
        sim.feed(local(day, f"{hour}:05"), "hallway")
        sim.feed(local(day, f"{hour}:10"), "lounge")
    sim.feed(local(day, "21:45"), "bedroom")


def learned_sim(days: int = 25) -> Sim:
    sim = Sim(local(FIRST, "06:00"))
    for day in days_from(FIRST, days):
        bath_day(sim, day)
    return sim


def test_usual_stay_follows_the_time_of_day() -> None:
    starts = np.array([450.0] * 20 + [900.0] * 20)
    stays = np.array([3000.0] * 20 + [300.0] * 20)
    assert usual_stay_s(starts, stays, 450.0, 90.0, 0.99) == 3000.0
    assert usual_stay_s(starts, stays, 900.0, 90.0, 0.99) == 300.0
    # Nothing near 03:00: all stays count.
    assert usual_stay_s(starts, stays, 180.0, 90.0, 0.99) == 3000.0
    assert usual_stay_s(np.zeros(0), np.zeros(0), 180.0, 90.0, 0.99) is None


def test_a_usual_long_morning_bath_is_quiet_but_the_same_stay_in_the_evening_is_not() -> None:
    sim = learned_sim()
    day = FIRST + dt.timedelta(days=25)
    # 90 minutes in the morning: usual stay 50 min + 60 min buffer = 110 min: quiet.
    sim.feed(local(day, "07:00"), "bedroom")
    for minute in range(30, 120, 10):
        sim.feed(local(day, f"{7 + minute // 60:02d}:{minute % 60:02d}"), "bathroom")
    sim.feed(local(day, "09:00"), "hallway")
    assert sim.raised("long_bathroom") == []
    # In the evening the usual stay is 5 min: alarm after 5 + 60 min.
    sim.feed(local(day, "19:00"), "bathroom")
    sim.run_until(local(day, "20:03"))
    assert sim.raised("long_bathroom") == []
    sim.run_until(local(day, "20:10"))
    alert = sim.raised("long_bathroom")
    assert len(alert) == 1 and alert[0].t == local(day, "20:05")


def test_no_alarm_where_bathroom_visits_routinely_end_unseen() -> None:
    # Every night the last sign is the bathroom at 22:30; the bedroom sensor never fires.
    sim = nights_ending_in_the_bathroom(FIRST)
    day = FIRST + dt.timedelta(days=25)
    sim.feed(local(day, "07:30"), "kitchen")
    learning = len(sim.raised("long_bathroom"))  # the 60-minute default while learning
    assert learning > 0
    day = FIRST + dt.timedelta(days=26)
    sim.feed(local(day, "07:30"), "kitchen")  # after last night's 9 h "stay"
    assert len(sim.raised("long_bathroom")) == learning
    # The same silence after a midday visit (usually 5 min) is unusual: alarm after 5 + 60 min.
    sim.feed(local(day, "12:00"), "bathroom")
    sim.run_until(local(day, "13:30"))
    assert [e.t for e in sim.raised("long_bathroom")[learning:]] == [local(day, "13:05")]


def test_a_stay_under_way_at_a_restart_is_watched_from_the_restart_and_not_learned() -> None:
    """Before, the restarted gateway knew nothing of a stay begun before it: someone fallen in
    the bathroom was left to inactivity's later threshold."""
    store = MemoryLearnedStore()
    sim = Sim(local(FIRST, "09:00"), store=store)
    sim.feed(local(FIRST, "09:30"), "kitchen")
    sim.feed(local(FIRST, "10:00"), "bathroom")
    sim.run_until(local(FIRST, "10:10"))  # the power fails
    again = Sim(local(FIRST, "10:15"), store=store)
    again.run_until(local(FIRST, "11:30"))
    (alert,) = again.raised("long_bathroom")
    assert alert.t == local(FIRST, "11:15")  # the 60 min default, from the restart
    again.feed(local(FIRST, "11:40"), "hallway")
    assert len(again.cleared("long_bathroom")) == 1
    (bathroom,) = [d for d in again.detector.detectors if isinstance(d, LongBathroomDetector)]
    assert bathroom.stays("p1").duration_s.size == 0


def test_learned_stays_survive_a_restart_and_an_old_store_is_ignored() -> None:
    store = MemoryLearnedStore()
    sim = Sim(local(FIRST, "06:00"), store=store)
    for day in days_from(FIRST, 25):
        bath_day(sim, day)
    restarted = Sim(local(FIRST + dt.timedelta(days=25), "06:00"), store=store)
    day = FIRST + dt.timedelta(days=25)
    restarted.feed(local(day, "07:30"), "bathroom")
    restarted.run_until(local(day, "09:00"))  # 90 min: the learned 110 min, not the 60 min default
    assert restarted.raised("long_bathroom") == []

    old = MemoryLearnedStore()
    old.put("long_bathroom/p1", [120.0, 300.0])  # the earlier format: durations only
    fresh = Sim(local(day, "06:00"), store=old)
    fresh.feed(local(day, "07:30"), "bathroom")
    fresh.run_until(local(day, "08:35"))
    assert [e.t for e in fresh.raised("long_bathroom")] == [local(day, "08:30")]


def test_a_bathroom_and_hallway_sensor_setting_each_other_off_keep_a_bounded_history() -> None:
    """Two sensors that set each other off make a bathroom "stay" every few seconds: each was
    kept for 60 days (half a million: ~60 MB) and copied whole into the learned state at
    every new one. The newest ``max_history`` are kept (10,000 by default; the busiest TIHM
    home has ~4,500 real stays in 60 days)."""
    store = MemoryLearnedStore()
    bounded = dataclasses.replace(LongBathroomSettings(), max_history=1_000)
    settings = RoutineSettings(long_bathroom=bounded)
    sim = Sim(local(FIRST, "06:00"), store=store, settings=settings)
    start = local(FIRST, "10:00")
    for n in range(1_500):  # a stay every 10 s
        sim.feed(start + 10.0 * n, "bathroom")
        sim.feed(start + 10.0 * n + 5.0, "hallway")
    stays = store.get("long_bathroom/p1")
    assert len(stays["duration_s"]) == len(stays["day"]) == len(stays["start_min"]) == 1_000
    assert stays["start_min"][-1] == round(10 * 60 + 1_499 * 10 / 60, 2)  # the newest kept
    assert LongBathroomSettings().max_history == 10_000
