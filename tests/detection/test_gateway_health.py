"""gateway_degraded: a lasting problem of the gateway's own (a broker it cannot reach, a dead
Zigbee bridge) is one alert per resident after the grace, cleared once the problem is over."""

from __future__ import annotations

import pytest

from alerts.manager import AlertManager
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.gateway_health import GatewayHealth, GatewayHealthSettings
from gateway.model import EventAction, Resident, Severity
from gateway.pipeline import Pipeline
from gateway.settings import SettingsError, parse_settings

BRIDGE = ("zigbee2mqtt_bridge", "Zigbee2MQTT says zigbee2mqtt/bridge/state is offline")


class Problems:
    def __init__(self) -> None:
        self.now: dict[str, tuple[str, str]] = {}

    def __call__(self) -> dict[str, tuple[str, str]]:
        return dict(self.now)


def setup(**settings: float) -> tuple[SimClock, Problems, GatewayHealth]:
    clock = SimClock()
    problems = Problems()
    home = Home([Resident("r1"), Resident("r2")], [])
    detector = GatewayHealth(clock, home, problems, GatewayHealthSettings(**settings))
    return clock, problems, detector


def run_for(clock: SimClock, detector: GatewayHealth, seconds: float, step: float = 10.0) -> list:
    events = []
    for _ in range(round(seconds / step)):
        clock.advance(step)
        events += detector.on_tick()
    return events


def test_a_lasting_problem_is_one_alert_per_resident_after_the_grace() -> None:
    clock, problems, detector = setup(grace_s=120.0, clear_after_s=60.0)
    problems.now = {"local_mqtt:zigbee2mqtt_bridge": BRIDGE}
    assert detector.on_tick() == []  # first seen now
    start = clock.monotonic()
    assert detector.next_deadline() == start + 120.0
    assert run_for(clock, detector, 110.0) == []

    raised = run_for(clock, detector, 10.0)
    assert [(e.resident, e.action) for e in raised] == [
        ("r1", EventAction.RAISE),
        ("r2", EventAction.RAISE),
    ]
    assert {e.type for e in raised} == {"gateway_degraded"}
    assert {e.severity for e in raised} == {Severity.HIGH}
    assert raised[0].key == "local_mqtt:zigbee2mqtt_bridge"
    assert raised[0].details["cause"] == "zigbee2mqtt_bridge"
    assert "bridge/state is offline" in raised[0].details["reason"]
    assert run_for(clock, detector, 600.0) == []  # raised once, not again while it lasts

    problems.now = {}
    assert run_for(clock, detector, 50.0) == []  # not over yet: gone for less than 60 s
    cleared = run_for(clock, detector, 10.0)
    assert [(e.resident, e.action) for e in cleared] == [
        ("r1", EventAction.CLEAR),
        ("r2", EventAction.CLEAR),
    ]
    assert detector.next_deadline() is None


def test_a_restart_within_the_grace_is_no_alert() -> None:
    clock, problems, detector = setup(grace_s=120.0, clear_after_s=60.0)
    problems.now = {"local_mqtt:local_broker": ("local_broker", "connection refused")}
    detector.on_tick()
    assert run_for(clock, detector, 30.0) == []
    problems.now = {}
    assert run_for(clock, detector, 300.0) == []
    assert detector.diagnostics()["problems"] == {}


def test_brief_runs_of_a_crash_looping_driver_do_not_restart_the_grace() -> None:
    clock, problems, detector = setup(grace_s=120.0, clear_after_s=60.0)
    failing = {"ble:driver": ("driver", "ble: adapter wedged")}
    events = []
    for _ in range(8):  # 20 s in backoff, 10 s running, over and over
        problems.now = failing
        events += run_for(clock, detector, 20.0)
        problems.now = {}
        events += run_for(clock, detector, 10.0)
    assert [e.action for e in events] == [EventAction.RAISE] * 2


def test_the_alert_text_says_what_staff_lose() -> None:
    clock, problems, detector = setup(grace_s=0.0)
    manager = AlertManager("gw", clock, ("en", "zh"))
    pipeline = Pipeline(detector.home, [detector], manager, clock)
    problems.now = {"local_mqtt:zigbee2mqtt_bridge": BRIDGE}
    changes = pipeline.tick()
    texts = changes[0].to_message("gw")["text"]
    assert "Zigbee sensors and buttons cannot report" in texts["en"]
    assert "Zigbee网关离线" in texts["zh"]


def test_check_config_names_a_bad_grace() -> None:
    config = {
        "gateway": {"id": "gw"},
        "residents": [{"id": "r1"}],
        "devices": [],
        "detection": {"gateway_health": {"grace_s": -5}},
    }
    with pytest.raises(SettingsError, match=r"eldergate\.toml: detection\.gateway_health\.grace_s"):
        parse_settings(config, "eldergate.toml")
