"""BTHome v2 advertisements (service data UUID 0xFCD2), plain and AES-CCM encrypted.

Layout (bthome.io): byte 0 is the device information byte (bit 0 encrypted, bit 1 MAC
included, bit 2 trigger-based, bits 5-7 version = 2); then, if bit 1, the MAC reversed; then a
list of objects, each an object id followed by a value whose length the id fixes. Encrypted
payloads end with a 4-byte counter and a 4-byte MIC; the nonce is MAC + ``d2 fc`` + device
information byte + counter, the tag 4 bytes.

Shelly BLU buttons, door/window and motion sensors speak this format. De-duplication by packet
id is stateful and lives in :class:`PacketIdFilter`; everything else here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.decoders import DecodeError

BTHOME_UUID16 = 0xFCD2
_UUID_LE = b"\xd2\xfc"
_MIC_LEN = 4
_COUNTER_LEN = 4

# Object id -> (name, size in bytes, signed, factor). Every object of the v2 table is listed
# so that an unknown-to-us field is skipped by its size instead of ending the parse.
_OBJECTS: dict[int, tuple[str, int, bool, float]] = {
    0x00: ("packet_id", 1, False, 1),
    0x01: ("battery", 1, False, 1),
    0x02: ("temperature", 2, True, 0.01),
    0x03: ("humidity", 2, False, 0.01),
    0x04: ("pressure", 3, False, 0.01),
    0x05: ("illuminance", 3, False, 0.01),
    0x06: ("mass_kg", 2, False, 0.01),
    0x07: ("mass_lb", 2, False, 0.01),
    0x08: ("dewpoint", 2, True, 0.01),
    0x09: ("count", 1, False, 1),
    0x0A: ("energy", 3, False, 0.001),
    0x0B: ("power", 3, False, 0.01),
    0x0C: ("voltage", 2, False, 0.001),
    0x0D: ("pm25", 2, False, 1),
    0x0E: ("pm10", 2, False, 1),
    0x0F: ("generic_boolean", 1, False, 1),
    0x10: ("power_on", 1, False, 1),
    0x11: ("opening", 1, False, 1),
    0x12: ("co2", 2, False, 1),
    0x13: ("tvoc", 2, False, 1),
    0x14: ("moisture", 2, False, 0.01),
    0x15: ("battery_low", 1, False, 1),
    0x16: ("battery_charging", 1, False, 1),
    0x17: ("carbon_monoxide", 1, False, 1),
    0x18: ("cold", 1, False, 1),
    0x19: ("connectivity", 1, False, 1),
    0x1A: ("door", 1, False, 1),
    0x1B: ("garage_door", 1, False, 1),
    0x1C: ("gas", 1, False, 1),
    0x1D: ("heat", 1, False, 1),
    0x1E: ("light", 1, False, 1),
    0x1F: ("lock", 1, False, 1),
    0x20: ("moisture_detected", 1, False, 1),
    0x21: ("motion", 1, False, 1),
    0x22: ("moving", 1, False, 1),
    0x23: ("occupancy", 1, False, 1),
    0x24: ("plug", 1, False, 1),
    0x25: ("presence", 1, False, 1),
    0x26: ("problem", 1, False, 1),
    0x27: ("running", 1, False, 1),
    0x28: ("safety", 1, False, 1),
    0x29: ("smoke", 1, False, 1),
    0x2A: ("sound", 1, False, 1),
    0x2B: ("tamper", 1, False, 1),
    0x2C: ("vibration", 1, False, 1),
    0x2D: ("window", 1, False, 1),
    0x2E: ("humidity", 1, False, 1),
    0x2F: ("moisture", 1, False, 1),
    0x3A: ("button", 1, False, 1),
    0x3C: ("dimmer", 2, False, 1),
    0x3D: ("count", 2, False, 1),
    0x3E: ("count", 4, False, 1),
    0x3F: ("rotation", 2, True, 0.1),
    0x40: ("distance_mm", 2, False, 1),
    0x41: ("distance_m", 2, False, 0.1),
    0x42: ("duration", 3, False, 0.001),
    0x43: ("current", 2, False, 0.001),
    0x44: ("speed", 2, False, 0.01),
    0x45: ("temperature", 2, True, 0.1),
    0x46: ("uv_index", 1, False, 0.1),
    0x47: ("volume", 2, False, 0.1),
    0x48: ("volume_ml", 2, False, 1),
    0x49: ("volume_flow_rate", 2, False, 0.001),
    0x4A: ("voltage", 2, False, 0.1),
    0x4B: ("gas_volume", 3, False, 0.001),
    0x4C: ("gas_volume", 4, False, 0.001),
    0x4D: ("energy", 4, False, 0.001),
    0x4E: ("volume", 4, False, 0.001),
    0x4F: ("water", 4, False, 0.001),
    0x50: ("timestamp", 4, False, 1),
    0x51: ("acceleration", 2, False, 0.001),
    0x52: ("gyroscope", 2, False, 0.001),
    0x55: ("volume_storage", 4, False, 0.001),
    0x56: ("conductivity", 2, False, 1),
    0x57: ("temperature", 1, True, 1),
    0x58: ("temperature", 1, True, 0.35),
    0x59: ("count", 1, True, 1),
    0x5A: ("count", 2, True, 1),
    0x5B: ("count", 4, True, 1),
    0x5C: ("power", 4, True, 0.01),
    0x5D: ("current", 2, True, 0.001),
    0x5E: ("direction", 2, False, 0.01),
    0x5F: ("precipitation", 2, False, 1),
    0x60: ("channel", 1, False, 1),
    0x61: ("rotational_speed", 2, False, 1),
    0xF0: ("device_type_id", 2, False, 1),
    0xF1: ("firmware_version", 4, False, 1),
    0xF2: ("firmware_version", 3, False, 1),
}
_VARIABLE_LENGTH = {0x53: "text", 0x54: "raw"}

# Button event values -> contract-3 action names (0x00 = "no event", not a press).
BUTTON_EVENTS: dict[int, str] = {
    0x01: "press",
    0x02: "double",
    0x03: "triple",
    0x04: "long",
    0x05: "long_double",
    0x06: "long_triple",
    0x80: "hold",  # "hold press"
    0xFE: "hold",
}
_OPEN_OBJECTS = {"opening", "door", "window", "garage_door"}
_MOTION_OBJECTS = {"motion", "occupancy", "presence"}
_PASS_THROUGH = {
    "battery": "battery",
    "battery_low": "battery_low",
    "smoke": "smoke",
    "gas": "gas",
    "carbon_monoxide": "gas",
    "moisture_detected": "water_leak",
    "tamper": "tamper",
    "illuminance": "illuminance",
    "temperature": "temperature",
    "humidity": "humidity",
}


@dataclass(slots=True)
class BTHomePacket:
    """One decoded BTHome advertisement: the raw objects in order, plus what they mean."""

    encrypted: bool
    trigger_based: bool
    mac: str | None = None  # from the payload, when the device includes it
    packet_id: int | None = None
    counter: int | None = None  # encryption counter
    objects: list[tuple[str, float | int | bytes]] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """Device-level contract-3 fields (button events are in :meth:`button_actions`)."""
        out: dict[str, Any] = {}
        for name, value in self.objects:
            if isinstance(value, bytes):
                continue
            if name in _OPEN_OBJECTS:
                out["open"] = bool(value)
            elif name in _MOTION_OBJECTS:
                out["motion"] = bool(value)
            elif name in _PASS_THROUGH:
                key = _PASS_THROUGH[name]
                is_flag = key in ("battery_low", "smoke", "gas", "water_leak", "tamper")
                out[key] = bool(value) if is_flag else value
        return out

    def button_actions(self) -> list[str | None]:
        """One entry per button object, in order (button 1 first); None for "no event"."""
        actions: list[str | None] = []
        for name, value in self.objects:
            if name == "button" and isinstance(value, int):
                actions.append(BUTTON_EVENTS.get(value, None if value == 0 else f"event_{value}"))
        return actions


def _mac_bytes(mac: str) -> bytes:
    text = mac.replace(":", "").replace("-", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise DecodeError(f"bad MAC address {mac!r}") from exc
    if len(raw) != 6:
        raise DecodeError(f"bad MAC address {mac!r}")
    return raw


def _format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02X}" for b in raw)


def decrypt_payload(info: int, mac: bytes, ciphertext: bytes, counter: bytes, mic: bytes,
                    key: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    if len(key) != 16:
        raise DecodeError("BTHome key must be 16 bytes (32 hex digits)")
    nonce = mac + _UUID_LE + bytes([info]) + counter
    try:
        return AESCCM(key, tag_length=_MIC_LEN).decrypt(nonce, ciphertext + mic, None)
    except InvalidTag as exc:
        raise DecodeError("BTHome decryption failed: wrong key or corrupted packet") from exc


def encrypt_payload(info: int, mac: bytes, plaintext: bytes, counter: int, key: bytes) -> bytes:
    """Ciphertext + counter + MIC, as a sensor would send them (simulators and tests)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    counter_bytes = counter.to_bytes(_COUNTER_LEN, "little")
    nonce = mac + _UUID_LE + bytes([info]) + counter_bytes
    sealed = AESCCM(key, tag_length=_MIC_LEN).encrypt(nonce, plaintext, None)
    return sealed[:-_MIC_LEN] + counter_bytes + sealed[-_MIC_LEN:]


