"""Heart Rate Measurement: every flag combination, round-tripped through the encoder."""

from __future__ import annotations

import itertools

import pytest

from drivers.decoders import DecodeError
from drivers.decoders.encoders import heart_rate_measurement
from drivers.decoders.gatt import decode_gatt, parse_heart_rate_measurement, uuid16_of


@pytest.mark.parametrize(
    ("wide", "contact", "energy", "rr"),
    list(itertools.product([False, True], [None, False, True], [None, 300],
                           [(), (0.5,), (1.0, 0.75, 0.8)])),
)
def test_every_flag_combination_round_trips(wide, contact, energy, rr) -> None:
    hr = 300 if wide else 72
    data = heart_rate_measurement(hr, worn=contact, energy_kj=energy, rr_seconds=rr, uint16=wide)
    m = parse_heart_rate_measurement(data)
    assert m.hr_bpm == hr
    assert m.contact_supported is (contact is not None)
    assert m.contact_detected is contact
    assert m.energy_expended_kj == energy
    assert m.rr_seconds == pytest.approx(list(rr), abs=1 / 1024)
    fields = decode_gatt("00002a37-0000-1000-8000-00805f9b34fb", data)
    assert fields.get("worn") is contact
    assert ("rr_intervals" in fields) is bool(rr)


def test_contact_bits_1_only_means_not_supported() -> None:
    # bits 1-2 = 0b01: "not supported" as well; no worn field
    assert "worn" not in decode_gatt("2a37", bytes([0x02, 60]))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x01\x48", b"\x08\x48\x01", b"\x09\x48\x00\x01"])
def test_short_values_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_heart_rate_measurement(data)


def test_odd_rr_byte_is_counted_not_fatal() -> None:
    m = parse_heart_rate_measurement(bytes([0x10, 80, 0x00, 0x04, 0x07]))
    assert m.rr_raw == (1024,)
    assert m.trailing_bytes == 1


def test_uuid_forms() -> None:
    assert uuid16_of("2A37") == uuid16_of("0x2a37") == 0x2A37
    with pytest.raises(DecodeError):
        uuid16_of("not-a-uuid")
    with pytest.raises(DecodeError):
        decode_gatt("2a6e", b"\x00\x00")  # temperature: not ours
