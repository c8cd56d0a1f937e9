"""The local-broker driver stops when the gateway stops, even when aiomqtt swallowed the
cancellation: it waits for the CONNACK and each SUBACK with Python 3.11's ``asyncio.wait_for``,
which returns the result of a call that completes as the task is cancelled and drops the
cancellation. The driver then went on to wait for messages and the gateway's stop waited for
it until systemd killed it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import pytest

from drivers.local_mqtt import LocalMqttDriver
from drivers.zigbee2mqtt import Zigbee2MqttCodec
from gateway.clock import SimClock
from gateway.model import Reading
from gateway.settings import LocalBrokerSettings
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.broker


async def test_the_driver_stops_although_a_suback_swallowed_the_cancellation(
    local_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    task: list[asyncio.Task[None]] = []
    on_subscribe = aiomqtt.Client._on_subscribe

    def suback_crossing_the_stop(self: aiomqtt.Client, *args: Any, **kwargs: Any) -> None:
        on_subscribe(self, *args, **kwargs)  # the SUBACK completes the subscription...
        task[0].cancel()  # ...as systemd's SIGTERM arrives

    monkeypatch.setattr(aiomqtt.Client, "_on_subscribe", suback_crossing_the_stop)
    z2m = Zigbee2MqttCodec("zigbee2mqtt", {"SOS": "sos-1"})
    settings = LocalBrokerSettings(**local_broker.settings(), zigbee2mqtt_base_topic=None)
    driver = LocalMqttDriver(settings, [z2m], SimClock(), client_id="stop-at-suback")

    async def sink(reading: Reading) -> None:
        pass

    task.append(asyncio.create_task(driver.run(sink)))
    try:
        await asyncio.wait(task, timeout=10)  # bounded: without the fix it never ends
        assert task[0].cancelled(), task[0]
    finally:
        task[0].cancel()  # a second cancellation ends a hung driver
        await asyncio.wait(task, timeout=10)
