"""The fall detector shell: wristband readings in, ``fall`` events out.

Flow for one wristband (times in the device's own clock, deadlines on the injected monotonic
clock):

* acceleration batches are resampled onto the 50 Hz grid and written to the group's ring
  buffer (:class:`gateway.detection.fall.WristRing`); every :data:`GATE_PERIOD_S` the gate scans
  all wristbands at once for an impact candidate;
* :attr:`FallSettings.decision_s` after a candidate's impact (or, if the stream stops,
  ``stall_grace_s`` later with what arrived) its window is scored by the model
  (:meth:`FallModel.score_windows`: features, and sequences where the net is asked); candidates
  of all wristbands that are ready within :data:`DECISION_HOLD_S` of each other share one
  pass and one model call (never later than their alert is due);
* a fall is **raised** ``confirmation_s`` after the impact (``RAISE``), unless the wearer
  pressed cancel first; cancel within ``cancel_window_s`` of the alert withdraws it
  (``CANCEL``); still lying after ``long_lie_s`` without having moved for ``recovery_active_s``
  escalates it (``ESCALATE``, details ``reason: long_lie``);
* a wristband that is not worn (``worn: false``, ``hr: 0``, or ``options["worn"] = False``)
  raises nothing: a band dropped on the floor looks like an impact followed by stillness.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.clock import Clock
from gateway.detection import fall
from gateway.detection.band_clock import COUNTER_MODULO, WALL_STEP_S, BandClock, WallOffsets
from gateway.detection.fall_model import FallModel
from gateway.model import (
    Alert,
    AlertState,
    Device,
    DeviceKind,
    Event,
    EventAction,
    Reading,
    Severity,
)

log = logging.getLogger(__name__)

GATE_PERIOD_S = 0.2  # how often the vectorised gate runs while data is arriving
ACTIVE_G = 0.1  # | |a| - 1 g | above this counts as the arm moving (for recovery)
MAX_READING_SAMPLES = 10_000
RATE_MEMORY_S = 60.0  # the sampling-rate estimate forgets older batches over about this long
# A candidate whose stream stopped too soon after its impact to decide (a link lost at the
# fall) waits this long after the impact for the band to send the rest (a band flushing its
# buffer on reconnect): a late alert beats none.
LATE_DATA_S = 60.0
MIN_CONFIRMATION_S = 4.0
MAX_SAMPLE_SPACING_S = 1.0  # per sample, beyond a LATE_DATA_S gap: a longer batch is refused
DECISION_HOLD_S = 0.6
"""A candidate whose data is complete waits up to this long (at most half the stall grace, and
never past its alert time) for others, so that one feature pass and one model call serve many
wristbands. Its data, hence its decision, does not change while it waits."""
CLOCK_BACK_CONFIRM_S = 1.0  # see FallAlerts._behind
BRIDGE_RESUME_S = 5.0
"""A gap in a band's stream that ends at most this long after an impact under way is bridged
(see :meth:`FallAlerts._bridges_gap`): the 3 s or more of real samples up to ``POST_S`` show
whether the wearer lies still."""
OFF_WRIST_BEFORE_IMPACT_S = 5.0
"""An impact opens a candidate while the band reads as not worn only if it lost skin contact at
most this long before (the hit lifts the sensor): a band off the wrist for longer (on a table,
knocked to the floor, put on seconds later) opens none, as before."""
BURST_SCAN = 4 * round(fall.GRID_HZ)  # unscanned grid samples of a band that start a scan
_NEVER = 2**62  # a sample index no stream reaches


@dataclass(frozen=True, slots=True)
class FallSettings:
    """Operator settings of fall detection (defaults are the documented behaviour)."""

    confirmation_s: float = 9.0
    """Impact -> alert. The model looks up to ``POST_S`` (8 s) after the impact and decides
    ``stall_grace_s`` before the alert (the rest absorbs late BLE batches); a shorter window
    decides on less (down to 4 s of data at 5 s, the first-round behaviour). Within [4, 10]."""
    cancel_window_s: float = 30.0
    """After the alert is raised, the wearer's cancel withdraws it for this long."""
    long_lie_s: float = 120.0
    """Impact -> escalation if the wearer has not got up (no sustained movement)."""
    recovery_active_s: float = 8.0
    """Seconds of arm movement after the impact that mean the person got up (no escalation)."""
    stall_grace_s: float = 1.0
    """How long past the post-impact window to wait for late data before deciding with what
    arrived (at least ``MIN_POST_S`` after the impact is needed)."""
    threshold: float | None = None
    """Decision threshold on the model's probability; None keeps the model's own."""
    model_path: str | None = None
    """Another exported model (``fall_model.npz`` format); None uses the shipped one."""

    @property
    def decision_s(self) -> float:
        """Seconds of data after an impact that the model decides on: up to ``POST_S``, and
        ``stall_grace_s`` before the alert is due (never less than ``MIN_POST_S``)."""
        return max(fall.MIN_POST_S, min(fall.POST_S, self.confirmation_s - self.stall_grace_s))

    def __post_init__(self) -> None:
        if not MIN_CONFIRMATION_S <= self.confirmation_s <= 10.0:
            raise ValueError(f"confirmation_s must be within [{MIN_CONFIRMATION_S}, 10]")
        if self.cancel_window_s < 0 or self.long_lie_s <= self.confirmation_s:
            raise ValueError("cancel_window_s >= 0 and long_lie_s > confirmation_s required")
        if not 0.0 <= self.stall_grace_s <= self.confirmation_s - fall.MIN_POST_S:
            # a longer grace would decide a stalled candidate after its alert is due
            raise ValueError(
                f"stall_grace_s must be within [0, confirmation_s - {fall.MIN_POST_S:g}]"
            )


@dataclass(slots=True)
class _Candidate:
    impact: int  # sample index on the slot's grid
    t: float  # impact time, epoch (device clock)
    mono: float  # impact time on the monotonic clock
    segment_start: int  # first sample of the segment the impact belongs to
    segment_end: int | None = None  # the stream broke before the post window filled
    ready_at: float | None = None  # when it became ready to decide (waits for a batch)
    late: bool = False  # stalled with too little data: waiting for the rest (LATE_DATA_S)


