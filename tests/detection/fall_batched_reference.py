"""``fall.window_features`` as it was before its feature pass was restructured to make fewer
numpy calls (main at 5001b4b), frozen here as the oracle that the restructured pass must
reproduce bit for bit: the shipped model was trained on these values. Not used by the gateway;
do not extend it."""

from __future__ import annotations

import functools

import numpy as np

from gateway.detection.fall import (
    EARLY_POST_S,
    GRID_HZ,
    LATE_MIN_S,
    LATE_S,
    POST_S,
    RAW_FEATURE_NAMES,
    SMOOTH,
    BoolArray,
    FloatArray,
)


def _s(seconds: float) -> int:
    return round(seconds * GRID_HZ)


def _norms(xyz: FloatArray) -> FloatArray:
    """Euclidean norms along the last axis."""
    return np.sqrt(np.einsum("...k,...k->...", xyz, xyz))


class Windows:
    """``m`` candidates' windows of the same length ``n`` with the impact at the same index
    ``impact``: ``xyz`` is ``(m, n, 3)`` on the grid, in g. Every feature is computed for all
    ``m`` at once along axis 1; batches of windows that differ in length or impact index are
    split into such groups (:func:`features_of`)."""

    def __init__(self, xyz: FloatArray, impact: int) -> None:
        self.xyz = xyz
        self.impact = impact
        self.n = xyz.shape[1]
        self.mag = _norms(xyz)
        if self.n > 1:
            self.step = _norms(np.diff(xyz, axis=1))  # step j: sample j -> j + 1
        else:
            self.step = np.zeros((xyz.shape[0], 1))

    def until(self, seconds: float) -> Windows:
        """The same windows cut ``seconds`` after the impact."""
        stop = self.impact + _s(seconds)
        if stop >= self.n:
            return self
        out = Windows.__new__(Windows)
        out.impact, out.n = self.impact, stop
        out.xyz, out.mag = self.xyz[:, :stop], self.mag[:, :stop]
        out.step = self.step[:, : stop - 1] if stop > 1 else np.zeros((self.xyz.shape[0], 1))
        return out

    def at(self, seconds: float) -> int:
        """The index ``seconds`` after the impact, clamped to the window."""
        return max(0, min(self.n, self.impact + _s(seconds)))

    def seg(self, a: float, b: float) -> slice:
        """The samples from ``a`` to ``b`` seconds after the impact (as far as held)."""
        return _seg(self.n, self.impact, a, b)


@functools.lru_cache(maxsize=4096)
def _seg(n: int, impact: int, a: float, b: float) -> slice:
    # the same few spans come back in every tick: look them up rather than compute them
    return slice(max(0, min(n, impact + _s(a))), max(0, min(n, impact + _s(b))))


# Reductions along axis 1 of ``x`` (m, k) or (m, k, 3); with k == 0 the value the per-impact
# code gave for an empty slice. They call the ufuncs' reduce directly (ndarray.mean and .std
# cost several microseconds of Python each) in the order numpy's own mean and std add up.

_add = np.add.reduce


def _sum(x: FloatArray, axis: int = 1) -> FloatArray:
    """Sum along ``axis``. Over the time axis of ``(m, k, 3)`` windows (or the block axis of
    ``(m, k, block, 3)``) numpy's reduce walks the short last axis innermost and is several
    times slower than einsum, which adds in the same order (bit-identical)."""
    if x.ndim == 3 and axis == 1:
        return np.einsum("ijk->ik", x)
    if x.ndim == 4 and axis == 2:
        return np.einsum("ijbk->ijk", x)
    return _add(x, axis=axis)


def _avg(x: FloatArray, axis: int = 1) -> FloatArray:
    return _sum(x, axis=axis) / x.shape[axis]


def _mean(x: FloatArray, default: float | FloatArray) -> FloatArray:
    if x.shape[1]:
        return _avg(x)
    return np.broadcast_to(np.asarray(default, dtype=np.float64), (x.shape[0], *x.shape[2:]))


