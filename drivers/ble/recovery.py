"""Staying alive on a flaky Bluetooth adapter: the recovery ladder and the reconnect backoff.

Detection (a watchdog noticing silence, an operation failing) is the driver's job; this module
only decides *what to do next*, from the failure's class and what was already tried:

    restart scanning  --(still failing)-->  reset the adapter  --(still failing)-->  degraded

Degraded is not an exit: the driver keeps trying an adapter reset every
``DEGRADED_RETRY_S`` (scanning meanwhile if a scan starts, so that a button's press is still
heard; anything heard ends the wait without a reset) and reports ``degraded`` in its
diagnostics so that the health report and the platform see a gateway that cannot hear its BLE
devices. One success (an advertisement heard, a scan started cleanly) climbs back down to the
first rung.

Silence alone is not a failure: the driver calls ``failed(SILENT, escalate=False)`` for a quiet
home (counted, one scan restart, no climb), and lets silence climb only with evidence against
the adapter; then a clean scan start does not count as a success either, only an advertisement
heard does; nor after a scan stop that timed out, until a later stop returns in time (the rule
is in :mod:`drivers.ble.driver`'s docstring).

Pure state; time comes from the injected clock. Reconnect delays use the gateway's one backoff
policy, :class:`gateway.backoff.Backoff`.
"""

from __future__ import annotations

import enum
from typing import Any, Final

from drivers.ble.base import BleErrorKind
from gateway.clock import Clock

# BlueZ forgets a device it has not heard for 180 s; habluetooth restarts a silent scanner
# after 90 s so that two restarts fit before that happens. Same reasoning here.
SCANNER_WATCHDOG_TIMEOUT_S: Final = 90.0
# Checking three times per timeout keeps the reaction within 120 s of the last advertisement.
SCANNER_WATCHDOG_CHECK_S: Final = 30.0
# "InProgress" clears once BlueZ finishes the operation it was doing (a discovery it started
# for another client, a connection): a couple of seconds is enough.
IN_PROGRESS_WAIT_S: Final = 2.0
# "NotReady" is an adapter still powering up after boot or a reset: give it longer.
NOT_READY_WAIT_S: Final = 5.0
# After an adapter reset, the kernel re-registers the controller: ~1-3 s on a Pi 4.
AFTER_RESET_WAIT_S: Final = 5.0
DEGRADED_RETRY_S: Final = 300.0
RESTARTS_BEFORE_RESET: Final = 2
RESETS_BEFORE_DEGRADED: Final = 2


class RecoveryStep(enum.StrEnum):
    RESTART_SCAN = "restart_scan"
    RESET_ADAPTER = "reset_adapter"
    DEGRADED = "degraded"  # keep trying resets, slowly, and say so in diagnostics


class RecoveryLadder:
    """Decides the next recovery step. ``failed(kind)`` returns the step and the delay (seconds
    of monotonic time) to wait before taking it; ``succeeded()`` resets the ladder."""

    def __init__(
        self,
        clock: Clock,
        *,
        restarts_before_reset: int = RESTARTS_BEFORE_RESET,
        resets_before_degraded: int = RESETS_BEFORE_DEGRADED,
        degraded_retry_s: float = DEGRADED_RETRY_S,
    ) -> None:
        self._clock = clock
        self._restarts_before_reset = restarts_before_reset
        self._resets_before_degraded = resets_before_degraded
        self._degraded_retry_s = degraded_retry_s
        self._restarts = 0  # consecutive, since the last success
        self._resets = 0
        self.degraded = False
        self.degraded_since: float | None = None
        self.counts: dict[str, int] = {}
        self.last_failure: str | None = None

    def failed(self, kind: BleErrorKind, *, escalate: bool = True) -> tuple[RecoveryStep, float]:
        """``escalate=False``: count the failure and restart the scan, without climbing."""
        self.counts[kind.value] = self.counts.get(kind.value, 0) + 1
        self.last_failure = kind.value
        if not escalate:
            return RecoveryStep.RESTART_SCAN, self._restart_wait(kind)
        if self.degraded:
            return RecoveryStep.RESET_ADAPTER, self._degraded_retry_s
        if self._resets >= self._resets_before_degraded:
            self.degraded = True
            self.degraded_since = self._clock.monotonic()
            return RecoveryStep.DEGRADED, self._degraded_retry_s
        adapter_level = kind is BleErrorKind.ADAPTER_GONE
        if not adapter_level and self._restarts < self._restarts_before_reset:
            self._restarts += 1
            return RecoveryStep.RESTART_SCAN, self._restart_wait(kind)
        # a reset earns plain restarts another chance before the next reset
        self._resets += 1
        self._restarts = 0
        return RecoveryStep.RESET_ADAPTER, AFTER_RESET_WAIT_S if self._resets > 1 else 0.0

    def succeeded(self) -> None:
        self._restarts = 0
        self._resets = 0
        self.degraded = False
        self.degraded_since = None

    @staticmethod
    def _restart_wait(kind: BleErrorKind) -> float:
        if kind is BleErrorKind.IN_PROGRESS:
            return IN_PROGRESS_WAIT_S
        if kind is BleErrorKind.NOT_READY:
            return NOT_READY_WAIT_S
        return 0.0

    def diagnostics(self) -> dict[str, Any]:
        return {
            "degraded": self.degraded,
            "degraded_for_s": (
                None
                if self.degraded_since is None
                else self._clock.monotonic() - self.degraded_since
            ),
            "consecutive_restarts": self._restarts,
            "consecutive_resets": self._resets,
            "failures": dict(self.counts),
            "last_failure": self.last_failure,
        }


__all__ = [
    "SCANNER_WATCHDOG_CHECK_S",
    "SCANNER_WATCHDOG_TIMEOUT_S",
    "RecoveryLadder",
    "RecoveryStep",
]
