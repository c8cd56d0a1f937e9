"""A bed sensor reporting occupancy about once a second must not look like a living person."""

from __future__ import annotations

from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.routine import Presence
from gateway.model import Device, DeviceKind, Reading, Resident, Room


def test_repeated_bed_occupancy_is_no_new_sign_of_life() -> None:
    clock = SimClock()
    bed = Device("bed", DeviceKind.BED, "r1", Room.BEDROOM)
    presence = Presence(clock, Home([Resident("r1")], [bed]), 120.0)
    assert presence.observe(Reading(clock.wall(), "bed", {"occupied": True}), bed) is not None
    clock.advance(1.0)
    assert presence.observe(Reading(clock.wall(), "bed", {"occupied": True, "hr": 60}), bed) is None
    clock.advance(1.0)
    moved = Reading(clock.wall(), "bed", {"occupied": True, "movement": 3})
    assert presence.observe(moved, bed) is not None  # turning over is a sign of life
    clock.advance(1.0)
    assert presence.observe(Reading(clock.wall(), "bed", {"occupied": False}), bed) is not None
