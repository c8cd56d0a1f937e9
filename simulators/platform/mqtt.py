"""The reference platform's MQTT side: a persistent-session subscriber to every gateway's uplink
(messages published while the platform was down are kept for it by the broker), and the
publisher of staff commands on each gateway's command topic."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from gateway.backoff import Backoff
from gateway.errors import UplinkError
from gateway.mqtt import describe_mqtt_error, make_client
from gateway.settings import BrokerSettings
from simulators.platform.app import Platform

log = logging.getLogger(__name__)


class PlatformMqttService:
    def __init__(
        self,
        platform: Platform,
        broker: BrokerSettings,
        client_id: str = "eldergate-platform",
        session_expiry_s: int = 7 * 24 * 3600,
    ) -> None:
        self.platform = platform
        self.broker = broker
        self.client_id = client_id
        self.session_expiry_s = session_expiry_s
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        platform.default_sender = self._send

    async def _send(self, gateway: str, payload: bytes) -> None:
        if self._client is None:
            raise LookupError("platform is not connected to the broker")
        topic = f"{self.platform.prefix}/{gateway}/command"
        await self._client.publish(topic, payload, qos=1)

    async def run(self) -> None:
        backoff = Backoff(initial_s=0.5, maximum_s=30.0)
        last_error = None
        while True:
            try:
                await self._serve()
            except (aiomqtt.MqttError, OSError) as exc:
                err: UplinkError = describe_mqtt_error(exc, "platform broker")
                self.connected.clear()
                self._client = None
                if err.reason != last_error:
                    log.error("%s; retrying", err.reason)
                last_error = err.reason
                await asyncio.sleep(backoff.next_delay())

    async def _serve(self) -> None:
        client = make_client(self.broker, self.client_id, session_expiry_s=self.session_expiry_s)
        async with client:
            p = self.platform.prefix
            for topic in (f"{p}/+/alert/#", f"{p}/+/state", f"{p}/+/health", f"{p}/+/summary/#"):
                await client.subscribe(topic, qos=1)
            self._client = client
            self.connected.set()
            log.info("platform subscribed on %s:%s", self.broker.host, self.broker.port)
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, str):
                    payload = payload.encode()
                if isinstance(payload, (bytes, bytearray)):
                    self.platform.receive(str(message.topic), bytes(payload))
