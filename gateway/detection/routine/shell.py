"""What every routine detector shares: the clock, the home, the live picture, per-resident
settings, and learned state. Detectors subclass :class:`RoutineDetector` and implement
:meth:`observe` (one sign of life) and :meth:`on_tick`.

A detector built alone keeps its own :class:`Presence` and feeds it; inside
:class:`~gateway.detection.routine.RoutineDetectors` all detectors share one picture, fed once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from gateway.clock import CLOCK_STEP_S, Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore, MemoryLearnedStore
from gateway.detection.routine.localtime import LocalTime
from gateway.detection.routine.presence import Observation, Presence
from gateway.model import Alert, Device, Event, Reading, Resident
from gateway.schema import value_problems

log = logging.getLogger(__name__)

S = TypeVar("S")


def resident_settings(base: S, resident: Resident | None, name: str) -> S:
    """``base`` with the fields a resident's config overrides under ``settings[name]``.
    Unknown or mistyped fields, and values outside a field's bounds, choices or format (an
    ``'HH:MM'`` time), are ignored with a warning (a bad value must not stop alerts)."""
    if resident is None:
        return base
    overrides = resident.settings.get(name)
    if not isinstance(overrides, Mapping) or not dataclasses.is_dataclass(base):
        return base
    fields = {f.name: f for f in dataclasses.fields(base)}
    chosen: dict[str, Any] = {}
    for key, value in overrides.items():
        current = getattr(base, key, None) if key in fields else None
        # An optional field ("float | None") may be switched off with None.
        off = value is None and key in fields and "None" in str(fields[key].type)
        if key not in fields or (
            current is not None
            and not off
            and not isinstance(value, type(current))
            and not (isinstance(current, float) and isinstance(value, int))
        ):
            log.warning("ignoring %s setting %r for one resident: unknown or wrong type", name, key)
            continue
        value = float(value) if isinstance(current, float) and value is not None else value
        problems = [] if off else value_problems(fields[key], value, f"{name}.{key}")
        if problems:
            log.warning("ignoring a setting for one resident: %s", "; ".join(problems))
            continue
        chosen[key] = value
    return dataclasses.replace(base, **chosen)  # type: ignore[type-var]


class RoutineDetector(Generic[S]):
    name = "routine"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: S,
        store: LearnedStore | None = None,
        presence: Presence | None = None,
    ) -> None:
        self.clock = clock
        self.home = home
        self.settings = settings
        self.store: LearnedStore = store if store is not None else MemoryLearnedStore()
        self._owns_presence = presence is None
        self.presence = presence if presence is not None else Presence(clock, home)
        self._per_resident: dict[str, S] = {}
        self._local: dict[str, LocalTime] = {}
        self.started_mono = clock.monotonic()

    # -- the Detector protocol -------------------------------------------------------------
    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        events = self.on_any_reading(reading, device)
        if self._owns_presence:
            observation = self.presence.observe(reading, device)
            if observation is not None:
                events.extend(self.observe(observation))
        return events

    def on_tick(self) -> list[Event]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def resume(self, alert: Alert) -> bool:
        """An alert of this detector (its type is the detector's name) left open by a
        previous run: marked raised again, so the sign that clears it still does
        (:class:`~gateway.detection.base.ResumesAlerts`)."""
        if alert.type != self.name or alert.resident not in self.home.residents:
            return False
        self.mark_raised(alert)
        return True

    # -- for subclasses --------------------------------------------------------------------
    def mark_raised(self, alert: Alert) -> None:
        """Remember ``alert`` (of this detector's type) as raised and not yet cleared."""

    def observe(self, observation: Observation) -> list[Event]:
        return []

    def restored(self, resident: str) -> None:
        """The live picture of ``resident`` was just taken back from before a restart."""

    def on_any_reading(self, reading: Reading, device: Device) -> list[Event]:
        """Every reading, sign of life or not (vitals use heart rate and breathing)."""
        return []

    def settings_for(self, resident: str) -> S:
        found = self._per_resident.get(resident)
        if found is None:
            found = resident_settings(self.settings, self.home.residents.get(resident), self.name)
            self._per_resident[resident] = found
        return found

    def local_time(self, resident: str) -> LocalTime:
        found = self._local.get(resident)
        if found is None:
            person = self.home.residents.get(resident)
            tz = person.settings.get("tz") if person is not None else None
            if not isinstance(tz, str):
                tz = getattr(self.settings, "tz", None)
            found = LocalTime(tz, default=self.home.zone)
            self._local[resident] = found
        return found

    def resident_ids(self) -> list[str]:
        return list(self.presence.residents)

    def wall_of(self, mono: float) -> float:
        """Wall time of a monotonic instant, on today's wall/monotonic offset."""
        return self.clock.wall() - (self.clock.monotonic() - mono)

    @staticmethod
    def same_instant(then: float, now: float) -> bool:
        """Whether one instant placed from the wall clock earlier (``then``) and now (``now``)
        is still the same: the wall clock has not stepped in between."""
        return abs(now - then) <= CLOCK_STEP_S
