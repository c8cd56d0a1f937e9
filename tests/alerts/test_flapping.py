"""Alert storms from flapping maintenance conditions, through the real detectors
(``build_detectors``, gateway health) and the real alert manager on the SimClock: a band at the
edge of range, a Zigbee availability that comes and goes, a battery jittering around its
threshold in real Zigbee2MQTT reports, a flapping bridge in a home of two. Staff see at most one
raised/resolved pair and one flapping alert per hold, never a pair every few minutes; an SOS, a
first alert of another device and the raise of a flapping alert itself are never delayed."""

from __future__ import annotations

import json

import pytest

from alerts.manager import AlertChange, AlertManager
from drivers.decoders.zigbee2mqtt import decode_message
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.gateway_health import GatewayHealth
from gateway.detectors import build_detectors
from gateway.model import Device, DeviceKind, Reading, Resident, Room
from gateway.pipeline import Pipeline, advance_to
from gateway.settings import AlertSettings, SettingsError, parse_settings

T0 = 1_750_000_000.0
MIN = 60.0
HOUR = 3600.0
BRIDGE = {"local_mqtt:zigbee2mqtt_bridge": ("zigbee2mqtt_bridge", "bridge/state is offline")}


class Problems:
    def __init__(self) -> None:
        self.now: dict[str, tuple[str, str]] = {}

    def __call__(self) -> dict[str, tuple[str, str]]:
        return dict(self.now)


def home_of(*residents: str) -> Home:
    return Home(
        [Resident(r) for r in residents],
        [
            Device("band", DeviceKind.WRISTBAND, "r1", options={"transport": "ble"}),
            Device("sos", DeviceKind.BUTTON, "r1", Room.BEDROOM, options={"transport": "ble"}),
            Device(
                "Hall door",
                DeviceKind.DOOR,
                "r1",
                Room.ENTRANCE,
                role="exit",
                options={"transport": "zigbee2mqtt"},
            ),
            Device("Kitchen", DeviceKind.MOTION, "r1", Room.KITCHEN, {"transport": "zigbee2mqtt"}),
        ],
    )


def pipeline(
    *residents: str, problems: Problems | None = None, **flap_hold_s: float
) -> tuple[SimClock, Pipeline]:
    clock = SimClock(T0)
    home = home_of(*(residents or ("r1",)))
    # the defaults unless a test sets a hold
    manager = AlertManager("gw", clock, flap_hold_s=flap_hold_s) if flap_hold_s else None
    manager = manager or AlertManager("gw", clock)
    detectors = build_detectors(clock, home, problems=problems)
    if problems is not None:
        detectors.append(GatewayHealth(clock, home, problems))
    return clock, Pipeline(home, detectors, manager, clock)


def z2m(clock: SimClock, p: Pipeline, topic: str, payload: dict[str, object]) -> list[AlertChange]:
    changes = []
    for fields in decode_message(f"zigbee2mqtt/{topic}", json.dumps(payload)):
        values = dict(fields)
        device = values.pop("device")
        changes += p.feed(Reading(clock.wall(), device, values))
    return changes


def seen(changes: list[AlertChange], type_: str) -> list[str]:
    return [c.change for c in changes if c.alert.type == type_]


def band_at_the_edge_of_range(clock: SimClock, p: Pipeline, cycles: int) -> list[AlertChange]:
    """Heard for 3 min (a reading a minute), then out of range for 7 min, again and again."""
    changes: list[AlertChange] = []
    for _ in range(cycles):
        for _ in range(3):
            changes += p.feed(Reading(clock.wall(), "band", {"hr": 70}))
            changes += advance_to(p, clock, clock.wall() + MIN)
        changes += advance_to(p, clock, clock.wall() + 7 * MIN)
    return changes