class BTHomeKeyMissing(DecodeError):
    """An encrypted advertisement from a device whose key is not configured."""


def parse_objects(data: bytes) -> list[tuple[str, float | int | bytes]]:
    objects: list[tuple[str, float | int | bytes]] = []
    pos = 0
    while pos < len(data):
        object_id = data[pos]
        pos += 1
        if object_id in _VARIABLE_LENGTH:
            if pos >= len(data):
                raise DecodeError(f"BTHome object 0x{object_id:02x} is missing its length")
            size = data[pos]
            pos += 1
            if pos + size > len(data):
                raise DecodeError(f"BTHome object 0x{object_id:02x} is truncated")
            objects.append((_VARIABLE_LENGTH[object_id], bytes(data[pos : pos + size])))
            pos += size
            continue
        spec = _OBJECTS.get(object_id)
        if spec is None:
            # Objects are sent in id order; what follows an unknown id cannot be sized.
            if not objects:
                raise DecodeError(f"unknown BTHome object id 0x{object_id:02x}")
            break
        name, size, signed, factor = spec
        if pos + size > len(data):
            raise DecodeError(f"BTHome object {name} (0x{object_id:02x}) is truncated")
        raw = int.from_bytes(data[pos : pos + size], "little", signed=signed)
        pos += size
        value: float | int = raw if factor == 1 else round(raw * factor, 6)
        objects.append((name, value))
    return objects


