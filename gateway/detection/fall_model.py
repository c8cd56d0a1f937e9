"""The fall classifier at inference: numpy only, trained offline by ``training/fall/train.py``.

Two models are stacked: the mean of their log-odds is the fall's log-odds.

* :class:`TreeEnsemble`, a gradient-boosted tree ensemble (scikit-learn offline) on the 92
  hand-made features of :func:`gateway.detection.fall.window_features`: per tree and node the
  feature index, the threshold (``x <= threshold`` goes left), the children and the leaf value.
  Scoring walks every tree of every candidate at once, one depth level per step.
* :class:`ConvNet`, a small 1-D convolutional net (torch offline, about 14k weights) on the
  candidate's window as sequences (:mod:`gateway.detection.fall_sequence`): three strided
  convolutions with ReLU (batch norm folded into them at export), average pooling to a few
  time bins, two dense layers. Each convolution is one matrix product over all candidates.

Both are held in ``fall_model.npz`` beside this file (a file whose meta has no ``net`` entry
is a trees-only model). The two were found to make different mistakes: in subject-wise
cross-validation the stack beat either alone at every matched operating point
(``docs/DETECTION.md``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.detection import fall, fall_sequence

DEFAULT_MODEL_PATH = Path(__file__).with_name("fall_model.npz")
DEFAULT_NET_FLOOR = -6.0
FloatArray = npt.NDArray[np.float64]


class TreeEnsemble:
    def __init__(
        self,
        feature: npt.NDArray[np.int64],
        threshold: FloatArray,
        left: npt.NDArray[np.int64],
        right: npt.NDArray[np.int64],
        value: FloatArray,
        base_score: float,
        learning_rate: float,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.left = left
        self.right = right
        self.value = value
        self.base_score = base_score
        self.learning_rate = learning_rate
        self.depth = self._max_depth()
        self._flatten()

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any], meta: Mapping[str, Any]) -> TreeEnsemble:
        return cls(
            feature=np.asarray(data["feature"], dtype=np.int64),
            threshold=np.asarray(data["threshold"], dtype=np.float64),
            left=np.asarray(data["left"], dtype=np.int64),
            right=np.asarray(data["right"], dtype=np.int64),
            value=np.asarray(data["value"], dtype=np.float64),
            base_score=float(meta["base_score"]),
            learning_rate=float(meta["learning_rate"]),
        )

    def _max_depth(self) -> int:
        """Longest root-to-leaf path over all trees (the number of steps scoring needs)."""
        level = np.zeros(self.left.shape, dtype=bool)
        level[:, 0] = True
        for depth in range(65):
            tree, node = np.nonzero(level & (self.left >= 0))
            if tree.size == 0:
                return depth
            level = np.zeros_like(level)
            level[tree, self.left[tree, node]] = True
            level[tree, self.right[tree, node]] = True
        raise ValueError("fall model trees are malformed")

    def _flatten(self) -> None:
        """All trees' nodes in one array (node ``j`` of tree ``t`` at ``t * nodes + j``) with
        every leaf pointing to itself, so that a scoring step is a few flat gathers."""
        trees, nodes = self.feature.shape
        flat = np.arange(trees * nodes).reshape(trees, nodes)
        base = flat[:, :1]
        leaf = self.feature < 0
        self._roots = base[:, 0]
        self._feature = np.where(leaf, 0, self.feature).ravel()
        # NaN <= anything is False: a leaf sends every value "right", to itself
        self._threshold = np.where(leaf, np.inf, self.threshold).ravel()
        left = np.where(leaf, flat, self.left + base).ravel()
        right = np.where(leaf, flat, self.right + base).ravel()
        # node j's children side by side: right at 2j, left at 2j + 1 (indexed by go_left)
        self._child = np.stack([right, left], axis=1).ravel()
        self._value = self.value.ravel()

    def raw_score(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Log-odds of a fall for each row of ``x`` (candidates x features)."""
        feats = np.atleast_2d(np.asarray(x, dtype=np.float64))
        n, width = feats.shape
        flat_x = feats.ravel()
        row_start = (np.arange(n) * width)[:, None]
        node = np.broadcast_to(self._roots, (n, self._roots.size))
        for _ in range(self.depth):
            go_left = flat_x[row_start + self._feature[node]] <= self._threshold[node]
            node = self._child[2 * node + go_left]
        leaves = self._value[node]
        return np.asarray(self.base_score + self.learning_rate * leaves.sum(axis=1))


