"""The runtime under load: what an SOS press waits behind when the reading queue is full
(wristbands flushing their buffers after a link loss, ten bands streaming on a slow Pi)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.clock import SimClock
from gateway.model import Reading
from gateway.runtime import READING_QUEUE_SIZE, Runtime
from tests.support.harness import gateway_config, running, settings_for, wait_until

MORE_BEFORE_PRESS = 120


class FloodThenPress:
    """A driver that hands over more ordinary readings (waiting for room in the full queue,
    as a driver does, while the loop drains it), then an SOS press."""

    name = "flood"

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock

    async def run(self, sink):  # type: ignore[no-untyped-def]
        for i in range(MORE_BEFORE_PRESS):
            await sink(Reading(self.clock.wall(), "door-r1", {"open": i % 2 == 0}))
        await sink(Reading(self.clock.wall(), "sos-r1", {"action": "sos"}))
        await asyncio.Event().wait()

    def diagnostics(self) -> dict:
        return {}

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}


async def test_an_sos_press_does_not_wait_behind_a_full_reading_queue(tmp_path: Path) -> None:
    """The queue full of ordinary readings when the press comes: it is taken within a few
    hundred of them (the driver's own before it included), not after all (10,000 wristband
    notifications cost ~0.5 s here, 2-4 s on a Pi: bench/sos_behind_flood.py), and every
    queued reading is still processed."""
    config = gateway_config(tmp_path, None, None)
    config["devices"].append(
        {
            "id": "door-r1",
            "kind": "door",
            "room": "entrance",
            "resident": "r1",
            "transport": "simulated",
        }
    )
    clock = SimClock()
    runtime = Runtime(settings_for(config), clock, None, [FloodThenPress(clock)])
    for i in range(READING_QUEUE_SIZE):
        runtime.queue.put_nowait(Reading(clock.wall(), "door-r1", {"open": i % 2 == 0}))
    seen_before_press: list[int] = []

    def watch(reading: Reading) -> None:
        if reading.get("action") == "sos":
            seen_before_press.append(runtime.pipeline.counters["readings"] - 1)

    runtime.pipeline.observers.append(watch)
    async with running(runtime):
        everything = READING_QUEUE_SIZE + MORE_BEFORE_PRESS + 1
        await wait_until(lambda: runtime.pipeline.counters["readings"] == everything)
    assert runtime.manager.counters["raised"] == 1
    assert seen_before_press and seen_before_press[0] <= 2 * MORE_BEFORE_PRESS
