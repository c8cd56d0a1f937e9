"""Re-run the ``inactivity`` rule offline on what real homes' live replays observed (issue 5
research tool: seconds per setting instead of minutes).

    .venv/bin/python bench/silent_offline.py dump /tmp/tihm --seed 1 --out /tmp/quiets-1.pkl
    .venv/bin/python bench/silent_offline.py run /tmp/quiets-1.pkl \\
        --settings '{"tail_probability": 0.0075}'

``dump`` replays each home once through the live path (:class:`gateway.replay.Replayer`, as
``bench/silent_emergencies.py`` does, same cuts for the same seed) with ``inactivity`` switched
off, and keeps what the rule needs: every sign of life the live picture produced (its
``Observation``, with the quiet period it ended), where each cut's quiet began, the ``not_up``
alerts of the whole log and the first one after each cut. ``run`` feeds those observations in
order to a fresh :class:`InactivityDetector` with the given settings — its own learning and
threshold code, nothing re-implemented — and counts as the live bench does: a false alarm is a
silence that ``inactivity`` (a quiet outlasting its threshold) or ``not_up`` alarmed on, once;
a cut's delay is the earlier of the two within 24 h. Only ``inactivity`` settings vary:
``not_up`` is what the live replay gave. With the dumped settings it gives the live bench's
counts and delays exactly (``tests/detection/routine/test_routine_offline.py``). One resident
per home, as in TIHM.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import pickle
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).absolute().parents[1]))
sys.path.insert(0, str(Path(__file__).absolute().parent))

import silent_emergencies as live

from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.routine import RoutineDetectors, RoutineSettings
from gateway.detection.routine.inactivity import InactivityDetector, InactivitySettings
from gateway.detection.routine.learning import MemoryLearnedStore
from gateway.detection.routine.presence import Observation, Presence
from gateway.model import Room


@dataclass
class CutStart:
    """Where a cut's quiet began: after ``observed`` observations, at the last sign."""

    cut: float
    observed: int
    start_wall: float
    start_mono: float
    room: Room | None
    away: bool
    not_up: float | None  # the first not_up alert within 24 h of the cut (inactivity off)


@dataclass
class HomeDump:
    name: str
    days: float
    home: Home
    resident: str
    observations: list[Observation]
    cuts: list[CutStart]
    not_up: list[float]  # not_up alert times over the whole log (inactivity off)


@contextlib.contextmanager
def recording_observations(into: list[Observation]) -> Iterator[None]:
    """Every observation the live picture produces, appended to ``into`` while inside."""
    original = Presence.observe

    def observe(self: Presence, *args: Any) -> Observation | None:
        found = original(self, *args)
        if found is not None:
            into.append(found)
        return found

    Presence.observe = observe  # type: ignore[method-assign]
    try:
        yield
    finally:
        Presence.observe = original  # type: ignore[method-assign]


def routine_of(replayer: live.Replayer) -> RoutineDetectors:
    return next(d for d in replayer.pipeline.detectors if isinstance(d, RoutineDetectors))


