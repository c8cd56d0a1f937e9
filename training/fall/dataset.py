"""Load the shared fall recordings (offline training only; not imported by the gateway)."""

from __future__ import annotations

import csv
import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Recording:
    file: str
    dataset: str
    subject: str
    activity: str
    label: str  # "fall" or "adl"
    t: np.ndarray
    xyz: np.ndarray
    fall_start_s: float | None
    fall_end_s: float | None


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",", skiprows=1, ndmin=2)
    return data[:, 0], data[:, 1:4]


def _float(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def load(root: Path, cache: Path | None = None) -> list[Recording]:
    if cache is not None and cache.exists():
        with cache.open("rb") as fh:
            return pickle.load(fh)
    out = []
    with (root / "MANIFEST.csv").open() as fh:
        for row in csv.DictReader(fh):
            t, xyz = read_csv(root / row["file"])
            out.append(
                Recording(
                    file=row["file"],
                    dataset=row.get("dataset", ""),
                    subject=f"{row.get('dataset', '')}:{row.get('subject', '')}",
                    activity=row.get("activity", ""),
                    label=row["label"],
                    t=t,
                    xyz=xyz,
                    fall_start_s=_float(row.get("fall_start_s")),
                    fall_end_s=_float(row.get("fall_end_s")),
                )
            )
    if cache is not None:
        with cache.open("wb") as fh:
            pickle.dump(out, fh)
    return out
