"""Staff texts fill in what the detector measured, in both languages, and never show a hole."""

from __future__ import annotations

import pytest

from alerts.texts import TEXTS, render


@pytest.mark.parametrize(
    ("alert_type", "details", "english", "chinese"),
    [
        ("inactivity", {"quiet_s": 9000, "room": "kitchen"}, "for 2.5 h", "2.5小时"),
        ("bed_exit_no_return", {"out_s": 2700, "threshold_s": 2700}, "for 45 min", "45分钟"),
        ("long_bathroom", {"stay_s": 5430}, "for 90 min", "90分钟"),
        ("sos", {"count": 2}, "(2×)", "2次"),
    ],
)
def test_durations_and_counts_are_filled_in(
    alert_type: str, details: dict, english: str, chinese: str
) -> None:
    text = render(alert_type, details, ("en", "zh"))
    assert english in text["en"] and chinese in text["zh"]
    assert "?" not in text["en"] + text["zh"]


def test_a_missing_or_malformed_detail_shows_a_question_mark_not_a_crash() -> None:
    for details in ({}, {"quiet_s": "long"}, {"quiet_s": True}, {"quiet_s": -5}):
        assert "? h" in render("inactivity", details, ("en",))["en"]


def test_every_text_renders_in_both_languages_from_empty_details() -> None:
    for alert_type in TEXTS:
        text = render(alert_type, {}, ("en", "zh"))
        assert text["en"] and text["zh"] and text["en"] != text["zh"]


def test_a_vitals_text_says_which_sign_is_out_of_range_never_the_value() -> None:
    """Heart rate and breathing each raise their own ``vitals`` alert (``details.signal``), but
    both read "heart rate or breathing out of range": staff could not tell which from the text.
    The limits in the details stay out of the text."""
    details = {"signal": "hr", "low": 45.0, "high": 98.0}
    hr = render("vitals", details, ("en", "zh"))
    rr = render("vitals", {"signal": "rr", "low": 8.0, "high": 30.0}, ("en", "zh"))
    assert hr == {"en": "Heart rate out of range in bed", "zh": "卧床时心率异常"}
    assert rr == {"en": "Breathing rate out of range in bed", "zh": "卧床时呼吸频率异常"}
    assert render("vitals", {}, ("en",))["en"] == "Heart rate or breathing out of range in bed"
