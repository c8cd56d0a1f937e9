"""Zigbee2MQTT as a topic codec for the local-broker driver (:mod:`drivers.local_mqtt`).

The driver owns the connection to the home's mosquitto; this codec says what to subscribe to and
turns each message into readings for the configured devices:

- ``<base>/<friendly name>``: state → readings (see :mod:`drivers.decoders.zigbee2mqtt`).
- ``<base>/<friendly name>/action``: the same press again. Collapsed with the state message: a
  press seen on either topic is kept once; the copy arriving within ``action_window_s`` (same
  device, same action) is dropped.
- ``<base>/<friendly name>/availability``: ``online: true|false``.
- ``<base>/bridge/state``: sets :attr:`Zigbee2MqttCodec.bridge_online`; while it is offline
  :meth:`Zigbee2MqttCodec.problems` reports it, and the gateway raises ``gateway_degraded``
  once it lasts (every Zigbee device, buttons included, is deaf meanwhile). The bridge is not
  a device of the home: no reading. Zigbee2MQTT keeps this state retained, so the broker
  delivers it with every subscription: with Zigbee devices configured, a subscription that
  brings no bridge state at all is a problem too (Zigbee2MQTT not running, another
  ``base_topic``, or a broker ACL that does not let the gateway read ``<base>/#`` — mosquitto
  grants such a subscription and then delivers nothing).
- other ``<base>/bridge/...`` topics and ``/set``/``/get`` commands: ignored (``[]``).
- A state that carries exactly the ``last_seen`` (when Zigbee2MQTT enables it) of the device's
  last state is Zigbee2MQTT speaking for the device, not the device speaking: its cache re-sent
  at a restart of Zigbee2MQTT, or a state it computes itself (``occupancy: false`` after its
  timeout). Ignored (``republished_ignored``), so a restart of Zigbee2MQTT neither clears a
  dead sensor's ``device_offline`` nor counts as a sign of life. Equality, not age: clocks are
  not compared, so a Pi that boots behind (no RTC), a Zigbee2MQTT host whose clock is off, or
  NTP stepping either loses no state. A press is never cached: a message with an ``action``
  always counts (its ``last_seen`` is remembered all the same: the cached state Zigbee2MQTT
  re-sends after it carries it). Not told apart: the first state of each device after the
  gateway itself started (a power cut restarts both).

Unknown friendly names raise ``DecodeError("unknown device")`` so that the driver counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.decoders import DecodeError
from drivers.decoders.advertisements import dicts_to_reading
from drivers.decoders.zigbee2mqtt import (
    action_readings,
    last_seen_of,
    parse_online,
    parse_state_payload,
    split_topic,
    state_readings,
)
from gateway.model import Reading

DEFAULT_BASE_TOPIC = "zigbee2mqtt"


class Zigbee2MqttCodec:
    name = "zigbee2mqtt"

    def __init__(
        self,
        base_topic: str = DEFAULT_BASE_TOPIC,
        devices: Mapping[str, str] | None = None,
        *,
        action_window_s: float = 2.0,
    ) -> None:
        """``devices`` maps friendly name → configured device id. A multi-button device's
        second button reaches the id ``<device id>:2`` (configure it as its own device)."""
        self.base_topic = base_topic.rstrip("/")
        self.devices = dict(devices or {})
        self.action_window_s = action_window_s
        self.bridge_online: bool | None = None  # None: never heard
        self._subscribed = False
        self._recent_actions: dict[tuple[str, str], float] = {}
        self._last_seen: dict[str, float] = {}  # device id -> last_seen of its last state
        self.counters: dict[str, int] = {
            "messages": 0,
            "readings": 0,
            "duplicate_actions": 0,
            "ignored": 0,
            "republished_ignored": 0,
        }

    def subscriptions(self) -> list[str]:
        return [f"{self.base_topic}/#"]

    def _device_id(self, friendly_name: str) -> str:
        device = self.devices.get(friendly_name)
        if device is None:
            raise DecodeError("unknown device")
        return device

    def decode(self, topic: str, payload: bytes, t: float, *, retained: bool = False,
               ) -> list[Reading]:
        self.counters["messages"] += 1
        name, kind = split_topic(topic, self.base_topic)
        if kind == "bridge_state":
            self.bridge_online = parse_online(payload)
            return []
        if kind in ("bridge", "ignored"):
            self.counters["ignored"] += 1
            return []
        device = self._device_id(name)
        fields: list[dict[str, Any]]
        if kind == "availability":
            fields = [{"device": device, "online": parse_online(payload)}]
        elif kind == "action":
            fields = action_readings(device, payload)
        else:
            state = parse_state_payload(payload)
            if self._republished(device, state):
                self.counters["republished_ignored"] += 1
                return []
            fields = state_readings(device, state)
        if not retained:
            # a retained copy is no press (the driver drops it) and, remembered, it would
            # collapse a real press made just after the (re)subscription that brought it
            fields = self._collapse_actions(fields, t)
        readings = [dicts_to_reading(f, t) for f in fields]
        self.counters["readings"] += len(readings)
        return readings

    def _republished(self, device: str, state: Mapping[str, Any]) -> bool:
        seen = last_seen_of(state)
        if seen is None:
            return False
        again = self._last_seen.get(device) == seen
        # a press's last_seen too: Zigbee2MQTT caches the state without the action but with
        # that last_seen, and re-sends it at its restart
        self._last_seen[device] = seen
        return again and not (state.get("action") or state.get("click"))

    def _collapse_actions(self, fields: list[dict[str, Any]], t: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for reading in fields:
            action = reading.get("action")
            if isinstance(action, str):
                key = (reading["device"], action)
                last = self._recent_actions.get(key)
                if last is not None and abs(t - last) <= self.action_window_s:
                    self.counters["duplicate_actions"] += 1
                    reading = {k: v for k, v in reading.items() if k != "action"}
                    if len(reading) == 1:  # only "device" left
                        continue
                else:
                    self._remember(key, t)
            out.append(reading)
        return out

    def _remember(self, key: tuple[str, str], t: float) -> None:
        if len(self._recent_actions) > 256:
            horizon = t - self.action_window_s
            self._recent_actions = {
                k: v for k, v in self._recent_actions.items() if v >= horizon
            }
        self._recent_actions[key] = t

    def subscribed(self) -> None:
        self._subscribed = True

    def problems(self) -> dict[str, tuple[str, str]]:
        if self.bridge_online is False:
            reason = f"Zigbee2MQTT says {self.base_topic}/bridge/state is offline"
        elif self.bridge_online is None and self._subscribed and self.devices:
            reason = (
                f"nothing heard on {self.base_topic}/bridge/state since subscribing: Zigbee2MQTT "
                f"not running, another base_topic, or the broker's ACL hides {self.base_topic}/#"
            )
        else:
            return {}
        return {"zigbee2mqtt_bridge": ("zigbee2mqtt_bridge", reason)}

    def diagnostics(self) -> dict[str, Any]:
        return {"base_topic": self.base_topic, "bridge_online": self.bridge_online,
                "devices": len(self.devices), **self.counters}


def codec_from_devices(base_topic: str, devices: Any) -> Zigbee2MqttCodec:
    """Build the codec from configured :class:`gateway.model.Device` objects: those whose
    ``options["transport"]`` is ``zigbee2mqtt``, named by ``options["friendly_name"]``
    (default: the device id)."""
    mapping: dict[str, str] = {}
    for device in devices:
        options = getattr(device, "options", {}) or {}
        if options.get("transport") == "zigbee2mqtt":
            mapping[str(options.get("friendly_name") or device.id)] = device.id
    return Zigbee2MqttCodec(base_topic, mapping)


__all__ = ["DEFAULT_BASE_TOPIC", "Zigbee2MqttCodec", "codec_from_devices"]
