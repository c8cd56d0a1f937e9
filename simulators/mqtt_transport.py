"""The MQTT transport: simulated devices speaking the payloads real ones speak, on a real broker.

Door, motion, button and alarm devices speak Zigbee2MQTT (``<base>/<friendly name>``, with the
press duplicated on ``/action`` and the legacy reset, as a real bridge does); beds speak the
bed MQTT profile (``docs/devices/bed.md``); wristbands go through an MQTT bridge on eldergate's
JSON device topic. No timestamps travel: the gateway stamps arrival, as it does in the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Protocol

import aiomqtt

from drivers.decoders.encoders import bed_profile_payload, z2m_bridge_state, z2m_messages
from gateway.clock import Clock
from gateway.errors import reraise_swallowed_cancellation
from gateway.model import Device, DeviceKind, Reading

Z2M_KINDS = frozenset(
    {
        DeviceKind.DOOR,
        DeviceKind.MOTION,
        DeviceKind.BUTTON,
        DeviceKind.SMOKE,
        DeviceKind.GAS,
        DeviceKind.WATER_LEAK,
    }
)


def transport_of(device: Device) -> str:
    if device.kind in Z2M_KINDS:
        return "zigbee2mqtt"
    return "mqtt"


def messages_for(
    reading: Reading,
    device: Device,
    z2m_base: str = "zigbee2mqtt",
    bed_topic: str = "eldergate/bed",
    device_topic: str = "eldergate/devices",
) -> list[tuple[str, bytes]]:
    """The (topic, payload) pairs a real device (or bridge) would publish for this reading."""
    values = dict(reading.values)
    if device.kind in Z2M_KINDS:
        return z2m_messages(z2m_base, device.id, values)
    if device.kind is DeviceKind.BED and "occupied" in values:
        return [(f"{bed_topic}/{device.id}", bed_profile_payload(values))]
    return [(f"{device_topic}/{device.id}", json.dumps(values).encode())]


class ReadingOverride(Protocol):
    """Another way to deliver some devices' readings (the BLE bridge for wristbands)."""

    def handles(self, device: str) -> bool: ...

    async def send(self, reading: Reading) -> None: ...


class MqttDevices:
    def __init__(
        self,
        client: aiomqtt.Client,
        devices: Iterable[Device],
        clock: Clock,
        override: ReadingOverride | None = None,
    ) -> None:
        self.client = client
        self.devices = {d.id: d for d in devices}
        self.clock = clock
        self.override = override
        self.published = 0

    async def play(self, readings: Iterable[Reading]) -> None:
        if any(transport_of(d) == "zigbee2mqtt" for d in self.devices.values()):
            # a running Zigbee2MQTT keeps its bridge state retained (the gateway reports a
            # subscription that finds none)
            topic, payload = z2m_bridge_state("zigbee2mqtt", True)
            await self.client.publish(topic, payload, qos=1, retain=True)
        for reading in readings:
            # a BLE band's send can swallow the cancellation that ends the simulation
            reraise_swallowed_cancellation()
            wait = reading.t - self.clock.wall()
            if wait > 0:
                await self.clock.sleep(wait)
            if self.override is not None and self.override.handles(reading.device):
                await self.override.send(reading)
                continue
            for topic, payload in messages_for(reading, self.devices[reading.device]):
                await self.client.publish(topic, payload, qos=1)
                self.published += 1
