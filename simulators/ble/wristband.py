"""A simulated wristband implementing exactly the eldergate wristband profile
(``docs/devices/wristband.md``), encoded with :mod:`drivers.decoders.wristband`."""

from __future__ import annotations

from typing import Any

import numpy as np
from bumble.core import AdvertisingData
from bumble.gatt import Characteristic, Service
from bumble.link import LocalLink

from drivers.decoders import wristband as wb
from gateway.clock import Clock
from simulators.ble._peripheral import SimPeripheral

_NOTIFY = Characteristic.Properties.NOTIFY
_READ = Characteristic.Properties.READ


def _uuid_le(uuid: str) -> bytes:
    return bytes(reversed(bytes.fromhex(uuid.replace("-", ""))))


class SimWristband(SimPeripheral):
    kind = "wristband"

    def __init__(
        self,
        link: LocalLink,
        address: str,
        name: str = "EG-Band",
        *,
        fs: float = 50.0,
        range_g: int = 8,
        worn: bool = True,
        battery: int | None = 87,
    ) -> None:
        super().__init__(link, address, name)
        self.fs = fs
        self.range_g = range_g
        self.counter = 0  # sample counter of the next sample
        self.button_event_id = 0
        self._last_press = b""
        self.motion = Characteristic(wb.MOTION_UUID, _NOTIFY, Characteristic.READABLE, b"")
        self.button = Characteristic(wb.BUTTON_UUID, _NOTIFY, Characteristic.READABLE, b"")
        self.status = Characteristic(
            wb.STATUS_UUID, _NOTIFY | _READ, Characteristic.READABLE,
            wb.encode_status(worn, battery),
        )
        self.device.add_service(
            Service(wb.SERVICE_UUID, [self.motion, self.button, self.status])
        )

    def advertising_structures(self) -> list[tuple[int, bytes]]:
        return [
            *super().advertising_structures(),
            (
                AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                _uuid_le(wb.SERVICE_UUID),
            ),
        ]

    async def send_motion(self, acc_g: Any) -> int:
        """One notification with these samples ((n, 3) in g); returns its first counter."""
        samples = np.asarray(acc_g, dtype=float).reshape(-1, 3)
        first = self.counter
        await self.notify(
            self.motion, wb.encode_motion(first, self.fs, samples, range_g=self.range_g)
        )
        self.counter = (self.counter + len(samples)) % wb.COUNTER_MODULO
        return first

    def lose_samples(self, n: int) -> None:
        """Samples taken but never delivered (a notification lost in the air)."""
        self.counter = (self.counter + n) % wb.COUNTER_MODULO

    async def stream(
        self, acc_g: Any, clock: Clock | None = None, batch: int = 25
    ) -> None:
        """Send a whole recording in batches; paced on ``clock`` (one batch every batch/fs
        seconds) when given, otherwise as fast as the link takes them."""
        samples = np.asarray(acc_g, dtype=float).reshape(-1, 3)
        for start in range(0, len(samples), batch):
            chunk = samples[start : start + batch]
            if clock is not None:
                await clock.sleep(len(chunk) / self.fs)
            await self.send_motion(chunk)

    async def press(self, action: str = "sos") -> None:
        self.button_event_id = (self.button_event_id + 1) & 0xFFFF
        self._last_press = wb.encode_button(action, self.button_event_id)
        await self.notify(self.button, self._last_press)

    async def resend_last_press(self) -> None:
        """The band sends its last press again (it did not see the gateway receive it)."""
        await self.notify(self.button, self._last_press)

    async def set_status(self, worn: bool, battery: int | None) -> None:
        await self.notify(self.status, wb.encode_status(worn, battery))
