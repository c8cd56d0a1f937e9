"""Fall detection maths: resampling, ring buffers, the impact gate and impact features.

Everything here is pure numpy and free of I/O and clocks; :mod:`gateway.detection.fall_alerts`
is the stateful shell that turns it into events.

The stages, shared by the live gateway, ``eldergate evaluate fall`` and offline training so
that all three see exactly the same numbers:

1. **Resample** every wristband onto a fixed :data:`GRID_HZ` grid by linear interpolation of
   its own sample times (any input rate, irregular or bursty timestamps).
2. **Ring buffers**: one ``(wristbands, samples, 3)`` array per group (:class:`WristRing`).
3. **Gate** (cheap, vectorised over all wristbands): a wristband with a new sample above
   ``GATE_G`` is examined; an **impact** is a sample above ``GATE_G`` that is the largest
   ``|a|`` within :data:`PEAK_HALF_S` either side (so the fall's hardest hit is found even
   while running, when every step crosses the gate). :func:`impacts_in` is that rule, used by
   the live shell on the ring and by :func:`candidate_impacts` on a whole array for training.
4. **Features** (:func:`impact_features`, only for candidates): a window from
   :data:`PRE_S` before to :data:`POST_S` after the impact, rotation-invariant (the wrist's axes
   differ between devices) and clipping-tolerant.
5. **Model**: :mod:`gateway.detection.fall_model` scores the features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

GRID_HZ = 50.0
GRID_DT = 1.0 / GRID_HZ
GATE_G = 2.0  # |a| that opens a candidate; falls in the shared data peak at >= 2.6 g
PEAK_HALF_S = 0.5  # an impact is the largest |a| within this time either side
PRE_S = 3.0  # seconds before the impact that the features look at
POST_S = 8.0  # seconds after the impact that the features look at (the decision time)
EARLY_POST_S = 4.0  # the impact-shape features look this far after it; later ones to POST_S
MIN_POST_S = 2.0  # with less data after the impact (stream stopped) no decision is made
MAX_GAP_S = 1.0  # longer gaps between samples start a new segment (reconnect)
RING_S = 16.0  # history kept per wristband: >= PRE_S + POST_S + slack for late decisions
LATE_S = 4.0  # "late" features: from here to POST_S after the impact
LATE_MIN_S = 0.5  # with less than this beyond LATE_S, the late features use the last 1.5 s held

PEAK_HALF = round(PEAK_HALF_S * GRID_HZ)
PRE = round(PRE_S * GRID_HZ)
POST = round(POST_S * GRID_HZ)
EARLY_POST = round(EARLY_POST_S * GRID_HZ)
MIN_POST = round(MIN_POST_S * GRID_HZ)
RING = round(RING_S * GRID_HZ)


# --- resampling ----------------------------------------------------------------------------


def clean_times(ts: FloatArray, xyz: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Drop samples whose time is not strictly after every earlier one (duplicates, reordered
    bursts) and rows with non-finite values, keeping the rest in order."""
    ok = np.isfinite(ts) & np.isfinite(xyz).all(axis=1)
    ts, xyz = ts[ok], xyz[ok]
    if ts.size < 2:
        return ts, xyz
    keep = np.ones(ts.size, dtype=bool)
    keep[1:] = ts[1:] > np.maximum.accumulate(ts)[:-1]
    return ts[keep], xyz[keep]


def resample_onto_grid(
    ts: FloatArray, xyz: FloatArray, first_grid_t: float
) -> tuple[FloatArray, float]:
    """Linear interpolation of samples ``(ts, xyz)`` at ``first_grid_t + k / GRID_HZ`` for every
    grid time up to ``ts[-1]``. Returns the grid samples and the next grid time not yet
    produced. ``ts`` must be increasing; grid times before ``ts[0]`` take the first value."""
    if ts.size == 0:
        return np.empty((0, 3)), first_grid_t
    count = int(np.floor((ts[-1] - first_grid_t) * GRID_HZ + 1e-9)) + 1
    if count <= 0:
        return np.empty((0, 3)), first_grid_t
    grid = first_grid_t + np.arange(count) * GRID_DT
    out = np.empty((count, 3))
    for axis in range(3):
        out[:, axis] = np.interp(grid, ts, xyz[:, axis])
    return out, first_grid_t + count * GRID_DT


def resample_recording(ts: FloatArray, xyz: FloatArray) -> FloatArray:
    """A whole recording onto the grid starting at its first sample (offline use)."""
    ts, xyz = clean_times(np.asarray(ts, float), np.asarray(xyz, float))
    out, _ = resample_onto_grid(ts, xyz, float(ts[0]) if ts.size else 0.0)
    return out


# --- candidates ----------------------------------------------------------------------------


def impacts_in(mag: FloatArray, lo: int, hi: int, first: int = 0) -> list[int]:
    """Impacts at indices ``[lo, hi)`` of ``mag``: above ``GATE_G``, larger than every sample
    up to ``PEAK_HALF`` before (not before ``first``, a segment start) and at least as large as
    every sample up to ``PEAK_HALF`` after. The caller makes sure ``hi + PEAK_HALF`` samples
    exist (or the stream ended there)."""
    out: list[int] = []
    for i in np.flatnonzero(mag[lo:hi] > GATE_G) + lo:
        before = mag[max(first, i - PEAK_HALF) : i]
        after = mag[i + 1 : i + PEAK_HALF + 1]
        if (before.size == 0 or mag[i] > before.max()) and (
            after.size == 0 or mag[i] >= after.max()
        ):
            out.append(int(i))
    return out


