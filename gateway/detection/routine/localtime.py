"""Local time of day for routine detectors, guarded against a wall clock that is wrong.

The Pi has no real-time clock: it may boot in 1970 and jump when NTP syncs. Routine detectors
measure durations on the monotonic clock and use wall time only to ask "what time of day is it
here" (zoneinfo, so daylight-saving changes are handled). Before the wall clock is plausible,
time-of-day logic is skipped rather than guessed.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.clock import EARLIEST_PLAUSIBLE_WALL, system_zone

__all__ = ["EARLIEST_PLAUSIBLE_WALL", "LocalTime"]
MINUTES_PER_DAY = 1440.0


def parse_hhmm(text: str) -> float:
    """'HH:MM' → minutes after local midnight; raises ValueError on anything else."""
    hours, minutes = text.strip().split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= 24 * 60:
        raise ValueError(f"not a time of day: {text!r}")
    return float(value)


def in_window(minute: float, start: float, end: float) -> bool:
    """Is local ``minute`` inside [start, end), a window that may wrap past midnight?"""
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


def circular_distance(a: float, b: float) -> float:
    d = abs(a - b) % MINUTES_PER_DAY
    return min(d, MINUTES_PER_DAY - d)


class LocalTime:
    def __init__(self, tz: str | None = None, default: dt.tzinfo | None = None) -> None:
        self.zone = _zone(tz, default)

    def plausible(self, wall: float) -> bool:
        return wall >= EARLIEST_PLAUSIBLE_WALL

    def minute_of_day(self, wall: float) -> float:
        local = dt.datetime.fromtimestamp(wall, self.zone)
        return local.hour * 60 + local.minute + local.second / 60.0

    def day(self, wall: float) -> int:
        """Local calendar day as a proleptic ordinal (consecutive days differ by 1)."""
        return dt.datetime.fromtimestamp(wall, self.zone).date().toordinal()

    def at(self, day: int, minute: float) -> float:
        """Epoch seconds of local ``minute`` on ``day`` (wall-clock reading; DST-aware)."""
        date = dt.date.fromordinal(day)
        whole = int(minute)
        naive = dt.datetime(date.year, date.month, date.day) + dt.timedelta(minutes=whole)
        local = naive.replace(tzinfo=self.zone)
        return local.timestamp() + (minute - whole) * 60.0

    def weekday(self, day: int) -> int:
        return dt.date.fromordinal(day).weekday()


def _zone(tz: str | None, default: dt.tzinfo | None = None) -> dt.tzinfo:
    if tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default if default is not None else system_zone()