def dump_home(recording: live.Recording, settings: RoutineSettings, cuts: list[float]) -> HomeDump:
    off = dataclasses.replace(
        settings, inactivity=dataclasses.replace(settings.inactivity, enabled=False)
    )
    replayer = live.new_replayer(off)
    observations: list[Observation] = []
    changes: list[live.AlertChange] = []
    starts: list[CutStart] = []
    start = 0
    with recording_observations(observations):
        for cut in cuts:
            end = max(len(live.truncated_lines(recording, cut)), start)
            changes.extend(replayer.run(recording.lines[start:end]))
            start = end
            routine = routine_of(replayer)
            residents = list(routine.presence.residents.values())
            if len(residents) != 1 or residents[0].last_sign_mono is None:
                raise ValueError(f"{recording.name}: one resident with a sign of life expected")
            state = residents[0]
            inactivity = routine.detectors[0]
            branch = copy.deepcopy(replayer)
            seen = len(observations)
            found = live.raised(branch.run([], until=cut + live.DAY_S), ["not_up"])
            del observations[seen:]  # a branch has no readings, but keep the log exact anyway
            after = [c.alert.t for c in found if c.alert.t >= cut]
            starts.append(
                CutStart(
                    cut=cut,
                    observed=seen,
                    start_wall=inactivity.wall_of(state.last_sign_mono),
                    start_mono=state.last_sign_mono,
                    room=state.room,
                    away=state.exit_mono is not None,
                    not_up=min(after) if after else None,
                )
            )
        changes.extend(replayer.run(recording.lines[start:]))
    times = [r.t for _, r in recording.readings]
    resident = observations[0].resident if observations else ""
    return HomeDump(
        name=recording.name,
        days=(max(times) - min(times)) / live.DAY_S,
        home=replayer.home,
        resident=resident,
        observations=observations,
        cuts=starts,
        not_up=[c.alert.t for c in live.raised(changes, ["not_up"])],
    )


def run_home(dump: HomeDump, settings: InactivitySettings) -> dict:
    """False alarms and cut delays of one home with these ``inactivity`` settings."""
    clock = SimClock(start_wall=0.0, start_mono=0.0)
    detector = InactivityDetector(
        clock, dump.home, settings, MemoryLearnedStore(), Presence(clock, dump.home)
    )
    resident = dump.resident
    alarmed: list[tuple[float, float]] = []  # (start wall, end wall) of alarmed quiets
    quiets: list[tuple[float, float]] = []
    cut_thresholds: list[float | None] = []
    cuts = iter(dump.cuts)
    pending = next(cuts, None)
    for index, observation in enumerate([*dump.observations, None]):
        while pending is not None and pending.observed == index:
            threshold = None
            if not pending.away:
                threshold = detector.quiet_threshold_s(
                    resident,
                    pending.start_wall,
                    pending.room,
                    detector.activity_at(resident, pending.start_mono),
                )
            cut_thresholds.append(threshold)
            pending = next(cuts, None)
        if observation is None:
            break
        quiet = observation.ended
        if quiet is not None and not quiet.away and quiet.duration_s > settings.check_after_s:
            end = quiet.start_wall + quiet.duration_s
            quiets.append((quiet.start_wall, end))
            threshold = detector.quiet_threshold_s(
                resident,
                quiet.start_wall,
                quiet.room,
                detector.activity_at(resident, quiet.start_mono),
            )
            if threshold is not None and 0 <= threshold < quiet.duration_s:
                alarmed.append((quiet.start_wall, end))
        detector.observe(observation)
    alarmed_starts = {start for start, _ in alarmed}
    not_up_alone = sum(
        1
        for t in dump.not_up
        if not any(start <= t <= end and start in alarmed_starts for start, end in quiets)
    )
    delays: list[float | None] = []
    for cut, threshold in zip(dump.cuts, cut_thresholds, strict=True):
        found = []
        if threshold is not None and threshold >= 0:
            at = cut.start_wall + threshold
            if cut.cut <= at <= cut.cut + live.DAY_S:
                found.append(at - cut.cut)
        if cut.not_up is not None:
            found.append(cut.not_up - cut.cut)
        delays.append(min(found) if found else None)
    return {
        "home": dump.name,
        "days": dump.days,
        "inactivity": len(alarmed),
        "not_up": not_up_alone,
        "delays_s": delays,
    }


