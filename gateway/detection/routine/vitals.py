"""``vitals``: heart rate or breathing in bed outside safe limits, sustained for minutes.

Only bed-sensor readings taken while the bed is occupied count (a wristband's heart rate is
the fall detector's business). For each of ``hr`` and ``rr`` separately, the samples of the
last ``sustain_s`` are judged together (the newest ``MAX_SAMPLES_PER_S`` a second of it at
most: a bed reports about once a second, and one flooding readings had every reading judged
over all it sent in ``sustain_s``): at least ``min_samples`` of them, and ``min_fraction`` of
them beyond the same limit, raise; a single wild reading never does. Cleared when the
window is back within limits, or when the person has been out of bed ``bed_leave_s``: a bed
sensor that reports "not occupied" for a moment (the sleeper on the edge of the mattress)
while the heart rate stays out of range keeps the one alert open instead of a resolved and a
new raised alert per flicker. Back in bed, the window starts again and the alert clears only
once a whole window's worth of samples is back in range.

Limits: the absolute ones (HR 40-120 /min, RR 8-30 /min by default), tightened to the person's
own learned range once ``min_learned`` in-bed samples are known: from the ``low_q``/``high_q``
quantiles of their history widened by the margins, never looser than the absolute limits.
History is a histogram of whole-number values (bounded size, written with the other learned
state).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gateway.clock import Clock
from gateway.detection.base import Home
from gateway.detection.routine.learning import LearnedStore
from gateway.detection.routine.maths import sustained_out_of_range
from gateway.detection.routine.presence import Presence
from gateway.detection.routine.shell import RoutineDetector
from gateway.model import Alert, Device, DeviceKind, Event, EventAction, Reading, Severity

HISTOGRAM_BINS = 256  # values 0..255 per minute
MAX_SAMPLES_PER_S = 5.0  # a window holds the newest 5 x sustain_s samples at most


@dataclass(frozen=True)
class VitalsSettings:
    enabled: bool = True
    hr_low: float = 40.0
    hr_high: float = 120.0
    rr_low: float = 8.0
    rr_high: float = 30.0
    sustain_s: float = 600.0
    min_samples: int = 5
    min_fraction: float = 0.8
    clear_fraction: float = 0.2
    min_learned: int = 1200  # in-bed samples before the person's own range is used
    low_q: float = 0.005
    high_q: float = 0.995
    hr_margin: float = 12.0
    rr_margin: float = 5.0
    severity: str = "high"
    bed_leave_s: float = 120.0  # out of bed this long clears a vitals alert; shorter is a flicker
    tz: str | None = None


class VitalsDetector(RoutineDetector[VitalsSettings]):
    name = "vitals"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: VitalsSettings | None = None,
        store: LearnedStore | None = None,
        presence: Presence | None = None,
    ) -> None:
        super().__init__(clock, home, settings or VitalsSettings(), store, presence)
        self._windows: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._raised: set[tuple[str, str]] = set()
        self._occupied: dict[str, bool] = {}
        self._left_at: dict[str, float] = {}  # resident -> monotonic: out of bed, alert open
        self._histograms: dict[tuple[str, str], np.ndarray] = {}
        self.rejected = 0  # readings with a value that cannot be a vital sign

    def histogram(self, resident: str, signal: str) -> np.ndarray:
        key = (resident, signal)
        found = self._histograms.get(key)
        if found is None:
            stored = self.store.get(f"{self.name}/{resident}/{signal}")
            found = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
            if isinstance(stored, list) and len(stored) == HISTOGRAM_BINS:
                found = np.asarray(stored, dtype=np.int64)
            self._histograms[key] = found
        return found

    def limits(self, resident: str, signal: str) -> tuple[float, float]:
        settings = self.settings_for(resident)
        low = settings.hr_low if signal == "hr" else settings.rr_low
        high = settings.hr_high if signal == "hr" else settings.rr_high
        margin = settings.hr_margin if signal == "hr" else settings.rr_margin
        counts = self.histogram(resident, signal)
        total = int(counts.sum())
        if total < settings.min_learned:
            return low, high
        cumulative = np.cumsum(counts) / total
        learned_low = float(np.searchsorted(cumulative, settings.low_q)) - margin
        learned_high = float(np.searchsorted(cumulative, settings.high_q)) + margin
        return max(low, learned_low), min(high, learned_high)

    def mark_raised(self, alert: Alert) -> None:
        # Cleared once the window is back in range, or when the person leaves the bed.
        self._raised.add((alert.resident, alert.key))

    def on_any_reading(self, reading: Reading, device: Device) -> list[Event]:
        if device.kind is not DeviceKind.BED:
            return []
        resident = device.resident
        events: list[Event] = []
        occupied = reading.get("occupied")
        if isinstance(occupied, bool):
            self._occupied[resident] = occupied
            if not occupied:
                self._leave_bed(resident)
            else:
                self._left_at.pop(resident, None)
        if self._occupied.get(resident) is False:
            return events
        settings = self.settings_for(resident)
        now = self.clock.monotonic()
        for signal in ("hr", "rr"):
            value = reading.get(signal)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 < value < HISTOGRAM_BINS
            ):
                self.rejected += 1
                continue
            key = (resident, signal)
            window = self._windows.get(key)
            if window is None:
                most = max(settings.min_samples, math.ceil(MAX_SAMPLES_PER_S * settings.sustain_s))
                window = self._windows[key] = deque(maxlen=most)
            window.append((now, float(value)))
            while window and window[0][0] < now - settings.sustain_s:
                window.popleft()
            events.extend(self._judge(resident, signal, window, reading.t, settings))
        return events

    def _judge(
        self,
        resident: str,
        signal: str,
        window: deque[tuple[float, float]],
        t: float,
        settings: VitalsSettings,
    ) -> list[Event]:
        key = (resident, signal)
        low, high = self.limits(resident, signal)
        values = np.fromiter((v for _, v in window), dtype=float, count=len(window))
        if key not in self._raised:
            if settings.enabled and sustained_out_of_range(
                values, low, high, settings.min_samples, settings.min_fraction
            ):
                self._raised.add(key)
                details = {"signal": signal, "low": low, "high": high}
                return [self._event(resident, signal, t, EventAction.RAISE, details)]
            self._learn(resident, signal, values[-1])
            return []
        # Over once a window as long as a raise needs is mostly back in range (a window that
        # restarted, as after a gateway restart, is not judged on its first samples).
        if values.size >= settings.min_samples and not sustained_out_of_range(
            values, low, high, 1, settings.clear_fraction
        ):
            self._raised.discard(key)
            return [self._event(resident, signal, t, EventAction.CLEAR, {"signal": signal})]
        return []

    def _learn(self, resident: str, signal: str, value: float) -> None:
        counts = self.histogram(resident, signal)
        counts[min(round(value), counts.size - 1)] += 1  # 255.5 rounds to 256
        if int(counts.sum()) % 60 == 0:  # the store commits on its own schedule anyway
            self.store.put(f"{self.name}/{resident}/{signal}", counts.tolist())

    def _leave_bed(self, resident: str) -> None:
        """The window starts again; an open alert waits ``bed_leave_s`` (on_tick) before the
        person counts as up: a moment's "not occupied" is the sensor, not a recovery."""
        for signal in ("hr", "rr"):
            self._windows.pop((resident, signal), None)
        if any((resident, signal) in self._raised for signal in ("hr", "rr")):
            self._left_at.setdefault(resident, self.clock.monotonic())

    def on_tick(self) -> list[Event]:
        now = self.clock.monotonic()
        events: list[Event] = []
        for resident, left in list(self._left_at.items()):
            if now - left < self.settings_for(resident).bed_leave_s:
                continue
            del self._left_at[resident]
            t = self.wall_of(left)
            for signal in ("hr", "rr"):
                key = (resident, signal)
                if key in self._raised:
                    self._raised.discard(key)
                    details = {"signal": signal}
                    events.append(self._event(resident, signal, t, EventAction.CLEAR, details))
        return events

    def next_deadline(self) -> float | None:
        due = [at + self.settings_for(r).bed_leave_s for r, at in self._left_at.items()]
        return min(due) if due else None

    def _event(
        self,
        resident: str,
        signal: str,
        t: float,
        action: EventAction,
        details: Mapping[str, object],
    ) -> Event:
        return Event(
            type="vitals",
            resident=resident,
            t=t,
            severity=Severity.parse(self.settings_for(resident).severity),
            action=action,
            key=signal,
            details=details,
        )
