"""The in-process transport: plays a scenario's readings into a gateway on its clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from drivers.base import ReadingSink
from gateway.clock import Clock
from gateway.model import Reading


class InProcessDevices:
    """A driver whose devices are simulated in the same process (the demo, tests)."""

    name = "simulated"

    def __init__(self, readings: Iterable[Reading], clock: Clock) -> None:
        self._readings = iter(readings)
        self.clock = clock
        self.sent = 0

    async def run(self, sink: ReadingSink) -> None:
        for reading in self._readings:
            wait = reading.t - self.clock.wall()
            if wait > 0:
                await self.clock.sleep(wait)
            await sink(reading)
            self.sent += 1
        # The scenario is over, the devices are not gone: like every driver, run until cancelled
        # (a driver that returns is restarted, and counted as failing).
        await asyncio.Event().wait()

    def diagnostics(self) -> dict[str, int]:
        return {"sent": self.sent}

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}
