"""Review findings in the fall alert flow (2026-12-07): a link lost at the fall by a band that
never sends its missed samples again, stale batches, cancel presses around two falls or dated
before the impact, and an open fall alert taken over after a gateway restart."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.model import EventAction, Reading
from tests.detection.test_fall_alerts import (
    MONO,
    WRIST,
    Home,
    still,
    synth_fall,
    synth_table_hit,
    walking,
)


def stream_dropping(home: Home, xyz: np.ndarray, lost: tuple[int, int]) -> None:
    """The project's wristband (sample counter, no buffering): notifications of 10 samples at
    50 Hz, dated on arrival; those taken while the link is down (samples ``lost[0]`` to
    ``lost[1]``) are never sent, the counter moves on."""
    seq = 7_000
    for i in range(0, xyz.shape[0], 10):
        part = xyz[i : i + 10]
        home.idle(part.shape[0] / 50.0)
        values = {"acc": part, "fs": 50.0, "seq": seq}
        seq += part.shape[0]
        if lost[0] <= i < lost[1]:
            continue
        home.send(Reading(home.clock.wall() - 0.18, WRIST.id, values))


@pytest.mark.parametrize(
    ("lost_after_s", "away_s"), [(0.2, 3.0), (0.4, 1.2), (0.6, 1.2), (1.0, 2.0), (2.2, 2.6)]
)
def test_a_link_lost_for_seconds_at_the_fall_still_alerts_and_escalates(
    lost_after_s: float, away_s: float
) -> None:
    """Lost within 0.5 s of the impact no candidate opened; later, the gap cut the candidate
    off with under 2 s of data and it was dropped as incomplete: no alert at all."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    lost_at = int((impact_s + lost_after_s) * 50) // 10 * 10
    stream_dropping(home, np.concatenate([xyz, still(150)]), (lost_at, lost_at + away_s * 50))
    home.idle(10)
    ((raised_mono, _),) = home.of(EventAction.RAISE)
    assert raised_mono - (MONO + impact_s) < 9.5
    ((_, escalated),) = home.of(EventAction.ESCALATE)
    assert escalated.details["reason"] == "long_lie"
    assert home.detector.counters["gaps_bridged_after_impact"] == 1
    assert home.detector.counters["candidates_incomplete"] == 0


def test_a_link_lost_after_an_everyday_impact_raises_nothing() -> None:
    home = Home()
    _t, xyz = synth_table_hit(np.random.default_rng(2))
    hit = 8 * 50
    stream_dropping(home, np.concatenate([xyz, walking(20)]), (hit + 30, hit + 180))
    home.idle(10)
    assert home.events == []
    assert home.detector.counters["gaps_bridged_after_impact"] == 1
    assert home.detector.counters["candidates_scored"] >= 1


def test_a_link_lost_without_an_impact_under_way_still_starts_a_new_segment() -> None:
    home = Home()
    stream_dropping(home, walking(20), (300, 450))
    assert home.detector.counters["segments_restarted"] == 1
    assert home.detector.counters["gaps_bridged_after_impact"] == 0
