"""Wristbands over a real BLE stack without radio, bridged onto a broker.

For ``eldergate simulate --ble``: each simulated resident's wristband is a bumble peripheral
implementing the wristband GATT profile (docs/devices/wristband.md) on an in-process virtual
controller; the gateway's own BLE driver (bleak on the bumble backend) connects to it, and each
reading it yields is published on the JSON device topic — the role of a BLE-to-MQTT bridge.
The scenario drives the peripherals: acceleration batches, button presses, worn and battery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from typing import Any

import aiomqtt

from drivers.ble.driver import BleDeviceSpec, BleDriver
from gateway.clock import Clock
from gateway.model import Reading
from simulators.ble import BleWorld, start_ble_world


def band_address(index: int) -> str:
    return f"C0:EE:00:00:{index // 256:02X}:{index % 256:02X}"


class BleWristbandBridge:
    def __init__(
        self,
        band_ids: Iterable[str],
        client: aiomqtt.Client,
        clock: Clock,
        device_topic: str = "eldergate/devices",
    ) -> None:
        self.addresses = {band: band_address(i + 1) for i, band in enumerate(band_ids)}
        self.client = client
        self.clock = clock
        self.device_topic = device_topic
        self.world: BleWorld | None = None
        self.driver: BleDriver | None = None
        self.bridged = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.world = await start_ble_world([("wristband", a) for a in self.addresses.values()])
        specs = [BleDeviceSpec(a, band, "wristband") for band, a in self.addresses.items()]
        self.driver = BleDriver(self.world.backend(), self.clock, specs)
        self._task = asyncio.create_task(self.driver.run(self._publish), name="ble-bridge")

    async def _publish(self, reading: Reading) -> None:
        values = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in reading.values.items()}
        await self.client.publish(
            f"{self.device_topic}/{reading.device}", json.dumps(values), qos=1
        )
        self.bridged += 1

    def handles(self, device: str) -> bool:
        return device in self.addresses

    async def send(self, reading: Reading) -> None:
        """Make the band say what the scenario's reading says."""
        assert self.world is not None
        band: Any = self.world[self.addresses[reading.device]]
        values = reading.values
        if "acc" in values:
            await band.send_motion(values["acc"])
        if values.get("action") in ("sos", "cancel"):
            await band.press(values["action"])
        if "worn" in values or "battery" in values:
            battery = values.get("battery")
            await band.set_status(
                bool(values.get("worn", True)), None if battery is None else int(battery)
            )

    async def close(self) -> None:
        if self.driver is not None:
            self.driver.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.world is not None:
            await self.world.close()
