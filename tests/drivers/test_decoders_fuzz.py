"""Fuzz: ≥10,000 random inputs into every decoder entry point; only DecodeError may escape.

A seeded random loop (reproducible, a fraction of a second per entry point): random bytes,
mutations of valid messages (flipped, truncated, extended), and random JSON-like values built
from the field names the decoders look for.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from drivers.decoders import DecodeError, raw
from drivers.decoders.advertisements import (
    AdvertisementDecoder,
    parse_advertisement,
    parse_advertisement_json,
)
from drivers.decoders.bed import BedProfileCodec, bed_profile_fields, decode_emfit
from drivers.decoders.bthome import parse_bthome
from drivers.decoders.encoders import (
    bed_profile_payload,
    bthome_service_data,
    emfit_status_text,
    heart_rate_measurement,
    z2m_state_payload,
)
from drivers.decoders.gatt import decode_gatt, parse_battery_level, parse_heart_rate_measurement
from drivers.decoders.raw import decode_line, decode_raw
from drivers.decoders.zigbee2mqtt import decode_message
from drivers.zigbee2mqtt import Zigbee2MqttCodec

N = 10_000
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
MAC = "54:48:E6:8F:80:A5"
FIELDS = ["contact", "occupancy", "action", "click", "battery", "battery_low", "water_leak",
          "smoke", "gas", "tamper", "linkquality", "state", "occupied", "hr", "rr", "movement",
          "t", "source", "topic", "payload", "address", "name", "manufacturer_data",
          "service_data", "uuid", "value", "key", "device", "presence"]
TOPICS = ["zigbee2mqtt/d", "zigbee2mqtt/d/action", "zigbee2mqtt/d/availability",
          "zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge/info", "zigbee2mqtt/", "zigbee2mqtt",
          "zigbee2mqtt/a/b/set", "eldergate/bed/b", "eldergate/bed/b/availability", "x", ""]
SEEDS = [
    bytes.fromhex("40001e01643a02"),
    bytes.fromhex("44001d01643a003a013a003a00"),
    bytes.fromhex("440056016405e406012d003f0000"),
    bytes.fromhex("41a47266c95f730011223378237214"),
    bytes.fromhex("43a5808fe64854f196c06ffb4900112233f08ecbde"),
    bthome_service_data({"open": True, "battery": 50}, 3, key=KEY, mac=MAC),
    heart_rate_measurement(72, worn=True, energy_kj=5, rr_seconds=(0.8, 0.9)),
    heart_rate_measurement(300, rr_seconds=(1.0,)),
    bytes.fromhex("0804751060342d580201600f01420f0101"),
    bytes.fromhex("4812ffeeddccbbaa0804010300000f0150"),
    bytes.fromhex("6440c1050000000000"),
    bytes.fromhex("7340d50000f2"),
    bytes.fromhex("02599c37d90287a52152000660259003"),
    json.dumps(z2m_state_payload({"open": True, "battery": 40, "action": "sos"})).encode(),
    bed_profile_payload({"occupied": True, "hr": 60, "rr": 12}, t=1.0),
    emfit_status_text({"occupied": True, "hr": 55, "rr": 12}).encode(),
]


def random_bytes(rng: random.Random) -> bytes:
    choice = rng.random()
    if choice < 0.3:
        return rng.randbytes(rng.randint(0, 40))
    data = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op < 0.7:
            del data[rng.randrange(len(data) + 1):]
        else:
            data += rng.randbytes(rng.randint(1, 6))
    return bytes(data)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 100, 101, 255, 2**40, rng.randint(-500, 500)])
    if kind == 3:
        return rng.choice([0.5, float("nan"), float("inf"), -0.0, 1e308, rng.uniform(-1e3, 1e3)])
    if kind == 4:
        return rng.choice(["", "online", "offline", "single", "emergency", "button_2_double",
                           "fcd2", "2a37", "ff", "40001e01643a02", "PRES=1<br>", "true", "zz"])
    if kind == 5:
        return random_bytes(rng).hex()
    if kind == 6:
        return rng.choice(TOPICS)
    if kind == 7:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice([*FIELDS, "fcd2", "107", "0x2a06", "65535"]): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 6))}


def random_payload(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.4:
        return random_bytes(rng)
    if r < 0.8:
        return json.dumps(random_value(rng)).encode()
    return random_value(rng)


def random_message(rng: random.Random) -> Any:
    obj = random_value(rng)
    if isinstance(obj, dict) and rng.random() < 0.8:
        obj["source"] = rng.choice(["zigbee2mqtt", "ble-adv", "gatt", "bed", "emfit"])
    return obj


def _codec_decode(rng: random.Random) -> None:
    codec = Zigbee2MqttCodec("zigbee2mqtt", {"d": "door", "a/b": "ab"})
    codec.decode(rng.choice(TOPICS), random_bytes(rng), t=rng.uniform(0, 100))


def _adv(rng: random.Random) -> None:
    services: dict[int | str, bytes] = {
        rng.choice([0xFCD2, 0xFDCD, 0x0D00, 0xFD3D, 0x2A06, 0x0000, "1234"]): random_bytes(rng)}
    companies = {rng.choice([0x000D, 0x006B, 0xFF04, 0x0157, 0x004C]): random_bytes(rng)}
    parse_advertisement(MAC, rng.choice([None, "P MAG 1", "x"]), companies, services,
                        keys={MAC: KEY} if rng.random() < 0.5 else None)


_LIVE_ADV = AdvertisementDecoder(keys={MAC: KEY})

ENTRY_POINTS: dict[str, Callable[[random.Random], Any]] = {
    "parse_heart_rate_measurement": lambda r: parse_heart_rate_measurement(random_bytes(r)),
    "parse_battery_level": lambda r: parse_battery_level(random_bytes(r)),
    "decode_gatt": lambda r: decode_gatt(r.choice(["2a37", "2a19", "0x2A37", "zz", ""]),
                                         random_bytes(r)),
    "parse_bthome": lambda r: parse_bthome(random_bytes(r), mac=r.choice([MAC, None, "bad"]),
                                           key=r.choice([KEY, None])),
    "parse_advertisement": _adv,
    "AdvertisementDecoder.to_readings": lambda r: _LIVE_ADV.to_readings(
        MAC, None, {}, {0xFCD2: random_bytes(r)}, t=1.0, now_mono=r.uniform(0, 100)),
    "parse_advertisement_json": lambda r: parse_advertisement_json(random_value(r) or {}),
    "zigbee2mqtt.decode_message": lambda r: decode_message(r.choice(TOPICS), random_payload(r)),
    "Zigbee2MqttCodec.decode": _codec_decode,
    "bed_profile_fields": lambda r: bed_profile_fields(random_payload(r)),
    "BedProfileCodec.decode": lambda r: BedProfileCodec().decode(r.choice(TOPICS),
                                                                  random_bytes(r), t=1.0),
    "decode_emfit": lambda r: decode_emfit(random_bytes(r)),
    "decode_raw": lambda r: decode_raw(random_message(r)),
    # The same without decode_raw's last-resort net, so that a decoder bug cannot hide.
    "raw._decode": lambda r: raw._decode(random_message(r), "zigbee2mqtt", "eldergate/bed", None),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_only_decode_errors_escape(name: str) -> None:
    rng = random.Random(f"eldergate-fuzz-{name}")
    entry = ENTRY_POINTS[name]
    decoded = rejected = 0
    for _ in range(N):
        try:
            entry(rng)
            decoded += 1
        except DecodeError as exc:
            assert str(exc), "a DecodeError must carry a reason"
            rejected += 1
    assert decoded + rejected == N
    assert rejected > 0  # the fuzzer does reach the error paths


def test_decode_line_always_prints_one_json_line() -> None:
    rng = random.Random("eldergate-fuzz-decode-line")
    for _ in range(N):
        if rng.random() < 0.7:
            line = json.dumps(random_message(rng))
        else:
            line = random_bytes(rng).decode("utf-8", errors="replace")
        out = decode_line(line)
        assert "\n" not in out
        parsed = json.loads(out)
        assert isinstance(parsed, list) or set(parsed) == {"error"}
