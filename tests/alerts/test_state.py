from __future__ import annotations

from pathlib import Path

from alerts.manager import AlertManager
from alerts.outbox import Outbox
from alerts.state import (
    HELD_KEY,
    LEGACY_FILE,
    VISITS_KEY,
    alerts_of,
    held_of,
    records_of,
    take_over_legacy_file,
    visits_of,
)
from gateway.clock import SimClock
from gateway.model import AlertState, Event, Severity
from gateway.storage import KeyValueFile

T0 = 1_700_000_000.0


def test_open_alerts_survive_a_restart(tmp_path: Path) -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, escalate_after_s={Severity.CRITICAL: 300.0})
    (sos,) = manager.handle(Event("sos", "r1", T0, Severity.CRITICAL, device="b"))
    (offline,) = manager.handle(Event("device_offline", "r1", T0, Severity.WARNING, key="door"))
    manager.acknowledge(offline.alert.id)
    manager.handle(Event("tamper", "r2", T0, Severity.HIGH, key="x"))
    manager.resolve(next(a.id for a in manager.active.values() if a.type == "tamper"))
    box = Outbox(tmp_path / "outbox.sqlite3", clock)
    box.commit([], records_of(manager))
    box.close()

    later = SimClock(T0 + 60, start_mono=5.0)  # after a reboot: a new monotonic origin
    restored = AlertManager("gw", later, escalate_after_s={Severity.CRITICAL: 300.0})
    box = Outbox(tmp_path / "outbox.sqlite3", later)
    restored.restore(alerts_of(box.open_alerts()))
    assert set(restored.active) == {sos.alert.id, offline.alert.id}
    assert restored.active[offline.alert.id].state is AlertState.ACKNOWLEDGED
    # A press within the repeat window joins the restored alert; staff can still acknowledge.
    (again,) = restored.handle(Event("sos", "r1", T0 + 30, Severity.CRITICAL, device="b"))
    assert again.change == "repeated" and again.alert.id == sos.alert.id
    later.advance(300)
    assert [c.change for c in restored.on_tick()] == ["escalated"]
    (acked,) = restored.acknowledge(sos.alert.id, "nurse")
    assert acked.alert.count == 2


def test_open_alerts_an_earlier_version_kept_in_a_file_of_their_own_are_taken_over(
    tmp_path: Path,
) -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    (sos,) = manager.handle(Event("sos", "r1", T0, Severity.CRITICAL, device="b"))
    legacy = KeyValueFile(tmp_path / LEGACY_FILE, "open_alerts", "test")
    legacy.update(records_of(manager))
    legacy.close()
    box = Outbox(tmp_path / "outbox.sqlite3", clock)
    take_over_legacy_file(tmp_path, box)
    assert [a.id for a in alerts_of(box.open_alerts())] == [sos.alert.id]
    assert not (tmp_path / LEGACY_FILE).exists()
    box.commit([], {})  # every alert closed since
    take_over_legacy_file(tmp_path, box)  # nothing left to take over: nothing comes back
    assert box.open_alerts() == {}
    # a rollback to the earlier version raised and closed alerts of its own, then back again:
    # its file is the newer set
    box.commit([], {"stale": {"id": "stale"}})
    legacy = KeyValueFile(tmp_path / LEGACY_FILE, "open_alerts", "test")
    legacy.update(records_of(manager))
    legacy.close()
    take_over_legacy_file(tmp_path, box)
    assert [a.id for a in alerts_of(box.open_alerts())] == [sos.alert.id]


def test_a_record_that_cannot_be_read_is_skipped_not_fatal() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    manager.handle(Event("sos", "r1", T0, Severity.CRITICAL, device="b"))
    records = records_of(manager)
    records["bad"] = {**next(iter(records.values())), "severity": "apocalyptic"}
    records["worse"] = {"type": "sos"}
    assert [a.type for a in alerts_of(records)] == ["sos"]


def _saved_and_taken_back(tmp_path: Path, manager: AlertManager, later: SimClock) -> AlertManager:
    box = Outbox(tmp_path / "outbox.sqlite3", manager.clock)
    box.commit([], records_of(manager))
    box.close()
    restored = AlertManager("gw", later, visit_max_s=3 * 3600.0)
    box = Outbox(tmp_path / "outbox.sqlite3", later)
    records = box.open_alerts()
    box.close()
    restored.restore(alerts_of(records))
    restored.restore_visits(visits_of(records))
    return restored


