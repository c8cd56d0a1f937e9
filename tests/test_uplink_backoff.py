"""The uplink's retry pace over a long outage and after a healthy session, on a simulated
clock (an in-memory link switched off and on: the pace is the forwarder's, not a transport's)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from alerts.forwarder import Forwarder
from alerts.forwarders.memory import MemoryPlatformLink
from alerts.outbox import ALERT, AsyncOutbox, Outbox
from alerts.protocol import Topics
from gateway.backoff import Backoff
from gateway.clock import SimClock
from tests.support.harness import wait_until

TOPICS = Topics("eldergate", "gw")


async def _health() -> dict:
    return {"state": "online"}


async def _ignore(_: bytes) -> None:
    return None


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def _forwarder(
    tmp_path: Path, received: list[str]
) -> AsyncIterator[tuple[Forwarder, MemoryPlatformLink, SimClock, asyncio.Task[None]]]:
    clock = SimClock()
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3", clock))
    link = MemoryPlatformLink(lambda topic, _: received.append(topic))
    forwarder = Forwarder(outbox, link, TOPICS, clock, _ignore, _health, 60.0, Backoff(1.0, 300.0))
    task = asyncio.create_task(forwarder.run())
    try:
        yield forwarder, link, clock, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await outbox.close()


async def test_an_uplink_down_for_days_is_still_retried(tmp_path: Path) -> None:
    """Backoff's 2.0 ** attempts overflowed at the 1,024th attempt (about three days at the
    300 s cap): the uplink failed with OverflowError at every attempt after it, and the
    supervisor's own backoff, overflowing in turn, took the whole gateway down."""
    received: list[str] = []
    async with _forwarder(tmp_path, received) as (forwarder, link, clock, task):
        link.up = False
        await wait_until(lambda: forwarder.counters["failures"] == 1)
        for n in range(2, 1101):
            clock.advance(300.0)
            await _turns()
            assert not task.done(), task.exception()
            assert forwarder.counters["failures"] == n
        link.up = True
        await forwarder.outbox.put(ALERT, "r1", TOPICS.alert("r1"), b'{"id": "sos"}')
        clock.advance(300.0)
        await wait_until(lambda: forwarder.counters["sent"] == 1)


async def test_a_drop_after_a_healthy_session_is_retried_at_once(tmp_path: Path) -> None:
    """The backoff was reset only by a delivered alert: after an outage with nothing to send,
    hours of healthy link left it at its cap, and the next broker restart kept an SOS
    waiting up to 5 minutes for the reconnect."""
    received: list[str] = []
    async with _forwarder(tmp_path, received) as (forwarder, link, clock, _):
        link.up = False
        await wait_until(lambda: forwarder.counters["failures"] == 1)
        for n in range(2, 12):  # an outage of about half an hour, nothing to send
            clock.advance(300.0)
            await wait_until(lambda n=n: forwarder.counters["failures"] == n)
        link.up = True
        clock.advance(300.0)
        await wait_until(lambda: forwarder.connected.is_set())
        for _ in range(60):  # an hour of heartbeats
            clock.advance(60.0)
            await _turns()
        assert forwarder.counters["failures"] == 11
        link.up = False  # the platform's broker restarts
        clock.advance(60.0)
        await wait_until(lambda: forwarder.counters["failures"] == 12)
        link.up = True
        await forwarder.outbox.put(ALERT, "r1", TOPICS.alert("r1"), b'{"id": "sos"}')
        clock.advance(1.0)  # the first retry's longest delay
        await wait_until(lambda: forwarder.counters["sent"] == 1, timeout=2)


async def test_a_health_report_that_fails_does_not_stop_the_alerts(tmp_path: Path) -> None:
    """A bug in gathering the heartbeat (a driver's diagnostics raising) ended the session:
    the supervisor restarted the uplink with backoff, again at every heartbeat, and alerts
    waited out the restarts."""
    clock = SimClock()
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3", clock))
    received: list[tuple[str, bytes]] = []
    link = MemoryPlatformLink(lambda topic, payload: received.append((topic, payload)))

    async def broken_health() -> dict:
        raise KeyError("a driver's diagnostics")

    forwarder = Forwarder(outbox, link, TOPICS, clock, _ignore, broken_health, 60.0)
    task = asyncio.create_task(forwarder.run())
    try:
        await wait_until(lambda: forwarder.counters["heartbeats"] == 1)
        for minute in range(3):
            await forwarder.outbox.put(ALERT, "r1", TOPICS.alert("r1"), b'{"id": "%d"}' % minute)
            clock.advance(60.0)
            await wait_until(lambda n=minute: forwarder.counters["sent"] == n + 1)
        await wait_until(lambda: forwarder.counters["heartbeats"] == 4)
        assert not task.done()
        assert (forwarder.counters["connects"], forwarder.counters["health_errors"]) == (1, 4)
        beats = [json.loads(p) for t, p in received if t == TOPICS.health]
        assert beats[-1]["health_error"] == "KeyError"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await outbox.close()
