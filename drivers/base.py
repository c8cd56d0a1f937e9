"""The interface every device driver implements.

A driver owns one connection (a broker, a BLE adapter, an HTTP poller), converts what it
receives into :class:`gateway.model.Reading` at its boundary, and hands readings to ``sink``.
``run`` returns only when cancelled; any exception it raises is caught by the runtime's
supervisor, logged with a traceback, counted, and the driver is restarted with backoff.
A driver never takes the gateway down.

A driver with loops of its own may also have ``stop()`` (:class:`StopFlag`): the runtime calls
it before cancelling, so that a cancellation a library swallowed (Python 3.11's
``asyncio.wait_for`` loses one that arrives as the call completes) still ends the driver.

``problems`` says what keeps the driver's devices from reporting right now, as the driver
knows it (the broker it cannot reach, a Zigbee2MQTT bridge that says it is offline, a BLE
adapter that does not recover): ``{key: (cause, reason)}``, empty when all is well. The runtime
turns a lasting problem into a ``gateway_degraded`` alert
(:mod:`gateway.detection.gateway_health`); ``cause`` is one of that alert's cause codes
(``local_broker``, ``subscription_refused``, ``zigbee2mqtt_bridge``, ``ble_adapter``,
``driver``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sized
from typing import Any, Protocol

from gateway.errors import reraise_swallowed_cancellation
from gateway.model import Reading

ReadingSink = Callable[[Reading], Awaitable[None]]


class StopFlag:
    """``stop()`` for a driver whose loops go round after calls into libraries that use
    Python 3.11's ``asyncio.wait_for`` (aiomqtt's CONNACK, SUBACK and PUBACK waits, bumble's
    HCI commands, D-Bus clients, the Emfit poll's timeouts), which drops a cancellation that
    arrives as the call completes: the runtime calls ``stop()`` before cancelling, and each
    loop calls :meth:`_stop_if_asked` at every turn, so the driver ends either way."""

    _stopping = False

    def stop(self) -> None:
        self._stopping = True

    def _stop_if_asked(self) -> None:
        if self._stopping:
            raise asyncio.CancelledError
        reraise_swallowed_cancellation()


def first_sample_time(arrived: float, values: Mapping[str, Any]) -> float:
    """The time to stamp a reading that arrived at ``arrived``: a batch of samples (``acc``
    at rate ``fs``) is sent right after its last sample, so it is dated by its first."""
    acc, fs = values.get("acc"), values.get("fs")
    if not isinstance(acc, Sized) or isinstance(fs, bool) or not isinstance(fs, int | float):
        return arrived
    if len(acc) == 0 or not (math.isfinite(fs) and fs > 0):
        return arrived
    return arrived - (len(acc) - 1) / float(fs)


class Driver(Protocol):
    name: str

    async def run(self, sink: ReadingSink) -> None: ...

    def diagnostics(self) -> dict[str, Any]: ...

    def problems(self) -> dict[str, tuple[str, str]]: ...
