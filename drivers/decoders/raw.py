"""Contract 3: one raw device message (a JSON object) → a list of normalised readings.

Sources:

- ``{"source": "zigbee2mqtt", "topic": "zigbee2mqtt/Bedroom Window", "payload": {...} | "..."}``
- ``{"source": "ble-adv", "address": "AA:BB:..", "name": "...", "manufacturer_data":
  {"<company id>": "<hex>"}, "service_data": {"<uuid>": "<hex>"}, "key"?: "<BTHome key hex>"}``
- ``{"source": "gatt", "uuid": "2a37", "value": "<hex>", "address"?: "AA:BB:.."}``
- eldergate extensions: ``{"source": "bed", "topic": "eldergate/bed/<device>", "payload": ...}``
  and ``{"source": "emfit", "device": "...", "payload": "PRES=1<br>..."}``.

Each reading is a dict in the shape of a recording's reading, ``device`` set to the friendly
name or BLE address. :func:`decode_raw` raises :class:`DecodeError` and nothing else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from drivers.decoders import DecodeError
from drivers.decoders.advertisements import decode_advertisement
from drivers.decoders.bed import DEFAULT_BED_BASE_TOPIC, decode_bed_message, decode_emfit
from drivers.decoders.bthome import parse_key
from drivers.decoders.gatt import decode_gatt
from drivers.decoders.zigbee2mqtt import decode_message

SOURCES = ("zigbee2mqtt", "ble-adv", "gatt", "bed", "emfit")


def _text_field(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise DecodeError(f"missing or non-string field {key!r}")
    return value


def _decode(obj: Any, base_topic: str, bed_base_topic: str,
            keys: Mapping[str, bytes] | None) -> list[dict[str, Any]]:
    if not isinstance(obj, Mapping):
        raise DecodeError("message is not a JSON object")
    source = obj.get("source")
    if source == "zigbee2mqtt":
        topic = _text_field(obj, "topic")
        if "payload" not in obj:
            raise DecodeError("missing field 'payload'")
        payload = obj["payload"]
        base = base_topic if topic.startswith(base_topic.rstrip("/") + "/") else topic.split("/")[0]
        return decode_message(topic, payload, base)
    if source == "ble-adv":
        merged = dict(keys or {})
        if "key" in obj:
            key = obj["key"]
            if not isinstance(key, str):
                raise DecodeError("key must be a hex string")
            address = obj.get("address")
            if isinstance(address, str):
                merged[address.upper()] = parse_key(key)
        return decode_advertisement(obj, merged)
    if source == "gatt":
        uuid = _text_field(obj, "uuid")
        value = obj.get("value")
        if not isinstance(value, str):
            raise DecodeError("missing or non-string field 'value'")
        try:
            data = bytes.fromhex(value)
        except ValueError as exc:
            raise DecodeError("value is not valid hex") from exc
        fields = decode_gatt(uuid, data)
        device = obj.get("address", obj.get("device", "gatt"))
        if not isinstance(device, str):
            raise DecodeError("address must be a string")
        return [{"device": device, **fields}]
    if source == "bed":
        topic = _text_field(obj, "topic")
        base = (bed_base_topic if topic.startswith(bed_base_topic.rstrip("/") + "/")
                else topic.rsplit("/", 1)[0])
        return decode_bed_message(topic, obj.get("payload"), base)
    if source == "emfit":
        device = _text_field(obj, "device")
        payload = obj.get("payload")
        if not isinstance(payload, str):
            raise DecodeError("Emfit payload must be the status text")
        return [{"device": device, **decode_emfit(payload)}]
    raise DecodeError(f"unknown source {source!r} (expected one of {', '.join(SOURCES)})")


def decode_raw(obj: Any, *, base_topic: str = "zigbee2mqtt",
               bed_base_topic: str = DEFAULT_BED_BASE_TOPIC,
               keys: Mapping[str, bytes] | None = None) -> list[dict[str, Any]]:
    """One raw message → readings; raises only :class:`DecodeError`."""
    try:
        return _decode(obj, base_topic, bed_base_topic, keys)
    except DecodeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as exc:  # a decoder bug must not take the caller down
        raise DecodeError(f"undecodable message ({type(exc).__name__})") from exc


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def decode_line(line: str, **options: Any) -> str:
    """One JSON Lines input line → exactly one output line (no newline): a JSON array of
    readings, or ``{"error": "..."}``. A byte-order mark (a file saved by a Windows editor)
    is no part of the message."""
    try:
        obj = json.loads(line.lstrip("\ufeff"))
    except (ValueError, RecursionError):
        return json.dumps({"error": "line is not valid JSON"})
    try:
        readings = decode_raw(obj, **options)
    except DecodeError as exc:
        return json.dumps({"error": str(exc) or "undecodable message"})
    cleaned = [{k: _finite(v) for k, v in r.items()} for r in readings]
    return json.dumps(cleaned, separators=(",", ":"), ensure_ascii=False)


__all__ = ["SOURCES", "decode_line", "decode_raw"]
