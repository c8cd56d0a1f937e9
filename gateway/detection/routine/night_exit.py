"""``night_exit``: an exit door opened in the resident's night hours (``Resident.night_start`` to
``night_end``, local) and no sign of the person inside within ``return_s``. For a resident
flagged ``wander_risk`` the alert is raised at once, when the door opens. Cleared by the next
sign of life inside (the person came back, or never left)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore
from gateway.detection.routine.localtime import in_window, parse_hhmm
from gateway.detection.routine.presence import EXIT, Observation, Presence
from gateway.detection.routine.shell import RoutineDetector
from gateway.model import Alert, Event, EventAction, Severity


@dataclass(frozen=True)
class NightExitSettings:
    enabled: bool = True
    return_s: float = 900.0
    severity: str = "high"
    wander_severity: str = "critical"
    tz: str | None = None


@dataclass
class _Pending:
    exit_mono: float
    t: float
    device: str
    raised: bool = False


class NightExitDetector(RoutineDetector[NightExitSettings]):
    name = "night_exit"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: NightExitSettings | None = None,
        store: LearnedStore | None = None,
        presence: Presence | None = None,
    ) -> None:
        super().__init__(clock, home, settings or NightExitSettings(), store, presence)
        self._pending: dict[str, _Pending] = {}

    def mark_raised(self, alert: Alert) -> None:
        # Cleared by the next sign inside (the live picture starts with no exit open).
        now = self.clock.monotonic()
        self._pending[alert.resident] = _Pending(now, alert.t, alert.device or "", raised=True)

    def observe(self, observation: Observation) -> list[Event]:
        resident = observation.resident
        state = self.presence.resident(resident)
        pending = self._pending.get(resident)
        if observation.sign.kind != EXIT:
            if (
                pending is not None
                and state.exit_mono is None
                and not observation.bed_state_only
                # coming home at night: a hallway sign just after the door, then nothing, is
                # a fall on coming in as much as a step back out; only a sign after it says in
                and not observation.let_in
            ):
                del self._pending[resident]  # a sign inside: back, or never left
                if pending.raised:
                    return [self._event(resident, observation.t, EventAction.CLEAR, None, {})]
            return []
        if pending is not None or not self._watched(resident, observation.wall):
            return []
        pending = _Pending(observation.mono, observation.t, observation.device.id)
        self._pending[resident] = pending
        if self.home.residents[resident].wander_risk:
            pending.raised = True
            details = {"wander_risk": True, "after_s": 0}
            return [self._event(resident, observation.t, EventAction.RAISE, pending, details)]
        return []

    def restored(self, resident: str) -> None:
        """An exit at night that the picture taken back still holds open (no sign inside
        since) is watched again: a restart between the door and ``return_s`` raised nothing.
        An alert the previous run raised comes back through :meth:`resume` instead."""
        self._judge_again(resident)

    def _judge_again(self, resident: str) -> None:
        """An exit door's opening is judged by the wall clock now, which may not be what it
        said at the door: a Pi booted on fake-hwclock's stale time and NTP set it since. An
        exit still open (no sign inside since) that opened in the night is watched; one
        watched but not yet raised that opened in the day is not."""
        state = self.presence.resident(resident)
        pending = self._pending.get(resident)
        if pending is not None:
            if not pending.raised and not self._watched(resident, self.wall_of(pending.exit_mono)):
                del self._pending[resident]
        elif state.exit_mono is not None and self._watched(resident, self.wall_of(state.exit_mono)):
            device = state.exit_device or ""
            self._pending[resident] = _Pending(
                state.exit_mono, self.wall_of(state.exit_mono), device
            )

    def _watched(self, resident: str, wall: float) -> bool:
        """Whether an exit door opening at ``wall`` is one to watch (in the night hours)."""
        local = self.local_time(resident)
        person = self.home.residents.get(resident)
        if not self.settings_for(resident).enabled or person is None or not local.plausible(wall):
            return False
        minute = local.minute_of_day(wall)
        return in_window(minute, parse_hhmm(person.night_start), parse_hhmm(person.night_end))

    def on_tick(self) -> list[Event]:
        now = self.clock.monotonic()
        events: list[Event] = []
        for resident in list(self.presence.residents):
            self._judge_again(resident)
        for resident, pending in self._pending.items():
            if pending.raised:
                continue
            wait_s = self._wait_s(resident)
            if now < pending.exit_mono + wait_s:
                continue
            pending.raised = True
            t = pending.t + wait_s
            details = {"wander_risk": wait_s == 0.0, "after_s": round(wait_s)}
            events.append(self._event(resident, t, EventAction.RAISE, pending, details))
        return events

    def next_deadline(self) -> float | None:
        due = [p.exit_mono + self._wait_s(r) for r, p in self._pending.items() if not p.raised]
        return min(due) if due else None

    def _wait_s(self, resident: str) -> float:
        """How long after the door a watched exit not raised at the door is raised: at once
        for a resident at risk of wandering (an exit only found to be at night once NTP set
        the clock, or after a restart), else ``return_s``."""
        person = self.home.residents.get(resident)
        return (
            0.0
            if person is not None and person.wander_risk
            else self.settings_for(resident).return_s
        )

    def _event(
        self,
        resident: str,
        t: float,
        action: EventAction,
        pending: _Pending | None,
        details: Mapping[str, object],
    ) -> Event:
        person = self.home.residents.get(resident)
        settings = self.settings_for(resident)
        wander = person is not None and person.wander_risk
        severity = settings.wander_severity if wander else settings.severity
        return Event(
            type="night_exit",
            resident=resident,
            t=t,
            severity=Severity.parse(severity),
            action=action,
            device=pending.device if pending is not None else None,
            details=details,
        )
