"""Zigbee2MQTT payload rules and the topic codec (no broker: see test_zigbee2mqtt_broker)."""

from __future__ import annotations

import json

import pytest

from drivers.decoders import DecodeError
from drivers.decoders.encoders import z2m_availability, z2m_bridge_state, z2m_messages
from drivers.decoders.zigbee2mqtt import decode_message, last_seen_of, split_action
from drivers.zigbee2mqtt import Zigbee2MqttCodec


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("single", ("press", 1)),
        ("emergency", ("sos", 1)),
        ("hold", ("hold", 1)),
        ("button_2_double", ("double", 2)),
        ("3_single", ("press", 3)),
        ("single_right", ("press", 2)),
        ("double_left", ("double", 1)),
        ("brightness_up", ("brightness_up", 1)),
    ],
)
def test_action_names(raw: str, expected: tuple[str, int]) -> None:
    assert split_action(raw) == expected


@pytest.mark.parametrize("battery", [55, "55", 55.0, "55%"])
def test_battery_number_or_string(battery) -> None:
    [reading] = decode_message("zigbee2mqtt/d", json.dumps({"battery": battery}))
    assert reading["battery"] == 55


@pytest.mark.parametrize("battery", [None, "n/a", True, -5, 250, "nan"])
def test_battery_absent_or_nonsense_is_left_out(battery) -> None:
    readings = decode_message("zigbee2mqtt/d", {"battery": battery, "contact": True})
    assert readings == [{"device": "d", "open": False}]


@pytest.mark.parametrize("action", ["", None, "   "])
def test_empty_action_is_not_a_press(action) -> None:
    readings = decode_message("zigbee2mqtt/b", {"action": action, "battery": 90})
    assert all("action" not in r for r in readings)


def test_second_button_gets_suffix() -> None:
    readings = decode_message("zigbee2mqtt/wall", {"action": "button_2_single", "battery": 80})
    assert readings == [{"device": "wall", "battery": 80}, {"device": "wall:2", "action": "press"}]
    assert decode_message("zigbee2mqtt/wall/action", "2_double") == [
        {"device": "wall:2", "action": "double"}]


def test_alarms_pass_through() -> None:
    [r] = decode_message("zigbee2mqtt/s", {"smoke": True, "gas": False, "tamper": True})
    assert (r["smoke"], r["gas"], r["tamper"]) == (True, False, True)


@pytest.mark.parametrize("payload", ['{"state":"online"}', "online", '"online"', b"online"])
def test_availability_forms(payload) -> None:
    assert decode_message("zigbee2mqtt/Hall door/availability", payload) == [
        {"device": "Hall door", "online": True}]


def test_friendly_names_with_slashes_and_ignored_topics() -> None:
    assert decode_message("zigbee2mqtt/flat/hall door", {"contact": False}) == [
        {"device": "flat/hall door", "open": True}]
    assert decode_message("zigbee2mqtt/d/set", {"state": "ON"}) == []
    assert decode_message("zigbee2mqtt/d/set/state", "ON") == []
    assert decode_message("zigbee2mqtt/bridge/devices", "[]") == []
    assert decode_message("zigbee2mqtt/x", {"linkquality_x": 1}) == []  # nothing we know


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("zigbee2mqtt/d", "not json"),
        ("zigbee2mqtt/d", "[1, 2]"),
        ("zigbee2mqtt/d", b"\xff\xfe"),
        ("zigbee2mqtt/d/availability", "maybe"),
        ("zigbee2mqtt/bridge/state", '{"state": 1}'),
        ("other/d", "{}"),
        ("zigbee2mqtt/", "{}"),
    ],
)
def test_malformed_messages_raise_decode_error(topic, payload) -> None:
    with pytest.raises(DecodeError):
        decode_message(topic, payload)


def _codec() -> Zigbee2MqttCodec:
    return Zigbee2MqttCodec("zigbee2mqtt", {"SOS button": "sos-1", "Front door": "front-door"})


