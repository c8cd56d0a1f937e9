"""Conformance: every shared device vector decodes to its documented meaning.

Vectors live in ``../shared/data/vectors`` (relative to the repository root); the tests skip
with a reason when that folder is absent (a bare clone)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drivers.decoders import DecodeError
from drivers.decoders.advertisements import decode_advertisement, parse_advertisement_json
from drivers.decoders.bed import decode_emfit
from drivers.decoders.bthome import BTHomeKeyMissing
from drivers.decoders.gatt import (
    decode_gatt,
    parse_battery_level,
    parse_heart_rate_measurement,
)
from drivers.decoders.raw import decode_raw
from drivers.decoders.zigbee2mqtt import decode_message

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vectors"


def _load(name: str) -> Any:
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"shared vectors not found at {path}")
    return json.loads(path.read_text())


def _ids(vectors: list[dict[str, Any]], key: str) -> list[str]:
    return [str(v.get(key, i)) for i, v in enumerate(vectors)]


# --------------------------------------------------------------------------- GATT heart rate


def _hrm_vectors() -> list[dict[str, Any]]:
    path = VECTORS / "gatt_heart_rate_battery.json"
    return json.loads(path.read_text())["hrm_vectors"] if path.exists() else []


@pytest.mark.parametrize("vector", _hrm_vectors(), ids=lambda v: v["hex"])
def test_heart_rate_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expected = vector["expected"]
    if vector.get("malformed"):
        with pytest.raises(DecodeError):
            parse_heart_rate_measurement(data)
        return
    m = parse_heart_rate_measurement(data)
    assert m.hr_bpm == expected["hr_bpm"]
    assert m.contact_supported == expected["sensor_contact_supported"]
    assert m.contact_detected == expected["sensor_contact_detected"]
    assert m.energy_expended_kj == expected["energy_expended_kJ"]
    assert list(m.rr_raw) == expected["rr_raw_1_1024s"]
    assert m.trailing_bytes == expected["trailing_bytes"]
    assert [round(s * 1000, 3) for s in m.rr_seconds] == pytest.approx(expected["rr_ms"], abs=1e-3)
    fields = decode_gatt("2a37", data)
    assert fields["hr"] == expected["hr_bpm"]
    if expected["sensor_contact_supported"]:
        assert fields["worn"] is expected["sensor_contact_detected"]
    else:
        assert "worn" not in fields
    expected_rr = [r / 1024 for r in expected["rr_raw_1_1024s"]]
    assert fields.get("rr_intervals", []) == pytest.approx(expected_rr)


def test_heart_rate_vectors_present() -> None:
    assert len(_load("gatt_heart_rate_battery.json")["hrm_vectors"]) >= 5


def test_battery_vectors() -> None:
    for vector in _load("gatt_heart_rate_battery.json")["battery_vectors"]:
        data = bytes.fromhex(vector["hex"])
        if vector["expected_percent"] is None:
            with pytest.raises(DecodeError):
                parse_battery_level(data)
            with pytest.raises(DecodeError):
                decode_raw({"source": "gatt", "uuid": "2a19", "value": vector["hex"]})
        else:
            assert parse_battery_level(data) == vector["expected_percent"]
            assert decode_raw({"source": "gatt", "uuid": "0x2A19", "value": vector["hex"]}) == [
                {"device": "gatt", "battery": vector["expected_percent"]}
            ]


# --------------------------------------------------------------------------- Zigbee2MQTT

_Z2M_FIELD = {"event": "action", "door": "open", "motion": "motion", "leak": "water_leak",
              "bridge_online": "bridge_online"}


def _z2m_payload(vector: dict[str, Any]) -> Any:
    if "payload" in vector:
        return vector["payload"]
    if "payload_raw" in vector:
        return vector["payload_raw"]
    # A payload truncated in its source: keep its complete fields and close the object.
    prefix = vector["payload_prefix"]
    return json.loads(prefix[: prefix.rindex(",")] + "}")


def _expected_z2m(key: str, value: Any) -> Any:
    if key == "event":
        return None if value is None else {"single": "press"}.get(value, value)
    if key == "door":
        return value == "open"
    return value


def test_zigbee2mqtt_vectors() -> None:
    data = _load("zigbee2mqtt.json")
    assert data["vectors"], "no vectors"
    for vector in data["vectors"]:
        topic = vector["topic"].replace("<name>", "some_sensor")
        readings = decode_message(topic, _z2m_payload(vector))
        # Through the contract-3 dispatcher too, with the payload as JSON or as text.
        via_raw = decode_raw({"source": "zigbee2mqtt", "topic": topic,
                              "payload": _z2m_payload(vector)})
        assert via_raw == readings
        for key, value in vector["expected"].items():
            field = _Z2M_FIELD[key]
            got = [r[field] for r in readings if field in r]
            expected = _expected_z2m(key, value)
            if expected is None:
                assert got == [], f"{vector['device']}: {field} should be absent, got {got}"
            else:
                assert got == [expected], f"{vector['device']}: {field} {got} != {expected}"
        if not topic.startswith("zigbee2mqtt/bridge"):
            name = topic.removeprefix("zigbee2mqtt/").removesuffix("/action")
            assert all(r["device"] == name for r in readings)


# --------------------------------------------------------------------------- BLE advertisements

_BLE_ACTIONS = {1: "press", 2: "double", 3: "triple", 9: "long", 10: "release", 11: "hold"}


def _expected_adv(decode: dict[str, Any], address: str) -> dict[str, dict[str, Any]]:
    """TheengsDecoder's fields → expected contract-3 fields per device id."""
    main: dict[str, Any] = {}
    per_device: dict[str, dict[str, Any]] = {}
    if "open" in decode:
        main["open"] = decode["open"]
    if "contact" in decode:
        main["open"] = decode["contact"] != "closed"
    if "motion" in decode:
        main["motion"] = decode["motion"]
    if "batt" in decode:
        main["battery"] = decode["batt"]
    for key in ("bpm", "act_bpm"):
        if key in decode:
            main["hr"] = decode[key]
    if "button" in decode:
        main["action"] = _BLE_ACTIONS[decode["button"]]
    for n in range(1, 5):
        event = decode.get(f"button{n}")
        if event:
            target = main if n == 1 else per_device.setdefault(f"{address}:{n}", {})
            target["action"] = _BLE_ACTIONS[event]
    if main:
        per_device[address] = main
    return per_device


