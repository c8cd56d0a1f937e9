"""The fall detector shell on a simulated clock: alert flow, streams as real wristbands send
them (any rate, bursts, gaps, clipping, reconnects), not-worn bands, bad input."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from gateway.clock import SimClock
from gateway.commands.evaluate import read_recording
from gateway.detection import fall
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.detection.fall_model import FallModel
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Severity
from tests.detection.fall_spy import SpyModel

EPOCH = 1_700_000_000.0
MONO = 5_000.0
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fall"
WRIST = Device("wrist-1", DeviceKind.WRISTBAND, "p1")


# --- synthetic movements (g, sample times in seconds) ------------------------------------


def synth_fall(
    rng: np.random.Generator, fs: float = 50.0, before: float = 6.0, after: float = 10.0
):
    """Walking with the arm hanging, a short descent, an impact, a bounce, then lying with the
    arm on the floor at a new orientation."""
    t = np.arange(int((before + after) * fs)) / fs
    n1 = int(before * fs)
    xyz = np.zeros((t.size, 3))
    xyz[:, 0] = -1.0
    xyz[:n1] += 0.15 * np.sin(2 * np.pi * 1.8 * t[:n1])[:, None] * np.array([0.3, 1, 0.5])
    xyz[n1 - int(0.5 * fs) : n1] *= 0.35
    k = int(0.06 * fs) + 1
    xyz[n1 : n1 + k] = [3.5, -4.5, 2.0]
    bounce_end = n1 + k + int(0.6 * fs)
    xyz[n1 + k : bounce_end] = np.array([0.0, 0.0, 1.0]) + rng.normal(
        0, 0.4, (bounce_end - n1 - k, 3)
    )
    xyz[bounce_end:] = [0.1, 0.0, 0.99]
    return t, xyz + rng.normal(0, 0.01, xyz.shape), before


def synth_clapping(rng: np.random.Generator, fs: float = 50.0, seconds: float = 16.0):
    t = np.arange(int(seconds * fs)) / fs
    xyz = np.zeros((t.size, 3))
    xyz[:, 1] = -1.0
    xyz += 0.5 * np.sin(2 * np.pi * 2 * t)[:, None] * np.array([1, 0, 0.3])
    for c in np.arange(4.0, 12.0, 0.5):
        i = int(c * fs)
        xyz[i : i + 2] += [3.0, 0.5, 0.5]
    return t, xyz + rng.normal(0, 0.02, xyz.shape)


def synth_table_hit(rng: np.random.Generator, fs: float = 50.0, seconds: float = 16.0):
    t = np.arange(int(seconds * fs)) / fs
    xyz = np.zeros((t.size, 3))
    xyz[:, 2] = -1.0
    xyz += 0.2 * np.sin(2 * np.pi * 0.7 * t)[:, None] * np.array([1, 0.5, 0])
    i = int(8 * fs)
    xyz[i - 10 : i] += [0, 0, -0.8]
    xyz[i : i + 2] += [0, 0, 4.0]
    return t, xyz + rng.normal(0, 0.02, xyz.shape)


def still(seconds: float, orientation=(0.1, 0.0, 0.99), fs: float = 50.0, rng=None):
    rng = rng or np.random.default_rng(0)
    n = int(seconds * fs)
    return np.tile(orientation, (n, 1)) + rng.normal(0, 0.005, (n, 3))


def walking(seconds: float, fs: float = 50.0):
    t = np.arange(int(seconds * fs)) / fs
    xyz = np.zeros((t.size, 3))
    xyz[:, 0] = -1.0
    return xyz + 0.5 * np.sin(2 * np.pi * 1.8 * t)[:, None] * np.array([0.4, 1, 0.6])


# --- a pipeline stand-in --------------------------------------------------------------------


@dataclass
class Home:
    settings: FallSettings = field(default_factory=FallSettings)
    clock: SimClock = field(default_factory=lambda: SimClock(EPOCH, MONO))
    events: list[tuple[float, Event]] = field(default_factory=list)
    detector_model: FallModel | None = None  # the shipped one unless given

    def __post_init__(self) -> None:
        self.detector = FallAlerts(self.clock, self.settings, model=self.detector_model)
        self.cursor: dict[str, float] = {}  # device time of the next sample to send

    def run_until(self, mono: float) -> None:
        """Tick at every deadline the detector asks for (as the pipeline does), then move on."""
        for _ in range(100_000):
            deadline = self.detector.next_deadline()
            if deadline is None or deadline > mono:
                break
            if deadline > self.clock.monotonic():
                self.clock.advance(deadline - self.clock.monotonic())
            self._collect(self.detector.on_tick())
            after = self.detector.next_deadline()
            assert after is None or after > self.clock.monotonic(), "deadline would spin"
        if mono > self.clock.monotonic():
            self.clock.advance(mono - self.clock.monotonic())

    def _collect(self, events: list[Event]) -> None:
        self.events.extend((self.clock.monotonic(), e) for e in events)

    def send(self, reading: Reading, device: Device = WRIST) -> None:
        self._collect(self.detector.on_reading(reading, device))

    def stream(
        self,
        xyz: np.ndarray,
        fs: float = 50.0,
        device: Device = WRIST,
        t_rel: np.ndarray | None = None,
        chunk: int = 10,
        start: float | None = None,
        mode: str = "ts",
    ) -> float:
        """Send samples in batches, the clock following the device's time one-to-one
        (device epoch EPOCH <-> monotonic MONO). Returns the device time of sample 0."""
        t_rel = np.arange(xyz.shape[0]) / fs if t_rel is None else t_rel
        t0 = self.cursor.get(device.id, EPOCH) if start is None else start
        times = t0 + t_rel
        for i in range(0, xyz.shape[0], chunk):
            sl = slice(i, i + chunk)
            self.run_until(MONO + (times[sl][-1] - EPOCH))
            values: dict[str, object]
            if mode == "ts":
                values = {"acc": xyz[sl].tolist(), "ts": times[sl].tolist()}
            elif mode == "offsets":
                values = {"acc": xyz[sl], "ts": (times[sl] - times[sl][0]).tolist()}
            else:
                values = {"acc": xyz[sl], "fs": fs}
            self.send(Reading(float(times[sl][0]), device.id, values), device)
        self.cursor[device.id] = float(times[-1]) + 1.0 / fs
        return t0

    def idle(self, seconds: float) -> None:
        self.run_until(self.clock.monotonic() + seconds)

    def of(self, action: EventAction) -> list[tuple[float, Event]]:
        return [(m, e) for m, e in self.events if e.action is action]


def fall_then_still(home: Home, rng, fs: float = 50.0, lying: float = 10.0) -> float:
    """Stream a synthetic fall; returns the impact's device time."""
    _t, xyz, impact_rel = synth_fall(rng, fs=fs, after=lying)
    t0 = home.stream(xyz, fs=fs)
    return t0 + impact_rel


# --- alert flow ----------------------------------------------------------------------------


