"""The shipped fall model, keeping what the live shell asks it to score."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.detection.fall_alerts import load_model
from gateway.detection.fall_model import FallModel


class SpyModel(FallModel):
    """Scores like the shipped model (with another ``net_floor`` if given); ``rows`` holds
    every feature row scored, ``sequences`` every sequence the net saw, ``calls`` the
    candidates of each call and ``post`` the grid samples after each impact it was given."""

    def __init__(self, net_floor: float | None = None) -> None:
        shipped = load_model()
        floor = shipped.net_floor if net_floor is None else net_floor
        super().__init__(shipped.trees, shipped.net, shipped.decision_threshold, floor)
        self.rows: list[np.ndarray] = []
        self.sequences: list[np.ndarray] = []
        self.calls: list[int] = []
        self.post: list[int] = []

    def score_windows(
        self,
        source: Callable[[np.ndarray, int, int], np.ndarray],
        starts: np.ndarray,
        impacts: np.ndarray,
        stops: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = super().score_windows(source, starts, impacts, stops)
        self.calls.append(len(feats))
        self.rows.extend(feats)
        self.post.extend(int(n) for n in stops - impacts)
        return feats, probs

    def _stack(self, score: np.ndarray, rows: np.ndarray, sequences: np.ndarray) -> None:
        self.sequences.extend(sequences)
        super()._stack(score, rows, sequences)
