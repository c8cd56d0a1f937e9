from __future__ import annotations

from pathlib import Path

from alerts.manager import AlertManager
from alerts.outbox import Outbox
from alerts.state import LEGACY_FILE, alerts_of, records_of, take_over_legacy_file
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
    box.commit([], records_of(manager.active))
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
    legacy.update(records_of(manager.active))
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
    legacy.update(records_of(manager.active))
    legacy.close()
    take_over_legacy_file(tmp_path, box)
    assert [a.id for a in alerts_of(box.open_alerts())] == [sos.alert.id]


def test_a_record_that_cannot_be_read_is_skipped_not_fatal() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    manager.handle(Event("sos", "r1", T0, Severity.CRITICAL, device="b"))
    records = records_of(manager.active)
    records["bad"] = {**next(iter(records.values())), "severity": "apocalyptic"}
    records["worse"] = {"type": "sos"}
    assert [a.type for a in alerts_of(records)] == ["sos"]
