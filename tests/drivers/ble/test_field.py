"""The wristband and the emergency buttons in the field, from the resident's side, through
bumble's virtual controller and the driver (the code the Pi runs), into the detectors that
act on what it hands on, on one simulated clock."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.ble.driver import BleDeviceSpec
from drivers.ble.profiles import BAND_SILENCE_TIMEOUT_S
from drivers.decoders.wristband import encode_status
from gateway.detection.base import Home
from gateway.detection.device_health import DeviceHealth
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Resident
from tests.drivers.ble.conftest import BAND, Rig, running_rig

pytestmark = pytest.mark.ble

BAND_DEVICE = Device("band-1", DeviceKind.WRISTBAND, "p1", options={"transport": "ble"})


def taken(rig: Rig) -> list[Reading]:
    """Every reading the sink got and no test took yet."""
    readings, rig.pending = rig.pending, []
    while not rig.readings.empty():
        readings.append(rig.readings.get_nowait())
    return readings


async def test_a_band_whose_firmware_hung_is_reported_offline() -> None:
    """The band's application hangs while its radio stack lives on (it keeps the link, answers
    reads from its GATT table, notifies nothing): no motion, no presses. The driver gives the
    silent link up every 150 s and connects again, and the status read on every connection
    was handed on as a reading, so device health heard the band every 150 s and never said
    ``device_offline`` while the resident's SOS presses went nowhere."""
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        health = DeviceHealth(rig.clock, Home([Resident("p1")], [BAND_DEVICE]))
        await rig.linked("band-1")
        events: list[Event] = []
        for connects in range(2, 6):  # four more connections: ten minutes
            rig.clock.advance(BAND_SILENCE_TIMEOUT_S)
            await rig.linked("band-1", connects=connects)
            for reading in taken(rig):
                events.extend(health.on_reading(reading, BAND_DEVICE))
            events.extend(health.on_tick())
        assert rig.driver.diagnostics()["links"]["band-1"]["silences"] == 4
        assert [(e.type, e.action) for e in events] == [("device_offline", EventAction.RAISE)]

        await rig.world[BAND].send_motion(np.zeros((25, 3)))  # the band is back to life
        reading = await rig.next_reading(lambda r: "acc" in r.values)
        cleared = health.on_reading(reading, BAND_DEVICE)
        assert [(e.type, e.action) for e in cleared] == [("device_offline", EventAction.CLEAR)]

        # a status read that says something new is handed on as before
        rig.world[BAND].status.value = encode_status(worn=False, battery=80)
        await rig.world[BAND].drop_connection()
        await rig.linked("band-1", connects=6)
        status = await rig.next_reading(lambda r: "worn" in r.values)
        assert status.values == {"worn": False, "battery": 80}
