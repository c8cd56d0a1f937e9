"""bench/silent_emergencies.py measures through the live replay path: a cut taken from one
long replay (deep copy of the replayer) equals ``eldergate replay --until`` on the recording
truncated at the cut."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from gateway.detection.routine import RoutineSettings
from tests.detection.routine.routine_sim import local, write_recording

sys.path.insert(0, str(Path(__file__).absolute().parents[3] / "bench"))

import silent_emergencies as bench

FIRST = dt.date(2019, 5, 6)


def _key(change: bench.AlertChange) -> tuple:
    a = change.alert
    return (change.change, a.type, a.t, a.last_t, a.resident, json.dumps(a.details, sort_keys=True))


def test_cut_from_one_replay_equals_replaying_the_truncated_recording(tmp_path: Path) -> None:
    recording = bench.load_recording(write_recording(tmp_path / "home.jsonl", FIRST, 18))
    settings = RoutineSettings()
    cuts = [
        local(FIRST + dt.timedelta(days=15), "10:05"),
        local(FIRST + dt.timedelta(days=16), "09:00"),
    ]
    changes, branches = bench.replay_with_cuts(recording, settings, cuts)

    for cut, branch in zip(cuts, branches, strict=True):
        alone = bench.new_replayer(settings)
        list(alone.run(bench.truncated_lines(recording, cut)))
        expected = list(alone.run([], until=cut + bench.DAY_S))
        assert [_key(c) for c in branch] == [_key(c) for c in expected]
        found = bench.first_silence_alert(branch, cut)
        assert found is not None and 0 < found - cut <= 6 * 3600  # the collapse is found

    # Branching leaves the long replay untouched: it equals a replay with no cuts.
    plain, _ = bench.replay_with_cuts(recording, settings, [])
    assert [_key(c) for c in changes] == [_key(c) for c in plain]