def candidate_impacts(mag: FloatArray) -> list[int]:
    """Every impact the live detector would find in a stream that ends with ``mag``."""
    return impacts_in(mag, 0, max(0, mag.size - PEAK_HALF))


# --- features ------------------------------------------------------------------------------

FEATURE_NAMES: tuple[str, ...] = (
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
N_FEATURES = len(FEATURE_NAMES)


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


def recording_candidates(grid_xyz: FloatArray) -> list[tuple[int, FloatArray]]:
    """Offline: every candidate of a recording already on the grid, with its features, exactly
    as the live gate and shell would compute them (candidates with too little data after the
    impact are skipped, as live)."""
    mag = np.linalg.norm(grid_xyz, axis=1)
    out: list[tuple[int, FloatArray]] = []
    for impact in candidate_impacts(mag):
        stop = min(mag.size, impact + POST)
        if stop - impact < MIN_POST:
            continue
        start = max(0, impact - PRE)
        out.append((impact, impact_features(grid_xyz[start:stop], impact - start)))
    return out


# --- ring buffers --------------------------------------------------------------------------


@dataclass(slots=True)
class GateHit:
    slot: int
    crossing: int  # absolute sample index on the slot's grid


class WristRing:
    """Ring buffers for a group of wristbands: ``xyz`` is ``(capacity, RING, 3)``; sample ``k``
    of slot ``s`` lives at ``xyz[s, k % RING]``. ``written[s]`` counts samples ever written.

    :meth:`gate` scans the samples that arrived since its last call, for every slot at once.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = max(1, capacity)
        self.xyz = np.zeros((self.capacity, RING, 3), dtype=np.float32)
        self.mag = np.zeros((self.capacity, RING), dtype=np.float32)
        self.written = np.zeros(self.capacity, dtype=np.int64)
        self.scan_from = np.zeros(self.capacity, dtype=np.int64)
        self.used = 0

    def add_slot(self) -> int:
        if self.used == self.capacity:
            self._grow(self.capacity * 2)
        slot = self.used
        self.used += 1
        return slot

    def _grow(self, capacity: int) -> None:
        def grow(a: np.ndarray) -> np.ndarray:
            out = np.zeros((capacity, *a.shape[1:]), dtype=a.dtype)
            out[: a.shape[0]] = a
            return out

        self.xyz = grow(self.xyz)
        self.mag = grow(self.mag)
        self.written = grow(self.written)
        self.scan_from = grow(self.scan_from)
        self.capacity = capacity

    def write(self, slot: int, samples: FloatArray) -> None:
        """Append grid samples ``(k, 3)`` to one slot."""
        k = samples.shape[0]
        if k == 0:
            return
        if k > RING:
            samples = samples[-RING:]
            self.written[slot] += k - RING
            k = RING
        pos = (self.written[slot] + np.arange(k)) % RING
        self.xyz[slot, pos] = samples
        self.mag[slot, pos] = np.sqrt(np.einsum("ij,ij->i", samples, samples))
        self.written[slot] += k

    def write_block(self, block: FloatArray) -> None:
        """Append ``(used, k, 3)`` samples to every slot at once (slots advancing together,
        e.g. a simulator or the benchmark). ``k`` must be <= RING."""
        k = block.shape[1]
        start = int(self.written[0])
        if not np.all(self.written[: self.used] == start):
            for slot in range(self.used):
                self.write(slot, block[slot])
            return
        pos = (start + np.arange(k)) % RING
        self.xyz[: self.used, pos] = block
        self.mag[: self.used, pos] = np.sqrt(np.einsum("ijk,ijk->ij", block, block))
        self.written[: self.used] += k

    def gate(self) -> list[GateHit]:
        """The first sample above ``GATE_G`` per slot among samples not scanned before, for
        every slot at once; afterwards every slot counts as scanned up to what it holds."""
        n = self.used
        if n == 0:
            return []
        written = self.written[:n]
        scan_from = np.maximum(self.scan_from[:n], written - RING)
        span = int((written - scan_from).max(initial=0))
        if span <= 0:
            return []
        offsets = np.arange(span)
        idx = scan_from[:, None] + offsets[None, :]
        valid = idx < written[:, None]
        mags = np.take_along_axis(self.mag[:n], idx % RING, axis=1)
        above = (mags > GATE_G) & valid
        hit_rows = np.flatnonzero(above.any(axis=1))
        first = above[hit_rows].argmax(axis=1)
        self.scan_from[:n] = written
        return [
            GateHit(int(r), int(scan_from[r] + f)) for r, f in zip(hit_rows, first, strict=True)
        ]

    def window(self, slot: int, start: int, stop: int) -> FloatArray:
        """A linear copy of samples ``[start, stop)`` of one slot (clamped to what is held)."""
        written = int(self.written[slot])
        start = max(start, written - RING, 0)
        stop = min(stop, written)
        if stop <= start:
            return np.empty((0, 3))
        pos = np.arange(start, stop) % RING
        return self.xyz[slot, pos].astype(np.float64)

    def magnitudes(self, slot: int, start: int, stop: int) -> FloatArray:
        written = int(self.written[slot])
        start = max(start, written - RING, 0)
        stop = min(stop, written)
        if stop <= start:
            return np.empty(0)
        return self.mag[slot, np.arange(start, stop) % RING].astype(np.float64)