def test_a_visit_survives_a_restart_until_its_time_is_up(tmp_path: Path) -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, visit_max_s=3 * 3600.0)
    manager.handle(Event("sos", "r1", T0, Severity.CRITICAL, device="b"))
    manager.start_visit("r1", "nurse", hours=1.0)
    clock.advance(600.0)
    # a power cut of 20 min: a new monotonic origin, the wall clock went on
    later = SimClock(T0 + 1800.0, start_mono=4.0)
    restored = _saved_and_taken_back(tmp_path, manager, later)
    assert [a.type for a in restored.active.values()] == ["sos"]  # the visit is no alert
    assert restored.in_visit("r1") and restored.visits["r1"].by == "nurse"
    # it ends when it would have: 1 h after it began, not 1 h after the restart
    later.advance(1800.0 - 1.0)
    assert restored.in_visit("r1")
    later.advance(1.0)
    assert not restored.in_visit("r1")


def test_a_visit_is_not_taken_back_when_it_is_over_or_the_clock_cannot_tell(
    tmp_path: Path,
) -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    manager.start_visit("r1", hours=1.0)
    over = _saved_and_taken_back(tmp_path, manager, SimClock(T0 + 3601.0, start_mono=4.0))
    assert not over.in_visit("r1")
    booted_in_1970 = _saved_and_taken_back(tmp_path, manager, SimClock(60.0, start_mono=4.0))
    assert not booted_in_1970.in_visit("r1")  # it may have ended long ago
    clock_set_back = _saved_and_taken_back(tmp_path, manager, SimClock(T0 - 86400.0))
    assert clock_set_back.visits["r1"].until_mono - clock_set_back.clock.monotonic() == 3 * 3600.0


def test_saved_visits_that_cannot_be_read_are_skipped_not_fatal() -> None:
    manager = AlertManager("gw", SimClock(T0))
    manager.restore_visits(
        [
            {"resident": "r1"},
            None,
            {"resident": "r2", "by": "x", "until_wall": "soon"},
            {"resident": "r3", "by": "x", "until_wall": float("nan")},
            {"resident": "r4", "by": "x", "until_wall": T0 + 60.0},
        ]
    )
    assert sorted(manager.visits) == ["r4"]
    assert visits_of({VISITS_KEY: "garbage"}) == []
    assert alerts_of({VISITS_KEY: [{"resident": "r4"}]}) == []


def test_saved_held_alerts_that_cannot_be_read_are_skipped_and_the_rest_raised() -> None:
    """What a visit held back comes back from the outbox's file; a record damaged or written
    by another version is logged and skipped. Its visit not taken back (over by the wall
    clock while the gateway was down), the rest is raised at the next tick."""
    clock = SimClock(T0)
    first = AlertManager("gw", clock)
    first.start_visit("r1", by="nurse")
    first.handle(Event("not_up", "r1", T0, Severity.HIGH))
    records = records_of(first)
    (good,) = held_of(records)
    later = AlertManager("gw", SimClock(T0 + 7200.0))
    taken = later.restore_held(
        [{"type": "inactivity"}, None, {**good, "severity": "loud"}, {**good, "t": "soon"}, good]
    )
    assert [(a.type, a.resident) for a in taken] == [("not_up", "r1")]
    (raised,) = later.on_tick()
    assert (raised.change, raised.alert.type, raised.alert.t) == ("raised", "not_up", T0)
    assert held_of({HELD_KEY: "garbage"}) == []


def test_a_visit_taken_back_on_a_boot_clock_behind_ends_when_the_clock_is_set(
    tmp_path: Path,
) -> None:
    """A Pi boots on the time fake-hwclock saved (plausible, but behind): a visit over long
    ago looks under way and is taken back. Once NTP sets the clock, the visit is over by its
    saved end on the wall clock; before, it went on for up to visit_max_h on the monotonic
    clock, holding the resident's behaviour alerts with nobody on site."""
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, visit_max_s=3 * 3600.0)
    manager.start_visit("r1", "nurse", hours=3.0)  # until T0 + 3 h
    clock.advance(1800.0)  # the power fails half an hour in, for 5 hours
    later = SimClock(T0 + 1020.0, start_mono=4.0)  # fake-hwclock's time, saved at T0 + 17 min
    restored = _saved_and_taken_back(tmp_path, manager, later)
    assert restored.in_visit("r1")  # the clock cannot tell yet
    night_exit = Event("night_exit", "r1", later.wall(), Severity.HIGH)
    assert restored.handle(night_exit) == []  # held
    later.advance(60.0)
    later.jump_wall(T0 + 1800.0 + 5 * 3600.0 + 60.0 - later.wall())  # NTP: the real time
    assert [c.alert.type for c in restored.on_tick()] == ["night_exit"]
    assert not restored.in_visit("r1")
    assert restored.visit_records() == []
