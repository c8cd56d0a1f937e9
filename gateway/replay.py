"""Replay a recording through the full detection and alert pipeline on simulated time.

The clock is driven by the recording: before each reading, time advances to the reading's
``t`` with every detector deadline on the way honoured, so "nothing happened for three hours"
raises its alert at the right simulated moment.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.manager import AlertChange, AlertManager
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detectors import build_detectors
from gateway.model import Device, Reading, Resident
from gateway.pipeline import Pipeline, advance_to
from gateway.recording import UNNAMED_RESIDENT, RecordError, TimeFormat, parse_line

log = logging.getLogger(__name__)
# A reading further ahead of the one before is reported and skipped: ticking every minute
# through a bad year (a device clock reset, a typo) would stall the replay for minutes.
MAX_JUMP_S = 366 * 86400.0


@dataclass
class ReplayStats:
    lines: int = 0
    readings: int = 0
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: reason", first 1000 kept


class Replayer:
    def __init__(
        self,
        gateway_id: str = "replay",
        languages: Iterable[str] = ("zh", "en"),
        detection: dict[str, Any] | None = None,
    ) -> None:
        self.clock = SimClock(start_wall=0.0, start_mono=0.0)
        self.home = Home([], [])
        self.times = TimeFormat()
        self.manager = AlertManager(gateway_id, self.clock, languages)
        detectors = build_detectors(self.clock, self.home, detection)
        self.pipeline = Pipeline(self.home, detectors, self.manager, self.clock)
        self.stats = ReplayStats()
        self._started = False
        self._declared: list[str] = []  # the residents the recording declares, in order

    def _error(self, lineno: int, reason: str) -> None:
        self.stats.bad_lines += 1
        if len(self.stats.errors) < 1000:
            self.stats.errors.append(f"line {lineno}: {reason}")

    def run(self, lines: Iterable[str], until: float | str | None = None) -> Iterator[AlertChange]:
        """``until``: epoch seconds, or an ISO 8601 time; a naive one is read in the zone of
        the recording's times (``2019-04-02T08:00`` in a home whose readings say +08:00 is
        08:00 there), as :meth:`TimeFormat.parse_in_zone` does."""
        for lineno, line in enumerate(lines, start=1):
            self.stats.lines += 1
            try:
                record = parse_line(line, self.times)
            except RecordError as exc:
                self._error(lineno, str(exc))
                continue
            if self.times.iso and self.home.zone is None:
                # ISO times say what time of day it was in the home (recordings.md): read
                # night hours and wake windows in their zone, not the host's.
                self.home.zone = self.times.tz or dt.UTC
            if isinstance(record, Device):
                self.home.add_device(self._owned(record))
            elif isinstance(record, Resident):
                self.home.add_resident(record)
                self._declared.append(record.id)
                self._adopt_unowned()
            elif isinstance(record, Reading):
                if record.device not in self.home.devices:
                    self._error(lineno, f"device: unknown device {record.device!r}")
                    continue
                if self._started and record.t - self.clock.wall() > MAX_JUMP_S:
                    self._error(lineno, "t: more than a year after the reading before")
                    continue
                self.stats.readings += 1
                yield from self._advance(record.t)
                yield from self.pipeline.feed(record)
        if until is not None:
            yield from self._advance(self.times.parse_in_zone(until))

    def _owned(self, device: Device) -> Device:
        """A device declared without a resident, in a recording that declares one resident,
        is that resident's (its settings, its id on the alerts)."""
        if device.resident == UNNAMED_RESIDENT and len(self._declared) == 1:
            return replace(device, resident=self._declared[0])
        return device

    def _adopt_unowned(self) -> None:
        """The one resident declared after devices without one, before any reading: theirs."""
        unowned = [d for d in self.home.devices.values() if d.resident == UNNAMED_RESIDENT]
        if len(self._declared) != 1 or self._started or not unowned:
            return
        for device in unowned:
            self.home.add_device(self._owned(device))
        if UNNAMED_RESIDENT not in self._declared:
            self.home.residents.pop(UNNAMED_RESIDENT, None)

    def _advance(self, wall: float) -> list[AlertChange]:
        if not self._started:
            # The first timestamp sets the clock; there is no history to tick through.
            self._started = True
            self.clock.set_wall(wall)
            return []
        return advance_to(self.pipeline, self.clock, wall)

    def alert_json(self, change: AlertChange) -> dict[str, Any]:
        message = change.to_message(self.manager.gateway_id)
        message["t"] = self.times.format(change.alert.t)
        message["last_t"] = self.times.format(change.alert.last_t)
        return message
