"""The whole live path on real brokers: local mosquitto → gateway → TLS uplink → platform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import (
    gateway_config,
    publish_readings,
    running,
    running_platform,
    runtime_for,
    wait_until,
)
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.broker


async def test_sos_arrives_once_with_resident_and_type(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    runtime = runtime_for(gateway_config(tmp_path, local_broker, platform_broker))
    async with running_platform(platform_broker) as platform, running(runtime):
        await wait_until(
            lambda: runtime.forwarder is not None and runtime.forwarder.connected.is_set()
        )
        await wait_until(lambda: runtime.drivers[0].counters["messages"] >= 0)
        await publish_readings(local_broker, [("sos-r2", {"action": "sos"})])
        received = await platform.wait_for_alerts(1)
        # Two more presses within the repeat window join the same alert.
        await publish_readings(local_broker, [("sos-r2", {"action": "sos"})] * 2)
        await wait_until(lambda: platform.platform.store.alerts()[0]["count"] == 3)
        await wait_until(lambda: runtime.outbox.outbox.depth() == {})
    assert [(a["type"], a["resident"], a["severity"]) for a in received] == [
        ("sos", "r2", "critical")
    ]
    stored = platform.platform.store.alerts()
    assert len(stored) == 1 and stored[0]["state"] == "open"
    assert stored[0]["text"]["zh"] and stored[0]["text"]["en"]


async def test_staff_acknowledge_reaches_the_gateway(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    runtime = runtime_for(gateway_config(tmp_path, local_broker, platform_broker))
    async with running_platform(platform_broker) as platform, running(runtime):
        await wait_until(lambda: runtime.forwarder.connected.is_set())
        await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
        (alert,) = await platform.wait_for_alerts(1)
        assert await platform.platform.acknowledge(alert["id"], by="nurse-7")
        await wait_until(lambda: runtime.manager.counters["acknowledged"] == 1)
        assert runtime.manager.active[alert["id"]].state.value == "acknowledged"
        # The gateway confirms on the uplink, and the platform keeps the acknowledged state.
        await wait_until(lambda: runtime.outbox.outbox.depth() == {})
        await wait_until(lambda: platform.platform.store.alert(alert["id"])["by"] == "nurse-7")
        assert platform.platform.store.alert(alert["id"])["state"] == "acknowledged"


async def test_zigbee2mqtt_button_press_through_the_gateway(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    """A real Zigbee2MQTT button: the press arrives twice (state topic and /action), plus a
    check-in with an empty action; the platform gets one SOS alert with count 1."""
    from tests.support.harness import publish_raw

    config = gateway_config(tmp_path, local_broker, platform_broker)
    config["devices"].append(
        {
            "id": "pull-cord",
            "kind": "button",
            "room": "bathroom",
            "resident": "r3",
            "transport": "zigbee2mqtt",
            "friendly_name": "Bathroom Pull Cord",
        }
    )
    runtime = runtime_for(config)
    async with running_platform(platform_broker) as platform, running(runtime):
        await wait_until(lambda: runtime.forwarder.connected.is_set())
        base = "zigbee2mqtt/Bathroom Pull Cord"
        await publish_raw(local_broker, base, b'{"action":"single","battery":87,"linkquality":90}')
        await publish_raw(local_broker, f"{base}/action", b"single")
        await publish_raw(local_broker, base, b'{"action":"","battery":87,"linkquality":90}')
        (alert,) = await platform.wait_for_alerts(1)
        await wait_until(lambda: runtime.drivers[0].counters["messages"] == 3)
        await wait_until(lambda: runtime.outbox.outbox.depth() == {})
    assert (alert["type"], alert["resident"], alert["device"]) == ("sos", "r3", "pull-cord")
    assert platform.platform.store.alerts()[0]["count"] == 1


async def test_visit_mode_from_the_platform_holds_behaviour_alerts_only(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    from gateway.model import Event, Severity

    runtime = runtime_for(gateway_config(tmp_path, local_broker, platform_broker))
    async with running_platform(platform_broker) as platform, running(runtime):
        await wait_until(lambda: runtime.forwarder.connected.is_set())
        await platform.platform.command(
            "gw-test", {"command": "visit_start", "resident": "r1", "hours": 1, "by": "nurse"}
        )
        await wait_until(lambda: runtime.manager.in_visit("r1"))
        await platform.platform.command("gw-test", {"command": "bogus"})
        await wait_until(lambda: runtime.counters["commands_rejected"] == 1)

        def commands_in_heartbeat() -> dict[str, Any]:
            gateways = platform.platform.store.gateways()
            return ((gateways[0]["health"] or {}) if gateways else {}).get("commands", {})

        # the platform's operator sees it too: their command was not taken
        await wait_until(lambda: commands_in_heartbeat().get("rejected") == 1, 20.0)
        assert commands_in_heartbeat()["refused"] is None
        held = runtime.manager.handle(Event("inactivity", "r1", 0.0, Severity.HIGH))
        assert held == [] and runtime.manager.counters["held_during_visit"] == 1
        await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
        (alert,) = await platform.wait_for_alerts(1)
        assert alert["type"] == "sos"
        await platform.platform.command("gw-test", {"command": "visit_end", "resident": "r1"})
        await wait_until(lambda: not runtime.manager.in_visit("r1"))
