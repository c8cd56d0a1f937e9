"""``eldergate simulate`` stops when its duration is up, even when a BLE band's send swallowed
the cancellation (Python 3.11's ``asyncio.wait_for``, used by bumble's HCI commands, drops one
that arrives as the command completes). Seen in CI: the simulator then slept until the
scenario's next reading, hours of simulated time away, and never exited."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest

from gateway.clock import SimClock
from gateway.model import Device, DeviceKind, Reading
from simulators.mqtt_transport import MqttDevices


class SwallowingBand:
    """A band whose send, cancelled mid-way, carries on as if it had completed."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.sent = 0

    def handles(self, device: str) -> bool:
        return device == "band"

    async def send(self, reading: Reading) -> None:
        self.sending.set()
        # what wait_for does when the command's answer and the cancel cross
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        self.sent += 1


async def test_a_cancellation_swallowed_by_a_band_still_stops_the_playback() -> None:
    clock = SimClock()
    band = SwallowingBand()
    devices = MqttDevices(
        cast(Any, None),  # nothing here is published: the band takes every reading
        [Device("band", DeviceKind.WRISTBAND, "r1")],
        clock,
        override=band,
    )
    readings = [Reading(clock.wall() + hours * 3600.0, "band", {"battery": 90}) for hours in (0, 4)]
    play = asyncio.create_task(devices.play(readings))
    await band.sending.wait()
    play.cancel()
    # bounded so a regression fails instead of hanging; the clock never moves, so without the
    # fix the playback would wait for the 4-h reading for ever
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(play, 10)
    assert band.sent == 1