def test_a_band_at_the_edge_of_range_is_one_flapping_alert_not_a_pair_every_ten_minutes() -> None:
    clock, p = pipeline()
    changes = band_at_the_edge_of_range(clock, p, cycles=12)  # two hours
    # before: raised/resolved every 10 min (12 raises, 11 resolves)
    assert seen(changes, "device_offline") == ["raised", "resolved", "raised"]
    flapping = [c for c in changes if c.alert.type == "device_offline"][-1]
    assert flapping.alert.details["flapping"] is True
    held = p.manager.active[flapping.alert.id]
    assert held.count == 11  # the cycles it absorbed, carried by its next message
    assert p.manager.counters["flaps_held"] == 10

    # back for good: resolved once it has stayed back for the hold (1 h), not before
    later: list[AlertChange] = []
    for _ in range(59):
        later += p.feed(Reading(clock.wall(), "band", {"hr": 70}))
        later += advance_to(p, clock, clock.wall() + MIN)
    assert seen(later, "device_offline") == []
    for _ in range(5):
        later += p.feed(Reading(clock.wall(), "band", {"hr": 70}))
        later += advance_to(p, clock, clock.wall() + MIN)
    assert seen(later, "device_offline") == ["resolved"]
    assert later[-1].alert.id == flapping.alert.id and later[-1].alert.count == 11


def test_a_flapping_band_never_delays_an_sos_or_another_devices_first_alert() -> None:
    clock, p = pipeline()
    band_at_the_edge_of_range(clock, p, cycles=3)
    [flapping] = [a for a in p.manager.active.values() if a.type == "device_offline"]
    assert flapping.details["flapping"] is True

    press = p.feed(Reading(clock.wall(), "sos", {"action": "single"}))
    assert [(c.change, c.alert.type) for c in press] == [("raised", "sos")]

    kitchen = z2m(clock, p, "Kitchen/availability", {"state": "offline"})
    assert [(c.change, c.alert.type, c.alert.key) for c in kitchen] == [
        ("raised", "device_offline", "Kitchen")
    ]
    assert "flapping" not in kitchen[0].alert.details


def test_a_device_offline_again_after_a_quiet_hour_is_raised_as_before() -> None:
    """The hold is about flapping: a band that was back for longer than the hold and then
    goes silent is raised and resolved as it always was."""
    clock, p = pipeline()
    first = band_at_the_edge_of_range(clock, p, cycles=1)
    for _ in range(65):
        first += p.feed(Reading(clock.wall(), "band", {"hr": 70}))
        first += advance_to(p, clock, clock.wall() + MIN)
    first += advance_to(p, clock, clock.wall() + 6 * MIN)
    first += p.feed(Reading(clock.wall(), "band", {"hr": 70}))
    assert seen(first, "device_offline") == ["raised", "resolved", "raised", "resolved"]
    assert not any(c.alert.details.get("flapping") for c in first)


def test_zigbee_availability_coming_and_going_is_held_open() -> None:
    clock, p = pipeline()
    changes: list[AlertChange] = []
    for _ in range(6):
        for state in ("offline", "online"):
            changes += z2m(clock, p, "Kitchen/availability", {"state": state})
            changes += advance_to(p, clock, clock.wall() + 10 * MIN)
        p.feed(Reading(clock.wall(), "band", {"hr": 70}))
    kitchen = [c.change for c in changes if c.alert.key == "Kitchen"]
    assert kitchen == ["raised", "resolved", "raised"]  # before: 6 pairs in two hours


def test_a_battery_jittering_around_the_threshold_in_zigbee2mqtt_reports_is_one_alert() -> None:
    """An Aqara contact sensor's percentage comes from its voltage (2850-3000 mV), so a few
    tens of mV of temperature swing move it by 10-20 points: 15/20 hysteresis alone flapped."""
    clock, p = pipeline()
    changes: list[AlertChange] = []
    for pct in [16, 14, 19, 13, 21, 15, 12, 22, 14, 20, 13, 24, 11, 23]:
        payload = {"battery": pct, "voltage": 2850 + 1.5 * pct, "contact": True, "linkquality": 60}
        changes += z2m(clock, p, "Hall door", payload)
        changes += advance_to(p, clock, clock.wall() + 6 * HOUR)
    # before: raised/resolved 4 times in three and a half days
    assert seen(changes, "battery_low") == ["raised", "resolved", "raised"]
    # a new battery: resolved once it has stayed up for the hold (two days)
    done: list[AlertChange] = []
    for _ in range(9):
        done += z2m(clock, p, "Hall door", {"battery": 100, "contact": True})
        done += advance_to(p, clock, clock.wall() + 6 * HOUR)
    assert seen(done, "battery_low") == ["resolved"]