def _std(x: FloatArray) -> FloatArray:
    """Population standard deviation; 0 with fewer than two samples."""
    k = x.shape[1]
    if k < 2:
        return np.zeros(x.shape[0])
    centred = x - _add(x, axis=1, keepdims=True) / k
    return np.sqrt(_add(centred * centred, axis=1) / k)


def _max(x: FloatArray, default: float) -> FloatArray:
    return np.maximum.reduce(x, axis=1) if x.shape[1] else np.full(x.shape[0], default)


def _min(x: FloatArray, default: float) -> FloatArray:
    return np.minimum.reduce(x, axis=1) if x.shape[1] else np.full(x.shape[0], default)


def _count(cond: BoolArray) -> FloatArray:
    return _add(cond, axis=1, dtype=np.float64)


def _fraction(cond: BoolArray, default: float) -> FloatArray:
    return _count(cond) / cond.shape[1] if cond.shape[1] else np.full(cond.shape[0], default)


def _angle_deg(u: FloatArray, v: FloatArray) -> FloatArray:
    """Angle between vectors along the last axis; 0 where either is shorter than 1e-6."""
    # component by component, in the order of the per-impact code: near 0 degrees the angle
    # amplifies the rounding of the dot product
    ux, uy, uz = u[..., 0], u[..., 1], u[..., 2]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    nu = np.sqrt(ux * ux + uy * uy + uz * uz)
    nv = np.sqrt(vx * vx + vy * vy + vz * vz)
    ok = (nu >= 1e-6) & (nv >= 1e-6)
    cos = (ux * vx + uy * vy + uz * vz) / np.where(ok, nu * nv, 1.0)
    return np.where(ok, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), 0.0)


def _angles(*pairs: tuple[FloatArray, FloatArray]) -> FloatArray:
    """The angles between the ``(m, 3)`` rows of each pair, all in one pass: ``(pairs, m)``."""
    return _angle_deg(np.array([u for u, _ in pairs]), np.array([v for _, v in pairs]))


def _spread(xyz: FloatArray) -> FloatArray:
    """1 - |mean unit vector|: 0 when the arm holds one orientation, towards 1 when it moves."""
    if xyz.shape[1] < 2:
        return np.zeros(xyz.shape[0])
    m = _avg(xyz / np.maximum(_norms(xyz), 1e-6)[:, :, None])
    return 1.0 - np.sqrt(np.einsum("ij,ij->i", m, m))


def _rotation_deg(xyz: FloatArray, block: int) -> FloatArray:
    """Total angle the orientation turns through, from block means of ``block`` samples."""
    k = xyz.shape[1] // block
    if k < 2:
        return np.zeros(xyz.shape[0])
    means = _avg(xyz[:, : k * block].reshape(xyz.shape[0], k, block, 3), axis=2)
    unit = means / np.maximum(_norms(means), 1e-6)[:, :, None]
    cos = np.clip(np.einsum("ijk,ijk->ij", unit[:, 1:], unit[:, :-1]), -1.0, 1.0)
    return _add(np.degrees(np.arccos(cos)), axis=1)


def _movements(mag: FloatArray, exclude: slice, level: float) -> FloatArray:
    """Peaks of ``mag`` (m, k) above ``level``, not at the ends nor in ``exclude``; peaks
    closer than 0.25 s are one movement."""
    m, k = mag.shape
    if k < 3:
        return np.zeros(m)
    inner = mag[:, 1:-1]
    peak = (inner > level) & (inner >= mag[:, :-2]) & (inner > mag[:, 2:])
    peak[:, max(0, exclude.start - 1) : max(0, exclude.stop - 1)] = False
    rows, cols = np.nonzero(peak)  # row by row, in time order
    # the peak before each in its row; before a row's first, as if one lay k samples earlier
    previous = np.full_like(cols, -k - 1)
    same_row = rows[1:] == rows[:-1]
    previous[1:][same_row] = cols[:-1][same_row]
    return np.bincount(rows[cols - previous > _s(0.25)], minlength=m).astype(np.float64)


