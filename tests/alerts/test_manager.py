from __future__ import annotations

from alerts.manager import MAX_ESCALATIONS, AlertManager
from gateway.clock import SimClock
from gateway.model import AlertState, Event, EventAction, Severity

T0 = 1_700_000_000.0


def sos(t: float, action: EventAction = EventAction.RAISE, resident: str = "r1") -> Event:
    return Event("sos", resident, t, Severity.CRITICAL, action, device="btn")


def test_presses_within_the_window_are_one_alert_with_a_count() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    first = manager.handle(sos(T0))
    again = manager.handle(sos(T0 + 30))
    later = manager.handle(sos(T0 + 30 + 61))
    assert [c.change for c in first + again + later] == ["raised", "repeated", "raised"]
    assert again[0].alert.id == first[0].alert.id and again[0].alert.count == 2
    assert later[0].alert.id != first[0].alert.id
    # Snapshots: the first change still says count 1.
    assert first[0].alert.count == 1


def fall(t: float, action: EventAction = EventAction.RAISE) -> Event:
    return Event("fall", "r1", t, Severity.CRITICAL, action, device="band", key="band")


def test_a_fall_after_staff_acknowledged_the_last_one_is_an_alert_of_its_own() -> None:
    """Staff acknowledged fall 1 (on their way); the wearer falls again and cancels that one:
    fall 1's alert stays acknowledged, fall 2's is cancelled. Joined as a repeat of the
    acknowledged alert (within 60 s of the acknowledgement), the cancel withdrew fall 1."""
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    (first,) = manager.handle(fall(T0))
    clock.advance(40)
    manager.acknowledge(first.alert.id, by="nurse")
    clock.advance(20)
    (second,) = manager.handle(fall(T0 + 55))
    assert second.change == "raised" and second.alert.id != first.alert.id
    (cancelled,) = manager.handle(fall(T0 + 55, EventAction.CANCEL))
    assert cancelled.alert.id == second.alert.id
    assert manager.active[first.alert.id].state is AlertState.ACKNOWLEDGED
    clock.advance(300)
    assert manager.on_tick() == []  # acknowledged: no escalation; the second one is over


def test_a_fall_dated_before_the_open_one_by_a_wall_clock_step_is_an_alert_of_its_own() -> None:
    """Fall 1 is open; NTP steps the wall clock back an hour; 90 s later the wearer falls again
    and cancels that one. Fall 2 is dated an hour before fall 1: joined as a repeat
    (``t2 - t1 <= 60 s``), the cancel withdrew fall 1."""
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    (first,) = manager.handle(fall(T0))
    clock.advance(90)
    clock.jump_wall(-3600)
    (second,) = manager.handle(fall(T0 + 90 - 3600))
    assert second.change == "raised" and second.alert.id != first.alert.id
    (cancelled,) = manager.handle(fall(T0 + 90 - 3600, EventAction.CANCEL))
    assert cancelled.alert.id == second.alert.id
    assert manager.active[first.alert.id].state is AlertState.OPEN


def test_the_repeat_window_counts_from_the_last_press_not_from_an_escalation() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, escalate_after_s={Severity.CRITICAL: 300.0})
    (first,) = manager.handle(sos(T0))
    clock.advance(300)
    (escalated,) = manager.on_tick()
    assert escalated.change == "escalated"  # moves last_t to now
    (again,) = manager.handle(sos(T0 + 320))
    assert again.change == "raised" and again.alert.id != first.alert.id
    (joined,) = manager.handle(sos(T0 + 350))
    assert joined.change == "repeated" and joined.alert.id == again.alert.id


def test_condition_alerts_join_while_open_and_clear_resolves() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    ev = Event("device_offline", "r1", T0, Severity.WARNING, key="door")
    assert manager.handle(ev)[0].change == "raised"
    assert manager.handle(ev)[0].change == "repeated"
    other = Event("device_offline", "r1", T0, Severity.WARNING, key="bed")
    assert manager.handle(other)[0].change == "raised"
    (cleared,) = manager.handle(
        Event("device_offline", "r1", T0 + 9, Severity.WARNING, EventAction.CLEAR, key="door")
    )
    assert cleared.change == "resolved" and cleared.alert.state is AlertState.RESOLVED
    assert (
        manager.handle(
            Event("device_offline", "r1", T0, Severity.WARNING, EventAction.CLEAR, key="door")
        )
        == []
    )
    assert len(manager.active) == 1


