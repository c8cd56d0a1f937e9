"""Live Zigbee2MQTT and bed-profile topics through a real mosquitto: a real aiomqtt publisher
speaks the bridge's payloads, the lead's local-broker driver carries them to our codecs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import aiomqtt
import pytest

from drivers.decoders.bed import BedProfileCodec
from drivers.decoders.encoders import (
    bed_profile_payload,
    z2m_availability,
    z2m_bridge_state,
    z2m_messages,
)
from drivers.local_mqtt import LocalMqttDriver
from drivers.zigbee2mqtt import Zigbee2MqttCodec
from gateway.clock import SimClock
from gateway.model import Reading
from gateway.settings import LocalBrokerSettings
from tests.support.mosquitto import PASSWORD, USER, Mosquitto, shipped_delivery_settings

pytestmark = pytest.mark.broker


async def run_driver(driver: LocalMqttDriver, broker: Mosquitto, probe: tuple[str, bytes],
                     messages: list[tuple[str, bytes]], is_last: Callable[[Reading], bool],
                     limit_s: float = 10.0) -> list[Reading]:
    """Run the driver; publish ``probe`` until it comes through (the subscription is live),
    then ``messages``; return every reading once ``is_last`` accepts one."""
    readings: list[Reading] = []
    subscribed = asyncio.Event()
    done = asyncio.Event()

    async def sink(reading: Reading) -> None:
        readings.append(reading)
        subscribed.set()
        if is_last(reading):
            done.set()

    async def publisher() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port, username=USER,
                                  password=PASSWORD) as client:
            while not subscribed.is_set():
                await client.publish(*probe, qos=1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscribed.wait(), 0.1)
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1)

    task = asyncio.create_task(driver.run(sink))
    try:
        await asyncio.wait_for(asyncio.gather(publisher(), done.wait()), limit_s)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return readings


async def test_zigbee2mqtt_and_bed_topics_end_to_end(local_broker: Mosquitto) -> None:
    z2m = Zigbee2MqttCodec("zigbee2mqtt", {"Front door": "front-door", "SOS": "sos-1",
                                           "Bath leak": "leak-1"})
    bed = BedProfileCodec("eldergate/bed", {"bed1": "bed-p1"})
    settings = LocalBrokerSettings(**local_broker.settings(), zigbee2mqtt_base_topic=None)
    driver = LocalMqttDriver(settings, [z2m, bed], SimClock(), client_id="z2m-test")
    messages = [
        z2m_bridge_state("zigbee2mqtt", True, legacy=True),
        *z2m_messages("zigbee2mqtt", "Front door", {"open": True, "battery": 91}),
        *z2m_messages("zigbee2mqtt", "SOS", {"action": "sos", "battery": 80}),
        ("zigbee2mqtt/Unknown thing", b'{"state": "ON"}'),
        ("zigbee2mqtt/Bath leak", b"not json"),
        *z2m_messages("zigbee2mqtt", "Bath leak", {"water_leak": True}),
        z2m_availability("zigbee2mqtt", "Front door", False),
        ("zigbee2mqtt/bridge/devices", json.dumps([{"friendly_name": "x"}]).encode()),
        ("eldergate/bed/bed1", bed_profile_payload({"occupied": True, "hr": 57, "rr": 13})),
        ("eldergate/bed/bed1/availability", b"offline"),
    ]
    probe = z2m_availability("zigbee2mqtt", "SOS", True)  # any message that makes a reading
    readings = await run_driver(driver, local_broker, probe, messages,
                                is_last=lambda r: r.values.get("online") is False
                                and r.device == "bed-p1")

    by_device: dict[str, list[dict]] = {}
    for r in readings:
        by_device.setdefault(r.device, []).append(dict(r.values))
    assert z2m.bridge_online is True  # the bridge's state is no reading: it is the codec's
    assert set(by_device) == {"front-door", "sos-1", "leak-1", "bed-p1"}
    assert by_device["front-door"] == [{"open": True, "battery": 91, "linkquality": 120},
                                       {"online": False}]
    sos = by_device["sos-1"]
    assert [v["action"] for v in sos if "action" in v] == ["sos"]  # 3 messages, one press
    assert by_device["leak-1"] == [{"water_leak": True, "linkquality": 120}]
    assert by_device["bed-p1"] == [{"occupied": True, "hr": 57, "rr": 13}, {"online": False}]
    assert driver.counters["rejected"] == 2  # the unknown device and the broken payload
    assert z2m.counters["duplicate_actions"] == 1


async def test_a_retained_message_is_no_new_press_and_no_sign_of_life(
    local_broker: Mosquitto,
) -> None:
    """The broker re-delivers retained messages at every (re)subscription: a press kept
    retained (Zigbee2MQTT's ``retain: true``, a device publishing retained) was a new SOS
    after every broker blip or gateway restart, and a retained ``online`` or state a sign of
    life that cleared a dead device's ``device_offline``. Only ``online: false`` is kept."""
    from drivers.local_mqtt import DeviceJsonCodec

    z2m = Zigbee2MqttCodec("zigbee2mqtt", {"Front door": "front-door", "SOS": "sos-1"})
    pendant = DeviceJsonCodec("eldergate/devices", {"pendant"})
    bed = BedProfileCodec("eldergate/bed", {"bed1": "bed-p1"})
    settings = LocalBrokerSettings(**local_broker.settings(), zigbee2mqtt_base_topic=None)
    async with aiomqtt.Client("127.0.0.1", local_broker.port, username=USER,
                              password=PASSWORD) as client:
        for topic, payload in [
            ("zigbee2mqtt/SOS", b'{"action": "emergency", "battery": 80}'),
            ("eldergate/devices/pendant", b'{"action": "sos"}'),
            ("eldergate/bed/bed1/availability", b"online"),
            z2m_availability("zigbee2mqtt", "Front door", False),
        ]:
            await client.publish(topic, payload, qos=1, retain=True)
    for _ in range(2):  # a restart, or a broker blip: the retained copies come again
        driver = LocalMqttDriver(settings, [z2m, pendant, bed], SimClock(), client_id="retain")
        readings = await run_driver(
            driver, local_broker, ("eldergate/devices/pendant", b'{"battery": 90}'),
            [("eldergate/devices/pendant", b'{"action": "cancel"}')],
            is_last=lambda r: r.values.get("action") == "cancel",
        )
        assert [r.values for r in readings if r.device in ("sos-1", "bed-p1")] == []
        assert {"online": False} in [r.values for r in readings if r.device == "front-door"]
        assert [r.values.get("action") for r in readings if "action" in r.values] == ["cancel"]
        assert driver.counters["retained_ignored"] == 3


async def test_a_press_zigbee2mqtt_sends_while_the_gateway_is_away_reaches_it_after(
    local_broker: Mosquitto,
) -> None:
    """Zigbee2MQTT publishes at QoS 0 by default. A press made while the gateway restarts
    (an update, a watchdog restart) is kept by the home broker for the gateway's persistent
    session only as the shipped configuration says (``queue_qos0_messages``): it was lost."""
    assert "queue_qos0_messages true" in shipped_delivery_settings()
    z2m = Zigbee2MqttCodec("zigbee2mqtt", {"SOS": "sos-1"})
    settings = LocalBrokerSettings(**local_broker.settings(), zigbee2mqtt_base_topic=None)
    probe = z2m_availability("zigbee2mqtt", "SOS", True)
    first = LocalMqttDriver(settings, [z2m], SimClock(), client_id="away")
    await run_driver(first, local_broker, probe, [], is_last=lambda r: True)  # session made
    async with aiomqtt.Client("127.0.0.1", local_broker.port, username=USER,
                              password=PASSWORD) as zigbee2mqtt:
        for topic, payload in z2m_messages("zigbee2mqtt", "SOS", {"action": "sos"}):
            await zigbee2mqtt.publish(topic, payload, qos=0)
    back = LocalMqttDriver(settings, [z2m], SimClock(), client_id="away")
    readings = await run_driver(back, local_broker, probe, [],
                                is_last=lambda r: r.values.get("action") == "sos")
    assert [r.values["action"] for r in readings if "action" in r.values] == ["sos"]


async def test_a_retained_press_does_not_swallow_a_real_one_just_after_a_subscription(
    local_broker: Mosquitto,
) -> None:
    """The retained copy of an old press (Zigbee2MQTT's ``retain: true``: the last state, its
    ``action`` included) comes at every (re)subscription. It is rightly no press, but it went
    into the codec's memory of recent presses, so a real press of the same button within
    ``action_window_s`` of a broker blip or a gateway restart was taken for its copy: an SOS
    lost, counted only as a duplicate."""
    z2m = Zigbee2MqttCodec("zigbee2mqtt", {"SOS": "sos-1"})
    settings = LocalBrokerSettings(**local_broker.settings(), zigbee2mqtt_base_topic=None)
    async with aiomqtt.Client("127.0.0.1", local_broker.port, username=USER,
                              password=PASSWORD) as client:
        await client.publish("zigbee2mqtt/SOS", b'{"action": "emergency", "battery": 80}',
                             qos=1, retain=True)
    driver = LocalMqttDriver(settings, [z2m], SimClock(), client_id="retained-then-real")
    readings = await run_driver(
        driver, local_broker, z2m_availability("zigbee2mqtt", "SOS", True),
        z2m_messages("zigbee2mqtt", "SOS", {"action": "sos", "battery": 79}),
        is_last=lambda r: r.values.get("battery") == 79 and "action" not in r.values,
    )
    assert driver.counters["retained_ignored"] == 1
    assert [r.values["action"] for r in readings if "action" in r.values] == ["sos"]
    assert z2m.counters["duplicate_actions"] == 1  # the /action copy of the real press only
