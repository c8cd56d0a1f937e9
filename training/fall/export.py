"""Write the fall model file that :class:`gateway.detection.fall_model.FallModel` loads
(offline only): the fitted tree ensemble's arrays, and the net's when there is one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gateway.detection.fall import FEATURE_NAMES
from gateway.detection.fall_model import DEFAULT_NET_FLOOR, FallModel

Arrays = tuple[dict[str, np.ndarray], dict[str, Any]]


def hgb_arrays(clf: Any) -> Arrays:
    """A fitted binary HistGradientBoostingClassifier as per-tree node arrays (its leaf values
    already include the learning rate, so the exported learning rate is 1)."""
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
    arrays: dict[str, np.ndarray] = {"feature": feature, "threshold": thresh}
    arrays |= {"left": left, "right": right, "value": value}
    meta = {"base_score": float(np.ravel(clf._baseline_prediction)[0]), "learning_rate": 1.0}
    return arrays, meta


def model_arrays(trees: Arrays, net: Arrays | None, threshold: float) -> Arrays:
    arrays, meta = dict(trees[0]), dict(trees[1])
    meta |= {"decision_threshold": threshold, "feature_names": list(FEATURE_NAMES)}
    if net is not None:
        arrays |= net[0]
        meta["net"] = net[1]
        meta["net_floor"] = DEFAULT_NET_FLOOR
    return arrays, meta


def in_memory(model: Arrays) -> FallModel:
    """The model as the gateway would load it from its file."""
    return FallModel.from_arrays(*model)


def write_model(path: Path, model: Arrays) -> None:
    arrays, meta = model
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
