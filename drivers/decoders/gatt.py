"""Bluetooth SIG GATT characteristics: Heart Rate Measurement (0x2A37) and Battery Level (0x2A19).

Layouts from the SIG's characteristic definitions. Heart Rate Measurement, byte 0 is flags:

- bit 0: heart rate is uint16 little-endian (else uint8)
- bits 1-2: sensor contact: 0b0x not supported, 0b10 supported but not detected (the band is
  off the skin), 0b11 supported and detected
- bit 3: Energy Expended present (uint16 LE, kJ)
- bit 4: RR-intervals present (one or more uint16 LE in 1/1024 s, oldest first)

then the rate, the optional energy and the RR-intervals, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.decoders import DecodeError

HEART_RATE_MEASUREMENT_UUID16 = 0x2A37
BATTERY_LEVEL_UUID16 = 0x2A19
_SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"
RR_UNITS_PER_SECOND = 1024.0


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    hr_bpm: int
    contact_supported: bool
    contact_detected: bool | None  # None when the sensor cannot tell
    energy_expended_kj: int | None
    rr_raw: tuple[int, ...] = field(default_factory=tuple)  # in 1/1024 s
    trailing_bytes: int = 0  # bytes after the last whole field (ignored)

    @property
    def rr_seconds(self) -> list[float]:
        return [raw / RR_UNITS_PER_SECOND for raw in self.rr_raw]


def parse_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """Decode one 0x2A37 notification; raises :class:`DecodeError` when it is too short for
    the fields its flags announce. Bytes after the last whole field are counted, not fatal."""
    if len(data) < 2:
        raise DecodeError(f"heart rate measurement too short: {len(data)} bytes")
    flags = data[0]
    pos = 1
    if flags & 0x01:
        if len(data) < 3:
            raise DecodeError("heart rate measurement too short for a uint16 rate")
        hr = int.from_bytes(data[1:3], "little")
        pos = 3
    else:
        hr = data[1]
        pos = 2
    contact_bits = (flags >> 1) & 0b11
    supported = contact_bits >= 2
    detected: bool | None = (contact_bits == 3) if supported else None
    energy: int | None = None
    if flags & 0x08:
        if len(data) < pos + 2:
            raise DecodeError("heart rate measurement too short for energy expended")
        energy = int.from_bytes(data[pos : pos + 2], "little")
        pos += 2
    rr: tuple[int, ...] = ()
    rest = data[pos:]
    if flags & 0x10:
        # The flag may be set with no interval this time (no beat since the last one).
        whole = len(rest) - len(rest) % 2
        rr = tuple(int.from_bytes(rest[i : i + 2], "little") for i in range(0, whole, 2))
        rest = rest[whole:]
    return HeartRateMeasurement(hr, supported, detected, energy, rr, len(rest))


def heart_rate_fields(m: HeartRateMeasurement) -> dict[str, Any]:
    """Contract-3 fields. ``worn`` only when the sensor reports contact; a reading taken off
    the skin keeps its ``hr`` (detectors decide to distrust it through ``worn: false``)."""
    out: dict[str, Any] = {"hr": m.hr_bpm}
    if m.rr_raw:
        out["rr_intervals"] = m.rr_seconds
    if m.contact_detected is not None:
        out["worn"] = m.contact_detected
    if m.energy_expended_kj is not None:
        out["energy_kj"] = m.energy_expended_kj
    return out


def parse_battery_level(data: bytes) -> int:
    """0x2A19: one uint8 percentage; 101-255 are reserved and rejected."""
    if len(data) != 1:
        raise DecodeError(f"battery level must be 1 byte, got {len(data)}")
    if data[0] > 100:
        raise DecodeError(f"battery level {data[0]} is reserved (valid 0-100)")
    return data[0]


def uuid16_of(uuid: str) -> int:
    """``"2a37"``, ``"0x2A37"`` or the full SIG-base UUID → 0x2A37."""
    text = uuid.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) == 36 and text.endswith(_SIG_BASE_SUFFIX) and text.startswith("0000"):
        text = text[4:8]
    if len(text) not in (4, 8) or any(c not in "0123456789abcdef" for c in text):
        raise DecodeError(f"not a 16-bit Bluetooth SIG UUID: {uuid!r}")
    return int(text, 16)


def decode_gatt(uuid: str, value: bytes) -> dict[str, Any]:
    """Fields of one characteristic value, by characteristic UUID."""
    short = uuid16_of(uuid)
    if short == HEART_RATE_MEASUREMENT_UUID16:
        return heart_rate_fields(parse_heart_rate_measurement(value))
    if short == BATTERY_LEVEL_UUID16:
        return {"battery": parse_battery_level(value)}
    raise DecodeError(f"unsupported characteristic 0x{short:04x}")


__all__ = [
    "BATTERY_LEVEL_UUID16",
    "HEART_RATE_MEASUREMENT_UUID16",
    "HeartRateMeasurement",
    "decode_gatt",
    "heart_rate_fields",
    "parse_battery_level",
    "parse_heart_rate_measurement",
    "uuid16_of",
]
