"""Pure numpy maths of the routine detectors: no clock, no state, no I/O."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gateway.detection.routine.localtime import MINUTES_PER_DAY

FloatArray = npt.NDArray[np.float64]


def circular_minutes_apart(minutes: FloatArray, minute: float) -> FloatArray:
    d = np.abs(minutes - minute) % MINUTES_PER_DAY
    return np.minimum(d, MINUTES_PER_DAY - d)


def usual_longest_quiet(
    start_minutes: FloatArray,
    durations_s: FloatArray,
    rooms: npt.NDArray[np.int64],
    start_minute: float,
    room: int,
    window_min: float,
    min_same_room: int,
) -> float | None:
    """The longest quiet period this person has had starting near this time of day.

    Quiet periods that started in the same room (code) as the current one are preferred (a
    long silence that begins in the bedroom is a nap; in the kitchen it is not); when fewer
    than ``min_same_room`` are known, all rooms count. None when nothing is known near then.
    """
    near = circular_minutes_apart(start_minutes, start_minute) <= window_min
    same = near & (rooms == room)
    chosen = same if int(same.sum()) >= min_same_room else near
    if not chosen.any():
        return None
    return float(durations_s[chosen].max())


def quiet_threshold_s(
    usual_longest_s: float | None,
    margin: float,
    buffer_s: float,
    floor_s: float,
    ceiling_s: float,
) -> float:
    """Alarm when a quiet lasts longer than the usual longest, widened by a relative margin and
    a fixed buffer, kept within [floor, ceiling]."""
    base = 0.0 if usual_longest_s is None else usual_longest_s
    return float(min(max(base * (1.0 + margin) + buffer_s, floor_s), ceiling_s))


def wake_deadline_minute(
    wake_minutes: FloatArray,
    quantile: float,
    margin_min: float,
    earliest: float,
    latest: float,
) -> float:
    """Learned latest usual wake-up (a high quantile) plus a margin, within [earliest, latest]."""
    usual = float(np.quantile(wake_minutes, quantile))
    return float(min(max(usual + margin_min, earliest), latest))


def robust_range(values: FloatArray, low_q: float, high_q: float) -> tuple[float, float]:
    return float(np.quantile(values, low_q)), float(np.quantile(values, high_q))


def sustained_out_of_range(
    values: FloatArray, low: float, high: float, min_count: int, min_fraction: float
) -> bool:
    """True when enough samples exist and most of them lie outside [low, high] on the same
    side (a single wild reading never counts)."""
    finite = values[np.isfinite(values)]
    if finite.size < min_count:
        return False
    below = float(np.mean(finite < low))
    above = float(np.mean(finite > high))
    return max(below, above) >= min_fraction
