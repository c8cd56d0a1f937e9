"""Which detectors a gateway runs, built once with their settings. The only place that knows
every detector's constructor; the runtime and replay both call :func:`build_detectors`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.clock import Clock
from gateway.detection.base import DeafPeriods, Detector, Home
from gateway.detection.device_health import DeviceHealth, DeviceHealthSettings
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.detection.gateway_health import Problems
from gateway.detection.routine import build_routine_detector, open_learned_store
from gateway.detection.sos import SosDetector


def build_detectors(
    clock: Clock,
    home: Home,
    detection: dict[str, Any] | None = None,
    state_dir: Path | None = None,
    deaf: DeafPeriods | None = None,
    problems: Callable[[], Problems] | None = None,
    repeat_window_s: float = 60.0,
) -> list[Detector]:
    """``detection`` maps detector name → validated settings object (missing → defaults);
    ``state_dir`` keeps learned state across restarts (None: in memory, as in replay);
    ``deaf``: when the gateway could not hear the home (the routine detectors learn nothing
    from those spans; the runtime's gateway health marks them); ``problems``: what keeps the
    gateway from hearing part of the home now (the runtime's; device health raises no
    ``device_offline`` for a device it cannot hear); ``repeat_window_s``: the alert manager's
    (fall detection withdraws a fall only where the manager's one alert holds nothing else)."""
    detection = detection or {}
    routine = build_routine_detector(
        clock, home, detection.get("routine"), open_learned_store(state_dir, clock), deaf
    )
    return [
        SosDetector(clock, detection.get("sos")),
        FallAlerts(clock, detection.get("fall") or FallSettings(), repeat_window_s=repeat_window_s),
        DeviceHealth(
            clock,
            home,
            detection.get("device_health") or DeviceHealthSettings(),
            problems,
            wearer_away=routine.away,
            store=routine.store,
        ),
        routine,
    ]


def close_detectors(detectors: list[Detector]) -> None:
    """Save what detectors learned (learned state is written rarely: SD cards wear out)."""
    for detector in detectors:
        close = getattr(detector, "close", None)
        if close is not None:
            close()
