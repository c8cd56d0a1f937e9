"""``inactivity``: no sign of life at home for longer than is usual for this person, for a
quiet that started at this time of day in this room.

Method (see docs/DETECTION.md, "Silent emergencies"): every quiet period the person has had at
home (between two signs of life, not away) of at least ``learn_min_s`` is remembered with its
local start time, its start room and its length, for ``history_days``. When a new quiet starts,
its alarm threshold is the ``tail_probability`` point of this person's survival function of
quiet durations for quiets that started near this time of day (Gaussian kernel of
``bandwidth_min``) in this room (shrunk towards all rooms with ``room_prior_weight``
pseudo-quiets) after a similar level of activity (log(1 + signs of life in the
``activity_window_s`` before the quiet began), Gaussian kernel of ``activity_bandwidth``),
exponential beyond the ``body_quantile``
(:func:`maths.quiet_survival_threshold_s`), plus ``buffer_s``, within [``floor_s``,
``day_ceiling_s``] (``ceiling_s`` where nothing can say "up"). ``model="longest"`` keeps the
earlier rule: the longest similar quiet within ``window_min`` × (1 + ``margin``) + ``buffer_s``.
Unlike Cuddihy 2007 or Floeck & Litz 2009 the threshold is indexed by when and where the quiet
*began*, not by the current hour, and quiet periods longer than ``learn_max_s`` (absences
without a door event, data outages) and away periods are never learned, so a multi-day outage
cannot teach a threshold of days.

Until ``min_learned_days`` of the person's days are known, a safe default applies: a quiet that
starts in the daytime alarms after ``default_day_s``, or later when this person has already had
a longer quiet starting near then (the learned threshold, if larger); one that starts in the
evening or night (from ``night_start`` less ``evening_lead_s``) is left to ``not_up`` the next
morning.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore
from gateway.detection.routine.localtime import in_window, parse_hhmm
from gateway.detection.routine.maths import (
    early_bedtime,
    expected_signs,
    quiet_survival_threshold_s,
    quiet_threshold_s,
    usual_longest_quiet,
)
from gateway.detection.routine.presence import Observation, Presence, ResidentPresence
from gateway.detection.routine.shell import RoutineDetector
from gateway.model import Alert, Event, EventAction, Room, Severity
from gateway.schema import TIME_OF_DAY

ROOM_CODES = {Room.BEDROOM: 1, Room.BATHROOM: 2}  # every other room (or unknown) is 0
# Signs of life counted in the activity window at most (its count saturates there): ~7 a
# second for the 2 h window, above a 238 Hz band's notifications (~6 a second). A device
# flooding readings kept one entry per reading for the whole window: 32 B each, hundreds of
# MB at the rate a Pi can take them in for two hours.
MAX_RECENT_SIGNS = 50_000


@dataclass(frozen=True)
class InactivitySettings:
    enabled: bool = True
    # "survival": the tail point of this person's quiet durations by start time and room;
    # "longest": the longest similar quiet × (1 + margin) + buffer (the earlier rule).
    model: str = field(default="survival", metadata={"choices": ("survival", "longest")})
    # alarm once a quiet outlasts all but this share of similar ones
    tail_probability: float = 0.015
    body_quantile: float = 0.5  # beyond this quantile the survival tail is exponential
    bandwidth_min: float = 45.0  # start-time kernel: neighbouring times of day pool
    room_prior_weight: float = 5.0  # pseudo-quiets of the all-rooms model behind a room's own
    window_min: float = 60.0  # "longest": quiets starting within ± this many minutes are similar
    min_same_room: int = 5  # "longest": fewer from the same room: compare with all rooms
    margin: float = 0.2  # "longest" only
    buffer_s: float = 1800.0
    floor_s: float = 5400.0  # never alarm on less than 1.5 h of quiet
    # nor wait longer than this, where nights are left to not_up (room sensors or a bed: what
    # is judged here starts in the day or evening): a silence that long is always raised
    day_ceiling_s: float = 10 * 3600.0
    # nor longer than this where nothing can say "up" (a wristband alone: its nights are
    # judged here too, and a band taken off for a long night must not alarm every morning)
    ceiling_s: float = 14 * 3600.0
    learn_min_s: float = 900.0
    learn_max_s: float = 16 * 3600.0
    history_days: int = 60
    min_learned_days: int = 14
    default_day_s: float = 4 * 3600.0
    evening_lead_s: float = 2 * 3600.0
    # Once the person has been up (kitchen, lounge, out...) from this time on (not_up's
    # wake_window_start), the night is over: a quiet after that, before night_end, is judged
    # here (not_up has closed that morning), not left to the next morning as sleep.
    up_from: str = field(default="04:00", metadata=TIME_OF_DAY)
    check_after_s: float = 900.0  # compute the threshold once a quiet is this old
    # Activity before the quiet: log(1 + signs of life in the activity_window_s before it
    # began); past quiets are weighted by how alike theirs was (Gaussian kernel of this width,
    # in log units). None: off (time of day and room only).
    activity_bandwidth: float | None = 1.5
    activity_window_s: float = 2 * 3600.0
    # Early nights: a quiet that starts after this quantile of the person's learned bedtimes
    # (start of a quiet ≥ sleep_min_s from bedtime_from), in a room their nights usually start
    # in, is sleep too (left to not_up). None: off.
    bedtime_quantile: float | None = None
    bedtime_from: str = field(default="17:00", metadata=TIME_OF_DAY)
    sleep_min_s: float = 4 * 3600.0
    bedtime_room_share: float = 0.25
    bedtime_min_nights: int = 7
    # Data gaps: a quiet of at least gap_min_s during which this person's usual hourly rate of
    # signs (learned over gap_min_days) would have given more than this many signs is a sensor
    # or hub outage, not a normal quiet: it is not learned. None: off.
    gap_expected_signs: float | None = None
    gap_min_s: float = 4 * 3600.0
    gap_min_days: int = 7
    severity: str = "high"
    tz: str | None = None


class QuietHistory:
    """Rolling memory of one resident's quiet periods (numpy columns, JSON in the store)."""

    def __init__(self, data: dict | None = None) -> None:
        data = data or {}
        self.start_min = np.asarray(data.get("start_min", []), dtype=float)
        self.duration_s = np.asarray(data.get("duration_s", []), dtype=float)
        self.room = np.asarray(data.get("room", []), dtype=np.int64)
        self.day = np.asarray(data.get("day", []), dtype=np.int64)
        activity = np.asarray(data.get("activity", []), dtype=float)
        # State written before activity was learned: unknown (NaN), which weighs as neutral.
        self.activity = (
            activity if activity.size == self.day.size else np.full(self.day.size, np.nan)
        )
        self.days: set[int] = {int(d) for d in data.get("days", [])}
        self.hour_counts: dict[int, list[int]] = {
            int(d): [int(x) for x in counts]
            for d, counts in dict(data.get("hour_counts", {})).items()
            if isinstance(counts, list) and len(counts) == 24
        }

    def count_sign(self, day: int, hour: int) -> None:
        self.hour_counts.setdefault(day, [0] * 24)[hour] += 1

    def hourly_rate(self) -> tuple[np.ndarray, int]:
        """Mean signs per local hour of day over the counted days, and how many days."""
        if not self.hour_counts:
            return np.zeros(24), 0
        counts = np.array(list(self.hour_counts.values()), dtype=float)
        return counts.mean(axis=0), counts.shape[0]

    def add(
        self, start_min: float, duration_s: float, room: int, day: int, activity: float = np.nan
    ) -> None:
        self.start_min = np.append(self.start_min, start_min)
        self.duration_s = np.append(self.duration_s, duration_s)
        self.room = np.append(self.room, room)
        self.day = np.append(self.day, day)
        self.activity = np.append(self.activity, activity)

    def prune(self, today: int, history_days: int) -> None:
        keep = self.day > today - history_days
        if not keep.all():
            self.start_min = self.start_min[keep]
            self.duration_s = self.duration_s[keep]
            self.room = self.room[keep]
            self.day = self.day[keep]
            self.activity = self.activity[keep]
        self.days = {d for d in self.days if d > today - history_days}
        self.hour_counts = {d: c for d, c in self.hour_counts.items() if d > today - history_days}

    def to_json(self) -> dict:
        return {
            "start_min": self.start_min.round(2).tolist(),
            "duration_s": self.duration_s.round(0).tolist(),
            "room": self.room.tolist(),
            "day": self.day.tolist(),
            "activity": _finite_or_none(self.activity),
            "days": sorted(self.days),
            "hour_counts": {str(d): c for d, c in self.hour_counts.items()},
        }


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    """Rounded values with NaN as None (JSON has no NaN)."""
    out = np.round(values, 3).astype(object)
    out[~np.isfinite(values)] = None
    return list(out.tolist())


