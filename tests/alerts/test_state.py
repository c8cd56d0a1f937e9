from __future__ import annotations

from pathlib import Path

from alerts.manager import AlertManager
from alerts.state import OpenAlertStore, records_of
from gateway.clock import SimClock
from gateway.model import AlertState, Event, Severity

T0 = 1_700_000_000.0


def test_open_alerts_survive_a_restart(tmp_path: Path) -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, escalate_after_s={Severity.CRITICAL: 300.0})
    (sos,) = manager.handle(Event("sos", "r1", T0, Severity.CRITICAL, device="b"))
    (offline,) = manager.handle(Event("device_offline", "r1", T0, Severity.WARNING, key="door"))
    manager.acknowledge(offline.alert.id)
    manager.handle(Event("tamper", "r2", T0, Severity.HIGH, key="x"))
    manager.resolve(next(a.id for a in manager.active.values() if a.type == "tamper"))
    store = OpenAlertStore(tmp_path / "alerts.sqlite3")
    store.save(records_of(manager.active))
    store.close()

    later = SimClock(T0 + 60, start_mono=5.0)  # after a reboot: a new monotonic origin
    restored = AlertManager("gw", later, escalate_after_s={Severity.CRITICAL: 300.0})
    store = OpenAlertStore(tmp_path / "alerts.sqlite3")
    restored.restore(store.load())
    assert set(restored.active) == {sos.alert.id, offline.alert.id}
    assert restored.active[offline.alert.id].state is AlertState.ACKNOWLEDGED
    # A press within the repeat window joins the restored alert; staff can still acknowledge.
    (again,) = restored.handle(Event("sos", "r1", T0 + 30, Severity.CRITICAL, device="b"))
    assert again.change == "repeated" and again.alert.id == sos.alert.id
    later.advance(300)
    assert [c.change for c in restored.on_tick()] == ["escalated"]
    (acked,) = restored.acknowledge(sos.alert.id, "nurse")
    assert acked.alert.count == 2
