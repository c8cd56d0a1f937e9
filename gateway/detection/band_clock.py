"""Dating a wristband's batches by its own sample counter (pure state, one per band).

A band numbers its samples: ``seq`` is the counter of a batch's first sample, wrapping at
2**32 (docs/devices/wristband.md). The gateway stamps each notification with the time it was
handed over, which is late by however long the host took: a Pi whose event loop stalled for
0.2 s (an SD-card write, a garbage collection) delivers two notifications at once, and dated
on arrival they overlap, so the second one's samples look like a repeat and are dropped — a
fall's impact among them is lost. Dated by the counter, every sample keeps its place:
``first = next + ahead / fs``, where ``ahead`` is how far the counter moved past the samples
already dated (0 normally, the lost samples after a gap).

Arrival only anchors the count and bounds it, since no sample arrives before it was taken:

* counter time later than arrival (a band a little faster than its nominal rate, or an
  anchor taken from a late arrival) is pulled back to the arrival;
* the smallest lag of arrival behind counter time over :data:`DRIFT_WINDOW_S` is taken out at
  the window's end (a band a little slower than nominal), so the dating never falls more than
  two windows of its drift behind (4 ms for a crystal 100 ppm slow); a buffer the band
  flushes after a reconnect catches up within the window and keeps its own times;
* a lag beyond :data:`MAX_LAG_S` starts a new count at the arrival, and so does a counter
  that steps back (the band restarted), and a lag after lost samples (the band does not send
  what it missed, so the batch after a gap is live): beyond :data:`RECONNECT_LAG_S` after a
  reconnect (more than :data:`RECONNECT_S` lost: a slightly slow band is seconds behind after
  minutes away), beyond :data:`GAP_LAG_S` after a notification lost in the air (the batch
  after it may come late with others a stalled host handed over together); the very batch
  just dated, sent again, is a duplicate.

Times are on the monotonic clock; the caller turns them into wall time (and follows the
wall clock's steps: the Pi has no real-time clock). :class:`WallOffsets` tells how long ago a
driver stamped a batch on the wall clock, across those steps.
"""

from __future__ import annotations

from collections import Counter

COUNTER_MODULO = 2**32
DRIFT_WINDOW_S = 20.0
MAX_LAG_S = 60.0
GAP_LAG_S = 3.0  # above the event-loop stalls a Pi has (an SD-card write, a swap-in)
RECONNECT_S = 2.0  # lost samples spanning more than this: the band was away, not one lost batch
RECONNECT_LAG_S = 1.0  # ...and its first batch back is live: a lag beyond this is its clock's
STAMP_TOLERANCE_S = 0.01  # a driver's stamp read back on the same clock is this exact
# The wall clock moving this much against the monotonic one is a step (NTP; the Pi has no
# real-time clock): above the delivery jitter of a band that stamps its own batches.
WALL_STEP_S = 1.0


class BandClock:
    """Maps one band's sample counter onto the monotonic clock; see the module docstring."""

    __slots__ = ("_counters", "_last_seq", "_min_lag", "_next_mono", "_next_seq", "_window_end")

    def __init__(self, counters: Counter[str]) -> None:
        self._counters = counters
        self._next_seq: int | None = None  # counter of the next sample expected
        self._next_mono = 0.0  # its time on the monotonic clock
        self._last_seq: int | None = None
        self._min_lag = float("inf")
        self._window_end = 0.0

    def first_sample(self, seq: int, n: int, fs: float, arrived_mono: float) -> float | None:
        """Monotonic time of the first of ``n`` samples at ``fs`` Hz numbered from ``seq``,
        whose notification arrived at ``arrived_mono`` (the time of its *last* sample at the
        latest); None for a duplicate of the batch just dated."""
        latest = arrived_mono - (n - 1) / fs  # the first sample cannot be later than this
        expected = self._next_seq
        if expected is None:
            return self._anchor(seq, n, fs, latest, arrived_mono)
        ahead = (seq - expected) % COUNTER_MODULO
        if ahead >= COUNTER_MODULO // 2:
            if seq == self._last_seq and (seq + n) % COUNTER_MODULO == expected:
                self._counters["band_duplicate_batches"] += 1
                return None
            self._counters["band_counter_restarts"] += 1
            return self._anchor(seq, n, fs, latest, arrived_mono)
        first = self._next_mono + ahead / fs
        lag = latest - first
        gap_lag = RECONNECT_LAG_S if ahead / fs > RECONNECT_S else GAP_LAG_S
        if lag > MAX_LAG_S or (ahead and lag > gap_lag):
            self._counters["band_clock_lost"] += 1
            return self._anchor(seq, n, fs, latest, arrived_mono)
        if lag < 0.0:
            first, lag = latest, 0.0
        self._min_lag = min(self._min_lag, lag)
        if arrived_mono >= self._window_end:
            if self._min_lag > 0.0:
                first += self._min_lag  # the band runs slow: catch up with the arrivals
                lag -= self._min_lag
                self._counters["band_drift_corrections"] += 1
            self._new_window(arrived_mono, lag)  # this batch is the next window's first
        self._advance(seq, n, fs, first)
        return first

    def _anchor(self, seq: int, n: int, fs: float, first: float, arrived_mono: float) -> float:
        self._counters["band_clock_anchors"] += 1
        self._new_window(arrived_mono, 0.0)
        self._advance(seq, n, fs, first)
        return first

    def _new_window(self, arrived_mono: float, lag: float) -> None:
        self._min_lag = lag
        self._window_end = arrived_mono + DRIFT_WINDOW_S

    def _advance(self, seq: int, n: int, fs: float, first: float) -> None:
        self._last_seq = seq
        self._next_seq = (seq + n) % COUNTER_MODULO
        self._next_mono = first + n / fs


class WallOffsets:
    """The wall clock's offsets from the monotonic one seen in the last :data:`MAX_LAG_S`,
    oldest first: a batch the driver stamped before an NTP step may still wait in the queue
    after it, and its stamp is only read right on the clock it was made with."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: list[tuple[float, float]] = []  # (wall - monotonic, monotonic last seen)

    def note(self, mono: float, wall: float) -> float:
        """Remember the offset of now; returns it."""
        offset = wall - mono
        seen = self._seen
        if seen and abs(seen[-1][0] - offset) <= STAMP_TOLERANCE_S:
            seen[-1] = (offset, mono)
        else:
            seen.append((offset, mono))
        while mono - seen[0][1] > MAX_LAG_S:
            seen.pop(0)
        return offset

    def waited(self, mono: float, stamp: float, band_offset: float, span: float) -> float:
        """How long ago ``stamp`` (wall clock) was made, on the clocks seen and the one a band
        is dated with: the shortest wait from 0 to :data:`MAX_LAG_S` (a shorter wait only
        loosens the bound on a band's count). Failing that — a replay sets its clock to a
        reading's time, its first sample, so its stamps lie up to a batch's ``span`` ahead; or
        the stamp is on a clock never seen, between two quick steps — the wait closest to 0."""
        offsets = [offset for offset, _mono in self._seen] + [band_offset]
        waits = [mono + offset - stamp for offset in offsets]
        fresh = [max(w, 0.0) for w in waits if -STAMP_TOLERANCE_S <= w <= MAX_LAG_S]
        if fresh:
            return min(fresh)
        return min(max(min(waits, key=abs), -(span + WALL_STEP_S)), MAX_LAG_S)
