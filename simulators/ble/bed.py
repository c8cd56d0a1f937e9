"""A simulated bed sensor speaking the eldergate bed GATT profile (``docs/devices/bed_gatt.md``):
one notification about once a second with occupancy, heart rate, respiration and movement."""

from __future__ import annotations

from bumble.gatt import Characteristic, Service
from bumble.link import LocalLink

from drivers.ble.profiles import BED_SERVICE_UUID, BED_VITALS_UUID, encode_bed
from simulators.ble._peripheral import SimPeripheral


class SimBedSensor(SimPeripheral):
    kind = "bed"

    def __init__(self, link: LocalLink, address: str, name: str = "EG-Bed") -> None:
        super().__init__(link, address, name)
        self.vitals = Characteristic(
            BED_VITALS_UUID,
            Characteristic.Properties.NOTIFY | Characteristic.Properties.READ,
            Characteristic.READABLE,
            encode_bed(False, None, None, 0),
        )
        self.device.add_service(Service(BED_SERVICE_UUID, [self.vitals]))

    async def send(
        self, occupied: bool, hr: float | None = None, rr: float | None = None, movement: int = 0
    ) -> None:
        await self.notify(self.vitals, encode_bed(occupied, hr, rr, movement))
