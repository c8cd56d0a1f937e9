"""Simulated BLE devices on bumble's in-process virtual controller, no radio needed.

Start a world of simulated peripherals and get a backend for the gateway's BLE driver::

    world = await start_ble_world([
        ("wristband", "C0:00:00:00:00:01"),
        ("heart_rate", "C0:00:00:00:00:02"),
        ("bed", "C0:00:00:00:00:03"),
        ("door", "C0:00:00:00:00:04"),
        ("button", "C0:00:00:00:00:05"),
    ])
    driver = BleDriver(world.backend(), clock, [BleDeviceSpec("C0:00:00:00:00:01", "band-1",
                                                              "wristband"), ...])
    band = world["C0:00:00:00:00:01"]          # a SimWristband
    await band.send_motion(samples); await band.press("sos")
    ...
    await world.close()

The backend is :class:`drivers.ble.bleak_backend.BleakBackend` with the bumble bleak backend
classes plugged into bleak's ``backend=``: the same bleak-based code the Pi runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bumble.link import LocalLink

from drivers.ble.bleak_backend import BleakBackend
from drivers.ble.bumble_backend import BumbleAdapter, BumbleBleakClient, BumbleBleakScanner
from simulators.ble._peripheral import SimPeripheral
from simulators.ble.bed import SimBedSensor
from simulators.ble.bthome import SimBTHomeButton, SimBTHomeDoor, SimBTHomeMotion
from simulators.ble.heart_rate import SimHeartRateBand
from simulators.ble.wristband import SimWristband

PERIPHERAL_KINDS: dict[str, type[SimPeripheral]] = {
    "wristband": SimWristband,
    "heart_rate": SimHeartRateBand,
    "bed": SimBedSensor,
    "door": SimBTHomeDoor,
    "motion": SimBTHomeMotion,
    "button": SimBTHomeButton,
}


class BleWorld:
    """One LocalLink: the gateway's virtual adapter and the simulated peripherals."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self.adapter = BumbleAdapter.on_link(self.link)
        self.peripherals: dict[str, SimPeripheral] = {}

    def add(self, kind: str, address: str, **options: Any) -> SimPeripheral:
        peripheral = PERIPHERAL_KINDS[kind](self.link, address, **options)
        self.peripherals[peripheral.address] = peripheral
        return peripheral

    async def start(self) -> None:
        for peripheral in self.peripherals.values():
            await peripheral.start()

    def backend(self, **options: Any) -> BleakBackend:
        return BleakBackend(
            scanner_backend=BumbleBleakScanner,
            client_backend=BumbleBleakClient,
            backend_options={"bumble": self.adapter},
            reset_adapter=self.adapter.reset,
            **options,
        )

    def __getitem__(self, address: str) -> Any:
        return self.peripherals[address.upper()]

    async def close(self) -> None:
        for peripheral in self.peripherals.values():
            try:
                await peripheral.drop_connection()
                await peripheral.stop_advertising()
            except Exception:  # best effort at shutdown: the link is going away anyway
                continue


async def start_ble_world(
    devices: Iterable[tuple[str, str] | tuple[str, str, dict[str, Any]]] = (),
) -> BleWorld:
    """Build and start a world: ``devices`` are ``(kind, address)`` or ``(kind, address,
    options)`` with kinds from :data:`PERIPHERAL_KINDS`."""
    world = BleWorld()
    for entry in devices:
        kind, address = entry[0], entry[1]
        options: dict[str, Any] = entry[2] if len(entry) > 2 else {}  # type: ignore[misc]
        world.add(kind, address, **options)
    await world.start()
    return world


__all__ = [
    "PERIPHERAL_KINDS",
    "BleWorld",
    "SimBTHomeButton",
    "SimBTHomeDoor",
    "SimBTHomeMotion",
    "SimBedSensor",
    "SimHeartRateBand",
    "SimPeripheral",
    "SimWristband",
    "start_ble_world",
]
