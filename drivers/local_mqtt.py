"""The home's own mosquitto: one connection (this driver owns it), many topic codecs.

Each codec claims topic filters and turns a message into readings (Zigbee2MQTT, the bed
profile, and eldergate's own JSON device topic below). A message no codec can read is counted
and logged with its reason, never fatal; nothing already accepted is lost.

The JSON device topic (docs/protocol.md): ``<device_topic>/<device id>`` with a JSON object of
reading fields, e.g. ``{"action": "sos"}`` or ``{"open": true, "t": 1700000000.0}``; ``t`` is
optional (the gateway stamps the time of arrival; a batch of samples, ``acc`` with ``fs``,
the time of its first sample, as the BLE driver does).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Collection
from typing import Any, Protocol

import aiomqtt

from drivers.base import ReadingSink, StopFlag, first_sample_time
from drivers.decoders import DecodeError
from gateway.backoff import Backoff
from gateway.clock import Clock
from gateway.errors import EldergateError, crash_site
from gateway.log_limits import RepeatedLines
from gateway.model import Reading
from gateway.mqtt import make_client, subscribe, translated_errors
from gateway.recording import RecordError, TimeFormat, parse_reading
from gateway.settings import LocalBrokerSettings

log = logging.getLogger(__name__)
MAX_PAYLOAD_BYTES = 256 * 1024
SESSION_EXPIRY_S = 24 * 3600
# A subscription the broker refused is asked for again on the same connection, 30 s after,
# doubling up to every 5 min: an ACL fixed later is picked up without a restart (mosquitto's
# dynamic security disconnects the clients of a role it changes, and the reconnect subscribes
# anew; an acl_file reloaded, or another broker, does not).
RESUBSCRIBE_INITIAL_S = 30.0
RESUBSCRIBE_MAX_S = 300.0


def loggable_topic(topic: str) -> str:
    """A topic for the log: its first level, and the rest as a short hash. The rest is a device
    name an installer chose (a Zigbee2MQTT friendly name may well be "Mary's pendant"), and no
    names go into logs; the installer can match the hash (sha256 of the rest, 8 hex digits)."""
    base, _, rest = topic.partition("/")
    if not rest:
        return base
    return f"{base}/~{hashlib.sha256(rest.encode()).hexdigest()[:8]}"


class TopicCodec(Protocol):
    name: str

    def subscriptions(self) -> list[str]: ...

    def decode(
        self, topic: str, payload: bytes, t: float, *, retained: bool = False
    ) -> list[Reading]:
        """``retained``: the broker's kept copy of an old message (the driver passes on only
        its ``online: false``); it must not change what the codec takes for new."""
        ...

    def problems(self) -> dict[str, tuple[str, str]]:
        """What this codec's devices cannot report because of (see ``drivers.base``)."""
        ...

    def subscribed(self) -> None:
        """Called each time the driver has (re)subscribed to this codec's filters and the
        broker granted every one: from then on, it has delivered whatever it keeps retained
        for them. (One it refused is the driver's problem, ``subscription_refused``.)"""
        ...


class DeviceJsonCodec:
    name = "device-json"

    def __init__(self, device_topic: str, devices: Collection[str]) -> None:
        self.prefix = device_topic.rstrip("/")
        self.devices = devices
        self.counters = {"t_replaced": 0}

    def subscriptions(self) -> list[str]:
        return [f"{self.prefix}/+"]

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}

    def subscribed(self) -> None:
        pass

    def decode(
        self, topic: str, payload: bytes, t: float, *, retained: bool = False
    ) -> list[Reading]:
        device = topic[len(self.prefix) + 1 :]
        if device not in self.devices:
            raise DecodeError("unknown device")  # its name stays out of the log
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError):  # also an integer over 4,300 digits
            raise DecodeError("payload is not JSON") from None
        if not isinstance(body, dict):
            raise DecodeError(f"expected a JSON object, got {type(body).__name__}")
        record: dict[str, Any] = {**body, "device": device, "t": first_sample_time(t, body)}
        if "t" in body:
            try:
                record["t"] = TimeFormat().parse(body["t"])
            except RecordError as exc:
                # a device clock we cannot believe: the reading (a press!) still counts,
                # dated on arrival
                self.counters["t_replaced"] += 1
                log.debug("device %s: %s; dated on arrival", device, exc)
        try:
            return [parse_reading(record, TimeFormat())]
        except RecordError as exc:
            raise DecodeError(str(exc)) from None


