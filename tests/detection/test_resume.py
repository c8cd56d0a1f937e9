"""After a restart (a power cut, an update) the alerts a previous run left open are restored; the
detector that raises each type takes it back, so what would have cleared it in the old run — a
device heard again, the next sign of life, the problem gone — still clears it."""

from __future__ import annotations

import datetime as dt

import pytest

from alerts.manager import AlertManager
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.device_health import DeviceHealth
from gateway.detection.gateway_health import GatewayHealth, GatewayHealthSettings
from gateway.model import (
    Alert,
    Device,
    DeviceKind,
    Event,
    EventAction,
    Reading,
    Resident,
    Room,
    Severity,
)
from gateway.pipeline import Pipeline
from tests.detection.routine.routine_sim import P, Sim, local

DAY = dt.date(2019, 5, 6)


def open_alert(type_: str, resident: str = P, key: str = "", **details: object) -> Alert:
    return Alert(f"id-{type_}-{key}", type_, Severity.HIGH, resident, 0.0, key=key,
                 details=dict(details))


Feed = list[tuple[str, dict[str, object]]]
FIRST_BED_REPORT = ("bed", {"occupied": False})  # the bed sensor's routine report, nobody in it
IN_RANGE = ("bed", {"occupied": True, "hr": 62, "rr": 14})

# type, key, readings that must not clear it (the bed's first report after the restart comes
# first: it says whether the bed is occupied, not that anyone moved), the readings that clear
# it (with the last), at what local time
ROUTINE_CASES: list[tuple[str, str, Feed, Feed, str]] = [
    ("inactivity", "", [FIRST_BED_REPORT], [("kitchen", {})], "14:00"),
    ("not_up", "", [FIRST_BED_REPORT, ("bedroom", {}), ("bathroom", {})], [("kitchen", {})],
     "09:30"),
    ("bed_exit_no_return", "", [FIRST_BED_REPORT, ("hallway", {})],
     [("bed", {"occupied": True})], "02:00"),
    ("long_bathroom", "", [FIRST_BED_REPORT, ("bathroom", {})], [("hallway", {})], "14:00"),
    ("night_exit", "", [FIRST_BED_REPORT], [("hallway", {})], "02:00"),
    # one sample in range is no recovery: a window as long as a raise needs is
    ("vitals", "hr", [IN_RANGE], [IN_RANGE] * 4, "02:00"),
]


@pytest.mark.parametrize(("type_", "key", "not_clearing", "clearing", "at"), ROUTINE_CASES)
def test_a_routine_alert_of_a_previous_run_clears_as_it_would_have(
    type_: str, key: str, not_clearing: Feed, clearing: Feed, at: str
) -> None:
    sim = Sim(local(DAY, "01:00"), bed=True)
    assert sim.detector.resume(open_alert(type_, key=key)) is True
    t = local(DAY, at)
    sim.run_until(t)
    for device, values in not_clearing + clearing[:-1]:
        t += 1.0
        sim.feed(t, device, **values)
    assert sim.cleared(type_) == [] and sim.raised(type_) == []  # nothing of this clears it
    device, values = clearing[-1]
    sim.feed(t + 1.0, device, **values)
    (cleared,) = sim.cleared(type_)
    assert (cleared.resident, cleared.key) == (P, key)
    assert sim.raised(type_) == []


def test_an_alert_of_a_resident_no_longer_configured_is_left_for_staff() -> None:
    sim = Sim(local(DAY, "01:00"))
    assert sim.detector.resume(open_alert("inactivity", resident="moved-out")) is False


def test_routine_detectors_take_only_their_own_types() -> None:
    sim = Sim(local(DAY, "01:00"))
    assert sim.detector.resume(open_alert("device_offline", key="kitchen")) is False
    assert sim.detector.resume(open_alert("fall", key="band")) is False
    sim.feed(local(DAY, "08:00"), "kitchen")
    assert sim.events == []


def health_setup() -> tuple[SimClock, Home, DeviceHealth]:
    clock = SimClock()
    home = Home(
        [Resident(P)],
        [
            Device("door", DeviceKind.DOOR, P, Room.ENTRANCE, role="exit"),
            Device("leak", DeviceKind.WATER_LEAK, P, Room.BATHROOM),
            Device("sos", DeviceKind.BUTTON, P, Room.LOUNGE),
        ],
    )
    return clock, home, DeviceHealth(clock, home)


