"""Simulated BTHome v2 sensors (Shelly BLU style): a door/window contact, a motion sensor and a
one- or two-button remote. They only advertise (service data 0xFCD2), never connect; every
change bumps the packet id, so the gateway can drop the repeats that real sensors send.

Optionally encrypted (AES-CCM, BTHome's bind key), using the codec's own ``encrypt_payload``."""

from __future__ import annotations

from bumble.core import AdvertisingData
from bumble.link import LocalLink

from drivers.decoders.bthome import encrypt_payload
from simulators.ble._peripheral import SimPeripheral

BTHOME_UUID_LE = b"\xd2\xfc"
INFO_UNENCRYPTED = 0x40  # BTHome v2, not encrypted, regular interval
INFO_TRIGGER = 0x04  # sent on an event (buttons) rather than at regular intervals
INFO_ENCRYPTED = 0x01
BUTTON_EVENTS = {"none": 0x00, "press": 0x01, "double": 0x02, "triple": 0x03, "long": 0x04,
                 "long_double": 0x05, "long_triple": 0x06, "hold": 0x80}


class SimBTHome(SimPeripheral):
    kind = "bthome"
    trigger_based = False

    def __init__(
        self, link: LocalLink, address: str, name: str, *, battery: int = 100,
        key: bytes | None = None,
    ) -> None:
        super().__init__(link, address, name)
        self.connectable = False
        self.battery = battery
        self.packet_id = 0
        self.key = key
        self._counter = 0

    def objects(self) -> bytes:
        raise NotImplementedError

    def service_data(self) -> bytes:
        plain = bytes([0x00, self.packet_id, 0x01, self.battery]) + self.objects()
        info = INFO_UNENCRYPTED | (INFO_TRIGGER if self.trigger_based else 0)
        if self.key is None:
            return bytes([info]) + plain
        info |= INFO_ENCRYPTED
        self._counter += 1
        mac = bytes.fromhex(self.address.replace(":", ""))
        return bytes([info]) + encrypt_payload(info, mac, plain, self._counter, self.key)

    def advertising_structures(self) -> list[tuple[int, bytes]]:
        return [
            (AdvertisingData.FLAGS, bytes([0x06])),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
            (AdvertisingData.SERVICE_DATA_16_BIT_UUID, BTHOME_UUID_LE + self.service_data()),
        ]

    async def changed(self) -> None:
        self.packet_id = (self.packet_id + 1) & 0xFF
        if self._started:
            await self.advertise()


class SimBTHomeDoor(SimBTHome):
    kind = "door"

    def __init__(self, link: LocalLink, address: str, name: str = "SBDW-002C", **kw: object):
        super().__init__(link, address, name, **kw)  # type: ignore[arg-type]
        self.open = False

    def objects(self) -> bytes:
        return bytes([0x2D, 1 if self.open else 0])  # window/door contact: 1 = open

    async def set_open(self, is_open: bool) -> None:
        self.open = is_open
        await self.changed()


class SimBTHomeMotion(SimBTHome):
    kind = "motion"

    def __init__(self, link: LocalLink, address: str, name: str = "SBMO-003Z", **kw: object):
        super().__init__(link, address, name, **kw)  # type: ignore[arg-type]
        self.motion = False

    def objects(self) -> bytes:
        return bytes([0x21, 1 if self.motion else 0])

    async def set_motion(self, motion: bool) -> None:
        self.motion = motion
        await self.changed()


class SimBTHomeButton(SimBTHome):
    """``buttons`` buttons; each press advertises one event for one button, "none" for the
    others (as the two-button Shelly BLU RC does)."""

    kind = "button"
    trigger_based = True

    def __init__(
        self, link: LocalLink, address: str, name: str = "SBBT-002C", buttons: int = 1,
        **kw: object,
    ):
        super().__init__(link, address, name, **kw)  # type: ignore[arg-type]
        self.events = ["none"] * buttons

    def objects(self) -> bytes:
        return b"".join(bytes([0x3A, BUTTON_EVENTS[event]]) for event in self.events)

    async def press(self, event: str = "press", button: int = 1) -> None:
        self.events = ["none"] * len(self.events)
        self.events[button - 1] = event
        await self.changed()
