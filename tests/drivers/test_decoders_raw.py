"""Contract 3: the dispatcher and the ``eldergate decode`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from drivers.decoders import DecodeError
from drivers.decoders.encoders import bthome_service_data
from drivers.decoders.raw import decode_line, decode_raw


def test_sources() -> None:
    assert decode_raw({"source": "zigbee2mqtt", "topic": "zigbee2mqtt/Bedroom Window",
                       "payload": {"contact": False}}) == [
        {"device": "Bedroom Window", "open": True}]
    assert decode_raw({"source": "gatt", "uuid": "2a37", "value": "0048",
                       "address": "AA:BB:CC:DD:EE:FF"}) == [
        {"device": "AA:BB:CC:DD:EE:FF", "hr": 72}]
    assert decode_raw({"source": "bed", "topic": "eldergate/bed/b1",
                       "payload": {"occupied": True}}) == [{"device": "b1", "occupied": True}]
    assert decode_raw({"source": "emfit", "device": "e1", "payload": "PRES=0<br>\r\n"}) == [
        {"device": "e1", "occupied": False}]
    # A custom base topic is taken from the topic itself.
    assert decode_raw({"source": "zigbee2mqtt", "topic": "z2m/d",
                       "payload": '{"occupancy": true}'}) == [{"device": "d", "motion": True}]


def test_ble_key_in_the_message_decrypts() -> None:
    key = "231d39c1d7cc1ab1aee224cd096db932"
    mac = "54:48:E6:8F:80:A5"
    data = bthome_service_data({"motion": True}, packet_id=2, key=bytes.fromhex(key), mac=mac)
    obj = {"source": "ble-adv", "address": mac, "service_data": {"fcd2": data.hex()}}
    assert decode_raw(obj) == []
    assert decode_raw({**obj, "key": key}) == [{"device": mac, "motion": True}]


@pytest.mark.parametrize(
    "obj",
    [[], "x", {"source": "nope"}, {"source": "gatt", "uuid": "2a37"},
     {"source": "gatt", "uuid": "2a37", "value": "zz"},
     {"source": "zigbee2mqtt", "topic": 5, "payload": {}},
     {"source": "zigbee2mqtt", "topic": "zigbee2mqtt/d"},
     {"source": "ble-adv", "address": "A", "service_data": {"fcd2": "4"}},
     {"source": "ble-adv", "address": "A", "manufacturer_data": {"apple": "00"}},
     {"source": "ble-adv", "address": "A", "manufacturer_data": []}],
)
def test_bad_messages_raise_decode_error(obj) -> None:
    with pytest.raises(DecodeError):
        decode_raw(obj)


def test_decode_line_never_raises_and_is_one_line() -> None:
    for line in ["", "{", "null", '{"source": "gatt", "uuid": "2a19", "value": "ff"}']:
        out = decode_line(line)
        assert "\n" not in out
        assert "error" in json.loads(out)


def test_a_byte_order_mark_is_no_part_of_the_message() -> None:
    message = {"source": "zigbee2mqtt", "topic": "zigbee2mqtt/d", "payload": {"contact": False}}
    line = json.dumps(message)
    plain = json.loads(decode_line(line))
    assert json.loads(decode_line("\ufeff" + line)) == plain == [{"device": "d", "open": True}]


def test_cli_prints_exactly_one_line_per_input_line() -> None:
    lines = [
        json.dumps({"source": "zigbee2mqtt", "topic": "zigbee2mqtt/btn",
                    "payload": {"action": "", "battery": 3}}),
        "",
        "not json",
        json.dumps({"source": "zigbee2mqtt", "topic": "zigbee2mqtt/btn/action",
                    "payload": "emergency"}),
        json.dumps({"source": "ble-adv", "address": "AA:BB:CC:DD:EE:FF",
                    "service_data": {"0000fcd2-0000-1000-8000-00805f9b34fb": "40001e01643a02"}}),
        json.dumps({"source": "zigbee2mqtt", "topic": "zigbee2mqtt/bridge/info", "payload": {}}),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "decode"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60, check=True,
    )
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[0] == [{"device": "btn", "battery": 3}]
    assert "error" in out[1] and "error" in out[2]
    assert out[3] == [{"device": "btn", "action": "sos"}]
    assert out[4] == [{"device": "AA:BB:CC:DD:EE:FF", "battery": 100, "action": "double"}]
    assert out[5] == []


def test_cli_rejects_a_bad_key_option() -> None:
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "decode", "--key", "AA=zz"],
                          input="", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "bad --key" in proc.stderr