def summarise(results: list[dict]) -> dict:
    days = sum(r["days"] for r in results)
    inactivity = sum(r["inactivity"] for r in results)
    not_up = sum(r["not_up"] for r in results)
    delays = [d for r in results for d in r["delays_s"]]
    found = [d for d in delays if d is not None]
    return {
        "homes": len(results),
        "resident_days": round(days, 1),
        "false_alarms": inactivity + not_up,
        "inactivity": inactivity,
        "not_up": not_up,
        "false_alarms_per_resident_day": round((inactivity + not_up) / days, 4) if days else None,
        "cuts": len(delays),
        "missed_24h": len(delays) - len(found),
        "mean_delay_h": round(float(np.mean(found)) / 3600, 3) if found else None,
        "median_delay_h": round(float(np.median(found)) / 3600, 2) if found else None,
        "p90_delay_h": round(float(np.quantile(found, 0.9)) / 3600, 2) if found else None,
    }


def bootstrap(results: list[dict], draws: int, seed: int = 7) -> dict:
    """How the protocol's figures would vary on as many other homes like these: the homes
    resampled with replacement ``draws`` times (each keeping its own days, alarms and cuts).
    Part of every dataset is kept back and the same protocol is run on homes never seen, so
    a mean delay just under the target here may well be over it there."""
    days = np.array([r["days"] for r in results])
    alarms = np.array([r["inactivity"] + r["not_up"] for r in results], dtype=float)
    found = [[d for d in r["delays_s"] if d is not None] for r in results]
    delay_sum = np.array([sum(f) for f in found])
    delay_n = np.array([len(f) for f in found], dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(results), size=(draws, len(results)))
    mean_delay_h = delay_sum[picks].sum(axis=1) / delay_n[picks].sum(axis=1) / 3600
    rate = alarms[picks].sum(axis=1) / days[picks].sum(axis=1)
    return {
        "draws": draws,
        "mean_delay_h_p05_p50_p95": [
            round(float(np.quantile(mean_delay_h, q)), 2) for q in (0.05, 0.5, 0.95)
        ],
        "p_mean_delay_over_3h": round(float((mean_delay_h > 3.0).mean()), 3),
        "rate_p05_p50_p95": [round(float(np.quantile(rate, q)), 3) for q in (0.05, 0.5, 0.95)],
        "p_rate_at_most_0.05": round(float((rate <= 0.05).mean()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump", help="replay every home once, keep what the rule needs")
    dump.add_argument("recordings", type=Path, help="folder of recordings (eldergate import)")
    dump.add_argument("--out", type=Path, required=True)
    dump.add_argument("--cuts", type=int, default=20, help="simulated collapses per home")
    dump.add_argument("--seed", type=int, default=1)
    dump.add_argument("--settings", help="routine settings of the replay (not_up's)")
    run = sub.add_parser("run", help="the inactivity rule on a dump, with these settings")
    run.add_argument("dump", type=Path)
    run.add_argument("--settings", help='inactivity settings as JSON, e.g. {"buffer_s": 2400}')
    run.add_argument("--per-home", action="store_true", help="print one line per home")
    run.add_argument(
        "--bootstrap", type=int, default=0, help="resample the homes this many times (0: off)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.command == "dump":
        settings = live.parse_settings(args.settings)
        rng = np.random.default_rng(args.seed)
        dumps = []
        for path in sorted(args.recordings.glob("*.jsonl")):
            recording = live.load_recording(path)
            cuts = live.pick_cuts(recording, args.cuts, rng)  # the live bench's cuts
            if recording.readings:
                dumps.append(dump_home(recording, settings, cuts))
        with args.out.open("wb") as fh:
            pickle.dump(dumps, fh)
        print(json.dumps({"homes": len(dumps), "seconds": round(time.perf_counter() - started)}))
        return 0
    with args.dump.open("rb") as fh:
        dumps = pickle.load(fh)
    settings = InactivitySettings(**json.loads(args.settings)) if args.settings else None
    results = [run_home(d, settings or InactivitySettings()) for d in dumps]
    if args.per_home:
        for r in results:
            print(json.dumps({k: v for k, v in r.items() if k != "delays_s"}), file=sys.stderr)
    summary = summarise(results)
    if args.bootstrap:
        summary["bootstrap"] = bootstrap(results, args.bootstrap)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
