"""Fall detection maths: resampling, ring buffers, the impact gate and impact features.

Everything here is pure numpy and free of I/O and clocks; :mod:`gateway.detection.fall_alerts`
is the stateful shell that turns it into events.

The stages, shared by the live gateway, ``eldergate evaluate fall`` and offline training so
that all three see exactly the same numbers:

1. **Resample** every wristband onto a fixed :data:`GRID_HZ` grid by linear interpolation of
   its own sample times (any input rate, irregular or bursty timestamps).
2. **Ring buffers**: one ``(wristbands, samples, 3)`` array per group (:class:`WristRing`).
3. **Gate** (cheap, vectorised over all wristbands): a wristband with a new sample above
   ``GATE_G`` (``LOW_RATE_GATE_G`` for a wristband sampling below ``LOW_RATE_HZ``) is
   examined; an **impact** is a sample above that gate that is the largest
   ``|a|`` within :data:`PEAK_HALF_S` either side (so the fall's hardest hit is found even
   while running, when every step crosses the gate). :func:`impacts_in` is that rule, used by
   the live shell on the ring and by :func:`candidate_impacts` on a whole array for training.
4. **Features** (only for candidates): a window from :data:`PRE_S` before to :data:`POST_S`
   after the impact, rotation-invariant (the wrist's axes differ between devices) and
   clipping-tolerant. Computed for many candidates at once (:func:`window_features`,
   :func:`features_of`), one function per feature family, each vectorised over the candidates;
   :func:`impact_features` is the same for one window.
5. **Model**: :mod:`gateway.detection.fall_model` scores the features, and for candidates the
   trees do not rule out, the window as sequences (:mod:`gateway.detection.fall_sequence`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

GRID_HZ = 50.0
GRID_DT = 1.0 / GRID_HZ
GATE_G = 2.0  # |a| that opens a candidate; falls in the shared data peak at >= 2.6 g
# A sensor sampling at 20-30 Hz reads a short impact off its peak (FallAllD falls resampled to
# 20-30 Hz: 5 % stay below 2 g, 0.6 % below 1.6 g), so slow wristbands get a lower gate.
LOW_RATE_HZ = 40.0
LOW_RATE_GATE_G = 1.6
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


def source_rate(ts: FloatArray) -> float:
    """Mean sampling rate of increasing sample times (inf for fewer than 2 or no span)."""
    span = float(ts[-1] - ts[0]) if ts.size > 1 else 0.0
    return (ts.size - 1) / span if span > 0 else float("inf")


def gate_level(source_hz: float) -> float:
    """The gate for a wristband sampling at ``source_hz`` (its own rate, not the grid's)."""
    return LOW_RATE_GATE_G if source_hz < LOW_RATE_HZ else GATE_G


# --- candidates ----------------------------------------------------------------------------


def impacts_in(
    mag: FloatArray, lo: int, hi: int, first: int = 0, gate: float = GATE_G
) -> list[int]:
    """Impacts at indices ``[lo, hi)`` of ``mag``: above ``gate``, larger than every sample
    up to ``PEAK_HALF`` before (not before ``first``, a segment start) and at least as large as
    every sample up to ``PEAK_HALF`` after. The caller makes sure ``hi + PEAK_HALF`` samples
    exist (or the stream ended there)."""
    out: list[int] = []
    for i in np.flatnonzero(mag[lo:hi] > gate) + lo:
        before = mag[max(first, i - PEAK_HALF) : i]
        after = mag[i + 1 : i + PEAK_HALF + 1]
        if (before.size == 0 or mag[i] > before.max()) and (
            after.size == 0 or mag[i] >= after.max()
        ):
            out.append(int(i))
    return out


def candidate_impacts(mag: FloatArray, gate: float = GATE_G) -> list[int]:
    """Every impact the live detector would find in a stream that ends with ``mag``."""
    return impacts_in(mag, 0, max(0, mag.size - PEAK_HALF), gate=gate)


# --- features ------------------------------------------------------------------------------

RAW_FEATURE_NAMES: tuple[str, ...] = (
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
# Every feature is also computed on the window low-passed by a moving average of SMOOTH grid
# samples (0.1 s, first zero at 10 Hz): a 20-30 Hz sensor and a 238 Hz one read that signal
# alike, so the model can lean on it where the raw impact shape depends on the sampling rate.
SMOOTH = 5
FEATURE_NAMES: tuple[str, ...] = RAW_FEATURE_NAMES + tuple(f"lp_{n}" for n in RAW_FEATURE_NAMES)
N_RAW_FEATURES = len(RAW_FEATURE_NAMES)
N_FEATURES = len(FEATURE_NAMES)


def _s(seconds: float) -> int:
    return round(seconds * GRID_HZ)


def _norms(xyz: FloatArray) -> FloatArray:
    """Euclidean norms along the last axis."""
    return np.sqrt(np.einsum("...k,...k->...", xyz, xyz))


class Windows:
    """``m`` candidates' windows of the same length ``n`` with the impact at the same index
    ``impact``: ``xyz`` is ``(m, n, 3)`` on the grid, in g. Every feature is computed for all
    ``m`` at once along axis 1; batches of windows that differ in length or impact index are
    split into such groups (:func:`features_of`).

    ``padded`` (:func:`_zero_padded`) is the windows followed by one sample of zeros at index
    ``n``: gathers of several segments of different lengths at once point their unused
    places there, and adding zeros to a sum changes nothing."""

    def __init__(self, padded: FloatArray, impact: int) -> None:
        self.padded = padded
        self.n = n = padded.shape[1] - 1
        self.impact = impact
        self.xyz = padded[:, :n]
        self.flat = padded.reshape(padded.shape[0], -1)  # (m, 3 n + 3): components in a row
        self.padded_mag = _norms(padded)
        self.mag = self.padded_mag[:, :n]
        if n > 1:
            # step j: sample j -> j + 1 (np.diff's subtraction without its Python overhead)
            self.step = _norms(np.subtract(self.xyz[:, 1:], self.xyz[:, :-1]))
        else:
            self.step = np.zeros((padded.shape[0], 1))

    def until(self, seconds: float) -> Windows:
        """The same windows cut ``seconds`` after the impact (``padded`` stays the whole)."""
        stop = self.impact + _s(seconds)
        if stop >= self.n:
            return self
        out = Windows.__new__(Windows)
        out.padded, out.flat = self.padded, self.flat
        out.padded_mag = self.padded_mag
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


def _length(s: slice) -> int:
    return max(0, s.stop - s.start)


def _components(index: IntArray) -> IntArray:
    """``(*index.shape, 3)``: where the components of the samples at ``index`` are in
    ``Windows.flat``. Gathering them with np.take is several times faster than gathering rows
    of three (np.take along axis 1 of ``padded``), and fancy indexing slower still."""
    return 3 * index[..., None] + np.arange(3)


def _gather_index(spans: list[slice], zero: int, block: int = 1) -> IntArray:
    """``(longest, len(spans))`` indices of the samples of each span, ``zero`` after its end;
    with ``block`` > 1 only whole blocks of it are taken. Spans side by side: einsum then adds
    each span in time order (as over its own samples) along a long inner loop."""
    lengths = [_length(s) // block * block for s in spans]
    index = np.full((max(1, *lengths), len(spans)), zero, dtype=np.int64)
    for col, (s, k) in enumerate(zip(spans, lengths, strict=True)):
        index[:k, col] = np.arange(s.start, s.start + k)
    return index


# The orientation segments (Gravity): pre, post, the three pre-impact
# references a return is measured against, and the last 1.5 s of the early window.
_GRAVITY_SPANS = (
    (-2.5, -0.5),
    (1.5, EARLY_POST_S),
    (-3.0, -2.0),
    (-2.0, -1.0),
    (-1.0, -0.4),
    (EARLY_POST_S - 1.5, EARLY_POST_S),
)
# Velocity changes (gravity taken out as if the arm did not turn, no gyroscope): the impact
# against the post-impact orientation, against the pre-impact one, and the descent against it.
_DV_SPANS = ((-0.1, 0.5), (-0.1, 0.3), (-1.0, -0.05))
# Features that end divided by the grid rate (counts and sums of samples, in seconds).
_PER_SECOND = (
    "impact_area_gs",
    "high_time_s",
    "peak_width_s",
    "impact_dv_post_gs",
    "impact_dv_pre_gs",
    "freefall_time_s",
    "descent_gs",
    "descent_velocity_gs",
    "fast_descent_gs",
    "pre_velocity_gs",
)
_ROTATION_BLOCK = 5


class _Plan:
    """What the feature pass cuts out of windows of ``n`` samples with the impact at index
    ``impact`` (the early windows ``e`` hold ``ne`` of them), worked out once per span: the
    same few spans come back in every tick.

    Means, fractions, standard deviations and per-second values are computed as sums (of
    squares for the deviations) and divided all at once at the end by ``divisors`` (the
    sample count, 1 where a default stands in, or GRID_HZ), the rows ``roots`` then square
    rooted: the same divisions as one at a time."""

    def __init__(self, n: int, impact: int) -> None:
        ne = min(n, impact + EARLY_POST)
        self.ne = ne

        def seg(a: float, b: float) -> slice:
            return _seg(ne, impact, a, b)

        def step_seg(a: float, b: float) -> slice:  # of the ne - 1 steps of e
            s = seg(a, b)
            return slice(min(s.start, ne - 1), min(s.stop, ne - 1))

        def at(seconds: float) -> int:
            return max(0, min(n, impact + _s(seconds)))

        lo, hi = at(LATE_S), at(POST_S)
        if hi - lo < _s(LATE_MIN_S):
            lo = max(at(1.5), hi - _s(1.5))
        self.late = slice(lo, hi)
        self.late_steps = slice(lo, max(lo, hi - 1))
        self.after = slice(at(2.0), hi)

        gravity = [seg(a, b) for a, b in _GRAVITY_SPANS]
        self.gravity_spans = gravity
        self.unit_span = units = slice(gravity[0].start, gravity[1].stop)
        self.unit_spans = [slice(s.start - units.start, s.stop - units.start) for s in gravity[:2]]
        # means of the orientation spans, the late span, the unit vectors before and after
        lengths = [_length(s) for s in [*gravity, self.late, *gravity[:2]]]
        self.gravity_divisors = np.array([max(1, k) for k in lengths], dtype=float)[:, None, None]
        self.gravity_held = [k > 0 for k in lengths]
        self.spread_held = [k >= 2 for k in lengths[:2]]
        dv = [seg(a, b) for a, b in _DV_SPANS]
        self.dv_index = _gather_index(dv, n)
        # 0 past each end; as large as what it multiplies: broadcasting along the short last
        # axis would make numpy's inner loop three elements long
        self.dv_mask = np.repeat((self.dv_index != n).astype(float)[:, :, None], 3, axis=2)
        self.dv_components = _components(self.dv_index)

        pre_turn, post_turn = seg(-1.5, 0.0), gravity[1]
        self.turn_blocks = (
            _length(pre_turn) // _ROTATION_BLOCK,
            _length(post_turn) // _ROTATION_BLOCK,
        )
        turns = _gather_index([pre_turn, post_turn], n, _ROTATION_BLOCK)
        blocks = np.concatenate(
            [
                turns[: self.turn_blocks[0] * _ROTATION_BLOCK, 0],
                turns[: self.turn_blocks[1] * _ROTATION_BLOCK, 1],
            ]
        )
        self.turn_components = _components(blocks.reshape(-1, _ROTATION_BLOCK).T)

        exclude = slice(max(0, impact - _s(0.4)), impact + _s(0.4))
        self.exclude = exclude
        self.outside = np.ones(ne, dtype=bool)
        self.outside[exclude] = False
        self.any_outside = bool(self.outside.any())

        # counts of samples meeting a condition, summed per condition: row 0
        # |a| > 2, 1 |a| < 0.7, 2 ||a| - 1| > 0.1, 3 |a| above half the peak, 4 step < 0.02
        counted = {
            "high_time_s": (0, seg(-1.0, 1.0)),
            "freefall_time_s": (1, seg(-1.5, 0.0)),
            "pre_active_fraction": (2, seg(-3.0, -0.5)),
            "post_active_fraction": (2, self.after),
            "peak_width_s": (3, seg(-0.3, 0.3)),
            "post_still_fraction": (4, step_seg(1.5, EARLY_POST_S - 0.02)),
            "late_still_fraction": (4, self.late_steps),
        }
        self.counted = tuple(counted)
        # np.add.reduceat sums [start, stop) at even places; an empty span sums the sample of
        # no condition after the last (a reduceat of an empty span gives its first sample)
        bounds = [(s.start, s.stop) if _length(s) else (n, n) for _, s in counted.values()]
        self.count_bounds = np.array(bounds).ravel()
        self.count_rows = np.array([row for row, _ in counted.values()])
        self.count_columns = 2 * np.arange(len(counted))
        self.late_steps_held = _length(self.late_steps) > 0

        per_sample = {
            "pre_mean_g": seg(-3.0, -1.0),
            "pre_step_g": step_seg(-3.0, -0.5),
            "post_jerk": step_seg(1.5, EARLY_POST_S - 0.02),
            "post_mean_g": seg(1.5, EARLY_POST_S),
            "pre_energy": seg(-1.0, -0.05),
            "post_dynamic_g": seg(1.5, EARLY_POST_S),
            "pre_active_fraction": seg(-3.0, -0.5),
            "post_active_fraction": self.after,
            "post_still_fraction": step_seg(1.5, EARLY_POST_S - 0.02),
            "late_still_fraction": self.late_steps,
        }
        deviations = {
            "impact_std_g": seg(-0.5, 0.5),
            "pre_std_g": seg(-3.0, -1.0),
            "bounce_std_g": seg(0.3, 1.5),
            "post_std_g": seg(1.5, EARLY_POST_S),
            "late_post_std_g": seg(EARLY_POST_S - 1.5, EARLY_POST_S),
            "late_std_g": self.late,
        }
        # the spans of the deviations with two samples or more, one after the other in a row
        held = [(name, s) for name, s in deviations.items() if _length(s) >= 2]
        self.deviations = tuple(deviations)
        self.deviations_held = tuple(name for name, _ in held)
        ends = np.cumsum([0] + [_length(s) for _, s in held]).tolist()
        self.deviation_spans = tuple(slice(a, b) for a, b in itertools.pairwise(ends))
        self.deviation_index = np.array(
            [j for _, s in held for j in range(s.start, s.stop)], dtype=np.int64
        )
        self.deviation_lengths = np.array([[float(_length(s))] for _, s in held])
        self.deviation_of_sample = np.repeat(np.arange(len(held)), np.diff(ends))

        # the inner samples of w (1..n - 2) that count as peaks: those of e (not its ends)
        # outside `exclude`, at 1.6 g; those of the +-3 s around the impact (not its ends)
        # outside +-0.4 s of the impact, at 2 g (the ends of a span have no two neighbours)
        inner = np.arange(1, n - 1)

        def peak_places(first: int, stop: int, excluded: slice) -> BoolArray:
            return (
                (inner > first)
                & (inner < stop - 1)
                & (
                    (inner < max(first + 1, excluded.start))
                    | (inner >= max(first + 1, excluded.stop))
                )
            )

        around, centre = slice(at(-3.0), at(3.0)), impact - at(-3.0)
        self.around = around
        self.peak_places = np.array(
            [
                peak_places(0, ne, exclude),
                peak_places(
                    around.start,
                    around.stop,
                    slice(around.start + centre - _s(0.4), around.start + centre + _s(0.4)),
                ),
            ]
        )[:, None, :]
        self.peak_levels = np.array([1.6, 2.0])[:, None, None]

        divisors = dict.fromkeys(RAW_FEATURE_NAMES, 1.0)
        divisors.update(dict.fromkeys(_PER_SECOND, GRID_HZ))
        for name, s in per_sample.items():
            divisors[name] = float(max(1, _length(s)))
        for name, s in deviations.items():
            divisors[name] = float(_length(s)) if _length(s) >= 2 else 1.0
        self.divisors = np.array([[divisors[name]] for name in RAW_FEATURE_NAMES])
        self.roots = np.array([RAW_FEATURE_NAMES.index(name) for name in deviations])


_plan = functools.lru_cache(maxsize=256)(_Plan)


# Reductions along axis 1 of ``x`` (m, k); with k == 0 the value the per-impact code gave for
# an empty slice. They call the ufuncs' reduce directly (ndarray.mean and .std cost several
# microseconds of Python each) in the order numpy's own mean and std add up.

_add = np.add.reduce


def _sum_or(x: FloatArray, default: float) -> FloatArray:
    """Sum along axis 1, ``default`` for an empty slice (``_Plan`` divides by 1 then)."""
    return _add(x, axis=1) if x.shape[1] else np.full(x.shape[0], default)


def _max(x: FloatArray, default: float) -> FloatArray:
    return np.maximum.reduce(x, axis=1) if x.shape[1] else np.full(x.shape[0], default)


def _min(x: FloatArray, default: float) -> FloatArray:
    return np.minimum.reduce(x, axis=1) if x.shape[1] else np.full(x.shape[0], default)


def _angles(*pairs: tuple[FloatArray, FloatArray]) -> FloatArray:
    """The angles between the ``(m, 3)`` rows of each pair, all in one pass: ``(pairs, m)``;
    0 where either vector is shorter than 1e-6."""
    count = len(pairs)
    uv = np.array([u for u, _ in pairs] + [v for _, v in pairs])  # (2 pairs, m, 3)
    # component by component, in the order of the per-impact code (x*x + y*y) + z*z: near
    # 0 degrees the angle amplifies the rounding of the dot product
    squares = uv * uv
    norms = np.sqrt(squares[..., 0] + squares[..., 1] + squares[..., 2])
    products = uv[:count] * uv[count:]
    dot = products[..., 0] + products[..., 1] + products[..., 2]
    nu, nv = norms[:count], norms[count:]
    ok = (nu >= 1e-6) & (nv >= 1e-6)
    cos = dot / np.where(ok, nu * nv, 1.0)
    return np.where(ok, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), 0.0)


def _movements(mag: FloatArray, places: BoolArray, levels: FloatArray) -> FloatArray:
    """``(len(levels), m)``: peaks of ``mag`` (m, k) above each level at the inner samples
    ``places`` allows for it (``(len(levels), 1, k - 2)``); peaks closer than 0.25 s are one
    movement."""
    m, k = mag.shape
    inner = mag[:, 1:-1]
    peak = (inner > levels) & (inner >= mag[:, :-2]) & (inner > mag[:, 2:]) & places
    rows, cols = np.nonzero(peak.reshape(-1, k - 2))  # row by row, in time order
    # the peak before each in its row; before a row's first, as if one lay k samples earlier
    previous = np.full_like(cols, -k - 1)
    same_row = rows[1:] == rows[:-1]
    previous[1:][same_row] = cols[:-1][same_row]
    counts = np.bincount(rows[cols - previous > _s(0.25)], minlength=len(levels) * m)
    return counts.reshape(len(levels), m).astype(np.float64)


# --- feature families ----------------------------------------------------------------------
# Each family returns {feature name: (m,) values}. ``e`` holds the first EARLY_POST_S after the
# impact (the impact-shape features), ``w`` up to POST_S (the late features), ``g`` the
# orientation estimates and sums several families share, ``p`` the spans' _Plan. A new
# feature: add its name to FEATURE_NAMES and compute it in a family (or add a family to
# _FAMILIES) the same way, for all m at once; a mean, fraction, deviation or per-second value
# as its sum, with its divisor in _Plan.

Features = dict[str, FloatArray]


class Gravity:
    """Orientation (mean specific force) before and after the impact, the pre-impact
    references a return is measured against, the late orientations and the spread before and
    after (1 - |mean unit vector|: 0 while the arm holds one orientation)."""

    def __init__(self, e: Windows, w: Windows, p: _Plan) -> None:
        units = p.unit_span  # from the start of pre to the end of post
        unit = e.xyz[:, units] / np.maximum(e.mag[:, units], 1e-6)[:, :, None]
        spans = [e.xyz[:, s] for s in p.gravity_spans]
        spans += [w.xyz[:, p.late]] + [unit[:, s] for s in p.unit_spans]
        # einsum adds in time order (as numpy's mean) and is several times faster here
        means = np.array([np.einsum("ijk->ik", x) for x in spans]) / p.gravity_divisors
        held = p.gravity_held
        self.post_xyz = spans[1]
        self.pre = means[0] if held[0] else e.xyz[:, 0]
        self.post = means[1] if held[1] else e.xyz[:, -1]
        self.refs = [means[r] for r in (2, 3, 4) if held[r]]
        self.early_late = means[5] if held[5] else self.post  # none held: the tilt itself
        self.late = means[6] if held[6] else w.xyz[:, -1]
        spread = 1.0 - _norms(means[7:])
        zeros = np.zeros(w.xyz.shape[0])
        self.pre_spread = spread[0] if p.spread_held[0] else zeros
        self.post_spread = spread[1] if p.spread_held[1] else zeros


def _impact_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """The impact itself: height, area, width, jerk."""
    refs = np.array([g.post, g.pre, g.pre]).transpose(1, 0, 2)[:, None]
    moved = (np.take(w.flat, p.dv_components, axis=1) - refs) * p.dv_mask
    dv_post, dv_pre, descent = _norms(np.einsum("ijsk->isk", moved)).T
    return {
        "peak_g": e.mag[:, e.impact],
        "impact_area_gs": _add(np.maximum(e.mag[:, e.seg(-0.25, 0.25)] - 1.0, 0.0), axis=1),
        "jerk_peak": _max(e.step[:, e.seg(-0.25, 0.25)], 0.0),
        "impact_dv_post_gs": dv_post,
        "impact_dv_pre_gs": dv_pre,
        "pre_velocity_gs": descent,
    }


def _descent_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """Free fall and descent in the second before the impact."""
    pre_fall = e.mag[:, e.seg(-1.0, -0.05)]
    # velocity along the pre-impact "up" (specific force reads +1 g along it at rest)
    up = g.pre / np.maximum(np.sqrt(np.einsum("ij,ij->i", g.pre, g.pre)), 1e-6)[:, None]
    along = np.matmul(e.xyz, up[:, :, None])[:, :, 0] - 1.0
    return {
        "freefall_min_g": _min(pre_fall, 1.0),
        "descent_gs": _add(1.0 - pre_fall, axis=1),
        "pre_energy": _sum_or((pre_fall - 1.0) ** 2, 0.0),
        "descent_velocity_gs": _add(along[:, e.seg(-1.0, 0.0)], axis=1),
        "fast_descent_gs": _add(along[:, e.seg(-0.4, 0.0)], axis=1),
    }


def _before_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """What the arm was doing in the seconds before."""
    pre = e.mag[:, e.seg(-3.0, -1.0)]
    return {
        "pre_mean_g": _sum_or(pre, 1.0),
        "pre_step_g": _sum_or(e.step[:, e.seg(-3.0, -0.5)], 0.0),
        "pre_spread": g.pre_spread,
    }


def _settling_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """How the arm settled in the first EARLY_POST_S after the impact."""
    post = e.mag[:, e.seg(1.5, EARLY_POST_S)]
    return {
        "post_jerk": _sum_or(e.step[:, e.seg(1.5, EARLY_POST_S - 0.02)], 0.0),
        "post_mean_g": _sum_or(post, 1.0),
        "post_max_g": _max(e.mag[:, e.seg(1.0, EARLY_POST_S)], 1.0),
        "post_spread": g.post_spread,
        "post_dynamic_g": _sum_or(_norms(g.post_xyz - g.post[:, None, :]), 0.0),
    }


def _rotation_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """Total angle the orientation turns through before and after the impact, from means of
    blocks of _ROTATION_BLOCK samples (both spans' blocks in one pass)."""
    pre_blocks, post_blocks = p.turn_blocks
    zeros = np.zeros(e.xyz.shape[0])
    if pre_blocks < 2 and post_blocks < 2:
        return {"pre_rotation_deg": zeros, "post_rotation_deg": zeros}
    blocks = np.take(w.flat, p.turn_components, axis=1)  # (m, block, blocks, 3)
    means = np.einsum("ibjk->ijk", blocks) / _ROTATION_BLOCK
    unit = means / np.maximum(_norms(means), 1e-6)[:, :, None]
    # in C order, as the per-span code had it: the sums below add pairwise along rows only then
    cos = np.clip(np.einsum("ijk,ijk->ij", unit[:, 1:], unit[:, :-1], order="C"), -1.0, 1.0)
    turns = np.degrees(np.arccos(cos))  # turns[:, pre_blocks - 1] crosses between the spans
    return {
        "pre_rotation_deg": _add(turns[:, : pre_blocks - 1], axis=1) if pre_blocks >= 2 else zeros,
        "post_rotation_deg": (_add(turns[:, pre_blocks:], axis=1) if post_blocks >= 2 else zeros),
    }


def _count_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """How many samples of a span meet a condition (as times or fractions of the span), all
    in one reduction: the counts are exact in any order."""
    m, n = w.mag.shape
    flags = np.zeros((m, 5, n + 1), dtype=bool)  # flags[:, c, j]: sample j meets condition c
    np.greater(w.mag, 2.0, out=flags[:, 0, :n])
    np.less(w.mag, 0.7, out=flags[:, 1, :n])
    np.greater(np.abs(w.mag - 1.0), 0.1, out=flags[:, 2, :n])
    half_peak = 1.0 + 0.5 * (e.mag[:, e.impact] - 1.0)
    np.greater(w.mag, half_peak[:, None], out=flags[:, 3, :n])
    np.less(w.step[:, : n - 1], 0.02, out=flags[:, 4, : n - 1])
    # in 16 bits (a window has fewer than 65,536 samples): casting the flags to float64 first
    # would take a copy of them eight times their size
    sums = np.add.reduceat(flags.view(np.uint8), p.count_bounds, axis=2, dtype=np.uint16)
    counts = sums[:, p.count_rows, p.count_columns].T.astype(np.float64)
    values = dict(zip(p.counted, counts, strict=True))
    if not p.late_steps_held:
        values["late_still_fraction"] = np.ones(m)
    return values


def _orientation_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """How the wrist turned: before vs after, against the impact's own direction, and where
    it lay late (LATE_S..POST_S, or the last 1.5 s that arrived when the stream stopped
    before LATE_S + LATE_MIN_S: a band that stops streaming after an impact is judged on how
    it was lying when it stopped)."""
    hit = e.xyz[:, e.impact]
    refs = len(g.refs)
    angles = _angles(
        (g.pre, g.post),
        (g.pre, g.early_late),
        (hit, g.pre),
        (hit, g.post),
        (g.pre, g.late),
        *((r, g.post) for r in g.refs),
        *((r, g.late) for r in g.refs),
    )
    tilt, late_tilt, vs_pre, vs_post, late_vs_pre = angles[:5]
    return {
        "tilt_deg": tilt,
        "late_tilt_deg": late_tilt,
        "impact_vs_pre_deg": vs_pre,
        "impact_vs_post_deg": vs_post,
        "return_tilt_deg": np.minimum.reduce(angles[5 : 5 + refs]) if refs else tilt,
        "late_vs_pre_deg": late_vs_pre,
        "late_return_tilt_deg": np.minimum.reduce(angles[5 + refs :]) if refs else late_vs_pre,
    }


def _repetition_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """Other peaks around the impact (hand impacts and clapping repeat)."""
    i0 = e.impact
    if p.any_outside:
        outside = np.maximum.reduce(e.mag, axis=1, where=p.outside, initial=-np.inf)
        second = outside / np.maximum(e.mag[:, i0], 1e-6)
    else:
        second = np.zeros(e.mag.shape[0])
    if w.n >= 3:
        peak_count, peaks_2g = _movements(w.mag, p.peak_places, p.peak_levels)
    else:
        peak_count = peaks_2g = np.zeros(w.mag.shape[0])
    return {
        "peak_count": peak_count,
        "second_peak_ratio": second,
        "peaks_2g": peaks_2g,
        "periodicity": _periodicity(w.mag[:, p.around]),
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
    shifted = np.ndarray((m, lags, k), np.float64, padded, _s(0.2) * step, (row, step, step))
    lagged = np.einsum("ij,ilj->il", centred, shifted)
    periodic = energy > 1e-9
    return np.where(
        periodic, np.maximum.reduce(lagged, axis=1) / np.where(periodic, energy, 1.0), 0.0
    )


def _deviation_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """Standard deviations of |a| (as sums of squared deviations) over the impact, before it,
    the bounce, after it, its last 1.5 s and late: all spans gathered into one row."""
    m = w.mag.shape[0]
    values = {name: np.zeros(m) for name in p.deviations}  # fewer than two samples
    if p.deviations_held:
        x = np.take(w.mag, p.deviation_index, axis=1)
        means = np.array([_add(x[:, s], axis=1) for s in p.deviation_spans]) / p.deviation_lengths
        # in place: at 10 candidates these rows are large enough that fresh ones cost
        centred = np.subtract(x, np.take(means.T, p.deviation_of_sample, axis=1), out=x)
        squares = np.multiply(centred, centred, out=centred)
        values.update(
            zip(
                p.deviations_held,
                (_add(squares[:, s], axis=1) for s in p.deviation_spans),
                strict=True,
            )
        )
    return values


def _late_family(e: Windows, w: Windows, g: Gravity, p: _Plan) -> Features:
    """LATE_S..POST_S after the impact (or the last 1.5 s held, see _orientation_family):
    still lying, or up and about again?"""
    return {
        "late_max_g": _max(w.mag[:, p.after], 1.0),
    }


_FAMILIES = (
    _impact_family,
    _descent_family,
    _before_family,
    _settling_family,
    _rotation_family,
    _count_family,
    _orientation_family,
    _repetition_family,
    _deviation_family,
    _late_family,
)


def _smooth_into(xyz: FloatArray, out: FloatArray) -> None:
    half = SMOOTH // 2
    m, n = xyz.shape[:2]
    padded = np.empty((m, n + 2 * half, 3))  # the ends repeat the edge values
    padded[:, :half] = xyz[:, :1]
    padded[:, half : half + n] = xyz
    padded[:, half + n :] = xyz[:, -1:]
    csum = np.empty((m, n + 2 * half + 1, 3))
    csum[:, 0] = 0.0
    np.cumsum(padded, axis=1, out=csum[:, 1:])
    np.subtract(csum[:, SMOOTH:], csum[:, :-SMOOTH], out=out)
    out /= SMOOTH


def smooth(xyz: FloatArray) -> FloatArray:
    """Centred moving average of ``SMOOTH`` samples along axis 1 of ``(m, n, 3)`` windows,
    the ends padded with their edge values (nothing beyond the window is assumed)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    out = np.empty(xyz.shape)
    _smooth_into(xyz, out)
    return out


def _features(padded: FloatArray, impact: int) -> FloatArray:
    """``(N_RAW_FEATURES, m)``: the features of windows ``padded`` as in :class:`Windows`."""
    windows = Windows(padded, impact)
    plan = _plan(windows.n, impact)
    early = windows.until(EARLY_POST_S)
    gravity = Gravity(early, windows, plan)
    values: Features = {}
    for family in _FAMILIES:
        values.update(family(early, windows, gravity, plan))
    out = np.array([values[name] for name in RAW_FEATURE_NAMES]) / plan.divisors
    out[plan.roots] = np.sqrt(out[plan.roots])
    return out


def _zero_padded(xyz: FloatArray, copies: int = 1) -> FloatArray:
    """``copies`` times the ``m`` windows ``xyz`` followed by a sample of zeros
    (:class:`Windows`): the first ``m`` filled with them, the others for the caller to fill."""
    m, n = xyz.shape[:2]
    out = np.empty((copies * m, n + 1, 3))
    out[:m, :n] = xyz
    out[:, n] = 0.0
    return out


def raw_window_features(xyz: FloatArray, impact: int) -> FloatArray:
    """``(m, N_RAW_FEATURES)``: the RAW_FEATURE_NAMES of windows as in
    :func:`window_features`."""
    return _features(_zero_padded(np.asarray(xyz, dtype=np.float64)), impact).T


def window_features(xyz: FloatArray, impact: int) -> FloatArray:
    """``(m, N_FEATURES)`` features of ``m`` candidates whose windows ``xyz`` (``(m, n, 3)``
    on the grid, in g) hold the same span around their impact: whatever exists of
    ``[impact - PRE, impact + POST)``, the impact at index ``impact``, with >= ``MIN_POST``
    samples after it. Columns in FEATURE_NAMES order: the raw features, then the same on the
    low-passed windows (:func:`smooth`)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    m, n = xyz.shape[:2]
    # both versions of every window in one pass: half the per-call cost of the families
    both = _zero_padded(xyz, copies=2)
    _smooth_into(xyz, both[m:, :n])
    out = _features(both, impact).T
    return np.concatenate([out[:m], out[m:]], axis=1)


def impact_features(window: FloatArray, impact: int) -> FloatArray:
    """Features of one candidate: ``window`` is ``(n, 3)`` as in :func:`window_features`."""
    return window_features(np.asarray(window, dtype=np.float64)[None], impact)[0]


def by_span(
    source: Callable[[IntArray, int, int], FloatArray],
    starts: IntArray,
    impacts: IntArray,
    stops: IntArray,
    compute: Callable[[FloatArray, int], tuple[npt.NDArray[np.generic], ...]],
) -> tuple[npt.NDArray[np.generic], ...]:
    """``compute`` (arrays of many windows with the same span, such as
    ``(window_features(xyz, impact),)``) of candidates whose windows differ: candidate ``r``
    holds samples ``[starts[r], stops[r])`` around its impact at ``impacts[r]`` (all absolute
    indices). Candidates holding the same span relative to their impact are computed together;
    ``source(rows, before, after)`` gives their ``(len(rows), before + after, 3)`` windows
    from ``before`` samples before the impact to ``after`` samples after it. Rows of each
    result follow the candidates."""
    groups: dict[tuple[int, int], list[int]] = {}
    spans = zip((impacts - starts).tolist(), (stops - impacts).tolist(), strict=True)
    for row, span in enumerate(spans):
        groups.setdefault(span, []).append(row)
    out: list[npt.NDArray[np.generic]] = []
    for (before, after), rows in groups.items():
        index = np.array(rows, dtype=np.int64)
        parts = compute(source(index, before, after), before)
        if not out:
            out = [np.empty((impacts.size, *p.shape[1:]), dtype=p.dtype) for p in parts]
        for whole, part in zip(out, parts, strict=True):
            whole[index] = part
    if not out:
        raise ValueError("no candidates")
    return tuple(out)


def features_of(
    source: Callable[[IntArray, int, int], FloatArray],
    starts: IntArray,
    impacts: IntArray,
    stops: IntArray,
) -> FloatArray:
    """:func:`window_features` of candidates whose windows differ (see :func:`by_span`)."""
    if impacts.size == 0:
        return np.empty((0, N_FEATURES))

    def features(xyz: FloatArray, impact: int) -> tuple[FloatArray]:
        return (window_features(xyz, impact),)

    return np.asarray(by_span(source, starts, impacts, stops, features)[0], dtype=np.float64)


def grid_spans(grid: FloatArray, impacts: IntArray) -> tuple[IntArray, IntArray]:
    """``(starts, stops)`` of the windows candidates at ``impacts`` of a whole recording on the
    grid are decided on, as live: up to ``PRE`` before and ``POST`` after, within the grid."""
    return np.maximum(impacts - PRE, 0), np.minimum(impacts + POST, len(grid))


def grid_source(grid: FloatArray, impacts: IntArray) -> Callable[[IntArray, int, int], FloatArray]:
    """The ``source`` of :func:`by_span` for candidates at ``impacts`` of one grid array."""

    def windows(rows: IntArray, before: int, after: int) -> FloatArray:
        return grid[impacts[rows, None] + np.arange(-before, after)]

    return windows


def recording_candidates(
    grid_xyz: FloatArray, gate: float = GATE_G
) -> list[tuple[int, FloatArray]]:
    """Offline: every candidate of a recording already on the grid, with its features, exactly
    as the live gate and shell would compute them (candidates with too little data after the
    impact are skipped, as live). ``gate`` is :func:`gate_level` of the source's rate."""
    grid = np.asarray(grid_xyz, dtype=np.float64)
    mag = np.linalg.norm(grid, axis=1)
    impacts = np.array(
        [i for i in candidate_impacts(mag, gate) if min(mag.size, i + POST) - i >= MIN_POST],
        dtype=np.int64,
    )
    if impacts.size == 0:
        return []
    starts, stops = grid_spans(grid, impacts)
    feats = features_of(grid_source(grid, impacts), starts, impacts, stops)
    return [(int(i), row) for i, row in zip(impacts, feats, strict=True)]


# --- ring buffers --------------------------------------------------------------------------


@dataclass(slots=True)
class GateHit:
    slot: int
    crossing: int  # absolute sample index on the slot's grid


class WristRing:
    """Ring buffers for a group of wristbands: ``xyz`` is ``(capacity, RING, 3)``; sample ``k``
    of slot ``s`` lives at ``xyz[s, k % RING]``. ``written[s]`` counts samples ever written.

    :meth:`gate` scans the samples that arrived since its last call, for every slot at once,
    against each slot's ``gate_g`` (:func:`gate_level` of its wristband's rate).
    While every slot has written, and been scanned, up to the same sample (blocks for all
    slots at once), both use plain slices of the ring instead of per-slot gathers.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = max(1, capacity)
        self.xyz = np.zeros((self.capacity, RING, 3), dtype=np.float32)
        self.mag = np.zeros((self.capacity, RING), dtype=np.float32)
        self.written = np.zeros(self.capacity, dtype=np.int64)
        self.scan_from = np.zeros(self.capacity, dtype=np.int64)
        self.gate_g = np.full(self.capacity, GATE_G, dtype=np.float32)  # as mag: no upcast
        self.used = 0
        self._written_all: int | None = 0  # what every used slot has written, if the same
        self._scanned_all: int | None = 0  # where every used slot's scan starts, if the same

    def add_slot(self) -> int:
        if self.used == self.capacity:
            self._grow(self.capacity * 2)
        slot = self.used
        self.used += 1
        self.gate_g[slot] = GATE_G
        if self._written_all != 0:
            self._written_all = None
        if self._scanned_all != 0:
            self._scanned_all = None
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
        self.gate_g = grow(self.gate_g)
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
        self._written_all = None

    def write_block(self, block: FloatArray) -> None:
        """Append ``(used, k, 3)`` samples to every slot at once (slots advancing together,
        e.g. a simulator or the benchmark). ``k`` must be <= RING."""
        k = block.shape[1]
        n = self.used
        start = self._written_all
        if start is None and (self.written[:n] == self.written[0]).all():
            start = int(self.written[0])
        if start is None:
            for slot in range(n):
                self.write(slot, block[slot])
            return
        mag = np.sqrt(np.einsum("ijk,ijk->ij", block, block))
        first = start % RING
        if first + k <= RING:
            self.xyz[:n, first : first + k] = block
            self.mag[:n, first : first + k] = mag
        else:
            pos = (start + np.arange(k)) % RING
            self.xyz[:n, pos] = block
            self.mag[:n, pos] = mag
        self.written[:n] += k
        self._written_all = start + k

    def gate(self) -> list[GateHit]:
        """The first sample above the slot's gate among samples not scanned before, for
        every slot at once; afterwards every slot counts as scanned up to what it holds."""
        n = self.used
        if n == 0:
            return []
        if self._written_all is not None and self._scanned_all is not None:
            hits = self._gate_lockstep(n, self._scanned_all, self._written_all)
            if hits is not None:
                return hits
        written = self.written[:n]
        scan_from = np.maximum(self.scan_from[:n], written - RING)
        span = int((written - scan_from).max(initial=0))
        if span <= 0:
            return []
        offsets = np.arange(span)
        idx = scan_from[:, None] + offsets[None, :]
        valid = idx < written[:, None]
        mags = np.take_along_axis(self.mag[:n], idx % RING, axis=1)
        above = (mags > self.gate_g[:n, None]) & valid
        hit_rows = np.flatnonzero(above.any(axis=1))
        first = above[hit_rows].argmax(axis=1)
        self.scan_from[:n] = written
        self._scanned_all = self._written_all
        return [
            GateHit(int(r), int(scan_from[r] + f)) for r, f in zip(hit_rows, first, strict=True)
        ]

    def over_gate_unscanned(self) -> bool:
        """Whether a sample :meth:`gate` has not scanned yet is above its slot's gate (what
        the next scan would find, without scanning)."""
        n = self.used
        if n == 0:
            return False
        written = self.written[:n]
        scan_from = np.maximum(self.scan_from[:n], written - RING)
        span = int((written - scan_from).max(initial=0))
        if span <= 0:
            return False
        idx = scan_from[:, None] + np.arange(span)[None, :]
        mags = np.take_along_axis(self.mag[:n], idx % RING, axis=1)
        return bool(((mags > self.gate_g[:n, None]) & (idx < written[:, None])).any())

    def _gate_lockstep(self, n: int, scanned: int, written: int) -> list[GateHit] | None:
        """:meth:`gate` when every slot is at ``written`` and scanned up to ``scanned``; None
        when the new samples wrap around the ring (then the general path runs)."""
        scanned = max(scanned, written - RING)
        if written <= scanned:
            return []
        first = scanned % RING
        if first + written - scanned > RING:
            return None
        above = self.mag[:n, first : first + written - scanned] > self.gate_g[:n, None]
        self.scan_from[:n] = written
        self._scanned_all = written
        hit_rows = np.logical_or.reduce(above, axis=1).nonzero()[0]
        if hit_rows.size == 0:
            return []
        offsets = above[hit_rows].argmax(axis=1)
        return [GateHit(int(r), scanned + int(f)) for r, f in zip(hit_rows, offsets, strict=True)]

    def windows(self, slots: IntArray, centres: IntArray, before: int, after: int) -> FloatArray:
        """``(len(slots), before + after, 3)``: samples ``[centre - before, centre + after)``
        of each slot (the caller makes sure the ring still holds them)."""
        pos = (centres[:, None] + np.arange(-before, after)) % RING
        return self.xyz[slots[:, None], pos].astype(np.float64)

    def magnitudes(self, slot: int, start: int, stop: int) -> FloatArray:
        written = int(self.written[slot])
        start = max(start, written - RING, 0)
        stop = min(stop, written)
        if stop <= start:
            return np.empty(0)
        return self.mag[slot, np.arange(start, stop) % RING].astype(np.float64)