class InactivityDetector(RoutineDetector[InactivitySettings]):
    name = "inactivity"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: InactivitySettings | None = None,
        store: LearnedStore | None = None,
        presence: Presence | None = None,
    ) -> None:
        super().__init__(clock, home, settings or InactivitySettings(), store, presence)
        self._history: dict[str, QuietHistory] = {}
        # resident → (quiet start mono, its wall time then, s; -1: none)
        self._threshold: dict[str, tuple[float, float, float]] = {}
        self._raised: dict[str, float] = {}  # resident → quiet start mono of the open alert
        # resident → sign monos in the activity window (MAX_RECENT_SIGNS, the newest, at most)
        self._recent: dict[str, deque[float]] = {}
        self._activity: dict[str, tuple[float, float]] = {}  # resident → (sign mono, activity)
        # resident → monotonic time of their last up-sign (its wall time read when needed: the
        # wall clock may have stepped since)
        self._last_up_mono: dict[str, float] = {}

    def history(self, resident: str) -> QuietHistory:
        found = self._history.get(resident)
        if found is None:
            found = QuietHistory(self.store.get(f"{self.name}/{resident}"))
            self._history[resident] = found
        return found

    def activity_at(self, resident: str, sign_mono: float) -> float:
        """log(1 + signs of life in the activity window up to this sign), NaN when unknown
        (the sign was not the last one observed, e.g. after a restart)."""
        found = self._activity.get(resident)
        return found[1] if found is not None and found[0] == sign_mono else float("nan")

    def _note_activity(self, resident: str, mono: float, window_s: float) -> None:
        """Remember the activity before a quiet that starts at this sign."""
        recent = self._recent.setdefault(resident, deque(maxlen=MAX_RECENT_SIGNS))
        recent.append(mono)
        while recent and recent[0] <= mono - window_s:
            recent.popleft()
        self._activity[resident] = (mono, math.log1p(len(recent)))

    def mark_raised(self, alert: Alert) -> None:
        self._raised[alert.resident] = self.clock.monotonic()  # cleared by the next sign
        self.presence.mark_silence_alerted(alert.resident)  # not_up: not again for it

    def restored(self, resident: str) -> None:
        # Up at 05:15, restart at 05:30: without the up-sign taken back, the silence since the
        # restart was sleep here, and not_up had seen that morning's up-sign (next day's check).
        last_up = self.presence.resident(resident).last_up_mono
        if last_up is not None and resident not in self._last_up_mono:
            self._last_up_mono[resident] = last_up

    def observe(self, observation: Observation) -> list[Event]:
        resident = observation.resident
        events: list[Event] = []
        if resident in self._raised and not observation.bed_state_only:
            del self._raised[resident]
            events.append(self._event(resident, observation.t, EventAction.CLEAR, {}))
        self._threshold.pop(resident, None)
        settings = self.settings_for(resident)
        quiet = observation.ended
        previous = self._activity.get(resident)
        ended_activity = (
            previous[1]
            if quiet is not None and previous is not None and previous[0] == quiet.start_mono
            else float("nan")
        )
        self._note_activity(resident, observation.mono, settings.activity_window_s)
        if observation.up:
            self._last_up_mono[resident] = observation.mono
        local = self.local_time(resident)
        if not local.plausible(observation.wall):
            return events
        history = self.history(resident)
        day = local.day(observation.wall)
        changed = False
        if day not in history.days:
            history.days.add(day)
            history.prune(day, settings.history_days)
            changed = True
        if settings.gap_expected_signs is not None:
            history.count_sign(day, int(local.minute_of_day(observation.wall) // 60))
        if (
            quiet is not None
            and not quiet.away
            and not quiet.deaf
            and settings.learn_min_s <= quiet.duration_s <= settings.learn_max_s
            and local.plausible(quiet.start_wall)
            and not self._data_gap(
                history, settings, local.minute_of_day(quiet.start_wall), quiet.duration_s
            )
        ):
            history.add(
                local.minute_of_day(quiet.start_wall),
                quiet.duration_s,
                ROOM_CODES.get(quiet.room, 0) if quiet.room is not None else 0,
                local.day(quiet.start_wall),
                ended_activity,
            )
            changed = True
        if changed:
            self.store.put(f"{self.name}/{resident}", history.to_json())
        return events

    def threshold_s(self, resident: str, state: ResidentPresence) -> float | None:
        """The alarm threshold for the resident's current quiet (None: leave it to not_up)."""
        assert state.last_sign_mono is not None
        cached = self._threshold.get(resident)
        start_wall = self.wall_of(state.last_sign_mono)
        # One taken before the wall clock stepped (a Pi booted in 1970, or on fake-hwclock's
        # time hours behind, that NTP has set since) is taken again: its time of day was
        # wrong, a night's sleep alarmed after 4 h and a morning collapse was taken for sleep.
        if (
            cached is not None
            and cached[0] == state.last_sign_mono
            and self.same_instant(cached[1], start_wall)
        ):
            return cached[2]
        value = self.quiet_threshold_s(
            resident, start_wall, state.room, self.activity_at(resident, state.last_sign_mono)
        )
        self._threshold[resident] = (
            state.last_sign_mono,
            start_wall,
            value if value is not None else -1.0,
        )
        return value

    def quiet_threshold_s(
        self, resident: str, start_wall: float, room: Room | None, activity: float
    ) -> float | None:
        """How long a quiet that began at ``start_wall`` in ``room``, after ``activity`` (see
        :meth:`activity_at`), may last for this resident before it alarms, from what is learned
        now (None: it is sleep, left to not_up)."""
        settings = self.settings_for(resident)
        if not self.local_time(resident).plausible(start_wall):
            return settings.default_day_s
        return self._learned_threshold(resident, settings, start_wall, room, activity)

    def _learned_threshold(
        self,
        resident: str,
        settings: InactivitySettings,
        start_wall: float,
        room: Room | None,
        activity: float = float("nan"),
    ) -> float | None:
        local = self.local_time(resident)
        history = self.history(resident)
        start_min = local.minute_of_day(start_wall)
        person = self.home.residents.get(resident)
        night_start = parse_hhmm(person.night_start) if person else 23 * 60.0
        morning = parse_hhmm(person.night_end) if person else 6 * 60.0
        evening = (night_start - settings.evening_lead_s / 60.0) % 1440.0
        night = in_window(start_min, evening, morning) and not self._up_before(
            resident, settings, start_wall, start_min, morning
        )
        can_tell_up = self.presence.resident(resident).can_tell_up
        if night and can_tell_up:
            return None  # a quiet that starts at bedtime is sleep: not_up watches the morning
        # Where nothing can say "up" (a wristband alone) not_up is off and no morning check
        # follows: the night is judged here, while learning never before the ceiling, and a
        # band taken off in the evening may be off all night: no shorter daytime ceiling.
        ceiling_s = settings.ceiling_s
        if can_tell_up:
            ceiling_s = min(settings.day_ceiling_s, ceiling_s)
        room_code = ROOM_CODES.get(room, 0) if room is not None else 0
        if settings.bedtime_quantile is not None and self._early_night(
            history, settings, start_min, room_code, morning
        ):
            return None
        longest = usual_longest_quiet(
            history.start_min,
            history.duration_s,
            history.room,
            start_min,
            room_code,
            settings.window_min,
            settings.min_same_room,
        )
        longest_rule = quiet_threshold_s(
            longest, settings.margin, settings.buffer_s, settings.floor_s, ceiling_s
        )
        if len(history.days) < settings.min_learned_days:
            # Still learning: the safe default, but never alarm on a quiet shorter than one this
            # person has already been seen to have, starting then and there.
            return max(longest_rule, ceiling_s if night else settings.default_day_s)
        if settings.model != "survival":
            return longest_rule
        tail = quiet_survival_threshold_s(
            history.start_min,
            history.duration_s,
            history.room,
            start_min,
            room_code,
            settings.bandwidth_min,
            settings.room_prior_weight,
            settings.tail_probability,
            settings.body_quantile,
            history.activity,
            activity if math.isfinite(activity) else None,
            settings.activity_bandwidth,
        )
        return quiet_threshold_s(tail, 0.0, settings.buffer_s, settings.floor_s, ceiling_s)

    @staticmethod
    def _data_gap(
        history: QuietHistory, settings: InactivitySettings, start_min: float, duration_s: float
    ) -> bool:
        if settings.gap_expected_signs is None or duration_s < settings.gap_min_s:
            return False
        rate, days = history.hourly_rate()
        if days < settings.gap_min_days:
            return False
        return expected_signs(rate, start_min, duration_s) > settings.gap_expected_signs

    @staticmethod
    def _early_night(
        history: QuietHistory,
        settings: InactivitySettings,
        start_min: float,
        room_code: int,
        morning: float,
    ) -> bool:
        assert settings.bedtime_quantile is not None
        since = parse_hhmm(settings.bedtime_from)
        if not in_window(start_min, since, morning):
            return False
        found = early_bedtime(
            history.start_min,
            history.duration_s,
            history.room,
            since,
            morning,
            settings.sleep_min_s,
            settings.bedtime_quantile,
            settings.bedtime_min_nights,
            settings.bedtime_room_share,
        )
        if found is None:
            return False
        bedtime, rooms = found
        return room_code in rooms and in_window(start_min, bedtime, morning)

    def _up_before(
        self,
        resident: str,
        settings: InactivitySettings,
        start_wall: float,
        start_min: float,
        morning: float,
    ) -> bool:
        """Whether a quiet starting at ``start_wall`` (``start_min`` local) before ``morning``
        (night_end) follows a sign of being up since ``up_from`` that morning."""
        up_from = parse_hhmm(settings.up_from)
        last_up_mono = self._last_up_mono.get(resident)
        if last_up_mono is None or not in_window(start_min, up_from, morning):
            return False
        last_up = self.wall_of(last_up_mono)
        return 0.0 <= start_wall - last_up <= ((start_min - up_from) % 1440.0) * 60.0

    def on_tick(self) -> list[Event]:
        now = self.clock.monotonic()
        events: list[Event] = []
        for resident, state in self.presence.residents.items():
            settings = self.settings_for(resident)
            if not settings.enabled or resident in self._raised:
                continue
            quiet = state.quiet_s(now)
            # Compared as instants, the way next_deadline computes them (no float drift).
            if quiet is None or now < state.last_sign_mono + settings.check_after_s:  # type: ignore[operator]
                continue
            if state.away(now, self.presence.leave_grace_s) or state.silence_alerted():
                continue
            threshold = self.threshold_s(resident, state)
            assert state.last_sign_mono is not None
            if threshold is None or threshold < 0 or now < state.last_sign_mono + threshold:
                continue
            state.mark_silence_alerted()
            self._raised[resident] = state.last_sign_mono
            crossed = self.wall_of(state.last_sign_mono + threshold)
            details: dict[str, object] = {"quiet_s": round(quiet), "threshold_s": round(threshold)}
            if state.room is not None:
                details["room"] = state.room.value
            if self.presence.deaf_during(state.last_sign_mono, now):
                details["gateway_deaf"] = True  # part of this silence the gateway could not hear
            events.append(self._event(resident, crossed, EventAction.RAISE, details))
        return events

    def next_deadline(self) -> float | None:
        now = self.clock.monotonic()
        soonest: float | None = None
        for resident, state in self.presence.residents.items():
            if state.last_sign_mono is None or resident in self._raised:
                continue
            settings = self.settings_for(resident)
            if not settings.enabled or state.silence_alerted():
                continue
            if state.away(now, self.presence.leave_grace_s):
                continue  # the next sign of life arrives as a reading
            due = state.last_sign_mono + settings.check_after_s
            if due <= now:
                cached = self._threshold.get(resident)
                if cached is None or cached[0] != state.last_sign_mono:
                    due = now
                elif cached[2] < 0:
                    continue
                else:
                    due = state.last_sign_mono + cached[2]
            soonest = due if soonest is None else min(soonest, due)
        return soonest

    def _event(
        self, resident: str, t: float, action: EventAction, details: Mapping[str, object]
    ) -> Event:
        return Event(
            type="inactivity",
            resident=resident,
            t=t,
            severity=Severity.parse(self.settings_for(resident).severity),
            action=action,
            details=details,
        )