# --- feature families ----------------------------------------------------------------------
# Each family returns {feature name: (m,) values}. ``e`` holds the first EARLY_POST_S after the
# impact (the impact-shape features), ``w`` up to POST_S (the late features), ``g`` the
# orientation estimates several families share. A new feature: add its name to FEATURE_NAMES
# and compute it in a family (or add a family to _FAMILIES) the same way, for all m at once.

Features = dict[str, FloatArray]


class Gravity:
    """Orientation (mean specific force) before and after the impact."""

    def __init__(self, e: Windows) -> None:
        self.pre_xyz = e.xyz[:, e.seg(-2.5, -0.5)]
        self.pre = _mean(self.pre_xyz, e.xyz[:, 0])
        self.post_xyz = e.xyz[:, e.seg(1.5, EARLY_POST_S)]
        self.post = _mean(self.post_xyz, e.xyz[:, -1])
        # pre-impact orientations that a return is measured against (those held)
        refs = [e.xyz[:, e.seg(a, b)] for a, b in ((-3.0, -2.0), (-2.0, -1.0), (-1.0, -0.4))]
        self.refs = [_avg(r) for r in refs if r.shape[1]]


def _impact_family(e: Windows, w: Windows, g: Gravity) -> Features:
    """The impact itself: height, area, width, jerk."""
    i0 = e.impact
    peak = e.mag[:, i0]
    jerk = e.step[:, e.seg(-0.25, 0.25)]
    near = e.mag[:, e.seg(-0.3, 0.3)]

    def dv(ref: FloatArray, a: float, b: float) -> FloatArray:
        # velocity change with gravity taken out as if the arm did not turn (no gyroscope)
        moved = _sum(e.xyz[:, e.seg(a, b)] - ref[:, None, :])
        return _norms(moved) / GRID_HZ

    return {
        "peak_g": peak,
        "impact_area_gs": _add(np.maximum(e.mag[:, e.seg(-0.25, 0.25)] - 1.0, 0.0), axis=1)
        / GRID_HZ,
        "high_time_s": _count(e.mag[:, e.seg(-1.0, 1.0)] > 2.0) / GRID_HZ,
        "jerk_peak": _max(jerk, 0.0),
        "impact_std_g": _std(e.mag[:, e.seg(-0.5, 0.5)]),
        "peak_width_s": _count(near > (1.0 + 0.5 * (peak - 1.0))[:, None]) / GRID_HZ,
        "impact_dv_post_gs": dv(g.post, -0.1, 0.5),
        "impact_dv_pre_gs": dv(g.pre, -0.1, 0.3),
    }


def _descent_family(e: Windows, w: Windows, g: Gravity) -> Features:
    """Free fall and descent in the second before the impact."""
    falling = e.seg(-1.0, -0.05)
    pre_fall = e.mag[:, falling]
    # velocity along the pre-impact "up" (specific force reads +1 g along it at rest)
    up = g.pre / np.maximum(np.sqrt(np.einsum("ij,ij->i", g.pre, g.pre)), 1e-6)[:, None]
    along = np.matmul(e.xyz, up[:, :, None])[:, :, 0] - 1.0
    moved = _sum(e.xyz[:, falling] - g.pre[:, None, :])
    return {
        "freefall_min_g": _min(pre_fall, 1.0),
        "freefall_time_s": _count(e.mag[:, e.seg(-1.5, 0.0)] < 0.7) / GRID_HZ,
        "descent_gs": _add(1.0 - pre_fall, axis=1) / GRID_HZ,
        "pre_energy": _mean((pre_fall - 1.0) ** 2, 0.0),
        "descent_velocity_gs": _add(along[:, e.seg(-1.0, 0.0)], axis=1) / GRID_HZ,
        "fast_descent_gs": _add(along[:, e.seg(-0.4, 0.0)], axis=1) / GRID_HZ,
        "pre_velocity_gs": _norms(moved) / GRID_HZ,
    }