@pytest.mark.parametrize("confirmation_s", [None, 5.0, 10.0])
def test_fall_raises_one_critical_alert_after_the_confirmation_window(
    confirmation_s: float | None,
) -> None:
    home = Home() if confirmation_s is None else Home(FallSettings(confirmation_s=confirmation_s))
    impact_t = fall_then_still(home, np.random.default_rng(1))
    home.idle(5)
    raised = home.of(EventAction.RAISE)
    assert len(raised) == 1
    mono, event = raised[0]
    assert event.type == "fall" and event.severity is Severity.CRITICAL
    assert event.resident == "p1" and event.device == "wrist-1" and event.key == "wrist-1"
    assert event.t == pytest.approx(impact_t, abs=0.1)
    latency = mono - (MONO + impact_t - EPOCH)
    confirmation = home.settings.confirmation_s
    assert confirmation - 0.05 <= latency <= confirmation + 0.2


@pytest.mark.parametrize("maker", [synth_clapping, synth_table_hit])
def test_daily_impacts_raise_nothing(maker) -> None:
    home = Home()
    _t, xyz = maker(np.random.default_rng(2))
    home.stream(xyz)
    home.idle(10)
    assert home.events == []
    assert home.detector.counters["candidates_scored"] >= 1  # the gate did open


def test_cancel_within_the_window_withdraws_the_alert() -> None:
    home = Home()
    fall_then_still(home, np.random.default_rng(3))
    home.idle(4)
    assert len(home.of(EventAction.RAISE)) == 1
    home.idle(10)
    home.send(Reading(home.clock.wall(), WRIST.id, {"action": "cancel"}))
    cancels = home.of(EventAction.CANCEL)
    assert len(cancels) == 1 and cancels[0][1].details["by"] == "resident"
    assert home.detector.counters["alerts_cancelled"] == 1
    home.stream(still(130))  # lying still after cancelling: no escalation
    assert home.of(EventAction.ESCALATE) == []


def test_cancel_before_the_alert_means_no_alert() -> None:
    home = Home()
    _t, xyz, _impact_rel = synth_fall(np.random.default_rng(4), after=2.0)
    home.stream(xyz)
    home.send(Reading(home.clock.wall(), WRIST.id, {"action": "cancel"}))
    home.stream(still(10))
    home.idle(10)
    assert home.events == []


def test_cancel_after_the_window_changes_nothing() -> None:
    home = Home(FallSettings(cancel_window_s=30.0))
    fall_then_still(home, np.random.default_rng(5))
    home.stream(still(40))
    home.send(Reading(home.clock.wall(), WRIST.id, {"action": "cancel"}))
    assert home.of(EventAction.CANCEL) == []
    assert home.detector.counters["cancel_too_late"] == 1


def test_cancel_from_a_button_of_the_same_resident() -> None:
    home = Home()
    button = Device("sos-1", DeviceKind.BUTTON, "p1")
    other = Device("sos-2", DeviceKind.BUTTON, "p2")
    fall_then_still(home, np.random.default_rng(6))
    home.idle(2)
    home.send(Reading(home.clock.wall(), other.id, {"action": "cancel"}), other)
    assert home.of(EventAction.CANCEL) == []
    home.send(Reading(home.clock.wall(), button.id, {"action": "cancel"}), button)
    assert len(home.of(EventAction.CANCEL)) == 1


def test_long_lie_escalates_at_the_long_lie_time() -> None:
    settings = FallSettings(long_lie_s=60.0)
    home = Home(settings)
    impact_t = fall_then_still(home, np.random.default_rng(7))
    home.stream(still(70))
    escalations = home.of(EventAction.ESCALATE)
    assert len(escalations) == 1
    mono, event = escalations[0]
    assert event.details["reason"] == "long_lie"
    assert mono - (MONO + impact_t - EPOCH) == pytest.approx(60.0, abs=0.3)
    assert event.t == home.of(EventAction.RAISE)[0][1].t  # same alert


def test_long_lie_also_escalates_when_the_band_goes_silent() -> None:
    home = Home(FallSettings(long_lie_s=60.0))
    fall_then_still(home, np.random.default_rng(8), lying=3.0)
    home.idle(70)
    assert len(home.of(EventAction.RAISE)) == 1
    assert len(home.of(EventAction.ESCALATE)) == 1


def test_getting_up_prevents_the_long_lie_escalation() -> None:
    home = Home(FallSettings(long_lie_s=60.0))
    fall_then_still(home, np.random.default_rng(9))
    home.stream(walking(30))
    home.stream(still(40, orientation=(-1.0, 0.0, 0.0)))
    assert len(home.of(EventAction.RAISE)) == 1
    assert home.of(EventAction.ESCALATE) == []


def test_a_second_fall_after_getting_up_gets_its_own_alert_and_long_lie() -> None:
    home = Home()
    fall_then_still(home, np.random.default_rng(1))
    home.stream(walking(20))  # got up: no long lie for the first fall
    _t, xyz, _ = synth_fall(np.random.default_rng(2), after=2.0)
    home.stream(xyz)  # and fell again
    home.stream(still(150))
    raised = home.of(EventAction.RAISE)
    assert len(raised) == 2 and raised[1][1].t > raised[0][1].t + 20
    ((_, escalated),) = home.of(EventAction.ESCALATE)
    assert escalated.t == raised[1][1].t  # the second fall's long lie
    assert home.detector.counters["falls_while_open"] == 1


def stream_stamped_on_arrival(home: Home, xyz: np.ndarray, fs: float = 50.0) -> None:
    """As the BLE driver sends a band's notifications: 10 samples each, dated by the
    gateway's wall clock on arrival minus the batch's length (``fs`` mode, no sample times)."""
    for i in range(0, xyz.shape[0], 10):
        part = xyz[i : i + 10]
        home.idle(part.shape[0] / fs)
        t = home.clock.wall() - (part.shape[0] - 1) / fs
        home.send(Reading(t, WRIST.id, {"acc": part, "fs": fs}))


