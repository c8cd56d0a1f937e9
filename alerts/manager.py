"""The alert lifecycle: events in, alert changes out. Pure state, no I/O.

raise ──► open ──► acknowledged (staff) ──► resolved (staff, or the condition cleared)
            │  └─► escalated (nobody acknowledged in time, or the detector says it is worse)
            └────► cancelled (the resident withdrew it: a false fall, a mistaken press)

* De-duplication: a RAISE whose (resident, type, key) matches an open alert joins it (its
  ``count`` goes up) instead of opening a new one. For presses (``sos``, ``fall``) only within
  ``repeat_window_s`` of the previous one: a press ten minutes later is a new emergency.
* Escalation: a critical or high alert nobody acknowledged within its time is escalated (and
  re-sent); it keeps escalating at the same interval until someone acknowledges it. The timers
  run on the monotonic clock. One taken back after a restart goes on from when it was armed on
  the wall clock (``Alert.escalation_armed_wall``, saved with the alert): it escalates after
  what is left of its window, or as soon as a tick sees the wall clock past the window's end
  (NTP setting a boot clock that was behind), whichever comes first. Never later than a whole
  window from the restart: that is what it gets when the wall clock is behind the saved time
  or the alert was saved without one.
* Visit mode: while staff are on site, behaviour alerts of that resident are held back
  (counted); SOS, falls, vitals and safety alarms never are.
* Flapping: a maintenance alert (``device_offline``, ``battery_low``, ``tamper``,
  ``gateway_degraded``) that the gateway resolved and that comes back within its
  ``flap_hold_s`` is raised at once as a new alert (``details.flapping``), but that one is not
  resolved until its condition has stayed away for ``flap_hold_s``: a recurrence meanwhile
  keeps it open without a message (its ``count`` goes up). A band at the edge of range, an
  availability that comes and goes, a battery reading jittering around the threshold or a
  flapping Zigbee bridge no longer send staff a raised/resolved pair every few minutes. Never
  for SOS, falls, vitals, behaviour or safety alarms, and never delaying any raise.

Every change is returned as an :class:`AlertChange`; the runtime commits it to the outbox before
anything else happens to it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alerts.texts import render
from gateway.clock import EARLIEST_PLAUSIBLE_WALL, Clock
from gateway.model import (
    Alert,
    AlertState,
    Event,
    EventAction,
    Severity,
    is_number,
    stable_alert_id,
)

log = logging.getLogger(__name__)

# After this many unanswered re-sends the platform's own escalation (phone tree) takes over.
MAX_ESCALATIONS = 3
PRESS_TYPES = frozenset({"sos", "fall"})
BEHAVIOUR_TYPES = frozenset(
    {"inactivity", "not_up", "bed_exit_no_return", "night_exit", "long_bathroom"}
)
# Maintenance alerts whose resolution is held once they flap (module docstring), and for how
# long by default: an hour for what comes and goes within minutes; two days for a battery,
# whose voltage-derived percentage swings with the day's temperature.
DEFAULT_FLAP_HOLD_S: dict[str, float] = {
    "device_offline": 3600.0,
    "battery_low": 2 * 86400.0,
    "tamper": 3600.0,
    "gateway_degraded": 3600.0,
}


@dataclass(frozen=True, slots=True)
class AlertChange:
    """``change`` is one of: raised, repeated, escalated, cancelled, acknowledged, resolved;
    ``restored`` is an open alert sent again when the gateway starts."""

    change: str
    alert: Alert

    def to_message(self, gateway_id: str) -> dict[str, Any]:
        a = self.alert
        return {
            "v": 1,
            "gateway": gateway_id,
            "id": a.id,
            "change": self.change,
            "type": a.type,
            "severity": a.severity.label,
            "resident": a.resident,
            "t": a.t,
            "last_t": a.last_t,
            "state": a.state.value,
            "count": a.count,
            "device": a.device,
            "by": a.changed_by,
            "details": a.details,
            "text": a.text,
        }


def _change(change: str, alert: Alert) -> AlertChange:
    """A snapshot: later changes to the live alert must not rewrite what was already reported."""
    snapshot = dataclasses.replace(alert, details=dict(alert.details), text=dict(alert.text))
    return AlertChange(change, snapshot)


@dataclass(frozen=True)
class Visit:
    resident: str
    started_mono: float
    until_mono: float
    by: str
    # A visit taken back after a restart also ends at its saved end on the wall clock: the
    # boot clock it was taken back by may be behind (fake-hwclock), and NTP then moves it on.
    until_wall: float | None = None


def _visit_end_wall(visit: Visit, now: float, wall: float) -> float:
    end = wall + visit.until_mono - now
    return end if visit.until_wall is None else min(end, visit.until_wall)


def _saved_wall(value: Any) -> float | None:
    """A wall time read back from a saved alert; None when there is none (saved by an earlier
    version) or it cannot be one (a damaged record)."""
    if not is_number(value) or not math.isfinite(value) or value < EARLIEST_PLAUSIBLE_WALL:
        return None
    return float(value)


class AlertManager:
    def __init__(
        self,
        gateway_id: str,
        clock: Clock,
        languages: Iterable[str] = ("zh", "en"),
        repeat_window_s: float = 60.0,
        escalate_after_s: dict[Severity, float] | None = None,
        visit_max_s: float = 3 * 3600.0,
        flap_hold_s: dict[str, float] | None = None,
    ) -> None:
        """``flap_hold_s``: per maintenance type (merged over :data:`DEFAULT_FLAP_HOLD_S`;
        0 turns it off for that type)."""
        self.gateway_id = gateway_id
        self.clock = clock
        self.languages = tuple(languages)
        self.repeat_window_s = repeat_window_s
        self.escalate_after_s = escalate_after_s or {Severity.CRITICAL: 300.0, Severity.HIGH: 900.0}
        self.visit_max_s = visit_max_s
        self.flap_hold_s = {**DEFAULT_FLAP_HOLD_S, **(flap_hold_s or {})}
        self.active: dict[str, Alert] = {}  # alert id -> alert, until final
        self._by_key: dict[tuple[str, str, str], str] = {}
        self._escalate_at: dict[str, float] = {}  # alert id -> monotonic deadline
        # alerts taken back after a restart: alert id -> the end of the window on the wall clock
        self._escalate_by_wall: dict[str, float] = {}
        self.visits: dict[str, Visit] = {}
        # a visit started or ended (by staff or the button), or an alert held back for one or
        # let go: the runtime saves them
        self.visits_changed = 0
        # behaviour alerts that came due during a visit, raised when it ends unless over by then
        self._held: dict[tuple[str, str, str], Event] = {}
        # maintenance alerts the gateway resolved: key -> monotonic time (for flapping)
        self._cleared_at: dict[tuple[str, str, str], float] = {}
        # flapping alerts whose condition is over: alert id -> monotonic time to resolve them
        self._settle_at: dict[str, float] = {}
        self.counters: dict[str, int] = {
            "raised": 0,
            "repeated": 0,
            "escalated": 0,
            "cancelled_by_resident": 0,
            "acknowledged": 0,
            "resolved": 0,
            "held_during_visit": 0,
            "visit_starts_repeated": 0,
            "visit_starts_expired": 0,
            "unknown_alert_commands": 0,
            "flaps_held": 0,
        }

    # -- events from detectors ----------------------------------------------------------------

    def handle(self, event: Event) -> list[AlertChange]:
        existing = self._open_alert(event)
        if event.action is EventAction.RAISE:
            if event.type in BEHAVIOUR_TYPES and self.in_visit(event.resident):
                # held, not dropped: the detector counts it raised and will not raise it again
                self._held[event.alert_key] = event
                self.visits_changed += 1
                self.counters["held_during_visit"] += 1
                log.info("visit mode: %s held back for resident %s", event.type, event.resident)
                return []
            if existing is not None and existing.id in self._settle_at:
                return self._recurred(existing, event)
            if existing is not None and self._joins(existing, event):
                existing.count += 1
                existing.last_t = existing.occurred_t = event.t
                existing.details.update(event.details)
                self._retext(existing)
                self.counters["repeated"] += 1
                return [_change("repeated", existing)]
            return [self._raise(event, flapping=self._flaps(event))]
        if existing is None:
            if event.action is EventAction.CLEAR and event.alert_key in self._held:
                del self._held[event.alert_key]
                self.visits_changed += 1
                log.info("visit mode: held %s of resident %s is over", event.type, event.resident)
            return []
        # The fall detector dates every event of a fall at its impact, also the long lie's
        # escalation and the wearer's cancel: ``last_t`` is when the change happened.
        changed_t = max(event.t, self.clock.wall())
        if event.action is EventAction.ESCALATE:
            return [self._escalate(existing, event.severity, event.details, changed_t)]
        if event.action is EventAction.CANCEL:
            self.counters["cancelled_by_resident"] += 1
            return [
                self._finish(existing, AlertState.CANCELLED, "resident", changed_t, "cancelled")
            ]
        if event.action is EventAction.CLEAR:
            if existing.details.get("flapping") is True and self._hold_s(existing.type) > 0:
                # over for now; resolved once it has stayed away (on_tick)
                if existing.id not in self._settle_at:
                    now = self.clock.monotonic()
                    self._settle_at[existing.id] = now + self._hold_s(existing.type)
                    self._disarm(existing.id)
                return []
            self.counters["resolved"] += 1
            if self._hold_s(existing.type) > 0:
                self._cleared_at[existing.alert_key] = self.clock.monotonic()
            return [self._finish(existing, AlertState.RESOLVED, "gateway", event.t, "resolved")]
        return []

    def _hold_s(self, type_: str) -> float:
        return self.flap_hold_s.get(type_, 0.0)

    def _flaps(self, event: Event) -> bool:
        """Whether ``event`` raises again a maintenance alert the gateway resolved within its
        hold: the new alert is then held open until its condition stays away."""
        hold = self._hold_s(event.type)
        cleared = self._cleared_at.get(event.alert_key)
        now = self.clock.monotonic()
        for key, at in list(self._cleared_at.items()):  # bounded: forget what is past its hold
            if now - at > self._hold_s(key[1]):
                del self._cleared_at[key]
        return hold > 0 and cleared is not None and now - cleared <= hold

    def _recurred(self, alert: Alert, event: Event) -> list[AlertChange]:
        """A flapping alert's condition back before it settled: it stays open, silently (the
        alert staff have is still open; a message per cycle is the storm this prevents)."""
        del self._settle_at[alert.id]
        alert.count += 1
        alert.details.update(event.details)
        alert.details["flapping"] = True
        self._retext(alert)
        if alert.state is not AlertState.ACKNOWLEDGED:
            self._arm_escalation(alert)
        self.counters["flaps_held"] += 1
        return []

    # -- commands from staff (platform downlink) ----------------------------------------------

    def acknowledge(self, alert_id: str, by: str = "staff") -> list[AlertChange]:
        alert = self.active.get(alert_id)
        if alert is None or alert.state is AlertState.ACKNOWLEDGED:
            self.counters["unknown_alert_commands"] += alert is None
            return []
        alert.state = AlertState.ACKNOWLEDGED
        alert.changed_by = by
        alert.last_t = self.clock.wall()
        self._disarm(alert_id)
        self._retext(alert)
        self.counters["acknowledged"] += 1
        return [_change("acknowledged", alert)]

    def resolve(self, alert_id: str, by: str = "staff") -> list[AlertChange]:
        alert = self.active.get(alert_id)
        if alert is None:
            self.counters["unknown_alert_commands"] += 1
            return []
        self.counters["resolved"] += 1
        return [self._finish(alert, AlertState.RESOLVED, by, self.clock.wall(), "resolved")]

    def start_visit(
        self,
        resident: str,
        by: str = "staff",
        hours: float | None = None,
        issued_wall: float | None = None,
    ) -> None:
        """Idempotent while the visit lasts: the same command served again (a webhook
        platform re-serves it on every poll, an MQTT session delivers it late) neither
        restarts nor stretches the visit, so ``visit_max_h`` always ends it. A command that
        says when it was issued (``issued_wall``) counts the visit from then: one delivered
        after the gateway was away for hours would otherwise pause the resident's behaviour
        alerts with no staff on site; one whose visit is over is ignored."""
        if self.in_visit(resident):
            self.counters["visit_starts_repeated"] += 1
            return
        now = self.clock.monotonic()
        duration = min(hours * 3600.0, self.visit_max_s) if hours else self.visit_max_s
        wall = self.clock.wall()
        if issued_wall is not None and wall >= EARLIEST_PLAUSIBLE_WALL:
            duration -= max(0.0, wall - issued_wall)  # a platform clock ahead: from now
            if duration <= 0.0:
                self.counters["visit_starts_expired"] += 1
                log.warning("visit_start for resident %s came after its visit: ignored", resident)
                return
        self.visits[resident] = Visit(resident, now, now + duration, by)
        self.visits_changed += 1
        log.info("visit mode on for resident %s", resident)

    def end_visit(self, resident: str) -> None:
        if self.visits.pop(resident, None) is not None:
            self.visits_changed += 1
            log.info("visit mode off for resident %s", resident)

    def visit_records(self) -> list[dict[str, Any]]:
        """The visits under way as plain records, each ending on the wall clock (monotonic
        time starts again at a restart); none while the wall clock is not yet set."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        if wall < EARLIEST_PLAUSIBLE_WALL:
            return []
        return [
            {"resident": v.resident, "by": v.by, "until_wall": _visit_end_wall(v, now, wall)}
            for v in self.visits.values()
            if v.until_mono > now
        ]

    def restore_visits(self, records: list[Any]) -> None:
        """Take back the visits of a previous run that have not ended by the wall clock
        (staff who restart the gateway, or a power cut, during a visit are still there).
        While the wall clock is not yet set (a Pi booted in 1970) nothing is taken back: a
        visit that may have ended long ago must not hold anyone's alerts."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        for record in records:
            try:
                resident, by = str(record["resident"]), str(record["by"])
                until_wall = float(record["until_wall"])
                left_s = until_wall - wall
            except (KeyError, TypeError, ValueError) as exc:
                log.error("a saved visit could not be read (%s); not taken back", exc)
                continue
            if wall < EARLIEST_PLAUSIBLE_WALL or not 0.0 < left_s < float("inf"):
                continue
            until = now + min(left_s, self.visit_max_s)
            self.visits[resident] = Visit(resident, now, until, by, until_wall)
            log.info("visit mode on for resident %s (taken back after a restart)", resident)

    def held_records(self) -> list[dict[str, Any]]:
        """The behaviour alerts held back for a visit, as plain records: a restart during the
        visit must not swallow them."""
        return [
            {
                "type": e.type,
                "resident": e.resident,
                "t": e.t,
                "severity": e.severity.label,
                "device": e.device,
                "key": e.key,
                "details": dict(e.details),
            }
            for e in self._held.values()
        ]

    def restore_held(self, records: list[Any]) -> list[Alert]:
        """Take back what a previous run held for a visit: raised when the visit ends (at the
        next tick if it ended while the gateway was down, or is not taken back), unless its
        condition ends first. Returned as alerts for :meth:`Pipeline.resume`, so that the
        detector that raised each takes it as raised and its clearing sign still clears it."""
        alerts = []
        for record in records:
            try:
                event = Event(
                    str(record["type"]),
                    str(record["resident"]),
                    float(record["t"]),
                    Severity.parse(record["severity"]),
                    device=None if record["device"] is None else str(record["device"]),
                    key=str(record["key"]),
                    details=dict(record["details"]),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # parse: .upper()
                log.error("an alert held for a visit could not be read (%s); not taken back", exc)
                continue
            self._held[event.alert_key] = event
            alerts.append(
                Alert(
                    "",
                    event.type,
                    event.severity,
                    event.resident,
                    event.t,
                    device=event.device,
                    key=event.key,
                    details=dict(event.details),
                    last_t=event.t,
                    occurred_t=event.t,
                )
            )
        return alerts

    def in_visit(self, resident: str) -> bool:
        visit = self.visits.get(resident)
        if visit is None:
            return False
        over_by_wall = visit.until_wall is not None and self.clock.wall() >= visit.until_wall
        if self.clock.monotonic() >= visit.until_mono or over_by_wall:
            del self.visits[resident]
            return False
        return True

    def restore(self, alerts: list[Alert]) -> None:
        """Take back the open alerts of a previous run. The escalation timer of one nobody
        acknowledged goes on from when it was armed (module docstring): what is left of its
        window by the wall clock, clamped to the whole window, or until the wall clock reaches
        the window's end, whichever comes first."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        for alert in alerts:
            if alert.state.is_final:
                continue
            alert.raised_mono = now
            self.active[alert.id] = alert
            self._by_key[alert.alert_key] = alert.id
            if alert.state is AlertState.ACKNOWLEDGED:
                continue
            armed_wall = _saved_wall(alert.escalation_armed_wall)
            self._arm_escalation(alert)
            after = self.escalate_after_s.get(alert.severity)
            if armed_wall is None or after is None or alert.id not in self._escalate_at:
                continue
            self._escalate_at[alert.id] -= min(max(wall - armed_wall, 0.0), after)
            self._escalate_by_wall[alert.id] = armed_wall + after
            alert.escalation_armed_wall = armed_wall

    # -- time ---------------------------------------------------------------------------------

    def on_tick(self) -> list[AlertChange]:
        now = self.clock.monotonic()
        changes = self._release_held()
        for alert_id, deadline in list(self._settle_at.items()):
            if now >= deadline:
                alert = self.active[alert_id]
                self.counters["resolved"] += 1
                self._cleared_at[alert.alert_key] = now
                wall = self.clock.wall()
                changes.append(
                    self._finish(alert, AlertState.RESOLVED, "gateway", wall, "resolved")
                )
        wall = self.clock.wall()
        for alert_id, deadline in list(self._escalate_at.items()):
            if now >= deadline or wall >= self._escalate_by_wall.get(alert_id, math.inf):
                alert = self.active[alert_id]
                changes.append(
                    self._escalate(alert, alert.severity, {"reason": "unacknowledged"}, None)
                )
        return changes

    def next_deadline(self) -> float | None:
        due = [*self._escalate_at.values(), *self._settle_at.values()]
        for resident, _, _ in self._held:
            visit = self.visits.get(resident)
            due.append(visit.until_mono if visit is not None else self.clock.monotonic())
        return min(due, default=None)

    def _release_held(self) -> list[AlertChange]:
        """Raise what was held for residents whose visit has ended (by staff, the visit button
        or its time running out): a visit pauses these alerts, it must not swallow them."""
        changes: list[AlertChange] = []
        for key, event in list(self._held.items()):
            if not self.in_visit(event.resident):
                del self._held[key]
                self.visits_changed += 1
                log.info("visit over: held %s of resident %s raised", event.type, event.resident)
                changes.extend(self.handle(event))
        return changes

    # -- internals ----------------------------------------------------------------------------

    def _open_alert(self, event: Event) -> Alert | None:
        alert_id = self._by_key.get(event.alert_key)
        return self.active.get(alert_id) if alert_id else None

    def _joins(self, alert: Alert, event: Event) -> bool:
        """Whether ``event`` is another occurrence of the open ``alert`` rather than news. A
        press or fall joins only shortly after the last one (not after a staff action or an
        escalation, which also move ``last_t``), and never an alert staff have acknowledged:
        a press or a fall after that gets an alert (and an escalation timer) of its own."""
        if event.type in PRESS_TYPES:
            if alert.state is AlertState.ACKNOWLEDGED:
                return False
            last = alert.occurred_t or alert.t
            # both ways: after a wall-clock step back (NTP) a later fall is dated earlier
            return abs(event.t - last) <= self.repeat_window_s
        return True

    def _raise(self, event: Event, flapping: bool = False) -> AlertChange:
        alert_id = stable_alert_id(self.gateway_id, event)
        alert = Alert(
            id=alert_id,
            type=event.type,
            severity=event.severity,
            resident=event.resident,
            t=event.t,
            device=event.device,
            key=event.key,
            details={**event.details, "flapping": True} if flapping else dict(event.details),
            occurred_t=event.t,
            last_t=event.t,
            raised_mono=self.clock.monotonic(),
        )
        self._retext(alert)
        self.active[alert_id] = alert
        self._by_key[event.alert_key] = alert_id
        self._arm_escalation(alert)
        self.counters["raised"] += 1
        return _change("raised", alert)

    def _arm_escalation(self, alert: Alert) -> None:
        """From now, on the monotonic clock alone: a wall clock that jumps while the gateway
        runs moves no escalation."""
        after = self.escalate_after_s.get(alert.severity)
        self._disarm(alert.id)
        if int(alert.details.get("escalations", 0)) < MAX_ESCALATIONS and after is not None:
            self._escalate_at[alert.id] = self.clock.monotonic() + after
            wall = self.clock.wall()
            alert.escalation_armed_wall = wall if wall >= EARLIEST_PLAUSIBLE_WALL else None

    def _disarm(self, alert_id: str) -> None:
        self._escalate_at.pop(alert_id, None)
        self._escalate_by_wall.pop(alert_id, None)

    def _escalate(
        self, alert: Alert, severity: Severity, details: dict[str, Any] | Any, t: float | None
    ) -> AlertChange:
        alert.severity = max(alert.severity, severity)
        alert.details.update(details)
        alert.details["escalations"] = int(alert.details.get("escalations", 0)) + 1
        alert.last_t = t if t is not None else self.clock.wall()
        alert.changed_by = "gateway"
        # Worse news about an alert staff have taken on (a long lie after the fall) stays
        # acknowledged: the platform never takes a state back (docs/protocol.md), and nobody
        # is to be chased for an acknowledgement already given.
        if alert.state is not AlertState.ACKNOWLEDGED:
            alert.state = AlertState.ESCALATED
            self._arm_escalation(alert)
        self._retext(alert)
        self.counters["escalated"] += 1
        return _change("escalated", alert)

    def _finish(
        self, alert: Alert, state: AlertState, by: str, t: float, change: str
    ) -> AlertChange:
        alert.state = state
        alert.changed_by = by
        alert.last_t = t
        self._retext(alert)
        del self.active[alert.id]
        if self._by_key.get(alert.alert_key) == alert.id:
            del self._by_key[alert.alert_key]
        self._disarm(alert.id)
        self._settle_at.pop(alert.id, None)
        return _change(change, alert)

    def _retext(self, alert: Alert) -> None:
        values = {**alert.details, "count": alert.count}
        alert.text = render(alert.type, values, self.languages, alert.state.value)

    def diagnostics(self) -> dict[str, Any]:
        return {
            "open_alerts": len(self.active),
            "visits": sorted(self.visits),
            **self.counters,
        }
