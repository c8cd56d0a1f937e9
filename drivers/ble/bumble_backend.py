"""A bleak backend backed by bumble: BLE without a radio, for tests, the simulator and the demo.

bleak 3.x lets ``BleakScanner`` and ``BleakClient`` take a custom ``backend=`` class and passes
unknown keyword arguments through to it. :class:`BumbleBleakScanner` and
:class:`BumbleBleakClient` are such classes; both take ``bumble=`` a :class:`BumbleAdapter`, the
central's bumble ``Device`` on a ``LocalLink`` (an in-process virtual controller) where the
simulated peripherals of :mod:`simulators.ble` live. So the gateway's code above bleak -
:mod:`drivers.ble.bleak_backend` and the driver - is the code that runs on the Pi, against a
real advertising, ATT and GATT stack.

:class:`BumbleAdapter` can also pretend to be a misbehaving BlueZ adapter: :meth:`~BumbleAdapter.
fail_next` queues an exception (bleak's own ``BleakDBusError("org.bluez.Error.InProgress")`` and
friends) for the next scan start or connect, :meth:`~BumbleAdapter.hang` makes scan starts or
stops never return (a wedged bluetoothd), :meth:`~BumbleAdapter.deafen` makes the scanner
deliver nothing while every call still succeeds (a locked-up scanner), and
:meth:`~BumbleAdapter.unplug` makes the adapter vanish until the next reset, so the recovery
ladder is tested through the same classification code that reads real BlueZ errors.

Bluetooth addresses are upper-case strings without a type qualifier; the adapter remembers the
address type of every advertiser it heard, as BlueZ does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuid_module
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDeviceNotFoundError,
    BleakError,
)
from bumble import core as bumble_core
from bumble.controller import Controller
from bumble.device import Advertisement as BumbleAdvertisement
from bumble.device import Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

logger = logging.getLogger(__name__)

CENTRAL_ADDRESS = "F0:F0:F0:F0:F0:F0"
PREFERRED_MTU = 247  # what BlueZ negotiates with most wristbands
_PROPERTY_NAMES = {
    0x01: "broadcast",
    0x02: "read",
    0x04: "write-without-response",
    0x08: "write",
    0x10: "notify",
    0x20: "indicate",
    0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}


def bumble_uuid_to_str(uuid: bumble_core.UUID) -> str:
    """bumble UUID to bleak's full 128-bit lower-case string."""
    return str(uuid_module.UUID(bytes=bytes(reversed(uuid.to_bytes(force_128=True)))))


def _address_text(address: Address) -> str:
    return address.to_string(with_type_qualifier=False).upper()


