"""An unacknowledged alert taken back after a restart escalates on its original schedule as far
as the wall clock can tell, never later than a whole window from the restart. Saved and read
back through the outbox's file, as the runtime does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts.manager import AlertManager
from alerts.outbox import Outbox
from alerts.state import alerts_of, records_of
from gateway.clock import SimClock
from gateway.model import Event, Severity

T0 = 1_700_000_000.0
WINDOW = 300.0


def _manager(clock: SimClock) -> AlertManager:
    return AlertManager("gw", clock, escalate_after_s={Severity.CRITICAL: WINDOW})


def _sos(resident: str, t: float) -> Event:
    return Event("sos", resident, t, Severity.CRITICAL, device=f"sos-{resident}")


def _restarted(
    tmp_path: Path, manager: AlertManager, wall: float, records: dict[str, Any] | None = None
) -> AlertManager:
    """``manager``'s open alerts (or ``records``) saved, the power cut, and taken back by a
    gateway started at ``wall`` with monotonic time starting afresh."""
    box = Outbox(tmp_path / "outbox.sqlite3", manager.clock)
    box.commit([], records_of(manager) if records is None else records)
    box.close()
    later = SimClock(wall, start_mono=4.0)
    restored = _manager(later)
    box = Outbox(tmp_path / "outbox.sqlite3", later)
    restored.restore(alerts_of(box.open_alerts()))
    box.close()
    return restored


def _escalated(manager: AlertManager) -> list[str]:
    return [c.alert.resident for c in manager.on_tick() if c.change == "escalated"]


def _escalates_after(manager: AlertManager, seconds: float, residents: list[str]) -> None:
    """Nothing escalates until ``seconds`` from now, then exactly ``residents``' alerts do."""
    clock = _clock(manager)
    clock.advance(seconds - 1.0)
    assert _escalated(manager) == []
    clock.advance(1.0)
    assert sorted(_escalated(manager)) == residents


def _clock(manager: AlertManager) -> SimClock:
    assert isinstance(manager.clock, SimClock)
    return manager.clock


def test_a_restored_alert_escalates_a_window_after_it_was_raised_not_after_the_restart(
    tmp_path: Path,
) -> None:
    """An SOS raised 2 min before a power cut of 1 min escalates 2 min after the restart, 5 min
    after the press on the wall clock (before: 5 min after the restart, 8 after the press)."""
    clock = SimClock(T0)
    first = _manager(clock)
    first.handle(_sos("r1", T0))
    clock.advance(120.0)
    restored = _restarted(tmp_path, first, T0 + 120.0 + 60.0)
    later = _clock(restored)
    assert restored.next_deadline() == later.monotonic() + 120.0
    _escalates_after(restored, 120.0, ["r1"])
    # and from there on the monotonic clock, a whole window each time
    _escalates_after(restored, WINDOW, ["r1"])


def test_an_alert_whose_window_ended_while_the_gateway_was_down_escalates_at_the_first_tick(
    tmp_path: Path,
) -> None:
    clock = SimClock(T0)
    first = _manager(clock)
    first.handle(_sos("r1", T0))
    clock.advance(30.0)
    restored = _restarted(tmp_path, first, T0 + 3600.0)  # down for an hour
    later = _clock(restored)
    assert restored.next_deadline() == later.monotonic()  # the pipeline ticks at once
    assert _escalated(restored) == ["r1"]
    assert restored.next_deadline() == later.monotonic() + WINDOW


def test_a_boot_clock_behind_gives_the_whole_window_and_ntp_setting_it_escalates_at_once(
    tmp_path: Path,
) -> None:
    """fake-hwclock restores a wall time before the alert was armed: its age cannot be told,
    so it gets the whole window from the restart (no later than before). When NTP steps the
    clock to the real time, which is past the window's end, it escalates at the next tick."""
    clock = SimClock(T0)
    first = _manager(clock)
    first.handle(_sos("r1", T0))
    clock.advance(60.0)
    behind = T0 - 1800.0  # the time fake-hwclock saved before the alert
    waits = _restarted(tmp_path, first, behind)
    later = _clock(waits)
    assert waits.next_deadline() == later.monotonic() + WINDOW
    _escalates_after(waits, WINDOW, ["r1"])

    synced = _restarted(tmp_path, first, behind)
    later = _clock(synced)
    later.advance(30.0)
    assert _escalated(synced) == []
    later.jump_wall(T0 + 2 * 3600.0 - later.wall())  # NTP: down for two hours in truth
    assert _escalated(synced) == ["r1"]
    # escalated again a whole window later, on the monotonic clock
    _escalates_after(synced, WINDOW, ["r1"])


