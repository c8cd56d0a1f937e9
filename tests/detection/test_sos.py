"""SOS presses and the resident's cancel, on the injected clock."""

from __future__ import annotations

from gateway.clock import SimClock
from gateway.detection.sos import SosDetector
from gateway.model import Device, DeviceKind, EventAction, Reading, Room

PENDANT = Device("pendant", DeviceKind.BUTTON, "r1", Room.LOUNGE)
BAND = Device("band", DeviceKind.WRISTBAND, "r1")


def press(sos: SosDetector, device: Device, action: str, t: float) -> list[EventAction]:
    return [e.action for e in sos.on_reading(Reading(t, device.id, {"action": action}), device)]


def test_a_cancel_within_the_window_withdraws_the_sos() -> None:
    clock = SimClock()
    sos = SosDetector(clock)
    assert press(sos, PENDANT, "single", clock.wall()) == [EventAction.RAISE]
    clock.advance(10.0)
    assert press(sos, BAND, "cancel", clock.wall()) == [EventAction.CANCEL]
    clock.advance(10.0)
    assert press(sos, PENDANT, "single", clock.wall()) == [EventAction.RAISE]
    clock.advance(31.0)
    assert press(sos, BAND, "cancel", clock.wall()) == []  # the window has closed


def test_a_cancel_pressed_before_the_sos_but_handled_after_it_withdraws_nothing() -> None:
    """Presses are handled ahead of a flood of wristband readings (the runtime's urgent
    queue), so a band's cancel (pressed for a fall) can reach the detector after a pendant's
    SOS pressed seconds later: it withdrew the SOS."""
    clock = SimClock()
    sos = SosDetector(clock)
    cancel_pressed_at = clock.wall()
    clock.advance(5.0)
    assert press(sos, PENDANT, "single", clock.wall()) == [EventAction.RAISE]
    clock.advance(0.5)
    assert press(sos, BAND, "cancel", cancel_pressed_at) == []


def test_any_press_of_an_emergency_button_raises_and_a_release_does_not() -> None:
    """Gestures a device names its own way (Zigbee2MQTT passes unknown actions through: an
    Aqara button's ``quadruple`` and ``many``; NodOn's ``quintuple``; BTHome's ``long_double``
    and an event code it does not know) raised no SOS from an emergency button."""
    clock = SimClock()
    for action in ("quadruple", "many", "quintuple", "long_double", "event_9"):
        assert press(SosDetector(clock), PENDANT, action, clock.wall()) == [EventAction.RAISE]
    for action in ("release", "cancel", ""):
        assert press(SosDetector(clock), PENDANT, action, clock.wall()) == []
