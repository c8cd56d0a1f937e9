"""Silent emergencies: detectors that watch a home going quiet or a routine going wrong.

Wire them in with :func:`build_routine_detector` (one :class:`RoutineDetectors` per home, which
shares one live picture between all of them and implements the Detector protocol).
"""

from gateway.detection.routine.detectors import (
    RoutineDetectors,
    RoutineSettings,
    build_routine_detector,
)
from gateway.detection.routine.learning import (
    LearnedStore,
    MemoryLearnedStore,
    SqliteLearnedStore,
    open_learned_store,
)
from gateway.detection.routine.presence import Presence

__all__ = [
    "LearnedStore",
    "MemoryLearnedStore",
    "Presence",
    "RoutineDetectors",
    "RoutineSettings",
    "SqliteLearnedStore",
    "build_routine_detector",
    "open_learned_store",
]