@pytest.mark.parametrize(
    ("type_", "device", "values"),
    [
        ("device_offline", "door", {"open": False}),
        ("water_leak", "leak", {"water_leak": False}),
        ("battery_low", "door", {"battery": 80}),
        ("tamper", "door", {"tamper": False}),
        ("button_untested", "sos", {"action": "single"}),
    ],
)
def test_a_device_alert_of_a_previous_run_clears_on_the_reading_that_ends_it(
    type_: str, device: str, values: dict[str, object]
) -> None:
    clock, home, health = health_setup()
    assert health.resume(open_alert(type_, key=device)) is True
    events = health.on_reading(Reading(clock.wall(), device, values), home.devices[device])
    assert [(e.type, e.key, e.action) for e in events] == [(type_, device, EventAction.CLEAR)]


def test_a_device_still_silent_after_the_restart_is_not_alerted_twice() -> None:
    clock, _, health = health_setup()
    assert health.resume(open_alert("device_offline", key="door", reason="silent"))
    clock.advance(3 * 24 * 3600.0)
    assert [e for e in health.on_tick() if e.type == "device_offline"] == []
    assert health.diagnostics()["door"]["offline"] == "silent"


def test_device_health_leaves_alone_what_it_does_not_raise_or_no_longer_knows() -> None:
    _, _, health = health_setup()
    assert health.resume(open_alert("device_offline", key="removed-from-config")) is False
    # the door now belongs to someone else: its clear would not reach this alert
    assert health.resume(open_alert("device_offline", resident="before", key="door")) is False
    assert health.resume(open_alert("inactivity")) is False
    assert health.resume(open_alert("sos", key="sos")) is False


def test_gateway_health_switched_off_leaves_its_old_alerts_for_staff() -> None:
    home = Home([Resident("r1")], [])
    off = GatewayHealth(SimClock(), home, dict, GatewayHealthSettings(enabled=False))
    assert off.resume(open_alert("gateway_degraded", "r1", "local_mqtt:local_broker")) is False


def test_a_gateway_problem_of_a_previous_run_clears_once_gone_and_stays_while_there() -> None:
    clock = SimClock()
    problems: dict[str, tuple[str, str]] = {"local_mqtt:local_broker": ("local_broker", "down")}
    home = Home([Resident("r1"), Resident("r2")], [])
    settings = GatewayHealthSettings(grace_s=120.0, clear_after_s=60.0)
    health = GatewayHealth(clock, home, lambda: problems, settings)
    for resident in ("r1", "r2"):
        key = "local_mqtt:local_broker"
        assert health.resume(open_alert("gateway_degraded", resident, key, cause="local_broker"))
    assert health.resume(open_alert("device_offline", key="door")) is False
    assert health.resume(open_alert("gateway_degraded", "moved-out", "local_mqtt:local_broker"))\
        is False
    events = []
    for _ in range(30):  # the broker is still down after the restart: no second alert
        clock.advance(10.0)
        events += health.on_tick()
    assert events == []
    problems.clear()
    for _ in range(6):
        clock.advance(10.0)
        events += health.on_tick()
    assert sorted((e.resident, e.action, e.details["cause"]) for e in events) == [
        ("r1", EventAction.CLEAR, "local_broker"),
        ("r2", EventAction.CLEAR, "local_broker"),
    ]


def test_the_pipeline_resolves_restored_alerts_through_their_detectors() -> None:
    clock, home, health = health_setup()
    manager = AlertManager("gw", clock)
    for event in (
        Event("device_offline", P, clock.wall(), Severity.WARNING, key="door",
              details={"reason": "silent"}),
        Event("sos", P, clock.wall(), Severity.CRITICAL, device="sos"),
    ):
        manager.handle(event)
    restarted = AlertManager("gw", clock)
    restarted.restore(list(manager.active.values()))
    pipeline = Pipeline(home, [health], restarted, clock)
    pipeline.resume(list(restarted.active.values()))
    assert pipeline.counters["alerts_resumed"] == 1  # the SOS is for staff to resolve
    (change,) = pipeline.feed(Reading(clock.wall(), "door", {"open": True}))
    assert (change.alert.type, change.change) == ("device_offline", "resolved")
    assert [a.type for a in restarted.active.values()] == ["sos"]
