"""Recordings (contract 2): JSON Lines of device declarations, resident settings and readings.

:func:`parse_line` turns one line into a typed record or raises :class:`RecordError` with the
reason; unknown fields are ignored, unknown record types are errors (reported, skipped).
Times are epoch seconds or ISO 8601 strings; :class:`TimeFormat` remembers which, so that
output can use the same convention as the input.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from gateway.model import Device, DeviceKind, Reading, Resident, Room, is_number

MAX_LINE_BYTES = 4 * 1024 * 1024
# Epoch seconds further from 1970 than 2100-01-01 is (either way) are a broken clock or a bad
# number: the daily summary could not even turn them into a date.
LATEST_T = 4_102_444_800.0
RESERVED_READING_KEYS = frozenset({"type", "t", "device"})


class RecordError(ValueError):
    pass


@dataclass
class TimeFormat:
    """How the input wrote times: epoch numbers, or ISO strings (naive or with an offset)."""

    iso: bool = False
    tz: dt.tzinfo | None = None  # the offset of aware ISO input; None: naive (read as UTC)

    def parse(self, value: Any) -> float:
        if isinstance(value, bool):
            raise RecordError(f"t: expected epoch seconds or ISO 8601, got {value!r}")
        if isinstance(value, (int, float)):
            try:
                t = float(value)
            except OverflowError:
                t = math.inf
            return _plausible(t, value)
        if isinstance(value, str):
            try:
                stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise RecordError(f"t: not ISO 8601: {value[:40]!r}") from None
            zone = stamp.tzinfo
            try:
                t = stamp.replace(tzinfo=zone or dt.UTC).timestamp()
            except OverflowError:  # year 1 or 9999 with an offset
                t = math.inf
            t = _plausible(t, value)
            if not self.iso:
                self.iso = True
                self.tz = zone
            return t
        raise RecordError(f"t: expected epoch seconds or ISO 8601, got {type(value).__name__}")

    def parse_in_zone(self, value: Any) -> float:
        """A time given beside the recording (``--until``): a naive ISO time is read in the
        zone of the recording's own times (the offset they carry), as the home's clock says;
        anything else as :meth:`parse`. Leaves this format's convention as it is."""
        if isinstance(value, str) and self.tz is not None:
            try:
                stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                if stamp.tzinfo is None:
                    value = stamp.replace(tzinfo=self.tz).isoformat()
        return TimeFormat(self.iso, self.tz).parse(value)

    def format(self, t: float) -> float | str:
        if not self.iso:
            return t
        stamp = dt.datetime.fromtimestamp(t, self.tz or dt.UTC)
        if self.tz is None:
            stamp = stamp.replace(tzinfo=None)
        return stamp.isoformat(timespec="milliseconds" if t % 1 else "seconds")


def _plausible(t: float, value: Any) -> float:
    if not -LATEST_T <= t <= LATEST_T:  # False for NaN too
        raise RecordError(f"t: expected epoch seconds before the year 2100, got {value!r:.40}")
    return t


