"""Build a :class:`Runtime` from settings: which drivers, which platform link. The one place
that turns configuration into instances (tests build their own instances directly)."""

from __future__ import annotations

from alerts.forwarders.base import PlatformLink
from drivers.base import Driver
from gateway.clock import Clock
from gateway.model import DeviceKind
from gateway.runtime import Runtime
from gateway.settings import Settings, read_password


def build_runtime(settings: Settings, clock: Clock) -> Runtime:
    from alerts.forwarders.mqtt import MqttPlatformLink
    from alerts.protocol import Topics

    link: PlatformLink | None = None
    if settings.platform is not None and settings.platform.enabled:
        topics = Topics(settings.platform.topic_prefix, settings.gateway.id)
        link = MqttPlatformLink(settings.platform, topics)
    elif settings.webhook is not None:
        from alerts.forwarders.webhook import WebhookPlatformLink, WebhookSettings

        hook = settings.webhook
        link = WebhookPlatformLink(
            WebhookSettings(
                hook.url,
                hook.ca_file,
                hook.cert_file,
                hook.key_file,
                read_password(hook.token_file),
                poll_s=hook.poll_s,
            ),
            clock,
        )
    return Runtime(settings, clock, link, build_drivers(settings, clock))


def build_drivers(settings: Settings, clock: Clock) -> list[Driver]:
    devices = settings.devices_model()
    drivers: list[Driver] = []
    if settings.local_broker is not None:
        drivers.append(_local_broker_driver(settings, clock))
    for device in devices:
        if device.options.get("transport") == "emfit":
            from drivers.emfit import EmfitPoller

            drivers.append(EmfitPoller(device.id, str(device.options["address"]), clock))
    ble_devices = [d for d in devices if d.options.get("transport") == "ble"]
    if ble_devices:
        from drivers.ble import bleak_backend
        from drivers.ble.driver import BleDriver, specs_from_devices

        backend = bleak_backend(str(settings.ble.get("adapter", "hci0")))
        drivers.append(BleDriver(backend, clock, specs_from_devices(ble_devices)))
    return drivers


def _local_broker_driver(settings: Settings, clock: Clock) -> Driver:
    from drivers.decoders.bed import BedProfileCodec
    from drivers.local_mqtt import DeviceJsonCodec, LocalMqttDriver, TopicCodec
    from drivers.zigbee2mqtt import codec_from_devices

    local = settings.local_broker
    assert local is not None
    devices = settings.devices_model()
    by_transport = {d.id: d.options.get("transport", "mqtt") for d in devices}
    codecs: list[TopicCodec] = [
        DeviceJsonCodec(local.device_topic, {d for d, tr in by_transport.items() if tr == "mqtt"})
    ]
    if local.zigbee2mqtt_base_topic:
        codecs.append(codec_from_devices(local.zigbee2mqtt_base_topic, devices))
    beds = {
        d.id: d.id for d in devices if d.kind is DeviceKind.BED and by_transport[d.id] == "mqtt"
    }
    if beds:
        codecs.append(BedProfileCodec(local.bed_topic, beds))
    return LocalMqttDriver(local, codecs, clock, client_id=local_client_id(settings))


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _broker_address(host: str, port: int) -> tuple[str, int]:
    host = host.strip().lower().rstrip(".")
    return ("loopback" if host in _LOOPBACK else host, port)


def local_client_id(settings: Settings) -> str:
    """The home broker connection's MQTT client id (``local_broker.client_id`` overrides it).

    The uplink to the platform is ``eldergate-<gateway id>``, and so has the home broker's
    connection always been (its persistent session, which keeps a press made while the gateway
    restarts, goes by that id: it stays). When both are the same broker (the platform reached
    through a bridge on the home's mosquitto, or a one-broker development setup), one id for
    two connections made the broker close each one as the other connected, in turn, for as
    long as the gateway ran: the home connection then takes ``eldergate-<gateway id>-home``."""
    own = f"eldergate-{settings.gateway.id}"
    local, platform = settings.local_broker, settings.platform
    if (
        local is not None
        and platform is not None
        and platform.enabled
        and _broker_address(local.host, local.port) == _broker_address(platform.host, platform.port)
    ):
        return f"{own}-home"
    return own