def test_codec_collapses_state_and_action_topic_copies_of_one_press() -> None:
    codec = _codec()
    readings = []
    for i, (topic, payload) in enumerate(
        z2m_messages("zigbee2mqtt", "SOS button", {"action": "sos", "battery": 70})
    ):
        readings += codec.decode(topic, payload, t=100.0 + i * 0.01)
    actions = [r.values["action"] for r in readings if "action" in r.values]
    assert actions == ["sos"]
    assert all(r.device == "sos-1" for r in readings)
    assert codec.counters["duplicate_actions"] == 1
    # The next press, seconds later, is a new press.
    later = codec.decode("zigbee2mqtt/SOS button/action", b"emergency", t=110.0)
    assert [r.values for r in later] == [{"action": "sos"}]


def test_codec_action_topic_first_then_state() -> None:
    codec = _codec()
    first = codec.decode("zigbee2mqtt/SOS button/action", b"single", t=5.0)
    second = codec.decode("zigbee2mqtt/SOS button",
                          json.dumps({"action": "single", "battery": 60}).encode(), t=5.05)
    assert [r.values for r in first] == [{"action": "press"}]
    assert [r.values for r in second] == [{"battery": 60}]  # press kept once, battery kept


def test_codec_unknown_device_is_a_counted_reason() -> None:
    codec = _codec()
    with pytest.raises(DecodeError, match="unknown device"):
        codec.decode("zigbee2mqtt/Neighbour's lamp", b'{"state":"ON"}', t=1.0)


def test_codec_availability_and_bridge_state() -> None:
    codec = _codec()
    topic, payload = z2m_availability("zigbee2mqtt", "Front door", False, legacy=True)
    [r] = codec.decode(topic, payload, t=3.0)
    assert (r.device, r.values, r.t) == ("front-door", {"online": False}, 3.0)
    topic, payload = z2m_bridge_state("zigbee2mqtt", False)
    assert codec.decode(topic, payload, t=4.0) == []  # the bridge is no device of the home
    assert codec.bridge_online is False
    assert codec.problems() != {}
    assert codec.subscriptions() == ["zigbee2mqtt/#"]
    assert codec.diagnostics()["bridge_online"] is False


def test_codec_reports_a_subscription_that_never_brought_the_bridge_state() -> None:
    codec = _codec()
    assert codec.problems() == {}  # not subscribed yet: the broker driver reports that
    codec.subscribed()
    [(cause, reason)] = codec.problems().values()
    assert cause == "zigbee2mqtt_bridge" and "nothing heard" in reason
    topic, payload = z2m_bridge_state("zigbee2mqtt", True)
    codec.decode(topic, payload, t=1.0)
    assert codec.problems() == {}
    nothing_configured = Zigbee2MqttCodec("zigbee2mqtt", {})
    nothing_configured.subscribed()
    assert nothing_configured.problems() == {}  # no Zigbee device to be deaf to


def _state(codec: Zigbee2MqttCodec, name: str, t: float, last_seen: object, **fields: object):
    body = json.dumps({**fields, "last_seen": last_seen})
    return codec.decode(f"zigbee2mqtt/{name}", body.encode(), t=t)


def test_a_state_zigbee2mqtt_resends_from_its_cache_is_not_the_device_speaking() -> None:
    """At its start Zigbee2MQTT publishes every device's cached state, which carries the
    ``last_seen`` of the device's last message: a dead door contact's cached state cleared its
    ``device_offline`` and reset its silence timer at every restart of Zigbee2MQTT."""
    codec = _codec()
    t = 1_700_000_000.0
    iso = "2023-11-14T22:13:20.000Z"  # t, as Zigbee2MQTT's ISO_8601 writes it
    assert _state(codec, "Front door", t + 0.3, iso, contact=True, battery=80)
    # a day later Zigbee2MQTT restarts: the door, dead since, is re-sent from the cache
    assert _state(codec, "Front door", t + 86_400, iso, contact=True, battery=80) == []
    assert codec.counters["republished_ignored"] == 1
    # a press is never cached, however its last_seen reads
    [sos] = _state(codec, "SOS button", t + 86_401, iso, action="emergency")
    assert sos.values["action"] == "sos"
    # the door speaking again, in Zigbee2MQTT's epoch form (milliseconds)
    [door] = _state(codec, "Front door", t + 86_500, (t + 86_500) * 1000, contact=False)
    assert door.values["open"] is True


