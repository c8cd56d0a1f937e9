"""The recovery ladder and the reconnect backoff, on an injected clock and RNG."""

from __future__ import annotations

from drivers.ble.base import BleErrorKind
from drivers.ble.recovery import RecoveryLadder, RecoveryStep
from gateway.clock import SimClock


def test_ladder_escalates_restart_reset_degraded_and_keeps_trying() -> None:
    clock = SimClock()
    ladder = RecoveryLadder(clock, restarts_before_reset=2, resets_before_degraded=2)
    steps = [ladder.failed(BleErrorKind.OTHER)[0] for _ in range(7)]
    assert steps == [
        RecoveryStep.RESTART_SCAN,
        RecoveryStep.RESTART_SCAN,
        RecoveryStep.RESET_ADAPTER,
        RecoveryStep.RESTART_SCAN,  # a reset earns the restarts another chance
        RecoveryStep.RESTART_SCAN,
        RecoveryStep.RESET_ADAPTER,
        RecoveryStep.DEGRADED,
    ]
    assert ladder.degraded
    clock.advance(600)
    assert ladder.diagnostics()["degraded_for_s"] == 600
    step, delay = ladder.failed(BleErrorKind.OTHER)
    assert step is RecoveryStep.RESET_ADAPTER and delay > 0  # degraded never gives up
    assert ladder.diagnostics()["failures"] == {"other": 8}


def test_adapter_gone_skips_straight_to_reset() -> None:
    ladder = RecoveryLadder(SimClock())
    assert ladder.failed(BleErrorKind.ADAPTER_GONE)[0] is RecoveryStep.RESET_ADAPTER


def test_busy_adapter_waits_before_restarting() -> None:
    ladder = RecoveryLadder(SimClock())
    step, in_progress_wait = ladder.failed(BleErrorKind.IN_PROGRESS)
    assert step is RecoveryStep.RESTART_SCAN and in_progress_wait > 0
    _, not_ready_wait = ladder.failed(BleErrorKind.NOT_READY)
    assert not_ready_wait > in_progress_wait


def test_success_climbs_back_down() -> None:
    ladder = RecoveryLadder(SimClock(), restarts_before_reset=1, resets_before_degraded=1)
    for _ in range(3):
        ladder.failed(BleErrorKind.OTHER)
    assert ladder.degraded
    ladder.succeeded()
    assert not ladder.degraded
    assert ladder.failed(BleErrorKind.OTHER)[0] is RecoveryStep.RESTART_SCAN


def test_a_failure_that_does_not_escalate_is_counted_but_climbs_nothing() -> None:
    ladder = RecoveryLadder(SimClock(), restarts_before_reset=1, resets_before_degraded=1)
    for _ in range(10):
        assert ladder.failed(BleErrorKind.SILENT, escalate=False)[0] is RecoveryStep.RESTART_SCAN
    assert not ladder.degraded
    assert ladder.diagnostics()["failures"] == {"silent": 10}
    assert ladder.diagnostics()["consecutive_restarts"] == 0
