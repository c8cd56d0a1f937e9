"""BTHome v2: known-answer decryption, round trips, multi-button, de-duplication."""

from __future__ import annotations

import pytest

from drivers.decoders import DecodeError
from drivers.decoders.advertisements import AdvertisementDecoder, parse_advertisement
from drivers.decoders.bthome import (
    BTHomeKeyMissing,
    PacketIdFilter,
    parse_bthome,
    readings_from_packet,
)
from drivers.decoders.encoders import bthome_service_data

# bthome.io's published encryption example (temperature 25.06 °C, humidity 50.55 %).
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
MAC = "54:48:E6:8F:80:A5"


@pytest.mark.parametrize(
    "hex_data",
    ["41a47266c95f730011223378237214", "43a5808fe64854f196c06ffb4900112233f08ecbde"],
)
def test_published_encrypted_examples_decrypt(hex_data: str) -> None:
    packet = parse_bthome(bytes.fromhex(hex_data), mac=MAC, key=KEY)
    assert packet.encrypted
    assert dict(packet.objects) == {"temperature": 25.06, "humidity": 50.55}


def test_wrong_key_and_missing_key_are_reasons_not_crashes() -> None:
    data = bytes.fromhex("41a47266c95f730011223378237214")
    with pytest.raises(DecodeError, match="wrong key"):
        parse_bthome(data, mac=MAC, key=bytes(16))
    with pytest.raises(BTHomeKeyMissing):
        parse_bthome(data, mac=MAC)


def test_encrypted_door_round_trip_through_advertisement() -> None:
    data = bthome_service_data({"open": True, "battery": 77}, packet_id=9, key=KEY, mac=MAC,
                               counter=5)
    decoded = parse_advertisement(MAC, "SBDW-002C", {}, {"fcd2": data}, keys={MAC: KEY})
    assert decoded.readings == [{"device": MAC, "battery": 77, "open": True}]
    assert decoded.packet_id == 9
    # A tampered byte fails the MIC.
    bad = data[:3] + bytes([data[3] ^ 1]) + data[4:]
    with pytest.raises(DecodeError):
        parse_advertisement(MAC, None, {}, {"fcd2": bad}, keys={MAC: KEY})


def test_four_buttons_get_their_own_device_ids() -> None:
    data = bthome_service_data({"battery": 90}, packet_id=1, buttons=[None, "double", None, "hold"])
    readings = readings_from_packet(parse_bthome(data), "AA:AA:AA:AA:AA:AA")
    assert readings == [
        {"device": "AA:AA:AA:AA:AA:AA", "battery": 90},
        {"device": "AA:AA:AA:AA:AA:AA:2", "action": "double"},
        {"device": "AA:AA:AA:AA:AA:AA:4", "action": "hold"},
    ]


def test_unknown_trailing_object_keeps_known_ones() -> None:
    data = bytes.fromhex("4400070164") + bytes([0xEE, 0x01])
    assert dict(parse_bthome(data).objects) == {"packet_id": 7, "battery": 100}
    with pytest.raises(DecodeError):
        parse_bthome(bytes([0x40, 0xEE, 0x01]))


@pytest.mark.parametrize("hex_data", ["", "20", "4000", "4401", "4405e406", "45aabbcc"])
def test_malformed_packets_raise_decode_error(hex_data: str) -> None:
    with pytest.raises(DecodeError):
        parse_bthome(bytes.fromhex(hex_data), mac=MAC, key=KEY)


def test_packet_id_filter_drops_rebroadcasts_within_window() -> None:
    f = PacketIdFilter(window_s=20.0)
    assert f.accept("A", 5, now=100.0)
    assert not f.accept("A", 5, now=101.0)  # the same press, re-advertised
    assert f.accept("B", 5, now=101.0)  # another device
    assert f.accept("A", 6, now=102.0)  # the next press
    assert f.accept("A", 6, now=130.0)  # window over: a restarted counter is not silenced
    assert f.accept("A", None, now=130.0)
    assert f.duplicates == 1


def test_live_decoder_counts_and_filters() -> None:
    decoder = AdvertisementDecoder()
    data = bthome_service_data({"battery": 90}, packet_id=3, buttons=["press"])
    first = decoder.to_readings("AA:BB:CC:DD:EE:FF", None, {}, {"fcd2": data}, t=1.0, now_mono=1.0)
    again = decoder.to_readings("AA:BB:CC:DD:EE:FF", None, {}, {"fcd2": data}, t=1.2, now_mono=1.2)
    assert [r.values for r in first] == [{"battery": 90, "action": "press"}]
    assert first[0].t == 1.0
    assert again == []
    secret = bthome_service_data({"open": True}, packet_id=1, key=KEY, mac=MAC)
    with pytest.raises(BTHomeKeyMissing):
        decoder.to_readings(MAC, None, {}, {"fcd2": secret}, t=2.0, now_mono=2.0)
    assert decoder.encrypted_without_key == 1


def test_a_press_re_advertised_is_dropped_for_as_long_as_it_is_heard() -> None:
    f = PacketIdFilter(window_s=20.0)
    assert f.accept("A", 5, now=100.0, event=True)
    for now in range(105, 200, 5):  # the button goes on advertising its press
        assert not f.accept("A", 5, now=float(now), event=True)
    assert f.accept("A", 5, now=216.0, event=True)  # quiet for 20 s: a press anew
    assert f.accept("D", 1, now=100.0)  # a door's state, re-advertised unchanged:
    assert not f.accept("D", 1, now=110.0)
    assert f.accept("D", 1, now=121.0)  # taken again after 20 s, its sign of life