def test_states_after_a_clock_step_or_on_a_clock_behind_are_the_devices_speaking() -> None:
    """Clocks are not compared: the Pi has no RTC and boots behind, NTP steps it, and
    Zigbee2MQTT may run on another host. A rule that measured how far each last_seen lay
    behind its arrival dropped every state after such a step, a leak alarm with them."""
    codec = Zigbee2MqttCodec("zigbee2mqtt", {"Leak": "leak-1", "Hall": "hall-motion"})
    true_t = 1_700_000_000.0
    pi_clock = true_t - 3600.0  # booted on fake-hwclock's time, an hour behind
    # Zigbee2MQTT on the same Pi re-sends its cache, stamped before the power cut (ahead)
    assert _state(codec, "Hall", pi_clock, (true_t - 60) * 1000, occupancy=False)
    # then the devices speak, stamped on the Pi's clock, behind what came before
    [leak] = _state(codec, "Leak", pi_clock + 5, (pi_clock + 5) * 1000, water_leak=True)
    [hall] = _state(codec, "Hall", pi_clock + 6, (pi_clock + 6) * 1000, occupancy=True)
    assert leak.values["water_leak"] is True and hall.values["motion"] is True
    # NTP steps the clock an hour on; another host's Zigbee2MQTT two hours off
    [leak] = _state(codec, "Leak", true_t + 60, (true_t - 7200) * 1000, water_leak=False)
    assert leak.values["water_leak"] is False
    assert codec.counters["republished_ignored"] == 0
    # a real re-send is still told apart: the hall's last state again
    assert _state(codec, "Hall", true_t + 90, (pi_clock + 6) * 1000, occupancy=True) == []
    assert codec.counters["republished_ignored"] == 1


def test_last_seen_forms() -> None:
    t = 1_700_000_000.0
    assert last_seen_of({"last_seen": t * 1000}) == t
    assert last_seen_of({"last_seen": "2023-11-14T22:13:20Z"}) == t
    assert last_seen_of({"last_seen": "2023-11-14T23:13:20+01:00"}) == t
    for bad in ("yesterday", None, True, float("nan"), [1], {"a": 1}):
        assert last_seen_of({"last_seen": bad}) is None
    assert last_seen_of({}) is None


def test_codec_custom_base_topic() -> None:
    codec = Zigbee2MqttCodec("home/z2m/", {"d": "door-1"})
    assert codec.subscriptions() == ["home/z2m/#"]
    [r] = codec.decode("home/z2m/d", b'{"contact": true}', t=1.0)
    assert r.values == {"open": False}


def test_the_cached_state_after_a_press_is_not_the_button_speaking() -> None:
    """Zigbee2MQTT caches a button's state without its ``action`` but with the ``last_seen``
    of the press. The codec did not remember the press's ``last_seen`` (a press always
    counts), so the cache re-sent at a restart of Zigbee2MQTT was new to it: a button dead
    since its last press checked in at every restart, its ``device_offline`` cleared."""
    codec = _codec()
    t = 1_700_000_000.0
    assert _state(codec, "SOS button", t, t * 1000 - 5000, battery=90)  # a check-in
    [sos] = _state(codec, "SOS button", t + 60, (t + 60) * 1000, action="emergency", battery=90)
    assert sos.values["action"] == "sos"
    # a day later Zigbee2MQTT restarts: the button, dead since its press, from the cache
    assert _state(codec, "SOS button", t + 86_400, (t + 60) * 1000, battery=90) == []
    assert codec.counters["republished_ignored"] == 1
    # a press always counts, whatever its last_seen
    [again] = _state(codec, "SOS button", t + 86_460, (t + 60) * 1000, action="emergency")
    assert again.values["action"] == "sos"
