"""bench/silent_offline.py re-runs the inactivity rule on what one live replay observed: with the
same settings it must count exactly what the live bench counts (false alarms and cut delays),
or its quick comparisons of other settings mean nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from pathlib import Path

import pytest

from gateway.detection.routine import RoutineSettings
from gateway.detection.routine.inactivity import InactivitySettings
from tests.detection.routine.routine_sim import local, write_recording

sys.path.insert(0, str(Path(__file__).absolute().parents[3] / "bench"))

import silent_emergencies as live
import silent_offline as offline

FIRST = dt.date(2019, 5, 6)


@pytest.mark.parametrize(
    "inactivity",
    [
        InactivitySettings(),
        # a short learning period and a loose tail: the quiet afternoons alarm
        InactivitySettings(min_learned_days=5, tail_probability=0.2, buffer_s=0.0),
    ],
)
def test_offline_rerun_counts_what_the_live_bench_counts(
    tmp_path: Path, inactivity: InactivitySettings
) -> None:
    recording = live.load_recording(write_recording(tmp_path / "home.jsonl", FIRST, 24, 4))
    cuts = [
        local(FIRST + dt.timedelta(days=16), "10:05"),
        local(FIRST + dt.timedelta(days=19), "13:30"),  # its quiet ends in a learned afternoon
        local(FIRST + dt.timedelta(days=21), "21:50"),  # a quiet from bedtime: not_up finds it
    ]
    settings = dataclasses.replace(RoutineSettings(), inactivity=inactivity)
    expected = live.evaluate_home(recording, settings, cuts)

    dump = offline.dump_home(recording, settings, cuts)
    found = offline.run_home(dump, inactivity)

    assert found["inactivity"] == expected["alerts"]["inactivity"]
    assert found["not_up"] == expected["alerts"]["not_up"]
    assert [None if d is None else round(d) for d in found["delays_s"]] == expected["delays_s"]
    assert found["inactivity"] + found["not_up"] > 0 or inactivity == InactivitySettings()
    assert all(d is not None for d in found["delays_s"])  # every collapse is found


def _home(days: float, alarms: int, delays_h: list[float | None]) -> dict:
    delays = [None if d is None else d * 3600 for d in delays_h]
    return {"days": days, "inactivity": alarms, "not_up": 0, "delays_s": delays}


def test_the_bootstrap_resamples_whole_homes() -> None:
    same = [_home(10.0, 1, [2.0, 4.0]), _home(10.0, 1, [2.0, 4.0])]
    alike = offline.bootstrap(same, 500)
    assert alike["mean_delay_h_p05_p50_p95"] == [3.0, 3.0, 3.0]
    assert alike["rate_p05_p50_p95"] == [0.1, 0.1, 0.1]
    assert alike["p_mean_delay_over_3h"] == 0.0 and alike["p_rate_at_most_0.05"] == 0.0
    # a quiet home with quick finds and a noisy slow one: a draw holds either twice (1 h, 5 h:
    # a quarter each) or both (3 h), and a missed collapse (None) is no delay
    unlike = offline.bootstrap([_home(20.0, 0, [1.0, None]), _home(20.0, 4, [5.0])], 2000)
    assert unlike["mean_delay_h_p05_p50_p95"] == [1.0, 3.0, 5.0]
    assert 0.2 < unlike["p_mean_delay_over_3h"] < 0.3
    assert unlike["rate_p05_p50_p95"][0] == 0.0 and unlike["rate_p05_p50_p95"][2] == 0.2
