"""The per-impact feature code the shipped model was trained on (``impact_features`` before the
features were vectorised over impacts), frozen here as the oracle that the batched features in
:mod:`gateway.detection.fall` must reproduce. Not used by the gateway; do not extend it."""

from __future__ import annotations

import math

import numpy as np

from gateway.detection.fall import (
    EARLY_POST,
    EARLY_POST_S,
    GRID_HZ,
    LATE_MIN_S,
    LATE_S,
    POST_S,
    FloatArray,
)

# what this code computes, in its order (the features added later have no reference here)
NAMES: tuple[str, ...] = (
    "peak_g",
    "impact_area_gs",
    "high_time_s",
    "jerk_peak",
    "freefall_min_g",
    "freefall_time_s",
    "descent_gs",
    "pre_std_g",
    "pre_mean_g",
    "bounce_std_g",
    "post_std_g",
    "post_jerk",
    "post_mean_g",
    "post_max_g",
    "tilt_deg",
    "post_spread",
    "pre_spread",
    "peak_count",
    "second_peak_ratio",
    "impact_vs_pre_deg",
    "impact_vs_post_deg",
    "pre_energy",
    "post_dynamic_g",
    "impact_std_g",
    "late_post_std_g",
    "late_tilt_deg",
    "descent_velocity_gs",
    "fast_descent_gs",
    "return_tilt_deg",
    "post_still_fraction",
    "pre_rotation_deg",
    "post_rotation_deg",
    "peak_width_s",
    "pre_step_g",
    "pre_velocity_gs",
    "impact_dv_post_gs",
    "impact_dv_pre_gs",
    "late_std_g",
    "late_still_fraction",
    "post_active_fraction",
    "late_vs_pre_deg",
    "late_return_tilt_deg",
    "late_max_g",
    "peaks_2g",
    "periodicity",
    "pre_active_fraction",
)


def _s(seconds: float) -> int:
    return round(seconds * GRID_HZ)


def _mean(x: FloatArray, default: float) -> float:
    return float(x.mean()) if x.size else default


def _std(x: FloatArray) -> float:
    return float(x.std()) if x.size > 1 else 0.0


def _norms(xyz: FloatArray) -> FloatArray:
    return np.sqrt(np.einsum("ij,ij->i", xyz, xyz))


def _angle_deg(u: FloatArray, v: FloatArray) -> float:
    ux, uy, uz = (float(c) for c in u)
    vx, vy, vz = (float(c) for c in v)
    nu = math.sqrt(ux * ux + uy * uy + uz * uz)
    nv = math.sqrt(vx * vx + vy * vy + vz * vz)
    if nu < 1e-6 or nv < 1e-6:
        return 0.0
    cos = (ux * vx + uy * vy + uz * vz) / (nu * nv)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def _spread(xyz: FloatArray) -> float:
    """1 - |mean unit vector|: 0 when the arm holds one orientation, towards 1 when it moves."""
    if xyz.shape[0] < 2:
        return 0.0
    unit = xyz / np.maximum(_norms(xyz), 1e-6)[:, None]
    m = unit.mean(axis=0)
    return float(1.0 - math.sqrt(float(m @ m)))


def _rotation_deg(xyz: FloatArray, block: int) -> float:
    """Total angle the orientation turns through, from block means of ``block`` samples."""
    k = xyz.shape[0] // block
    if k < 2:
        return 0.0
    means = xyz[: k * block].reshape(k, block, 3).mean(axis=1)
    unit = means / np.maximum(_norms(means), 1e-6)[:, None]
    cos = np.clip(np.einsum("ij,ij->i", unit[1:], unit[:-1]), -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)).sum())


def _peak_count(mag: FloatArray, exclude: slice, level: float = 1.6) -> int:
    if mag.size < 3:
        return 0
    inner = mag[1:-1]
    is_peak = (inner > level) & (inner >= mag[:-2]) & (inner > mag[2:])
    idx = np.flatnonzero(is_peak) + 1
    idx = idx[(idx < exclude.start) | (idx >= exclude.stop)]
    if idx.size == 0:
        return 0
    # peaks closer than 0.25 s are one movement
    return int(1 + np.count_nonzero(np.diff(idx) > _s(0.25)))


def impact_features(window: FloatArray, impact: int) -> FloatArray:
    """Features of one candidate. ``window`` is ``(n, 3)`` on the grid, in g, holding whatever
    exists of ``[impact - PRE, impact + POST)`` (less at a segment start or when the stream
    stopped); ``impact`` is the impact's index inside it. Needs >= ``MIN_POST`` after it."""
    xyz = np.asarray(window, dtype=np.float64)
    return np.concatenate(
        [_impact_shape_features(xyz[: impact + EARLY_POST], impact), _late_features(xyz, impact)]
    )


