"""The uplink stops when the gateway stops, even when the platform client swallowed the
cancellation: aiomqtt waits for a PUBACK with Python 3.11's ``asyncio.wait_for``, which drops a
cancellation that arrives as the PUBACK does. The drain then went on to wait for the next alert,
its TaskGroup waited for it, and the gateway never stopped (systemd kills it 90 s later)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from alerts.forwarder import Forwarder
from alerts.forwarders.memory import MemoryPlatformLink, MemorySession
from alerts.outbox import ALERT, AsyncOutbox, Outbox
from alerts.protocol import Topics
from gateway.backoff import Backoff
from gateway.clock import SimClock

TOPICS = Topics("eldergate", "gw")


class PubackCrossesTheStop(MemorySession):
    """Delivers an alert only once the gateway is being stopped, and swallows that stop."""

    def __init__(self, link: MemoryPlatformLink, publishing: asyncio.Event) -> None:
        super().__init__(link)
        self.publishing = publishing

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        if topic == TOPICS.alert("r1"):
            self.publishing.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        await super().publish(topic, payload, retain=retain)


class SwallowingLink(MemoryPlatformLink):
    def __init__(self, received: list[str]) -> None:
        super().__init__(lambda topic, _: received.append(topic))
        self.publishing = asyncio.Event()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MemorySession]:
        yield PubackCrossesTheStop(self, self.publishing)


async def _health() -> dict:
    return {"state": "online"}


async def _ignore(_: bytes) -> None:
    return None


async def test_the_uplink_stops_although_its_client_swallowed_the_cancellation(
    tmp_path: Path,
) -> None:
    clock = SimClock()
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3", clock))
    received: list[str] = []
    link = SwallowingLink(received)
    forwarder = Forwarder(outbox, link, TOPICS, clock, _ignore, _health, 60.0, Backoff(1.0, 300.0))
    await outbox.put(ALERT, "r1", TOPICS.alert("r1"), b'{"id": "sos"}')
    task = asyncio.create_task(forwarder.run())
    try:
        await asyncio.wait_for(link.publishing.wait(), 10)
        forwarder.stopping = True  # as the runtime's stop() does
        task.cancel()
        await asyncio.wait({task}, timeout=10)  # bounded: without the fix it never ends
        assert task.cancelled()
        assert TOPICS.alert("r1") in received
        assert forwarder.counters["sent"] == 1  # delivered, so taken off the outbox
        assert await outbox.pending(10) == []
    finally:
        task.cancel()  # a second cancellation ends a hung drain
        await asyncio.wait({task}, timeout=10)
        await outbox.close()
