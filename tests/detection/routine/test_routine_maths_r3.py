"""Pure maths of round 3: expected signs during a quiet, early bedtimes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gateway.detection.routine import RoutineSettings
from gateway.detection.routine.inactivity import InactivitySettings
from gateway.detection.routine.maths import early_bedtime, expected_signs
from tests.detection.routine.routine_sim import PLAIN_DAY, Sim, days_from, local


def test_expected_signs_integrates_the_hourly_rate_across_midnight() -> None:
    rate = np.zeros(24)
    rate[23] = 10.0
    rate[0] = 20.0
    # 22:30 for 2 h: none at 22, a full hour at 23, half an hour at 00.
    assert expected_signs(rate, 22 * 60 + 30, 2 * 3600.0) == pytest.approx(10.0 + 10.0)
    assert expected_signs(rate, 12 * 60, 3600.0) == 0.0


def test_early_bedtime_is_a_low_quantile_of_sleep_starts_and_their_rooms() -> None:
    starts = np.array([21 * 60.0 + i for i in range(0, 100, 10)] + [14 * 60.0, 23 * 60.0])
    durations = np.array([8 * 3600.0] * 10 + [5 * 3600.0, 600.0])
    rooms = np.array([1] * 8 + [0, 0] + [0, 1], dtype=np.int64)
    found = early_bedtime(starts, durations, rooms, 17 * 60.0, 6 * 60.0, 4 * 3600.0, 0.1, 7, 0.25)
    assert found is not None
    bedtime, chosen = found
    assert 21 * 60 <= bedtime <= 21 * 60 + 10  # the afternoon quiet is outside the window
    assert chosen == frozenset({1})  # 2 of 10 nights from room 0: under the 25 % share
    assert (
        early_bedtime(starts, durations, rooms, 17 * 60.0, 6 * 60.0, 4 * 3600.0, 0.1, 11, 0.25)
        is None
    )


def _first_inactivity_after_outage(gap_expected_signs: float | None) -> float:
    settings = RoutineSettings(inactivity=InactivitySettings(gap_expected_signs=gap_expected_signs))
    first = dt.date(2019, 5, 6)
    sim = Sim(local(first, "06:00"), settings=settings)
    outage = first + dt.timedelta(days=16)
    for day in days_from(first, 24):
        if day == outage:  # every sensor silent 08:05-19:10 (a hub outage)
            sim.live(day, [(t, d) for t, d in PLAIN_DAY if not "08:00" < t < "19:10"])
        else:
            sim.live(day, PLAIN_DAY)
    test_day = first + dt.timedelta(days=24)
    sim.live(test_day, [(t, d) for t, d in PLAIN_DAY if "07:00" <= t <= "08:05"])
    sim.run_until(local(test_day, "23:00"))
    alerts = [e.t for e in sim.raised("inactivity") if e.t > local(test_day, "08:05")]
    assert alerts, "the collapse after 08:05 must be found"
    return alerts[0] - local(test_day, "08:05")


def test_an_outage_is_not_learned_as_a_normal_quiet() -> None:
    learned = _first_inactivity_after_outage(None)
    censored = _first_inactivity_after_outage(20.0)
    # Learned, the 11 h outage stretches the tail of quiets that start near 08:00.
    assert censored < learned - 3600
