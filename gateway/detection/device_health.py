"""Device health: offline, battery low, tamper, untested alarm buttons, and the smoke, gas and
water-leak alarms that devices pass through.

Per device it keeps when it was last heard (the clock's monotonic time, so an NTP jump on a
Pi without a real-time clock never makes every device look dead), its battery and its signal.

- ``device_offline`` (WARNING, key = device id): silent for longer than its kind allows
  (``stale_after_s``; a device's own ``options["offline_after_s"]`` wins), or ``online: false``
  from an availability message. CLEAR when the device is heard again.
- ``battery_low`` (WARNING): battery below ``battery_low_pct`` or ``battery_low: true``; CLEAR
  only at ``battery_ok_pct`` or above (or ``battery_low: false`` with no percentage), so that a
  battery hovering at the threshold does not flap.
- ``tamper`` (WARNING): ``tamper: true``; CLEAR on ``false``.
- ``button_untested`` (WARNING): an SOS button (kind ``button``) not pressed for
  ``button_test_interval_s`` (weekly tests are required practice, e.g. JGJ/T 484); CLEAR on the
  next press. A device with ``options["weekly_test"] = false`` is exempt.
- ``smoke``, ``gas`` (CRITICAL) and ``water_leak`` (HIGH): raised while the device reports
  ``true``; CLEAR on ``false``.

A worn device (wristband, heart-rate strap) that falls silent within ``EXIT_BEFORE_SILENCE_S``
after an exit door opened or closed, or before one does, has gone out with its wearer: out of
range is not offline. Its silence counts only from the first sign of life inside the home
(motion, an inner door, the bed) more than ``LEAVE_GRACE_S`` after that door — the wearer back
without the band reconnecting, a dead band — so a resident going out no longer brings staff a
``device_offline`` on every outing. A door's state counts only when it changes (Zigbee2MQTT
re-sends it with every check-in). After a restart, before this run has seen an exit door
change, the routine detectors' live picture (taken back from before the restart) says whether
the wearer is out (``wearer_away``): a gateway restarted while the wearer was out raised
``device_offline`` for their band five minutes later. Not told apart: someone else at home
moving about while the wearer is out (the band is then reported 5 min later).

While the gateway itself cannot hear a device — its home broker unreachable, the Zigbee2MQTT
bridge offline, the BLE adapter not recovering (``problems``, the same the runtime hands
:mod:`~gateway.detection.gateway_health`) — its silence is the gateway's, reported once as
``gateway_degraded``: no ``device_offline`` for it, and the time it could not be heard is left
out of its silence (not restarted at the end of the problem: one that came back every few
minutes, each time under gateway health's grace, hid a dead device for good). A device that
died during a lasting problem is reported once it has been silent ``stale_after_s`` of the time
the gateway could hear it.

Across a restart each device's silence, and each button's time since its last press, carry
over (``store``: kept with the learned state, put every ``SAVE_EVERY_S`` and at a clean stop,
on disk within the hour): a restart used to count every device as just heard and pressed, so a
dead door sensor (25 h) or an untested SOS button (a week) was never reported on a gateway
restarted more often than that (power cuts, updates). The time the gateway was off is not
counted (it could not hear, as above); so a restart after a long power cut raises no flood of
alerts, and silences are placed on the monotonic clock, never on a wall clock that may jump.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.gateway_health import Problems, unheard_transports
from gateway.detection.routine.learning import LearnedStore
from gateway.model import (
    Alert,
    Device,
    DeviceKind,
    Event,
    EventAction,
    Reading,
    Severity,
    is_press,
)

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S

_DEFAULT_STALE_S: dict[str, float] = {
    DeviceKind.WRISTBAND.value: 5 * 60.0,
    DeviceKind.BED.value: 10 * 60.0,
    DeviceKind.DOOR.value: 25 * HOUR_S,
    DeviceKind.MOTION.value: 25 * HOUR_S,
    DeviceKind.BUTTON.value: 25 * HOUR_S,
    DeviceKind.SMOKE.value: 25 * HOUR_S,
    DeviceKind.GAS.value: 25 * HOUR_S,
    DeviceKind.WATER_LEAK.value: 25 * HOUR_S,
}
_ALARMS: dict[str, Severity] = {
    "smoke": Severity.CRITICAL,
    "gas": Severity.CRITICAL,
    "water_leak": Severity.HIGH,
}
_SIGNAL_KEYS = ("rssi", "linkquality")
WORN_KINDS = frozenset({DeviceKind.WRISTBAND, DeviceKind.HEART_RATE})
# A resident walking out: the band loses its link as they go down the path, or in the
# garden or hallway just before the door; anything further apart is unrelated.
EXIT_BEFORE_SILENCE_S = 15 * 60.0
LEAVE_GRACE_S = 120.0  # the hallway's motion sensor firing as they leave is no one at home
STORE_KEY = "device_health/silences"
SAVE_EVERY_S = 300.0  # into the store's memory; it reaches disk with the hourly commit


@dataclass(frozen=True)
class DeviceHealthSettings:
    stale_after_s: dict[str, float] = field(
        default_factory=lambda: dict(_DEFAULT_STALE_S),
        metadata={
            "doc": "silence (s) after which a device of this kind is offline; merged "
            "over the defaults; 0 = do not watch that kind"
        },
    )
    battery_low_pct: float = field(default=15.0, metadata={"min": 0, "max": 100})
    battery_ok_pct: float = field(
        default=20.0, metadata={"min": 0, "max": 100, "doc": "battery_low clears at or above"}
    )
    button_test_interval_s: float = field(
        default=7 * DAY_S, metadata={"min": 0, "doc": "0 disables button_untested"}
    )

    def __post_init__(self) -> None:
        if self.battery_ok_pct < self.battery_low_pct:
            raise ValueError("battery_ok_pct: must not be below battery_low_pct")
        kinds = [k.value for k in DeviceKind]
        unknown = sorted(set(self.stale_after_s) - set(kinds))
        if unknown:  # a typo ("wristbnd") left that kind on its default, unsaid
            raise ValueError(
                f"stale_after_s: unknown device kind(s) {unknown} "
                f"(expected some of: {', '.join(kinds)})"
            )
        bad = [k for k, v in self.stale_after_s.items() if v < 0]
        if bad:
            raise ValueError(f"stale_after_s: must be seconds >= 0, got {bad}")
        object.__setattr__(self, "stale_after_s", {**_DEFAULT_STALE_S, **self.stale_after_s})


# The alert types this detector raises and clears itself.
_RESUMABLE = frozenset({"device_offline", "battery_low", "tamper", "button_untested", *_ALARMS})


@dataclass(slots=True)
class _DeviceState:
    last_seen: float  # monotonic
    last_press: float  # monotonic
    heard: bool = False  # anything received since start
    battery: float | None = None
    signal: dict[str, float] = field(default_factory=dict)
    offline: str | None = None  # None, "silent" or "unavailable"
    door_open: bool | None = None  # doors: the last state heard
    unheard_s: float = 0.0  # since last heard, how long the gateway could not hear it
    raised: set[str] = field(default_factory=set)  # battery_low, tamper, smoke, ...
    untested: bool = False


class DeviceHealth:
    name = "device_health"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: DeviceHealthSettings | None = None,
        problems: Callable[[], Problems] | None = None,
        wearer_away: Callable[[str], bool] | None = None,
        store: LearnedStore | None = None,
    ) -> None:
        """``wearer_away(resident)``: whether the live picture has the resident out (the
        routine detectors' :meth:`~gateway.detection.routine.detectors.RoutineDetectors.away`);
        ``store``: where silences are kept across a restart (the learned state's)."""
        self.clock = clock
        self.home = home
        self.settings = settings or DeviceHealthSettings()
        self.problems = problems
        self.wearer_away = wearer_away
        self._states: dict[str, _DeviceState] = {}
        self._unheard: set[str] = set()  # transports the gateway could not hear at the last tick
        self._noted_at: float | None = None  # monotonic: the last tick
        self._exit_at: float | None = None  # monotonic: an exit door's last change
        self._inside_at: float | None = None  # monotonic: the last sign of life inside
        self.store = store
        self._saved_at: float | None = None  # monotonic: the last put into the store
        self._take_back_silences()

    # -- state -------------------------------------------------------------------------------

    def _state(self, device: Device) -> _DeviceState:
        state = self._states.get(device.id)
        if state is None:
            now = self.clock.monotonic()
            state = _DeviceState(last_seen=now, last_press=now)
            self._states[device.id] = state
        return state

    def _stale_after(self, device: Device) -> float | None:
        parent, sep, _button = device.id.rpartition(":")
        if sep and parent in self.home.devices:
            # a further button of a configured remote (``<id>:2``): it reports presses only,
            # its battery and check-ins go to ``<id>``, whose silence stands for it
            return None
        override = device.options.get("offline_after_s") if device.options else None
        if isinstance(override, int | float) and not isinstance(override, bool) and override > 0:
            return float(override)
        stale = self.settings.stale_after_s.get(device.kind.value)
        return stale if stale else None

    def _watches_button(self, device: Device) -> bool:
        if device.kind is not DeviceKind.BUTTON or self.settings.button_test_interval_s <= 0:
            return False
        if device.role == "visit":
            return False
        return not (device.options and device.options.get("weekly_test") is False)

    def _event(
        self,
        device: Device,
        type_: str,
        severity: Severity,
        t: float,
        action: EventAction = EventAction.RAISE,
        **details: Any,
    ) -> Event:
        return Event(
            type=type_,
            resident=device.resident,
            t=t,
            severity=severity,
            action=action,
            device=device.id,
            key=device.id,
            details={"kind": device.kind.value, "room": device.room.value, **details},
        )

    # -- detector protocol -------------------------------------------------------------------

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        state = self._state(device)
        now = self.clock.monotonic()
        events: list[Event] = []
        online = reading.get("online")
        state.last_seen = now
        state.unheard_s = 0.0
        state.heard = True
        if online is False:
            if state.offline is None:
                events.append(
                    self._event(
                        device, "device_offline", Severity.WARNING, reading.t, reason="unavailable"
                    )
                )
            state.offline = "unavailable"
        elif state.offline is not None:
            events.append(
                self._event(
                    device, "device_offline", Severity.WARNING, reading.t, EventAction.CLEAR
                )
            )
            state.offline = None
        self._note_whereabouts(reading, device, state, now)
        for key in _SIGNAL_KEYS:
            value = reading.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                with contextlib.suppress(OverflowError):  # hundreds of digits: not a signal
                    state.signal[key] = float(value)
        events.extend(self._battery(reading, device, state))
        events.extend(self._flag(reading, device, state, "tamper", Severity.WARNING))
        for alarm, severity in _ALARMS.items():
            events.extend(self._flag(reading, device, state, alarm, severity))
        action = reading.get("action")
        if is_press(action):
            state.last_press = now
            if state.untested:
                state.untested = False
                events.append(
                    self._event(
                        device, "button_untested", Severity.WARNING, reading.t, EventAction.CLEAR
                    )
                )
        return events

    def _note_whereabouts(
        self, reading: Reading, device: Device, state: _DeviceState, now: float
    ) -> None:
        """Exit doors and signs of life inside, for the worn devices' silence."""
        opened = reading.get("open")
        if device.kind is DeviceKind.DOOR and isinstance(opened, bool):
            changed = opened if state.door_open is None else opened != state.door_open
            state.door_open = opened
            if changed and device.is_exit:
                self._exit_at = now
            elif changed:
                self._inside_at = now
        elif reading.get("motion") is True or (
            device.kind is DeviceKind.BED and reading.get("occupied") is True
        ):
            self._inside_at = now

    def _silent_since(self, device: Device, state: _DeviceState) -> float | None:
        """Since when the device's silence counts; None while the gateway cannot hear it or a
        worn device is out with its wearer (the module docstring)."""
        if _transport(device) in self._unheard:
            return None
        # the time the gateway could not hear it is left out: a problem that comes back
        # every few minutes does not keep a dead device from being reported
        heard = state.last_seen + state.unheard_s
        exit_at = self._exit_at
        if device.kind not in WORN_KINDS:
            return heard
        if exit_at is None:
            # no exit door changed in this run: out since before a restart, or at home
            return None if self._taken_back_as_out(device) else heard
        if exit_at < state.last_seen - EXIT_BEFORE_SILENCE_S:
            return heard
        if self._inside_at is not None and self._inside_at > exit_at + LEAVE_GRACE_S:
            return max(heard, self._inside_at)
        return None

    def _taken_back_as_out(self, device: Device) -> bool:
        if self.wearer_away is None:
            return False
        try:
            return self.wearer_away(device.resident)
        except Exception:  # a bug there must not silence device health: judge as at home
            return False

    def _take_back_silences(self) -> None:
        saved = self.store.get(STORE_KEY) if self.store is not None else None
        if not isinstance(saved, dict):
            return
        now = self.clock.monotonic()
        for device in self.home.devices.values():
            entry = saved.get(device.id)
            if not isinstance(entry, dict):
                continue
            state = self._state(device)
            silent, untested = _seconds(entry.get("silent_s")), _seconds(entry.get("untested_s"))
            state.last_seen = now - silent
            state.last_press = now - untested

    def _save_silences(self, now: float, force: bool = False) -> None:
        if self.store is None:
            return
        if not force and self._saved_at is not None and now - self._saved_at < SAVE_EVERY_S:
            return
        self._saved_at = now
        silences: dict[str, dict[str, float]] = {}
        for device in self.home.devices.values():
            state = self._state(device)
            since = self._silent_since(device, state)
            silences[device.id] = {
                # what counts towards device_offline: nothing while out with its wearer or
                # unheard by the gateway, and not the time it could not be heard
                "silent_s": 0.0 if since is None else max(0.0, now - since),
                "untested_s": max(0.0, now - state.last_press),
            }
        self.store.put(STORE_KEY, silences)

    def close(self) -> None:
        """The gateway stops: the silences as they stand now (the store is closed after)."""
        self._save_silences(self.clock.monotonic(), force=True)

    def _note_unheard(self, now: float) -> None:
        try:
            self._unheard = unheard_transports(self.problems()) if self.problems else set()
        except Exception:  # a driver's bug: judge the devices as if all were heard
            self._unheard = set()
        since, self._noted_at = self._noted_at, now
        if since is None:
            return
        for device in self.home.devices.values():
            state = self._state(device)
            if _transport(device) in self._unheard:
                state.unheard_s += now - max(since, state.last_seen)

    def _battery(self, reading: Reading, device: Device, state: _DeviceState) -> list[Event]:
        pct = reading.get("battery")
        if isinstance(pct, bool) or not isinstance(pct, int | float):
            pct = None
        else:
            state.battery = float(pct)
        flag = reading.get("battery_low")
        flag = flag if isinstance(flag, bool) else None
        if pct is None and flag is None:
            return []
        raised = "battery_low" in state.raised
        low = flag is True or (pct is not None and pct < self.settings.battery_low_pct)
        if not raised and low:
            state.raised.add("battery_low")
            return [self._event(device, "battery_low", Severity.WARNING, reading.t, battery=pct)]
        recovered = flag is not True and (
            (pct is not None and pct >= self.settings.battery_ok_pct)
            or (pct is None and flag is False)
        )
        if raised and recovered:
            state.raised.discard("battery_low")
            return [
                self._event(
                    device,
                    "battery_low",
                    Severity.WARNING,
                    reading.t,
                    EventAction.CLEAR,
                    battery=pct,
                )
            ]
        return []

    def _flag(
        self, reading: Reading, device: Device, state: _DeviceState, name: str, severity: Severity
    ) -> list[Event]:
        value = reading.get(name)
        if not isinstance(value, bool):
            return []
        if value and name not in state.raised:
            state.raised.add(name)
            return [self._event(device, name, severity, reading.t)]
        if not value and name in state.raised:
            state.raised.discard(name)
            return [self._event(device, name, severity, reading.t, EventAction.CLEAR)]
        return []

    def on_tick(self) -> list[Event]:
        now = self.clock.monotonic()
        wall = self.clock.wall()
        self._note_unheard(now)
        events: list[Event] = []
        for device in self.home.devices.values():
            state = self._state(device)
            stale_after = self._stale_after(device)
            since = self._silent_since(device, state)
            if (
                stale_after is not None
                and since is not None
                and state.offline is None
                and now - since >= stale_after
            ):
                state.offline = "silent"
                events.append(
                    self._event(
                        device,
                        "device_offline",
                        Severity.WARNING,
                        wall,
                        reason="silent",
                        silent_s=round(now - state.last_seen),
                    )
                )
            if (
                self._watches_button(device)
                and not state.untested
                and now - state.last_press >= self.settings.button_test_interval_s
            ):
                state.untested = True
                events.append(
                    self._event(
                        device,
                        "button_untested",
                        Severity.WARNING,
                        wall,
                        untested_s=round(now - state.last_press),
                    )
                )
        self._save_silences(now)
        return events

    def next_deadline(self) -> float | None:
        deadlines: list[float] = []
        for device in self.home.devices.values():
            state = self._state(device)
            stale_after = self._stale_after(device)
            since = self._silent_since(device, state)
            if stale_after is not None and since is not None and state.offline is None:
                deadlines.append(since + stale_after)
            if self._watches_button(device) and not state.untested:
                deadlines.append(state.last_press + self.settings.button_test_interval_s)
        return min(deadlines) if deadlines else None

    def resume(self, alert: Alert) -> bool:
        """An alert of a previous run about a device still configured for the same resident:
        open again, so the reading that clears it in a normal run (any reading for
        ``device_offline``, the battery back up, ``smoke: false``, the next press...) clears
        it now."""
        device = self.home.devices.get(alert.key)
        if device is None or device.resident != alert.resident or alert.type not in _RESUMABLE:
            return False  # its clear would miss the alert: left for staff
        state = self._state(device)
        if alert.type == "device_offline":
            reason = alert.details.get("reason")
            state.offline = reason if reason in ("silent", "unavailable") else "silent"
        elif alert.type == "button_untested":
            state.untested = True
        else:
            state.raised.add(alert.type)
        return True

    def diagnostics(self) -> dict[str, Any]:
        """Per device: seconds since last heard (None if never since start), battery, signal,
        and which conditions are open. No names, no health values."""
        now = self.clock.monotonic()
        out: dict[str, Any] = {}
        for device in self.home.devices.values():
            state = self._state(device)
            out[device.id] = {
                "kind": device.kind.value,
                "last_seen_s_ago": round(now - state.last_seen, 1) if state.heard else None,
                "battery": state.battery,
                "signal": dict(state.signal),
                "offline": state.offline,
                "open_conditions": sorted(
                    state.raised | ({"button_untested"} if state.untested else set())
                ),
            }
        return out


def _seconds(value: object) -> float:
    """A saved duration: finite, within [0, 30 days]; anything else (another version's value,
    a damaged file) counts as none."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return min(max(0.0, float(value)), 30 * DAY_S)
    return 0.0


def _transport(device: Device) -> str:
    return str(device.options.get("transport", "mqtt")) if device.options else "mqtt"


__all__ = ["DeviceHealth", "DeviceHealthSettings"]
