"""``eldergate simulate`` speaks real payloads that the gateway's own drivers accept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import gateway_config, running, runtime_for, wait_until
from tests.support.mosquitto import PASSWORD, USER, Mosquitto

pytestmark = pytest.mark.broker


def simulate_on(broker: Mosquitto) -> list[str]:
    """`eldergate simulate` publishing to this broker with the device bridge's credentials."""
    return [
        sys.executable,
        "-m",
        "gateway.cli",
        "simulate",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--username",
        USER,
        "--password-file",
        str(broker.password_file),
    ]


def simulated_home_config(
    tmp_path: Path, local_broker: Mosquitto, count: int, scenario: str
) -> dict[str, Any]:
    """The gateway config for `simulate --residents COUNT --scenario SCENARIO`, taken from what
    `simulate --print-config` prints (so that output is checked too)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "simulate",
            "--print-config",
            "--residents",
            str(count),
            "--scenario",
            scenario,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    config = gateway_config(tmp_path, local_broker, None)
    config.update(tomllib.loads(out))
    return config


async def test_simulated_home_over_mqtt_raises_sos_for_every_resident(
    tmp_path: Path, local_broker: Mosquitto
) -> None:
    config = simulated_home_config(tmp_path, local_broker, 2, "sos")
    runtime = runtime_for(config)
    assert (local_broker.password_file.read_text().strip(), USER) == (PASSWORD, "eldergate")
    async with running(runtime):
        proc = await asyncio.create_subprocess_exec(
            *simulate_on(local_broker),
            "--residents",
            "2",
            "--scenario",
            "sos",
            "--start",
            "10:10",
            "--speed",
            "1200",
            "--duration",
            "2",
        )
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await wait_until(lambda: runtime.manager.counters["raised"] >= 2)
        driver = runtime.drivers[0]
        await wait_until(lambda: runtime.queue.empty())
    raised = {a.resident for a in runtime.manager.active.values() if a.type == "sos"}
    assert raised == {"sim1", "sim2"}
    assert driver.counters["rejected"] == 0, driver.diagnostics()
    assert driver.counters["readings"] > 5
    assert not driver.problems()  # the simulated Zigbee2MQTT's bridge state was heard


async def test_simulated_wristbands_over_virtual_ble_reach_the_gateway(
    tmp_path: Path, local_broker: Mosquitto
) -> None:
    """--ble: the band is a bumble peripheral; the BLE driver bridges its readings onto the
    broker, and the gateway accepts them (battery reports through the wristband profile)."""
    config = simulated_home_config(tmp_path, local_broker, 1, "dead_battery")
    runtime = runtime_for(config)
    seen: list[dict] = []
    runtime.pipeline.observers.append(
        lambda r: seen.append(dict(r.values)) if r.device == "sim1-wristband" else None
    )
    async with running(runtime):
        proc = await asyncio.create_subprocess_exec(
            *simulate_on(local_broker),
            "--ble",
            "--residents",
            "1",
            "--scenario",
            "dead_battery",
            "--start",
            "09:59",
            "--speed",
            "3600",
            "--duration",
            "4",
        )
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        await wait_until(lambda: any("battery" in v for v in seen))
    batteries = [v["battery"] for v in seen if "battery" in v]
    assert batteries == sorted(batteries, reverse=True) and batteries[0] <= 100
    assert runtime.drivers[0].counters["rejected"] == 0


async def test_simulate_plays_a_recording_onto_the_broker(
    tmp_path: Path, local_broker: Mosquitto
) -> None:
    """A real-data recording (here a short TIHM-like door + motion sequence) played as Zigbee2MQTT
    messages; the gateway maps them back to the recording's devices."""
    import json

    rec = tmp_path / "home.jsonl"
    records = [
        {
            "type": "device",
            "id": "front-door",
            "kind": "door",
            "room": "entrance",
            "role": "exit",
            "resident": "r1",
        },
        {
            "type": "device",
            "id": "pir-kitchen",
            "kind": "motion",
            "room": "kitchen",
            "resident": "r1",
        },
        {"type": "reading", "t": "2019-04-01T08:00:00", "device": "pir-kitchen", "motion": True},
        "garbage line",
        {"type": "reading", "t": "2019-04-01T08:00:30", "device": "front-door", "open": True},
        {"type": "reading", "t": "2019-04-01T08:00:35", "device": "front-door", "open": False},
    ]
    rec.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records))
    config = gateway_config(tmp_path, local_broker, None)
    config["devices"] = [
        {
            "id": "front-door",
            "kind": "door",
            "room": "entrance",
            "role": "exit",
            "resident": "r1",
            "transport": "zigbee2mqtt",
            "friendly_name": "front-door",
        },
        {
            "id": "pir-kitchen",
            "kind": "motion",
            "room": "kitchen",
            "resident": "r1",
            "transport": "zigbee2mqtt",
            "friendly_name": "pir-kitchen",
        },
    ]
    runtime = runtime_for(config)
    seen: list[tuple[str, dict]] = []
    runtime.pipeline.observers.append(lambda r: seen.append((r.device, dict(r.values))))
    async with running(runtime):
        proc = await asyncio.create_subprocess_exec(
            *simulate_on(local_broker),
            "--recording",
            str(rec),
            "--speed",
            "100",
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0
        await wait_until(lambda: len(seen) == 3)
    assert "line 4: not JSON" in err.decode()
    assert [(d, v.get("motion", v.get("open"))) for d, v in seen] == [
        ("pir-kitchen", True),
        ("front-door", True),
        ("front-door", False),
    ]


@pytest.mark.parametrize("command", ["simulate", "demo"])
@pytest.mark.parametrize("start", ["14:01:30", "25:00", "noon"])
def test_a_bad_start_time_is_a_usage_error_not_a_traceback(command: str, start: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", command, "--start", start, "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--start" in done.stderr and "HH:MM" in done.stderr
    assert "Traceback" not in done.stderr
