"""Detectors: numpy maths in pure functions, thin stateful shells implementing ``Detector``."""

from gateway.detection.base import Detector, Home

__all__ = ["Detector", "Home"]
