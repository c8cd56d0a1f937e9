"""The platform link: how the forwarder reaches the community platform.

A link is a factory of sessions (``async with link.session() as s``). A session publishes and
returns only once the platform side has taken responsibility for the message (MQTT: PUBACK), and
yields the platform's commands once subscribed to them (MQTT: a SUBACK that grants it).
Implementations: :mod:`alerts.forwarders.mqtt` (the field), :mod:`alerts.forwarders.webhook`,
:mod:`alerts.forwarders.memory` (in-process: the demo and tests of failure scripts).
Any failure surfaces as :class:`gateway.errors.UplinkError` with a reason a person can act on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class PlatformSession(Protocol):
    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None: ...

    async def subscribe_commands(self) -> str | None:
        """Ask for the platform's commands; why the platform refused, or None (also for a
        link with nothing to subscribe to). A refusal leaves the session up: the alerts go."""
        ...

    def commands(self) -> AsyncIterator[bytes]: ...


class PlatformLink(Protocol):
    name: str

    def session(self) -> AbstractAsyncContextManager[PlatformSession]: ...