def _before_family(e: Windows, w: Windows, g: Gravity) -> Features:
    """What the arm was doing in the seconds before."""
    pre = e.mag[:, e.seg(-3.0, -1.0)]
    return {
        "pre_std_g": _std(pre),
        "pre_mean_g": _mean(pre, 1.0),
        "pre_step_g": _mean(e.step[:, e.seg(-3.0, -0.5)], 0.0),
        "pre_spread": _spread(g.pre_xyz),
        "pre_rotation_deg": _rotation_deg(e.xyz[:, e.seg(-1.5, 0.0)], 5),
        "pre_active_fraction": _fraction(np.abs(e.mag[:, e.seg(-3.0, -0.5)] - 1.0) > 0.1, 0.0),
    }


def _settling_family(e: Windows, w: Windows, g: Gravity) -> Features:
    """How the arm settled in the first EARLY_POST_S after the impact."""
    post = e.mag[:, e.seg(1.5, EARLY_POST_S)]
    post_steps = e.step[:, e.seg(1.5, EARLY_POST_S - 0.02)]
    dynamic = _norms(g.post_xyz - g.post[:, None, :])
    return {
        "bounce_std_g": _std(e.mag[:, e.seg(0.3, 1.5)]),
        "post_std_g": _std(post),
        "post_jerk": _mean(post_steps, 0.0),
        "post_mean_g": _mean(post, 1.0),
        "post_max_g": _max(e.mag[:, e.seg(1.0, EARLY_POST_S)], 1.0),
        "post_spread": _spread(g.post_xyz),
        "post_dynamic_g": _mean(dynamic, 0.0),
        "late_post_std_g": _std(e.mag[:, e.seg(EARLY_POST_S - 1.5, EARLY_POST_S)]),
        "post_still_fraction": _fraction(post_steps < 0.02, 0.0),
        "post_rotation_deg": _rotation_deg(g.post_xyz, 5),
    }


def _orientation_family(e: Windows, w: Windows, g: Gravity) -> Features:
    """How the wrist turned: before vs after, and against the impact's own direction."""
    late_xyz = e.xyz[:, e.seg(EARLY_POST_S - 1.5, EARLY_POST_S)]
    late = _avg(late_xyz) if late_xyz.shape[1] else g.post  # none held: the tilt itself
    hit = e.xyz[:, e.impact]
    tilt, late_tilt, vs_pre, vs_post, *returns = _angles(
        (g.pre, g.post), (g.pre, late), (hit, g.pre), (hit, g.post), *((r, g.post) for r in g.refs)
    )
    return {
        "tilt_deg": tilt,
        "late_tilt_deg": late_tilt,
        "impact_vs_pre_deg": vs_pre,
        "impact_vs_post_deg": vs_post,
        "return_tilt_deg": np.minimum.reduce(returns) if returns else tilt,
    }


def _repetition_family(e: Windows, w: Windows, g: Gravity) -> Features:
    """Other peaks around the impact (hand impacts and clapping repeat)."""
    i0 = e.impact
    exclude = slice(max(0, i0 - _s(0.4)), i0 + _s(0.4))
    outside = np.concatenate([e.mag[:, : exclude.start], e.mag[:, exclude.stop :]], axis=1)
    second = _max(outside, 0.0) / np.maximum(e.mag[:, i0], 1e-6)
    around_from = w.at(-3.0)
    around = w.mag[:, around_from : w.at(3.0)]
    centre = i0 - around_from
    return {
        "peak_count": _movements(e.mag, exclude, 1.6),
        "second_peak_ratio": second if outside.shape[1] else np.zeros(e.mag.shape[0]),
        "peaks_2g": _movements(around, slice(centre - _s(0.4), centre + _s(0.4)), 2.0),
        "periodicity": _periodicity(around),
    }


