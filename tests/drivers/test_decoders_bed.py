"""Bed MQTT profile and Emfit QS status parsing."""

from __future__ import annotations

import pytest

from drivers.decoders import DecodeError
from drivers.decoders.bed import BedProfileCodec, bed_profile_fields, decode_emfit
from drivers.decoders.encoders import bed_profile_payload, emfit_status_text


def test_profile_round_trip_and_nulls() -> None:
    payload = bed_profile_payload({"occupied": True, "hr": 58, "rr": 14.5, "movement": 3},
                                  t=1712000000.0)
    assert bed_profile_fields(payload) == {"occupied": True, "hr": 58, "rr": 14.5,
                                           "movement": 3, "t": 1712000000.0}
    assert bed_profile_fields(b'{"occupied": false, "hr": null, "rr": null}') == {
        "occupied": False}
    assert bed_profile_fields({"occupied": 1}) == {"occupied": True}


@pytest.mark.parametrize(
    "payload",
    [b"", b"[]", b'{"hr": 60}', b'{"occupied": "yes"}', b'{"occupied": true, "hr": -1}',
     b'{"occupied": true, "rr": "12"}', b'{"occupied": true, "hr": 1e400}', b"\xff"],
)
def test_profile_rejects_bad_messages(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        bed_profile_fields(payload)


def test_codec_topics_and_device_mapping() -> None:
    codec = BedProfileCodec("eldergate/bed", {"bed1": "bed-p1"})
    assert codec.subscriptions() == ["eldergate/bed/+", "eldergate/bed/+/availability"]
    [r] = codec.decode("eldergate/bed/bed1", bed_profile_payload({"occupied": True, "hr": 61}),
                       t=10.0)
    assert (r.device, r.t, r.values) == ("bed-p1", 10.0, {"occupied": True, "hr": 61})
    [stamped] = codec.decode("eldergate/bed/bed1", b'{"occupied": false, "t": 5.5}', t=10.0)
    assert stamped.t == 5.5 and "t" not in stamped.values
    [a] = codec.decode("eldergate/bed/bed1/availability", b"offline", t=11.0)
    assert a.values == {"online": False}
    with pytest.raises(DecodeError, match="unknown device"):
        codec.decode("eldergate/bed/bed9", b'{"occupied": true}', t=1.0)


def test_emfit_empty_bed_has_no_vitals() -> None:
    fields = decode_emfit(emfit_status_text({"occupied": False, "movement": 0}))
    assert fields == {"occupied": False, "movement": 0}
    occupied = decode_emfit(emfit_status_text({"occupied": True, "hr": 52, "rr": 11}))
    assert (occupied["hr"], occupied["rr"]) == (52, 11)


@pytest.mark.parametrize("text", ["", "HR=50<br>", "PRES=2<br>", "PRES=1<br>HR=abc<br>",
                                  "PRES=1<br>garbage<br>", "PRES=1<br>HR=999<br>"])
def test_emfit_rejects_bad_status(text: str) -> None:
    with pytest.raises(DecodeError):
        decode_emfit(text)


@pytest.mark.parametrize(("ts", "t"), [("1712000000", 1712000000.0), ("0", None),
                                       ("1e300", None), ("99999999999", None), ("4.2e9", None)])
def test_emfit_time_is_taken_only_when_it_can_be_one(ts: str, t: float | None) -> None:
    """An Emfit's TS past the year 2100 (a garbled or unset clock) is no time: the reading is
    dated on arrival, as the JSON device topic does. Taken as it came, TS=1e300 made the daily
    summary fail on every reading, an ERROR with a traceback each second, and any other
    far-future TS dated the bed's readings and alerts centuries ahead."""
    fields = decode_emfit(f"PRES=1<br>\r\nHR=55<br>\r\nTS={ts}<br>\r\n")
    assert fields.get("t") == t
    assert fields["hr"] == 55
