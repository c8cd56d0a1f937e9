"""The fall classifier at inference: a gradient-boosted tree ensemble held as numpy arrays.

Trained offline by ``training/fall/train.py`` (scikit-learn there only) and exported to
``fall_model.npz`` beside this file: per tree and node the feature index, the threshold
(``x <= threshold`` goes left), the children and the leaf value. Scoring walks every tree of
every candidate at once, one depth level per step, so it costs a few numpy calls whatever the
number of candidates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.detection.fall import FEATURE_NAMES

DEFAULT_MODEL_PATH = Path(__file__).with_name("fall_model.npz")


class FallModel:
    def __init__(
        self,
        feature: npt.NDArray[np.int64],
        threshold: npt.NDArray[np.float64],
        left: npt.NDArray[np.int64],
        right: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        base_score: float,
        learning_rate: float,
        decision_threshold: float,
        feature_names: tuple[str, ...],
    ) -> None:
        if tuple(feature_names) != FEATURE_NAMES:
            raise ValueError("fall model was trained on other features; retrain it")
        self.feature = feature
        self.threshold = threshold
        self.left = left
        self.right = right
        self.value = value
        self.base_score = base_score
        self.learning_rate = learning_rate
        self.decision_threshold = decision_threshold
        self.depth = self._max_depth()
        self._flatten()

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MODEL_PATH) -> FallModel:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(
                feature=data["feature"].astype(np.int64),
                threshold=data["threshold"].astype(np.float64),
                left=data["left"].astype(np.int64),
                right=data["right"].astype(np.int64),
                value=data["value"].astype(np.float64),
                base_score=float(meta["base_score"]),
                learning_rate=float(meta["learning_rate"]),
                decision_threshold=float(meta["decision_threshold"]),
                feature_names=tuple(meta["feature_names"]),
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
        self._left = np.where(leaf, flat, self.left + base).ravel()
        self._right = np.where(leaf, flat, self.right + base).ravel()
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
            node = np.where(go_left, self._left[node], self._right[node])
        leaves = self._value[node]
        return np.asarray(self.base_score + self.learning_rate * leaves.sum(axis=1))

    def probability(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(1.0 / (1.0 + np.exp(-self.raw_score(x))))

    def is_fall(self, x: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        return np.asarray(self.probability(x) >= self.decision_threshold)
