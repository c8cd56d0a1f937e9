"""The synchronous heart of the gateway: reading → detectors → events → alert manager → changes.

The pipeline owns no I/O and no task: the live runtime and ``eldergate replay`` both drive it,
one from a queue on the system clock, the other from a recording on a :class:`SimClock`, so the
code that replays a recorded week in seconds is exactly the code that runs in the home.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from alerts.manager import AlertChange, AlertManager
from gateway.clock import Clock, SimClock
from gateway.detection.base import Detector, Home
from gateway.errors import crash_site
from gateway.model import Alert, Event, Reading, is_urgent

log = logging.getLogger(__name__)

# Detectors get on_tick() at least this often even when they ask for no deadline.
TICK_MAX_SECONDS = 60.0
MIN_TICK_STEP_SECONDS = 0.1
VISIT_ACTIONS = frozenset({"press", "single", "sos"})


class Pipeline:
    def __init__(
        self,
        home: Home,
        detectors: Sequence[Detector],
        manager: AlertManager,
        clock: Clock,
        observers: Iterable[Callable[[Reading], None]] = (),
    ) -> None:
        self.home = home
        self.detectors = list(detectors)
        self.manager = manager
        self.clock = clock
        self.observers = list(observers)  # e.g. the daily summary; see every known reading
        self._last_tick_mono = clock.monotonic()
        self.counters: dict[str, int] = {
            "readings": 0,
            "unknown_device": 0,
            "detector_errors": 0,
            "observer_errors": 0,
            "events": 0,
            "alerts_resumed": 0,
        }

    def feed(self, reading: Reading) -> list[AlertChange]:
        device = self.home.devices.get(reading.device)
        if device is None:
            self.counters["unknown_device"] += 1
            return []
        self.counters["readings"] += 1
        if device.role == "visit" and reading.get("action") in VISIT_ACTIONS:
            self._toggle_visit(device.resident)
        for observer in self.observers:
            try:
                observer(reading)
            except Exception as exc:  # the message may quote the reading: the site only
                self.counters["observer_errors"] += 1
                log.error("observer failed on a %s reading: %s", device.kind, crash_site(exc))
        events: list[Event] = []
        for detector in self.detectors:
            try:
                events.extend(detector.on_reading(reading, device))
            except Exception as exc:
                # One detector's bug must not blind the others or lose the reading for them.
                # Logged by its site, not its message, which may quote the reading's values.
                self.counters["detector_errors"] += 1
                log.error(
                    "detector %s failed on a %s reading: %s",
                    detector.name,
                    device.kind,
                    crash_site(exc),
                )
        return self._apply(events)

    def is_urgent(self, reading: Reading) -> bool:
        """A press that must not wait behind a flood (the live runtime takes it first):
        :func:`gateway.model.is_urgent` with the configured device's kind."""
        device = self.home.devices.get(reading.device)
        return is_urgent(reading, None if device is None else device.kind)

    def tick(self) -> list[AlertChange]:
        self._last_tick_mono = self.clock.monotonic()
        events: list[Event] = []
        for detector in self.detectors:
            try:
                events.extend(detector.on_tick())
            except Exception:
                self.counters["detector_errors"] += 1
                log.exception("detector %s failed on tick", detector.name)
        return self._apply(events) + self.manager.on_tick()

    def resume(self, alerts: Iterable[Alert]) -> None:
        """Hand each open alert restored from a previous run to the detector that raises its
        type (:class:`~gateway.detection.base.ResumesAlerts`), so that what would have cleared
        it still does. An alert no detector takes stays open for staff to resolve."""
        for alert in alerts:
            for detector in self.detectors:
                resume = getattr(detector, "resume", None)
                if resume is None:
                    continue
                try:
                    taken = resume(alert)
                except Exception:
                    self.counters["detector_errors"] += 1
                    log.exception(
                        "detector %s failed to resume a %s alert", detector.name, alert.type
                    )
                    continue
                if taken:
                    self.counters["alerts_resumed"] += 1
                    break

    def deciding(self) -> bool:
        """Whether a detector may raise an alert within seconds from readings already fed
        (:class:`~gateway.detection.base.DecidesSoon`: a fall being confirmed)."""
        for detector in self.detectors:
            deciding = getattr(detector, "deciding", None)
            if deciding is None:
                continue
            try:
                if deciding():
                    return True
            except Exception:
                self.counters["detector_errors"] += 1
                log.exception("detector %s failed to say whether it is deciding", detector.name)
        return False

    def next_deadline(self) -> float:
        """Monotonic time by which :meth:`tick` must run next."""
        now = self.clock.monotonic()
        # Counted from the last tick, not from now: otherwise a caller that asks again after
        # waiting would see the periodic tick recede forever.
        deadlines = [self._last_tick_mono + TICK_MAX_SECONDS]
        sources: list[Detector | AlertManager] = [*self.detectors, self.manager]
        for source in sources:
            try:
                deadline = source.next_deadline()
            except Exception:
                self.counters["detector_errors"] += 1
                log.exception("next_deadline of %s failed", getattr(source, "name", source))
                continue
            if deadline is not None:
                deadlines.append(deadline)
        return max(min(deadlines), now)

    def _apply(self, events: list[Event]) -> list[AlertChange]:
        changes: list[AlertChange] = []
        for event in events:
            self.counters["events"] += 1
            changes.extend(self.manager.handle(self._with_place(event)))
        return changes

    def _with_place(self, event: Event) -> Event:
        """Staff need to know where: add the device's room and kind to the alert's details."""
        device = self.home.devices.get(event.device) if event.device else None
        if device is None:
            return event
        place = {"room": device.room.value, "device_kind": device.kind.value}
        return dataclasses.replace(event, details={**place, **event.details})

    def _toggle_visit(self, resident: str) -> None:
        if self.manager.in_visit(resident):
            self.manager.end_visit(resident)
        else:
            self.manager.start_visit(resident, by="visit-button")

    def diagnostics(self) -> dict[str, Any]:
        return {**self.counters, "alerts": self.manager.diagnostics()}


def advance_to(pipeline: Pipeline, clock: SimClock, wall: float) -> list[AlertChange]:
    """Move simulated time forward to ``wall``, ticking at every deadline on the way."""
    changes: list[AlertChange] = []
    target_mono = clock.monotonic() + max(0.0, wall - clock.wall())
    last_tick: float | None = None
    while True:
        deadline = pipeline.next_deadline()
        if last_tick is not None and deadline <= last_tick:
            # A deadline the last tick did not clear: step on rather than spin.
            deadline = last_tick + MIN_TICK_STEP_SECONDS
        if deadline > target_mono:
            break
        clock.advance(deadline - clock.monotonic())
        last_tick = deadline
        changes.extend(pipeline.tick())
    clock.advance(target_mono - clock.monotonic())
    return changes
