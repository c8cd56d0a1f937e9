"""Review findings in the fall alert flow (2026-12-07): a link lost at the fall by a band that
never sends its missed samples again, stale batches, cancel presses around two falls or dated
before the impact, and an open fall alert taken over after a gateway restart."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from alerts.manager import AlertChange, AlertManager
from alerts.state import alerts_of, records_of
from gateway.clock import SimClock
from gateway.detection.base import Home as BaseHome
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.detection.sos import SosDetector
from gateway.model import (
    Alert,
    AlertState,
    Device,
    DeviceKind,
    EventAction,
    Reading,
    Resident,
    Severity,
)
from gateway.pipeline import Pipeline
from tests.detection.test_fall_alerts import (
    EPOCH,
    MONO,
    WRIST,
    Home,
    still,
    synth_fall,
    synth_table_hit,
    walking,
)

PENDANT = Device("pendant-1", DeviceKind.BUTTON, "p1")


def stream_dropping(home: Home, xyz: np.ndarray, lost: tuple[int, int]) -> None:
    """The project's wristband (sample counter, no buffering): notifications of 10 samples at
    50 Hz, dated on arrival; those taken while the link is down (samples ``lost[0]`` to
    ``lost[1]``) are never sent, the counter moves on."""
    seq = 7_000
    for i in range(0, xyz.shape[0], 10):
        part = xyz[i : i + 10]
        home.idle(part.shape[0] / 50.0)
        values = {"acc": part, "fs": 50.0, "seq": seq}
        seq += part.shape[0]
        if lost[0] <= i < lost[1]:
            continue
        home.send(Reading(home.clock.wall() - 0.18, WRIST.id, values))


@pytest.mark.parametrize(
    ("lost_after_s", "away_s"), [(0.2, 3.0), (0.4, 1.2), (0.6, 1.2), (1.0, 2.0), (2.2, 2.6)]
)
def test_a_link_lost_for_seconds_at_the_fall_still_alerts_and_escalates(
    lost_after_s: float, away_s: float
) -> None:
    """Lost within 0.5 s of the impact no candidate opened; later, the gap cut the candidate
    off with under 2 s of data and it was dropped as incomplete: no alert at all."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    lost_at = int((impact_s + lost_after_s) * 50) // 10 * 10
    stream_dropping(home, np.concatenate([xyz, still(150)]), (lost_at, lost_at + away_s * 50))
    home.idle(10)
    ((raised_mono, _),) = home.of(EventAction.RAISE)
    assert raised_mono - (MONO + impact_s) < 9.5
    ((_, escalated),) = home.of(EventAction.ESCALATE)
    assert escalated.details["reason"] == "long_lie"
    assert home.detector.counters["gaps_bridged_after_impact"] == 1
    assert home.detector.counters["candidates_incomplete"] == 0


def test_a_link_lost_after_an_everyday_impact_raises_nothing() -> None:
    home = Home()
    _t, xyz = synth_table_hit(np.random.default_rng(2))
    hit = 8 * 50
    stream_dropping(home, np.concatenate([xyz, walking(20)]), (hit + 30, hit + 180))
    home.idle(10)
    assert home.events == []
    assert home.detector.counters["gaps_bridged_after_impact"] == 1
    assert home.detector.counters["candidates_scored"] >= 1


def test_a_link_lost_without_an_impact_under_way_still_starts_a_new_segment() -> None:
    home = Home()
    stream_dropping(home, walking(20), (300, 450))
    assert home.detector.counters["segments_restarted"] == 1
    assert home.detector.counters["gaps_bridged_after_impact"] == 0


# --- an open fall alert after a gateway restart ---------------------------------------------


def run_to_a_raised_fall(long_lie_s: float = 60.0) -> tuple[SimClock, list[Alert]]:
    """A fall raised by one run of the gateway; returns its clock and the open alerts as the
    store hands them back at the next start."""
    clock = SimClock(EPOCH, MONO)
    pipeline = build_pipeline(clock, long_lie_s)
    _t, xyz, _ = synth_fall(np.random.default_rng(1), after=10.0)
    changes = feed_band(pipeline, clock, xyz)
    assert [(c.change, c.alert.type) for c in changes] == [("raised", "fall")]
    return clock, alerts_of(records_of(pipeline.manager))


def build_pipeline(clock: SimClock, long_lie_s: float = 60.0) -> Pipeline:
    home = BaseHome([Resident("p1")], [WRIST, PENDANT])
    detectors = [FallAlerts(clock, FallSettings(long_lie_s=long_lie_s)), SosDetector(clock)]
    return Pipeline(home, detectors, AlertManager("gw", clock), clock)


