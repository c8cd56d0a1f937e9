"""The normalised model every part of eldergate speaks.

Data flows one way: a driver yields :class:`Reading` objects, detectors turn readings into
:class:`Event` objects, the alert manager turns events into :class:`Alert` objects, and the outbox
carries alerts to the platform. Drivers convert device formats at their boundary; nothing past a
driver ever sees a Zigbee2MQTT payload or a bleak type.

Times: ``t`` fields are *event times* in epoch seconds (what the device or the gateway's wall
clock said when it happened). Durations inside the gateway use the injected clock's monotonic
time (see :mod:`gateway.clock`).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class DeviceKind(enum.StrEnum):
    DOOR = "door"
    MOTION = "motion"
    BED = "bed"
    WRISTBAND = "wristband"
    BUTTON = "button"
    SMOKE = "smoke"
    GAS = "gas"
    WATER_LEAK = "water_leak"
    HEART_RATE = "heart_rate"  # a chest strap or other plain GATT heart-rate sensor


class Room(enum.StrEnum):
    ENTRANCE = "entrance"
    BEDROOM = "bedroom"
    BATHROOM = "bathroom"
    KITCHEN = "kitchen"
    LOUNGE = "lounge"
    HALLWAY = "hallway"
    OTHER = "other"


class Severity(enum.IntEnum):
    """Ordered: a higher value needs a faster human response."""

    INFO = 1
    WARNING = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


class AlertState(enum.StrEnum):
    OPEN = "open"  # raised, nobody has acknowledged it yet
    ESCALATED = "escalated"  # raised again at a higher severity (nobody acknowledged, long lie)
    ACKNOWLEDGED = "acknowledged"  # staff have seen it and are acting
    RESOLVED = "resolved"  # closed by staff, or the condition cleared by itself
    CANCELLED = "cancelled"  # withdrawn by the resident (a false fall, a mistaken SOS)

    @property
    def is_final(self) -> bool:
        return self in (AlertState.RESOLVED, AlertState.CANCELLED)


class EventAction(enum.StrEnum):
    RAISE = "raise"  # something is wrong
    ESCALATE = "escalate"  # the open alert of this key is worse than first thought
    CANCEL = "cancel"  # the resident withdrew it
    CLEAR = "clear"  # the condition is over (device back online, person got up)


@dataclass(frozen=True, slots=True)
class Resident:
    """A person the gateway watches over, by pseudonymous id only: never a name."""

    id: str
    night_start: str = "23:00"  # local time "HH:MM"
    night_end: str = "06:00"
    wander_risk: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    kind: DeviceKind
    resident: str
    room: Room = Room.OTHER
    role: str | None = None  # doors: "exit", "fridge", "cupboard", "bathroom"...
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_exit(self) -> bool:
        return self.kind is DeviceKind.DOOR and self.role == "exit"


@dataclass(frozen=True, slots=True)
class Reading:
    """One normalised observation from one device.

    ``values`` holds the fields of contract 3 (``open``, ``motion``, ``occupied``, ``hr``,
    ``rr``, ``action``, ``battery``, ``worn``, ``online``, ...). A wristband acceleration batch
    carries ``acc`` (an (n, 3) array-like in g) with ``fs`` (Hz) or ``ts`` (per-sample times).
    """

    t: float
    device: str
    values: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.t, "device": self.device}
        for key, value in self.values.items():
            out[key] = value.tolist() if hasattr(value, "tolist") else value
        return out


@dataclass(frozen=True, slots=True)
class Event:
    """What a detector concluded. The alert manager owns what happens next.

    ``key`` separates alerts of the same type for the same resident (the device id for
    ``device_offline``, empty for one-per-resident types such as ``inactivity``).
    """

    type: str
    resident: str
    t: float
    severity: Severity
    action: EventAction = EventAction.RAISE
    device: str | None = None
    key: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def alert_key(self) -> tuple[str, str, str]:
        return (self.resident, self.type, self.key)


@dataclass(slots=True)
class Alert:
    """An alert with its lifecycle. ``id`` is stable: retries and restarts never change it, so
    the platform can drop duplicates."""

    id: str
    type: str
    severity: Severity
    resident: str
    t: float  # event time of the first occurrence
    state: AlertState = AlertState.OPEN
    count: int = 1
    device: str | None = None
    key: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)  # {"en": ..., "zh": ...}
    last_t: float = 0.0  # event time of the latest occurrence or change
    raised_mono: float = 0.0  # gateway monotonic time when raised (for escalation timers)
    changed_by: str = "gateway"  # "gateway", "resident", "staff"
    occurred_t: float = 0.0  # event time of the latest occurrence (staff actions leave it)
    # Wall time its escalation timer was last armed (None while the wall clock is not set):
    # saved with it, never published, so that a restart goes on with the timer
    # (AlertManager.restore).
    escalation_armed_wall: float | None = None

    @property
    def alert_key(self) -> tuple[str, str, str]:
        return (self.resident, self.type, self.key)


def is_urgent(reading: Reading, kind: DeviceKind | None) -> bool:
    """A press that must not wait behind a flood of other readings, handed on ahead of them
    (the runtime's urgent queue, the BLE driver's press queue): an ``sos`` action from any
    device, and every reading of a button (presses, cancels, the visit switch; few, and kept in
    their own order). ``kind`` is the device's, None if unknown. A wristband's other readings,
    its ``cancel`` included, stay in order with its samples: the fall detector does not apply a
    band's own cancel to a fall whose data comes after it (``FallAlerts._decide``), so a cancel
    taken ahead of the samples of the fall it answers would withdraw nothing."""
    if reading.get("action") == "sos":
        return True
    return kind is DeviceKind.BUTTON


# A button's actions that end or undo a press instead of making one (a release after a hold, a
# cancel); every other action of a button is a press.
NOT_PRESSES = frozenset({"release", "cancel"})


def is_press(action: Any) -> bool:
    """Whether a button's ``action`` is a press: one rule for the SOS detector (an emergency
    button raises on it) and device health (it is the button's weekly test). Any gesture a
    device names its own way counts (Zigbee2MQTT passes unknown actions through: an Aqara
    button's ``quadruple`` and ``many``; BTHome's ``long_double``): a resident in distress
    presses as she can."""
    return isinstance(action, str) and bool(action) and action not in NOT_PRESSES


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def stable_alert_id(gateway_id: str, event: Event) -> str:
    """Deterministic id: the same event on the same gateway always gets the same id, so a
    replay, a retry, or a re-detection after a crash can be de-duplicated by the platform."""
    basis = f"{gateway_id}|{event.resident}|{event.type}|{event.key}|{event.t:.3f}"
    return f"{gateway_id}-{hashlib.sha256(basis.encode()).hexdigest()[:20]}"