def parse_bthome(service_data: bytes, mac: str | None = None,
                 key: bytes | None = None) -> BTHomePacket:
    """Decode BTHome v2 service data. ``mac`` (the advertiser's address) and ``key`` are needed
    only for encrypted packets that do not carry their own MAC."""
    if not service_data:
        raise DecodeError("empty BTHome service data")
    info = service_data[0]
    version = info >> 5
    if version != 2:
        raise DecodeError(f"unsupported BTHome version {version}")
    encrypted = bool(info & 0x01)
    packet = BTHomePacket(encrypted=encrypted, trigger_based=bool(info & 0x04))
    body = service_data[1:]
    mac_raw: bytes | None = None
    if info & 0x02:
        if len(body) < 6:
            raise DecodeError("BTHome packet too short for its MAC")
        mac_raw = bytes(reversed(body[:6]))
        packet.mac = _format_mac(mac_raw)
        body = body[6:]
    if encrypted:
        if len(body) < _COUNTER_LEN + _MIC_LEN + 1:
            raise DecodeError("encrypted BTHome packet too short")
        if key is None:
            raise BTHomeKeyMissing("encrypted BTHome advertisement and no key configured")
        if mac_raw is None:
            if mac is None:
                raise DecodeError("encrypted BTHome packet needs the advertiser's MAC address")
            mac_raw = _mac_bytes(mac)
        ciphertext = body[: -(_COUNTER_LEN + _MIC_LEN)]
        counter = body[-(_COUNTER_LEN + _MIC_LEN) : -_MIC_LEN]
        mic = body[-_MIC_LEN:]
        body = decrypt_payload(info, mac_raw, ciphertext, counter, mic, key)
        packet.counter = int.from_bytes(counter, "little")
    packet.objects = parse_objects(body)
    for name, value in packet.objects:
        if name == "packet_id" and isinstance(value, int):
            packet.packet_id = value
            break
    return packet