def advertisement_data_from_bumble(adv: BumbleAdvertisement) -> AdvertisementData:
    data = adv.data
    name = data.get(bumble_core.AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
        bumble_core.AdvertisingData.SHORTENED_LOCAL_NAME
    )
    manufacturer: dict[int, bytes] = {}
    for company, payload in data.get_all(bumble_core.AdvertisingData.MANUFACTURER_SPECIFIC_DATA):
        manufacturer[company] = bytes(payload)
    service_data: dict[str, bytes] = {}
    for type_id in (
        bumble_core.AdvertisingData.SERVICE_DATA_16_BIT_UUID,
        bumble_core.AdvertisingData.SERVICE_DATA_32_BIT_UUID,
        bumble_core.AdvertisingData.SERVICE_DATA_128_BIT_UUID,
    ):
        for service_uuid, payload in data.get_all(type_id):
            service_data[bumble_uuid_to_str(service_uuid)] = bytes(payload)
    service_uuids: list[str] = []
    for type_id in (
        bumble_core.AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        bumble_core.AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        bumble_core.AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        bumble_core.AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        for uuids in data.get_all(type_id):
            if isinstance(uuids, list):
                service_uuids.extend(bumble_uuid_to_str(u) for u in uuids)
    return AdvertisementData(
        local_name=name if isinstance(name, str) else None,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=service_uuids,
        tx_power=None,
        rssi=adv.rssi,
        platform_data=(adv,),
    )


class BumbleAdapter:
    """The gateway's virtual Bluetooth adapter: a bumble central on a LocalLink."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.present = True
        self.reset_revives = True  # False: the adapter stays gone whatever the gateway does
        self.deaf = False  # see deafen()
        self._deaf_until_reset = False
        self.resets = 0
        self._powered = False
        self._scanners: set[BumbleBleakScanner] = set()
        self._faults: dict[str, list[BaseException]] = {}
        self._hanging: set[str] = set()
        self._swallowing: set[str] = set()
        self._connect_lock = asyncio.Lock()
        self.address_types: dict[str, Address] = {}
        self.device.on("advertisement", self._on_advertisement)

    @classmethod
    def on_link(cls, link: LocalLink, address: str = CENTRAL_ADDRESS) -> BumbleAdapter:
        controller = Controller("gateway", link=link, public_address=address)
        host = Host(controller, AsyncPipeSink(controller))
        return cls(Device(name="eldergate", address=Address(address), host=host))

    # --- fault injection (tests) ---

    def fail_next(self, operation: str, error: BaseException) -> None:
        """Queue ``error`` for the next ``operation``: "scan_start" or "connect"."""
        self._faults.setdefault(operation, []).append(error)

    def hang(self, operation: str, hanging: bool = True) -> None:
        """Make every ``operation`` ("scan_start", "scan_stop") wait forever, as a D-Bus call to
        a wedged bluetoothd does (bleak sets no timeout on them), until called with False."""
        if hanging:
            self._hanging.add(operation)
        else:
            self._hanging.discard(operation)

    def swallow_cancel(self, operation: str) -> None:
        """Make the next ``operation`` wait until cancelled and then return as if it had
        completed, as Python 3.11's ``asyncio.wait_for`` does when a cancellation arrives as
        the call completes."""
        self._swallowing.add(operation)

    async def _maybe_hang(self, operation: str) -> None:
        if operation in self._swallowing:
            self._swallowing.discard(operation)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.get_running_loop().create_future()
            return
        if operation in self._hanging:
            await asyncio.get_running_loop().create_future()

    def deafen(self, deaf: bool = True, *, until_reset: bool = False) -> None:
        """The scanner locks up: scans start and stop as usual but no advertisement reaches
        them (nor the adapter's list of devices), until called with False or, with
        ``until_reset``, until the next :meth:`reset`."""
        self.deaf = deaf
        self._deaf_until_reset = deaf and until_reset

    def unplug(self) -> None:
        """The adapter vanishes (a USB dongle pulled, a crashed controller): scanning stops,
        links drop, every operation fails as "adapter gone" until :meth:`reset`."""
        self.present = False
        for scanner in list(self._scanners):
            scanner.scanning_stopped_by_adapter()
        self._scanners.clear()
        for connection in list(self.device.connections.values()):
            asyncio.get_running_loop().create_task(connection.disconnect())

    async def reset(self) -> None:
        """Power-cycle, as ``btmgmt power off/on`` would: brings an unplugged adapter back."""
        self.resets += 1
        if not self.reset_revives:
            raise BleakBluetoothNotAvailableError(
                "adapter 'hci0' not found", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
            )
        self.present = True
        if self._deaf_until_reset:
            self.deaf = self._deaf_until_reset = False
        for scanner in list(self._scanners):
            scanner.scanning_stopped_by_adapter()
        self._scanners.clear()
        if self.device.is_scanning:
            await self.device.stop_scanning()

    def _check(self, operation: str) -> None:
        if not self.present:
            raise BleakBluetoothNotAvailableError(
                "adapter 'hci0' not found", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
            )
        queued = self._faults.get(operation)
        if queued:
            raise queued.pop(0)

    # --- used by the bleak backend classes ---

    async def _ensure_powered(self) -> None:
        if not self._powered:
            await self.device.power_on()
            self._powered = True

    async def start_scan(self, scanner: BumbleBleakScanner) -> None:
        await self._maybe_hang("scan_start")
        self._check("scan_start")
        await self._ensure_powered()
        self._scanners.add(scanner)
        if not self.device.is_scanning:
            await self.device.start_scanning(filter_duplicates=False)

    async def stop_scan(self, scanner: BumbleBleakScanner) -> None:
        self._scanners.discard(scanner)
        await self._maybe_hang("scan_stop")
        if not self._scanners and self.device.is_scanning and self.present:
            await self.device.stop_scanning()

    async def connect(self, address: str, timeout_s: float) -> Connection:
        self._check("connect")
        await self._ensure_powered()
        peer_address = self.address_types.get(address.upper())
        if peer_address is None:
            raise BleakDeviceNotFoundError(address, f"device {address} not seen by the adapter")
        # one LE connection attempt at a time, as the kernel serialises them for BlueZ
        async with self._connect_lock:
            try:
                return await self.device.connect(peer_address, timeout=timeout_s)
            except bumble_core.TimeoutError as exc:
                raise TimeoutError(f"connecting to {address} timed out") from exc
            except bumble_core.BaseBumbleError as exc:
                raise BleakError(f"connecting to {address} failed: {exc}") from exc

    def _on_advertisement(self, adv: BumbleAdvertisement) -> None:
        if not self.present or self.deaf:
            return
        address = _address_text(adv.address)
        self.address_types[address] = adv.address
        if not self._scanners:
            return
        data = advertisement_data_from_bumble(adv)
        for scanner in list(self._scanners):
            scanner.on_advertisement(address, data)


def _adapter_from(kwargs: dict[str, Any]) -> BumbleAdapter:
    adapter = kwargs.get("bumble")
    if not isinstance(adapter, BumbleAdapter):
        raise TypeError("the bumble backend needs bumble=<BumbleAdapter>")
    return adapter


class BumbleBleakScanner(BaseBleakScanner):
    """bleak scanner backend on a :class:`BumbleAdapter` (``backend=BumbleBleakScanner,
    bumble=adapter``)."""

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._adapter = _adapter_from(kwargs)
        self.scanning = False

    async def start(self) -> None:
        self.seen_devices = {}
        await self._adapter.start_scan(self)
        self.scanning = True

    async def stop(self) -> None:
        self.scanning = False
        await self._adapter.stop_scan(self)

    def scanning_stopped_by_adapter(self) -> None:
        # BlueZ goes quiet rather than telling a scanner it stopped: so do we
        self.scanning = False

    def on_advertisement(self, address: str, data: AdvertisementData) -> None:
        if not self.is_allowed_uuid(data.service_uuids):
            return
        device = self.create_or_update_device(address, address, data.local_name, None, data)
        self.call_detection_callbacks(device, data)


class BumbleBleakClient(BaseBleakClient):
    """bleak client backend on a :class:`BumbleAdapter` (``backend=BumbleBleakClient,
    bumble=adapter``)."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._adapter = _adapter_from(kwargs)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._proxies: dict[int, CharacteristicProxy[bytes]] = {}
        self._mtu = 23

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        if self._connection is not None:
            raise BleakError("Client is already connected")
        timeout = float(kwargs.get("timeout", self._timeout))
        connection = await self._adapter.connect(self.address, timeout)
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            peer = Peer(connection)
            self._mtu = await peer.request_mtu(PREFERRED_MTU)
            self.services = await self._discover(peer)
            self._peer = peer
        except bumble_core.BaseBumbleError as exc:
            await self.disconnect()
            raise BleakError(f"service discovery failed: {exc}") from exc

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        self._proxies = {}
        await peer.discover_services()
        for service_proxy in peer.services:
            service = BleakGATTService(
                service_proxy, service_proxy.handle, bumble_uuid_to_str(service_proxy.uuid)
            )
            collection.add_service(service)
            await service_proxy.discover_characteristics()
            for char_proxy in service_proxy.characteristics:
                await char_proxy.discover_descriptors()
                properties = [
                    name for bit, name in _PROPERTY_NAMES.items() if char_proxy.properties & bit
                ]
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    bumble_uuid_to_str(char_proxy.uuid),
                    properties,  # type: ignore[arg-type]
                    lambda: self._mtu - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                self._proxies[char_proxy.handle] = char_proxy
                for descriptor_proxy in char_proxy.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor_proxy,
                            descriptor_proxy.handle,
                            bumble_uuid_to_str(descriptor_proxy.type),
                            characteristic,
                        )
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        was_connected = self._connection is not None
        self._connection = None
        self._peer = None
        if was_connected and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._peer = None
        if connection is None:
            return
        try:
            await connection.disconnect()
        except bumble_core.BaseBumbleError as exc:
            logger.debug("disconnect from %s: %s", self.address, exc)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the simulated peripherals need no pairing")

    async def unpair(self) -> None:
        raise NotImplementedError("the simulated peripherals need no pairing")

    def _proxy(self, characteristic: BleakGATTCharacteristic) -> CharacteristicProxy[bytes]:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._proxies[characteristic.handle]

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        proxy = self._proxy(characteristic)
        try:
            return bytearray(await proxy.read_value())
        except bumble_core.BaseBumbleError as exc:
            raise BleakError(f"read failed: {exc}") from exc

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        if self._peer is None:
            raise BleakError("Not connected")
        return bytearray(await self._peer.read_value(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        await self._proxy(characteristic).write_value(bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        if self._peer is None:
            raise BleakError("Not connected")
        await self._peer.write_value(descriptor.handle, bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy = self._proxy(characteristic)
        try:
            await proxy.subscribe(lambda value: callback(bytearray(value)))
        except bumble_core.BaseBumbleError as exc:
            raise BleakError(f"subscribe failed: {exc}") from exc

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        await self._proxy(characteristic).unsubscribe()


__all__ = [
    "BumbleAdapter",
    "BumbleBleakClient",
    "BumbleBleakScanner",
    "advertisement_data_from_bumble",
    "bumble_uuid_to_str",
]
