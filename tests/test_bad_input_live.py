"""Malformed MQTT payloads on the home broker: counted, logged with the reason, skipped; the
gateway keeps working and nothing already accepted is lost."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from drivers.local_mqtt import loggable_topic
from tests.support.harness import (
    gateway_config,
    publish_raw,
    publish_readings,
    running,
    runtime_for,
    wait_until,
)
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.broker


async def test_malformed_payloads_are_counted_and_skipped(
    tmp_path: Path, local_broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = runtime_for(gateway_config(tmp_path, local_broker, None))
    bad = [
        ("eldergate/devices/sos-r1", b"{not json"),
        ("eldergate/devices/sos-r1", b"[1, 2, 3]"),
        ("eldergate/devices/sos-r1", json.dumps({"action": 7}).encode()),
        ("eldergate/devices/sos-r1", json.dumps({"battery": float("nan")}).encode()),
        ("eldergate/devices/sos-r1", b"\xff\xfe"),
        ("eldergate/devices/ghost", json.dumps({"action": "sos"}).encode()),
        ("eldergate/devices/sos-r1", b"{" + b'"a":' * 10 + b"x" * 300_000 + b"}"),
    ]
    caplog.set_level(logging.WARNING)
    async with running(runtime):
        driver = runtime.drivers[0]
        await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
        await wait_until(lambda: runtime.manager.counters["raised"] == 1)
        for topic, payload in bad:
            await publish_raw(local_broker, topic, payload)
        await wait_until(lambda: driver.counters["rejected"] == len(bad))
        await publish_readings(local_broker, [("sos-r2", {"action": "sos"})])
        await wait_until(lambda: runtime.manager.counters["raised"] == 2)
        reasons = driver.diagnostics()["rejected_by_reason"]
    assert sum(reasons.values()) == len(bad)
    assert any("payload too large" in k for k in reasons)
    assert any("unknown device" in r.getMessage() for r in caplog.records)
    # a device name an installer chose can be a person's: never in the log
    assert not any("ghost" in r.getMessage() for r in caplog.records)
    shown = loggable_topic("zigbee2mqtt/Mary's pendant")
    assert shown.startswith("zigbee2mqtt/") and "Mary" not in shown
    assert shown == loggable_topic("zigbee2mqtt/Mary's pendant")  # an installer can match it
    assert shown != loggable_topic("zigbee2mqtt/John's pendant")


async def test_messages_that_broke_the_decoders_or_the_loop_cost_nothing_else(
    tmp_path: Path, local_broker: Mosquitto
) -> None:
    """Each of these once ended the driver (and the presses the broker had already handed it)
    or the whole pipeline: a press stamped in the year 10**292 (the daily summary could not
    date it), integers over Python's 4,300-digit limit, nesting deeper than the recursion
    limit. A press with a clock we cannot believe still raises, dated on arrival."""
    runtime = runtime_for(gateway_config(tmp_path, local_broker, None))
    poison = [
        ("sos-r1", b'{"action": "sos", "t": 1e300}'),
        ("sos-r1", b'{"action": "press", "t": 1' + b"0" * 5000 + b"}"),
        ("sos-r1", b'{"battery": 1' + b"0" * 400 + b"}"),
        ("sos-r1", b"[" * 100_000),
    ]
    async with running(runtime):
        driver = runtime.drivers[0]
        for device, payload in poison:
            await publish_raw(local_broker, f"eldergate/devices/{device}", payload)
        await publish_readings(local_broker, [("sos-r2", {"action": "sos"})])
        await wait_until(lambda: runtime.manager.counters["raised"] == 2)
        await wait_until(lambda: driver.counters["rejected"] == 3)
        assert driver.diagnostics()["codecs"]["device-json"]["t_replaced"] == 1
        (first,) = [a for a in runtime.manager.active.values() if a.resident == "r1"]
        assert abs(first.t - runtime.clock.wall()) < 60  # dated on arrival
    assert runtime.driver_failures == {}
    assert runtime.pipeline.counters["observer_errors"] == 0
