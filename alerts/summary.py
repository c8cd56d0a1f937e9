"""The daily well-being summary: one message per resident per day, for staff who want to see how
someone is doing before anything is wrong. Counts only — no raw streams: hours with activity,
rooms used, times out, nights' bed exits and time in bed, alerts by type.

Pure state fed by the pipeline (``observe``) and the runtime (``record_alert``); ``due()`` hands
out the summaries of finished days once the local ``summary_time`` has passed. Kept in memory
(documented trade-off: no per-reading SD writes): a restart loses the days not yet summarised,
and the day it starts in is summarised as ``partial``, with the hours it was watched.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from gateway.clock import CLOCK_STEP_S, EARLIEST_PLAUSIBLE_WALL, Clock, system_zone
from gateway.detection.base import Home
from gateway.model import Device, DeviceKind, Reading

# A reading or alert dated further than this after the gateway's own clock (a device whose
# clock is wrong: the JSON device topic and the bed profile take a device's ``t`` up to the
# year 2100) counts when the gateway's clock says. Each such date kept a day's figures in
# memory until that day came: one broken clock filled the Pi's memory with future days.
MAX_AHEAD_S = 86400.0


@dataclass
class _DayStats:
    active_hours: set[int] = field(default_factory=set)
    rooms: Counter[str] = field(default_factory=Counter)
    exits: int = 0
    bed_exits: int = 0
    in_bed_s: float = 0.0  # counted on the day the resident got up
    alerts: Counter[str] = field(default_factory=Counter)
    readings: int = 0


class DailySummary:
    def __init__(self, clock: Clock, home: Home, tz: str = "", summary_time: str = "08:00") -> None:
        self.clock = clock
        self.home = home
        self.zone = ZoneInfo(tz) if tz else system_zone()
        hh, mm = map(int, summary_time.split(":"))
        self.summary_time = dt.time(hh, mm)
        self._days: dict[tuple[str, dt.date], _DayStats] = {}
        self._sent_through: dict[str, dt.date] = {}  # resident -> last day summarised
        # since when the figures are gathered on the clock they are dated by (monotonic; the
        # last step of the wall clock), and that clock's offset from the monotonic one
        self._watching_since = clock.monotonic()
        self._offset = clock.wall() - self._watching_since
        # resident -> when they got into bed, on the monotonic clock: a Pi that boots at night
        # with its clock in 1970 and then takes NTP's made a night of 474,871 h
        self._bed_since: dict[str, float] = {}

    def _date(self, t: float) -> dt.date:
        return dt.datetime.fromtimestamp(t, self.zone).date()

    def _believed(self, t: float) -> float:
        """``t``, or the gateway's clock for a time more than :data:`MAX_AHEAD_S` ahead of
        it: no figures are held for a day after the gateway's tomorrow, whatever dates
        devices send (days past are handed out by the next :meth:`due`)."""
        now = self.clock.wall()
        return now if t > now + MAX_AHEAD_S else t

    def _stats(self, resident: str, t: float) -> _DayStats | None:
        """The day's figures, or None for a day that cannot have one: a wall clock not set
        yet (a 1970 day), or a day already summarised (a second summary would contradict the
        first). ``t`` as :meth:`_believed` takes it."""
        self._note_step()
        if t < EARLIEST_PLAUSIBLE_WALL:
            return None
        key = (resident, self._date(t))
        sent = self._sent_through.get(resident)
        if sent is not None and key[1] <= sent:
            return None
        if key not in self._days:
            self._days[key] = _DayStats()
        return self._days[key]

    def observe(self, reading: Reading) -> None:
        device = self.home.devices.get(reading.device)
        if device is None:
            return
        t = self._believed(reading.t)
        stats = self._stats(device.resident, t)
        in_bed_s = self._bed(device, reading)
        if stats is None:
            return
        stats.readings += 1
        hour = dt.datetime.fromtimestamp(t, self.zone).hour
        if reading.get("motion") is True:
            stats.active_hours.add(hour)
            stats.rooms[device.room.value] += 1
        if device.is_exit and reading.get("open") is True:
            stats.exits += 1
        if in_bed_s is not None:
            stats.in_bed_s += in_bed_s
            stats.bed_exits += 1

    def _bed(self, device: Device, reading: Reading) -> float | None:
        """Seconds in bed that this reading ends (getting up), else None."""
        occupied = reading.get("occupied")
        if device.kind is not DeviceKind.BED or not isinstance(occupied, bool):
            return None
        since = self._bed_since.get(device.resident)
        now = self.clock.monotonic()
        if occupied and since is None:
            self._bed_since[device.resident] = now
        elif not occupied and since is not None:
            del self._bed_since[device.resident]
            return max(0.0, now - since)
        return None

    def record_alert(self, resident: str, alert_type: str, t: float) -> None:
        stats = self._stats(resident, self._believed(t))
        if stats is not None:
            stats.alerts[alert_type] += 1

    def _note_step(self) -> None:
        """A step of the wall clock since the last look (NTP) starts the watch again."""
        mono = self.clock.monotonic()
        offset = self.clock.wall() - mono
        if abs(offset - self._offset) > CLOCK_STEP_S:
            self._watching_since = mono
        self._offset = offset

    def _watched(self, day: dt.date) -> dict[str, Any]:
        """Whether the gateway gathered the whole day, and for how many hours of it (readings
        dated before the wall clock's last step were on a wrong clock: none of this day)."""
        start = dt.datetime.combine(day, dt.time(), self.zone).timestamp()
        end = dt.datetime.combine(day + dt.timedelta(1), dt.time(), self.zone).timestamp()
        since = max(start, self._watching_since + self._offset)
        return {"partial": since > start, "watched_h": round(max(0.0, end - since) / 3600, 1)}

    def due(self) -> list[dict[str, Any]]:
        """Summaries of every finished day whose summary time (the next morning) has passed."""
        self._note_step()
        now = dt.datetime.fromtimestamp(self.clock.wall(), self.zone)
        cutoff = now.date() if now.time() >= self.summary_time else now.date() - dt.timedelta(1)
        ready = [key for key in self._days if key[1] < cutoff]
        out = []
        for resident, day in sorted(ready):
            stats = self._days.pop((resident, day))
            self._sent_through[resident] = max(day, self._sent_through.get(resident, day))
            out.append(
                {
                    "kind": "daily_summary",
                    "resident": resident,
                    "day": day.isoformat(),
                    **self._watched(day),
                    "active_hours": len(stats.active_hours),
                    "rooms": dict(stats.rooms),
                    "exits": stats.exits,
                    "bed_exits": stats.bed_exits,
                    "in_bed_h": round(stats.in_bed_s / 3600.0, 1),
                    "alerts": dict(stats.alerts),
                    "readings": stats.readings,
                }
            )
        return out
