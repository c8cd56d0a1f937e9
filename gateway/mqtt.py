"""aiomqtt client construction and error translation, shared by the uplink (platform broker),
the local broker driver and the reference platform: TLS, passwords, persistent sessions."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.errors import UplinkError
from gateway.settings import BrokerSettings, read_password

# MQTT 5 CONNACK reason codes and 3.1.1 return codes that retrying cannot fix without a person.
_AUTH_CODES = {
    4: "bad username or password",
    5: "not authorised",
    134: "bad username or password",
    135: "not authorised",
    138: "client banned",
}


def tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    if not settings.ca_file:
        return None
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.cert_file and settings.key_file:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    return context


def make_client(
    settings: BrokerSettings,
    client_id: str,
    *,
    will: aiomqtt.Will | None = None,
    session_expiry_s: int = 0,
) -> aiomqtt.Client:
    """An MQTT 5 client; with ``session_expiry_s`` > 0 the session (subscriptions and queued
    QoS 1 messages) survives disconnects: clean start off and a non-zero expiry interval."""
    properties = None
    kwargs: dict[str, Any] = {}
    if session_expiry_s > 0:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = session_expiry_s
        kwargs["clean_start"] = False
    return aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=read_password(settings.password_file),
        identifier=settings.client_id or client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        keepalive=settings.keepalive_s,
        tls_context=tls_context(settings),
        properties=properties,
        timeout=10,
        **kwargs,
    )


@dataclass(frozen=True)
class Suback:
    """What the broker answered to the subscription of one topic filter."""

    qos: int | None  # the QoS granted (may be lower than asked), None if refused
    refused: str | None = None  # why not, e.g. "Not authorized (0x87)"


async def subscribe(client: aiomqtt.Client, topic_filter: str, qos: int = 1) -> Suback:
    """Subscribe and read the SUBACK, which aiomqtt hands back without looking at it: a broker
    whose ACL does not let us read ``topic_filter`` answers a failure (MQTT 5: a reason code
    >= 0x80, e.g. 0x87 "Not authorized"; 3.1.1: 0x80), and nothing will ever arrive on it.
    (mosquitto 2.0's ``acl_file`` grants such a subscription and delivers nothing; its
    dynamic-security plugin, and most brokers' ACLs, refuse it.) aiomqtt's errors pass."""
    codes = await client.subscribe(topic_filter, qos=qos)
    if not codes:
        return Suback(None, "no answer for the topic filter in the SUBACK")
    return suback_entry(codes[0])


def suback_entry(code: int | ReasonCode) -> Suback:
    """One SUBACK entry: paho gives MQTT 5 reason codes, and 3.1.1 return codes as either
    reason codes or plain integers (0, 1, 2 granted QoS; 0x80 failure)."""
    value = code.value if isinstance(code, ReasonCode) else int(code)
    if value < 0x80:
        return Suback(value)
    name = str(code) if isinstance(code, ReasonCode) else "Failure"
    return Suback(None, f"{name} ({value:#04x})")


def describe_mqtt_error(exc: BaseException, where: str) -> UplinkError:
    """Turn whatever connecting or publishing raised into one reason a person can act on."""
    cause = exc.__cause__ or exc.__context__
    for err in (exc, cause):
        if isinstance(err, ssl.SSLCertVerificationError):
            return UplinkError(
                f"{where}: TLS certificate not trusted ({err.verify_message}); check the CA file"
            )
        if isinstance(err, ssl.SSLError):
            return UplinkError(f"{where}: TLS handshake failed ({err.reason})")
        if isinstance(err, ConnectionRefusedError):
            return UplinkError(f"{where}: connection refused (broker not running or wrong port)")
        if isinstance(err, OSError) and not isinstance(err, ssl.SSLError) and err.strerror:
            return UplinkError(f"{where}: network error ({err.strerror})")
    if isinstance(exc, aiomqtt.MqttCodeError):
        rc = getattr(exc.rc, "value", exc.rc)
        if isinstance(rc, int) and rc in _AUTH_CODES:
            return UplinkError(
                f"{where}: broker refused the login: {_AUTH_CODES[rc]}; check the "
                "username and password file",
                retryable=True,
            )
    return UplinkError(f"{where}: {exc}")


@contextmanager
def translated_errors(where: str) -> Iterator[None]:
    try:
        yield
    except (aiomqtt.MqttError, OSError) as exc:
        raise describe_mqtt_error(exc, where) from exc
