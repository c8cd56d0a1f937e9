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


def weighted_tail_duration(
    durations_s: FloatArray, weights: FloatArray, tail_probability: float, body_quantile: float
) -> float | None:
    """The duration a quiet outlasts with probability ``tail_probability``, from a weighted
    sample of past quiet durations (an empirical survival function with an exponential tail).

    Up to the ``body_quantile`` (u) the weighted empirical survival S is used as it is; beyond
    u the tail is extrapolated as exponential with the sample's own mean excess over u, so the
    threshold can lie beyond the longest quiet seen and grows with how spread out this person's
    long quiets are: u + mean_excess × ln(S(u) / p). None when no weight is given.
    """
    known = weights > 0.0
    durations_s, weights = durations_s[known], weights[known]
    total = float(weights.sum())
    if durations_s.size == 0 or total <= 0.0:
        return None
    order = np.argsort(durations_s, kind="stable")
    ordered, w = durations_s[order], weights[order]
    survival = 1.0 - np.cumsum(w) / total  # S just above ordered[i]
    last = ordered.size - 1
    body = min(int(np.searchsorted(-survival, -(1.0 - body_quantile))), last)
    u = float(ordered[body])
    # S(u) = P(D > u): past every quiet of exactly u (ties are common at minute resolution).
    body = int(np.searchsorted(ordered, u, side="right")) - 1
    s_u = float(survival[body])
    beyond = ordered > u
    if s_u <= tail_probability or not beyond.any():
        at = min(int(np.searchsorted(-survival, -tail_probability)), last)
        return float(ordered[at])
    mean_excess = float((w[beyond] * (ordered[beyond] - u)).sum() / w[beyond].sum())
    return u + mean_excess * float(np.log(s_u / tail_probability))


def quiet_survival_threshold_s(
    start_minutes: FloatArray,
    durations_s: FloatArray,
    rooms: npt.NDArray[np.int64],
    start_minute: float,
    room: int,
    bandwidth_min: float,
    prior_weight: float,
    tail_probability: float,
    body_quantile: float,
    activities: FloatArray | None = None,
    activity: float | None = None,
    activity_bandwidth: float | None = None,
) -> float | None:
    """How long a quiet that starts now, in this room, may last before it is unusual for this
    person: the ``tail_probability`` point of their quiet-duration survival function.

    Past quiets are weighted by how close their start time of day is (Gaussian kernel of
    ``bandwidth_min``, cut at 3 bandwidths: neighbouring slots pool), so one model covers the
    whole day without fixed slots. With ``activity`` (how busy the person was just before the
    quiet began, e.g. log(1 + signs in the previous 2 h)) and ``activity_bandwidth``, past
    quiets are also weighted by how close their own ``activities`` were (Gaussian kernel; an
    unknown, NaN, activity weighs 1): a quiet that begins in the middle of a busy spell is judged
    against quiets that also began mid-activity, which are usually short, and one that begins
    after a quiet hour against those that did too. The same-room estimate is shrunk towards the
    all-rooms one with ``prior_weight`` pseudo-observations, so a room with few quiets borrows
    from the others and a well-known room speaks for itself. None when nothing is known near
    this time.
    """
    apart = circular_minutes_apart(start_minutes, start_minute)
    near = np.exp(-0.5 * (apart / bandwidth_min) ** 2) * (apart <= 3.0 * bandwidth_min)
    if activities is not None and activity is not None and activity_bandwidth:
        alike = np.exp(-0.5 * ((activities - activity) / activity_bandwidth) ** 2)
        weighted = near * np.where(np.isfinite(alike), alike, 1.0)
        if float(weighted.sum()) > 0.0:
            near = weighted
    pooled = weighted_tail_duration(durations_s, near, tail_probability, body_quantile)
    if pooled is None:
        return None
    same = near * (rooms == room)
    own = weighted_tail_duration(durations_s, same, tail_probability, body_quantile)
    if own is None:
        return pooled
    share = float(same.sum()) / (float(same.sum()) + prior_weight)
    return share * own + (1.0 - share) * pooled


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


def usual_stay_s(
    start_minutes: FloatArray,
    durations_s: FloatArray,
    start_minute: float,
    bandwidth_min: float,
    quantile: float,
    min_weight: float = 3.0,
) -> float | None:
    """The ``quantile`` of this person's past stays (bathroom visits) that began near this time
    of day: Gaussian kernel of ``bandwidth_min`` over start times (cut at 3 bandwidths), all
    stays equally when fewer than ``min_weight`` lie near. None when nothing is known."""
    if durations_s.size == 0:
        return None
    apart = circular_minutes_apart(start_minutes, start_minute)
    weights = np.exp(-0.5 * (apart / bandwidth_min) ** 2) * (apart <= 3.0 * bandwidth_min)
    if float(weights.sum()) < min_weight:
        weights = np.ones_like(durations_s)
    order = np.argsort(durations_s, kind="stable")
    cumulative = np.cumsum(weights[order]) / float(weights.sum())
    at = min(int(np.searchsorted(cumulative, quantile)), durations_s.size - 1)
    return float(durations_s[order][at])


def early_bedtime(
    start_minutes: FloatArray,
    durations_s: FloatArray,
    rooms: npt.NDArray[np.int64],
    earliest_minute: float,
    latest_minute: float,
    min_sleep_s: float,
    quantile: float,
    min_nights: int,
    min_room_share: float,
) -> tuple[float, frozenset[int]] | None:
    """When this person goes to bed early and where from: the ``quantile`` of the start times
    of their sleep-length quiets (≥ ``min_sleep_s``) that began between ``earliest_minute`` and
    ``latest_minute`` (an evening window that may wrap midnight), and the room codes at least
    ``min_room_share`` of those quiets began in (the bedroom, or in a home without a bedroom
    sensor the room passed last on the way to bed). None with fewer than ``min_nights``."""
    evening = (start_minutes - earliest_minute) % MINUTES_PER_DAY
    span = (latest_minute - earliest_minute) % MINUTES_PER_DAY
    sleep = (durations_s >= min_sleep_s) & (evening < span)
    if int(sleep.sum()) < min_nights:
        return None
    at = float(np.quantile(evening[sleep], quantile))
    codes, counts = np.unique(rooms[sleep], return_counts=True)
    share = counts / counts.sum()
    chosen = frozenset(int(c) for c, s in zip(codes, share, strict=True) if s >= min_room_share)
    return (earliest_minute + at) % MINUTES_PER_DAY, chosen


def expected_signs(hourly_rate: FloatArray, start_minute: float, duration_s: float) -> float:
    """How many signs of life a person whose signs arrive at ``hourly_rate`` (24 values: signs
    per hour, by local hour of day) would usually give during a quiet of ``duration_s`` that
    started at ``start_minute``: the rate integrated over the quiet, hour by hour."""
    total = 0.0
    minute = start_minute % MINUTES_PER_DAY
    left = duration_s / 60.0
    while left > 0.0:
        hour = int(minute // 60) % 24
        step = min(left, 60.0 - minute % 60.0)
        total += float(hourly_rate[hour]) * step / 60.0
        minute = (minute + step) % MINUTES_PER_DAY
        left -= step
    return total