def feed_band(pipeline: Pipeline, clock: SimClock, xyz: np.ndarray) -> list[AlertChange]:
    changes: list[AlertChange] = []
    for i in range(0, xyz.shape[0], 10):
        clock.advance(0.2)
        t = clock.wall() - 0.2
        changes += pipeline.feed(Reading(t, WRIST.id, {"acc": xyz[i : i + 10], "fs": 50.0}))
        changes += pipeline.tick()
    return changes


def restarted(clock: SimClock, alerts: list[Alert], down_s: float, long_lie_s: float = 60.0):
    """The gateway back ``down_s`` later, on a monotonic clock the reboot started anew."""
    clock = SimClock(clock.wall() + down_s, 50.0)
    pipeline = build_pipeline(clock, long_lie_s)
    pipeline.manager.restore(alerts)
    pipeline.resume(list(pipeline.manager.active.values()))
    assert pipeline.counters["alerts_resumed"] == 1
    return clock, pipeline


@pytest.mark.parametrize(("down_s", "cancelled"), [(5.0, True), (35.0, False)])
def test_a_cancel_after_a_restart_withdraws_the_fall_alert_within_its_window(
    down_s: float, cancelled: bool
) -> None:
    """Raised 1 s before the restart; pressed 3 s after it: within the 30 s window after a
    5 s restart, past it after 35 s. Before, the new run did not know the alert and the press
    did nothing."""
    clock, alerts = run_to_a_raised_fall()
    clock, pipeline = restarted(clock, alerts, down_s)
    changes = feed_band(pipeline, clock, still(3))
    changes += pipeline.feed(Reading(clock.wall(), PENDANT.id, {"action": "cancel"}))
    if cancelled:
        assert [(c.change, c.alert.changed_by) for c in changes] == [("cancelled", "resident")]
        assert pipeline.manager.active == {}
    else:
        assert changes == [] and len(pipeline.manager.active) == 1


@pytest.mark.parametrize("moves", [False, True])
def test_a_long_lie_after_a_restart_still_escalates(moves: bool) -> None:
    clock, alerts = run_to_a_raised_fall(long_lie_s=60.0)
    clock, pipeline = restarted(clock, alerts, 5.0)
    changes = feed_band(pipeline, clock, walking(30) if moves else still(30))
    changes += feed_band(pipeline, clock, still(20))  # past 60 s after the impact
    escalations = [c.alert.details.get("reason") for c in changes if c.change == "escalated"]
    assert escalations == ([] if moves else ["long_lie"])


def test_a_resumed_alert_already_escalated_is_not_escalated_again() -> None:
    clock, alerts = run_to_a_raised_fall(long_lie_s=60.0)
    (alert,) = alerts
    alert.state = AlertState.ESCALATED
    clock, pipeline = restarted(clock, alerts, 5.0)
    changes = feed_band(pipeline, clock, still(60))
    assert [c.change for c in changes] == []


def test_resume_takes_only_open_fall_alerts() -> None:
    detector = FallAlerts(SimClock(EPOCH, MONO))
    sos = Alert("a1", "sos", Severity.CRITICAL, "p1", EPOCH, key="pendant-1")
    assert detector.resume(sos) is False
    done = Alert("a2", "fall", Severity.CRITICAL, "p1", EPOCH, AlertState.CANCELLED, key="w")
    assert detector.resume(done) is False
    damaged = Alert("a3", "fall", Severity.CRITICAL, "p1", "yesterday", key="w")  # type: ignore[arg-type]
    assert detector.resume(damaged) is True  # kept for staff: no cancel window, no long lie


@pytest.mark.parametrize("behind_s", [3600.0, EPOCH - 60.0])
def test_a_resumed_alert_of_unknown_age_is_not_escalated_as_a_long_lie(behind_s: float) -> None:
    """The Pi boots with its clock behind the impact (fake-hwclock, or 1970): the fall may be
    hours old and its wearer long up, so sitting still now is no long lie."""
    clock, alerts = run_to_a_raised_fall(long_lie_s=60.0)
    clock, pipeline = restarted(clock, alerts, -behind_s)
    changes = feed_band(pipeline, clock, still(90))
    changes += pipeline.feed(Reading(clock.wall(), PENDANT.id, {"action": "cancel"}))
    assert changes == [] and len(pipeline.manager.active) == 1


# --- cancel presses ----------------------------------------------------------------------