class ConvNet:
    """The 1-D convolutional net in eval mode. ``convs`` are ``(weight (out, in, k), bias,
    stride, padding)`` with batch norm already folded in, each followed by ReLU; then average
    pooling to ``bins`` time bins (torch's ``AdaptiveAvgPool1d`` edges), flattening channel by
    channel, and the dense layers ``(weight (out, in), bias)``, ReLU between them."""

    def __init__(
        self,
        convs: list[tuple[FloatArray, FloatArray, int, int]],
        bins: int,
        dense: list[tuple[FloatArray, FloatArray]],
        length: int = fall_sequence.LENGTH,
    ) -> None:
        self.length = length
        self.bins = bins
        # weights as (in * k, out) for the products below; samples stay channel-last
        self._convs = []
        n = length
        for weight, bias, stride, pad in convs:
            out_ch, in_ch, k = weight.shape
            w = np.ascontiguousarray(weight.transpose(1, 2, 0).reshape(in_ch * k, out_ch))
            self._convs.append((w.astype(np.float32), bias.astype(np.float32), k, stride, pad))
            n = (n + 2 * pad - k) // stride + 1
        edges = [(i * n // bins, -(-(i + 1) * n // bins)) for i in range(bins)]
        pool = np.zeros((bins, n), dtype=np.float32)
        for b, (lo, hi) in enumerate(edges):
            pool[b, lo:hi] = 1.0 / (hi - lo)
        self._pool = pool
        (w1, b1), *rest = dense
        channels = self._convs[-1][0].shape[1]
        # torch flattens (channels, bins); the pooled samples here are (bins, channels)
        w1 = w1.reshape(w1.shape[0], channels, bins).transpose(0, 2, 1).reshape(w1.shape[0], -1)
        self._dense = [(np.ascontiguousarray(w1.T, dtype=np.float32), b1.astype(np.float32))]
        self._dense += [
            (np.ascontiguousarray(w.T, dtype=np.float32), b.astype(np.float32)) for w, b in rest
        ]

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any], meta: Mapping[str, Any]) -> ConvNet:
        convs = [
            (
                np.asarray(data[f"conv{i}_weight"], dtype=np.float64),
                np.asarray(data[f"conv{i}_bias"], dtype=np.float64),
                int(stride),
                int(pad),
            )
            for i, (stride, pad) in enumerate(meta["conv_stride_padding"])
        ]
        dense = [
            (
                np.asarray(data[f"dense{i}_weight"], dtype=np.float64),
                np.asarray(data[f"dense{i}_bias"], dtype=np.float64),
            )
            for i in range(int(meta["dense_layers"]))
        ]
        if tuple(meta["channels"]) != fall_sequence.CHANNELS:
            raise ValueError("fall model's net was trained on other sequences; retrain it")
        if int(meta["length"]) != fall_sequence.LENGTH:
            raise ValueError(
                f"fall model's net reads {meta['length']} samples, the detector gives "
                f"{fall_sequence.LENGTH}; retrain it"
            )
        net = cls(convs, int(meta["bins"]), dense, fall_sequence.LENGTH)
        # layers that do not fit together fail here, at start, not at the first impact
        net.raw_score(np.zeros((1, len(fall_sequence.CHANNELS), fall_sequence.LENGTH)))
        return net

    def raw_score(self, sequences: npt.ArrayLike) -> FloatArray:
        """Log-odds of a fall for each candidate of ``sequences`` ``(m, channels, length)``."""
        x = np.asarray(sequences, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != self.length:
            raise ValueError(f"sequences of shape {x.shape}, expected (m, c, {self.length})")
        x = np.ascontiguousarray(x.transpose(0, 2, 1))  # (m, n, c)
        m = x.shape[0]
        for w, b, k, stride, pad in self._convs:
            n, c = x.shape[1], x.shape[2]
            padded = np.zeros((m, n + 2 * pad, c), dtype=np.float32)
            padded[:, pad : pad + n] = x
            n_out = (n + 2 * pad - k) // stride + 1
            # (m, n_out, c, k): the k samples of each output position, rows in (c, k) order
            # as the weight's rows; a strided view, copied once by the reshape
            sm, sn, sc = padded.strides
            cols = np.lib.stride_tricks.as_strided(
                padded, (m, n_out, c, k), (sm, stride * sn, sc, sn), writeable=False
            )
            x = np.maximum(cols.reshape(m * n_out, c * k) @ w + b, 0.0).reshape(m, n_out, -1)
        h = np.matmul(self._pool, x).reshape(m, -1)
        for i, (w, b) in enumerate(self._dense):
            h = h @ w + b
            if i < len(self._dense) - 1:
                h = np.maximum(h, 0.0)
        return np.asarray(h[:, 0], dtype=np.float64)


class FallModel:
    """Trees, and the net when the file has one, as a cascade: the net is asked only about
    candidates the trees do not already rule out (log-odds at least ``net_floor``; below it the
    trees' score stands), and there the two log-odds are averaged. In cross-validation no
    decision at the threshold changed with a floor of -6 (probability 0.25 %), while three
    quarters of all candidates skip the net. ``decision_threshold`` applies to
    :meth:`probability`."""

    def __init__(
        self,
        trees: TreeEnsemble,
        net: ConvNet | None,
        decision_threshold: float,
        net_floor: float = DEFAULT_NET_FLOOR,
    ) -> None:
        self.trees = trees
        self.net = net
        self.decision_threshold = decision_threshold
        self.net_floor = net_floor

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MODEL_PATH) -> FallModel:
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays(data, json.loads(str(data["meta"])))

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any], meta: Mapping[str, Any]) -> FallModel:
        """The model from the arrays and the ``meta`` mapping of its file."""
        if tuple(meta["feature_names"]) != fall.FEATURE_NAMES:
            raise ValueError("fall model was trained on other features; retrain it")
        trees = TreeEnsemble.from_arrays(data, meta)
        net = ConvNet.from_arrays(data, meta["net"]) if "net" in meta else None
        floor = float(meta.get("net_floor", DEFAULT_NET_FLOOR))
        return cls(trees, net, float(meta["decision_threshold"]), floor)

    def asks_net(self, trees_score: FloatArray) -> npt.NDArray[np.bool_]:
        """Which candidates the net is asked about, given the trees' log-odds."""
        if self.net is None:
            return np.zeros(trees_score.shape, dtype=bool)
        return np.asarray(trees_score >= self.net_floor)

    def raw_score(
        self, features: npt.ArrayLike, sequences: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Log-odds of a fall per candidate, from its ``features`` (candidates x features) and,
        when the model has a net, its ``sequences`` (only the rows the net is asked about are
        read)."""
        score = self.trees.raw_score(features)
        ask = np.flatnonzero(self.asks_net(score))
        if ask.size:
            if sequences is None:
                raise ValueError("this fall model also needs the candidates' sequences")
            self._stack(score, ask, np.asarray(sequences)[ask])
        return score

    def probability(
        self, features: npt.ArrayLike, sequences: npt.ArrayLike | None = None
    ) -> FloatArray:
        return _probability(self.raw_score(features, sequences))

    def score_windows(
        self,
        source: Callable[[fall.IntArray, int, int], FloatArray],
        starts: fall.IntArray,
        impacts: fall.IntArray,
        stops: fall.IntArray,
    ) -> tuple[FloatArray, FloatArray]:
        """``(features, probability)`` of candidates given by their windows (as in
        :func:`fall.by_span`), building sequences only for those the net is asked about."""
        if impacts.size == 0:
            return np.empty((0, fall.N_FEATURES)), np.empty(0)
        feats = fall.features_of(source, starts, impacts, stops)
        score = self.trees.raw_score(feats)
        ask = np.flatnonzero(self.asks_net(score))
        if ask.size:

            def asked(rows: fall.IntArray, before: int, after: int) -> FloatArray:
                return source(ask[rows], before, after)

            seqs = fall_sequence.sequences_of(asked, starts[ask], impacts[ask], stops[ask])
            self._stack(score, ask, seqs)
        return feats, _probability(score)

    def _stack(self, score: FloatArray, rows: fall.IntArray, sequences: np.ndarray) -> None:
        """Average the net's log-odds into ``score`` at ``rows``."""
        assert self.net is not None
        score[rows] = (score[rows] + self.net.raw_score(sequences)) / 2.0


def _probability(log_odds: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-log_odds)))
