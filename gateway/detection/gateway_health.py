"""``gateway_degraded``: the gateway itself cannot hear (part of) the home.

Devices report through the gateway's drivers. When a driver cannot reach them — the home's
mosquitto is unreachable or refuses a subscription, the Zigbee2MQTT bridge says it is offline,
the BLE adapter does not recover — every device behind it falls silent at once, emergency
buttons included, while ``device_offline`` would notice only when each device's own silence runs
out (a day for door contacts and buttons, which check in rarely). This detector turns each such
problem that has lasted ``grace_s`` into one HIGH ``gateway_degraded`` alert per resident (key:
the problem; details: ``cause``, a code staff texts name, and ``reason``, the technical cause
for the installer), and clears it once the problem has been gone for ``clear_after_s`` (a driver
that crash-loops is briefly running between failures: that is not a recovery).

Problems come from a callable the runtime wires: ``{key: (cause, reason)}`` for what is wrong
now (:meth:`gateway.runtime.Runtime.problems`: drivers the supervisor keeps restarting, and
what drivers report themselves). A restart of Zigbee2MQTT or mosquitto takes seconds: within
the grace it is no alert. Every problem, short or long, is also marked in ``deaf``
(:class:`~gateway.detection.base.DeafPeriods`, shared with the routine detectors): a silence
the gateway could not have heard through is never learned as the person's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.clock import Clock
from gateway.detection.base import DeafPeriods, Home
from gateway.model import Alert, Device, Event, EventAction, Reading, Severity

# key -> (cause code, technical reason)
Problems = Mapping[str, tuple[str, str]]

# Which devices (by their transport) a problem leaves unheard. Keys are "<driver>:<problem>"
# (gateway.runtime.Runtime.problems); a driver not listed (an Emfit poller: one bed) leaves its
# device's silence to device health.
_DRIVER_TRANSPORTS: dict[str, tuple[str, ...]] = {
    "local_mqtt": ("mqtt", "zigbee2mqtt"),
    "ble": ("ble",),
}
_CAUSE_TRANSPORTS: dict[str, tuple[str, ...]] = {"zigbee2mqtt_bridge": ("zigbee2mqtt",)}
# A subscription the home broker refused ("local_mqtt:subscription_refused:<codec>") leaves
# that codec's devices unheard, not the others on the broker.
_CODEC_TRANSPORTS: dict[str, tuple[str, ...]] = {
    "zigbee2mqtt": ("zigbee2mqtt",),
    "device-json": ("mqtt",),
    "bed": ("mqtt",),
}


def unheard_transports(problems: Problems) -> set[str]:
    """The transports whose devices the gateway cannot hear because of ``problems``."""
    found: set[str] = set()
    for key, (cause, _reason) in problems.items():
        driver = key.partition(":")[0]
        codec = key.rpartition(":")[2] if cause == "subscription_refused" else ""
        found.update(
            _CODEC_TRANSPORTS.get(codec)
            or _CAUSE_TRANSPORTS.get(cause)
            or _DRIVER_TRANSPORTS.get(driver, ())
        )
    return found


@dataclass(frozen=True)
class GatewayHealthSettings:
    enabled: bool = True
    grace_s: float = 120.0  # a broker or bridge restart (seconds) is not an alert
    clear_after_s: float = 60.0  # gone this long: over (no flapping alert)
    severity: str = "high"

    def __post_init__(self) -> None:
        if not 0.0 <= self.grace_s <= 3600.0:
            raise ValueError(f"grace_s must be within [0, 3600] seconds, got {self.grace_s}")
        if not 0.0 <= self.clear_after_s <= 3600.0:
            raise ValueError(f"clear_after_s must be within [0, 3600], got {self.clear_after_s}")
        if self.severity.upper() not in Severity.__members__:
            raise ValueError(f"severity must be one of {[s.label for s in Severity]}")


class GatewayHealth:
    name = "gateway_health"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        problems: Callable[[], Problems],
        settings: GatewayHealthSettings | None = None,
        deaf: DeafPeriods | None = None,
    ) -> None:
        self.clock = clock
        self.home = home
        self.problems = problems
        self.settings = settings or GatewayHealthSettings()
        self.deaf = deaf or DeafPeriods()  # every problem, from its first tick, grace or not
        self._since: dict[str, float] = {}  # problem key -> monotonic time first seen
        self._seen: dict[str, float] = {}  # problem key -> monotonic time last seen
        self._raised: dict[str, tuple[str, str]] = {}  # key -> (cause, reason) of the alert
        self._last = float("-inf")  # monotonic time of the last tick

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        return []

    def on_tick(self) -> list[Event]:
        now = self._last = self.clock.monotonic()
        current = dict(self.problems())
        self.deaf.update(now, bool(current))
        if not self.settings.enabled:
            return []
        events: list[Event] = []
        for key, (cause, reason) in current.items():
            since = self._since.setdefault(key, now)
            self._seen[key] = now
            if key not in self._raised and now - since >= self.settings.grace_s:
                self._raised[key] = (cause, reason)
                details = {"cause": cause, "reason": reason, "since_s": round(now - since)}
                events += self._events(key, EventAction.RAISE, details)
        gone = [k for k, seen in self._seen.items() if now - seen >= self.settings.clear_after_s]
        for key in gone:
            del self._since[key], self._seen[key]
            if key in self._raised:
                cause, _ = self._raised.pop(key)
                events += self._events(key, EventAction.CLEAR, {"cause": cause})
        return events

    def resume(self, alert: Alert) -> bool:
        """An alert of a previous run: raised already, and over once its problem has been
        absent for ``clear_after_s`` from now (a problem still there keeps it open)."""
        if alert.type != "gateway_degraded" or not self.settings.enabled:
            return False
        if alert.resident not in self.home.residents:
            return False  # a clear would never reach it: left for staff
        if alert.key not in self._raised:
            now = self.clock.monotonic()
            self._raised[alert.key] = (str(alert.details.get("cause", "")), "")
            self._since.setdefault(alert.key, now)
            self._seen.setdefault(alert.key, now)
        return True

    def next_deadline(self) -> float | None:
        due = [s + self.settings.grace_s for k, s in self._since.items() if k not in self._raised]
        # a problem absent at the last tick is over once it has been gone clear_after_s
        due += [t + self.settings.clear_after_s for k, t in self._seen.items() if t < self._last]
        return min(due) if due else None

    def diagnostics(self) -> dict[str, object]:
        now = self.clock.monotonic()
        return {
            "problems": {k: round(now - s) for k, s in self._since.items()},
            "alerted": sorted(self._raised),
        }

    def _events(self, key: str, action: EventAction, details: dict[str, object]) -> list[Event]:
        severity = Severity.parse(self.settings.severity)
        return [
            Event(
                type="gateway_degraded",
                resident=resident,
                t=self.clock.wall(),
                severity=severity,
                action=action,
                key=key,
                details=details,
            )
            for resident in self.home.residents
        ]
