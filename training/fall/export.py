"""Export a fitted scikit-learn GradientBoostingClassifier to the numpy arrays that
:class:`gateway.detection.fall_model.FallModel` loads (offline only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gateway.detection.fall import FEATURE_NAMES


def export_gbm(clf: Any, path: Path, threshold: float) -> None:
    trees = [est[0].tree_ for est in clf.estimators_]
    width = max(t.node_count for t in trees)
    n = len(trees)
    feature = np.full((n, width), -1, dtype=np.int16)
    thresh = np.zeros((n, width), dtype=np.float64)
    left = np.full((n, width), -1, dtype=np.int16)
    right = np.full((n, width), -1, dtype=np.int16)
    value = np.zeros((n, width), dtype=np.float64)
    for i, t in enumerate(trees):
        k = t.node_count
        is_leaf = t.children_left[:k] < 0
        feature[i, :k] = np.where(is_leaf, -1, t.feature[:k])
        thresh[i, :k] = t.threshold[:k]
        left[i, :k] = t.children_left[:k]
        right[i, :k] = t.children_right[:k]
        value[i, :k] = t.value[:k, 0, 0]
    prior = float(np.clip(clf.init_.class_prior_[1], 1e-6, 1 - 1e-6))
    meta = {
        "base_score": float(np.log(prior / (1 - prior))),
        "learning_rate": float(clf.learning_rate),
        "decision_threshold": threshold,
        "feature_names": list(FEATURE_NAMES),
    }
    np.savez_compressed(
        path,
        feature=feature,
        threshold=thresh,
        left=left,
        right=right,
        value=value,
        meta=np.array(json.dumps(meta)),
    )


def export_hgb(clf: Any, path: Path, threshold: float) -> None:
    """A fitted binary HistGradientBoostingClassifier (leaf values already include the
    learning rate, so the exported learning rate is 1)."""
    trees = [pred[0].nodes for pred in clf._predictors]
    width = max(len(t) for t in trees)
    n = len(trees)
    feature = np.full((n, width), -1, dtype=np.int16)
    thresh = np.zeros((n, width), dtype=np.float64)
    left = np.full((n, width), -1, dtype=np.int16)
    right = np.full((n, width), -1, dtype=np.int16)
    value = np.zeros((n, width), dtype=np.float64)
    for i, nodes in enumerate(trees):
        k = len(nodes)
        leaf = nodes["is_leaf"].astype(bool)
        feature[i, :k] = np.where(leaf, -1, nodes["feature_idx"])
        thresh[i, :k] = nodes["num_threshold"]
        left[i, :k] = np.where(leaf, -1, nodes["left"])
        right[i, :k] = np.where(leaf, -1, nodes["right"])
        value[i, :k] = nodes["value"]
    meta = {
        "base_score": float(np.ravel(clf._baseline_prediction)[0]),
        "learning_rate": 1.0,
        "decision_threshold": threshold,
        "feature_names": list(FEATURE_NAMES),
    }
    np.savez_compressed(
        path,
        feature=feature,
        threshold=thresh,
        left=left,
        right=right,
        value=value,
        meta=np.array(json.dumps(meta)),
    )
