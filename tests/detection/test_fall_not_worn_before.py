"""A band that lost skin contact just before an impact still opens a candidate (the hit lifts
the sensor); one off the wrist for longer — on a table, knocked to the floor and put on
seconds later — opens none."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.model import EventAction
from tests.detection.test_fall_alerts import Home, still, stream_with_contact, synth_fall, walking


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
    stream_with_contact(home, xyz, {0: 0, on_at: 72})
    assert home.of(EventAction.RAISE) == []
    assert home.detector.counters["candidates_scored"] == 0  # nor any model call for it
