"""A resident's cancel after several falls (``cancel_kept_for_earlier_fall``): the detector
keeps an alert open exactly when the alert manager joined the falls into one."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.manager import AlertManager
from gateway.model import Device, EventAction, Reading
from tests.detection.test_fall_alerts import WRIST, Home, synth_fall, walking
from tests.detection.test_fall_gaps_and_presses import PENDANT, stream_live


def falls_with_a_press(
    walks: list[float], press_from_last: float, by: Device = WRIST
) -> tuple[Home, AlertManager]:
    """Falls (10 s each, impact 6 s in) with ``walks[i]`` s of walking between them; the wearer
    presses cancel ``press_from_last`` s after the last impact."""
    home = Home()
    manager = AlertManager("gw", home.clock)
    parts, impacts, at = [], [], 0.0
    for i, walked in enumerate([*walks, None]):
        _t, xyz, impact = synth_fall(np.random.default_rng(i + 1), after=4.0 if walked else 60.0)
        parts.append(xyz)
        impacts.append(at + impact)
        at += xyz.shape[0] / 50.0
        if walked:
            parts.append(walking(walked))
            at += walked

    def press(_i: int) -> None:
        home.send(Reading(home.clock.wall(), by.id, {"action": "cancel"}), by)

    stream_live(home, np.concatenate(parts), impacts[-1] + press_from_last, press, idle_s=200)
    for _, event in home.events:
        manager.handle(event)
    return home, manager


@pytest.mark.parametrize("by", [WRIST, PENDANT])
def test_a_cancel_of_a_fall_outside_the_repeat_window_withdraws_its_own_alert(
    by: Device,
) -> None:
    """Fell, got up, walked a minute and fell again 70 s after the first impact: the manager
    raised the second fall as an alert of its own (over its 60 s repeat window). The wearer's
    cancel 2 s after that alert withdrew nothing (cancel_kept_for_earlier_fall): a false alarm
    the resident could not take back. The first alert stays open."""
    home, manager = falls_with_a_press([60.0], 11.0, by=by)
    actions = [e.action for _, e in home.events]
    assert actions == [EventAction.RAISE, EventAction.RAISE, EventAction.CANCEL]
    assert len(manager.active) == 1
    (left,) = manager.active.values()
    assert left.count == 1  # the first fall's alert


@pytest.mark.parametrize("by", [WRIST, PENDANT])
def test_a_cancel_of_two_later_falls_leaves_the_first_joint_fall_open(by: Device) -> None:
    """Three falls joined into one alert (impacts at 6, 40 and 54 s); no press in the first
    alert's window; a press 11 s after the third impact, in the second's and third's windows:
    the chain cut at one link forgot the first fall and the one CANCEL withdrew the joint
    alert, the first fall with it."""
    home, manager = falls_with_a_press([24.0, 4.0], 11.0, by=by)
    actions = [e.action for _, e in home.events]
    assert EventAction.CANCEL not in actions
    assert actions.count(EventAction.RAISE) == 3
    assert len(manager.active) == 1
