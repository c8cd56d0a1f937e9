"""Build a :class:`Runtime` from settings: which drivers, which platform link. The one place
that turns configuration into instances (tests build their own instances directly)."""

from __future__ import annotations

from gateway.clock import Clock
from gateway.runtime import Runtime
from gateway.settings import Settings


def build_runtime(settings: Settings, clock: Clock) -> Runtime:
    from alerts.forwarders.mqtt import MqttPlatformLink
    from alerts.protocol import Topics

    link = None
    if settings.platform is not None and settings.platform.enabled:
        topics = Topics(settings.platform.topic_prefix, settings.gateway.id)
        link = MqttPlatformLink(settings.platform, topics)
    return Runtime(settings, clock, link, build_drivers(settings, clock))


def build_drivers(settings: Settings, clock: Clock) -> list:  # type: ignore[type-arg]
    from drivers.local_mqtt import DeviceJsonCodec, LocalMqttDriver, TopicCodec

    drivers = []
    if settings.local_broker is not None:
        local = settings.local_broker
        codecs: list[TopicCodec] = [
            DeviceJsonCodec(local.device_topic, {d.id for d in settings.devices})
        ]
        drivers.append(
            LocalMqttDriver(local, codecs, clock, client_id=f"eldergate-{settings.gateway.id}")
        )
    return drivers
