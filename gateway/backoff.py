"""Exponential backoff with full jitter, capped: the one retry policy of the gateway (uplink,
drivers, BLE reconnects). The RNG is injected so tests are repeatable.

Why not ``tenacity`` or ``backoff``: both wrap a call in a decorator, while our loops need the
delay itself (to sleep on the injected clock, and to report the next attempt in diagnostics).
The whole policy is the ten lines below.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 1.0
    maximum_s: float = 300.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt: uniform in [base/2, base], base doubling to max."""
        try:
            base = min(self.maximum_s, self.initial_s * self.factor**self.attempts)
        except OverflowError:  # 2.0 ** 1024: an outage of days, long at the cap
            base = self.maximum_s
        self.attempts += 1
        return base / 2 + self.rng.random() * base / 2

    def reset(self) -> None:
        self.attempts = 0
