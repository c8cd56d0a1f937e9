"""No alert is ever lost: uplink outages, gateway killed with SIGKILL, broker restarted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import (
    RESIDENTS,
    gateway_config,
    publish_readings,
    running,
    running_platform,
    runtime_for,
    wait_until,
)
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.broker

T0 = 1_750_000_000.0


def presses(per_resident: int, start: float = T0) -> list[tuple[str, dict[str, float | str]]]:
    # Ten minutes apart, so each press is its own alert (outside the repeat window).
    return [
        (f"sos-{r}", {"action": "sos", "t": start + 600.0 * i})
        for i in range(per_resident)
        for r in RESIDENTS
    ]


def assert_in_order_and_complete(alerts: list[dict], per_resident: int) -> None:
    for r in RESIDENTS:
        times = [a["t"] for a in alerts if a["resident"] == r]
        assert times == [T0 + 600.0 * i for i in range(per_resident)], r


async def test_platform_down_then_back_delivers_everything_in_order(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    # The platform has run before (its persistent session is on the broker): otherwise a
    # gateway reconnecting first would deliver to a broker that has nobody to keep them for.
    async with running_platform(platform_broker):
        pass
    platform_broker.stop()
    runtime = runtime_for(gateway_config(tmp_path, local_broker, platform_broker))
    async with running(runtime):
        await publish_readings(local_broker, presses(5))
        await wait_until(lambda: runtime.outbox.outbox.depth().get("alert") == 15)
        await wait_until(lambda: runtime.forwarder.counters["failures"] >= 2)
        assert "connection refused" in (runtime.forwarder.last_error or "")
        platform_broker.start()
        async with running_platform(platform_broker) as platform:
            alerts = await platform.wait_for_alerts(15)
            await wait_until(lambda: runtime.outbox.outbox.depth() == {})
    assert_in_order_and_complete(alerts, 5)
    stored = platform.platform.store.alerts()
    assert len(stored) == 15 and len({a["id"] for a in stored}) == 15


async def test_broker_killed_mid_stream_loses_nothing(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    runtime = runtime_for(gateway_config(tmp_path, local_broker, platform_broker))
    async with running_platform(platform_broker) as platform, running(runtime):
        await wait_until(lambda: runtime.forwarder.connected.is_set())
        await publish_readings(local_broker, presses(20))
        await wait_until(lambda: runtime.forwarder.counters["sent"] >= 10)
        platform_broker.kill()
        await wait_until(lambda: not runtime.forwarder.connected.is_set())
        platform_broker.start()
        await platform.wait_for_alerts(60, timeout=30)
        await wait_until(lambda: runtime.outbox.outbox.depth() == {})
    ids = [a["id"] for a in platform.received]
    assert len(ids) == len(set(ids)) == 60
    assert_in_order_and_complete(sorted(platform.received, key=lambda a: a["t"]), 20)


def _write_toml(path: Path, config: dict) -> None:
    lines: list[str] = []

    def value(v: object) -> str:
        return json.dumps(v)

    gw = config["gateway"]
    lines.append("[gateway]")
    lines += [f"{k} = {value(v)}" for k, v in gw.items()]
    for section in ("local_broker", "platform"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in config[section].items()]
    for r in config["residents"]:
        lines.append("[[residents]]")
        lines += [f"{k} = {value(v)}" for k, v in r.items()]
    for d in config["devices"]:
        lines.append("[[devices]]")
        lines += [f"{k} = {value(v)}" for k, v in d.items()]
    path.write_text("\n".join(lines) + "\n")


def _outbox_rows(state: Path) -> int:
    db = state / "outbox.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


async def test_gateway_killed_after_commit_delivers_after_restart(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    config = gateway_config(tmp_path, local_broker, platform_broker)
    config_file = tmp_path / "eldergate.toml"
    _write_toml(config_file, config)
    state = Path(config["gateway"]["storage_path"])
    platform_broker.stop()
    cmd = [sys.executable, "-m", "gateway.cli", "run", "--config", str(config_file)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log1 = open(tmp_path / "gw1.log", "wb")  # noqa: SIM115
    gateway = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, env=env)
    try:
        await wait_until(lambda: "local broker connected" in (tmp_path / "gw1.log").read_text())
        await publish_readings(local_broker, [("sos-r3", {"action": "sos", "t": T0})])
        await wait_until(lambda: _outbox_rows(state) == 1)
        os.kill(gateway.pid, signal.SIGKILL)
        gateway.wait(10)
    finally:
        if gateway.poll() is None:
            gateway.kill()
        log1.close()
    platform_broker.start()
    async with running_platform(platform_broker) as platform:
        log2 = open(tmp_path / "gw2.log", "wb")  # noqa: SIM115
        gateway = subprocess.Popen(cmd, stdout=log2, stderr=subprocess.STDOUT, env=env)
        try:
            (alert,) = await platform.wait_for_alerts(1)
            await wait_until(lambda: _outbox_rows(state) == 0)
            store = platform.platform.store
            # raised, queued before the kill (so no "restored" copy of it at the start)
            assert store.alert(alert["id"])["deliveries"] == 1
            # The restarted gateway still knows the alert: staff acknowledgement is confirmed.
            assert await platform.platform.acknowledge(alert["id"], by="nurse-9")
            await wait_until(lambda: store.alert(alert["id"])["deliveries"] == 2)
            gateway.send_signal(signal.SIGTERM)  # as systemd stops it: a clean exit
            assert await asyncio.to_thread(gateway.wait, 10) == 0
        finally:
            if gateway.poll() is None:
                gateway.kill()
            log2.close()
    assert "gateway stopping" in (tmp_path / "gw2.log").read_text()
    assert (alert["type"], alert["resident"], alert["t"]) == ("sos", "r3", T0)


async def test_repeated_delivery_is_deduplicated_by_id(platform_broker: Mosquitto) -> None:
    """At-least-once: if a PUBACK is lost the same message comes again; the platform keeps one."""
    async with running_platform(platform_broker) as platform:
        body = {
            "v": 1,
            "id": "gw-x-abc",
            "change": "raised",
            "type": "sos",
            "resident": "r1",
            "t": T0,
            "state": "open",
            "count": 1,
            "severity": "critical",
        }
        from gateway.mqtt import make_client

        async with make_client(platform_broker.broker_settings(), "dup-sender") as client:
            for _ in range(3):
                await client.publish("eldergate/gw-x/alert/r1", json.dumps(body), qos=1)
        await wait_until(lambda: platform.platform.counters["received"] >= 3)
    stored = platform.platform.store.alerts()
    assert len(stored) == 1 and stored[0]["deliveries"] == 3
    assert len(platform.received) == 1 and platform.platform.counters["duplicates"] == 2


async def test_last_will_marks_a_killed_gateway_offline_and_heartbeat_reports_health(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    config = gateway_config(tmp_path, local_broker, platform_broker)
    config_file = tmp_path / "eldergate.toml"
    _write_toml(config_file, config)
    cmd = [sys.executable, "-m", "gateway.cli", "run", "--config", str(config_file)]
    async with running_platform(platform_broker) as platform:
        store = platform.platform.store

        def state() -> str | None:
            rows = [g for g in store.gateways() if g["id"] == "gw-test"]
            return rows[0]["state"] if rows else None

        with open(tmp_path / "gw.log", "wb") as log:
            gateway = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            try:
                await wait_until(lambda: state() == "online")
                await wait_until(lambda: any(g["health"] for g in store.gateways()))
                (gw,) = store.gateways()
                assert gw["health"]["devices"]["total"] == 3
                assert gw["health"]["devices"]["by_kind"] == {"button": 3}
                assert gw["health"]["outbox"] == {"alert": 0, "summary": 0}
                assert gw["health"]["uptime_s"] >= 0
                os.kill(gateway.pid, signal.SIGKILL)
                gateway.wait(10)
                await wait_until(lambda: state() == "offline")
            finally:
                if gateway.poll() is None:
                    gateway.kill()
