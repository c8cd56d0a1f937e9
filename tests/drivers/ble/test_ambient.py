"""The ambient-radio bookkeeping on plain numbers: 5-minute buckets aligned on monotonic time
(bucket k is [300 k, 300 k + 300)), twelve judged before the bucket holding the time asked."""

from __future__ import annotations

import pytest

from drivers.ble.ambient import AmbientRadio

A, B, C = "4A:00:00:00:00:01", "4B:00:00:00:00:02", "4C:00:00:00:00:03"
D = "4D:00:00:00:00:04"


def hear(radio: AmbientRadio, start: float, end: float, every_s: float, *addresses: str) -> None:
    """Every ``every_s`` seconds from ``start`` (included) to ``end`` (excluded), one
    advertisement from each address."""
    t = start
    while t < end:
        for address in addresses:
            radio.heard(t, address)
        t += every_s


def test_three_addresses_in_every_bucket_of_the_hour_is_steady() -> None:
    radio = AmbientRadio()
    hear(radio, 3000.0, 6600.0, 60.0, A, B, C)  # buckets 10..21, each heard 5 times from each
    radio.heard(6600.0, A)  # bucket 22: the silence begins in it
    assert radio.steady_before(6600.0)
    assert radio.steady_before_last_heard()
    assert radio.last_heard == 6600.0


def test_nothing_heard_is_not_steady() -> None:
    radio = AmbientRadio()
    assert radio.last_heard is None
    assert not radio.steady_before_last_heard()
    assert not radio.steady_before(10_000.0)


def test_one_or_two_addresses_all_hour_are_too_few() -> None:
    radio = AmbientRadio()
    hear(radio, 3000.0, 6660.0, 10.0, A)  # one neighbour's TV, never missing a beat
    assert not radio.steady_before(6600.0)
    radio = AmbientRadio()
    hear(radio, 3000.0, 6660.0, 10.0, A, B)  # the resident's phone and TV: they may go together
    assert not radio.steady_before(6600.0)


def test_one_phone_rotating_its_address_is_too_few() -> None:
    """One phone changing its random address every 15 min: 5 addresses in the hour, but one
    device; it walking out would be a total silence of a healthy scanner."""
    radio = AmbientRadio()
    for t in range(3000, 6660, 10):
        radio.heard(float(t), f"5{(t // 900) % 10}:00:00:00:00:00")
    assert not radio.steady_before(6600.0)


def test_one_bucket_with_a_single_address_breaks_it() -> None:
    radio = AmbientRadio()
    hear(radio, 3000.0, 4500.0, 60.0, A, B, C)  # buckets 10..14
    hear(radio, 4500.0, 4800.0, 60.0, A, B)  # bucket 15: C away for five minutes
    hear(radio, 4800.0, 6660.0, 60.0, A, B, C)  # buckets 16..22
    assert not radio.steady_before(6600.0)
    # an hour later the gap is out of the window again
    hear(radio, 6660.0, 8400.0, 60.0, A, B, C)
    assert radio.steady_before(8400.0)


def test_sporadic_radio_with_an_empty_bucket_is_not_steady() -> None:
    radio = AmbientRadio()
    for k in range(10, 23):
        if k != 16:  # once per bucket, three addresses, but bucket 16 ([4800, 5100)) missed
            radio.heard(300.0 * k, A)
            radio.heard(300.0 * k + 1.0, B)
            radio.heard(300.0 * k + 2.0, C)
    assert not radio.steady_before(6600.0)
    radio = AmbientRadio()
    hear(radio, 4800.0, 6660.0, 60.0, A, B, C, D)  # rich, but for 30 minutes only
    assert not radio.steady_before(6600.0)


def test_bucket_boundaries() -> None:
    radio = AmbientRadio()
    # each bucket heard at its very first and very last instant only, and once between
    for k in range(10, 22):
        radio.heard(300.0 * k, A)
        radio.heard(300.0 * k + 150.0, C)
        radio.heard(300.0 * k + 299.999, B)
    radio.heard(6600.0, D)  # first instant of bucket 22
    assert radio.steady_before(6600.0)
    # the hour judged is the twelve buckets before the one holding t, wherever t is in it
    assert radio.steady_before(6899.999)
    # from bucket 23 on, bucket 22 (one address) is judged and bucket 10 is out of the hour
    assert not radio.steady_before(6900.0)
    # the bucket before bucket 10 is unknown: the hour before bucket 21 is not steady
    assert not radio.steady_before(6300.0)
    # an address heard at the first instant of a bucket counts in that bucket, not the one
    # before: move B out of bucket 21's end and into bucket 22's start
    radio = AmbientRadio()
    for k in range(10, 22):
        radio.heard(300.0 * k, A)
        radio.heard(300.0 * k + 150.0, C)
        radio.heard(300.0 * k + (300.0 if k == 21 else 299.999), B)
    assert not radio.steady_before(6600.0)


def test_the_evidence_is_the_hour_before_the_silence_however_long_it_lasts() -> None:
    radio = AmbientRadio()
    hear(radio, 3000.0, 6620.0, 30.0, A, B, C)
    # nothing heard for a day: the hour before the silence is still what it was
    assert radio.steady_before_last_heard()
    assert not radio.steady_before(6620.0 + 86_400.0)  # a silence is not steady radio
    radio.heard(6620.0 + 86_400.0, A)  # heard again: a new silence is judged afresh
    assert not radio.steady_before_last_heard()


def test_asking_about_a_time_before_the_ring_is_not_steady() -> None:
    radio = AmbientRadio()
    hear(radio, 3000.0, 12_000.0, 60.0, A, B, C)
    assert radio.steady_before(12_000.0)
    assert not radio.steady_before(6600.0)  # those buckets were overwritten: forgotten


def test_memory_stays_bounded_however_many_addresses_and_however_long() -> None:
    radio = AmbientRadio()
    for i in range(200_000):  # a busy block of flats for a week, ever new random addresses
        radio.heard(1000.0 + i * 3.0, f"{i:012X}")
    # private state on purpose: the ring of 13 buckets, at most three addresses each
    assert len(radio._numbers) == len(radio._addresses) == 13
    assert all(len(seen) <= 3 for seen in radio._addresses)
    assert radio.steady_before_last_heard()


def test_settings_are_checked_and_can_be_changed() -> None:
    with pytest.raises(ValueError):
        AmbientRadio(bucket_s=0)
    three, four = (AmbientRadio(bucket_s=10.0, buckets=3, addresses_per_bucket=4) for _ in "34")
    hear(three, 0.0, 31.0, 1.0, A, B, C)
    hear(four, 0.0, 31.0, 1.0, A, B, C, D)
    assert not three.steady_before(30.0)  # four addresses needed
    assert four.steady_before(30.0)
