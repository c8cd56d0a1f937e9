"""The survival model of quiet durations behind ``inactivity``: maths, and on the SimClock."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pytest

from gateway.detection.routine.maths import quiet_survival_threshold_s, weighted_tail_duration
from tests.detection.routine.routine_sim import PLAIN_DAY, Sim, days_from, local

FIRST = dt.date(2019, 5, 6)
HOUR = 3600.0


def test_tail_lies_beyond_the_longest_seen_when_rarer_than_the_sample() -> None:
    rng = np.random.default_rng(3)
    durations = 1800.0 + rng.exponential(1800.0, size=60)
    threshold = weighted_tail_duration(durations, np.ones(60), 0.005, 0.5)
    assert threshold is not None and threshold > durations.max()


def test_tail_grows_with_the_spread_of_long_quiets() -> None:
    rng = np.random.default_rng(4)
    base = rng.exponential(1.0, size=200)
    ones = np.ones(200)
    tight = weighted_tail_duration(1800.0 + 600.0 * base, ones, 0.01, 0.5)
    wide = weighted_tail_duration(1800.0 + 2400.0 * base, ones, 0.01, 0.5)
    assert tight is not None and wide is not None and wide > tight


def test_a_tail_within_the_body_reads_the_empirical_survival() -> None:
    durations = np.arange(1.0, 101.0) * 60.0
    threshold = weighted_tail_duration(durations, np.ones(100), 0.2, 0.9)
    assert threshold == pytest.approx(80 * 60.0, abs=60.0)


def test_tied_durations_count_as_one_point_of_the_survival() -> None:
    # Minute-resolution clocks tie many quiets at the median: S(u) must be P(D > u), the same
    # quiets the mean excess is taken over (not a point inside the tie).
    durations = np.array([1800.0] * 60 + [2400.0] * 36 + [3 * HOUR] * 4)
    threshold = weighted_tail_duration(durations, np.ones(100), 0.01, 0.5)
    mean_excess = (36 * 600.0 + 4 * (3 * HOUR - 1800.0)) / 40
    assert threshold == pytest.approx(1800.0 + mean_excess * np.log(0.40 / 0.01))


def test_nothing_known_gives_none_and_zero_weights_are_ignored() -> None:
    assert weighted_tail_duration(np.array([]), np.array([]), 0.01, 0.5) is None
    assert weighted_tail_duration(np.array([600.0]), np.array([0.0]), 0.01, 0.5) is None
    only_far = weighted_tail_duration(np.array([600.0, 9e4]), np.array([1.0, 0.0]), 0.01, 0.5)
    assert only_far == 600.0


def _history() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Short kitchen quiets around 10:00, long bedroom quiets (naps) around 14:00."""
    rng = np.random.default_rng(5)
    morning = 600.0 + rng.normal(0.0, 20.0, size=40)
    afternoon = 840.0 + rng.normal(0.0, 20.0, size=40)
    starts = np.concatenate([morning, afternoon])
    durations = np.concatenate([rng.uniform(900, 2400, 40), rng.uniform(2 * HOUR, 3 * HOUR, 40)])
    rooms = np.array([0] * 40 + [1] * 40, dtype=np.int64)
    return starts, durations, rooms


def test_threshold_follows_the_start_time_of_day() -> None:
    starts, durations, rooms = _history()
    morning = quiet_survival_threshold_s(starts, durations, rooms, 600.0, 0, 45.0, 5.0, 0.01, 0.5)
    nap_time = quiet_survival_threshold_s(starts, durations, rooms, 840.0, 1, 45.0, 5.0, 0.01, 0.5)
    assert morning is not None and nap_time is not None
    assert morning < 1.5 * HOUR < 3 * HOUR < nap_time
    night = quiet_survival_threshold_s(starts, durations, rooms, 0.0, 0, 45.0, 5.0, 0.01, 0.5)
    assert night is None


def test_a_room_with_few_quiets_borrows_from_the_others() -> None:
    starts, durations, rooms = _history()
    # One short kitchen quiet at nap time: the kitchen's own sample is tiny, the prior dominates.
    starts = np.append(starts, 840.0)
    durations = np.append(durations, 1000.0)
    rooms = np.append(rooms, np.int64(0))
    kitchen = quiet_survival_threshold_s(starts, durations, rooms, 840.0, 0, 45.0, 5.0, 0.01, 0.5)
    alone = quiet_survival_threshold_s(starts, durations, rooms, 840.0, 0, 45.0, 0.0, 0.01, 0.5)
    bedroom = quiet_survival_threshold_s(starts, durations, rooms, 840.0, 1, 45.0, 5.0, 0.01, 0.5)
    assert kitchen is not None and alone is not None and bedroom is not None
    assert alone == pytest.approx(1000.0)  # no prior: one quiet decides
    assert alone < kitchen <= bedroom


# A day with a bedroom nap after lunch whose length varies from day to day (2 to 3 h).
def _nap_day(nap_end: str) -> list[tuple[str, str]]:
    return [s for s in PLAIN_DAY if not ("14:00" < s[0] < "17:30")] + [
        ("14:00", "bedroom"),
        (nap_end, "bedroom"),
        ("17:20", "kitchen"),
    ]


NAP_ENDS = ("16:00", "16:30", "17:00", "16:15", "16:45", "16:05", "16:50")


@pytest.fixture(scope="module")
def napper() -> Sim:
    sim = Sim(local(FIRST, "06:00"))
    for i, day in enumerate(days_from(FIRST, 28)):
        sim.live(day, _nap_day(NAP_ENDS[i % len(NAP_ENDS)]))
    return sim


def test_the_persons_own_long_nap_is_not_an_alarm(napper: Sim) -> None:
    sim = copy.deepcopy(napper)
    day = FIRST + dt.timedelta(days=28)
    before = len(sim.raised())
    sim.live(day, _nap_day("17:05"))  # a little longer than any nap seen
    assert sim.raised()[before:] == []


def test_a_quiet_from_the_bedroom_at_nap_time_is_alarmed_before_the_ceiling(napper: Sim) -> None:
    sim = copy.deepcopy(napper)
    day = FIRST + dt.timedelta(days=28)
    before = len(sim.raised())
    sim.live(day, [s for s in _nap_day("16:00") if s[0] <= "14:00"])
    sim.run_until(local(day, "23:59"))
    alarms = sim.raised("inactivity")[before:]
    assert len(alarms) == 1
    waited = alarms[0].t - local(day, "14:00")
    assert 3 * HOUR < waited < 6 * HOUR


def test_a_morning_collapse_is_still_found_quickly(napper: Sim) -> None:
    sim = copy.deepcopy(napper)
    day = FIRST + dt.timedelta(days=28)
    before = len(sim.raised())
    sim.live(day, [s for s in PLAIN_DAY if "07:00" <= s[0] <= "10:05"])
    sim.run_until(local(day, "20:00"))
    alarms = sim.raised("inactivity")[before:]
    assert len(alarms) == 1 and alarms[0].t - local(day, "10:05") <= 2 * HOUR
