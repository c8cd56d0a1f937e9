"""``bed_exit_no_return``: out of bed at night and not back within the usual time.

In bed: a bed sensor's ``occupied``, or (homes without one) the last sign of life during the
night hours was in the bedroom. Out: the bed reports unoccupied, or a sign of life in another
room. Back: occupied again, or a sign in the bedroom. Night hours are the resident's
(``night_start``-``night_end``, local); an excursion still open when the night ends is the
person getting up, not an emergency. Completed night excursions (up to ``learn_max_s``) are
remembered; the threshold is the ``quantile`` of them times ``factor``, never below
``default_s`` (45 min) and at most ``ceiling_s``. Away from home (exit door), this is left to
``night_exit``.

Without a bed sensor "in bed" is only a guess from the bedroom motion sensor (a night spent
partly in the armchair looks like a bed exit), which on the TIHM homes raised 0.18 alerts per
resident-day: far too many for staff. So the detector runs only for residents with a bed sensor
unless ``guess_from_motion`` is set; then the alarm also needs the threshold's length of
silence (a person moving about the lounge at night is alive), 0.13 per resident-day on TIHM.
A silence at night in such homes is left to ``not_up`` in the morning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore
from gateway.detection.routine.localtime import in_window, parse_hhmm
from gateway.detection.routine.presence import EXIT, Observation, Presence
from gateway.detection.routine.shell import RoutineDetector
from gateway.model import Alert, DeviceKind, Event, EventAction, Room, Severity


@dataclass(frozen=True)
class BedExitSettings:
    enabled: bool = True
    default_s: float = 2700.0
    quantile: float = 0.95
    factor: float = 1.25
    ceiling_s: float = 2 * 3600.0
    learn_max_s: float = 4 * 3600.0
    history: int = 100
    min_learned: int = 10
    # Without a bed sensor "in bed" is a guess from bedroom motion: off unless asked for.
    guess_from_motion: bool = False
    severity: str = "high"
    tz: str | None = None


class BedExitDetector(RoutineDetector[BedExitSettings]):
    name = "bed_exit_no_return"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: BedExitSettings | None = None,
        store: LearnedStore | None = None,
        presence: Presence | None = None,
    ) -> None:
        super().__init__(clock, home, settings or BedExitSettings(), store, presence)
        self._in_bed: dict[str, bool] = {}
        self._out_since: dict[str, tuple[float, float]] = {}  # resident → (mono, t)
        # out of bed in the day by the wall clock then, not back yet: NTP setting a clock that
        # booted on fake-hwclock's stale time may put it in the night (on_tick)
        self._out_by_day: dict[str, tuple[float, float]] = {}
        self._raised: set[str] = set()
        self._durations: dict[str, list[float]] = {}

    def durations(self, resident: str) -> list[float]:
        found = self._durations.get(resident)
        if found is None:
            found = [float(x) for x in self.store.get(f"{self.name}/{resident}") or []]
            self._durations[resident] = found
        return found

    def threshold_s(self, resident: str) -> float:
        settings = self.settings_for(resident)
        durations = self.durations(resident)
        if len(durations) < settings.min_learned:
            return settings.default_s
        usual = float(np.quantile(np.asarray(durations), settings.quantile)) * settings.factor
        return min(max(usual, settings.default_s), settings.ceiling_s)

    def _is_night(self, resident: str, wall: float) -> bool:
        local = self.local_time(resident)
        person = self.home.residents.get(resident)
        if person is None or not local.plausible(wall):
            return False
        minute = local.minute_of_day(wall)
        return in_window(minute, parse_hhmm(person.night_start), parse_hhmm(person.night_end))

    def _has_bed_sensor(self, resident: str) -> bool:
        return any(d.kind is DeviceKind.BED for d in self.home.devices_of(resident))

    def mark_raised(self, alert: Alert) -> None:
        self._raised.add(alert.resident)  # cleared when back in bed

    def restored(self, resident: str) -> None:
        # the bed's next "occupied" repeats the picture taken back and is no sign: without
        # this, getting out of bed after a restart in the night started no excursion
        if self.presence.resident(resident).in_bed:
            self._in_bed[resident] = True

    def observe(self, observation: Observation) -> list[Event]:
        resident = observation.resident
        sign = observation.sign
        if sign.kind == EXIT:
            # Out of the home: night_exit owns this excursion (also when the person comes back
            # through the door later: the door opening is no reason to alarm).
            self._out_since.pop(resident, None)
            self._out_by_day.pop(resident, None)
            return []
        has_bed = self._has_bed_sensor(resident)
        if not has_bed and not self.settings_for(resident).guess_from_motion:
            return []
        if has_bed:
            if sign.bed is None:
                return []
            back = sign.bed
        elif sign.room is None:
            return []
        else:
            back = sign.room is Room.BEDROOM
        events: list[Event] = []
        if back:
            self._out_by_day.pop(resident, None)
            out = self._out_since.pop(resident, None)
            if resident in self._raised:
                self._raised.discard(resident)
                events.append(self._event(resident, observation.t, EventAction.CLEAR, {}))
            if out is not None:
                duration = observation.mono - out[0]
                settings = self.settings_for(resident)
                if 0 < duration <= settings.learn_max_s and not self.presence.deaf_during(
                    out[0], observation.mono
                ):
                    durations = self.durations(resident)
                    durations.append(round(duration, 1))
                    del durations[: -settings.history]
                    self.store.put(f"{self.name}/{resident}", list(durations))
            self._in_bed[resident] = True
            return events
        if self._in_bed.pop(resident, False):
            out = (observation.mono, observation.t)
            if self._is_night(resident, observation.wall):
                self._out_since[resident] = out
            else:
                self._out_by_day[resident] = out
        return events

    def on_tick(self) -> list[Event]:
        now = self.clock.monotonic()
        events: list[Event] = []
        for resident, (since, t) in list(self._out_by_day.items()):
            if self._is_night(resident, self.wall_of(since)):  # the wall clock has stepped
                del self._out_by_day[resident]
                self._out_since[resident] = (since, t)
        for resident, (since, _t) in list(self._out_since.items()):
            settings = self.settings_for(resident)
            if resident in self._raised or not settings.enabled:
                continue
            if not self._is_night(resident, self.clock.wall()):
                del self._out_since[resident]  # morning came: the person is up
                continue
            threshold = self.threshold_s(resident)
            due = self._due(resident, since, threshold)
            if now < due:
                continue
            self._raised.add(resident)
            details = {"out_s": round(now - since), "threshold_s": round(threshold)}
            events.append(self._event(resident, self.wall_of(due), EventAction.RAISE, details))
        return events

    def next_deadline(self) -> float | None:
        due = [
            self._due(r, since, self.threshold_s(r))
            for r, (since, _t) in self._out_since.items()
            if r not in self._raised
        ]
        return min(due) if due else None

    def _due(self, resident: str, since: float, threshold: float) -> float:
        """When the excursion alarms. With a bed sensor: ``threshold`` after getting out. With
        only a bedroom motion sensor, "out of bed" is a guess (a night in the armchair looks
        the same), so a person moving about elsewhere is alive and well: the alarm also waits
        for ``threshold`` of silence."""
        if self._has_bed_sensor(resident):
            return since + threshold
        last = self.presence.resident(resident).last_sign_mono
        return max(since, last if last is not None else since) + threshold

    def _event(
        self, resident: str, t: float, action: EventAction, details: Mapping[str, object]
    ) -> Event:
        return Event(
            type="bed_exit_no_return",
            resident=resident,
            t=t,
            severity=Severity.parse(self.settings_for(resident).severity),
            action=action,
            details=details,
        )
