"""Bed sensors: the eldergate bed MQTT profile and the Emfit QS local API.

**Bed MQTT profile** (documented in ``docs/devices/bed.md``): a bed sensor or a bridge in
front of one publishes, at about 1 Hz, to ``<base>/<device>`` (base default
``eldergate/bed``) a JSON object::

    {"t": 1712000000.0, "occupied": true, "hr": 58, "rr": 14, "movement": 3, "battery": 90}

``occupied`` is required; ``hr`` (beats/min), ``rr`` (breaths/min), ``movement`` (0-100,
unitless activity), ``battery`` (percent) and ``t`` (epoch seconds) are optional, and ``null``
means "no value this second" (no heart rate while the bed is empty). Availability is a retained
``online``/``offline`` (or ``{"state": ...}``) on ``<base>/<device>/availability``, the offline
form as the client's MQTT will.

**Emfit QS** ``/dvmstatus.htm``: ``KEY=VALUE`` lines separated by ``<br>`` and CRLF, with
``PRES`` (1 = in bed), ``HR``, ``RR``, ``ACT``, ``SER``, ``TS``, ``TS_R``. HR and RR read 0 when
nobody is in bed or no value is available.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from drivers.decoders import DecodeError
from drivers.decoders.zigbee2mqtt import parse_online
from gateway.model import Reading
from gateway.recording import LATEST_T

DEFAULT_BED_BASE_TOPIC = "eldergate/bed"
HR_RANGE = (0.0, 300.0)
RR_RANGE = (0.0, 120.0)


def _optional_number(payload: Mapping[str, Any], key: str, lo: float, hi: float,
                     ) -> float | int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"bed field {key} must be a number or null")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise DecodeError(f"bed field {key} out of range")
    return value


def bed_profile_fields(payload: Any) -> dict[str, Any]:
    """Validate one bed-profile message (bytes, text or a mapping) → contract-3 fields."""
    if isinstance(payload, bytes | bytearray):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("bed payload is not UTF-8") from exc
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise DecodeError("bed payload is not JSON") from exc
    if not isinstance(payload, Mapping):
        raise DecodeError("bed payload is not a JSON object")
    occupied = payload.get("occupied")
    if isinstance(occupied, int) and not isinstance(occupied, bool) and occupied in (0, 1):
        occupied = bool(occupied)
    if not isinstance(occupied, bool):
        raise DecodeError("bed field occupied must be true or false")
    fields: dict[str, Any] = {"occupied": occupied}
    for key, (lo, hi) in (("hr", HR_RANGE), ("rr", RR_RANGE), ("movement", (0.0, 1e6)),
                          ("battery", (0.0, 100.0))):
        value = _optional_number(payload, key, lo, hi)
        if value is not None:
            fields[key] = value
    t = _optional_number(payload, "t", 0.0, 1e11)
    if t is not None:
        fields["t"] = float(t)
    return fields


def parse_emfit_status(text: str) -> dict[str, str]:
    """``dvmstatus.htm`` → {lower-case key: raw value}."""
    out: dict[str, str] = {}
    for line in text.replace("<br>", "\n").replace("<BR>", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise DecodeError("Emfit status line is not KEY=VALUE")
        out[key.strip().lower()] = value.strip()
    if "pres" not in out:
        raise DecodeError("Emfit status has no PRES field")
    return out


def emfit_fields(status: Mapping[str, str]) -> dict[str, Any]:
    """Contract-3 fields of an Emfit status. ``t`` is set only when the device knows the time
    (``TS`` is 0 on many firmwares)."""

    def number(key: str) -> float | None:
        raw = status.get(key)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError as exc:
            raise DecodeError(f"Emfit field {key.upper()} is not a number") from exc
        if not math.isfinite(value):
            raise DecodeError(f"Emfit field {key.upper()} is not finite")
        return value

    pres = number("pres")
    if pres not in (0.0, 1.0):
        raise DecodeError("Emfit PRES must be 0 or 1")
    fields: dict[str, Any] = {"occupied": pres == 1.0}
    for key, name, (lo, hi) in (("hr", "hr", HR_RANGE), ("rr", "rr", RR_RANGE)):
        value = number(key)
        if value is not None and value > 0:  # 0 = no value
            if not lo <= value <= hi:
                raise DecodeError(f"Emfit field {key.upper()} out of range")
            fields[name] = int(value) if value.is_integer() else value
    act = number("act")
    if act is not None and act >= 0:
        fields["movement"] = int(act) if act.is_integer() else act
    ts = number("ts")
    if ts is not None and 1e9 < ts <= LATEST_T:  # else no time: dated on arrival
        fields["t"] = ts
    return fields


def decode_emfit(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return emfit_fields(parse_emfit_status(text))


class BedProfileCodec:
    """Topic codec for the bed MQTT profile (see module docs).

    ``devices`` maps the topic's device segment to the configured device id; when None the
    segment is the device id. Unknown devices raise ``DecodeError("unknown device")``.
    """

    name = "bed"

    def __init__(self, base_topic: str = DEFAULT_BED_BASE_TOPIC,
                 devices: Mapping[str, str] | None = None) -> None:
        self.base_topic = base_topic.rstrip("/")
        self.devices = dict(devices) if devices is not None else None

    def subscriptions(self) -> list[str]:
        return [f"{self.base_topic}/+", f"{self.base_topic}/+/availability"]

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}  # a bed that stops reporting is device health's (device_offline)

    def subscribed(self) -> None:
        pass

    def _device(self, segment: str) -> str:
        if self.devices is None:
            return segment
        device = self.devices.get(segment)
        if device is None:
            raise DecodeError("unknown device")
        return device

    def decode(self, topic: str, payload: bytes, t: float, *, retained: bool = False,
               ) -> list[Reading]:
        prefix = self.base_topic + "/"
        if not topic.startswith(prefix):
            raise DecodeError("topic is outside the bed base topic")
        parts = topic[len(prefix) :].split("/")
        if len(parts) == 2 and parts[1] == "availability":
            return [Reading(t=t, device=self._device(parts[0]),
                            values={"online": parse_online(payload)})]
        if len(parts) != 1 or not parts[0]:
            raise DecodeError("unexpected bed topic")
        device = self._device(parts[0])
        fields = bed_profile_fields(payload)
        stamp = fields.pop("t", t)
        return [Reading(t=stamp, device=device, values=fields)]


def decode_bed_message(topic: str, payload: Any, base_topic: str = DEFAULT_BED_BASE_TOPIC,
                       ) -> list[dict[str, Any]]:
    """Contract-3 form of one bed-profile message (``device`` = the topic's device segment)."""
    prefix = base_topic.rstrip("/") + "/"
    if not topic.startswith(prefix):
        raise DecodeError("topic is outside the bed base topic")
    parts = topic[len(prefix) :].split("/")
    if len(parts) == 2 and parts[1] == "availability":
        return [{"device": parts[0], "online": parse_online(payload)}]
    if len(parts) != 1 or not parts[0]:
        raise DecodeError("unexpected bed topic")
    if isinstance(payload, Mapping | str | bytes):
        return [{"device": parts[0], **bed_profile_fields(payload)}]
    raise DecodeError("bed payload is not a JSON object")


__all__ = [
    "DEFAULT_BED_BASE_TOPIC",
    "BedProfileCodec",
    "bed_profile_fields",
    "decode_bed_message",
    "decode_emfit",
    "emfit_fields",
    "parse_emfit_status",
]
