"""SOS: an emergency press raises a critical alert at once.

A press is ``action == "sos"`` from any device, or any press action from a device of kind
``button`` (emergency-call buttons and pull cords report plain presses). Buttons with role
``"visit"`` are the staff visit switch, not an emergency (the pipeline handles them). A
``cancel`` from the same resident within ``cancel_window_s`` withdraws the alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.clock import Clock
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Severity

BUTTON_PRESS_ACTIONS = frozenset({"sos", "press", "single", "double", "triple", "long", "hold"})


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
        self._last_press: dict[str, tuple[float, float]] = {}  # resident -> (t, monotonic)

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        action = reading.get("action")
        if not isinstance(action, str) or device.role == "visit":
            return []
        if action == "sos" or (device.kind is DeviceKind.BUTTON and action in BUTTON_PRESS_ACTIONS):
            self._last_press[device.resident] = (reading.t, self.clock.monotonic())
            return [
                Event(
                    type="sos",
                    resident=device.resident,
                    t=reading.t,
                    severity=Severity.CRITICAL,
                    device=device.id,
                    details={"room": device.room.value},
                )
            ]
        if action == "cancel":
            last = self._last_press.get(device.resident)
            if last and self.clock.monotonic() - last[1] <= self.settings.cancel_window_s:
                return [
                    Event(
                        type="sos",
                        resident=device.resident,
                        t=reading.t,
                        severity=Severity.CRITICAL,
                        action=EventAction.CANCEL,
                        device=device.id,
                    )
                ]
        return []

    def on_tick(self) -> list[Event]:
        return []

    def next_deadline(self) -> float | None:
        return None
