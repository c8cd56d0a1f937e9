"""Start the real pieces inside a test: a gateway runtime, the reference platform, publishers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from gateway.backoff import Backoff
from gateway.clock import SimClock, SystemClock
from gateway.mqtt import make_client
from gateway.runtime import Runtime
from gateway.settings import Settings, parse_settings
from gateway.wiring import build_runtime
from simulators.platform.app import Platform
from simulators.platform.mqtt import PlatformMqttService
from simulators.platform.store import PlatformStore
from tests.support.mosquitto import Mosquitto

RESIDENTS = ["r1", "r2", "r3"]


def gateway_config(
    tmp_path: Path,
    local: Mosquitto | None,
    platform: Mosquitto | None,
    gateway_id: str = "gw-test",
    **platform_overrides: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "gateway": {"id": gateway_id, "storage_path": str(tmp_path / "state"), "heartbeat_s": 5},
        "residents": [{"id": r} for r in RESIDENTS],
        "devices": [
            # without a local broker the test feeds the readings itself
            {
                "id": f"sos-{r}",
                "kind": "button",
                "room": "lounge",
                "resident": r,
                "transport": "mqtt" if local is not None else "simulated",
            }
            for r in RESIDENTS
        ],
    }
    if local is not None:
        config["local_broker"] = local.settings()
    if platform is not None:
        config["platform"] = platform.settings(**platform_overrides)
    return config


def settings_for(config: dict[str, Any]) -> Settings:
    return parse_settings(config, "<test>")


def fast_backoff() -> Backoff:
    return Backoff(initial_s=0.05, maximum_s=0.5)


def runtime_for(config: dict[str, Any]) -> Runtime:
    runtime = build_runtime(settings_for(config), SystemClock())
    runtime.backoff_factory = fast_backoff
    if runtime.forwarder is not None:
        runtime.forwarder.backoff = fast_backoff()
    return runtime


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Runtime]:
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(runtime.ready.wait(), 10)
        for driver in runtime.drivers:
            if hasattr(driver, "subscribed"):
                await asyncio.wait_for(driver.subscribed.wait(), 10)
        yield runtime
    finally:
        runtime.stop()
        task.cancel()  # in case run() never began
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()


class PlatformHarness:
    def __init__(self, broker: Mosquitto, db: Path | str = ":memory:") -> None:
        self.received: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.platform = Platform(PlatformStore(db), on_new_alert=self._on_new)
        self.service = PlatformMqttService(self.platform, broker.broker_settings())
        self.service_backoff = fast_backoff()

    def _on_new(self, alert: dict[str, Any]) -> None:
        self.received.append(alert)
        self.changed.set()

    async def wait_for_alerts(self, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        await wait_until(lambda: len(self.received) >= n, timeout)
        return self.received


@contextlib.asynccontextmanager
async def running_platform(
    broker: Mosquitto, db: Path | str = ":memory:"
) -> AsyncIterator[PlatformHarness]:
    harness = PlatformHarness(broker, db)
    task = asyncio.create_task(harness.service.run())
    try:
        await asyncio.wait_for(harness.service.connected.wait(), 10)
        yield harness
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Await a condition of the system under test (polls; never a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def advance_gateway(runtime: Runtime, seconds: float) -> None:
    """Move a running gateway's simulated clock on and wait, in real time, until its loop has
    caught up (no tick overdue, and the loop back waiting): alert changes are committed on the
    outbox's thread, so a test that only yields to the event loop can outrun them. The
    deadline alone moves on as the tick begins, before its storage calls (a commit, a retry
    of what a full card refused) have ended."""
    clock = runtime.clock
    if not isinstance(clock, SimClock):
        raise TypeError("advance_gateway needs a gateway on a SimClock")
    clock.advance(seconds)
    await wait_until(
        lambda: runtime.idle and runtime.pipeline.next_deadline() > clock.monotonic(), 10.0
    )


async def publish_readings(
    broker: Mosquitto, messages: list[tuple[str, dict[str, Any]]], client_id: str = "test-device"
) -> None:
    """Publish device readings on the home broker as a device bridge would (QoS 1)."""
    async with make_client(broker.broker_settings(), client_id) as client:
        for device, body in messages:
            await client.publish(f"eldergate/devices/{device}", json.dumps(body), qos=1)


async def publish_raw(
    broker: Mosquitto, topic: str, payload: bytes, *, retain: bool = False
) -> None:
    async with make_client(broker.broker_settings(), "test-raw") as client:
        await client.publish(topic, payload, qos=1, retain=retain)


Awaitable_ = Awaitable  # re-export for typing in tests
__all__ = ["aiomqtt"]
