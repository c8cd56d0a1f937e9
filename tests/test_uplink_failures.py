"""Wrong password, wrong CA, broker absent: a clear reason, retries with backoff on the injected
clock (so we can prove there is no busy loop), and no crash."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from alerts.forwarder import Forwarder
from alerts.forwarders.mqtt import MqttPlatformLink
from alerts.outbox import ALERT, AsyncOutbox, Outbox
from alerts.protocol import Topics
from gateway.backoff import Backoff
from gateway.clock import SimClock
from gateway.settings import PlatformSettings
from tests.support.harness import wait_until
from tests.support.mosquitto import Mosquitto, free_ports

pytestmark = pytest.mark.broker


async def _health() -> dict:
    return {"state": "online"}


async def _ignore(_: bytes) -> None:
    return None


async def _failing_forwarder(
    tmp_path: Path, settings: PlatformSettings
) -> tuple[Forwarder, SimClock]:
    clock = SimClock()
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3", clock))
    await outbox.put(ALERT, "r1", "eldergate/gw/alert/r1", b"{}")
    topics = Topics("eldergate", "gw")
    forwarder = Forwarder(
        outbox,
        MqttPlatformLink(settings, topics),
        topics,
        clock,
        _ignore,
        _health,
        backoff=Backoff(initial_s=2.0, maximum_s=60.0),
    )
    return forwarder, clock


async def _assert_backs_off(forwarder: Forwarder, clock: SimClock, reason: str) -> None:
    task = asyncio.create_task(forwarder.run())
    try:
        await wait_until(lambda: forwarder.counters["failures"] == 1)
        assert reason in (forwarder.last_error or ""), forwarder.last_error
        # Blocked on the backoff: without simulated time passing, no second attempt is made.
        for _ in range(50):
            await asyncio.sleep(0)
        assert forwarder.counters["failures"] == 1
        clock.advance(0.9)  # less than the smallest first delay (initial/2 = 1 s)
        for _ in range(50):
            await asyncio.sleep(0)
        assert forwarder.counters["failures"] == 1
        for expected in (2, 3, 4):
            clock.advance(60.0)
            await wait_until(lambda e=expected: forwarder.counters["failures"] == e)
        assert forwarder.backoff.attempts == 4
        assert not task.done()  # it never gives up
        assert await forwarder.outbox.depth() == {"alert": 1}  # and never drops the alert
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await forwarder.outbox.close()


async def test_wrong_password(tmp_path: Path, platform_broker: Mosquitto) -> None:
    bad = tmp_path / "wrong.txt"
    bad.write_text("not-the-password\n")
    settings = PlatformSettings(**platform_broker.settings(password_file=str(bad)))
    forwarder, clock = await _failing_forwarder(tmp_path, settings)
    await _assert_backs_off(forwarder, clock, "broker refused the login")


async def test_wrong_ca(tmp_path: Path, platform_broker: Mosquitto) -> None:
    assert platform_broker.pki is not None
    settings = PlatformSettings(
        **platform_broker.settings(ca_file=str(platform_broker.pki.other_ca))
    )
    forwarder, clock = await _failing_forwarder(tmp_path, settings)
    await _assert_backs_off(forwarder, clock, "TLS certificate not trusted")


async def test_broker_absent(tmp_path: Path, pki) -> None:
    (port,) = free_ports(1)
    settings = PlatformSettings(host="127.0.0.1", port=port, ca_file=str(pki.ca))
    forwarder, clock = await _failing_forwarder(tmp_path, settings)
    await _assert_backs_off(forwarder, clock, "connection refused")