def test_an_alert_escalated_before_the_restart_escalates_again_a_window_after_that(
    tmp_path: Path,
) -> None:
    clock = SimClock(T0)
    first = _manager(clock)
    first.handle(_sos("r1", T0))
    clock.advance(WINDOW)
    assert _escalated(first) == ["r1"]  # at T0 + 5 min
    clock.advance(100.0)
    restored = _restarted(tmp_path, first, T0 + WINDOW + 100.0 + 50.0)
    _escalates_after(restored, WINDOW - 150.0, ["r1"])
    assert restored.active[next(iter(restored.active))].details["escalations"] == 2


def test_an_acknowledged_alert_never_escalates_after_a_restart(tmp_path: Path) -> None:
    clock = SimClock(T0)
    first = _manager(clock)
    (acked,) = first.handle(_sos("r1", T0))
    first.handle(_sos("r2", T0))
    first.acknowledge(acked.alert.id, "nurse")
    clock.advance(60.0)
    restored = _restarted(tmp_path, first, T0 + 3600.0)
    later = _clock(restored)
    assert _escalated(restored) == ["r2"]  # its window ended while the gateway was down
    later.jump_wall(86400.0)
    for _ in range(10):
        later.advance(WINDOW)
        assert "r1" not in _escalated(restored)
    assert len(restored.active) == 2


def test_a_wall_clock_jump_while_the_gateway_runs_escalates_nothing_early(tmp_path: Path) -> None:
    """Only a restart measures a timer on the wall clock: an alert raised in this run, or one
    taken back and escalated since, runs on the monotonic clock whatever NTP does."""
    clock = SimClock(T0)
    first = _manager(clock)
    first.handle(_sos("r1", T0))
    clock.advance(200.0)
    restored = _restarted(tmp_path, first, T0 + 250.0)
    later = _clock(restored)
    restored.handle(_sos("r2", later.wall()))  # raised in this run
    later.advance(50.0)
    assert _escalated(restored) == ["r1"]  # restored: at T0 + 5 min
    later.jump_wall(3600.0)
    later.advance(1.0)
    assert _escalated(restored) == []  # neither r1, re-armed in this run, nor r2
    later.jump_wall(-7200.0)  # nor later when it steps back
    _escalates_after(restored, WINDOW - 50.0 - 1.0, ["r2"])
    later.advance(50.0)
    assert _escalated(restored) == ["r1"]


def test_an_alert_saved_without_its_armed_time_escalates_a_whole_window_after_the_restart(
    tmp_path: Path,
) -> None:
    """A record of an earlier version (no armed time) or a damaged one behaves as before: the
    whole window from the restart. One saved with it beside them keeps its schedule."""
    clock = SimClock(T0)
    first = _manager(clock)
    for resident in ("old", "damaged", "new"):
        first.handle(_sos(resident, T0))
    clock.advance(60.0)
    records = records_of(first)
    for record in records.values():
        if record["resident"] == "old":
            del record["escalation_armed_wall"]
        if record["resident"] == "damaged":
            record["escalation_armed_wall"] = "yesterday"
    restored = _restarted(tmp_path, first, T0 + 120.0, records)
    later = _clock(restored)
    assert len(restored.active) == 3
    later.advance(WINDOW - 120.0)
    assert _escalated(restored) == ["new"]
    _escalates_after(restored, 120.0, ["damaged", "old"])


def test_an_alert_armed_before_the_wall_clock_was_set_gets_the_whole_window(
    tmp_path: Path,
) -> None:
    """A Pi booted in 1970 (no fake-hwclock): the arming time means nothing, none is saved."""
    clock = SimClock(60.0)
    first = _manager(clock)
    first.handle(_sos("r1", 60.0))
    assert first.active[next(iter(first.active))].escalation_armed_wall is None
    restored = _restarted(tmp_path, first, T0)
    _escalates_after(restored, WINDOW, ["r1"])
