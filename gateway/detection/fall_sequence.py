"""The second input of the fall model: each candidate's window as a short multichannel sequence.

The gradient-boosted trees see 92 hand-made numbers per candidate; the small 1-D convolutional
net (:class:`gateway.detection.fall_model.ConvNet`) sees the window itself, so it can learn
shapes the hand-made features do not name (how the wrist swings down before the hit, how it
settles after). Pure numpy, vectorised over candidates like :func:`fall.window_features`.

Every channel is rotation-invariant (the wrist's axes differ between devices), on the fixed span
``[impact - PRE, impact + POST)`` of the 50 Hz grid (:data:`LENGTH` samples, the impact at
index ``PRE``); where the window holds no data (a stream that started late or stopped early)
the edge value is held and the ``mask`` channel is 0:

=============  ==========================================================================
``mag``        ``|a| - 1`` (g), clipped to [0, 8] g first
``mag_lp``     the same of the 0.1 s low-passed signal (:func:`fall.smooth`)
``tilt_pre``   angle (0..1 = 0..180 deg) of the low-passed vector to the mean direction up
               to 0.2 s before the impact (gravity as the wrist was held before)
``tilt_post``  angle to the direction settled 1.5-4 s after the impact (or in the last 1.5 s
               that arrived, if the stream stopped before)
``jerk``       ``log(1 + |da/dt| / 10)`` with ``da/dt`` in g/s
``mask``       1 where the window holds data
=============  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from gateway.detection import fall

CHANNELS = ("mag", "mag_lp", "tilt_pre", "tilt_post", "jerk", "mask")
LENGTH = fall.PRE + fall.POST
_GUARD = round(0.2 * fall.GRID_HZ)  # the pre-impact gravity ends this long before the impact
_SETTLED = (round(1.5 * fall.GRID_HZ), round(4.0 * fall.GRID_HZ))
_MIN_SETTLED = round(0.5 * fall.GRID_HZ)
_LAST = round(1.5 * fall.GRID_HZ)  # otherwise the settled direction is that of the last 1.5 s
_CLIP_G = 8.0


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-6)


def _norms(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Norms of ``(m, L, 3)`` along the last axis (einsum: a third of ``linalg.norm``'s cost)."""
    return np.sqrt(np.einsum("mlk,mlk->ml", v, v))


def _angle(
    lp: npt.NDArray[np.float64], lp_norm: npt.NDArray[np.float64], ref: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Angle of every sample of ``lp`` ``(m, L, 3)`` to the unit vector ``ref[m]``, / pi."""
    cos = np.einsum("mlk,mk->ml", lp, ref) / np.maximum(lp_norm, 1e-6)
    return np.asarray(np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi)


def window_sequences(xyz: npt.ArrayLike, impact: int) -> npt.NDArray[np.float32]:
    """``(m, len(CHANNELS), LENGTH)`` float32 sequences of ``m`` candidates whose windows
    ``xyz`` (``(m, n, 3)``, g, on the grid) hold the same span around their impact, as in
    :func:`fall.window_features`: samples ``impact - before .. impact + after`` with the impact
    at index ``impact`` of the window."""
    xyz = np.asarray(xyz, dtype=np.float64)
    m, n, _ = xyz.shape
    start = fall.PRE - impact  # where the window begins on the fixed span
    stop = start + n
    if start < 0 or stop > LENGTH or n == 0:
        raise ValueError(f"window of {n} samples with its impact at {impact} does not fit")
    full = np.empty((m, LENGTH, 3))
    full[:, start:stop] = xyz
    full[:, :start] = xyz[:, :1]
    full[:, stop:] = xyz[:, -1:]
    full = np.nan_to_num(full, nan=0.0, posinf=_CLIP_G, neginf=-_CLIP_G)
    mask = np.zeros(LENGTH)
    mask[start:stop] = 1.0

    mag = _norms(full)
    lp = fall.smooth(full)
    lp_norm = _norms(lp)
    pre_end = fall.PRE - _GUARD if fall.PRE - _GUARD - start >= 5 else fall.PRE + 1
    gravity = _unit(lp[:, start:pre_end].mean(axis=1))
    a, b = fall.PRE + _SETTLED[0], min(fall.PRE + _SETTLED[1], stop)
    if b - a < _MIN_SETTLED:
        a, b = max(fall.PRE, stop - _LAST), stop
    settled = _unit(lp[:, a:b].mean(axis=1))
    jerk = np.zeros((m, LENGTH))
    jerk[:, 1:] = _norms(np.diff(full, axis=1)) * fall.GRID_HZ

    out = np.empty((m, len(CHANNELS), LENGTH), dtype=np.float32)
    out[:, 0] = np.clip(mag, 0.0, _CLIP_G) - 1.0
    out[:, 1] = np.clip(lp_norm, 0.0, _CLIP_G) - 1.0
    out[:, 2] = _angle(lp, lp_norm, gravity)
    out[:, 3] = _angle(lp, lp_norm, settled)
    out[:, 4] = np.log1p(jerk / 10.0)
    out[:, 5] = mask
    return out


def sequences_of(
    source: Callable[[fall.IntArray, int, int], fall.FloatArray],
    starts: fall.IntArray,
    impacts: fall.IntArray,
    stops: fall.IntArray,
) -> npt.NDArray[np.float32]:
    """:func:`window_sequences` of candidates whose windows differ (see :func:`fall.by_span`)."""

    def sequences(xyz: fall.FloatArray, impact: int) -> tuple[npt.NDArray[np.float32]]:
        return (window_sequences(xyz, impact),)

    return np.asarray(fall.by_span(source, starts, impacts, stops, sequences)[0])