def _text(record: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise RecordError(f"{key}: expected a non-empty string, got {value!r}")
    return value


# The resident of a device declared without one (a replay gives it to the recording's one
# declared resident, if it declares exactly one).
UNNAMED_RESIDENT = "resident"


def parse_device(record: dict[str, Any]) -> Device:
    device_id = _text(record, "id")
    kind_text = _text(record, "kind")
    try:
        kind = DeviceKind(str(kind_text))
    except ValueError:
        known = ", ".join(k.value for k in DeviceKind)
        raise RecordError(f"kind: expected one of {known}, got {kind_text!r}") from None
    room_text = record.get("room") or "other"
    try:
        room = Room(room_text)
    except ValueError:
        room = Room.OTHER  # an unusual room still gets its readings; only its label is lost
    resident = _text(record, "resident", required=False) or UNNAMED_RESIDENT
    role = _text(record, "role", required=False)
    options = {k: v for k, v in record.items() if k not in ("type", "id", "kind", "room", "role")}
    assert device_id is not None
    return Device(device_id, kind, resident, room, role, options)


def parse_resident(record: dict[str, Any]) -> Resident:
    resident_id = _text(record, "id")
    assert resident_id is not None
    fields: dict[str, Any] = {}
    for key in ("night_start", "night_end"):
        if key in record:
            value = record[key]
            if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
                raise RecordError(f"{key}: expected 'HH:MM', got {value!r}")
            fields[key] = value
    if "wander_risk" in record:
        fields["wander_risk"] = bool(record["wander_risk"])
    known = ("type", "id", "night_start", "night_end", "wander_risk")
    settings = {k: v for k, v in record.items() if k not in known}
    return Resident(resident_id, settings=settings, **fields)


BOOL_FIELDS = frozenset(
    {
        "open",
        "motion",
        "occupied",
        "worn",
        "online",
        "battery_low",
        "tamper",
        "water_leak",
        "smoke",
        "gas",
    }
)
NUMBER_FIELDS = frozenset({"hr", "rr", "battery", "fs", "movement", "rssi", "linkquality"})


def validate_values(values: dict[str, Any]) -> None:
    """Type-check the fields the detectors rely on; others pass through untouched."""
    for key, value in values.items():
        if key in BOOL_FIELDS:
            if not isinstance(value, bool):
                raise RecordError(f"{key}: expected true or false, got {value!r:.40}")
        elif key in NUMBER_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                # the type, not the value: a heart rate sent as "72" is still a health value,
                # and this reason goes into the gateway's log (the JSON device topic)
                raise RecordError(f"{key}: expected a number, got {type(value).__name__}")
            try:
                finite = math.isfinite(value)
            except OverflowError:  # an integer of hundreds of digits
                finite = False
            if not finite:
                raise RecordError(f"{key}: expected a finite number, got {value!r:.40}")
        elif key == "action" and not isinstance(value, str):
            raise RecordError(f"action: expected a string, got {value!r:.40}")
        elif key in ("acc", "ts") and not isinstance(value, list):
            raise RecordError(f"{key}: expected a list, got {type(value).__name__}")


def parse_reading(record: dict[str, Any], times: TimeFormat) -> Reading:
    if "t" not in record:
        raise RecordError("t: required")
    t = times.parse(record["t"])
    device = _text(record, "device")
    assert device is not None
    values = {k: v for k, v in record.items() if k not in RESERVED_READING_KEYS}
    validate_values(values)
    ts = values.get("ts")
    if isinstance(ts, list) and not all(is_number(x) for x in ts):
        # per-sample times in the recording's convention, like t (ISO strings)
        try:
            values["ts"] = [times.parse(x) for x in ts]
        except RecordError as exc:
            raise RecordError(f"ts: {str(exc).removeprefix('t: ')}") from None
    _check_samples(values)
    return Reading(t, device, values)


def _check_samples(values: dict[str, Any]) -> None:
    """A wristband batch the fall detector could not use is a bad line, not a silent drop."""
    acc = values.get("acc")
    if acc is None:
        return
    if not all(isinstance(s, list) and len(s) == 3 and all(map(is_number, s)) for s in acc):
        raise RecordError("acc: expected a list of [x, y, z] numbers (g)")
    ts = values.get("ts")
    if ts is not None:
        if len(ts) != len(acc):
            raise RecordError(f"ts: {len(ts)} times for {len(acc)} samples")
    elif "fs" not in values:
        raise RecordError("acc: needs fs (Hz) or per-sample ts")
    elif values["fs"] <= 0:
        raise RecordError(f"fs: expected a rate above 0 Hz, got {values['fs']!r:.40}")


def parse_line(line: str, times: TimeFormat) -> Device | Resident | Reading | None:
    """None for blank lines and comments. A byte-order mark (a file saved by a Windows
    editor) is no part of the line: it cost the first line, the first device's declaration."""
    stripped = line.lstrip("\ufeff").strip()
    if not stripped or stripped.startswith("#"):
        return None
    if len(stripped) > MAX_LINE_BYTES:
        raise RecordError(f"line too long ({len(stripped)} bytes, limit {MAX_LINE_BYTES})")
    try:
        record = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RecordError("not JSON: nested too deeply") from None
    except ValueError as exc:  # an integer over Python's 4,300-digit limit
        raise RecordError(f"not JSON: {str(exc)[:60]}") from None
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    kind = record.get("type")
    if kind == "reading":
        return parse_reading(record, times)
    if kind == "device":
        return parse_device(record)
    if kind == "resident":
        return parse_resident(record)
    raise RecordError(f"type: expected 'reading', 'device' or 'resident', got {kind!r}")
