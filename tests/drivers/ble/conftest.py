"""Virtual BLE for the driver tests: simulated peripherals and the gateway's adapter on one
bumble LocalLink, the driver running on a SimClock. Nothing here sleeps for time: helpers await
readings or conditions, with a generous overall timeout only as a safety net."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from drivers.ble.driver import BleDeviceSpec, BleDriver
from gateway.clock import SimClock
from gateway.model import Reading
from simulators.ble import BleWorld, start_ble_world

SAFETY_TIMEOUT_S = 10.0

BAND = "C0:00:00:00:00:01"
HR_BAND = "C0:00:00:00:00:02"
BED = "C0:00:00:00:00:03"
DOOR = "C0:00:00:00:00:04"
BUTTON = "C0:00:00:00:00:05"


@dataclass
class Rig:
    world: BleWorld
    clock: SimClock
    driver: BleDriver
    readings: asyncio.Queue[Reading] = field(default_factory=asyncio.Queue)
    pending: list[Reading] = field(default_factory=list)
    # cleared: the sink holds what it is handed (a runtime whose reading queue is full)
    sink_open: asyncio.Event = field(default_factory=asyncio.Event)
    in_sink: Reading | None = None  # the reading the sink is holding
    delivered: int = 0  # readings the sink has taken
    task: asyncio.Task[None] | None = None  # the driver's run()

    async def next_reading(self, where: Callable[[Reading], bool] = lambda r: True) -> Reading:
        """The oldest reading not yet taken that matches ``where``; others stay for later."""
        async with asyncio.timeout(SAFETY_TIMEOUT_S):
            while True:
                for index, reading in enumerate(self.pending):
                    if where(reading):
                        return self.pending.pop(index)
                self.pending.append(await self.readings.get())

    async def linked(self, device_id: str, connects: int = 1) -> None:
        """Wait until the driver has connected to ``device_id`` (and subscribed) ``connects``
        times; simulated time moves on meanwhile, so reconnection backoffs elapse."""
        await self.until(
            lambda: (
                (link := self.driver.diagnostics()["links"][device_id])["connected"]
                and link["connects"] >= connects
            ),
            advance_s=0.5,
        )

    async def until(self, condition: Callable[[], bool], advance_s: float = 0.0) -> None:
        """Wait for ``condition``, letting the loop run; with ``advance_s`` simulated time moves
        on by that much at each turn (for backoff and watchdog timers)."""
        async with asyncio.timeout(SAFETY_TIMEOUT_S):
            while not condition():
                if advance_s:
                    self.clock.advance(advance_s)
                await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def running_rig(
    peripherals: list[tuple[str, str]], specs: list[BleDeviceSpec], **driver_options
) -> AsyncIterator[Rig]:
    world = await start_ble_world(peripherals)
    clock = SimClock()
    driver = BleDriver(world.backend(), clock, specs, rng=random.Random(3), **driver_options)
    rig = Rig(world, clock, driver)
    rig.sink_open.set()

    async def sink(reading: Reading) -> None:
        if not rig.sink_open.is_set():
            rig.in_sink = reading
            await rig.sink_open.wait()
            rig.in_sink = None
        rig.readings.put_nowait(reading)
        rig.delivered += 1

    task = rig.task = asyncio.create_task(driver.run(sink))
    try:
        yield rig
    finally:
        driver.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(SAFETY_TIMEOUT_S):
                await task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await world.close()


@pytest.fixture
def specs() -> list[BleDeviceSpec]:
    return [
        BleDeviceSpec(BAND, "band-1", "wristband"),
        BleDeviceSpec(HR_BAND, "hr-1", "heart_rate"),
        BleDeviceSpec(BED, "bed-1", "bed"),
        BleDeviceSpec(DOOR, "front-door"),
        BleDeviceSpec(BUTTON, "sos-button"),
    ]