def readings_from_packet(packet: BTHomePacket, device: str) -> list[dict[str, Any]]:
    """Contract-3 readings: one for the device, plus one per further button that has an event
    (button n > 1 is ``device:n``; button 1's action goes on the device's own reading)."""
    main: dict[str, Any] = {"device": device, **packet.fields()}
    extra: list[dict[str, Any]] = []
    for index, action in enumerate(packet.button_actions()):
        if action is None:
            continue
        if index == 0:
            main["action"] = action
        else:
            extra.append({"device": f"{device}:{index + 1}", "action": action})
    readings = [main] if len(main) > 1 else []
    return readings + extra


class PacketIdFilter:
    """Drops re-broadcasts of the same BTHome packet.

    A sensor repeats each advertisement many times; the packet id changes only when the data
    does. A packet is a duplicate when its id equals the last one seen from that address
    within ``window_s`` (monotonic seconds). After the window the same id is accepted again,
    so a device that restarted its counter, or a periodic beacon, is never silenced for long.
    For a packet carrying an ``event`` (a button's press) the window runs from the last time
    it was heard: a button that keeps advertising its press sent the same press again every
    ``window_s``, each an SOS; one quiet for ``window_s`` (a battery changed) is heard anew.
    """

    def __init__(self, window_s: float = 20.0, max_devices: int = 1024) -> None:
        self.window_s = window_s
        self.max_devices = max_devices
        self._last: dict[str, tuple[int, float]] = {}
        self.duplicates = 0

    def accept(
        self, address: str, packet_id: int | None, now: float, *, event: bool = False
    ) -> bool:
        if packet_id is None:
            return True
        previous = self._last.get(address)
        if previous is not None and previous[0] == packet_id and now - previous[1] < self.window_s:
            self.duplicates += 1
            if event:
                self._last[address] = (packet_id, now)
            return False
        if previous is None and len(self._last) >= self.max_devices:
            self._last.pop(next(iter(self._last)))
        self._last[address] = (packet_id, now)
        return True


def parse_key(hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key.strip())
    except ValueError as exc:
        raise DecodeError("BTHome key must be 32 hex digits") from exc
    if len(key) != 16:
        raise DecodeError("BTHome key must be 32 hex digits")
    return key


def normalise_keys(keys: Mapping[str, bytes | str] | None) -> dict[str, bytes]:
    """Address (any case) -> 16-byte key."""
    out: dict[str, bytes] = {}
    for address, key in (keys or {}).items():
        out[address.upper()] = key if isinstance(key, bytes) else parse_key(key)
    return out


__all__ = [
    "BTHOME_UUID16",
    "BUTTON_EVENTS",
    "BTHomeKeyMissing",
    "BTHomePacket",
    "PacketIdFilter",
    "encrypt_payload",
    "normalise_keys",
    "parse_bthome",
    "parse_key",
    "readings_from_packet",
]
