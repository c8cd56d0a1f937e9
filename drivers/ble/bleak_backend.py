"""The BLE backend on bleak: BlueZ on the Pi, or any bleak ``backend=`` class (bumble in tests).

The only gateway module that imports bleak, and only when a backend is built, so the rest of
the gateway (and ``eldergate replay``) runs where bleak cannot. bleak and bleak-retry-connector
exceptions are translated at this boundary into :class:`~drivers.ble.base.BleBackendError` with
the :class:`~drivers.ble.base.BleErrorKind` that the recovery ladder acts on
(:func:`classify_error`).

Connections go through bleak-retry-connector's ``establish_connection`` with
``BleakClientWithServiceCache``: on BlueZ it closes stale connections left by a crashed
process, retries the transient errors BlueZ is known for (``le-connection-abort-by-local``,
a full connection table, a stale service cache) with the short waits they need, and names the
cause when it gives up. Those retries are a few hundred milliseconds of real time; the long,
jittered backoff between connection attempts is the driver's, on the injected clock. With a
non-BlueZ backend class the BlueZ-only steps are skipped by the library itself, so tests go
through the same path.

The adapter reset (second rung of the recovery ladder) power-cycles the controller with
``btmgmt`` (BlueZ's management tool, in the ``bluez`` package on Raspberry Pi OS); it can be
replaced with ``reset_adapter=`` (the simulator passes the bumble adapter's reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from drivers.ble.base import (
    Advertisement,
    BleBackendError,
    BleErrorKind,
    NotifyCallback,
    normalize_uuid,
)

logger = logging.getLogger(__name__)

ADVERTISEMENT_QUEUE_SIZE = 2048  # ~20 s of a busy flat's advertisements; beyond that, drop
CONNECT_ATTEMPTS = 3  # bleak-retry-connector's own attempts inside one driver attempt
BTMGMT_TIMEOUT_S = 10.0

_DBUS_KINDS = {
    "org.bluez.Error.InProgress": BleErrorKind.IN_PROGRESS,
    "org.bluez.Error.NotReady": BleErrorKind.NOT_READY,
    "org.bluez.Error.NotConnected": BleErrorKind.DISCONNECTED,
    "org.bluez.Error.NotPermitted": BleErrorKind.GATT,
    "org.bluez.Error.NotSupported": BleErrorKind.GATT,
    "org.bluez.Error.DoesNotExist": BleErrorKind.DEVICE_UNREACHABLE,
    "org.freedesktop.DBus.Error.ServiceUnknown": BleErrorKind.ADAPTER_GONE,  # no bluetoothd
    "org.freedesktop.DBus.Error.UnknownObject": BleErrorKind.ADAPTER_GONE,  # adapter removed
    "org.freedesktop.DBus.Error.NoReply": BleErrorKind.ADAPTER_GONE,  # bluetoothd hung
}
_ADAPTER_GONE_TEXT = ("adapter", "no bluetooth", "org.bluez was not provided")


def classify_error(exc: BaseException) -> BleErrorKind:
    """Sort a bleak, bleak-retry-connector or OS error into the class recovery acts on."""
    from bleak.exc import (
        BleakBluetoothNotAvailableError,
        BleakBluetoothNotAvailableReason,
        BleakCharacteristicNotFoundError,
        BleakDBusError,
        BleakDeviceNotFoundError,
        BleakError,
        BleakGATTProtocolError,
    )

    if isinstance(exc, BleakDBusError):
        return _DBUS_KINDS.get(exc.dbus_error, BleErrorKind.OTHER)
    if isinstance(exc, BleakBluetoothNotAvailableError):
        if exc.reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            return BleErrorKind.NOT_READY
        return BleErrorKind.ADAPTER_GONE
    if isinstance(exc, BleakCharacteristicNotFoundError | BleakGATTProtocolError):
        return BleErrorKind.GATT
    if isinstance(exc, BleakDeviceNotFoundError | TimeoutError):
        return BleErrorKind.DEVICE_UNREACHABLE
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return BleErrorKind.ADAPTER_GONE  # no D-Bus system bus socket at all
    if isinstance(exc, BleakError):
        text = str(exc).lower()
        if type(exc).__module__.startswith("bleak_retry_connector"):
            # establish_connection re-raises every failure as its own error ``from`` the
            # one it gave up on: a cause at the adapter (bluetoothd gone, adapter powered
            # off) is the adapter's, and evidence for the silence rule; the rest is the
            # peripheral's
            cause = exc.__cause__
            if cause is not None and cause is not exc:
                kind = classify_error(cause)
                if kind in (BleErrorKind.ADAPTER_GONE, BleErrorKind.NOT_READY):
                    return kind
            return BleErrorKind.DEVICE_UNREACHABLE
        if "not connected" in text or "disconnected" in text:
            return BleErrorKind.DISCONNECTED
        if any(marker in text for marker in _ADAPTER_GONE_TEXT):
            return BleErrorKind.ADAPTER_GONE
        if "not found" in text:
            return BleErrorKind.DEVICE_UNREACHABLE
    return BleErrorKind.OTHER


@contextlib.contextmanager
def _mapped(operation: str) -> Iterator[None]:
    try:
        yield
    except BleBackendError:
        raise
    except Exception as exc:
        raise BleBackendError(classify_error(exc), f"{operation}: {exc!r}") from exc


async def reset_adapter_with_btmgmt(adapter: str) -> None:
    index = adapter.removeprefix("hci") if adapter.startswith("hci") else adapter
    for state in ("off", "on"):
        process = await asyncio.create_subprocess_exec(
            "btmgmt",
            "--index",
            index,
            "power",
            state,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(BTMGMT_TIMEOUT_S):
                _, stderr = await process.communicate()
        except TimeoutError as exc:
            process.kill()
            raise BleBackendError(BleErrorKind.ADAPTER_GONE, f"btmgmt power {state} hung") from exc
        if process.returncode != 0:
            raise BleBackendError(
                BleErrorKind.ADAPTER_GONE,
                f"btmgmt power {state} failed: {stderr.decode(errors='replace').strip()}",
            )


RECENT_DEVICES = 256  # unconfigured advertisers remembered; the oldest heard is dropped first


class BleakBackend:
    """:class:`~drivers.ble.base.BleBackend` on bleak.

    ``scanner_backend``/``client_backend`` are bleak ``backend=`` classes (None: bleak picks
    the platform's, BlueZ on the Pi); ``backend_options`` are passed through to them (for
    bumble: ``{"bumble": adapter}``).
    """

    def __init__(
        self,
        *,
        adapter: str = "hci0",
        scanning_mode: str = "active",
        scanner_backend: type | None = None,
        client_backend: type | None = None,
        backend_options: dict[str, Any] | None = None,
        connect_attempts: int = CONNECT_ATTEMPTS,
        reset_adapter: Callable[[], Awaitable[None]] | None = None,
        queue_size: int = ADVERTISEMENT_QUEUE_SIZE,
    ) -> None:
        self.adapter = adapter
        self.name = f"bleak:{scanner_backend.__name__ if scanner_backend else 'platform'}"
        self._scanning_mode = scanning_mode
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._options = dict(backend_options or {})
        self._connect_attempts = connect_attempts
        self._reset = reset_adapter
        self._queue_size = queue_size
        # address -> latest BLEDevice, to connect by: every address a client was made for, and
        # the most recently heard others (the driver makes a band's client once it heard it);
        # a block of flats is full of phones advertising from ever new random addresses
        self._devices: dict[str, Any] = {}
        self._wanted: set[str] = set()
        self.counters: dict[str, int] = {
            "advertisements": 0,
            "advertisements_dropped": 0,
            "connect_attempts": 0,
            "connects": 0,
            "adapter_resets": 0,
        }

    def scanner(self) -> _BleakScanner:
        return _BleakScanner(self)

    def client(self, address: str, on_disconnect: Callable[[], None]) -> _BleakClient:
        self._wanted.add(address.upper())
        return _BleakClient(self, address.upper(), on_disconnect)

    async def reset_adapter(self) -> None:
        self.counters["adapter_resets"] += 1
        with _mapped("reset adapter"):
            if self._reset is not None:
                await self._reset()
            else:
                await reset_adapter_with_btmgmt(self.adapter)

    def diagnostics(self) -> dict[str, Any]:
        return {"backend": self.name, "adapter": self.adapter, **self.counters}

    def _backend_kwargs(self, backend: type | None) -> dict[str, Any]:
        kwargs = dict(self._options)
        if backend is not None:
            kwargs["backend"] = backend
        return kwargs


class _BleakScanner:
    def __init__(self, owner: BleakBackend) -> None:
        self._owner = owner
        self._scanner: Any = None
        self._queue: asyncio.Queue[Advertisement] = asyncio.Queue(owner._queue_size)

    async def start(self) -> None:
        from bleak import BleakScanner

        owner = self._owner
        with _mapped("start scanning"):
            # a fresh scanner per start: after an error BlueZ's discovery session is gone
            self._scanner = BleakScanner(
                self._on_detection,
                scanning_mode=owner._scanning_mode,  # type: ignore[arg-type]
                bluez={"adapter": owner.adapter},
                **owner._backend_kwargs(owner._scanner_backend),
            )
            await self._scanner.start()

    async def stop(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            with _mapped("stop scanning"):
                await scanner.stop()

    async def advertisements(self) -> AsyncIterator[Advertisement]:
        while True:
            yield await self._queue.get()

    def _on_detection(self, device: Any, data: Any) -> None:
        owner = self._owner
        address = str(device.address).upper()
        owner._devices.pop(address, None)
        owner._devices[address] = device  # the newest last
        if len(owner._devices) > RECENT_DEVICES + len(owner._wanted):
            stale = next(a for a in owner._devices if a not in owner._wanted)
            del owner._devices[stale]
        owner.counters["advertisements"] += 1
        advertisement = Advertisement(
            address=address,
            name=data.local_name,
            rssi=data.rssi,
            manufacturer_data=dict(data.manufacturer_data),
            service_data={normalize_uuid(k): bytes(v) for k, v in data.service_data.items()},
        )
        try:
            self._queue.put_nowait(advertisement)
        except asyncio.QueueFull:
            owner.counters["advertisements_dropped"] += 1


class _BleakClient:
    def __init__(self, owner: BleakBackend, address: str, on_disconnect: Callable[[], None]):
        self._owner = owner
        self.address = address
        self._on_disconnect = on_disconnect
        self._client: Any = None

    @property
    def is_connected(self) -> bool:
        return self._client is not None and bool(self._client.is_connected)

    async def connect(self) -> None:
        from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

        owner = self._owner
        owner.counters["connect_attempts"] += 1
        device = owner._devices.get(self.address)
        if device is None:
            raise BleBackendError(
                BleErrorKind.DEVICE_UNREACHABLE, f"{self.address} not heard by the scanner yet"
            )
        with _mapped(f"connect {self.address}"):
            self._client = await establish_connection(
                BleakClientWithServiceCache,
                device,
                self.address,
                disconnected_callback=self._disconnected,
                max_attempts=self._owner._connect_attempts,
                **owner._backend_kwargs(owner._client_backend),
            )
        owner.counters["connects"] += 1

    def _disconnected(self, client: Any) -> None:
        if client is self._client:
            self._client = None
            self._on_disconnect()

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with _mapped(f"disconnect {self.address}"):
                await client.disconnect()

    def has_characteristic(self, uuid: str) -> bool:
        if self._client is None:
            return False
        return self._client.services.get_characteristic(normalize_uuid(uuid)) is not None

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        client = self._require()
        with _mapped(f"subscribe {uuid}"):
            await client.start_notify(
                normalize_uuid(uuid), lambda _char, data: callback(bytes(data))
            )

    async def read(self, uuid: str) -> bytes:
        client = self._require()
        with _mapped(f"read {uuid}"):
            return bytes(await client.read_gatt_char(normalize_uuid(uuid)))

    def _require(self) -> Any:
        if self._client is None:
            raise BleBackendError(BleErrorKind.DISCONNECTED, f"{self.address} not connected")
        return self._client


__all__ = ["BleakBackend", "classify_error", "reset_adapter_with_btmgmt"]
