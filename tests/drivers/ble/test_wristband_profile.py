"""The wristband GATT profile: encode/decode round trips, gap detection, bad bytes."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from drivers.ble.profiles import PRESS_RESEND_WINDOW_S, WristbandProfile
from drivers.decoders import DecodeError
from drivers.decoders import wristband as wb
from gateway.clock import SimClock


def test_motion_round_trip_within_one_count() -> None:
    rng = np.random.default_rng(7)
    acc = rng.uniform(-7.9, 7.9, size=(39, 3))
    batch = wb.decode_motion(wb.encode_motion(123_456, 50.0, acc, range_g=8))
    assert batch.counter == 123_456
    assert batch.fs == 50.0
    assert batch.acc.shape == (39, 3)
    assert np.max(np.abs(batch.acc - acc)) <= 8 / 32768


def test_motion_fits_mtu_247_payload() -> None:
    n = wb.MAX_SAMPLES_PER_NOTIFICATION_MTU247
    assert len(wb.encode_motion(0, 50.0, np.zeros((n, 3)))) <= 244
    assert len(wb.encode_motion(0, 50.0, np.zeros((n + 1, 3)))) > 244


def test_motion_clips_like_a_sensor() -> None:
    batch = wb.decode_motion(wb.encode_motion(0, 25.0, [[9.0, -9.0, 0.0]], range_g=4))
    assert batch.acc[0, 0] == pytest.approx(4 * 32767 / 32768)
    assert batch.acc[0, 1] == -4.0


def test_fractional_rate_is_announced() -> None:
    assert wb.decode_motion(wb.encode_motion(0, 238.1, np.zeros((1, 3)))).fs == 238.1


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"", "header"),
        (struct.pack("<BBHIB", 2, 8, 5000, 0, 0), "version"),
        (struct.pack("<BBHIB", 1, 3, 5000, 0, 0), "range"),
        (struct.pack("<BBHIB", 1, 8, 0, 0, 0), "rate"),
        (struct.pack("<BBHIB", 1, 8, 5000, 0, 2) + bytes(6), "2 samples"),
    ],
)
def test_motion_rejects_malformed(value: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        wb.decode_motion(value)


def test_button_and_status_round_trip() -> None:
    for action in ("sos", "cancel"):
        event = wb.decode_button(wb.encode_button(action, 70_000))
        assert event.action == action
        assert event.event_id == 70_000 & 0xFFFF
    assert wb.decode_status(wb.encode_status(True, 42)) == wb.Status(True, False, 42)
    assert wb.decode_status(wb.encode_status(False, None, charging=True)) == wb.Status(
        False, True, None
    )


@pytest.mark.parametrize(
    "decoder, value",
    [
        (wb.decode_button, b"\x03\x00\x00"),
        (wb.decode_button, b"\x01\x00"),
        (wb.decode_status, b"\x04\x10"),
        (wb.decode_status, b"\x01\x65"),
        (wb.decode_status, b"\x01"),
    ],
)
def test_button_status_reject_malformed(decoder, value: bytes) -> None:
    with pytest.raises(DecodeError):
        decoder(value)


def test_tracker_counts_gaps_wraps_duplicates_and_restarts() -> None:
    tracker = wb.SampleCounterTracker()
    assert tracker.update(100, 10) == 0
    assert tracker.update(110, 10) == 0
    assert tracker.update(110, 10) is None  # the same batch again
    assert tracker.update(150, 10) == 30  # 120..149 lost
    assert tracker.update(5, 10) == 0  # band restarted
    assert (tracker.gaps, tracker.samples_missed, tracker.duplicates, tracker.restarts) == (
        1,
        30,
        1,
        1,
    )
    wrap = wb.SampleCounterTracker()
    wrap.update(wb.COUNTER_MODULO - 5, 5)
    assert wrap.update(0, 5) == 0
    assert wrap.update(8, 5) == 3


def test_ten_thousand_random_inputs_only_raise_decode_error() -> None:
    rng = random.Random(20240601)
    decoders = (wb.decode_motion, wb.decode_button, wb.decode_status)
    unhandled = 0
    for i in range(10_000):
        size = rng.choice((0, 1, 2, 3, 8, 9, 15, 21, 40, rng.randrange(0, 300)))
        value = bytes(rng.getrandbits(8) for _ in range(size))
        if i % 3 == 0 and size >= 9:  # often valid headers, so the sample path is exercised
            value = bytes([1, 8]) + value[2:]
        for decode in decoders:
            try:
                decode(value)
            except DecodeError:
                pass
            except Exception:
                unhandled += 1
    assert unhandled == 0


def test_a_press_resent_on_reconnect_is_dropped_a_band_reboot_press_is_not() -> None:
    clock = SimClock()
    profile = WristbandProfile(clock)
    assert profile.on_button(wb.encode_button("sos", 1)) == {"action": "sos"}
    clock.advance(20)  # the link dropped; the band reconnects and re-sends press 1
    assert profile.on_button(wb.encode_button("sos", 1)) is None
    # hours later the band has rebooted (charged): its event ids start over at 1
    clock.advance(3 * 3600)
    assert profile.on_button(wb.encode_button("sos", 1)) == {"action": "sos"}
    assert profile.duplicate_presses == 1


def test_repeats_do_not_stretch_the_resend_window() -> None:
    clock = SimClock()
    profile = WristbandProfile(clock)
    profile.on_button(wb.encode_button("sos", 4))
    for _ in range(3):
        clock.advance(PRESS_RESEND_WINDOW_S / 3)
        assert profile.on_button(wb.encode_button("sos", 4)) is None
    clock.advance(1)
    assert profile.on_button(wb.encode_button("sos", 4)) == {"action": "sos"}


def test_a_band_restart_seen_in_the_motion_counter_ends_the_resend_window() -> None:
    clock = SimClock()
    profile = WristbandProfile(clock)
    samples = np.zeros((10, 3))
    profile.on_motion(wb.encode_motion(500, 50.0, samples))
    assert profile.on_button(wb.encode_button("sos", 1)) == {"action": "sos"}
    clock.advance(10)  # a brown-out: the band restarts at once and streams from 0
    profile.on_motion(wb.encode_motion(0, 50.0, samples))
    assert profile.on_button(wb.encode_button("sos", 1)) == {"action": "sos"}


def test_the_same_id_with_another_action_is_a_new_press() -> None:
    profile = WristbandProfile(SimClock())
    assert profile.on_button(wb.encode_button("cancel", 1)) == {"action": "cancel"}
    assert profile.on_button(wb.encode_button("sos", 1)) == {"action": "sos"}


def test_a_cancel_re_sent_however_late_is_dropped_unless_the_band_restarted() -> None:
    """The band re-sends its last press when it reconnects. A cancel re-sent ten minutes
    after it was pressed was taken as new and withdrew the fall raised meanwhile (a cancel
    dropped by mistake costs a staff visit; one taken by mistake, a fall left unwatched)."""
    clock = SimClock()
    profile = WristbandProfile(clock)
    samples = np.zeros((10, 3))
    profile.on_motion(wb.encode_motion(500, 50.0, samples))
    assert profile.on_button(wb.encode_button("cancel", 6)) == {"action": "cancel"}
    clock.advance(600)  # she fell since; the link dropped and the band reconnects
    assert profile.on_button(wb.encode_button("cancel", 6)) is None
    profile.on_motion(wb.encode_motion(0, 50.0, samples))  # the band restarted
    assert profile.on_button(wb.encode_button("cancel", 6)) == {"action": "cancel"}