def _impact_shape_features(xyz: FloatArray, impact: int) -> FloatArray:
    """The first ``EARLY_POST_S`` after the impact: the impact itself, what came before it and
    how the arm settled."""
    mag = _norms(xyz)
    n = mag.size
    i0 = impact

    def seg(a: float, b: float) -> slice:
        return slice(max(0, i0 + _s(a)), max(0, min(n, i0 + _s(b))))

    peak = float(mag[i0])
    around = mag[seg(-0.25, 0.25)]
    impact_area = float(np.clip(around - 1.0, 0.0, None).sum() / GRID_HZ)
    high_time = float(np.count_nonzero(mag[seg(-1.0, 1.0)] > 2.0) / GRID_HZ)
    step = _norms(np.diff(xyz, axis=0)) if n > 1 else np.zeros(1)
    jerk_region = step[seg(-0.25, 0.25)]
    jerk_peak = float(jerk_region.max()) if jerk_region.size else 0.0

    pre_fall = mag[seg(-1.0, -0.05)]
    freefall_min = float(pre_fall.min()) if pre_fall.size else 1.0
    freefall_time = float(np.count_nonzero(mag[seg(-1.5, 0.0)] < 0.7) / GRID_HZ)
    descent = float((1.0 - pre_fall).sum() / GRID_HZ)

    pre = mag[seg(-3.0, -1.0)]
    pre_std, pre_mean = _std(pre), _mean(pre, 1.0)
    bounce_std = _std(mag[seg(0.3, 1.5)])
    post_slice = seg(1.5, EARLY_POST_S)
    post = mag[post_slice]
    post_std, post_mean = _std(post), _mean(post, 1.0)
    post_step = step[seg(1.5, EARLY_POST_S - 0.02)]
    post_jerk = _mean(post_step, 0.0)
    after = mag[seg(1.0, EARLY_POST_S)]
    post_max = float(after.max()) if after.size else 1.0

    g_pre_xyz = xyz[seg(-2.5, -0.5)]
    g_pre = g_pre_xyz.mean(axis=0) if g_pre_xyz.shape[0] else xyz[0]
    g_post_xyz = xyz[post_slice]
    g_post = g_post_xyz.mean(axis=0) if g_post_xyz.shape[0] else xyz[-1]
    tilt = _angle_deg(g_pre, g_post)
    late = seg(EARLY_POST_S - 1.5, EARLY_POST_S)
    late_xyz = xyz[late]
    late_tilt = _angle_deg(g_pre, late_xyz.mean(axis=0)) if late_xyz.shape[0] else tilt
    late_post_std = _std(mag[late])

    exclude = slice(max(0, i0 - _s(0.4)), i0 + _s(0.4))
    peak_count = _peak_count(mag, exclude)
    outside = np.concatenate([mag[: exclude.start], mag[exclude.stop :]])
    second_ratio = float(outside.max() / max(peak, 1e-6)) if outside.size else 0.0

    impact_vs_pre = _angle_deg(xyz[i0], g_pre)
    impact_vs_post = _angle_deg(xyz[i0], g_post)
    pre_energy = _mean((pre_fall - 1.0) ** 2, 0.0)
    post_dynamic = float(_norms(g_post_xyz - g_post).mean()) if g_post_xyz.shape[0] else 0.0
    impact_std = _std(mag[seg(-0.5, 0.5)])

    # velocity along the pre-impact "up" (specific force reads +1 g along it at rest)
    up = g_pre / max(math.sqrt(float(g_pre @ g_pre)), 1e-6)
    along = xyz @ up - 1.0
    descent_velocity = float(along[seg(-1.0, 0.0)].sum() / GRID_HZ)
    fast_descent = float(along[seg(-0.4, 0.0)].sum() / GRID_HZ)
    pre_refs = [xyz[seg(a, b)] for a, b in ((-3.0, -2.0), (-2.0, -1.0), (-1.0, -0.4))]
    return_tilt = min(
        (_angle_deg(r.mean(axis=0), g_post) for r in pre_refs if r.shape[0]), default=tilt
    )
    post_steps = step[seg(1.5, EARLY_POST_S - 0.02)]
    post_still = float(np.mean(post_steps < 0.02)) if post_steps.size else 0.0
    pre_rotation = _rotation_deg(xyz[seg(-1.5, 0.0)], 5)
    post_rotation = _rotation_deg(xyz[seg(1.5, EARLY_POST_S)], 5)
    near = mag[seg(-0.3, 0.3)]
    peak_width = float(np.count_nonzero(near > 1.0 + 0.5 * (peak - 1.0)) / GRID_HZ)
    pre_step = _mean(step[seg(-3.0, -0.5)], 0.0)
    # velocity changes with gravity taken out as if the arm did not turn (no gyroscope)
    pre_velocity = float(np.linalg.norm((xyz[seg(-1.0, -0.05)] - g_pre).sum(axis=0)) / GRID_HZ)
    impact_dv_post = float(np.linalg.norm((xyz[seg(-0.1, 0.5)] - g_post).sum(axis=0)) / GRID_HZ)
    impact_dv_pre = float(np.linalg.norm((xyz[seg(-0.1, 0.3)] - g_pre).sum(axis=0)) / GRID_HZ)

    return np.array(
        [
            peak,
            impact_area,
            high_time,
            jerk_peak,
            freefall_min,
            freefall_time,
            descent,
            pre_std,
            pre_mean,
            bounce_std,
            post_std,
            post_jerk,
            post_mean,
            post_max,
            tilt,
            _spread(g_post_xyz),
            _spread(g_pre_xyz),
            float(peak_count),
            second_ratio,
            impact_vs_pre,
            impact_vs_post,
            pre_energy,
            post_dynamic,
            impact_std,
            late_post_std,
            late_tilt,
            descent_velocity,
            fast_descent,
            return_tilt,
            post_still,
            pre_rotation,
            post_rotation,
            peak_width,
            pre_step,
            pre_velocity,
            impact_dv_post,
            impact_dv_pre,
        ]
    )


