"""Zigbee2MQTT payloads → contract-3 fields (pure; the topic codec is :mod:`drivers.zigbee2mqtt`).

Conventions (Zigbee2MQTT and zigbee-herdsman-converters):

- ``<base>/<friendly name>``: a JSON object with *all* cached attributes of the device, not
  only the changed ones.
- ``contact: true`` means **closed**.
- ``action`` (and the legacy ``click``) is an event: a value, then (legacy output) a reset to
  ``""`` or ``null``. An empty action is not a press. The same press is also published as a
  plain string on ``<base>/<friendly name>/action``.
- ``<base>/<friendly name>/availability``: ``{"state": "online"|"offline"}``, or the older plain
  strings ``online``/``offline``.
- ``<base>/bridge/state``: the same two forms, for the bridge itself.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from drivers.decoders import DecodeError

# Zigbee2MQTT action values -> contract-3 actions. Anything else passes through lower-cased,
# so that a detector configured for an unusual device can still match it.
ACTIONS: dict[str, str] = {
    "single": "press",
    "press": "press",
    "click": "press",
    "single_click": "press",
    "short_press": "press",
    "on": "press",
    "double": "double",
    "double_click": "double",
    "double_press": "double",
    "triple": "triple",
    "triple_click": "triple",
    "triple_press": "triple",
    "quadruple": "quadruple",
    "long": "long",
    "long_click": "long",
    "long_press": "long",
    "hold": "hold",
    "release": "release",
    "hold_release": "release",
    "long_release": "release",
    "emergency": "sos",
    "sos": "sos",
    "panic": "sos",
    "alarm": "sos",
}
_BUTTON_PREFIX = re.compile(r"^(?:button_)?(\d+)_(.+)$")
_BUTTON_SUFFIX = re.compile(r"^(.+?)_(?:button_)?(\d+)$")
_SIDE_SUFFIX = {"left": 1, "right": 2}

_FLAGS = ("water_leak", "smoke", "gas", "tamper", "battery_low")
_SIGNAL = ("linkquality",)


def split_action(raw: str) -> tuple[str, int]:
    """``"single"`` → ("press", 1); ``"button_2_double"``/``"2_double"``/``"double_2"`` →
    ("double", 2); ``"single_right"`` → ("press", 2)."""
    text = raw.strip().lower()
    button = 1
    if text not in ACTIONS:
        if match := _BUTTON_PREFIX.match(text):
            button, text = int(match.group(1)), match.group(2)
        elif match := _BUTTON_SUFFIX.match(text):
            text, button = match.group(1), int(match.group(2))
        else:
            head, _, side = text.rpartition("_")
            if head and side in _SIDE_SUFFIX:
                text, button = head, _SIDE_SUFFIX[side]
    return ACTIONS.get(text, text), max(button, 1)


def device_for_button(device: str, button: int) -> str:
    return device if button <= 1 else f"{device}:{button}"


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number: float | int = value
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
        if number.is_integer():
            number = int(number)
    else:
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def state_readings(device: str, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Readings of one state message. A message with nothing we understand yields ``[]``."""
    fields: dict[str, Any] = {}
    contact = _flag(payload.get("contact"))
    if contact is not None:
        fields["open"] = not contact
    for key in ("occupancy", "presence"):
        motion = _flag(payload.get(key))
        if motion is not None:
            fields["motion"] = motion
            break
    for key in _FLAGS:
        flag = _flag(payload.get(key))
        if flag is not None:
            fields[key] = flag
    battery = _number(payload.get("battery"))
    if battery is not None and 0 <= battery <= 100:
        fields["battery"] = battery
    for key in _SIGNAL:
        signal = _number(payload.get(key))
        if signal is not None:
            fields[key] = signal
    extra: list[dict[str, Any]] = []
    raw_action = payload.get("action", payload.get("click"))
    if isinstance(raw_action, str) and raw_action.strip():
        action, button = split_action(raw_action)
        if button == 1:
            fields["action"] = action
        else:
            extra.append({"device": device_for_button(device, button), "action": action})
    readings = [{"device": device, **fields}] if fields else []
    return readings + extra


