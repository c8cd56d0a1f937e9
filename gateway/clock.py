"""The injected clock.

Every component takes a :class:`Clock`. ``monotonic()`` is for durations, timeouts, backoff and
watchdogs (the Pi has no real-time clock: wall time may jump by hours when NTP first syncs).
``wall()`` is for stamping events and for time-of-day logic.

:class:`SimClock` moves only when told: replay drives it from the recording's timestamps, tests
advance it by hand, and nothing ever sleeps for real time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Awaitable
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def wall(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimClock:
    """Simulated time. Wall and monotonic advance together unless :meth:`jump_wall` moves the
    wall clock alone (as NTP does on a Pi that booted with the wrong date)."""

    def __init__(self, start_wall: float = 1_700_000_000.0, start_mono: float = 1000.0) -> None:
        self._wall = start_wall
        self._mono = start_mono
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def wall(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("SimClock cannot go backwards; use jump_wall for wall-clock jumps")
        self._wall += seconds
        self._mono += seconds
        self._wake()

    def set_wall(self, wall: float) -> None:
        """Advance both clocks so that wall time equals ``wall`` (never backwards)."""
        if wall > self._wall:
            self.advance(wall - self._wall)

    def jump_wall(self, seconds: float) -> None:
        """Move wall time alone, forwards or backwards; monotonic time is untouched."""
        self._wall += seconds

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Done once simulated time has advanced by ``seconds`` from this call (after another
        task calls :meth:`advance`); ``sleep(0)`` just yields to the loop. The deadline is taken
        at the call, not when a task wrapping the sleep first runs: a test may advance the
        clock in between, and the sleeper must not wake later than asked."""
        if seconds <= 0:
            return asyncio.sleep(0)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, future))
        return future

    def _wake(self) -> None:
        still: list[tuple[float, asyncio.Future[None]]] = []
        for deadline, future in self._sleepers:
            if future.done():
                continue
            if deadline <= self._mono:
                future.set_result(None)
            else:
                still.append((deadline, future))
        self._sleepers = still


class AcceleratedClock:
    """Real time, sped up: the demo lives a day in minutes. Both clocks run ``speed`` times
    faster than the machine's monotonic clock, starting from ``start_wall``."""

    def __init__(self, start_wall: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start_wall = start_wall
        self._origin = time.monotonic()

    def wall(self) -> float:
        return self._start_wall + self.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


# Wall times before this are an unsynchronised clock (a Pi boots in 1970 without a real-time
# clock; TIHM recordings start in 2019).
EARLIEST_PLAUSIBLE_WALL = dt.datetime(2015, 1, 1, tzinfo=dt.UTC).timestamp()
# The wall clock moving this far against the monotonic one is a step (NTP setting a clock a Pi
# booted in 1970 or on fake-hwclock's stale time): what was read from the time of day before
# it is read again. NTP's slewing moves far less.
CLOCK_STEP_S = 300.0


def system_zone() -> dt.tzinfo:
    """The system's time zone with its daylight-saving rules (``TZ``, else /etc/localtime).
    ``datetime.now().astimezone().tzinfo`` is only today's fixed offset: after a DST change
    night windows and summary days were an hour off until the next restart."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as zone_file:
            return ZoneInfo.from_file(zone_file, key="localtime")
    except (OSError, ValueError):
        pass
    return dt.datetime.now().astimezone().tzinfo or dt.UTC