@pytest.mark.parametrize("step_s", [3600.0, -3600.0, -5.0])
def test_a_wall_clock_step_right_after_an_impact_does_not_lose_the_fall(step_s: float) -> None:
    """The Pi has no real-time clock: NTP steps its wall clock, here 1 s after the impact."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    first = int((impact_s + 1.0) * 50)
    stream_stamped_on_arrival(home, xyz[:first])
    before_step = home.clock.wall()
    home.clock.jump_wall(step_s)
    stream_stamped_on_arrival(home, np.concatenate([xyz[first:], still(20)]))
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert before_step - 2.0 < raised.t < before_step  # the impact, on the clock of its time
    assert home.detector.counters["wall_steps_followed"] == 1


@pytest.mark.parametrize("flush", [50, 2000], ids=["in-1-s-batches", "in-one-reading"])
def test_a_fall_whose_data_come_late_is_still_alerted(flush: int) -> None:
    """The link drops 1 s after the impact; 12 s later the band sends the rest with its own
    sample times (its buffer), faster than real time: a late alert, not none."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    first = int((impact_s + 1.0) * 50)
    t0 = home.stream(xyz[:first])
    home.idle(12.0)
    assert home.of(EventAction.RAISE) == []
    assert home.detector.counters["candidates_waiting_for_data"] == 1
    rest = np.concatenate([xyz[first:], still(30)])
    times = t0 + (first + np.arange(rest.shape[0])) / 50.0
    for i in range(0, rest.shape[0], flush):
        sl = slice(i, i + flush)
        home.send(Reading(float(times[sl][0]), WRIST.id, {"acc": rest[sl], "ts": times[sl]}))
        home.idle(0.2)
    ((mono, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(t0 + impact_s, abs=0.5)
    assert mono - (MONO + impact_s) < 15.0  # as soon as the data came (13 s + 7 s at 5x)
    assert home.detector.counters["candidates_incomplete"] == 0


def test_a_band_that_never_comes_back_after_an_impact_gives_up_after_a_minute() -> None:
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    home.stream(xyz[: int((impact_s + 1.0) * 50)])
    home.idle(120.0)
    assert home.events == []
    counters = home.detector.counters
    assert (counters["candidates_waiting_for_data"], counters["candidates_incomplete"]) == (1, 1)
    assert home.detector.next_deadline() is None


def stream_from_band(
    home: Home,
    xyz: np.ndarray,
    seq0: int | None = 7_000,
    stall_at: int | None = None,
    stall_batches: int = 0,
    out_of_range: tuple[int, float] | None = None,
    blocked: tuple[int, int] | None = None,
    lost: int | None = None,
    meanwhile: dict[int, Callable[[], None]] | None = None,
) -> None:
    """As the BLE driver hands a wristband's notifications over: 10 samples at 50 Hz each,
    with the band's sample counter (``seq``, unless None), dated by the gateway's wall clock
    on arrival minus the batch's length. From sample ``stall_at`` the host is blocked while
    ``stall_batches`` notifications come in, then handles them together; ``out_of_range``
    (sample, seconds): the link is lost there for that long while the band keeps sampling,
    then it sends its buffer at once; ``blocked`` (first, last sample): the driver stamps
    these notifications on arrival but the pipeline, waiting for a disk write, hands them to
    the detector only after the last of them; ``lost``: the notification holding this sample
    is lost in the air (the counter moves on); ``meanwhile``: what else happens when the band
    takes the sample (a key of the mapping, a multiple of 10)."""
    queued: list[dict[str, object]] = []
    waiting: list[tuple[float, dict[str, object]]] = []
    seq = seq0
    away_until: float | None = None
    for i in range(0, xyz.shape[0], 10):
        part = xyz[i : i + 10]
        home.idle(part.shape[0] / 50.0)
        if meanwhile and i in meanwhile:
            meanwhile[i]()
        values: dict[str, object] = {"acc": part, "fs": 50.0}
        if seq is not None:
            values["seq"] = seq
            seq += part.shape[0]
        if lost is not None and i <= lost < i + 10:
            continue
        queued.append(values)
        if out_of_range is not None and i == out_of_range[0]:
            away_until = home.clock.monotonic() + out_of_range[1]
        if away_until is not None:
            if home.clock.monotonic() < away_until:
                continue
            away_until = None
        if blocked is not None and blocked[0] <= i <= blocked[1]:
            waiting.extend((home.clock.wall() - 0.18, batch) for batch in queued)
            queued = []
            if i + 10 <= blocked[1]:
                continue
        for stamp, batch in waiting:
            home.send(Reading(stamp, WRIST.id, batch))
        waiting = []
        if stall_at is not None and stall_at <= i < stall_at + 10 * (stall_batches - 1):
            continue
        for batch in queued:
            home.send(Reading(home.clock.wall() - 0.18, WRIST.id, batch))
        queued = []


@pytest.mark.parametrize("stall_batches", [2, 3, 10])
def test_notifications_handed_over_together_at_an_impact_keep_the_fall(stall_batches: int) -> None:
    """The Pi's event loop stalls (an SD-card write) for 0.2-2 s right at the impact: the
    band's notifications wait and arrive together. Dated on arrival they overlapped and the
    impact was dropped as a repeat; the band's counter keeps each sample in its place."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    start = home.clock.wall()
    impact = int(impact_s * 50) // 10 * 10
    stream_from_band(
        home, np.concatenate([xyz, still(20)]), stall_at=impact - 10, stall_batches=stall_batches
    )
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + impact_s, abs=0.1)
    # every sample in its place: the grid covers the samples sent (the last may wait)
    assert xyz.shape[0] + 20 * 50 - grid_samples_written(home) in (0, 1)


@pytest.mark.parametrize("stall_batches", [4, 8, 12])
def test_a_stall_at_the_impact_after_a_notification_lost_in_the_air(stall_batches: int) -> None:
    """As above, and the notification before the stall was lost: the batch after the gap
    comes 0.8-2.4 s late. Taken for a live batch of a band whose count went wrong, it started a
    new count at its arrival and the batches handed over with it overlapped it and were
    dropped (the impact among them: no alert)."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    start = home.clock.wall()
    impact = int(impact_s * 50) // 10 * 10
    stream_from_band(
        home,
        np.concatenate([xyz, still(20)]),
        stall_at=impact - 10,
        stall_batches=stall_batches,
        lost=impact - 20,
    )
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + impact_s, abs=0.1)
    assert xyz.shape[0] + 20 * 50 - grid_samples_written(home) in (0, 1)  # lost: interpolated


def test_a_pipeline_behind_its_driver_is_not_a_wall_clock_step() -> None:
    """The driver stamps notifications on time, but the pipeline waits 1.5 s for a disk
    write and handles them late, just before an impact: that lag is no wall-clock step (taken
    for one, it re-dated the stream and cut the fall's context)."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    start = home.clock.wall()
    impact = int(impact_s * 50)
    stream_from_band(home, np.concatenate([xyz, still(20)]), blocked=(impact - 90, impact - 15))
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + impact_s, abs=0.1)
    assert home.detector.counters["wall_steps_taken"] == 0
    assert xyz.shape[0] + 20 * 50 - grid_samples_written(home) in (0, 1)


def grid_samples_written(home: Home, device: Device = WRIST) -> int:
    return int(home.detector.ring.written[home.detector._wrists[device.id].slot])


def test_a_band_that_buffers_through_a_link_lost_at_the_fall_still_alerts() -> None:
    """The link drops 1 s after the impact; 12 s later the band reconnects and sends what it
    sampled meanwhile (counter continuous). Dated on arrival, the buffer started a new stream
    and the fall was given up."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    start = home.clock.wall()
    lost_at = int((impact_s + 1.0) * 50) // 10 * 10
    stream_from_band(home, np.concatenate([xyz, still(30)]), out_of_range=(lost_at, 12.0))
    home.idle(10)
    ((mono, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + impact_s, abs=0.3)
    assert mono - (MONO + impact_s) < 16.0  # as soon as the buffer came
    counters = home.detector.counters
    assert counters["candidates_waiting_for_data"] == 1
    assert counters["segments_restarted"] == 0


@pytest.mark.parametrize("pressed", [5.0, -1.0, 45.0])  # seconds from the impact
def test_a_cancel_that_comes_before_the_data_of_its_fall(pressed: float) -> None:
    """The band's link drops just before an impact and comes back 12 s later with its
    buffer. Meanwhile the wearer presses cancel on their pendant, 5 s after the impact: the
    fall its data then shows is cancelled, not alerted (the press found nothing to cancel and
    the fall was raised). A press before the impact cancels nothing that comes after it, nor
    one later than the alert's cancel window would have been (9 s + 30 s after the impact)."""
    home = Home()
    pendant = Device("pendant-1", DeviceKind.BUTTON, "p1")
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    impact = int(impact_s * 50) // 10 * 10
    press_at = int((impact_s + pressed) * 50) // 10 * 10

    def press() -> None:
        home.send(Reading(home.clock.wall(), pendant.id, {"action": "cancel"}), pendant)

    stream_from_band(
        home,
        np.concatenate([xyz, still(60)]),
        out_of_range=(impact - 100, 2.0 + max(12.0, pressed + 2.0)),
        meanwhile={press_at: press},
    )
    home.idle(130)
    counters = home.detector.counters
    if 0 < pressed < 39:
        assert home.events == []  # no alert, so no long-lie escalation either
        assert counters["cancelled_before_its_data"] == 1
    else:
        assert len(home.of(EventAction.RAISE)) == 1
        assert counters["cancelled_before_its_data"] == 0


@pytest.mark.parametrize("phase", range(0, 200, 40))  # where the flush's scans fall
def test_a_flushed_fall_is_decided_on_its_whole_window(phase: int) -> None:
    """A buffer flushed at once is scanned as it is written; an impact found there long after
    it happened is not "stalled" while the rest of the flush is still to come, so it is
    decided on the full 8 s after it (it was sometimes decided on 2-4 s)."""
    home = Home(detector_model=SpyModel())
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    impact = int(impact_s * 50) // 10 * 10
    stream = np.concatenate([still(4), xyz, still(60)])
    stream_from_band(home, stream, out_of_range=(impact + 100 - phase, 12.0))
    home.idle(10)
    assert len(home.of(EventAction.RAISE)) == 1
    spy = home.detector.model
    assert isinstance(spy, SpyModel) and min(spy.post) >= round(fall.POST_S * fall.GRID_HZ)


def test_a_cancel_stamped_before_an_impact_cancels_nothing_when_the_pipeline_is_behind() -> None:
    """A pendant press 0.5 s before the impact, everything handled 1.5 s late (the pipeline
    waits for a disk write): the press is dated when it was stamped, so the fall after it is
    alerted (dated on its handling, it looked pressed after the impact and withdrew it)."""
    home = Home()
    pendant = Device("pendant-1", DeviceKind.BUTTON, "p1")
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    stream = np.concatenate([xyz, still(30)])
    mono0, wall0 = home.clock.monotonic(), home.clock.wall()
    arrivals: list[tuple[float, Reading, Device]] = []
    for i in range(0, stream.shape[0], 10):
        arrived = (i + 10) / 50.0
        batch = {"acc": stream[i : i + 10], "fs": 50.0, "seq": 7_000 + i}
        arrivals.append((arrived, Reading(wall0 + arrived - 0.18, WRIST.id, batch), WRIST))
    pressed = impact_s - 0.5
    arrivals.append((pressed, Reading(wall0 + pressed, pendant.id, {"action": "cancel"}), pendant))
    for arrived, reading, device in sorted(arrivals, key=lambda a: a[0]):
        home.run_until(mono0 + arrived + 1.5)
        home.send(reading, device)
    home.idle(10)
    assert len(home.of(EventAction.RAISE)) == 1
    assert home.detector.counters["cancelled_before_its_data"] == 0


def test_a_pendant_cancel_holds_when_the_band_later_resends_a_press() -> None:
    """Pendant pressed 5 s after the impact while the band is out of range; the band then
    re-sends a press of its own before its buffer: the pendant's press still cancels the fall
    (only the last press of the resident was kept, and the band's does not count)."""
    home = Home()
    pendant = Device("pendant-1", DeviceKind.BUTTON, "p1")
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    impact = int(impact_s * 50) // 10 * 10
    back = impact - 100 + 14 * 50

    def pendant_press() -> None:
        home.send(Reading(home.clock.wall(), pendant.id, {"action": "cancel"}), pendant)

    def band_press() -> None:
        home.send(Reading(home.clock.wall(), WRIST.id, {"action": "cancel"}))

    stream_from_band(
        home,
        np.concatenate([xyz, still(30)]),
        out_of_range=(impact - 100, 14.0),
        meanwhile={impact + 250: pendant_press, back: band_press},
    )
    home.idle(130)
    assert home.events == []
    assert home.detector.counters["cancelled_before_its_data"] == 1


@pytest.mark.parametrize("ahead_s", [0.8, 5.0, 1e6])
def test_a_press_stamped_ahead_of_the_gateway_clock_is_not_dated_after_a_live_fall(
    ahead_s: float,
) -> None:
    """A bridge stamps a pendant press on a clock ahead of the gateway's, 0.5 s before a live
    fall: dated on its stamp it would lie after the impact and cancel it; it is dated when it
    was handled at the latest, so the fall is alerted."""
    home = Home()
    pendant = Device("pendant-1", DeviceKind.BUTTON, "p1")
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    pressed_at = int((impact_s - 0.5) * 50) // 10 * 10

    def press() -> None:
        stamp = home.clock.wall() + ahead_s
        home.send(Reading(stamp, pendant.id, {"action": "cancel"}), pendant)

    stream_from_band(home, np.concatenate([xyz, still(30)]), meanwhile={pressed_at: press})
    home.idle(10)
    assert len(home.of(EventAction.RAISE)) == 1


def test_a_press_the_band_resends_on_reconnecting_does_not_cancel_its_buffered_fall() -> None:
    """The band's link drops 2 s before an impact; on reconnecting it sends a cancel press
    first (one it may have made before the impact: a press carries no time of its own), then
    its buffer. Only another device's press can be known to follow the impact."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    impact = int(impact_s * 50) // 10 * 10
    back = impact - 100 + 12 * 50

    def press() -> None:
        home.send(Reading(home.clock.wall(), WRIST.id, {"action": "cancel"}))

    stream_from_band(
        home,
        np.concatenate([xyz, still(30)]),
        out_of_range=(impact - 100, 12.0),
        meanwhile={back: press},
    )
    home.idle(10)
    assert len(home.of(EventAction.RAISE)) == 1


@pytest.mark.parametrize("away_s", [12.0, 40.0])
def test_a_band_away_through_its_fall_sends_its_buffer_and_is_alerted(away_s: float) -> None:
    """The link drops 2 s before an impact; the band comes back ``away_s`` later and sends
    everything it sampled at once. 40 s is more than the 16 s ring: written in one go, the
    impact was overwritten before the gate ever scanned it (no alert)."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(5), after=10.0)
    start = home.clock.wall()
    impact = int(impact_s * 50) // 10 * 10
    stream_from_band(home, np.concatenate([xyz, still(60)]), out_of_range=(impact - 100, away_s))
    home.idle(10)
    ((mono, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + impact_s, abs=0.1)
    assert mono - (MONO + impact_s) < away_s + 2.0  # as soon as the buffer came


@pytest.mark.parametrize("among_others", [True, False])
def test_grid_blocks_flushed_late_return_their_alert(among_others: bool) -> None:
    """Blocks a bridge sends 30 s late and at once (46 s of data, more than the 16 s ring),
    for a band among others (the one-by-one block path) or alone (the vectorised one):
    scanned while it is written, the fall is alerted once, dated at its impact, within the
    confirmation window of the data coming (without times of its own on the monotonic clock,
    the impact counts as just arrived). Written in one go, it was overwritten before the gate
    saw it."""
    home = Home()
    if among_others:
        home.stream(walking(1.0), device=Device("wrist-2", DeviceKind.WRISTBAND, "p2"))
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    stream = np.concatenate([walking(10), xyz, still(20)])
    start = home.clock.wall()
    home.idle(stream.shape[0] / 50.0 + 30.0)
    events = []
    for i in range(0, stream.shape[0], 50):
        block = stream[None, i : i + 50]
        events += home.detector.on_grid_block([WRIST], start + i / 50.0, block)
    flushed = home.clock.monotonic()
    home.idle(12.0)
    raised = [e for e in events if e.action is EventAction.RAISE]
    raised += [e for m, e in home.of(EventAction.RAISE)]
    assert [e.t for e in raised] == [pytest.approx(start + 10.0 + impact_s, abs=0.1)]
    assert all(m - flushed <= 9.0 for m, _ in home.of(EventAction.RAISE))


def test_one_reading_longer_than_the_ring_sent_late_is_scanned_as_it_is_written() -> None:
    """46 s of samples with their own times in one reading, 30 s late (a bridge's backlog):
    cut every few seconds and scanned, its fall is alerted at its impact (written in one
    piece, the impact was written over before the gate saw it)."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    stream = np.concatenate([walking(10), xyz, still(20)])
    start = home.clock.wall()
    home.idle(stream.shape[0] / 50.0 + 30.0)
    ts = start + np.arange(stream.shape[0]) / 50.0
    home.send(Reading(float(ts[0]), WRIST.id, {"acc": stream, "ts": ts}))
    home.idle(12.0)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + 10.0 + impact_s, abs=0.1)


def test_the_batch_just_had_sent_again_is_not_counted_twice() -> None:
    home = Home()
    batch = {"acc": walking(0.2), "fs": 50.0, "seq": 100}
    home.send(Reading(home.clock.wall(), WRIST.id, batch))
    home.send(Reading(home.clock.wall() + 0.02, WRIST.id, dict(batch)))
    counters = home.detector.counters
    assert (counters["samples"], counters["band_duplicate_batches"]) == (10, 1)


def walk_and_fall_until(at: float) -> tuple[Home, np.ndarray, float, int]:
    """A counted band streams 10 s of walking, a fall and 20 s lying still, up to ``at``
    seconds from the impact. Returns the home, the whole stream, the impact's wall time and
    the first sample not sent yet."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    stream = np.concatenate([walking(10), xyz, still(20)])
    sent = int((10.0 + impact_s + at) * 50) // 10 * 10
    impact_t = home.clock.wall() + 10.0 + impact_s
    stream_from_band(home, stream[:sent])
    return home, stream, impact_t, sent


@pytest.mark.parametrize("step", [3600.0, -3600.0, -1.5])
@pytest.mark.parametrize("at", [-8.0, -1.0, -0.2, 0.3, 1.0])  # seconds from the impact
def test_a_wall_clock_step_around_an_impact_under_a_counted_stream(step: float, at: float) -> None:
    """NTP steps the wall clock (the Pi has no real-time clock) while a counted stream goes
    on, from 8 s before the impact to 1 s after it: the band's history is re-dated by the
    step, so the stream is not cut, the fall keeps its context and it is dated on the new
    clock (a restart at the step lost falls whose impact came right after it)."""
    home, stream, impact_t, step_at = walk_and_fall_until(at)
    home.clock.jump_wall(step)
    stream_from_band(home, stream[step_at:], seq0=7_000 + step_at)
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(impact_t + step, abs=0.1)
    counters = home.detector.counters
    assert (counters["wall_steps_taken"], counters["segments_restarted"]) == (1, 0)
    assert stream.shape[0] - grid_samples_written(home) in (0, 1)


@pytest.mark.parametrize("step", [3600.0, 2.0, 0.6])
@pytest.mark.parametrize("at", [-1.0, 1.5])  # seconds from the impact
def test_a_batch_stamped_before_a_wall_clock_step_and_handled_after_it(
    step: float, at: float
) -> None:
    """The driver stamps a notification, NTP steps the clock, then the pipeline takes the
    batch from its queue: its stamp is on the old clock. Read against the new one it looked
    ``step`` seconds old, and the batch was pulled back that far (a fall right after lost,
    later ones dated a minute early)."""
    home, stream, impact_t, step_at = walk_and_fall_until(at)
    home.idle(0.2)
    batch = {"acc": stream[step_at : step_at + 10], "fs": 50.0, "seq": 7_000 + step_at}
    stamp = home.clock.wall() - 0.18
    home.clock.jump_wall(step)
    home.send(Reading(stamp, WRIST.id, batch))
    stream_from_band(home, stream[step_at + 10 :], seq0=7_000 + step_at + 10)
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    taken = step if step > 1.0 else 0.0  # steps up to WALL_STEP_S are not taken in
    assert raised.t == pytest.approx(impact_t + taken, abs=0.1)
    assert stream.shape[0] - grid_samples_written(home) in (0, 1)


@pytest.mark.parametrize("second_step", [-1.5, -3600.0])
@pytest.mark.parametrize("at", [-3.0, 0.5])  # seconds from the impact
def test_two_wall_clock_steps_while_the_pipeline_is_behind(second_step: float, at: float) -> None:
    """NTP steps the clock by an hour and 0.1 s later once more, around an impact,
    while the pipeline is 1.5 s behind its driver: the queue holds batches stamped on three
    clocks. Each is read against the one it was stamped on (a band keeping only its own and
    the last offset read some an hour off and pulled them back a minute)."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    stream = np.concatenate([walking(10), xyz, still(20)])
    impact_at = 10.0 + impact_s
    steps = [(impact_at + at, 3600.0), (impact_at + at + 0.1, second_step)]
    mono0, wall0 = home.clock.monotonic(), home.clock.wall()
    to_come = list(steps)
    for i in range(0, stream.shape[0], 10):
        arrived = (i + 10) / 50.0  # seconds from the start
        while to_come and to_come[0][0] <= arrived + 1.5:
            step_at, step = to_come.pop(0)
            home.run_until(mono0 + step_at)
            home.clock.jump_wall(step)
        home.run_until(mono0 + arrived + 1.5)
        stamp = wall0 + arrived + sum(step for when, step in steps if when <= arrived) - 0.18
        batch = {"acc": stream[i : i + 10], "fs": 50.0, "seq": 7_000 + i}
        home.send(Reading(stamp, WRIST.id, batch))
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(wall0 + impact_at + 3600.0 + second_step, abs=0.3)


def test_a_wall_clock_step_while_a_band_is_silent_after_an_impact() -> None:
    """The band goes silent 3 s after an impact (decided on what came) and NTP steps the
    clock before the alert is due: the alert is dated on the new clock, like the band's other
    times, not an hour off."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(6), after=10.0)
    start = home.clock.wall()
    stream_from_band(home, xyz[: int((impact_s + 3.0) * 50) // 10 * 10])
    home.idle(2.0)
    home.clock.jump_wall(3600.0)
    home.idle(10)
    ((_, raised),) = home.of(EventAction.RAISE)
    assert raised.t == pytest.approx(start + impact_s + 3600.0, abs=0.1)


@pytest.mark.parametrize("seq", ["7000", -1, True, 2**40, 1.5])
def test_a_bad_sample_counter_is_counted_and_the_samples_still_used(seq: object) -> None:
    home = Home()
    _t, xyz, _ = synth_fall(np.random.default_rng(6), after=10.0)
    for i in range(0, xyz.shape[0], 10):
        home.idle(0.2)
        values = {"acc": xyz[i : i + 10], "fs": 50.0, "seq": seq}
        home.send(Reading(home.clock.wall() - 0.18, WRIST.id, values))
    home.idle(10)
    assert len(home.of(EventAction.RAISE)) == 1
    assert home.detector.counters["bad_reading:seq"] == xyz.shape[0] // 10


def test_skin_contact_lost_for_a_moment_during_a_fall_does_not_erase_it() -> None:
    home = Home()
    _t, xyz, _ = synth_fall(np.random.default_rng(3), after=3.0)
    home.stream(xyz)
    home.send(Reading(home.clock.wall(), WRIST.id, {"hr": 0}))
    home.send(Reading(home.clock.wall(), WRIST.id, {"hr": 72}))
    home.stream(still(20))
    assert len(home.of(EventAction.RAISE)) == 1


def stream_with_contact(home: Home, xyz: np.ndarray, contact: dict[int, int]) -> None:
    """Stream ``xyz`` (50 Hz) live in 10-sample batches with per-sample times; after the batch
    starting at sample ``i`` in ``contact`` the band reports that heart rate (0: no skin
    contact, not worn); then idle 10 s."""
    t = EPOCH + np.arange(xyz.shape[0]) / 50.0
    for i in range(0, xyz.shape[0], 10):
        home.run_until(MONO + (min(i + 10, xyz.shape[0]) - 1) / 50.0)
        home.send(Reading(float(t[i]), WRIST.id, {"acc": xyz[i : i + 10], "ts": t[i : i + 10]}))
        if i in contact:
            home.send(Reading(home.clock.wall(), WRIST.id, {"hr": contact[i]}))
    home.idle(10)


@pytest.mark.parametrize(("lost_s", "back_s"), [(-0.5, 1.5), (-0.1, 0.3), (0.0, 6.0)])
def test_skin_contact_lost_across_the_impact_does_not_erase_the_fall(
    lost_s: float, back_s: float
) -> None:
    """Contact lost from ``lost_s`` to ``back_s`` around the impact (the hit lifts the
    sensor): no candidate opened while the band read as not worn, and the fall was lost."""
    home = Home()
    _t, xyz, impact_s = synth_fall(np.random.default_rng(3), after=10.0)
    xyz = np.concatenate([xyz, still(20)])
    contact = {
        int((impact_s + lost_s) * 50) // 10 * 10: 0,
        int((impact_s + back_s) * 50) // 10 * 10: 72,
    }
    stream_with_contact(home, xyz, contact)
    assert len(home.of(EventAction.RAISE)) == 1


def test_a_band_taken_off_just_after_an_impact_raises_nothing() -> None:
    """Not-worn reported after the impact (the heart rate comes every few seconds): still no
    alert, since the band is off the wrist when the fall would be decided."""
    home = Home()
    _t, xyz, _ = synth_fall(np.random.default_rng(3), after=3.0)
    home.stream(xyz)
    home.send(Reading(home.clock.wall(), WRIST.id, {"hr": 0}))
    home.stream(still(20))
    assert home.of(EventAction.RAISE) == []


@pytest.mark.parametrize(
    "flag", [{"worn": False}, {"hr": 0}], ids=["worn-flag", "no-heart-rate-contact"]
)
def test_not_worn_band_raises_nothing_and_shows_as_not_worn(flag) -> None:
    home = Home()
    home.send(Reading(EPOCH, WRIST.id, flag))
    fall_then_still(home, np.random.default_rng(10))
    home.stream(still(130))
    assert home.events == []
    assert home.detector.is_worn(WRIST.id) is False
    assert home.detector.diagnostics()["not_worn"] == [WRIST.id]
    home.send(Reading(home.clock.wall(), WRIST.id, {"worn": True}))
    fall_then_still(home, np.random.default_rng(11))
    home.idle(5)
    assert len(home.of(EventAction.RAISE)) == 1


def test_band_declared_not_worn_in_its_profile() -> None:
    home = Home()
    spare = Device("spare", DeviceKind.WRISTBAND, "p1", options={"worn": False})
    _t, xyz, _ = synth_fall(np.random.default_rng(12))
    home.stream(xyz, device=spare)
    home.idle(10)
    assert home.events == []


def test_only_the_falling_wearer_alerts_among_many() -> None:
    home = Home()
    rng = np.random.default_rng(13)
    bands = [Device(f"w{i}", DeviceKind.WRISTBAND, f"p{i}") for i in range(3)]
    t, fall_xyz, _ = synth_fall(rng)
    others = [walking(len(t) / 50), synth_clapping(rng, seconds=len(t) / 50)[1]]
    # interleave the three streams batch by batch
    for i in range(0, len(t), 10):
        home.run_until(MONO + t[min(i + 9, len(t) - 1)])
        for band, xyz in zip(bands, [fall_xyz, *others], strict=True):
            sl = slice(i, i + 10)
            ts = (EPOCH + t[sl]).tolist()
            home.send(Reading(ts[0], band.id, {"acc": xyz[sl], "ts": ts}), band)
    home.idle(10)
    raised = home.of(EventAction.RAISE)
    assert [e.device for _, e in raised] == ["w0"] and raised[0][1].resident == "p0"


# --- streams as wristbands really send them -------------------------------------------------


@pytest.mark.parametrize("fs", [20.0, 25.0, 100.0, 238.0])
@pytest.mark.parametrize("mode", ["ts", "offsets", "fs"])
def test_any_rate_and_time_convention(fs: float, mode: str) -> None:
    home = Home()
    _t, xyz, _ = synth_fall(np.random.default_rng(14), fs=fs)
    home.stream(xyz, fs=fs, mode=mode, chunk=max(4, int(fs / 5)))
    home.idle(8)
    assert len(home.of(EventAction.RAISE)) == 1


def test_irregular_bursty_timestamps() -> None:
    """WEDA-FALL style: bursts of 4 samples a few ms apart every ~80 ms, with jitter and the
    odd duplicated or reordered time."""
    rng = np.random.default_rng(15)
    t, xyz, _impact_rel = synth_fall(rng)
    burst_starts = np.repeat(t[::4], 4)[: t.size]
    times = burst_starts + np.tile([0.0, 0.002, 0.004, 0.006], t.size // 4 + 1)[: t.size]
    times += rng.normal(0, 0.002, t.size)
    times[50] = times[49]  # duplicate
    times[120], times[121] = times[121], times[120]  # reordered
    home = Home()
    home.stream(xyz, t_rel=times, chunk=4)
    home.idle(8)
    assert len(home.of(EventAction.RAISE)) == 1


@pytest.mark.parametrize("clip", [4.0, 8.0])
def test_clipped_sensor(clip: float) -> None:
    home = Home()
    _t, xyz, _ = synth_fall(np.random.default_rng(16))
    home.stream(np.clip(xyz * 1.5, -clip, clip))
    home.idle(8)
    assert len(home.of(EventAction.RAISE)) == 1


def test_short_gaps_are_bridged_long_gaps_start_a_new_segment() -> None:
    home = Home()
    home.stream(walking(5))
    home.cursor[WRIST.id] += 0.5  # 0.5 s lost: interpolated across
    home.stream(walking(5))
    assert home.detector.counters["segments_restarted"] == 0
    home.cursor[WRIST.id] += 300.0  # out of range for five minutes
    home.idle(300)
    fall_then_still(home, np.random.default_rng(17))
    home.idle(8)
    assert home.detector.counters["segments_restarted"] == 1
    assert len(home.of(EventAction.RAISE)) == 1


def test_reconnect_with_the_device_clock_reset() -> None:
    """The band reboots mid-stream: its sample times jump back by hours."""
    home = Home()
    home.stream(walking(10))
    home.cursor[WRIST.id] -= 3 * 3600
    # the monotonic clock keeps going; the stand-in maps device time to it with an offset
    rng = np.random.default_rng(18)
    t, xyz, impact_rel = synth_fall(rng)
    start = home.cursor[WRIST.id]
    for i in range(0, len(t), 10):
        sl = slice(i, i + 10)
        home.run_until(home.clock.monotonic() + 0.2)
        ts = (start + t[sl]).tolist()
        home.send(Reading(ts[0], WRIST.id, {"acc": xyz[sl], "ts": ts}))
    home.idle(8)
    raised = home.of(EventAction.RAISE)
    assert home.detector.counters["segments_restarted"] == 1
    assert len(raised) == 1
    assert raised[0][1].t == pytest.approx(start + impact_rel, abs=0.1)


def test_stream_stopping_soon_after_the_impact_still_decides() -> None:
    home = Home()
    _t, xyz, _impact_rel = synth_fall(np.random.default_rng(19), after=fall.MIN_POST_S + 0.5)
    home.stream(xyz)
    home.idle(10)  # nothing more arrives: the detector's deadlines drive the decision
    assert len(home.of(EventAction.RAISE)) == 1


def test_bad_readings_are_counted_and_skipped() -> None:
    home = Home()
    bad = [
        {"acc": [[1, 2]], "fs": 50},
        {"acc": "not numbers", "fs": 50},
        {"acc": [[0, 0, 1]] * 5},  # no rate, no times
        {"acc": [[0, 0, 1]] * 5, "ts": [1, 2]},  # times do not match samples
        {"acc": [[np.nan, 0, 1]] * 5, "fs": 50},
        {"acc": [], "fs": 50},
        {"acc": [[0, 0, 1]] * 5, "fs": True},
        # two samples eleven days apart: resampled, gigabytes (bad_reading:ts_span)
        {"acc": [[0, 0, 1], [0, 0, 1]], "ts": [EPOCH, EPOCH + 1e6]},
    ]
    for values in bad:
        home.send(Reading(EPOCH, WRIST.id, values))
    counters = home.detector.counters
    assert sum(v for k, v in counters.items() if k.startswith("bad_reading:")) == len(bad)
    assert counters["readings"] == 0 and counters["bad_reading:ts_span"] == 1
    fall_then_still(home, np.random.default_rng(20))  # still works afterwards
    home.idle(8)
    assert len(home.of(EventAction.RAISE)) == 1


def test_decision_data_follows_the_confirmation_window() -> None:
    # the model decides stall_grace_s before the alert is due, on at most POST_S of data
    assert FallSettings().decision_s == pytest.approx(fall.POST_S)
    assert FallSettings(confirmation_s=5.0).decision_s == pytest.approx(4.0)
    assert FallSettings(confirmation_s=10.0).decision_s == pytest.approx(fall.POST_S)
    assert FallSettings().confirmation_s <= 10.0


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FallSettings(confirmation_s=12.0)
    with pytest.raises(ValueError):
        FallSettings(confirmation_s=1.0)
    with pytest.raises(ValueError):
        FallSettings(long_lie_s=3.0)
    with pytest.raises(ValueError, match="stall_grace_s"):
        FallSettings(confirmation_s=5.0, stall_grace_s=4.0)  # would decide after the alert
    with pytest.raises(ValueError, match="stall_grace_s"):
        FallSettings(stall_grace_s=-1.0)
    assert FallSettings(confirmation_s=5.0, stall_grace_s=3.0).decision_s == 2.0


# --- real recordings ------------------------------------------------------------------------


def _fixture_rows() -> list[dict[str, str]]:
    with (FIXTURES / "MANIFEST.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("row", _fixture_rows(), ids=lambda r: r["file"])
def test_live_shell_sees_the_same_candidates_as_the_offline_rule(row) -> None:
    t, xyz = read_recording(FIXTURES / row["file"])
    offline = fall.recording_candidates(fall.resample_recording(t - t[0], xyz))
    home = Home()
    home.stream(xyz, t_rel=t - t[0], chunk=7)
    home.idle(10)
    counters = home.detector.counters
    assert counters["candidates_scored"] == len(offline)
    raised = home.of(EventAction.RAISE)
    assert len(raised) == (1 if row["label"] == "fall" else 0)


@pytest.mark.parametrize(("fs", "expected"), [(25.0, 1), (50.0, 0)])
def test_a_slow_band_opens_candidates_below_two_g(fs: float, expected: int) -> None:
    """A 20-30 Hz sensor reads a short impact off its peak: its gate is lower."""
    n = int(20 * fs)
    xyz = np.tile([0.0, 0.0, 1.0], (n, 1))
    xyz[int(10 * fs)] = [0.0, 1.8, 0.3]
    home = Home()
    home.stream(xyz, fs=fs)
    home.idle(10)
    assert home.detector.counters["candidates"] == expected
    assert home.detector.ring.gate_g[0] == np.float32(fall.gate_level(fs))  # the ring is float32


def test_grid_block_path_matches_per_reading_path() -> None:
    rng = np.random.default_rng(21)
    t, fall_xyz, _ = synth_fall(rng)
    streams = np.stack([fall_xyz, walking(len(t) / 50)])
    bands = [Device("a", DeviceKind.WRISTBAND, "p1"), Device("b", DeviceKind.WRISTBAND, "p2")]
    per_reading, block = Home(), Home()
    for home in (per_reading, block):
        for i in range(0, len(t), 10):
            home.run_until(MONO + t[min(i + 9, len(t) - 1)])
            if home is block:
                home._collect(
                    home.detector.on_grid_block(bands, EPOCH + t[i], streams[:, i : i + 10])
                )
            else:
                for band, xyz in zip(bands, streams, strict=True):
                    ts = (EPOCH + t[i : i + 10]).tolist()
                    home.send(Reading(ts[0], band.id, {"acc": xyz[i : i + 10], "ts": ts}), band)
        home.idle(8)
    assert [(e.device, e.action, round(e.t, 3)) for _, e in per_reading.events] == [
        (e.device, e.action, round(e.t, 3)) for _, e in block.events
    ]
    assert len(block.of(EventAction.RAISE)) == 1


def test_a_non_finite_sample_in_a_grid_block_does_not_hide_the_fall() -> None:
    """A NaN next to the impact's peak must not stop the peak counting as an impact: such a
    block goes through the per-band path, which drops non-finite samples."""
    rng = np.random.default_rng(23)
    t, fall_xyz, impact_rel = synth_fall(rng)
    peak = round(impact_rel * 50)
    fall_xyz[peak + 1] = np.nan
    streams = np.stack([fall_xyz, walking(len(t) / 50)])
    bands = [Device("a", DeviceKind.WRISTBAND, "p1"), Device("b", DeviceKind.WRISTBAND, "p2")]
    home = Home()
    for i in range(0, len(t), 10):
        home.run_until(MONO + t[min(i + 9, len(t) - 1)])
        home._collect(home.detector.on_grid_block(bands, EPOCH + t[i], streams[:, i : i + 10]))
    home.idle(8)
    assert home.detector.counters["bad_reading:non_finite_block"] == 1
    (raised,) = home.of(EventAction.RAISE)
    assert raised[1].device == "a"


@pytest.mark.parametrize("gets_up", [False, True])
def test_grid_block_path_counts_movement_while_a_fall_is_open(gets_up: bool) -> None:
    """Blocks for many wristbands stay on the vectorised path while one band's fall is open;
    the movement that means the wearer got up is still counted (no long-lie escalation)."""
    rng = np.random.default_rng(22)
    _t, fall_xyz, _ = synth_fall(rng, after=20.0)
    total = fall_xyz.shape[0] + 130 * 50
    later = walking(130) if gets_up else np.tile(fall_xyz[-1], (130 * 50, 1))
    streams = np.stack([np.concatenate([fall_xyz, later]), walking(total / 50)])
    bands = [Device("a", DeviceKind.WRISTBAND, "p1"), Device("b", DeviceKind.WRISTBAND, "p2")]
    home = Home()
    for i in range(0, total, 10):
        home.run_until(MONO + (i + 9) / 50)
        home._collect(home.detector.on_grid_block(bands, EPOCH + i / 50, streams[:, i : i + 10]))
    home.idle(5)
    assert len(home.of(EventAction.RAISE)) == 1
    assert len(home.of(EventAction.ESCALATE)) == (0 if gets_up else 1)
    assert home.detector.counters["long_lie_not_escalated"] == (1 if gets_up else 0)
    assert home.detector.counters["readings"] == 0  # never fell back to per-band ingestion


def test_candidates_ready_within_the_hold_are_decided_in_one_call() -> None:
    """Four wristbands fall 0.1 s apart: their candidates are complete in different ticks and
    decided together, and every alert is still raised confirmation_s after its impact."""
    rng = np.random.default_rng(23)
    _t, fall_xyz, _ = synth_fall(rng, after=12.0)
    shift = 5  # samples between the bands' impacts
    n = fall_xyz.shape[0]
    streams = np.stack([np.roll(fall_xyz, k * shift, axis=0) for k in range(4)])
    streams[:, : 4 * shift] = fall_xyz[0]
    bands = [Device(f"w{k}", DeviceKind.WRISTBAND, f"p{k}") for k in range(4)]
    home = Home()
    model = SpyModel()
    home.detector.model = model
    for i in range(0, n, 10):
        home.run_until(MONO + (i + 9) / 50)
        home._collect(home.detector.on_grid_block(bands, EPOCH + i / 50, streams[:, i : i + 10]))
    home.idle(3)
    assert sorted(model.calls) == [4]
    raised = home.of(EventAction.RAISE)
    assert len(raised) == 4
    confirmation = home.settings.confirmation_s
    for mono, event in raised:
        assert mono - (MONO + event.t - EPOCH) == pytest.approx(confirmation, abs=0.2)


def test_data_completing_late_does_not_delay_the_alert() -> None:
    """The samples that complete the post-impact window arrive 0.9 s late (a BLE backlog): the
    candidate is decided at once at its alert time instead of waiting for company."""
    rng = np.random.default_rng(24)
    _t, xyz, impact_rel = synth_fall(rng, after=12.0)
    home = Home()
    complete = round((impact_rel + FallSettings().decision_s) * 50)
    home.stream(xyz[: complete - 10], chunk=10)
    home.run_until(MONO + (complete + 45) / 50)  # nothing arrives for 0.9 s
    home.stream(xyz[complete - 10 :], chunk=10)
    home.idle(3)
    [(mono, event)] = home.of(EventAction.RAISE)
    latency = mono - (MONO + event.t - EPOCH)
    assert latency == pytest.approx(home.settings.confirmation_s, abs=0.05)


@pytest.mark.parametrize("path", ["readings", "blocks"])
def test_a_fall_flushed_faster_than_real_time_is_decided_before_the_ring_overwrites_it(
    path: str,
) -> None:
    """The band lost its link before the fall and flushes its buffer on reconnect at 20x real
    time (continuous device times, no gap): the held candidate is decided before the flush
    overwrites its window in the ring, not dropped as incomplete after the decision hold."""
    rng = np.random.default_rng(25)
    _t, xyz, _ = synth_fall(rng, after=10.0)
    data = np.concatenate([walking(10), xyz, still(20)])
    n, live = data.shape[0], 10 * 50
    streams = np.stack([data, walking(n / 50)])
    bands = [WRIST, Device("wrist-2", DeviceKind.WRISTBAND, "p2")]
    home = Home()
    stamps = EPOCH + np.arange(n) / 50

    def send(i: int, k: int) -> None:
        if path == "readings":
            values = {"acc": data[i : i + k].tolist(), "ts": stamps[i : i + k].tolist()}
            home.send(Reading(float(stamps[i]), WRIST.id, values))
        else:
            block = streams[:, i : i + k]
            home._collect(home.detector.on_grid_block(bands, float(stamps[i]), block))

    for i in range(0, live, 10):
        home.run_until(MONO + (i + 9) / 50)
        send(i, 10)
    home.idle(40.0)  # the link is down; the band keeps buffering
    for i in range(live, n, 50):  # 1 s of samples every 0.05 s
        home.idle(0.05)
        send(i, 50)
    home.idle(130)
    counters = home.detector.counters
    assert counters["candidates_incomplete"] == 0
    assert len(home.of(EventAction.RAISE)) == 1
    assert len(home.of(EventAction.ESCALATE)) == 1