@dataclass(slots=True)
class _Fall:
    t: float
    mono: float
    impact: int
    probability: float
    peak_g: float
    raised: bool = False
    raised_mono: float = 0.0
    cancelled: bool = False
    escalated: bool = False
    active_samples: int = 0
    # the raised falls (not cancelled) this one joined in the alert manager's one alert (each
    # within its repeat window of the one before): a press in their cancel windows withdraws
    # them all, and a press after one's window withdraws none (the one CANCEL would withdraw
    # that fall too)
    earlier: list[_Fall] = field(default_factory=list)


class _SlotTimes:
    """Per-slot stream clocks as arrays, so that batches for many wristbands update them in
    one step. NaN means "no sample yet"."""

    def __init__(self, capacity: int) -> None:
        self.next_grid_t = np.full(capacity, np.nan)
        self.last_t = np.full(capacity, np.nan)
        self.last_xyz = np.zeros((capacity, 3))
        self.mono_offset = np.zeros(capacity)

    def ensure(self, capacity: int) -> None:
        old = self.next_grid_t.shape[0]
        if capacity <= old:
            return
        extra = capacity - old
        self.next_grid_t = np.concatenate([self.next_grid_t, np.full(extra, np.nan)])
        self.last_t = np.concatenate([self.last_t, np.full(extra, np.nan)])
        self.last_xyz = np.concatenate([self.last_xyz, np.zeros((extra, 3))])
        self.mono_offset = np.concatenate([self.mono_offset, np.zeros(extra)])


@dataclass(slots=True)
class _Wrist:
    device: Device
    slot: int
    times: _SlotTimes
    worn: bool = True
    off_since: float = -math.inf  # monotonic: when it last read as not worn (see worn)
    wall_shift: float = 0.0  # wall-clock steps taken out of its fs-dated batches (see below)
    band_clock: BandClock | None = None  # dates batches by the band's sample counter
    wall_offset: float = 0.0  # wall minus monotonic clock its counted batches are dated with
    origin_t: float = 0.0  # epoch time of grid sample 0: sample k is at origin_t + k * GRID_DT
    segment_start: int = 0
    pending_from: int | None = None  # first sample above the gate not yet confirmed or not
    candidates: list[_Candidate] = field(default_factory=list)
    due_sample: int = _NEVER  # see FallAlerts._schedule
    due_mono: float = math.inf
    fall: _Fall | None = None
    resumed: bool = False  # made from a previous run's alert: ``device`` is a stand-in
    # batches dated >= 1 s before the stream (times, xyz, arrival): stale or a new timeline
    behind: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    # the band's own sampling rate (sample intervals / seconds, decaying), which sets its gate
    rate_intervals: float = 0.0
    rate_span_s: float = 0.0

    @property
    def busy(self) -> bool:
        return self.pending_from is not None or bool(self.candidates) or self.fall is not None

    @property
    def last_t(self) -> float | None:
        value = float(self.times.last_t[self.slot])
        return None if math.isnan(value) else value

    @property
    def next_grid_t(self) -> float:
        return float(self.times.next_grid_t[self.slot])

    @property
    def mono_offset(self) -> float:
        """Monotonic clock minus device time, from the latest batch."""
        return float(self.times.mono_offset[self.slot])


