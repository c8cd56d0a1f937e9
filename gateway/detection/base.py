"""The interface every detector implements.

A detector is a thin stateful shell around pure detection maths. The pipeline calls
:meth:`Detector.on_reading` for every reading of a device it knows, and :meth:`Detector.on_tick`
whenever time passes (at the latest at :meth:`Detector.next_deadline`, and at least every
``TICK_MAX_SECONDS``). Detectors read time only from the clock they were given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from gateway.model import Alert, Device, Event, Reading, Resident


class Home:
    """The devices and residents of one installation (read-only after start)."""

    def __init__(self, residents: Sequence[Resident], devices: Sequence[Device]) -> None:
        self.residents: dict[str, Resident] = {r.id: r for r in residents}
        self.devices: dict[str, Device] = {d.id: d for d in devices}
        # The home's local time where no resident or detector ``tz`` says it; None: the system
        # zone. A replay of ISO times sets it to their zone (naive: the times as written).
        self.zone: dt.tzinfo | None = None

    def add_resident(self, resident: Resident) -> None:
        self.residents[resident.id] = resident

    def add_device(self, device: Device) -> None:
        self.devices[device.id] = device
        if device.resident not in self.residents:
            self.residents[device.resident] = Resident(id=device.resident)

    def devices_of(self, resident: str) -> list[Device]:
        return [d for d in self.devices.values() if d.resident == resident]


class DeafPeriods:
    """When the gateway could not hear (part of) the home — a broker, bridge or adapter problem
    (:mod:`gateway.detection.gateway_health` marks them) — so that what the routine detectors
    learn from silences never includes an outage: a quiet, a night or a stay that overlaps one
    says nothing about the person. Kept in monotonic time; the last ``keep`` periods."""

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self._periods: list[list[float | None]] = []  # [start, end or None while it lasts]

    def update(self, now_mono: float, deaf: bool) -> None:
        open_now = bool(self._periods) and self._periods[-1][1] is None
        if deaf and not open_now:
            self._periods.append([now_mono, None])
            del self._periods[: -self.keep]
        elif not deaf and open_now:
            self._periods[-1][1] = now_mono

    def overlaps(self, start_mono: float, end_mono: float) -> bool:
        for begin, end in reversed(self._periods):
            assert begin is not None
            if (end is None or end > start_mono) and begin < end_mono:
                return True
            if end is not None and end <= start_mono:
                return False  # periods are in order: every earlier one ended before too
        return False


class Detector(Protocol):
    name: str

    def on_reading(self, reading: Reading, device: Device) -> list[Event]: ...

    def on_tick(self) -> list[Event]: ...

    def next_deadline(self) -> float | None:
        """Monotonic time at which this detector next needs :meth:`on_tick`, or None."""
        ...


class DecidesSoon(Protocol):
    """A detector that may raise an alert within seconds from what it has already received (a
    fall being confirmed). A gateway asked to stop waits for it (``Runtime.request_stop``): the
    data that decides it is in memory only, and a restart then lost it."""

    def deciding(self) -> bool:
        """True while such an alert may still come from data already received."""
        ...


class ResumesAlerts(Protocol):
    """A detector that clears its own alerts (a device heard again, the next sign of life...)
    and can take back the ones a previous run left open. Without this, an alert open when the
    gateway restarted (a power cut, an update) would stay open for good: the new run does not
    know it raised it, so nothing would ever clear it."""

    def resume(self, alert: Alert) -> bool:
        """Treat ``alert`` as raised by this run if its type is one of this detector's;
        True if taken. The condition is not re-checked here: what clears it in a normal run
        (or its absence, for gateway health) clears it now."""
        ...