def _adv_vectors() -> list[dict[str, Any]]:
    path = VECTORS / "ble_advertisements.json"
    return json.loads(path.read_text()) if path.exists() else []


def _contract_input(vector: dict[str, Any]) -> dict[str, Any]:
    """The vector's input in the contract-3 ``ble-adv`` shape (company id split off)."""
    src = vector["input"]
    obj: dict[str, Any] = {"source": "ble-adv", "address": src.get("id", "AA:BB:CC:00:11:22")}
    if "name" in src:
        obj["name"] = src["name"]
    if "manufacturerdata" in src:
        full = bytes.fromhex(src["manufacturerdata"])
        obj["manufacturer_data"] = {str(int.from_bytes(full[:2], "little")): full[2:].hex()}
    if "servicedata" in src and src.get("servicedatauuid"):
        obj["service_data"] = {src["servicedatauuid"].removeprefix("0x"): src["servicedata"]}
    return obj


@pytest.mark.parametrize("vector", _adv_vectors(), ids=lambda v: v["test_name"])
def test_ble_advertisement_vector(vector: dict[str, Any]) -> None:
    decode = vector["expected_decode"]
    obj = _contract_input(vector)
    readings = decode_raw(obj)
    if decode.get("encr"):
        assert readings == []  # recognised, unreadable without its key
        with pytest.raises(BTHomeKeyMissing):
            parse_advertisement_json(obj)
        return
    expected = _expected_adv(decode, obj["address"])
    got: dict[str, dict[str, Any]] = {}
    for reading in readings:
        got.setdefault(reading["device"], {}).update(reading)
    assert set(got) == set(expected), readings
    for device, fields in expected.items():
        for key, value in fields.items():
            assert got[device].get(key) == value, (device, key, readings)
    # Contract-3 fields never appear where the vector has no such meaning.
    for device, fields in got.items():
        for key in ("open", "motion", "action", "hr"):
            if key in fields:
                assert key in expected.get(device, {}), (device, key, readings)


def test_theengs_style_input_decodes_the_same() -> None:
    for vector in _adv_vectors() or pytest.skip("no advertisement vectors"):
        src = dict(vector["input"])
        src.setdefault("id", "AA:BB:CC:00:11:22")
        assert decode_advertisement(src) == decode_raw(_contract_input(vector))


# --------------------------------------------------------------------------- bed sensors


def test_emfit_synthetic_vector() -> None:
    vector = _load("bed_sensor_formats.json")["emfit_qs_local"]["synthetic_test_vector"]
    fields = decode_emfit(vector["raw"])
    expected = vector["expected"]
    assert fields["occupied"] is (expected["pres"] == 1)
    assert fields["hr"] == expected["hr"]
    assert fields["rr"] == expected["rr"]
    assert fields["movement"] == expected["act"]
    assert "t" not in fields  # TS=0: the device does not know the time
