"""The small BLE interface the driver is written against, shaped like bleak's own.

A :class:`BleBackend` hands out a :class:`BleScanner` (start, stop, an async iterator of
:class:`Advertisement`) and :class:`BleClient` objects (connect, disconnect, start_notify,
read). Nothing above this interface sees a bleak or bumble type: backends convert at the
boundary and raise :class:`BleBackendError` with a :class:`BleErrorKind` that the recovery ladder
understands.

Backends: :mod:`drivers.ble.bleak_backend` (bleak; BlueZ on the Pi, or any bleak ``backend=``
class, such as :mod:`drivers.ble.bumble_backend` in tests).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Advertisement:
    address: str  # upper-case "AA:BB:CC:DD:EE:FF"
    name: str | None
    rssi: int | None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)  # full 128-bit lower-case uuid


class BleErrorKind(enum.StrEnum):
    """The few failure classes that need different recovery (see :mod:`drivers.ble.recovery`)."""

    IN_PROGRESS = "in_progress"  # BlueZ busy with another operation: wait, retry
    NOT_READY = "not_ready"  # adapter powering up or powered off: wait, retry, then reset
    ADAPTER_GONE = "adapter_gone"  # no adapter / no bluetoothd / controller vanished: reset
    DEVICE_UNREACHABLE = "device_unreachable"  # peripheral not found, timed out: back off
    DISCONNECTED = "disconnected"  # the link dropped during an operation
    GATT = "gatt"  # the peripheral lacks a characteristic or refused an operation
    SILENT = "silent"  # the scanner watchdog heard nothing for too long
    OTHER = "other"


class BleBackendError(Exception):
    def __init__(self, kind: BleErrorKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind


NotifyCallback = Callable[[bytes], None]


class BleScanner(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def advertisements(self) -> AsyncIterator[Advertisement]:
        """Yields advertisements as they arrive, until cancelled. Register before start()
        returns to miss nothing; it may raise :class:`BleBackendError` if the scan dies."""
        ...


class BleClient(Protocol):
    address: str

    @property
    def is_connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    def has_characteristic(self, uuid: str) -> bool: ...

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None: ...

    async def read(self, uuid: str) -> bytes: ...


class BleBackend(Protocol):
    name: str

    def scanner(self) -> BleScanner: ...

    def client(self, address: str, on_disconnect: Callable[[], None]) -> BleClient:
        """A client for ``address``; ``on_disconnect`` runs (in the event loop) when the link
        drops by itself, not after :meth:`BleClient.disconnect`."""
        ...

    async def reset_adapter(self) -> None: ...

    def diagnostics(self) -> dict[str, Any]: ...


def normalize_uuid(uuid: str) -> str:
    """16- or 32-bit short forms to the full 128-bit lower-case form bleak uses."""
    text = uuid.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) <= 8 and all(c in "0123456789abcdef" for c in text):
        return f"{int(text, 16):08x}-0000-1000-8000-00805f9b34fb"
    return text


__all__ = [
    "Advertisement",
    "BleBackend",
    "BleBackendError",
    "BleClient",
    "BleErrorKind",
    "BleScanner",
    "NotifyCallback",
    "normalize_uuid",
]