class FallAlerts:
    """Detector ``fall``: see the module docstring for the flow."""

    name = "fall"

    def __init__(
        self,
        clock: Clock,
        settings: FallSettings | None = None,
        model: FallModel | None = None,
        repeat_window_s: float = 60.0,
    ) -> None:
        """``repeat_window_s``: the alert manager's (a fall within it of the last one joins
        its alert)."""
        self.clock = clock
        self.settings = settings or FallSettings()
        self.repeat_window_s = repeat_window_s
        self.model = model or load_model(self.settings.model_path)
        self.threshold = (
            self.settings.threshold
            if self.settings.threshold is not None
            else self.model.decision_threshold
        )
        self._decision_s = self.settings.decision_s
        self._decision = round(self._decision_s * fall.GRID_HZ)
        self.ring = fall.WristRing()
        self._times = _SlotTimes(self.ring.capacity)
        self._wrists: dict[str, _Wrist] = {}
        self._by_slot: list[_Wrist] = []
        self._busy: set[int] = set()
        self._ready: list[tuple[_Wrist, _Candidate]] = []  # decided together, see _decide
        self._decide_at = math.inf
        self._hold_s = min(DECISION_HOLD_S, 0.5 * self.settings.stall_grace_s)
        # the last block's devices (the same sequence object, not mutated), their wrists and
        # whether they are slots 0..n-1 in that order
        self._block_wrists: tuple[Sequence[Device], list[_Wrist], bool] | None = None
        self._block_next_t: float | None = None
        self._dirty = False
        self._last_process = -math.inf
        self._wall_offsets = WallOffsets()  # the wall clocks of the last minute
        self._counted_slots: set[int] = set()  # bands dated by their sample counter
        # resident -> device -> its last cancel press (monotonic, when stamped)
        self._cancel_pressed: dict[str, dict[str, float]] = {}
        self._burst_events: list[Event] = []  # decided while a burst was written (_ingest)
        # how long after an impact a cancel still withdraws its fall (alert + cancel window)
        self._cancel_reach_s = self.settings.confirmation_s + self.settings.cancel_window_s
        self._wall_offsets.note(clock.monotonic(), clock.wall())
        self.counters: Counter[str] = Counter()

    # --- Detector protocol -------------------------------------------------------------------

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        events: list[Event] = []
        action = reading.get("action")
        if action == "cancel":
            events.extend(self._cancel(device, self._pressed_mono(reading)))
        if device.kind is not DeviceKind.WRISTBAND:
            return events
        wrist = self._wrist(device)
        self._update_worn(wrist, reading.values)
        if reading.get("acc") is not None:
            self._ingest(wrist, reading)
            events.extend(self._take_burst_events())
        if self.clock.monotonic() - self._last_process >= GATE_PERIOD_S:
            events.extend(self._process())
        return events

    def on_tick(self) -> list[Event]:
        return self._take_burst_events() + self._process()

    def _take_burst_events(self) -> list[Event]:
        """What the scans while a burst was written decided (see :meth:`_ingest`)."""
        events, self._burst_events = self._burst_events, []
        return events

    def on_grid_block(self, devices: Sequence[Device], t0: float, acc: np.ndarray) -> list[Event]:
        """Many wristbands at once, already on the 50 Hz grid: ``acc`` is ``(len(devices), k,
        3)`` in g, sample ``j`` at ``t0 + j / 50`` for every device (a simulator, a bridge that
        batches, the benchmark). Written to the ring in one vectorised step when the devices are
        the ring's slots in order and continue their streams; otherwise one by one."""
        block = np.asarray(acc, dtype=np.float64)
        if block.ndim != 3 or block.shape[0] != len(devices) or block.shape[2] != 3:
            self.counters["bad_reading:block_shape"] += 1
            return []
        k = block.shape[1]
        if k == 0 or k > fall.RING:
            self.counters["bad_reading:block_length"] += 1
            return []
        cached = self._block_wrists
        if cached is not None and cached[0] is devices:
            wrists, slots_in_order = cached[1], cached[2]
        else:
            wrists = [self._wrist(d) for d in devices]
            slots_in_order = all(w.slot == i for i, w in enumerate(wrists))
            self._block_wrists = (devices, wrists, slots_in_order)
        now = self.clock.monotonic()
        t_last = t0 + (k - 1) * fall.GRID_DT
        n = len(wrists)
        in_order = slots_in_order and n == self.ring.used
        times = self._times
        half = 0.5 * fall.GRID_DT
        follows = self._block_next_t  # every slot's next grid time, after block writes
        if not np.isfinite(block).all():
            # The per-band path drops non-finite samples (a NaN next to a peak would hide it).
            self.counters["bad_reading:non_finite_block"] += 1
            in_order = False
        continuing = in_order and follows is not None and abs(follows - t0) < half
        if in_order and not continuing:
            if np.isnan(times.last_t[:n]).all():
                for wrist in wrists:  # every stream starts here
                    self._new_segment(wrist, t0)
            continuing = bool((np.abs(times.next_grid_t[:n] - t0) < half).all())
        if continuing:
            if self._ready:
                self._decide_before_overwrite(None, k)
            self.ring.write_block(block)
            self._block_next_t = t_last + fall.GRID_DT
            times.next_grid_t[:n] = t_last + fall.GRID_DT
            times.last_t[:n] = t_last
            times.last_xyz[:n] = block[:, -1]
            times.mono_offset[:n] = now - t_last
            self.counters["samples"] += n * k
            self._dirty = True
            for slot in self._busy:
                f = self._by_slot[slot].fall
                if f is not None:
                    f.active_samples += _active_samples(block[slot])
            if int(self.ring.written[0] - self.ring.scan_from[0]) >= BURST_SCAN:
                self._burst_events.extend(self._process())  # blocks sent late, at once
        else:
            stamps = t0 + np.arange(k) * fall.GRID_DT
            for i, device in enumerate(devices):
                self._ingest(wrists[i], Reading(t0, device.id, {"acc": block[i], "ts": stamps}))
        events = self._take_burst_events()
        if now - self._last_process >= GATE_PERIOD_S:
            events.extend(self._process())
        return events

    def next_deadline(self) -> float | None:
        deadlines: list[float] = []
        if self._dirty:
            deadlines.append(self._last_process + GATE_PERIOD_S)
        s = self.settings
        if self._ready:
            deadlines.append(self._decide_at)
        for slot in self._busy:
            wrist = self._by_slot[slot]
            for cand in wrist.candidates:
                if cand.ready_at is None:
                    deadlines.append(self._stalls_at(cand))
            f = wrist.fall
            if f is None:
                continue
            if not f.raised:
                deadlines.append(f.mono + s.confirmation_s)
            elif not f.escalated and not f.cancelled:
                deadlines.append(f.mono + s.long_lie_s)
        return min(deadlines) if deadlines else None

    def deciding(self) -> bool:
        """Whether a possible fall is under way: samples over the gate not yet judged (also
        those the gate has not scanned yet: it looks every ``GATE_PERIOD_S``), an impact not
        yet decided, or a fall whose alert is not yet due (``DecidesSoon``)."""
        if self._dirty and self.ring.over_gate_unscanned():
            return True
        for slot in self._busy:
            wrist = self._by_slot[slot]
            if wrist.pending_from is not None or wrist.candidates:
                return True
            f = wrist.fall
            if f is not None and not f.raised and not f.cancelled:
                return True
        return False

    def diagnostics(self) -> dict[str, Any]:
        return {
            "wristbands": len(self._wrists),
            "not_worn": sorted(w.device.id for w in self._wrists.values() if not w.worn),
            "counters": dict(self.counters),
        }

    def is_worn(self, device_id: str) -> bool | None:
        wrist = self._wrists.get(device_id)
        return None if wrist is None else wrist.worn

    # --- input -------------------------------------------------------------------------------

    def resume(self, alert: Alert) -> bool:
        """An open fall alert of a previous run (the gateway restarted): watched again, so the
        wearer's cancel within its window withdraws it and a long lie still escalates it.

        The monotonic clock of that run is gone (a reboot restarts it), so the impact is
        placed on this run's by the wall clock (``occurred_t``: the latest fall of the alert),
        and the alert taken as raised at the earliest it could have been, ``confirmation_s``
        after it: the cancel window closes no later than it did (a press never withdraws an
        alert the old run would have kept). Movement is only seen from now on; an alert
        already escalated, or older than ``long_lie_s`` (the old run judged its long lie), is
        not escalated again. A wall clock behind the impact (no NTP yet after the reboot) says
        nothing of its age: no cancel window and no long-lie escalation (the fall may be hours
        old and its wearer long up; the alert stays open for staff, and the alert manager
        escalates it if nobody acknowledges it)."""
        if alert.type != self.name or not alert.key or alert.state.is_final:
            return False
        known = self._wrists.get(alert.key)
        if known is not None and (known.device.resident != alert.resident or known.fall):
            return False  # another resident's band now, or a fall of this run already
        wrist = self._wrist(Device(alert.key, DeviceKind.WRISTBAND, alert.resident))
        wrist.resumed = known is None
        s = self.settings
        now = self.clock.monotonic()
        impact_t = alert.occurred_t or alert.t
        if not isinstance(impact_t, int | float):
            impact_t = math.nan
        age = self.clock.wall() - impact_t
        age_known = math.isfinite(age) and age >= 0.0
        if not age_known:
            impact_mono, raised_mono = now, now - s.cancel_window_s - 1.0
        else:
            impact_mono = now - age
            raised_mono = impact_mono + s.confirmation_s
        wrist.fall = _Fall(
            impact_t,
            impact_mono,
            -1,
            0.0,  # probability and peak: only sent with the raise, which was
            0.0,
            raised=True,
            raised_mono=raised_mono,
            escalated=(alert.state is AlertState.ESCALATED or not age_known or age >= s.long_lie_s),
        )
        self._refresh_busy(wrist)
        self.counters["alerts_resumed"] += 1
        return True

    def _wrist(self, device: Device) -> _Wrist:
        wrist = self._wrists.get(device.id)
        if wrist is not None and wrist.resumed and wrist.device is not device:
            wrist.device, wrist.resumed = device, False  # the configured device, first heard
            if device.options.get("worn") is False:
                wrist.worn = False
        if wrist is None:
            slot = self.ring.add_slot()
            self._times.ensure(self.ring.capacity)
            wrist = _Wrist(device=device, slot=slot, times=self._times)
            self._block_next_t = None
            if device.options.get("worn") is False:
                wrist.worn = False
            self._wrists[device.id] = wrist
            self._by_slot.append(wrist)
        return wrist

    def _update_worn(self, wrist: _Wrist, values: Mapping[str, Any]) -> None:
        worn: bool | None = None
        if isinstance(values.get("worn"), bool):
            worn = values["worn"]
        elif isinstance(values.get("hr"), int | float) and not isinstance(values["hr"], bool):
            worn = values["hr"] > 0  # 0 bpm: the optical sensor has no skin contact
        if worn is None or worn == wrist.worn:
            return
        # Nothing stillness-based from a band that is off the wrist: a candidate (opened
        # whether the band is worn or not) or an unraised fall is judged on whether the band is
        # worn when it is decided and when its alert is due — not dropped at once, so that skin
        # contact lost for a moment during a fall, its impact included, does not erase it.
        wrist.worn = worn
        if not worn:
            wrist.off_since = self.clock.monotonic()
        self.counters["worn_changes"] += 1

    def _bad(self, reason: str, device: Device) -> None:
        self.counters[f"bad_reading:{reason}"] += 1
        log.debug("fall: skipped a reading from %s: %s", device.id, reason)

    def _sample_times(self, wrist: _Wrist, reading: Reading, n: int) -> np.ndarray | None:
        """Each sample's time: the reading's own ``ts``; else the band's sample counter
        (``seq``) at ``fs``; else ``fs`` from the reading's time. An empty array: a batch
        already dated (a duplicate); None: no way to date it."""
        ts = reading.get("ts")
        if ts is not None:
            try:
                times = np.asarray(ts, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                return None
            if times.size != n:
                return None
            if abs(times[0] - reading.t) > 1e5 and abs(times[0]) < 1e5:
                times = reading.t + times  # small offsets from the reading's time
            return times
        fs = reading.get("fs")
        if not (isinstance(fs, int | float) and not isinstance(fs, bool) and 1.0 <= fs <= 5000.0):
            return None
        offsets = np.arange(n) / float(fs)
        seq = reading.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < COUNTER_MODULO:
            return self._counter_times(wrist, reading.t + offsets[-1], seq, float(fs), offsets)
        if seq is not None:
            self._bad("seq", wrist.device)  # still dated by its rate: its samples are good
        times = reading.t + offsets
        return times if wrist.last_t is None else self._follow_wall_step(wrist, times)

    def _counter_times(
        self, wrist: _Wrist, arrived_wall: float, seq: int, fs: float, offsets: np.ndarray
    ) -> np.ndarray:
        """Dated by the band's sample counter (:mod:`gateway.detection.band_clock`): batches
        the host handed over late or together keep their places. ``arrived_wall`` is the
        driver's stamp; how long ago that was (the pipeline may be behind) is read on the
        wall clock, and a wall-clock step (NTP) is taken in by re-dating the band's history,
        so a stream, and a fall under way, is never cut by one."""
        now = self.clock.monotonic()
        wall_offset = self._wall_offsets.note(now, self.clock.wall())
        band = wrist.band_clock
        if band is None:
            band = wrist.band_clock = BandClock(self.counters)
            wrist.wall_offset = wall_offset
            self._counted_slots.add(wrist.slot)
        else:
            self._follow_wall_clock(wrist, wall_offset)
        waited = self._wall_offsets.waited(now, arrived_wall, wrist.wall_offset, offsets[-1])
        first = band.first_sample(seq, offsets.size, fs, now - waited)
        if first is None:
            return offsets[:0]
        return first + wrist.wall_offset + offsets

    def _follow_wall_clock(self, wrist: _Wrist, wall_offset: float) -> None:
        """Take a wall-clock step in for a counted band (see :meth:`_redate`)."""
        if abs(wall_offset - wrist.wall_offset) <= WALL_STEP_S:
            return
        self._redate(wrist, wall_offset - wrist.wall_offset)
        wrist.wall_offset = wall_offset
        self.counters["wall_steps_taken"] += 1

    def _redate(self, wrist: _Wrist, step: float) -> None:
        """Move a band's history by a wall-clock step: its grid, stream clock and the
        impacts not yet alerted (an alert already raised keeps the time it was sent with)."""
        slot = wrist.slot
        wrist.origin_t += step
        self._times.last_t[slot] += step
        self._times.next_grid_t[slot] += step
        self._times.mono_offset[slot] -= step
        for cand in wrist.candidates:
            cand.t += step
        if wrist.fall is not None and not wrist.fall.raised:
            wrist.fall.t += step
        self._block_next_t = None

    def _ingest(self, wrist: _Wrist, reading: Reading) -> None:
        try:
            xyz = np.asarray(reading.get("acc"), dtype=np.float64)
        except (TypeError, ValueError):
            self._bad("acc_not_numeric", wrist.device)
            return
        if xyz.ndim != 2 or xyz.shape[1] != 3 or xyz.shape[0] == 0:
            self._bad("acc_shape", wrist.device)
            return
        if xyz.shape[0] > MAX_READING_SAMPLES:
            self._bad("acc_too_long", wrist.device)
            return
        if not isinstance(reading.t, int | float) or not math.isfinite(reading.t):
            self._bad("bad_time", wrist.device)
            return
        times = self._sample_times(wrist, reading, xyz.shape[0])
        if times is None:
            self._bad("no_rate_or_ts", wrist.device)
            return
        if times.size == 0:
            return  # the batch just had, sent again
        times, xyz = fall.clean_times(times, xyz)
        if times.size == 0:
            self._bad("no_valid_samples", wrist.device)
            return
        if times[-1] - times[0] > MAX_SAMPLE_SPACING_S * times.size + LATE_DATA_S:
            # a band's batch is contiguous (a gap inside it at most a lost link's); spread over
            # hours it would be resampled onto millions of grid points (a 46-byte message
            # could take gigabytes)
            self._bad("ts_span", wrist.device)
            return
        self.counters["readings"] += 1
        self.counters["samples"] += int(times.size)
        self._block_next_t = None
        slot = wrist.slot
        last_t = wrist.last_t
        if last_t is not None and times[-1] <= last_t - 1.0:
            timeline = self._behind(wrist, times, xyz)
            if timeline is None:
                return
            times, xyz = timeline
            self._new_segment(wrist, float(times[0]))
        elif last_t is not None:
            if wrist.behind:
                self._drop_behind(wrist)  # the stream went on where it was: they were stale
            gap = times[0] - last_t > fall.MAX_GAP_S
            if gap and self._bridges_gap(wrist, float(times[0])):
                gap = False
                self.counters["gaps_bridged_after_impact"] += 1
            if gap:
                self._new_segment(wrist, float(times[0]))
            else:
                keep = times > last_t
                times, xyz = times[keep], xyz[keep]
                if times.size == 0:
                    return
                times = np.concatenate([[last_t], times])
                xyz = np.concatenate([self._times.last_xyz[slot][None, :], xyz])
        else:
            self._new_segment(wrist, float(times[0]))
        self._track_rate(wrist, times)
        samples, next_t = fall.resample_onto_grid(times, xyz, wrist.next_grid_t)
        self._times.next_grid_t[slot] = next_t
        # device time -> monotonic: exact for a counted band (its samples are dated on the
        # monotonic clock, even in a flushed buffer), else as if the last sample came now
        counted = wrist.band_clock is not None
        now = self.clock.monotonic()
        self._times.mono_offset[slot] = -wrist.wall_offset if counted else now - times[-1]
        for piece in self._pieces(wrist, samples):
            if self._ready:
                self._decide_before_overwrite(wrist, piece.shape[0])
            if wrist.fall is not None and piece.shape[0]:
                wrist.fall.active_samples += _active_samples(piece)
            self.ring.write(slot, piece)
            self._ready_late(wrist)
            if self.ring.written[slot] - self.ring.scan_from[slot] >= BURST_SCAN:
                # faster than real time (a buffer flushed at once): scan and decide as the
                # data comes, before the ring's 16 s are written over an impact in it
                self._burst_events.extend(self._process(flushing=wrist))
        self._times.last_t[slot] = times[-1]
        self._times.last_xyz[slot] = xyz[-1]
        self._dirty = True

    def _follow_wall_step(self, wrist: _Wrist, times: np.ndarray) -> np.ndarray:
        """A batch dated by its rate alone (``fs``) takes its time from whoever stamped the
        reading: on the Pi the BLE driver, with the wall clock on arrival, which NTP may step
        by hours. While the monotonic clock says the stream went on (the last batch came at
        most ``MAX_GAP_S`` ago), a jump of the batch's time against it is the wall clock's,
        not a gap in the data: the batch is re-dated to follow on, so that a fall spanning
        the step is not cut in two."""
        now = self.clock.monotonic()
        last_t = wrist.last_t
        assert last_t is not None
        if now - (wrist.mono_offset + last_t) > fall.MAX_GAP_S:
            wrist.wall_shift = 0.0  # a real pause: the gap logic decides, on the clock as it is
            return times
        times = times - wrist.wall_shift
        step = float(times[-1]) - (now - wrist.mono_offset)
        if abs(step) > WALL_STEP_S:
            self.counters["wall_steps_followed"] += 1
            wrist.wall_shift += step
            times = times - step
        return times

    def _track_rate(self, wrist: _Wrist, times: np.ndarray) -> None:
        wrist.rate_intervals += times.size - 1
        wrist.rate_span_s += float(times[-1] - times[0])
        if wrist.rate_span_s > RATE_MEMORY_S:
            wrist.rate_intervals *= 0.5
            wrist.rate_span_s *= 0.5
        if wrist.rate_span_s >= 1.0:
            rate = wrist.rate_intervals / wrist.rate_span_s
            self.ring.gate_g[wrist.slot] = fall.gate_level(rate)

    def _behind(
        self, wrist: _Wrist, times: np.ndarray, xyz: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """A batch dated 1 s or more before the stream's last sample: a stale one (a message
        delivered again, reordered) or the band's clock gone back (a reboot, a reconnect).
        Held, not written: a stale batch is dropped when the stream goes on where it was
        (:meth:`_drop_behind`); a new timeline is taken (the held samples and the batch, as a
        new segment) once it has gone on for ``CLOCK_BACK_CONFIRM_S`` of its own time, arriving
        over at least half that long (stale batches delivered again come together). Taking
        every such batch for a clock jump cut the stream twice, and a fall near it was lost."""
        now = self.clock.monotonic()
        held = wrist.behind
        if held and not 0.0 < times[0] - held[-1][0][-1] <= fall.MAX_GAP_S:
            self._drop_behind(wrist)  # does not continue them: they were stale
        held.append((times, xyz, now))
        span_t = float(times[-1] - held[0][0][0])
        if span_t >= CLOCK_BACK_CONFIRM_S and now - held[0][2] >= 0.5 * CLOCK_BACK_CONFIRM_S:
            wrist.behind = []
            self.counters["clock_jumps_back"] += 1
            return np.concatenate([h[0] for h in held]), np.concatenate([h[1] for h in held])
        if sum(h[0].size for h in held) > MAX_READING_SAMPLES:
            self._drop_behind(wrist)
        return None

    def _drop_behind(self, wrist: _Wrist) -> None:
        self.counters["stale_batches"] += len(wrist.behind)
        wrist.behind = []

    def _bridges_gap(self, wrist: _Wrist, resume_t: float) -> bool:
        """Whether a gap in the stream (a link lost, its samples never sent again) that ends
        at ``resume_t`` is bridged by interpolation instead of starting a new segment: only
        while an impact is under way, above the gate or a candidate short of its decision data,
        and only if the stream is back by ``BRIDGE_RESUME_S`` after that impact, so that the
        model still sees how the arm lay (features from 4 s on) on real samples. A new segment
        there cut the candidate off at the gap, with too little data after it to decide: a
        fall at which the link dropped for 1.2 s or more was never alerted."""
        slot = wrist.slot
        written = int(self.ring.written[slot])
        impacts = [
            c.impact
            for c in wrist.candidates
            if c.segment_end is None and c.impact + self._decision > written
        ]
        if wrist.pending_from is not None:
            impacts.append(wrist.pending_from)
        unscanned = max(int(self.ring.scan_from[slot]), written - fall.RING, wrist.segment_start)
        if unscanned < written and wrist.worn:  # written before the gate ran on them
            mag = self.ring.magnitudes(slot, unscanned, written)
            above = np.flatnonzero(mag > float(self.ring.gate_g[slot]))
            if above.size:
                impacts.append(unscanned + int(above[0]))
        if not impacts:
            return False
        return resume_t <= wrist.origin_t + min(impacts) * fall.GRID_DT + BRIDGE_RESUME_S

    def _new_segment(self, wrist: _Wrist, t0: float) -> None:
        """First batch, or the stream resumed after a gap / a clock jump (reconnect): the grid
        restarts at ``t0`` and nothing before it is used as context."""
        self._block_next_t = None
        written = int(self.ring.written[wrist.slot])
        if wrist.last_t is not None:
            self.counters["segments_restarted"] += 1
            for cand in wrist.candidates:
                if cand.segment_end is None:
                    cand.segment_end = written
            self._schedule(wrist)
            if wrist.pending_from is not None:
                # Impacts confirmed only now (within PEAK_HALF of the gap) get no segment end:
                # deciding them on what follows the gap is better than dropping them as
                # incomplete (a band that lost samples right at a fall must still alert).
                self._confirm_impacts(wrist, written)
                wrist.pending_from = None  # the last PEAK_HALF samples can never be confirmed
        wrist.segment_start = written
        wrist.origin_t = t0 - written * fall.GRID_DT
        self._times.next_grid_t[wrist.slot] = t0

    # --- processing --------------------------------------------------------------------------

    def _process(self, flushing: _Wrist | None = None) -> list[Event]:
        """The gate, candidates, decisions and alert flow for every band. ``flushing``: a band
        whose burst is being written (the rest of it is not there yet, so its candidates are
        not stalled)."""
        now = self.clock.monotonic()
        self._last_process = now
        self._dirty = False
        wall_offset = self._wall_offsets.note(now, self.clock.wall())
        # a counted band gone silent after an impact: date its alert on the wall clock as it
        # is, too
        for slot in self._busy & self._counted_slots:
            self._follow_wall_clock(self._by_slot[slot], wall_offset)
        for hit in self.ring.gate():
            # a band that lost skin contact just before opens candidates too: they are judged
            # on whether it is worn when they are decided and when the alert is due (contact
            # lost for a moment across the impact must not lose the fall)
            wrist = self._by_slot[hit.slot]
            if not wrist.worn and (
                wrist.origin_t + hit.crossing * fall.GRID_DT + wrist.mono_offset
                > wrist.off_since + OFF_WRIST_BEFORE_IMPACT_S
            ):
                # off the wrist for longer: a band knocked off a table and put on seconds
                # later looks like a fall
                self.counters["impacts_not_worn"] += 1
                continue
            if wrist.pending_from is None:
                wrist.pending_from = hit.crossing
            self._busy.add(hit.slot)
        events: list[Event] = []
        attend: set[int] = set()  # slots whose state may change in this tick
        urgent = False  # a stalled or broken-off candidate: decide now, with what arrived
        for slot in sorted(self._busy):
            wrist = self._by_slot[slot]
            written = int(self.ring.written[slot])
            # most busy wrists wait for their candidate's data: skip them in O(1)
            if wrist.pending_from is None and not (
                written >= wrist.due_sample or now >= wrist.due_mono
            ):
                if wrist.fall is not None:
                    attend.add(slot)
                continue
            attend.add(slot)
            if wrist.pending_from is not None:
                self._confirm_impacts(wrist, written)
            if written < wrist.due_sample and now < wrist.due_mono:
                continue
            for cand in wrist.candidates:
                if cand.ready_at is not None:
                    continue
                end = written if cand.segment_end is None else cand.segment_end
                complete = end >= cand.impact + self._decision
                stalled = now >= self._stalls_at(cand) and wrist is not flushing
                if complete or stalled or cand.segment_end is not None:
                    if not self._ready:
                        self._decide_at = now + self._hold_s
                    # never past its alert time (its data may have come late)
                    due = cand.mono + self.settings.confirmation_s
                    self._decide_at = min(self._decide_at, due)
                    cand.ready_at = now
                    self._ready.append((wrist, cand))
                    urgent = urgent or not complete or cand.segment_end is not None
            self._schedule(wrist)
        if self._ready and (urgent or now >= self._decide_at):
            attend.update(self._decide())
        for slot in sorted(attend):
            wrist = self._by_slot[slot]
            events.extend(self._advance_fall(wrist, now))
            self._refresh_busy(wrist)
        return events

    def _decide(self) -> set[int]:
        """Score every ready candidate in one feature pass and one model call; returns the
        slots concerned."""
        batch: list[tuple[_Wrist, _Candidate, int, int]] = []
        for wrist, cand in self._ready:
            wrist.candidates.remove(cand)
            written = int(self.ring.written[wrist.slot])
            end = written if cand.segment_end is None else cand.segment_end
            span = self._held_span(cand, end, written)
            if span is not None:
                batch.append((wrist, cand, *span))
            elif (
                not cand.late
                and cand.segment_end is None
                and (written - fall.RING <= cand.impact - fall.PRE)
            ):
                cand.late, cand.ready_at = True, None  # the band may still send the rest
                wrist.candidates.append(cand)
                self._schedule(wrist)
                self.counters["candidates_waiting_for_data"] += 1
            else:
                self.counters["candidates_incomplete"] += 1
        slots = {w.slot for w, _ in self._ready}
        self._ready = []
        if batch:
            feats, probs = self._score(batch)
            self.counters["candidates_scored"] += len(batch)
            for (wrist, cand, _, _), row, p in zip(batch, feats, probs, strict=True):
                if p < self.threshold or not wrist.worn:
                    continue
                open_fall = wrist.fall
                earlier: list[_Fall] = []
                if open_fall is not None:
                    if cand.mono < open_fall.mono + self.settings.confirmation_s:
                        continue  # an impact of the same fall (a bounce, a second hit)
                    # Fell again after the alert (got up and fell, or fell further): a new
                    # incident with its own alert, cancel window and long-lie clock.
                    self.counters["falls_while_open"] += 1
                    if (
                        open_fall.raised
                        and not open_fall.cancelled
                        and abs(cand.t - open_fall.t) <= self.repeat_window_s
                    ):
                        # joins its alert in the manager (later: an alert of its own)
                        earlier = [f for f in open_fall.earlier if not f.cancelled]
                        earlier.append(open_fall)
                        open_fall.earlier = []  # only the band's open fall is looked at
                self.counters["falls_detected"] += 1
                wrist.fall = _Fall(cand.t, cand.mono, cand.impact, float(p), float(row[0]))
                wrist.fall.earlier = earlier
                presses = self._cancel_pressed.get(wrist.device.resident, {})
                if any(
                    by != wrist.device.id and 0.0 <= pressed - cand.mono <= self._cancel_reach_s
                    for by, pressed in presses.items()
                ):
                    # pressed after the impact on another device (a pendant on its own link)
                    # before the band's data of its fall came, within the time it would have
                    # withdrawn the alert: the wearer said so. Not the band's own press: one
                    # it re-sends on reconnecting has no time of its own, and may predate the
                    # impact
                    wrist.fall.cancelled = True
                    self.counters["cancelled_before_its_data"] += 1
        return slots

    def _decide_before_overwrite(self, wrist: _Wrist | None, count: int) -> None:
        """Before ``count`` more samples are written for ``wrist`` (None: every slot, a block):
        if they would overwrite part of a held candidate's window in the ring (a backlog flushed
        faster than real time), decide the held candidates now, with the data they were ready
        on. Without this, a fall flushed at >= ~15x real time was dropped as incomplete."""
        for held, cand in self._ready:
            if wrist is not None and held is not wrist:
                continue
            if int(self.ring.written[held.slot]) + count > cand.impact - fall.PRE + fall.RING:
                for slot in self._decide():
                    self._refresh_busy(self._by_slot[slot])
                return

    def _pieces(self, wrist: _Wrist, samples: np.ndarray) -> list[np.ndarray]:
        """``samples`` cut where they complete a candidate waiting for late data, so that it
        is made ready (:meth:`_ready_late`) before the rest of a fast flush is written over
        its window, and every ``BURST_SCAN`` samples not yet scanned, so that a flush longer
        than the ring is scanned before an impact in it is written over."""
        n = samples.shape[0]
        written = int(self.ring.written[wrist.slot])
        ends = {c.impact + self._decision - written for c in wrist.candidates if c.late}
        unscanned = written - int(self.ring.scan_from[wrist.slot])
        ends.update(range(max(BURST_SCAN - unscanned, 1), n, BURST_SCAN))
        cuts = sorted(cut for cut in ends if 0 < cut < n)
        return np.split(samples, cuts) if cuts else [samples]

    def _ready_late(self, wrist: _Wrist) -> None:
        written = int(self.ring.written[wrist.slot])
        for cand in wrist.candidates:
            if cand.late and cand.ready_at is None and written >= cand.impact + self._decision:
                now = self.clock.monotonic()
                self._decide_at = now if not self._ready else min(self._decide_at, now)
                cand.ready_at = now
                self._ready.append((wrist, cand))
                self._busy.add(wrist.slot)

    def _stalls_at(self, cand: _Candidate) -> float:
        """When the candidate is decided with whatever arrived."""
        if cand.late:
            return cand.mono + LATE_DATA_S
        return cand.mono + self._decision_s + self.settings.stall_grace_s

    def _schedule(self, wrist: _Wrist) -> None:
        """When the wrist's candidates next need a look: the first sample that completes one,
        the time one stalls; at once for a candidate whose segment ended."""
        cands = [c for c in wrist.candidates if c.ready_at is None]
        if any(c.segment_end is not None for c in cands):
            wrist.due_sample, wrist.due_mono = -1, -math.inf
        elif cands:
            wrist.due_sample = min(c.impact for c in cands) + self._decision
            wrist.due_mono = min(self._stalls_at(c) for c in cands)
        else:
            wrist.due_sample, wrist.due_mono = _NEVER, math.inf

    def _confirm_impacts(self, wrist: _Wrist, written: int) -> None:
        """Turn samples above the gate that now have ``PEAK_HALF`` samples after them into
        candidates (those that are impacts), keeping the rest pending."""
        lo = wrist.pending_from
        assert lo is not None
        slot = wrist.slot
        lo = max(lo, written - fall.RING + fall.PEAK_HALF, wrist.segment_start)
        hi = written - fall.PEAK_HALF
        if hi <= lo:
            return
        first = max(lo - fall.PEAK_HALF, wrist.segment_start, written - fall.RING)
        mag = self.ring.magnitudes(slot, first, written)
        gate = float(self.ring.gate_g[slot])
        for index in fall.impacts_in(mag, lo - first, hi - first, gate=gate):
            impact = index + first
            t = wrist.origin_t + impact * fall.GRID_DT
            wrist.candidates.append(
                _Candidate(impact, t, t + wrist.mono_offset, wrist.segment_start)
            )
            self.counters["candidates"] += 1
        still_above = np.flatnonzero(mag[hi - first :] > gate)
        wrist.pending_from = hi + int(still_above[0]) if still_above.size else None
        self._schedule(wrist)

    def _held_span(self, cand: _Candidate, end: int, written: int) -> tuple[int, int] | None:
        """The samples ``[start, stop)`` the candidate is decided on, or None when the ring
        does not hold its impact or too little after it."""
        stop = min(end, cand.impact + self._decision)
        if stop - cand.impact < fall.MIN_POST:
            return None
        start = max(cand.impact - fall.PRE, cand.segment_start, written - fall.RING, 0)
        if start > cand.impact or stop <= start:
            return None
        return start, stop

    def _score(
        self, ready: Sequence[tuple[_Wrist, _Candidate, int, int]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features and fall probability of every candidate decided in this tick, in one pass
        over the ring."""
        slots = np.array([r[0].slot for r in ready], dtype=np.int64)
        impacts = np.array([r[1].impact for r in ready], dtype=np.int64)
        starts = np.array([r[2] for r in ready], dtype=np.int64)
        stops = np.array([r[3] for r in ready], dtype=np.int64)

        def windows(rows: np.ndarray, before: int, after: int) -> np.ndarray:
            return self.ring.windows(slots[rows], impacts[rows], before, after)

        return self.model.score_windows(windows, starts, impacts, stops)

    def _advance_fall(self, wrist: _Wrist, now: float) -> list[Event]:
        f = wrist.fall
        if f is None:
            return []
        s = self.settings
        events: list[Event] = []
        if not f.raised:
            if f.cancelled:
                wrist.fall = None
                return []
            if now >= f.mono + s.confirmation_s:
                if not wrist.worn:
                    self.counters["not_worn_at_alert"] += 1
                    wrist.fall = None  # off the wrist when its alert is due: a band put down
                    return []
                f.raised, f.raised_mono = True, float(now)
                self.counters["alerts_raised"] += 1
                events.append(
                    self._event(
                        wrist,
                        EventAction.RAISE,
                        {
                            "probability": round(f.probability, 3),
                            "peak_g": round(f.peak_g, 2),
                            "confirmation_s": s.confirmation_s,
                        },
                    )
                )
        if f.raised and not f.escalated and not f.cancelled and now >= f.mono + s.long_lie_s:
            moved_s = f.active_samples / fall.GRID_HZ
            if wrist.worn and moved_s < s.recovery_active_s:
                f.escalated = True
                self.counters["alerts_escalated"] += 1
                events.append(
                    self._event(
                        wrist,
                        EventAction.ESCALATE,
                        {"reason": "long_lie", "lying_s": round(float(now - f.mono), 1)},
                        severity=Severity.CRITICAL,
                    )
                )
            else:
                f.escalated = True  # got up or took the band off: nothing to escalate
                self.counters["long_lie_not_escalated"] += 1
        cancel_over = f.raised and now >= f.raised_mono + s.cancel_window_s
        if f.cancelled or (f.escalated and cancel_over):
            wrist.fall = None  # this incident needs nothing more from the detector
        return events

    def _pressed_mono(self, reading: Reading) -> float:
        """When a press was stamped, on the monotonic clock (the pipeline may be behind)."""
        now = self.clock.monotonic()
        if not isinstance(reading.t, int | float) or not math.isfinite(reading.t):
            return now
        offset = self._wall_offsets.note(now, self.clock.wall())
        # never after it was handled (a stamp ahead of the gateway's clock)
        return now - max(0.0, self._wall_offsets.waited(now, reading.t, offset, 0.0))

    def _cancel(self, device: Device, pressed_mono: float) -> list[Event]:
        """The wearer (or a button of the same resident) pressed cancel."""
        events: list[Event] = []
        now = self.clock.monotonic()
        self._cancel_pressed.setdefault(device.resident, {})[device.id] = pressed_mono
        for wrist in self._wrists.values():
            if wrist.device.id != device.id and wrist.device.resident != device.resident:
                continue
            self._drop_candidates(wrist, pressed_mono)
            if wrist.fall is None:
                continue
            withdrawn: _Fall | None = None
            for f in (wrist.fall, *wrist.fall.earlier):
                if f.cancelled:
                    continue
                if f.mono > pressed_mono:
                    # pressed before the impact (handled late): it cancels nothing after it
                    self.counters["cancel_before_impact"] += 1
                elif not f.raised:
                    f.cancelled = True
                    self.counters["cancelled_before_alert"] += 1
                elif now <= f.raised_mono + self.settings.cancel_window_s:
                    f.cancelled = True
                    withdrawn = withdrawn or f
                else:
                    self.counters["cancel_too_late"] += 1
            current = wrist.fall
            if withdrawn is not None and any(not f.cancelled for f in current.earlier):
                # an earlier fall's cancel window closed without a press: the one CANCEL
                # would withdraw it too (the manager joined them into one alert). A raised
                # later fall stays raised, its long lie standing for all
                if withdrawn is current:
                    current.cancelled = False
                withdrawn = None
                self.counters["cancel_kept_for_earlier_fall"] += 1
            if withdrawn is not None and withdrawn is not current and current.raised:
                # the later fall, after the press, was raised into the same alert (falls
                # within the manager's repeat window join it): withdrawing it would withdraw
                # that fall too
                self.counters["cancel_kept_for_later_fall"] += 1
            elif withdrawn is not None:
                # one CANCEL: the manager keeps one open fall alert per band (falls within
                # its repeat window join it), which it withdraws
                self.counters["alerts_cancelled"] += 1
                events.append(self._event(wrist, EventAction.CANCEL, {"by": "resident"}, withdrawn))
            if not current.cancelled:
                current.earlier = [f for f in current.earlier if not f.cancelled]
            self._refresh_busy(wrist)
        return events

    def _drop_candidates(self, wrist: _Wrist, pressed_mono: float) -> None:
        """A press cancels the impacts before it, not those after it (a press handled late)."""

        def after(cand: _Candidate) -> bool:
            return cand.mono > pressed_mono

        if any(w is wrist for w, _ in self._ready):
            self._ready = [(w, c) for w, c in self._ready if w is not wrist or after(c)]
        wrist.candidates = [c for c in wrist.candidates if after(c)]
        if wrist.pending_from is not None:
            pending_t = wrist.origin_t + wrist.pending_from * fall.GRID_DT
            if pending_t + wrist.mono_offset <= pressed_mono:
                wrist.pending_from = None
        self._schedule(wrist)

    def _event(
        self,
        wrist: _Wrist,
        action: EventAction,
        details: dict[str, Any],
        fall_: _Fall | None = None,
        severity: Severity = Severity.CRITICAL,
    ) -> Event:
        fall_ = fall_ or wrist.fall
        assert fall_ is not None
        return Event(
            type="fall",
            resident=wrist.device.resident,
            t=fall_.t,
            severity=severity,
            action=action,
            device=wrist.device.id,
            key=wrist.device.id,
            details=details,
        )

    def _refresh_busy(self, wrist: _Wrist) -> None:
        if wrist.busy:
            self._busy.add(wrist.slot)
        else:
            self._busy.discard(wrist.slot)


def _active_samples(samples: np.ndarray) -> int:
    """Grid samples ``(k, 3)`` in which the arm moves (towards recovery after a fall)."""
    mag = np.linalg.norm(samples, axis=1)
    return int(np.count_nonzero(np.abs(mag - 1.0) > ACTIVE_G))


_MODEL_CACHE: dict[str, FallModel] = {}


def _default_model() -> str:
    from gateway.detection.fall_model import DEFAULT_MODEL_PATH

    return str(DEFAULT_MODEL_PATH)


def load_model(path: str | None = None) -> FallModel:
    """The model at ``path`` (default: the shipped one), loaded once per process."""
    key = path or _default_model()
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = FallModel.load(key)
    return _MODEL_CACHE[key]
