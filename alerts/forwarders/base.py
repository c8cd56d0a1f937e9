"""The platform link: how the forwarder reaches the community platform.

A link is a factory of sessions (``async with link.session() as s``). A session publishes and
returns only once the platform side has taken responsibility for the message (MQTT: PUBACK), and
yields the platform's commands. Implementations: :mod:`alerts.forwarders.mqtt` (the field),
:mod:`alerts.forwarders.memory` (in-process: the demo and tests of failure scripts).
Any failure surfaces as :class:`gateway.errors.UplinkError` with a reason a person can act on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class PlatformSession(Protocol):
    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None: ...

    def commands(self) -> AsyncIterator[bytes]: ...


class PlatformLink(Protocol):
    name: str

    def session(self) -> AbstractAsyncContextManager[PlatformSession]: ...