def test_resident_cancel_and_staff_ack() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, languages=["en"])
    (raised,) = manager.handle(sos(T0))
    (cancelled,) = manager.handle(sos(T0 + 5, EventAction.CANCEL))
    assert (
        cancelled.alert.state is AlertState.CANCELLED and cancelled.alert.changed_by == "resident"
    )
    assert "cancelled by the resident" in cancelled.alert.text["en"]
    assert manager.counters["cancelled_by_resident"] == 1
    (raised,) = manager.handle(sos(T0 + 100))
    (acked,) = manager.acknowledge(raised.alert.id, by="nurse")
    assert acked.alert.state is AlertState.ACKNOWLEDGED and acked.alert.changed_by == "nurse"
    assert manager.acknowledge(raised.alert.id) == []  # idempotent
    assert manager.acknowledge("nope") == [] and manager.counters["unknown_alert_commands"] == 1
    (resolved,) = manager.resolve(raised.alert.id)
    assert resolved.alert.state is AlertState.RESOLVED and not manager.active


def test_unacknowledged_critical_alert_escalates_on_the_clock_until_acknowledged() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, escalate_after_s={Severity.CRITICAL: 300.0})
    (raised,) = manager.handle(sos(T0))
    clock.advance(299)
    assert manager.on_tick() == []
    clock.advance(1)
    (esc,) = manager.on_tick()
    assert esc.change == "escalated" and esc.alert.state is AlertState.ESCALATED
    for _ in range(MAX_ESCALATIONS + 2):
        clock.advance(300)
        manager.on_tick()
    assert manager.active[raised.alert.id].details["escalations"] == MAX_ESCALATIONS
    assert manager.next_deadline() is None
    (raised2,) = manager.handle(sos(T0 + 10_000))
    manager.acknowledge(raised2.alert.id)
    clock.advance(10_000)
    assert manager.on_tick() == []


def test_visit_mode_pauses_behaviour_alerts_only_and_ends_by_itself() -> None:
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, visit_max_s=3600)
    manager.start_visit("r1", by="nurse")
    behaviour = Event("inactivity", "r1", T0, Severity.HIGH)
    assert manager.handle(behaviour) == []
    assert manager.handle(Event("inactivity", "r2", T0, Severity.HIGH))[0].change == "raised"
    assert manager.handle(sos(T0))[0].change == "raised"
    assert manager.handle(Event("fall", "r1", T0, Severity.CRITICAL))[0].change == "raised"
    assert manager.counters["held_during_visit"] == 1
    clock.advance(3600)
    assert manager.handle(behaviour)[0].change == "raised"


def test_alert_ids_are_stable_and_texts_bilingual() -> None:
    a = AlertManager("gw", SimClock(T0)).handle(sos(T0))[0].alert
    b = AlertManager("gw", SimClock(T0 + 5)).handle(sos(T0))[0].alert
    c = AlertManager("gw2", SimClock(T0)).handle(sos(T0))[0].alert
    assert a.id == b.id != c.id
    assert set(a.text) == {"zh", "en"} and "紧急" in a.text["zh"]


def test_a_long_lie_after_staff_acknowledged_the_fall_is_news_the_platform_takes() -> None:
    """The platform never takes a state back: an escalation that turned an acknowledged fall
    into "escalated" was dropped there, and staff never heard the wearer was still down."""
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, escalate_after_s={Severity.CRITICAL: 300.0})
    (raised,) = manager.handle(fall(T0))
    manager.acknowledge(raised.alert.id, "nurse")
    clock.advance(111)
    long_lie = Event(
        "fall",
        "r1",
        T0,
        Severity.CRITICAL,
        EventAction.ESCALATE,
        "band",
        "band",
        {"reason": "long_lie"},
    )
    (change,) = manager.handle(long_lie)
    assert change.change == "escalated" and change.alert.details["reason"] == "long_lie"
    assert change.alert.state is AlertState.ACKNOWLEDGED
    clock.advance(3600)
    assert manager.on_tick() == []  # acknowledged: nobody is chased for it again


