"""``long_bathroom``: in the bathroom much longer than usual for this person at this time of day.

A stay runs from the first sign in the bathroom to the first sign anywhere else (motion in
another room, any door, the bed). Completed stays are remembered for ``history_days`` with their
local start time, the newest ``max_history`` at most (a bathroom and a hallway sensor that
set each other off make a "stay" every few seconds, and each stay copies the history into
the learned state); a stay longer than ``learn_cap_s`` (a night's sleep after a last bathroom
visit in a home whose bedroom sensor rarely fires, a data outage) is learned as
``learn_cap_s``.
The threshold for a stay is the ``quantile`` of the stays that began near the same time of day
(Gaussian kernel of ``bandwidth_min``; :func:`maths.usual_stay_s`) plus ``buffer_s``, at least
``floor_s``. When that exceeds ``ceiling_s`` this person's bathroom visits at this time are
routinely followed by hours without any sign elsewhere, so the bathroom sensor cannot tell a
long stay from leaving the bathroom unseen: no ``long_bathroom`` alarm for that stay, and the
silence is left to ``inactivity`` (daytime) and ``not_up`` (night). ``default_s`` applies until
``min_learned`` stays are known. Cleared by a sign of life outside the bathroom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore
from gateway.detection.routine.maths import usual_stay_s
from gateway.detection.routine.presence import Observation, Presence
from gateway.detection.routine.shell import RoutineDetector
from gateway.model import Alert, Event, EventAction, Room, Severity


@dataclass(frozen=True)
class LongBathroomSettings:
    enabled: bool = True
    default_s: float = 3600.0
    quantile: float = 0.99
    bandwidth_min: float = 90.0
    buffer_s: float = 3600.0
    floor_s: float = 3600.0
    ceiling_s: float = 3 * 3600.0
    learn_cap_s: float = 6 * 3600.0
    history_days: int = 60
    max_history: int = 10_000  # stays kept at most, the newest (~170 a day for 60 days)
    min_learned: int = 20
    severity: str = "high"
    tz: str | None = None


class StayHistory:
    """One resident's bathroom stays (numpy columns, JSON in the store)."""

    def __init__(self, data: object = None) -> None:
        # An older store kept a bare list of durations without start times: start afresh.
        found = data if isinstance(data, dict) else {}
        self.start_min = np.asarray(found.get("start_min", []), dtype=float)
        self.duration_s = np.asarray(found.get("duration_s", []), dtype=float)
        self.day = np.asarray(found.get("day", []), dtype=np.int64)
        if not self.start_min.size == self.duration_s.size == self.day.size:
            self.start_min, self.duration_s = np.zeros(0), np.zeros(0)
            self.day = np.zeros(0, dtype=np.int64)

    def add(
        self, start_min: float, duration_s: float, day: int, history_days: int, max_history: int
    ) -> None:
        """One more stay; those of more than ``history_days`` ago, and the oldest beyond the
        newest ``max_history``, are forgotten."""
        keep = self.day > day - history_days
        days = np.append(self.day[keep], day)
        drop = max(0, days.size - max(0, max_history))
        self.start_min = np.append(self.start_min[keep], start_min)[drop:]
        self.duration_s = np.append(self.duration_s[keep], duration_s)[drop:]
        self.day = days[drop:]

    def to_json(self) -> dict:
        return {
            "start_min": self.start_min.round(2).tolist(),
            "duration_s": self.duration_s.round(0).tolist(),
            "day": self.day.tolist(),
        }


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
        self._stays: dict[str, StayHistory] = {}
        self._entered: dict[str, float] = {}  # resident → mono of the first bathroom sign
        # resident → (entered mono, its wall time then, s)
        self._threshold: dict[str, tuple[float, float, float | None]] = {}
        self._raised: set[str] = set()
        self._unknown_start: set[str] = set()  # stays under way at a restart: not learned

    def stays(self, resident: str) -> StayHistory:
        found = self._stays.get(resident)
        if found is None:
            found = StayHistory(self.store.get(f"{self.name}/{resident}"))
            self._stays[resident] = found
        return found

    def threshold_s(self, resident: str) -> float | None:
        """The alarm threshold of the resident's current stay (None: no alarm for this stay)."""
        entered = self._entered.get(resident)
        if entered is None:
            return None
        cached = self._threshold.get(resident)
        start_wall = self.wall_of(entered)
        # taken again after a step of the wall clock (NTP): its time of day was wrong
        if cached is not None and cached[0] == entered and self.same_instant(cached[1], start_wall):
            return cached[2]
        settings = self.settings_for(resident)
        stays = self.stays(resident)
        local = self.local_time(resident)
        value: float | None = settings.default_s
        if stays.duration_s.size >= settings.min_learned and local.plausible(start_wall):
            usual = usual_stay_s(
                stays.start_min,
                stays.duration_s,
                local.minute_of_day(start_wall),
                settings.bandwidth_min,
                settings.quantile,
            )
            if usual is not None:
                value = max(usual + settings.buffer_s, settings.floor_s)
                if value > settings.ceiling_s:
                    value = None
        self._threshold[resident] = (entered, start_wall, value)
        return value

    def mark_raised(self, alert: Alert) -> None:
        self._raised.add(alert.resident)  # cleared by a sign outside the bathroom

    def restored(self, resident: str) -> None:
        # In the bathroom when the gateway restarted (the picture taken back says so): the
        # stay is watched from the restart, so its alarm comes late by the time before it,
        # never early; how long it lasted is not known, so it is not learned.
        if self.presence.resident(resident).room is Room.BATHROOM and resident not in self._entered:
            self._entered[resident] = self.clock.monotonic()
            self._unknown_start.add(resident)

    def observe(self, observation: Observation) -> list[Event]:
        resident = observation.resident
        room = observation.sign.room
        if room is None or observation.bed_state_only:
            return []  # the bed's first report says nothing about leaving the bathroom
        if room is Room.BATHROOM and observation.sign.kind != "exit":
            self._entered.setdefault(resident, observation.mono)
            return []
        entered = self._entered.pop(resident, None)
        self._threshold.pop(resident, None)
        events: list[Event] = []
        if resident in self._raised:
            self._raised.discard(resident)
            events.append(self._event(resident, observation.t, EventAction.CLEAR, {}))
        if resident in self._unknown_start:
            self._unknown_start.discard(resident)
        elif entered is not None and not self.presence.deaf_during(entered, observation.mono):
            self._learn(resident, entered, observation.mono - entered)
        return events

    def _learn(self, resident: str, entered: float, stay_s: float) -> None:
        settings = self.settings_for(resident)
        local = self.local_time(resident)
        start_wall = self.wall_of(entered)
        if stay_s <= 0 or not local.plausible(start_wall):
            return
        stays = self.stays(resident)
        stays.add(
            local.minute_of_day(start_wall),
            min(stay_s, settings.learn_cap_s),
            local.day(start_wall),
            settings.history_days,
            settings.max_history,
        )
        self.store.put(f"{self.name}/{resident}", stays.to_json())

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
            if threshold is None or now < entered + threshold:
                continue
            self._raised.add(resident)
            details = {"stay_s": round(now - entered), "threshold_s": round(threshold)}
            events.append(
                self._event(resident, self.wall_of(entered + threshold), EventAction.RAISE, details)
            )
        return events

    def next_deadline(self) -> float | None:
        due = []
        for resident, entered in self._entered.items():
            if resident in self._raised:
                continue
            threshold = self.threshold_s(resident)
            if threshold is not None:
                due.append(entered + threshold)
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