def _late_features(xyz: FloatArray, impact: int) -> FloatArray:
    """``LATE_S``..``POST_S`` after the impact (still lying, or up and about again?) and the
    +-3 s around it (hand impacts and clapping repeat). When the stream stopped before
    ``LATE_S + LATE_MIN_S``, the late window is the last 1.5 s that arrived: a band that stops
    streaming after an impact is judged on how it was lying when it stopped."""
    mag = _norms(xyz)
    n = mag.size
    i0 = impact

    def at(seconds: float) -> int:
        return max(0, min(n, i0 + _s(seconds)))

    lo, hi = at(LATE_S), at(POST_S)
    if hi - lo < _s(LATE_MIN_S):
        lo = max(at(1.5), hi - _s(1.5))
    late_xyz, late_mag = xyz[lo:hi], mag[lo:hi]
    late_steps = _norms(np.diff(late_xyz, axis=0)) if late_xyz.shape[0] > 1 else np.zeros(1)
    g_pre_xyz = xyz[at(-2.5) : at(-0.5)]
    g_pre = g_pre_xyz.mean(axis=0) if g_pre_xyz.shape[0] else xyz[0]
    g_late = late_xyz.mean(axis=0) if late_xyz.shape[0] else xyz[-1]
    pre_refs = [xyz[at(a) : at(b)] for a, b in ((-3.0, -2.0), (-2.0, -1.0), (-1.0, -0.4))]
    late_return = min(
        (_angle_deg(r.mean(axis=0), g_late) for r in pre_refs if r.shape[0]),
        default=_angle_deg(g_pre, g_late),
    )
    after = mag[at(2.0) : hi]
    active = float(np.mean(np.abs(after - 1.0) > 0.1)) if after.size else 0.0

    around = mag[at(-3.0) : at(3.0)]
    centre = i0 - at(-3.0)
    inner = around[1:-1]
    peaks = np.flatnonzero((inner > 2.0) & (inner >= around[:-2]) & (inner > around[2:])) + 1
    peaks = peaks[(peaks < centre - _s(0.4)) | (peaks >= centre + _s(0.4))]
    # peaks closer than 0.25 s are one movement
    peaks_2g = 0 if peaks.size == 0 else 1 + int(np.count_nonzero(np.diff(peaks) > _s(0.25)))
    periodicity = 0.0
    centred = around - around.mean()
    energy = float(centred @ centred)
    if energy > 1e-9 and centred.size > _s(1.6):
        # strongest repetition with a period of 0.2-1.5 s (clapping, beating, waving)
        lagged = np.correlate(centred, centred, "full")[centred.size - 1 :]
        periodicity = float(lagged[_s(0.2) : _s(1.5)].max()) / energy
    pre = mag[at(-3.0) : at(-0.5)]
    pre_active = float(np.mean(np.abs(pre - 1.0) > 0.1)) if pre.size else 0.0
    return np.array(
        [
            _std(late_mag),
            float(np.mean(late_steps < 0.02)),
            active,
            _angle_deg(g_pre, g_late),
            late_return,
            float(after.max()) if after.size else 1.0,
            float(peaks_2g),
            periodicity,
            pre_active,
        ]
    )
