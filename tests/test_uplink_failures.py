"""Wrong password, wrong CA, broker absent: a clear reason, retries with backoff on the injected
clock (so we can prove there is no busy loop), and no crash."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from alerts.forwarder import Forwarder
from alerts.forwarders.mqtt import MqttPlatformLink
from alerts.outbox import ALERT, AsyncOutbox, Outbox
from alerts.protocol import Topics
from gateway.backoff import Backoff
from gateway.clock import SimClock
from gateway.mqtt import make_client
from gateway.settings import PlatformSettings
from tests.support.harness import gateway_config, running, runtime_for, wait_until
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


async def _retained_state(broker: Mosquitto, topic: str) -> dict:
    async with make_client(broker.broker_settings(), "platform-reader") as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert message.retain and isinstance(message.payload, bytes)
                return dict(json.loads(message.payload))
    raise AssertionError("no retained state")


async def test_a_gateway_stopped_is_offline_on_the_platform(
    tmp_path: Path, platform_broker: Mosquitto
) -> None:
    """A stop (systemd's SIGTERM: an update, a shutdown of the Pi) ends the session with a
    clean DISCONNECT, on which the broker drops the last will: the retained state stayed
    "online" for a gateway that was gone, for as long as it stayed gone."""
    runtime = runtime_for(gateway_config(tmp_path, None, platform_broker))
    topic = runtime.topics.state
    async with running(runtime):
        assert runtime.forwarder is not None
        await wait_until(
            lambda: runtime.forwarder is not None and runtime.forwarder.connected.is_set()
        )
        assert (await _retained_state(platform_broker, topic))["state"] == "online"
    assert (await _retained_state(platform_broker, topic))["state"] == "offline"
    # and the next start says online again
    runtime = runtime_for(gateway_config(tmp_path, None, platform_broker))
    async with running(runtime):
        await wait_until(
            lambda: runtime.forwarder is not None and runtime.forwarder.connected.is_set()
        )
        assert (await _retained_state(platform_broker, topic))["state"] == "online"


async def test_a_retained_command_is_not_acted_on_at_every_reconnect(
    tmp_path: Path, platform_broker: Mosquitto
) -> None:
    """A command left retained on the command topic (a platform or a staff tool publishing
    with the retain flag) came again with every subscription, at every reconnect of the
    uplink: a visit_start started a new visit each time, holding the resident's behaviour
    alerts (a night exit, a collapse's inactivity) for hours after each internet blip."""
    topic = "eldergate/gw-test/command"
    async with make_client(platform_broker.broker_settings(), "staff-tool") as tool:
        visit = {"v": 1, "command": "visit_start", "resident": "r1", "hours": 2}
        await tool.publish(topic, json.dumps(visit).encode(), qos=1, retain=True)
    runtime = runtime_for(gateway_config(tmp_path, None, platform_broker))
    async with running(runtime):
        forwarder = runtime.forwarder
        assert forwarder is not None
        await wait_until(lambda: forwarder.connected.is_set())
        async with make_client(platform_broker.broker_settings(), "platform") as platform:
            visit = {"v": 1, "command": "visit_start", "resident": "r2", "hours": 2}
            await platform.publish(topic, json.dumps(visit).encode(), qos=1)
        await wait_until(lambda: runtime.manager.in_visit("r2"))  # commands are heard
        assert not runtime.manager.in_visit("r1")