def action_readings(device: str, payload: Any) -> list[dict[str, Any]]:
    """The ``/action`` sub-topic: a plain string (possibly JSON-quoted)."""
    if isinstance(payload, bytes | bytearray):
        payload = _text(payload)
    if isinstance(payload, str):
        text = payload.strip()
        if text.startswith('"'):
            try:
                text = json.loads(text)
            except ValueError as exc:
                raise DecodeError("action payload is a broken JSON string") from exc
    else:
        text = payload
    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    if not isinstance(text, str):
        raise DecodeError("action payload must be a string")
    action, button = split_action(text)
    return [{"device": device_for_button(device, button), "action": action}]


def parse_online(payload: Any) -> bool:
    """Availability or bridge state: ``{"state": "online"}``, ``"online"``, or JSON of either."""
    if isinstance(payload, bytes | bytearray):
        payload = _text(payload)
    if isinstance(payload, str):
        text = payload.strip()
        if text.startswith(("{", '"')):
            try:
                payload = json.loads(text)
            except ValueError as exc:
                raise DecodeError("availability payload is broken JSON") from exc
        else:
            payload = text
    if isinstance(payload, Mapping):
        payload = payload.get("state")
    if isinstance(payload, str) and payload.lower() in ("online", "offline"):
        return payload.lower() == "online"
    raise DecodeError("availability payload is neither online nor offline")


def _text(payload: bytes | bytearray) -> str:
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("payload is not UTF-8") from exc


def parse_state_payload(payload: Any) -> Mapping[str, Any]:
    if isinstance(payload, bytes | bytearray):
        payload = _text(payload)
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise DecodeError("state payload is not JSON") from exc
    if not isinstance(payload, Mapping):
        raise DecodeError("state payload is not a JSON object")
    return payload


def last_seen_of(payload: Mapping[str, Any]) -> float | None:
    """Zigbee2MQTT's ``last_seen`` (``advanced.last_seen``: ``ISO_8601``, ``ISO_8601_local``
    or ``epoch`` in milliseconds) as epoch seconds; None when absent or unreadable."""
    value = payload.get("last_seen")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000.0
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.astimezone()  # a local time without its offset
        seconds = stamp.timestamp()
    else:
        return None
    return seconds if math.isfinite(seconds) else None


# Sub-topics that are commands or bridge chatter: they mean nothing to the gateway.
IGNORED_SUFFIXES = ("/set", "/get")


def split_topic(topic: str, base_topic: str) -> tuple[str, str]:
    """``("zigbee2mqtt/Hall door/availability", "zigbee2mqtt")`` → ("Hall door",
    "availability"). The kind is "" (state), "availability", "action", "ignored" or
    "bridge_state"/"bridge"."""
    prefix = base_topic.rstrip("/") + "/"
    if not topic.startswith(prefix):
        raise DecodeError("topic is outside the Zigbee2MQTT base topic")
    rest = topic[len(prefix) :]
    if not rest:
        raise DecodeError("topic has no device name")
    if rest == "bridge/state":
        return "bridge", "bridge_state"
    if rest.startswith("bridge/"):
        return "bridge", "bridge"
    for suffix in IGNORED_SUFFIXES:
        if rest.endswith(suffix) or suffix + "/" in rest:  # <name>/set, <name>/set/<attr>
            return rest, "ignored"
    for kind in ("availability", "action"):
        if rest.endswith("/" + kind):
            return rest[: -len(kind) - 1], kind
    return rest, ""


def decode_message(topic: str, payload: Any, base_topic: str = "zigbee2mqtt",
                   ) -> list[dict[str, Any]]:
    """Contract 3 for one Zigbee2MQTT message, with ``device`` set to the friendly name (the
    bridge's own state goes to the pseudo device ``<base>/bridge`` as ``bridge_online``)."""
    name, kind = split_topic(topic, base_topic)
    if kind == "bridge_state":
        bridge = f"{base_topic.rstrip('/')}/bridge"
        return [{"device": bridge, "bridge_online": parse_online(payload)}]
    if kind in ("bridge", "ignored"):
        return []
    if kind == "availability":
        return [{"device": name, "online": parse_online(payload)}]
    if kind == "action":
        return action_readings(name, payload)
    return state_readings(name, parse_state_payload(payload))


__all__ = [
    "ACTIONS",
    "action_readings",
    "decode_message",
    "device_for_button",
    "last_seen_of",
    "parse_online",
    "parse_state_payload",
    "split_action",
    "split_topic",
    "state_readings",
]
