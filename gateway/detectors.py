"""Which detectors a gateway runs, built once with their settings. The only place that knows
every detector's constructor; the runtime and replay both call :func:`build_detectors`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.clock import Clock
from gateway.detection.base import Detector, Home
from gateway.detection.sos import SosDetector


def build_detectors(
    clock: Clock,
    home: Home,
    detection: dict[str, Any] | None = None,
    state_dir: Path | None = None,
) -> list[Detector]:
    """``detection`` maps detector name → validated settings object (missing → defaults);
    ``state_dir`` keeps learned state across restarts (None: in memory, as in replay)."""
    detection = detection or {}
    detectors: list[Detector] = [SosDetector(clock, detection.get("sos"))]
    detectors.extend(_optional_detectors(clock, home, detection, state_dir))
    return detectors


def _optional_detectors(
    clock: Clock, home: Home, detection: dict[str, Any], state_dir: Path | None
) -> list[Detector]:
    # INTEGRATION: detectors written in parallel join here as they land.
    found: list[Detector] = []
    try:
        from gateway.detection.fall_alerts import FallAlerts, FallSettings

        found.append(FallAlerts(clock, detection.get("fall") or FallSettings()))
    except ModuleNotFoundError:
        pass
    try:
        from gateway.detection.device_health import DeviceHealth, DeviceHealthSettings

        found.append(
            DeviceHealth(clock, home, detection.get("device_health") or DeviceHealthSettings())
        )
    except ModuleNotFoundError:
        pass
    return found
