"""The uplink to the community platform over MQTT: TLS, username and password, QoS 1, an MQTT 5
persistent session (commands sent while we were offline are still delivered), and a retained
last will that marks the gateway offline on the platform when it vanishes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from alerts.protocol import Topics, state_payload
from gateway.errors import PublishRefused, UplinkError
from gateway.mqtt import describe_mqtt_error, make_client, subscribe
from gateway.settings import PlatformSettings

log = logging.getLogger(__name__)


class MqttSession:
    def __init__(self, client: aiomqtt.Client, topics: Topics, where: str) -> None:
        self._client = client
        self._topics = topics
        self._where = where
        self._pubacks = _PubackReasons(client)
        self._qos0_logged = False

    async def subscribe_commands(self) -> str | None:
        """Subscribe to the command topic (QoS 1); why the broker refused, if it did (MQTT 5
        SUBACK reason >= 0x80: its ACL does not let the gateway read the topic)."""
        try:
            suback = await subscribe(self._client, self._topics.command, qos=1)
        except aiomqtt.MqttError as exc:
            raise describe_mqtt_error(exc, self._where) from exc
        if suback.qos == 0 and not self._qos0_logged:
            # not a refusal: commands come, but those sent while the gateway is away may not
            self._qos0_logged = True
            log.warning("platform broker granted the command topic at QoS 0 only")
        return suback.refused

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        try:
            # QoS 1: aiomqtt returns only after the broker's PUBACK.
            await self._client.publish(topic, payload, qos=1, retain=retain)
        except aiomqtt.MqttError as exc:
            raise describe_mqtt_error(exc, "platform publish") from exc
        finally:
            refused = self._pubacks.refusal()
        if refused is not None:
            raise PublishRefused(f"platform broker refused {topic}: {refused}")

    async def commands(self) -> AsyncIterator[bytes]:
        try:
            async for message in self._client.messages:
                if message.retain:
                    # A command left retained comes again with every subscription, at every
                    # reconnect: acted on then, a visit_start would start a visit each time.
                    # It came once, live, without the flag (or queued for our session).
                    log.warning("platform command left retained on %s: ignored", message.topic)
                    continue
                if not message.topic.matches(self._topics.command):
                    # Only the command topic is ours; a session an earlier version shared
                    # with the home broker's connection (one broker for both) still holds the
                    # device topics' subscriptions, and a press is no staff command.
                    log.debug("a message not on the command topic: ignored")  # no device names
                    continue
                payload = message.payload
                if isinstance(payload, (bytes, bytearray)):
                    yield bytes(payload)
                elif isinstance(payload, str):
                    yield payload.encode()
        except aiomqtt.MqttError as exc:
            raise describe_mqtt_error(exc, "platform link") from exc


class _PubackReasons:
    """The reason code of each PUBACK. aiomqtt (2.5) returns from ``publish`` on any PUBACK,
    also on a refusal (MQTT 5: reason >= 0x80, e.g. 0x87 "Not authorized" from an ACL that
    does not cover the topic), which would delete an undelivered alert from the outbox. So the
    paho client under it is asked: its ``publish`` gives the message id (noted for the task
    that sent it; ``publish`` runs in that task before its first await), its ``on_publish``
    the PUBACK's reason code (both on the event loop's thread)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._sent_by: dict[asyncio.Task[Any], int] = {}
        self._refused: dict[int, str] = {}
        paho = client._client
        send, pass_on = paho.publish, cast(Callable[..., None], paho.on_publish)

        def publish(*args: Any, **kwargs: Any) -> mqtt.MQTTMessageInfo:
            info = send(*args, **kwargs)
            task = asyncio.current_task()
            if task is not None:
                self._sent_by[task] = info.mid
            return info

        def on_publish(c: mqtt.Client, userdata: Any, mid: int, code: Any, props: Any) -> None:
            if isinstance(code, ReasonCode) and code.is_failure:
                self._refused[mid] = f"{code} ({code.value:#04x})"
            pass_on(c, userdata, mid, code, props)

        paho.publish = publish  # type: ignore[method-assign]
        paho.on_publish = on_publish

    def refusal(self) -> str | None:
        """Why the broker refused the message the current task just published, if it did."""
        task = asyncio.current_task()
        mid = self._sent_by.pop(task, None) if task is not None else None
        return None if mid is None else self._refused.pop(mid, None)


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
            yield MqttSession(client, self.topics, where)  # the forwarder subscribes
        finally:
            _leave_with_will(client)
            with contextlib.suppress(aiomqtt.MqttError, OSError):  # already gone
                await client.__aexit__(None, None, None)


def _leave_with_will(client: aiomqtt.Client) -> None:
    """Make the session's DISCONNECT ask the broker for the last will (MQTT 5 reason 0x04).
    A plain DISCONNECT deletes the will, and the retained state stayed "online" for a gateway
    that had stopped (systemd's stop, a shutdown of the Pi) for as long as it stayed away;
    after a session torn down on a failure, the reconnect says "online" again."""
    paho = client._client
    leave = paho.disconnect
    with_will = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")

    def disconnect(reasoncode: ReasonCode | None = None, properties: Any = None) -> Any:
        return leave(reasoncode=with_will, properties=properties)

    paho.disconnect = disconnect  # type: ignore[method-assign]


__all__ = ["MqttPlatformLink", "UplinkError"]
