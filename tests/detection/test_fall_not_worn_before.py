"""Second review of 37b3786 (an impact opens a candidate whether the band reads as worn or
not): a band off the wrist for a while, knocked to the floor and put on seconds later."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.model import EventAction, Reading
from tests.detection.test_fall_alerts import EPOCH, MONO, WRIST, Home, still, synth_fall, walking


@pytest.mark.parametrize(("off_s", "on_after_s"), [(60.0, 3.0), (60.0, 6.0), (600.0, 8.0)])
def test_a_band_off_the_wrist_knocked_down_and_put_on_raises_nothing(
    off_s: float, on_after_s: float
) -> None:
    """Lying on the table without skin contact (hr 0) for ``off_s``, knocked to the floor (an
    impact, then stillness), picked up and put on ``on_after_s`` after the hit: worn when the
    candidate was decided and when its alert was due, it raised a fall alert. Before 37b3786
    the impact of a band not worn opened no candidate."""
    home = Home()
    _t, drop, impact_s = synth_fall(np.random.default_rng(3), after=10.0)
    on_at = int((off_s + impact_s + on_after_s) * 50) // 10 * 10
    xyz = np.concatenate(
        [still(off_s), drop[: on_at - int(off_s * 50) - 50], walking(5), still(20)]
    )
    contact = {0: 0, on_at: 72}
    t = EPOCH + np.arange(xyz.shape[0]) / 50.0
    for i in range(0, xyz.shape[0], 10):
        home.run_until(MONO + (min(i + 10, xyz.shape[0]) - 1) / 50.0)
        home.send(Reading(float(t[i]), WRIST.id, {"acc": xyz[i : i + 10], "ts": t[i : i + 10]}))
        if i in contact:
            home.send(Reading(home.clock.wall(), WRIST.id, {"hr": contact[i]}))
    home.idle(10)
    assert home.of(EventAction.RAISE) == []
    assert home.detector.counters["candidates_scored"] == 0  # nor any model call for it
