"""``not_up``: the person is home but shows no sign of being up (a sign outside the bedroom and
bathroom, or any sign 20 min or more after the bed sensor said they got out of bed) by their
learned wake-up time plus a margin, and the home has been silent for at least ``min_quiet_s``.
Off for a resident whose devices cannot say "up" at all (``can_tell_up``: a wristband alone).

A person still moving about the bedroom after the deadline is alive and lying in, not silent:
the alarm waits until they have also been quiet for ``min_quiet_s`` (checked until the end of
the local day; being up, away or an ``inactivity`` alert ends the watch). The morning is only
judged when the gateway saw the resident before ``wake_window_start`` (a first reading at noon
says nothing about whether they got up).

Each morning the first "up" sign after ``wake_window_start`` (local) is the day's wake-up time,
remembered for ``history_days`` unless the person was coming home from away or the night was a
data gap (quiet longer than ``max_night_s``). The deadline is the ``quantile`` of recent wake-ups
plus ``margin_s`` (``weekend_extra_s`` more on Saturdays and Sundays), within
[``earliest_deadline``, ``latest_deadline``]; ``default_deadline`` until ``min_learned_days``
mornings are known. The deadline is a local time of day (zoneinfo), so a daylight-saving change
moves it with the person; whether the person was up is judged on the monotonic clock, so a wall
clock jump cannot invent or hide a morning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore
from gateway.detection.routine.localtime import parse_hhmm
from gateway.detection.routine.maths import wake_deadline_minute
from gateway.detection.routine.presence import Observation, Presence
from gateway.detection.routine.shell import RoutineDetector
from gateway.model import Alert, Event, EventAction, Severity
from gateway.schema import TIME_OF_DAY


@dataclass(frozen=True)
class NotUpSettings:
    enabled: bool = True
    wake_window_start: str = field(default="04:00", metadata=TIME_OF_DAY)
    earliest_deadline: str = field(default="06:30", metadata=TIME_OF_DAY)
    latest_deadline: str = field(default="13:00", metadata=TIME_OF_DAY)
    default_deadline: str = field(default="10:30", metadata=TIME_OF_DAY)
    quantile: float = 0.9
    margin_s: float = 7200.0
    weekend_extra_s: float = 1800.0
    history_days: int = 30
    min_learned_days: int = 7
    max_night_s: float = 16 * 3600.0
    min_quiet_s: float = 5400.0  # also silent this long: not just lying in, moving about
    severity: str = "high"
    tz: str | None = None


class NotUpDetector(RoutineDetector[NotUpSettings]):
    name = "not_up"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: NotUpSettings | None = None,
        store: LearnedStore | None = None,
        presence: Presence | None = None,
    ) -> None:
        super().__init__(clock, home, settings or NotUpSettings(), store, presence)
        self._wakes: dict[str, dict[int, float]] = {}  # resident → {local day: wake minute}
        # resident → when the last morning judged began (its wake window, monotonic): a step of
        # the wall clock makes the morning it reads another one (a clock read a day ahead had
        # tomorrow judged tonight, and tomorrow went unwatched once NTP set it back)
        self._done: dict[str, float] = {}
        self._raised: dict[str, bool] = {}
        self._up_day: dict[str, int] = {}  # resident → local day of the last up sign seen
        self._deadline_cache: dict[str, tuple[int, float]] = {}

    def wakes(self, resident: str) -> dict[int, float]:
        found = self._wakes.get(resident)
        if found is None:
            stored = self.store.get(f"{self.name}/{resident}") or {}
            found = {int(day): float(minute) for day, minute in stored.items()}
            self._wakes[resident] = found
        return found

    def deadline_minute(self, resident: str, day: int) -> float:
        cached = self._deadline_cache.get(resident)
        if cached is not None and cached[0] == day:
            return cached[1]
        value = self._deadline_minute(resident, day)
        self._deadline_cache[resident] = (day, value)
        return value

    def _deadline_minute(self, resident: str, day: int) -> float:
        settings = self.settings_for(resident)
        local = self.local_time(resident)
        wakes = self.wakes(resident)
        recent = [m for d, m in wakes.items() if day - settings.history_days <= d < day]
        if len(recent) < settings.min_learned_days:
            deadline = parse_hhmm(settings.default_deadline)
        else:
            deadline = wake_deadline_minute(
                np.asarray(recent, dtype=float),
                settings.quantile,
                settings.margin_s / 60.0,
                parse_hhmm(settings.earliest_deadline),
                parse_hhmm(settings.latest_deadline),
            )
        if local.weekday(day) >= 5:
            deadline = min(
                deadline + settings.weekend_extra_s / 60.0, parse_hhmm(settings.latest_deadline)
            )
        return deadline

    def mark_raised(self, alert: Alert) -> None:
        self._raised[alert.resident] = True  # cleared once the person is up
        self.presence.mark_silence_alerted(alert.resident)  # inactivity: not again for it

    def observe(self, observation: Observation) -> list[Event]:
        if not observation.up:
            return []
        resident = observation.resident
        events: list[Event] = []
        if self._raised.pop(resident, False):
            events.append(self._event(resident, observation.t, EventAction.CLEAR, {}))
        settings = self.settings_for(resident)
        local = self.local_time(resident)
        if not local.plausible(observation.wall):
            return events
        day = local.day(observation.wall)
        wakes = self.wakes(resident)
        minute = local.minute_of_day(observation.wall)
        if minute < parse_hhmm(settings.wake_window_start) or self._up_day.get(resident) == day:
            return events
        self._up_day[resident] = day  # only the first up sign of a morning is a wake-up
        if minute >= parse_hhmm(settings.latest_deadline) or day in wakes:
            return events
        quiet = observation.ended
        wake_like = not observation.returned and observation.sign.kind != "exit"
        if quiet is not None and (quiet.away or quiet.duration_s > settings.max_night_s):
            wake_like = False  # not a night: away, or a data gap
        window_mono = observation.mono - (minute - parse_hhmm(settings.wake_window_start)) * 60.0
        if self.presence.deaf_during(window_mono, observation.mono):
            wake_like = False  # the gateway was deaf this morning: the real wake-up is unknown
        if wake_like:
            wakes[day] = minute
            for old in [d for d in wakes if d <= day - settings.history_days]:
                del wakes[old]
            self._deadline_cache.pop(resident, None)
            self.store.put(f"{self.name}/{resident}", {str(d): m for d, m in wakes.items()})
        return events

    def _morning(self, resident: str, now_mono: float, now_wall: float) -> tuple[int, float] | None:
        """(local day, monotonic time the alarm is due) for a morning still being watched, or
        None when today's morning needs no more checks."""
        settings = self.settings_for(resident)
        local = self.local_time(resident)
        if not settings.enabled or not local.plausible(now_wall):
            return None
        if not self.presence.resident(resident).can_tell_up:
            return None  # nothing in this home can say the person got up
        day = local.day(now_wall)
        done = self._done.get(resident)
        if done is not None and self.same_instant(done, self._window_mono(resident, day)):
            return None
        deadline_mono = now_mono + (local.at(day, self.deadline_minute(resident, day)) - now_wall)
        state = self.presence.resident(resident)
        if state.last_sign_mono is None:
            return None
        return day, max(deadline_mono, state.last_sign_mono + settings.min_quiet_s)

    def _window_mono(self, resident: str, day: int) -> float:
        """Monotonic time at which the wake window of local ``day`` began, on the clock now."""
        start = parse_hhmm(self.settings_for(resident).wake_window_start)
        offset = self.clock.wall() - self.clock.monotonic()
        return self.local_time(resident).at(day, start) - offset

    def on_tick(self) -> list[Event]:
        now_mono = self.clock.monotonic()
        now_wall = self.clock.wall()
        events: list[Event] = []
        for resident, state in self.presence.residents.items():
            morning = self._morning(resident, now_mono, now_wall)
            if morning is None:
                continue
            day, due_mono = morning
            deadline_wall = self.local_time(resident).at(day, self.deadline_minute(resident, day))
            if now_wall < deadline_wall:
                continue
            window_mono = self._window_mono(resident, day)
            watched = state.first_sign_mono is not None and state.first_sign_mono <= window_mono
            up = state.last_up_mono is not None and state.last_up_mono >= window_mono
            # a morning that began before this start-up was watched only if the picture was
            # taken back from before it (the restart did not blind the check)
            unseen = window_mono < self.started_mono and state.restored_at_mono is None
            if not watched or unseen or up or resident in self._raised:
                self._done[resident] = window_mono  # nothing to judge, or it is judged
                continue
            if state.away(now_mono, self.presence.leave_grace_s) or state.silence_alerted():
                self._done[resident] = window_mono
                continue
            if now_mono < due_mono:
                continue  # moving about in the bedroom: wait until silent
            self._done[resident] = window_mono
            state.mark_silence_alerted()
            self._raised[resident] = True
            deadline = round(self.deadline_minute(resident, day))
            details: dict[str, object] = {"deadline_min": deadline}
            silent_since = state.last_sign_mono
            if silent_since is not None and self.presence.deaf_during(silent_since, now_mono):
                details["gateway_deaf"] = True
            events.append(self._event(resident, self.wall_of(due_mono), EventAction.RAISE, details))
        return events

    def next_deadline(self) -> float | None:
        now_mono = self.clock.monotonic()
        now_wall = self.clock.wall()
        soonest: float | None = None
        for resident in self.presence.residents:
            local = self.local_time(resident)
            if not local.plausible(now_wall):
                continue
            morning = self._morning(resident, now_mono, now_wall)
            if morning is not None:
                due_mono = morning[1]
            else:
                day = local.day(now_wall) + 1
                due = local.at(day, self.deadline_minute(resident, day))
                due_mono = now_mono + max(0.0, due - now_wall)
            soonest = due_mono if soonest is None else min(soonest, due_mono)
        return soonest

    def _event(
        self, resident: str, t: float, action: EventAction, details: Mapping[str, object]
    ) -> Event:
        return Event(
            type="not_up",
            resident=resident,
            t=t,
            severity=Severity.parse(self.settings_for(resident).severity),
            action=action,
            details=details,
        )
