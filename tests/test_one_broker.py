"""A home whose platform uplink goes through the home's own mosquitto (a bridge to the platform,
or a developer's one-broker setup: `eldergate simulate`, `eldergate platform` and the gateway on
one local broker). The gateway's two connections both called themselves
``eldergate-<gateway id>``, so each one the broker accepted closed the other ("already
connected, closing old connection"): the local driver and the uplink took turns failing for as
long as the gateway ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mqtt import make_client
from tests.support.harness import (
    gateway_config,
    publish_readings,
    running,
    running_platform,
    runtime_for,
    wait_until,
)
from tests.support.mosquitto import Mosquitto


@pytest.mark.broker
async def test_a_platform_on_the_home_broker_keeps_both_connections(
    tmp_path: Path, local_broker: Mosquitto
) -> None:
    config = gateway_config(tmp_path, local_broker, local_broker)
    # What an earlier version left on such a broker: the one session of both connections,
    # subscribed to the device topics as well as the command topic.
    legacy = make_client(local_broker.broker_settings(), "eldergate-gw-test", session_expiry_s=3600)
    async with legacy:
        await legacy.subscribe("eldergate/devices/#", qos=1)
    async with running_platform(local_broker) as platform:
        runtime = runtime_for(config)
        async with running(runtime):
            forwarder = runtime.forwarder
            assert forwarder is not None
            await wait_until(lambda: forwarder.connected.is_set())
            await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
            (alert,) = await platform.wait_for_alerts(1)
            # staff acknowledge: the command comes after the press on the uplink's session
            assert await platform.platform.acknowledge(alert["id"], by="nurse-1")
            await wait_until(lambda: runtime.manager.counters["acknowledged"] == 1)
            assert runtime.driver_failures == {}
            assert forwarder.counters["failures"] == 0
            assert forwarder.counters["connects"] == 1
            # the press the old session still carries to the uplink is no staff command
            assert runtime.counters["commands_rejected"] == 0
    assert [a["type"] for a in platform.received] == ["sos"]


def test_the_two_connections_have_their_own_client_ids_on_one_broker(tmp_path: Path) -> None:
    from gateway.settings import parse_settings
    from gateway.wiring import local_client_id

    config = gateway_config(tmp_path, None, None, gateway_id="gw-9")
    config["local_broker"] = {"host": "localhost", "port": 1883}
    config["platform"] = {"host": "127.0.0.1", "port": 1883}
    assert local_client_id(parse_settings(config)) == "eldergate-gw-9-home"
    config["platform"] = {"host": "platform.example.org", "port": 8883}
    # a platform elsewhere: the id the home broker's persistent session has always had
    assert local_client_id(parse_settings(config)) == "eldergate-gw-9"
