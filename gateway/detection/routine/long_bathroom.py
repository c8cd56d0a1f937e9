"""``long_bathroom``: in the bathroom much longer than usual.

A stay runs from the first sign in the bathroom to the first sign anywhere else. Completed
stays (up to ``learn_max_s``) are remembered, the last ``history`` of them; the threshold is
the longest of them times ``factor``, within [``floor_s``, ``ceiling_s``] (``default_s`` until
``min_learned`` stays are known). Cleared by a sign of life outside the bathroom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore
from gateway.detection.routine.presence import Observation, Presence
from gateway.detection.routine.shell import RoutineDetector
from gateway.model import Event, EventAction, Room, Severity


@dataclass(frozen=True)
class LongBathroomSettings:
    enabled: bool = True
    default_s: float = 3600.0
    factor: float = 1.5
    floor_s: float = 2700.0
    ceiling_s: float = 3 * 3600.0
    learn_max_s: float = 4 * 3600.0
    history: int = 200
    min_learned: int = 20
    severity: str = "high"
    tz: str | None = None


class LongBathroomDetector(RoutineDetector[LongBathroomSettings]):
    name = "long_bathroom"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: LongBathroomSettings | None = None,
        store: LearnedStore | None = None,
        presence: Presence | None = None,
    ) -> None:
        super().__init__(clock, home, settings or LongBathroomSettings(), store, presence)
        self._stays: dict[str, list[float]] = {}
        self._entered: dict[str, float] = {}  # resident → mono of the first bathroom sign
        self._raised: set[str] = set()

    def stays(self, resident: str) -> list[float]:
        found = self._stays.get(resident)
        if found is None:
            found = [float(x) for x in self.store.get(f"{self.name}/{resident}") or []]
            self._stays[resident] = found
        return found

    def threshold_s(self, resident: str) -> float:
        settings = self.settings_for(resident)
        stays = self.stays(resident)
        if len(stays) < settings.min_learned:
            return settings.default_s
        return min(max(max(stays) * settings.factor, settings.floor_s), settings.ceiling_s)

    def observe(self, observation: Observation) -> list[Event]:
        resident = observation.resident
        room = observation.sign.room
        if room is None:
            return []
        if room is Room.BATHROOM:
            self._entered.setdefault(resident, observation.mono)
            return []
        entered = self._entered.pop(resident, None)
        events: list[Event] = []
        if resident in self._raised:
            self._raised.discard(resident)
            events.append(self._event(resident, observation.t, EventAction.CLEAR, {}))
        if entered is not None:
            stay = observation.mono - entered
            settings = self.settings_for(resident)
            if 0 < stay <= settings.learn_max_s:
                stays = self.stays(resident)
                stays.append(round(stay, 1))
                del stays[: -settings.history]
                self.store.put(f"{self.name}/{resident}", list(stays))
        return events

    def on_tick(self) -> list[Event]:
        now = self.clock.monotonic()
        events: list[Event] = []
        for resident, entered in self._entered.items():
            settings = self.settings_for(resident)
            if resident in self._raised or not settings.enabled:
                continue
            state = self.presence.resident(resident)
            if state.away(now, self.presence.leave_grace_s):
                continue
            threshold = self.threshold_s(resident)
            if now < entered + threshold:
                continue
            self._raised.add(resident)
            details = {"stay_s": round(now - entered), "threshold_s": round(threshold)}
            events.append(
                self._event(resident, self.wall_of(entered + threshold), EventAction.RAISE, details)
            )
        return events

    def next_deadline(self) -> float | None:
        due = [
            entered + self.threshold_s(r)
            for r, entered in self._entered.items()
            if r not in self._raised
        ]
        return min(due) if due else None

    def _event(
        self, resident: str, t: float, action: EventAction, details: Mapping[str, object]
    ) -> Event:
        return Event(
            type="long_bathroom",
            resident=resident,
            t=t,
            severity=Severity.parse(self.settings_for(resident).severity),
            action=action,
            details=details,
        )
