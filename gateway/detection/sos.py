"""SOS: an emergency press raises a critical alert at once.

A press is ``action == "sos"`` from any device, or any press action from a device of kind
``button`` (emergency-call buttons and pull cords report plain presses; any gesture but a
release or a cancel, :func:`gateway.model.is_press`, the rule device health's weekly test uses
too). Buttons with role
``"visit"`` are the staff visit switch, not an emergency (the pipeline handles them). A
``cancel`` from the same resident within ``cancel_window_s`` withdraws the alert, if it was
pressed after the SOS (by the readings' times): presses are handled ahead of a queue of other
readings (``Pipeline.is_urgent``), so a wristband's cancel pressed for something else before a
pendant's SOS can be handled after it, and must not withdraw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.clock import Clock
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Severity, is_press


@dataclass(frozen=True)
class SosSettings:
    cancel_window_s: float = field(
        default=30.0, metadata={"min": 0, "max": 300, "doc": "resident may cancel within it"}
    )


class SosDetector:
    name = "sos"

    def __init__(self, clock: Clock, settings: SosSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or SosSettings()
        # resident -> the last press: when handled (monotonic) and when pressed (reading time)
        self._last_press: dict[str, tuple[float, float]] = {}

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        action = reading.get("action")
        if not isinstance(action, str) or device.role == "visit":
            return []
        if action == "sos" or (device.kind is DeviceKind.BUTTON and is_press(action)):
            self._last_press[device.resident] = (self.clock.monotonic(), reading.t)
            return [_sos_event(reading, device, EventAction.RAISE)]
        if action == "cancel":
            last = self._last_press.get(device.resident)
            if (
                last is not None
                and self.clock.monotonic() - last[0] <= self.settings.cancel_window_s
                and reading.t >= last[1]
            ):
                return [_sos_event(reading, device, EventAction.CANCEL)]
        return []

    def on_tick(self) -> list[Event]:
        return []

    def next_deadline(self) -> float | None:
        return None


def _sos_event(reading: Reading, device: Device, action: EventAction) -> Event:
    return Event("sos", device.resident, reading.t, Severity.CRITICAL, action, device=device.id)