def _periodicity(around: FloatArray) -> FloatArray:
    """Strongest repetition with a period of 0.2-1.5 s (clapping, beating, waving): the
    largest autocorrelation at those lags over the energy."""
    m, k = around.shape
    if k <= _s(1.6):
        return np.zeros(m)
    centred = around - _add(around, axis=1, keepdims=True) / k
    energy = np.einsum("ij,ij->i", centred, centred)
    lags = _s(1.5) - _s(0.2)
    padded = np.zeros((m, k + _s(1.5)))
    padded[:, :k] = centred
    # shifted[i, l] is row i moved by _s(0.2) + l samples (a view, zeros past the end)
    row, step = padded.strides
    shifted = np.lib.stride_tricks.as_strided(
        padded[:, _s(0.2) :], shape=(m, lags, k), strides=(row, step, step), writeable=False
    )
    lagged = np.einsum("ij,ilj->il", centred, shifted)
    periodic = energy > 1e-9
    return np.where(
        periodic, np.maximum.reduce(lagged, axis=1) / np.where(periodic, energy, 1.0), 0.0
    )


def _late_family(e: Windows, w: Windows, g: Gravity) -> Features:
    """LATE_S..POST_S after the impact: still lying, or up and about again? When the stream
    stopped before LATE_S + LATE_MIN_S, the last 1.5 s that arrived: a band that stops
    streaming after an impact is judged on how it was lying when it stopped."""
    lo, hi = w.at(LATE_S), w.at(POST_S)
    if hi - lo < _s(LATE_MIN_S):
        lo = max(w.at(1.5), hi - _s(1.5))
    late_xyz, late_mag = w.xyz[:, lo:hi], w.mag[:, lo:hi]
    late_steps = w.step[:, lo : hi - 1]
    g_late = _mean(late_xyz, w.xyz[:, -1])
    late_vs_pre, *returns = _angles((g.pre, g_late), *((r, g_late) for r in g.refs))
    after = w.mag[:, w.at(2.0) : hi]
    return {
        "late_std_g": _std(late_mag),
        "late_still_fraction": _fraction(late_steps < 0.02, 1.0),
        "post_active_fraction": _fraction(np.abs(after - 1.0) > 0.1, 0.0),
        "late_vs_pre_deg": late_vs_pre,
        "late_return_tilt_deg": np.minimum.reduce(returns) if returns else late_vs_pre,
        "late_max_g": _max(after, 1.0),
    }


_FAMILIES = (
    _impact_family,
    _descent_family,
    _before_family,
    _settling_family,
    _orientation_family,
    _repetition_family,
    _late_family,
)


def smooth(xyz: FloatArray) -> FloatArray:
    """Centred moving average of ``SMOOTH`` samples along axis 1 of ``(m, n, 3)`` windows,
    the ends padded with their edge values (nothing beyond the window is assumed)."""
    half = SMOOTH // 2
    padded = np.pad(xyz, ((0, 0), (half, half), (0, 0)), mode="edge")
    csum = np.cumsum(padded, axis=1)
    csum = np.concatenate([np.zeros_like(csum[:, :1]), csum], axis=1)
    return (csum[:, SMOOTH:] - csum[:, :-SMOOTH]) / SMOOTH


def raw_window_features(xyz: FloatArray, impact: int) -> FloatArray:
    """``(m, N_RAW_FEATURES)``: the RAW_FEATURE_NAMES of windows as in
    :func:`window_features`."""
    windows = Windows(np.asarray(xyz, dtype=np.float64), impact)
    early = windows.until(EARLY_POST_S)
    gravity = Gravity(early)
    values: Features = {}
    for family in _FAMILIES:
        values.update(family(early, windows, gravity))
    return np.array([values[name] for name in RAW_FEATURE_NAMES]).T


def window_features(xyz: FloatArray, impact: int) -> FloatArray:
    """``(m, N_FEATURES)`` features of ``m`` candidates whose windows ``xyz`` (``(m, n, 3)``
    on the grid, in g) hold the same span around their impact: whatever exists of
    ``[impact - PRE, impact + POST)``, the impact at index ``impact``, with >= ``MIN_POST``
    samples after it. Columns in FEATURE_NAMES order: the raw features, then the same on the
    low-passed windows (:func:`smooth`)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    # both versions of every window in one pass: half the per-call cost of the families
    both = raw_window_features(np.concatenate([xyz, smooth(xyz)]), impact)
    return np.concatenate([both[: len(xyz)], both[len(xyz) :]], axis=1)