def test_a_behaviour_alert_held_during_a_visit_is_raised_when_the_visit_ends() -> None:
    """Staff left without ending the visit and the resident collapsed: the detector raised
    once (and will not again); the visit running out must not swallow it."""
    clock = SimClock(T0)
    critical_only = {Severity.CRITICAL: 300.0}  # no escalation deadlines for these alerts
    manager = AlertManager("gw", clock, escalate_after_s=critical_only, visit_max_s=3600)
    manager.start_visit("r1", by="nurse")
    clock.advance(1200)
    assert manager.handle(Event("inactivity", "r1", T0 + 1200, Severity.HIGH)) == []
    assert manager.next_deadline() == clock.monotonic() + 2400  # when the visit runs out
    clock.advance(2399)
    assert manager.on_tick() == []
    clock.advance(1)
    (raised,) = manager.on_tick()
    assert raised.change == "raised" and raised.alert.type == "inactivity"
    assert raised.alert.t == T0 + 1200
    # over before the visit ended (the person got up): nothing is raised
    manager.start_visit("r1", by="nurse")
    manager.handle(Event("not_up", "r1", clock.wall(), Severity.HIGH))
    manager.handle(Event("not_up", "r1", clock.wall(), Severity.HIGH, EventAction.CLEAR))
    manager.end_visit("r1")
    assert manager.on_tick() == [] and manager.next_deadline() is None
    # ended by staff: raised at the next tick
    manager.start_visit("r1", by="nurse")
    manager.handle(Event("long_bathroom", "r1", clock.wall(), Severity.HIGH))
    manager.end_visit("r1")
    assert manager.next_deadline() == clock.monotonic()
    assert [c.alert.type for c in manager.on_tick()] == ["long_bathroom"]


def test_a_visit_start_served_again_neither_restarts_nor_stretches_the_visit() -> None:
    """A webhook platform serves a pending command on every poll: each visit_start pushed the
    end out again, the visit never ended and the alert it held was never raised."""
    clock = SimClock(T0)
    critical_only = {Severity.CRITICAL: 300.0}
    manager = AlertManager("gw", clock, escalate_after_s=critical_only, visit_max_s=3 * 3600)
    manager.start_visit("r1", by="nurse")
    assert manager.handle(Event("inactivity", "r1", T0, Severity.HIGH)) == []
    raised = []
    for poll in range(1, 10 * 12):  # every 5 min for 10 h; served for the first 2.5 h
        clock.advance(300)
        if poll <= 30:
            manager.start_visit("r1", by="nurse")
        raised += [(poll, c.alert.type) for c in manager.on_tick()]
    assert raised == [(36, "inactivity")]  # when the visit began + visit_max_h
    assert manager.counters["visit_starts_repeated"] == 30


def test_a_visit_start_delivered_late_counts_from_when_it_was_issued() -> None:
    """The gateway was away for hours; its MQTT session (or a webhook poll) then hands over
    a visit_start staff sent long ago. It paused the resident's behaviour alerts for a full
    visit from its arrival, with nobody on site."""
    clock = SimClock(T0)
    manager = AlertManager("gw", clock, visit_max_s=3 * 3600)
    manager.start_visit("r1", "nurse", hours=1.0, issued_wall=T0 - 2 * 3600)  # long over
    assert not manager.in_visit("r1")
    assert manager.counters["visit_starts_expired"] == 1
    assert [c.alert.type for c in manager.handle(Event("not_up", "r1", T0, Severity.HIGH))] == [
        "not_up"
    ]
    manager.start_visit("r2", "nurse", hours=1.0, issued_wall=T0 - 1800)  # half of it left
    clock.advance(1800 - 1)
    assert manager.in_visit("r2")
    clock.advance(1)
    assert not manager.in_visit("r2")
    # a platform clock a little ahead of the gateway's: the visit runs from now, not longer
    manager.start_visit("r3", "nurse", hours=1.0, issued_wall=clock.wall() + 60)
    clock.advance(3600)
    assert not manager.in_visit("r3")


def test_a_fall_escalated_or_cancelled_later_says_when_in_last_t() -> None:
    """The fall detector dates all its events at the impact (docs/DETECTION.md), also the long
    lie's ESCALATE two minutes later and the wearer's CANCEL. ``last_t`` is the time of the
    latest change (docs/protocol.md): it said the impact, so the platform showed the long lie
    as if it had been known at the fall."""
    clock = SimClock(T0)
    manager = AlertManager("gw", clock)
    manager.handle(fall(T0 - 9))  # raised 9 s after the impact it is dated at
    clock.advance(112)
    (escalated,) = manager.handle(fall(T0 - 9, EventAction.ESCALATE))
    assert (escalated.alert.t, escalated.alert.last_t) == (T0 - 9, T0 + 112)
    clock.advance(600)
    manager.handle(fall(T0 + 700))  # another fall: an alert of its own
    clock.advance(20)
    (cancelled,) = manager.handle(fall(T0 + 700, EventAction.CANCEL))
    assert (cancelled.change, cancelled.alert.last_t) == ("cancelled", T0 + 732)
    # a device clock ahead of the gateway's: never before the event it came with
    manager.handle(sos(T0 + 900))
    (sos_cancelled,) = manager.handle(sos(T0 + 905, EventAction.CANCEL))
    assert sos_cancelled.alert.last_t == T0 + 905
