"""A simulated BLE peripheral: one bumble ``Device`` with its own virtual controller on a
``LocalLink``, advertising every 20 ms (a whole scan-connect-notify exchange then takes ~0.05 s)."""

from __future__ import annotations

import logging
from typing import Any

from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import AdvertisingType, Device
from bumble.gatt import Characteristic
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

logger = logging.getLogger(__name__)

ADVERTISING_INTERVAL_MS = 20.0


class SimPeripheral:
    kind = "peripheral"

    def __init__(self, link: LocalLink, address: str, name: str) -> None:
        self.address = address.upper()
        self.name = name
        controller = Controller(f"sim-{self.address}", link=link, public_address=self.address)
        host = Host(controller, AsyncPipeSink(controller))
        self.device = Device(name=name, address=Address(self.address), host=host)
        self.connectable = True
        self._started = False
        self.notifications_sent = 0

    def advertising_structures(self) -> list[tuple[int, bytes]]:
        return [
            (AdvertisingData.FLAGS, bytes([0x06])),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
        ]

    async def start(self) -> None:
        if not self._started:
            await self.device.power_on()
            self._started = True
        await self.advertise()

    async def advertise(self) -> None:
        """(Re)start advertising with the current advertising data."""
        data = bytes(AdvertisingData(self.advertising_structures()))
        kind = (
            AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE
            if self.connectable
            else AdvertisingType.UNDIRECTED
        )
        await self.device.start_advertising(
            advertising_type=kind,
            advertising_data=data,
            scan_response_data=b"",
            auto_restart=self.connectable,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    async def stop_advertising(self) -> None:
        await self.device.stop_advertising()

    @property
    def connected(self) -> bool:
        return bool(self.device.connections)

    async def drop_connection(self) -> None:
        """The peripheral ends the link, as a band walking out of range would."""
        for connection in list(self.device.connections.values()):
            await connection.disconnect()

    async def notify(self, characteristic: Characteristic[Any], value: bytes) -> None:
        characteristic.value = value
        if self.device.connections:
            await self.device.notify_subscribers(characteristic, value)
            self.notifications_sent += 1