def stamped_batch(xyz: np.ndarray, start: int) -> Reading:
    """The band's batch of 10 samples from ``start``, each with its own time (``ts``)."""
    part = slice(start, start + 10)
    times = EPOCH + np.arange(part.start, min(part.stop, xyz.shape[0])) / 50.0
    return Reading(float(times[0]), WRIST.id, {"acc": xyz[part], "ts": times})


def stream_live(
    home: Home, xyz: np.ndarray, at_s: float, then: Callable[[int], None], idle_s: float
) -> None:
    """Stream ``xyz`` (50 Hz) live in stamped batches; right after the batch holding ``at_s``
    s of the stream, ``then(its first sample)``; then ``idle_s`` of nothing."""
    at = int(at_s * 50) // 10 * 10
    for i in range(0, xyz.shape[0], 10):
        home.run_until(MONO + (min(i + 10, xyz.shape[0]) - 1) / 50.0)
        home.send(stamped_batch(xyz, i))
        if i == at:
            then(i)
    home.idle(idle_s)


def fall_with_a_press(stamped: float, handled: float) -> Home:
    """A fall streamed live; a pendant press stamped ``stamped`` s from the impact is handled
    ``handled`` s after it (a message delayed on its way)."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(1), after=10.0)
    xyz = np.concatenate([xyz, still(150)])

    def press(_i: int) -> None:
        stamp = EPOCH + impact_s + stamped
        home.send(Reading(stamp, PENDANT.id, {"action": "cancel"}), PENDANT)

    stream_live(home, xyz, impact_s + handled, press, idle_s=10)
    return home


@pytest.mark.parametrize(
    ("stamped", "handled"),
    [(-0.5, 1.5), (-0.5, 4.0), (-2.0, 6.0), (-30.0, 2.0), (-0.5, 8.6), (-0.5, 12.0)],
)
def test_a_press_stamped_before_the_impact_and_handled_after_it_cancels_nothing(
    stamped: float, handled: float
) -> None:
    """Handled while the impact was a candidate (or an undecided fall), such a press dropped
    it: no alert, no long-lie escalation; handled after the alert, it withdrew it."""
    home = fall_with_a_press(stamped, handled)
    assert len(home.of(EventAction.RAISE)) == 1
    assert home.of(EventAction.CANCEL) == []
    assert len(home.of(EventAction.ESCALATE)) == 1
    assert home.detector.counters["cancelled_before_alert"] == 0


@pytest.mark.parametrize("handled", [1.5, 8.6])
def test_a_press_after_the_impact_handled_late_still_cancels_it(handled: float) -> None:
    home = fall_with_a_press(1.0, handled)
    assert home.events == []


def two_falls_with_a_press(
    press_from_second: float,
    stamped_from_second: float | None = None,
    by: Device = WRIST,
    walked_s: float = 8.0,
) -> tuple[Home, AlertManager]:
    """Fell, walked ``walked_s``, fell again 10 s + ``walked_s`` (18 s) after the first impact
    (the first alert raised 9 s after it); the wearer presses cancel ``press_from_second`` s
    from the second impact (on ``by``; handled then, stamped ``stamped_from_second`` from it
    if given)."""
    home = Home()
    manager = AlertManager("gw", home.clock)
    _t, first, impact1 = synth_fall(np.random.default_rng(1), after=4.0)
    _t, second, impact2 = synth_fall(np.random.default_rng(2), after=60.0)
    xyz = np.concatenate([first, walking(walked_s), second])
    impact2 += first.shape[0] / 50.0 + walked_s

    def press(_i: int) -> None:
        stamp = home.clock.wall()
        if stamped_from_second is not None:
            stamp = EPOCH + impact2 + stamped_from_second
        home.send(Reading(stamp, by.id, {"action": "cancel"}), by)

    stream_live(home, xyz, impact2 + press_from_second, press, idle_s=200)
    for _, event in home.events:
        manager.handle(event)
    assert impact2 - impact1 == pytest.approx(10.0 + walked_s, abs=0.1)
    return home, manager


def test_a_press_in_the_first_alerts_window_withdraws_it_and_the_second_fall() -> None:
    """Pressed 17.7 s after the first alert, 8.6 s after the second impact (not yet raised):
    the press was spent on the second fall and the first alert stayed open, with nothing in
    the detector watching it any more."""
    home, manager = two_falls_with_a_press(8.6)
    assert [e.action for _, e in home.events] == [EventAction.RAISE, EventAction.CANCEL]
    assert manager.active == {}


def test_a_press_between_the_first_alert_and_the_second_impact_leaves_the_second() -> None:
    home, manager = two_falls_with_a_press(-3.0)
    actions = [e.action for _, e in home.events]
    assert actions == [
        EventAction.RAISE,
        EventAction.CANCEL,
        EventAction.RAISE,
        EventAction.ESCALATE,
    ]
    assert len(manager.active) == 1


def test_a_press_before_the_second_impact_handled_after_its_alert_leaves_it_open() -> None:
    """Stamped 3 s before the second impact but handled 10.5 s after it, once the second
    fall had joined the first's alert: the press withdrew the first fall, and with it the
    joint alert, leaving a real fall and its long lie with nothing open."""
    home, manager = two_falls_with_a_press(10.5, stamped_from_second=-3.0, by=PENDANT)
    assert len(manager.active) == 1
    assert EventAction.ESCALATE in [e.action for _, e in home.events]


@pytest.mark.parametrize("by", [WRIST, PENDANT])
def test_a_press_for_a_second_fall_after_the_first_alerts_window_leaves_the_alert_open(
    by: Device,
) -> None:
    """Fell, no press in the 30 s after the alert; got up, fell again 34 s after the first
    impact (joined to the first's alert) and pressed 2 s after the second alert: the one
    CANCEL withdrew the joint alert, the first fall with it, past its window (later presses
    count only as too late), and nothing was left open."""
    home, manager = two_falls_with_a_press(11.0, by=by, walked_s=24.0)
    actions = [e.action for _, e in home.events]
    assert actions == [EventAction.RAISE, EventAction.RAISE, EventAction.ESCALATE]
    assert len(manager.active) == 1
    assert home.detector.counters["cancel_kept_for_earlier_fall"] == 1


# --- batches dated back ------------------------------------------------------------------


def fall_with_old_batches(at_s: float, age_s: float, count: int = 1) -> Home:
    """A fall streamed live in batches of 10 samples with their own times; ``at_s`` from the
    impact, ``count`` batches sent ``age_s`` before are delivered again, all at once (an MQTT
    redelivery)."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(1), after=10.0)
    xyz = np.concatenate([xyz, still(30)])

    def redeliver(i: int) -> None:
        first = i - int(age_s * 50)
        for j in range(first, first + 10 * count, 10):
            home.send(stamped_batch(xyz, j))

    stream_live(home, xyz, impact_s + at_s, redeliver, idle_s=20)
    return home


@pytest.mark.parametrize("at_s", [-0.4, 0.6, 1.6])
@pytest.mark.parametrize("age_s", [1.2, 5.0])
def test_a_stale_batch_near_an_impact_is_dropped_and_the_fall_kept(
    at_s: float, age_s: float
) -> None:
    """Taken for the band's clock gone back, such a batch cut the stream twice (to it and
    back): the fall lost its context and was never alerted."""
    home = fall_with_old_batches(at_s, age_s)
    assert len(home.of(EventAction.RAISE)) == 1
    counters = home.detector.counters
    assert counters["stale_batches"] == 1 and counters["segments_restarted"] == 0


def test_several_stale_batches_delivered_together_are_no_new_timeline() -> None:
    home = fall_with_old_batches(0.6, 5.0, count=10)  # 2 s of them, continuous
    assert len(home.of(EventAction.RAISE)) == 1
    counters = home.detector.counters
    assert counters["stale_batches"] == 10 and counters["clock_jumps_back"] == 0


def test_a_band_clock_gone_back_by_seconds_is_a_new_timeline_with_every_sample() -> None:
    home = Home()
    home.stream(walking(10))
    home.cursor[WRIST.id] -= 6.0  # the band's clock goes back 6 s and runs on from there
    start = home.cursor[WRIST.id]
    _t, xyz, impact_s = synth_fall(np.random.default_rng(18))
    for i in range(0, xyz.shape[0], 10):
        home.idle(0.2)
        ts = start + np.arange(i, i + 10) / 50.0
        home.send(Reading(float(ts[0]), WRIST.id, {"acc": xyz[i : i + 10], "ts": ts}))
    home.idle(10)
    counters = home.detector.counters
    assert counters["clock_jumps_back"] == 1 and counters["segments_restarted"] == 1
    assert counters["stale_batches"] == 0
    # the held second of the new timeline is written too (grid rounding: a sample or two)
    assert int(home.detector.ring.written[0]) >= 500 + xyz.shape[0] - 3
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + impact_s, abs=0.1)
