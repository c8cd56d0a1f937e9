"""An in-process platform link: the forwarder hands messages straight to a receiver (the
reference platform in the demo). ``up`` can be switched off to script an outage; while down,
opening a session or publishing fails exactly as a dead broker would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from gateway.errors import UplinkError

Receiver = Callable[[str, bytes], Any]


class MemorySession:
    def __init__(self, link: MemoryPlatformLink) -> None:
        self._link = link

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        if not self._link.up:
            raise UplinkError("in-memory platform is down")
        self._link.receiver(topic, payload)

    async def subscribe_commands(self) -> str | None:
        return None

    async def commands(self) -> AsyncIterator[bytes]:
        while True:
            yield await self._link.commands.get()


class MemoryPlatformLink:
    name = "memory"

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.commands: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
        self.up = True

    async def send_command(self, gateway: str, payload: bytes) -> None:
        """Platform → gateway (the role of the command topic)."""
        await self.commands.put(payload)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MemorySession]:
        if not self.up:
            raise UplinkError("in-memory platform is down")
        yield MemorySession(self)