class LocalMqttDriver(StopFlag):
    name = "local_mqtt"

    def __init__(
        self,
        settings: LocalBrokerSettings,
        codecs: list[TopicCodec],
        clock: Clock,
        client_id: str = "eldergate-gateway",
    ) -> None:
        self.settings = settings
        self.codecs = codecs
        self.clock = clock
        self.client_id = client_id
        self.subscribed = asyncio.Event()
        self.down_reason: str | None = None  # why the broker could not be reached, until it is
        # topic filter -> (codec, why the broker refused it), until it grants it; kept through
        # an outage (the next connection asks again), as the codecs keep what they last heard
        self.refused: dict[str, tuple[TopicCodec, str]] = {}
        self.granted_below_qos1: set[str] = set()  # topic filters granted at QoS 0
        self.counters: dict[str, int] = {
            "messages": 0,
            "readings": 0,
            "rejected": 0,
            "retained_ignored": 0,
            "subscriptions_refused": 0,
            "resubscribe_errors": 0,
        }
        self.rejected_by_reason: dict[str, int] = {}
        # a device that keeps sending what cannot be taken (a smart plug paired to Zigbee2MQTT
        # but not configured, reporting every few seconds): once an hour per topic and reason
        self._reject_lines = RepeatedLines(clock)
        self._subscribe_lines = RepeatedLines(clock)  # a refusal: once an hour per filter

    def _codec_for(self, topic: aiomqtt.Topic) -> TopicCodec | None:
        for codec in self.codecs:
            if any(topic.matches(f) for f in codec.subscriptions()):
                return codec
        return None

    def _reject(self, topic: str, reason: str) -> None:
        self.counters["rejected"] += 1
        key = reason.split(":")[0][:60]
        self.rejected_by_reason[key] = self.rejected_by_reason.get(key, 0) + 1
        shown = loggable_topic(topic)
        more = self._reject_lines.due((shown, reason[:120]))
        if more is not None:
            log.warning("local broker: message on %s rejected: %s%s", shown, reason, more)

    async def run(self, sink: ReadingSink) -> None:
        # A persistent session: presses published while the gateway restarts are kept by the
        # broker and delivered when it is back (QoS 0 ones, Zigbee2MQTT's default, only with
        # queue_qos0_messages, as config/mosquitto-local.conf sets).
        client = make_client(self.settings, self.client_id, session_expiry_s=SESSION_EXPIRY_S)
        where = f"local broker {self.settings.host}:{self.settings.port}"
        try:
            with translated_errors(where):
                async with client:
                    await self._subscribe(client, {c: c.subscriptions() for c in self.codecs})
                    self._stop_if_asked()
                    self.down_reason = None
                    self.subscribed.set()
                    log.info("local broker connected: %d codecs", len(self.codecs))
                    retry = asyncio.create_task(
                        self._resubscribe_refused(client), name="eldergate[local_mqtt].resubscribe"
                    )
                    try:
                        async for message in client.messages:
                            await self._handle(message, sink)
                            self._stop_if_asked()
                    finally:
                        retry.cancel()
        except EldergateError as exc:
            self.down_reason = str(exc)
            self.subscribed.clear()
            raise

    async def _subscribe(
        self, client: aiomqtt.Client, filters: dict[TopicCodec, list[str]]
    ) -> None:
        """Subscribe to each codec's ``filters`` and read what the broker granted. A codec is
        told it is subscribed (its retained messages are in) once none of its filters is
        refused; a refused one is a problem of the driver (its devices are not heard)."""
        for codec, topic_filters in filters.items():
            for topic_filter in topic_filters:
                suback = await subscribe(client, topic_filter, qos=1)
                shown = loggable_topic(topic_filter)
                if suback.refused is not None:
                    self.refused[topic_filter] = (codec, suback.refused)
                    self.counters["subscriptions_refused"] += 1
                    more = self._subscribe_lines.due((topic_filter, suback.refused))
                    if more is not None:
                        log.error(
                            "local broker refused the subscription to %s (%s): %s; its "
                            "devices are not heard (check the broker's ACL for the gateway's "
                            "user); asked again every %.0f s at most%s",
                            shown,
                            codec.name,
                            suback.refused,
                            RESUBSCRIBE_MAX_S,
                            more,
                        )
                    continue
                if self.refused.pop(topic_filter, None) is not None:
                    log.warning("local broker granted the subscription to %s now", shown)
                if suback.qos != 0:
                    self.granted_below_qos1.discard(topic_filter)
                elif topic_filter not in self.granted_below_qos1:
                    # not a refusal: messages come, but those sent while the gateway is away
                    # are not kept for it (unless the broker queues QoS 0 for sessions)
                    self.granted_below_qos1.add(topic_filter)
                    log.warning("local broker granted %s at QoS 0 only", shown)
            if not any(c is codec for c, _ in self.refused.values()):
                codec.subscribed()

    async def _resubscribe_refused(self, client: aiomqtt.Client) -> None:
        """Ask again, on this connection, for the subscriptions the broker refused."""
        backoff = Backoff(RESUBSCRIBE_INITIAL_S, RESUBSCRIBE_MAX_S)
        while self.refused:
            await self.clock.sleep(backoff.next_delay())
            self._stop_if_asked()
            filters: dict[TopicCodec, list[str]] = {}
            for topic_filter, (codec, _) in list(self.refused.items()):
                filters.setdefault(codec, []).append(topic_filter)
            try:
                await self._subscribe(client, filters)
            except aiomqtt.MqttError as exc:  # a lost connection is the message loop's
                log.debug("local broker: subscribing again failed: %s", exc)
            except Exception as exc:  # a bug must not end the retries for good
                self.counters["resubscribe_errors"] += 1
                log.error(
                    "local broker: asking again for refused subscriptions failed: %s; asked "
                    "again later",
                    crash_site(exc),
                )
            self._stop_if_asked()  # the SUBACK's wait_for may have swallowed the cancel

    async def _handle(self, message: aiomqtt.Message, sink: ReadingSink) -> None:
        self.counters["messages"] += 1
        topic = str(message.topic)
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode()
        elif payload is None:
            payload = b""
        if not isinstance(payload, (bytes, bytearray)):
            payload = str(payload).encode()
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._reject(topic, f"payload too large: {len(payload)} bytes")
            return
        codec = self._codec_for(message.topic)
        if codec is None:
            self._reject(topic, "no codec for this topic")
            return
        try:
            readings = codec.decode(
                topic, bytes(payload), self.clock.wall(), retained=message.retain
            )
        except DecodeError as exc:
            self._reject(topic, f"{codec.name}: {exc}")
            return
        except Exception as exc:  # a decoder's bug: restarting the driver would drop the
            # messages already taken from the broker (and a retained one would loop it)
            self._reject(topic, f"{codec.name}: could not decode ({type(exc).__name__})")
            log.debug("decoder %s failed: %s", codec.name, crash_site(exc))
            return
        if message.retain:
            readings = self._from_retained(readings)
        for reading in readings:
            self.counters["readings"] += 1
            await sink(reading)

    def _from_retained(self, readings: list[Reading]) -> list[Reading]:
        """A retained message is the broker's copy of an old one, delivered again at every
        (re)subscription: a press kept retained (Zigbee2MQTT's ``retain: true``) would be a
        new SOS after every broker blip, and a retained state or ``online`` a sign of life that
        clears a dead device's ``device_offline``. Only what it says against a device is kept:
        ``online: false`` (the codecs have read the bridge state from it already)."""
        kept = [r for r in readings if r.values.get("online") is False]
        if len(kept) < len(readings):
            self.counters["retained_ignored"] += len(readings) - len(kept)
        return [Reading(r.t, r.device, {"online": False}) for r in kept]

    def diagnostics(self) -> dict[str, Any]:
        return {
            **self.counters,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "codecs": {c.name: dict(getattr(c, "counters", {})) for c in self.codecs},
            "down_reason": self.down_reason,
            "subscriptions_refused_now": {
                loggable_topic(f): reason for f, (_, reason) in self.refused.items()
            },
            "granted_qos0": sorted(loggable_topic(f) for f in self.granted_below_qos1),
            "problems": self.problems(),
        }

    def problems(self) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        if self.down_reason is not None:
            found["local_broker"] = ("local_broker", self.down_reason)
        for codec in self.codecs:
            # what the codecs last heard holds, with the broker down too: a bridge offline
            # before the outage is not back because the broker went away (its alert was
            # cleared, then raised again after the outage with a gap between)
            found.update(codec.problems())
        for codec in self.codecs:
            refused = [(f, reason) for f, (c, reason) in self.refused.items() if c is codec]
            if refused:
                shown = ", ".join(f"{loggable_topic(f)}: {reason}" for f, reason in refused)
                found[f"subscription_refused:{codec.name}"] = (
                    "subscription_refused",
                    f"the local broker refused the subscription to {shown} ({codec.name})",
                )
        return found
