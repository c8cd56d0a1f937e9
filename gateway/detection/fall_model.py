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

    def raw_score(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Log-odds of a fall for each row of ``x`` (candidates x features)."""
        feats = np.atleast_2d(np.asarray(x, dtype=np.float64))
        n, trees = feats.shape[0], self.feature.shape[0]
        node = np.zeros((n, trees), dtype=np.int64)
        tree_idx = np.broadcast_to(np.arange(trees), (n, trees))
        row_idx = np.broadcast_to(np.arange(n)[:, None], (n, trees))
        for _ in range(self.depth):
            f = self.feature[tree_idx, node]
            leaf = f < 0
            x_f = feats[row_idx, np.where(leaf, 0, f)]
            go_left = x_f <= self.threshold[tree_idx, node]
            nxt = np.where(go_left, self.left[tree_idx, node], self.right[tree_idx, node])
            node = np.where(leaf, node, nxt)
        leaves = self.value[tree_idx, node]
        return np.asarray(self.base_score + self.learning_rate * leaves.sum(axis=1))

    def probability(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(1.0 / (1.0 + np.exp(-self.raw_score(x))))

    def is_fall(self, x: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        return np.asarray(self.probability(x) >= self.decision_threshold)