def test_a_flapping_bridge_in_a_home_of_two_is_one_alert_per_resident() -> None:
    problems = Problems()
    clock, p = pipeline("r1", "r2", problems=problems)
    changes: list[AlertChange] = []
    for _ in range(8):  # down 3 min, up 2 min, for 40 min
        problems.now = dict(BRIDGE)
        changes += advance_to(p, clock, clock.wall() + 3 * MIN)
        problems.now = {}
        changes += advance_to(p, clock, clock.wall() + 2 * MIN)
    degraded = [(c.change, c.alert.resident) for c in changes if c.alert.type == "gateway_degraded"]
    # before: a raised and a resolved per resident every five minutes (32 messages)
    assert degraded == [
        ("raised", "r1"),
        ("raised", "r2"),
        ("resolved", "r1"),
        ("resolved", "r2"),
        ("raised", "r1"),
        ("raised", "r2"),
    ]
    # the held alerts do not escalate while the bridge is up; they do while it is down
    # and nobody has acknowledged them (escalate_high_after_s, 15 min)
    assert [c for c in changes if c.change == "escalated"] == []
    problems.now = dict(BRIDGE)
    long = advance_to(p, clock, clock.wall() + 20 * MIN)
    assert {(c.change, c.alert.resident) for c in long} == {
        ("escalated", "r1"),
        ("escalated", "r2"),
    }


def test_flap_hold_zero_restores_the_old_behaviour() -> None:
    clock, p = pipeline(device_offline=0.0)
    changes = band_at_the_edge_of_range(clock, p, cycles=4)
    assert seen(changes, "device_offline") == ["raised", "resolved"] * 3 + ["raised"]


def test_staff_resolving_a_held_alert_ends_it_at_once() -> None:
    clock, p = pipeline()
    band_at_the_edge_of_range(clock, p, cycles=3)
    p.feed(Reading(clock.wall(), "band", {"hr": 70}))  # back: settling
    [held] = [a for a in p.manager.active.values() if a.type == "device_offline"]
    [resolved] = p.manager.resolve(held.id, by="staff-17")
    assert resolved.change == "resolved" and resolved.alert.changed_by == "staff-17"
    # no second resolve; the band, silent since, is a new alert (staff closed the old one)
    after = advance_to(p, clock, clock.wall() + 2 * HOUR)
    assert [c.change for c in after] == ["raised"] and after[0].alert.id != held.id


def test_flap_hold_settings_are_checked() -> None:
    assert AlertSettings(flap_hold_s={"battery_low": 86400}).flap_hold_s == {"battery_low": 86400}
    with pytest.raises(ValueError, match="unknown alert type"):
        AlertSettings(flap_hold_s={"sos": 60})
    with pytest.raises(ValueError, match="within"):
        AlertSettings(flap_hold_s={"tamper": -1})


def test_flap_hold_is_read_from_the_config_file() -> None:
    data = {
        "gateway": {"id": "gw-1"},
        "alerts": {"flap_hold_s": {"device_offline": 1800, "battery_low": 0}},
    }
    assert parse_settings(data).alerts.flap_hold_s == {"device_offline": 1800, "battery_low": 0}
    data["alerts"] = {"flap_hold_s": {"device_ofline": 1800}}
    with pytest.raises(SettingsError, match="device_ofline"):
        parse_settings(data)
