"""BLE: advertisements and GATT notifications into readings, on bleak (the Pi) or bumble (tests).

Public surface: :class:`~drivers.ble.driver.BleDriver` and its device specs, the backend
interface in :mod:`drivers.ble.base`, and :func:`bleak_backend` to build the Pi backend.
Importing this package never imports bleak or bumble.
"""

from __future__ import annotations

from typing import Any

from drivers.ble.base import (
    Advertisement,
    BleBackend,
    BleBackendError,
    BleClient,
    BleErrorKind,
    BleScanner,
)


def bleak_backend(adapter: str = "hci0", **options: Any) -> BleBackend:
    """The Pi's backend: bleak on BlueZ through ``adapter`` (imports bleak lazily)."""
    from drivers.ble.bleak_backend import BleakBackend

    return BleakBackend(adapter=adapter, **options)


__all__ = [
    "Advertisement",
    "BleBackend",
    "BleBackendError",
    "BleClient",
    "BleErrorKind",
    "BleScanner",
    "bleak_backend",
]
