"""Whole BLE advertisements → contract-3 readings.

An advertisement is the advertiser's address and name, its manufacturer data (company id →
bytes, without the company id, as bleak gives it) and its service data (UUID → bytes). The
formats understood, each keyed by what identifies it:

============================  ===========================  ===================================
format                        identified by                fields
============================  ===========================  ===================================
BTHome v2 (Shelly BLU, ...)   service data 0xFCD2          open, motion, action per button,
                                                           battery, battery_low, smoke, ...
Qingping (CGH1, CGPR1)        service data 0xFDCD          open, motion, battery
SwitchBot motion / contact    service data 0x0D00, 0xFD3D  motion, open, battery
Sensor Easy SE MAG            service data 0x2A06 + name   open
NodOn NIU button              service data 0x0000, 16 B    action, battery
BeeWi door sensor             company 0x000D               open, battery
Polar H10, XOSS X2            company 0x006B, 0xFF04       hr (battery for XOSS)
Huami (Mi Band, Amazfit)      company 0x0157               hr while active
============================  ===========================  ===================================

Anything else (phones, watches that only say "I am here") yields no readings. Byte layouts are
facts taken from the public test vectors and device documentation; no third-party code is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.decoders import DecodeError
from drivers.decoders.bthome import (
    BTHOME_UUID16,
    BTHomeKeyMissing,
    PacketIdFilter,
    normalise_keys,
    parse_bthome,
    readings_from_packet,
)
from gateway.model import Reading

_SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"

QINGPING_UUID16 = 0xFDCD
SWITCHBOT_UUIDS16 = (0x0D00, 0xFD3D)
SE_MAG_UUID16 = 0x2A06
NODON_UUID16 = 0x0000

COMPANY_BEEWI = 0x000D
COMPANY_POLAR = 0x006B
COMPANY_XOSS = 0xFF04
COMPANY_HUAMI = 0x0157

NODON_EVENTS = {
    0x01: "press",
    0x02: "double",
    0x03: "long",
    0x04: "release",
    0x05: "triple",
    0x06: "quadruple",
    0x07: "quintuple",
}
_PLAUSIBLE_HR = range(20, 251)


@dataclass(slots=True)
class DecodedAdvertisement:
    readings: list[dict[str, Any]] = field(default_factory=list)
    format: str | None = None
    packet_id: int | None = None  # BTHome: for de-duplication


def service_uuid_key(uuid: str | int) -> int | str:
    """A service-data UUID as a 16-bit int when it is a SIG short UUID, else lower-case text."""
    if isinstance(uuid, int):
        return uuid
    text = uuid.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) == 36 and text.startswith("0000") and text.endswith(_SIG_BASE_SUFFIX):
        text = text[4:8]
    if len(text) == 4 and all(c in "0123456789abcdef" for c in text):
        return int(text, 16)
    return text


def _battery_7bit(value: int) -> int | None:
    pct = value & 0x7F
    return pct if pct <= 100 else None


def _qingping(data: bytes, device: str) -> list[dict[str, Any]]:
    # flags, product id, MAC reversed (6), then TLVs of (type, length, value).
    if len(data) < 8:
        raise DecodeError("Qingping service data too short")
    product = data[1]
    fields: dict[str, Any] = {}
    pos = 8
    seen_packet = False
    while pos + 2 <= len(data):
        kind, size = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + size]
        if len(value) < size:
            raise DecodeError(f"Qingping field 0x{kind:02x} is truncated")
        pos += 2 + size
        if kind == 0x02 and size == 1:
            if value[0] <= 100:
                fields["battery"] = value[0]
        elif kind == 0x04 and size == 1:
            fields["open"] = value[0] != 1  # 0 open, 1 closed, 2 left open
        elif kind == 0x08 and size == 4:
            fields["motion"] = bool(value[0])
            fields["illuminance"] = value[1] | (value[2] << 8) | (value[3] << 16)
        elif kind == 0x09 and size == 4:
            fields["illuminance"] = int.from_bytes(value, "little")
        elif kind == 0x11 and size == 1 and product == 0x12:
            # CGPR1 event packet: the vectors' source reads this byte as motion.
            fields["motion"] = bool(value[0])
        elif kind == 0x0F and size == 1:
            if seen_packet and product == 0x04:
                # CGH1 periodic packet: a second 0x0f entry carries the door state.
                fields["open"] = value[0] != 1
            seen_packet = True
    if pos != len(data):
        raise DecodeError("Qingping service data has a ragged tail")
    return [{"device": device, **fields}] if fields else []


def _switchbot(data: bytes, device: str) -> list[dict[str, Any]]:
    if not data:
        raise DecodeError("empty SwitchBot service data")
    model = data[0] & 0x7F
    if model == 0x73:  # 's': motion sensor
        if len(data) < 6:
            raise DecodeError("SwitchBot motion data too short")
        fields: dict[str, Any] = {"motion": bool(data[1] & 0x40)}
    elif model == 0x64:  # 'd': contact sensor
        if len(data) < 9:
            raise DecodeError("SwitchBot contact data too short")
        state = data[3]
        fields = {"open": bool(state & 0x04) or bool(state & 0x02), "motion": bool(data[1] & 0x40)}
    else:
        return []
    battery = _battery_7bit(data[2])
    if battery is not None:
        fields["battery"] = battery
    return [{"device": device, **fields}]


def _se_mag(data: bytes, name: str, device: str) -> list[dict[str, Any]]:
    if "MAG" not in name.upper() or len(data) != 2:
        return []
    return [{"device": device, "open": not bool(data[0] & 0x01)}]


def _nodon(data: bytes, device: str) -> list[dict[str, Any]]:
    if len(data) != 16:
        return []
    fields: dict[str, Any] = {}
    battery = _battery_7bit(data[12])
    if battery is not None:
        fields["battery"] = battery
    action = NODON_EVENTS.get(data[15])
    if action is not None:
        fields["action"] = action
    return [{"device": device, **fields}] if fields else []


def _manufacturer(company: int, data: bytes, device: str) -> list[dict[str, Any]]:
    if company == COMPANY_BEEWI and len(data) == 5 and data[0:2] == b"\x08\x0c":
        fields: dict[str, Any] = {"open": bool(data[2] & 0x01)}
        if data[4] <= 100:
            fields["battery"] = data[4]
        return [{"device": device, **fields}]
    if company == COMPANY_POLAR and len(data) == 4:
        return [{"device": device, "hr": data[3]}] if data[3] in _PLAUSIBLE_HR else []
    if company == COMPANY_XOSS and len(data) == 4:
        fields = {}
        if data[3] in _PLAUSIBLE_HR:
            fields["hr"] = data[3]
        battery = _battery_7bit(data[1])
        if battery is not None:
            fields["battery"] = battery
        return [{"device": device, **fields}] if fields else []
    if company == COMPANY_HUAMI and len(data) >= 4 and data[0] == 0x02:
        # Heart rate while an activity is running; 0xff = none.
        return [{"device": device, "hr": data[3]}] if data[3] in _PLAUSIBLE_HR else []
    return []


def parse_advertisement(
    address: str,
    name: str | None,
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[int | str, bytes],
    keys: Mapping[str, bytes] | None = None,
) -> DecodedAdvertisement:
    """Decode every format this advertisement carries. ``keys`` maps upper-case addresses to
    BTHome keys. Raises :class:`DecodeError` for a recognised format with malformed bytes;
    an encrypted BTHome packet without a key raises :class:`BTHomeKeyMissing`."""
    device = address
    result = DecodedAdvertisement()
    services = {service_uuid_key(u): bytes(v) for u, v in service_data.items()}
    bthome = services.get(BTHOME_UUID16)
    if bthome is not None:
        key = (keys or {}).get(address.upper())
        packet = parse_bthome(bthome, mac=address if _looks_like_mac(address) else None, key=key)
        result.format = "bthome"
        result.packet_id = packet.packet_id
        result.readings = readings_from_packet(packet, device)
        return result
    for uuid, data in services.items():
        if uuid == QINGPING_UUID16:
            result.format, result.readings = "qingping", _qingping(data, device)
        elif uuid in SWITCHBOT_UUIDS16:
            result.format, result.readings = "switchbot", _switchbot(data, device)
        elif uuid == SE_MAG_UUID16:
            result.format, result.readings = "se_mag", _se_mag(data, name or "", device)
        elif uuid == NODON_UUID16:
            result.format, result.readings = "nodon_niu", _nodon(data, device)
        if result.readings:
            return result
    for company, data in manufacturer_data.items():
        readings = _manufacturer(company, bytes(data), device)
        if readings:
            result.format, result.readings = f"company_0x{company:04x}", readings
            return result
    return result


def _looks_like_mac(address: str) -> bool:
    parts = address.split(":")
    return len(parts) == 6 and all(len(p) == 2 for p in parts)


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise DecodeError(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise DecodeError(f"{what} is not valid hex") from exc


def _company_id(key: Any) -> int:
    try:
        text = str(key).strip().lower()
        company = int(text, 16) if text.startswith("0x") else int(text)
    except ValueError as exc:
        raise DecodeError(f"manufacturer data key {key!r} is not a company id") from exc
    if not 0 <= company <= 0xFFFF:
        raise DecodeError(f"company id {company} out of range")
    return company


def parse_advertisement_json(obj: Mapping[str, Any], keys: Mapping[str, bytes] | None = None,
                             ) -> DecodedAdvertisement:
    """The contract-3 ``ble-adv`` object (also accepts the TheengsDecoder-style keys
    ``id``/``manufacturerdata``/``servicedata``/``servicedatauuid``, where manufacturer data
    starts with the little-endian company id)."""
    if not isinstance(obj, Mapping):
        raise DecodeError("advertisement is not a JSON object")
    address = obj.get("address", obj.get("id"))
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        raise DecodeError("name must be a string")
    manufacturer: dict[int, bytes] = {}
    raw_mfd = obj.get("manufacturer_data")
    raw_mfd = {} if raw_mfd is None else raw_mfd
    if not isinstance(raw_mfd, Mapping):
        raise DecodeError("manufacturer_data must be an object")
    for key, value in raw_mfd.items():
        manufacturer[_company_id(key)] = _hex(value, "manufacturer data")
    services: dict[int | str, bytes] = {}
    raw_svc = obj.get("service_data")
    raw_svc = {} if raw_svc is None else raw_svc
    if not isinstance(raw_svc, Mapping):
        raise DecodeError("service_data must be an object")
    for key, value in raw_svc.items():
        if not isinstance(key, str):
            raise DecodeError("service data UUID must be a string")
        services[service_uuid_key(key)] = _hex(value, "service data")
    if "manufacturerdata" in obj:
        full = _hex(obj["manufacturerdata"], "manufacturerdata")
        if len(full) < 2:
            raise DecodeError("manufacturerdata shorter than its company id")
        manufacturer[int.from_bytes(full[:2], "little")] = full[2:]
    if "servicedata" in obj:
        uuid = obj.get("servicedatauuid")
        services[service_uuid_key(uuid) if isinstance(uuid, str) else -1] = _hex(
            obj["servicedata"], "servicedata")
    if address is None:
        address = _address_from_payload(services) or name or "unknown"
    if not isinstance(address, str) or not address:
        raise DecodeError("address must be a non-empty string")
    return parse_advertisement(address, name, manufacturer, services, keys)


def _address_from_payload(services: Mapping[int | str, bytes]) -> str | None:
    qingping = services.get(QINGPING_UUID16)
    if qingping is not None and len(qingping) >= 8:
        return ":".join(f"{b:02X}" for b in reversed(qingping[2:8]))
    return None


def decode_advertisement(obj: Mapping[str, Any], keys: Mapping[str, bytes] | None = None,
                         ) -> list[dict[str, Any]]:
    """Contract 3: readings of one ``ble-adv`` object; an encrypted packet without a key
    configured yields ``[]`` (recognised, but nothing we can read)."""
    try:
        return parse_advertisement_json(obj, keys).readings
    except BTHomeKeyMissing:
        return []


class AdvertisementDecoder:
    """The live path: decode, drop BTHome re-broadcasts, stamp with time.

    ``to_readings`` never raises anything but :class:`DecodeError`; the caller counts those.
    """

    def __init__(self, keys: Mapping[str, bytes | str] | None = None,
                 packet_filter: PacketIdFilter | None = None) -> None:
        """``keys``: BLE address → BTHome key (16 bytes or 32 hex digits)."""
        self.keys = normalise_keys(keys)
        self.packet_filter = packet_filter or PacketIdFilter()
        self.encrypted_without_key = 0

    def to_readings(self, address: str, name: str | None, manufacturer_data: Mapping[int, bytes],
                    service_data: Mapping[int | str, bytes], t: float,
                    now_mono: float) -> list[Reading]:
        try:
            decoded = parse_advertisement(address, name, manufacturer_data, service_data,
                                          self.keys)
        except BTHomeKeyMissing:
            self.encrypted_without_key += 1
            raise
        event = any("action" in fields for fields in decoded.readings)
        if not self.packet_filter.accept(address.upper(), decoded.packet_id, now_mono, event=event):
            return []
        return [dicts_to_reading(d, t) for d in decoded.readings]


def dicts_to_reading(fields: Mapping[str, Any], t: float) -> Reading:
    values = {k: v for k, v in fields.items() if k not in ("device", "t")}
    return Reading(t=float(fields.get("t", t)), device=str(fields["device"]), values=values)


__all__ = [
    "AdvertisementDecoder",
    "DecodedAdvertisement",
    "decode_advertisement",
    "dicts_to_reading",
    "parse_advertisement",
    "parse_advertisement_json",
    "service_uuid_key",
]
