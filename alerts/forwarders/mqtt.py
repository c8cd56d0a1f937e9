"""The uplink to the community platform over MQTT: TLS, username and password, QoS 1, an MQTT 5
persistent session (commands sent while we were offline are still delivered), and a retained
last will that marks the gateway offline on the platform when it vanishes."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomqtt

from alerts.protocol import Topics, state_payload
from gateway.errors import UplinkError
from gateway.mqtt import describe_mqtt_error, make_client
from gateway.settings import PlatformSettings


class MqttSession:
    def __init__(self, client: aiomqtt.Client, topics: Topics) -> None:
        self._client = client
        self._topics = topics

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        try:
            # QoS 1: aiomqtt returns only after the broker's PUBACK.
            await self._client.publish(topic, payload, qos=1, retain=retain)
        except aiomqtt.MqttError as exc:
            raise describe_mqtt_error(exc, "platform publish") from exc

    async def commands(self) -> AsyncIterator[bytes]:
        try:
            async for message in self._client.messages:
                payload = message.payload
                if isinstance(payload, (bytes, bytearray)):
                    yield bytes(payload)
                elif isinstance(payload, str):
                    yield payload.encode()
        except aiomqtt.MqttError as exc:
            raise describe_mqtt_error(exc, "platform link") from exc


class MqttPlatformLink:
    name = "mqtt"

    def __init__(self, settings: PlatformSettings, topics: Topics) -> None:
        self.settings = settings
        self.topics = topics

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MqttSession]:
        will = aiomqtt.Will(self.topics.state, state_payload("offline"), qos=1, retain=True)
        where = f"platform broker {self.settings.host}:{self.settings.port}"
        try:
            client = make_client(
                self.settings,
                f"eldergate-{self.topics.gateway}",
                will=will,
                session_expiry_s=self.settings.session_expiry_s,
            )
        except (ssl.SSLError, OSError) as exc:  # an unreadable CA or client key
            raise UplinkError(f"{where}: cannot load the TLS files: {exc}") from exc
        try:
            await client.__aenter__()
        except (aiomqtt.MqttError, OSError) as exc:
            raise describe_mqtt_error(exc, where) from exc
        try:
            try:
                await client.subscribe(self.topics.command, qos=1)
            except aiomqtt.MqttError as exc:
                raise describe_mqtt_error(exc, where) from exc
            yield MqttSession(client, self.topics)
        finally:
            with contextlib.suppress(aiomqtt.MqttError, OSError):  # already gone
                await client.__aexit__(None, None, None)


__all__ = ["MqttPlatformLink", "UplinkError"]
