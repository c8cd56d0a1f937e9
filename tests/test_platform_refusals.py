"""The platform refuses a message, or sends one the gateway cannot use: nothing is lost and
nothing else stops. Real mosquitto with an ACL (MQTT 5 PUBACK reason 0x87 "Not authorized"),
a real HTTPS webhook server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerts.forwarder import REFUSED_RETRY_S, Forwarder
from alerts.forwarders.mqtt import MqttPlatformLink
from alerts.outbox import ALERT, SUMMARY, AsyncOutbox, Outbox
from alerts.protocol import CommandError, Topics, parse_command
from gateway.backoff import Backoff
from gateway.clock import SimClock
from gateway.mqtt import make_client
from gateway.settings import PlatformSettings
from gateway.wiring import build_runtime
from simulators.platform.console import render_page
from tests.support.harness import (
    RESIDENTS,
    advance_gateway,
    fast_backoff,
    gateway_config,
    publish_readings,
    running,
    running_platform,
    settings_for,
    wait_until,
)
from tests.support.mosquitto import USER, Mosquitto, Pki

pytestmark = pytest.mark.broker

TOPICS = Topics("eldergate", "gw")


def _acl(residents_allowed: list[str], health: bool = True) -> str:
    lines = [f"user {USER}", "topic readwrite eldergate/gw/state"]
    lines += ["topic readwrite eldergate/gw/health"] if health else []
    lines += ["topic readwrite eldergate/gw/command", "topic read eldergate/gw/alert/#"]
    lines += [f"topic write eldergate/gw/alert/{r}" for r in residents_allowed]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def _subscriber(broker: Mosquitto) -> AsyncIterator[list[dict]]:
    received: list[dict] = []
    async with make_client(broker.broker_settings(), "platform-test") as client:
        await client.subscribe("eldergate/gw/alert/#", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append(json.loads(message.payload))

        task = asyncio.create_task(collect())
        try:
            yield received
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class Rig:
    """A platform broker with an ACL, a subscriber on the alert topics (``received``), and a
    forwarder on a simulated clock draining a fresh outbox to it, once :meth:`start` ed."""

    broker: Mosquitto
    clock: SimClock
    outbox: AsyncOutbox
    forwarder: Forwarder
    received: list[dict]
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.forwarder.run())


def _broker_with_acl(tmp_path: Path, pki: Pki, acl: Path, rules: str) -> Mosquitto:
    broker = Mosquitto(tmp_path / "broker", pki)
    acl.write_text(rules)
    conf = broker.folder / "mosquitto.conf"
    conf.write_text(conf.read_text() + f"acl_file {acl}\n")
    return broker.start()


@contextlib.asynccontextmanager
async def _rig(tmp_path: Path, pki: Pki, acl: Path, rules: str) -> AsyncIterator[Rig]:
    broker = _broker_with_acl(tmp_path, pki, acl, rules)
    clock = SimClock()
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3", clock))
    link = MqttPlatformLink(PlatformSettings(**broker.settings()), TOPICS)  # type: ignore[arg-type]
    forwarder = Forwarder(
        outbox, link, TOPICS, clock, _nothing, _health, backoff=Backoff(0.01, 0.05)
    )
    try:
        async with _subscriber(broker) as received:
            rig = Rig(broker, clock, outbox, forwarder, received)
            try:
                yield rig
            finally:
                if rig.task is not None:
                    rig.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await rig.task
    finally:
        await outbox.close()
        broker.stop()


async def _nothing(_: bytes) -> None:
    return None


async def _health() -> dict:
    return {"state": "online"}


async def test_a_refused_alert_stays_queued_others_go_on_and_it_goes_once_allowed(
    tmp_path: Path, pki: Pki
) -> None:
    # A resident added on the gateway before the platform's ACL knows them.
    acl = tmp_path / "acl"
    async with _rig(tmp_path, pki, acl, _acl(["r1"])) as rig:
        for resident, alert_id in [("r2", "a"), ("r1", "b"), ("r2", "c")]:
            payload = json.dumps({"id": alert_id}).encode()
            await rig.outbox.put(ALERT, resident, TOPICS.alert(resident), payload)
        rig.start()
        await wait_until(lambda: [m["id"] for m in rig.received] == ["b"])
        await wait_until(lambda: rig.forwarder.counters["refused"] == 2)  # "a" and "c"
        # "b" is taken off the outbox once its PUBACK is in, maybe after it arrived
        await wait_until(lambda: [i.resident for i in rig.outbox.outbox.pending()] == ["r2"] * 2)
        # the ACL is fixed (mosquitto reads it again on SIGHUP), the retry comes due
        acl.write_text(_acl(["r1", "r2"]))
        assert rig.broker.proc is not None
        rig.broker.proc.send_signal(signal.SIGHUP)
        await wait_until(lambda: "reloading" in rig.broker.log().lower())
        rig.clock.advance(REFUSED_RETRY_S - 1)
        await wait_until(lambda: rig.forwarder.counters["heartbeats"] >= 2)  # it ran on
        assert [m["id"] for m in rig.received] == ["b"]
        rig.clock.advance(1)
        await wait_until(lambda: [m["id"] for m in rig.received] == ["b", "a", "c"])
        await wait_until(lambda: rig.outbox.outbox.depth() == {})
        # counted once the ack is back from the outbox's thread, which can be after the
        # outbox is seen empty: leaving the rig then cancelled the forwarder before it counted
        await wait_until(lambda: rig.forwarder.counters["sent"] >= 3)
    forwarder = rig.forwarder
    assert forwarder.counters["sent"] == 3 and forwarder.counters["failures"] == 0


async def test_a_refused_summary_or_heartbeat_holds_back_no_alert(tmp_path: Path, pki: Pki) -> None:
    """The platform's ACL grants the alert topic but not the summary or the health topic: the
    SOS queued behind a refused summary still goes, and the link stays up."""
    async with _rig(tmp_path, pki, tmp_path / "acl", _acl(["r1"], health=False)) as rig:
        await rig.outbox.put(SUMMARY, "r1", TOPICS.summary("r1"), b'{"id": "day"}')
        await rig.outbox.put(ALERT, "r1", TOPICS.alert("r1"), b'{"id": "sos"}')
        rig.start()
        await wait_until(lambda: [m["id"] for m in rig.received] == ["sos"])
        rig.clock.advance(rig.forwarder.heartbeat_s)  # another refused heartbeat
        await wait_until(lambda: rig.forwarder.counters["heartbeats"] >= 2)
        await wait_until(lambda: [i.kind for i in rig.outbox.outbox.pending()] == [SUMMARY])
    forwarder = rig.forwarder
    assert forwarder.counters["connects"] == 1 and forwarder.counters["failures"] == 0
    assert forwarder.counters["refused"] >= 3  # the summary and each heartbeat


def _gateway_acl(alert_residents: list[str]) -> str:
    """The gateway's and the reference platform's user on the platform's broker: everything
    of gateway gw-test, but publishing alerts only of these residents."""
    lines = [f"topic readwrite eldergate/gw-test/{t}" for t in ("state", "health", "command")]
    lines += ["topic readwrite eldergate/gw-test/summary/#", "topic read eldergate/gw-test/alert/#"]
    lines += [f"topic write eldergate/gw-test/alert/{r}" for r in alert_residents]
    return "\n".join(lines)


async def test_the_heartbeat_and_the_console_say_the_platform_refuses_alert_messages(
    tmp_path: Path, pki: Pki, local_broker: Mosquitto
) -> None:
    """An ACL change on the platform's broker refuses the gateway's alerts for one resident:
    the SOS waits in the gateway's outbox, and only its log said why. Every heartbeat now
    counts the refusals and the messages held for their retry, and the console warns."""
    platform = Mosquitto(tmp_path / "platform-broker", pki, acl=_gateway_acl(["r2", "r3"]))
    platform.start()
    try:
        config = gateway_config(tmp_path, local_broker, platform)
        runtime = build_runtime(settings_for(config), SimClock())
        runtime.backoff_factory = fast_backoff
        forwarder = runtime.forwarder
        assert forwarder is not None
        forwarder.backoff = fast_backoff()
        heartbeat_s = runtime.settings.gateway.heartbeat_s
        async with running_platform(platform) as harness, running(runtime):

            def uplink() -> object:
                (gateway,) = harness.platform.store.gateways()
                return (gateway["health"] or {}).get("uplink")

            await wait_until(lambda: forwarder.connected.is_set())
            await wait_until(lambda: uplink() == {"refusals": 0, "held": 0})
            await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
            await wait_until(lambda: forwarder.counters["refused"] == 1)
            await advance_gateway(runtime, heartbeat_s)
            await wait_until(lambda: uplink() == {"refusals": 1, "held": 1})
            assert "1 messages refused by the platform" in render_page(harness.platform)
            assert harness.received == []

            # the platform's operator fixes the ACL (mosquitto reads it again on SIGHUP)
            (platform.folder / "acl").write_text(f"user {USER}\n{_gateway_acl(RESIDENTS)}\n")
            assert platform.proc is not None
            platform.proc.send_signal(signal.SIGHUP)
            await wait_until(lambda: "reloading" in platform.log().lower())
            await advance_gateway(runtime, REFUSED_RETRY_S)
            (alert, *_) = await harness.wait_for_alerts(1)
            assert alert["type"] == "sos" and alert["resident"] == "r1"
            await advance_gateway(runtime, heartbeat_s)
            await wait_until(lambda: uplink() == {"refusals": 1, "held": 0})
            assert "refused by the platform" not in render_page(harness.platform)
        assert forwarder.counters["failures"] == 0
    finally:
        platform.stop()


@pytest.mark.parametrize("command", [[], {"a": 1}, 3, None])
def test_a_command_name_that_is_not_a_string_is_rejected_not_raised(command: object) -> None:
    with pytest.raises(CommandError, match="command: expected one of"):
        parse_command(json.dumps({"command": command}).encode())


def test_deeply_nested_command_is_rejected() -> None:
    with pytest.raises(CommandError):
        parse_command(b"[" * 8000 + b"]" * 8000)  # under the size limit
