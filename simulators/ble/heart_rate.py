"""A simulated heart-rate band: Heart Rate service 0x180D (measurement 0x2A37, notify) and
Battery service 0x180F (level 0x2A19, read and notify), as the Bluetooth SIG specifies them."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from bumble.core import AdvertisingData
from bumble.gatt import Characteristic, Service
from bumble.link import LocalLink

from simulators.ble._peripheral import SimPeripheral


def encode_heart_rate(
    hr: int,
    rr_intervals_s: Sequence[float] = (),
    contact: bool | None = True,
    energy_kj: int | None = None,
) -> bytes:
    """A 0x2A37 value. ``contact`` None means the sensor cannot detect skin contact."""
    flags = 0
    body = b""
    if hr > 255:
        flags |= 0x01
        body += struct.pack("<H", hr)
    else:
        body += struct.pack("<B", hr)
    if contact is not None:
        flags |= 0x06 if contact else 0x04
    if energy_kj is not None:
        flags |= 0x08
        body += struct.pack("<H", energy_kj)
    if rr_intervals_s:
        flags |= 0x10
        body += b"".join(struct.pack("<H", round(rr * 1024)) for rr in rr_intervals_s)
    return bytes([flags]) + body


class SimHeartRateBand(SimPeripheral):
    kind = "heart_rate"

    def __init__(
        self, link: LocalLink, address: str, name: str = "HR-Band", battery: int = 90
    ) -> None:
        super().__init__(link, address, name)
        self.measurement = Characteristic(
            "2A37", Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        self.battery = Characteristic(
            "2A19",
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            bytes([battery]),
        )
        self.device.add_service(Service("180D", [self.measurement]))
        self.device.add_service(Service("180F", [self.battery]))

    def advertising_structures(self) -> list[tuple[int, bytes]]:
        return [
            *super().advertising_structures(),
            (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, b"\x0d\x18"),
        ]

    async def send_heart_rate(
        self, hr: int, rr_intervals_s: Sequence[float] = (), contact: bool | None = True
    ) -> None:
        await self.notify(self.measurement, encode_heart_rate(hr, rr_intervals_s, contact))

    async def set_battery(self, percent: int) -> None:
        await self.notify(self.battery, bytes([percent]))
