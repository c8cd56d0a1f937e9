"""A broker that refuses a subscription (its ACL does not let the gateway read the topics): the
gateway says so instead of believing it is subscribed, keeps everything else going, and asks
again until it is granted. Real mosquitto: its ``acl_file`` grants a denied subscription and
then delivers nothing on it, so these brokers keep their users in the dynamic-security plugin,
which refuses it (SUBACK 0x87 "Not authorized" for MQTT 5), as most brokers' ACLs do. The
gateway on a simulated clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from alerts.forwarder import COMMANDS_RETRY_S
from drivers import local_mqtt
from drivers.local_mqtt import RESUBSCRIBE_MAX_S, LocalMqttDriver, loggable_topic
from gateway.clock import SimClock
from gateway.mqtt import Suback, make_client, suback_entry
from gateway.runtime import Runtime
from gateway.wiring import build_runtime
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
from tests.support.mosquitto import Mosquitto, Pki, shipped_delivery_settings
from tests.test_gateway_degraded import advance_until, degraded, z2m_runtime, zigbee2mqtt_up

pytestmark = pytest.mark.broker

NOT_AUTHORIZED = "Not authorized (0x87)"
# The gateway's user may subscribe below eldergate/ only (the JSON device topic; on the
# platform's broker the reference platform's own subscriptions); everything else is refused.
ELDERGATE_ONLY: dict[str, Any] = {
    "dynsec": [("subscribePattern", "eldergate/#", True)],
    "dynsec_defaults": {"subscribe": False},
}
PLATFORM_ONLY: dict[str, Any] = {
    "dynsec": [
        ("subscribePattern", f"eldergate/+/{topic}", True)
        for topic in ("alert/#", "state", "health", "summary/#")
    ],
    "dynsec_defaults": {"subscribe": False},
}


async def _allow_every_subscription(broker: Mosquitto) -> None:
    """The installer fixes the ACL. (Unlike a change to a role, this one does not disconnect
    the broker's clients: the gateway has to ask again on its own.)"""
    await broker.dynsec_command(
        {"command": "setDefaultACLAccess", "acls": [{"acltype": "subscribe", "allow": True}]}
    )


@pytest.fixture
def acl_local_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(
        tmp_path / "local-broker", None, extra=shipped_delivery_settings(), **ELDERGATE_ONLY
    ).start()
    yield broker
    broker.stop()


async def next_retry(runtime: Runtime) -> None:
    """Move simulated time past the home broker driver's next request for what it was refused
    (its longest backoff), at once: its SUBACK then comes in real time (simulated steps that
    went on meanwhile could outrun it on a loaded machine)."""
    await advance_gateway(runtime, RESUBSCRIBE_MAX_S + 1.0)


def _refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused the subscription" in r.getMessage()]


async def test_a_refused_zigbee2mqtt_subscription_is_reported_and_taken_up_once_allowed(
    tmp_path: Path, acl_local_broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The home broker's ACL does not let the gateway read zigbee2mqtt/#: every Zigbee device,
    the pull cord included, is deaf. The gateway says why (not "the bridge is offline", nor a
    device_offline per device a day later), hears the other topics meanwhile, and takes the
    Zigbee topics up once the ACL is fixed, without a restart."""
    caplog.set_level(logging.INFO)
    broker = acl_local_broker
    await zigbee2mqtt_up(broker)  # Zigbee2MQTT runs, its bridge state retained
    runtime = z2m_runtime(tmp_path, broker, None)
    driver = runtime.drivers[0]
    assert isinstance(driver, LocalMqttDriver)
    codec = next(c for c in driver.codecs if c.name == "zigbee2mqtt")
    key = "subscription_refused:zigbee2mqtt"
    async with running(runtime):
        assert set(driver.problems()) == {key}
        cause, reason = driver.problems()[key]
        shown = loggable_topic("zigbee2mqtt/#")
        assert cause == "subscription_refused"
        assert shown in reason and NOT_AUTHORIZED in reason
        assert driver.diagnostics()["subscriptions_refused_now"] == {shown: NOT_AUTHORIZED}
        (line,) = _refusal_lines(caplog)
        assert shown in line and NOT_AUTHORIZED in line and "zigbee2mqtt/#" not in line
        health = await runtime.health()
        assert health["problems"] == {f"local_mqtt:{key}": "subscription_refused"}

        # the JSON device topic was granted: a press there is heard meanwhile
        await publish_readings(broker, [("sos-r1", {"action": "sos"})])
        await wait_until(lambda: any(a.type == "sos" for a in runtime.manager.active.values()))

        await advance_until(runtime, lambda: bool(degraded(runtime)))
        assert degraded(runtime) == dict.fromkeys(RESIDENTS, "subscription_refused")
        alert = next(a for a in runtime.manager.active.values() if a.type == "gateway_degraded")
        assert alert.key == f"local_mqtt:{key}" and NOT_AUTHORIZED in alert.details["reason"]
        # asked again meanwhile, on the same connection, refused again: counted, not logged
        for refusals in (2, 3):
            await next_retry(runtime)
            await wait_until(lambda: driver.counters["subscriptions_refused"] >= refusals)  # noqa: B023
        assert len(_refusal_lines(caplog)) == 1

        await _allow_every_subscription(broker)
        await next_retry(runtime)
        await wait_until(lambda: not driver.refused)
        await wait_until(lambda: codec.bridge_online is True)  # its retained state came
        assert driver.problems() == {}
        await advance_until(runtime, lambda: not degraded(runtime))
    assert runtime.driver_failures == {}  # never torn down for it
    assert any("granted the subscription" in r.getMessage() for r in caplog.records)


async def test_a_subscription_granted_at_qos_0_is_no_refusal(tmp_path: Path) -> None:
    """A broker that grants less than asked (QoS 0 for 1) still delivers: no problem, only
    noted (messages sent while the gateway is away may not be kept for it)."""
    broker = Mosquitto(tmp_path / "local-broker", None, extra=["max_qos 0"]).start()
    try:
        runtime = z2m_runtime(tmp_path, broker, None)
        driver = runtime.drivers[0]
        assert isinstance(driver, LocalMqttDriver)
        async with running(runtime):
            assert not driver.refused
            assert driver.diagnostics()["granted_qos0"] == sorted(
                loggable_topic(f) for f in ("eldergate/devices/+", "zigbee2mqtt/#")
            )
            async with make_client(broker.broker_settings(), "device") as client:
                await client.publish("eldergate/devices/sos-r2", b'{"action": "sos"}', qos=0)
            await wait_until(
                lambda: any(a.resident == "r2" for a in runtime.manager.active.values())
            )
    finally:
        broker.stop()


def _uplink_runtime(tmp_path: Path, local: Mosquitto, platform: Mosquitto) -> Runtime:
    runtime = build_runtime(settings_for(gateway_config(tmp_path, local, platform)), SimClock())
    runtime.backoff_factory = fast_backoff
    assert runtime.forwarder is not None
    runtime.forwarder.backoff = fast_backoff()
    return runtime


async def test_a_refused_command_subscription_is_reported_the_alerts_go_and_it_is_retried(
    tmp_path: Path, pki: Pki, local_broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The platform's ACL does not let the gateway read its command topic: staff acks,
    resolves and visits would never arrive, and nothing said so. The heartbeat says so now,
    the session that carries the alerts stays up (an SOS still goes), and the subscription
    is asked for again on it until the platform grants it."""
    platform = Mosquitto(tmp_path / "platform-broker", pki, **PLATFORM_ONLY).start()
    try:
        runtime = _uplink_runtime(tmp_path, local_broker, platform)
        forwarder = runtime.forwarder
        assert forwarder is not None
        async with running_platform(platform) as harness, running(runtime):
            await wait_until(lambda: forwarder.connected.is_set())
            await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
            (alert,) = await harness.wait_for_alerts(1)  # the alerts go
            assert alert["type"] == "sos"

            def heartbeat() -> dict[str, Any]:
                (gateway,) = harness.platform.store.gateways()
                return gateway["health"] or {}

            await wait_until(lambda: "uptime_s" in heartbeat())
            assert heartbeat()["commands"] == {
                "rejected": 0,
                "refused": NOT_AUTHORIZED,
                "refusals": 1,
            }
            diagnostics = forwarder.diagnostics()
            assert diagnostics["commands_refused"] == NOT_AUTHORIZED
            assert diagnostics["command_subscriptions_refused"] == 1
            (line,) = _refusal_lines(caplog)
            assert "eldergate/gw-test/command" in line and NOT_AUTHORIZED in line

            await _allow_every_subscription(platform)
            await advance_gateway(runtime, COMMANDS_RETRY_S)  # the first retry is due
            await wait_until(lambda: forwarder.commands_refused is None)
            await harness.platform.acknowledge(alert["id"], by="staff-17")
            await wait_until(
                lambda: runtime.manager.active[alert["id"]].state.value == "acknowledged"
            )
            await advance_gateway(runtime, runtime.settings.gateway.heartbeat_s)
            await wait_until(lambda: heartbeat()["commands"]["refused"] is None)
            assert heartbeat()["commands"]["refusals"] == 1
        assert forwarder.counters["connects"] == 1 and forwarder.counters["failures"] == 0
    finally:
        platform.stop()


def test_suback_entries_of_either_protocol_version() -> None:
    """paho gives MQTT 5 reason codes, and 3.1.1 return codes as reason codes or integers."""
    assert suback_entry(ReasonCode(PacketTypes.SUBACK, identifier=1)) == Suback(1)
    assert suback_entry(ReasonCode(PacketTypes.SUBACK, identifier=0)) == Suback(0)
    refused = suback_entry(ReasonCode(PacketTypes.SUBACK, identifier=0x87))
    assert refused == Suback(None, NOT_AUTHORIZED)
    assert suback_entry(ReasonCode(PacketTypes.SUBACK, identifier=0x80)).refused == (
        "Unspecified error (0x80)"
    )
    assert suback_entry(1) == Suback(1)
    assert suback_entry(0x80) == Suback(None, "Failure (0x80)")


async def test_an_unexpected_error_while_asking_again_does_not_end_the_retries(
    tmp_path: Path, acl_local_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking again for a refused subscription fails in a way nobody foresaw (a bug): it is
    counted and logged, and the gateway asks again later. The retries ran in a task of their
    own that such an error ended unseen, leaving the Zigbee topics deaf until a restart."""
    broker = acl_local_broker
    await zigbee2mqtt_up(broker)
    runtime = z2m_runtime(tmp_path, broker, None)
    driver = runtime.drivers[0]
    assert isinstance(driver, LocalMqttDriver)
    real_subscribe = local_mqtt.subscribe
    failures = [RuntimeError("a bug")]

    async def failing_once(client: aiomqtt.Client, topic_filter: str, qos: int = 1) -> Suback:
        if failures:
            raise failures.pop()
        return await real_subscribe(client, topic_filter, qos)

    async with running(runtime):
        assert driver.refused
        monkeypatch.setattr(local_mqtt, "subscribe", failing_once)
        await _allow_every_subscription(broker)
        await advance_until(runtime, lambda: driver.counters["resubscribe_errors"] == 1)
        assert driver.refused  # not granted yet: the retry failed
        await next_retry(runtime)
        await wait_until(lambda: not driver.refused)
        assert driver.problems() == {}
    assert runtime.driver_failures == {}
