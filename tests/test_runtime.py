"""The runtime on the injected clock: a failing driver is restarted with backoff and never takes
the gateway down; a failing detector does not blind the others."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from alerts.manager import AlertManager
from alerts.outbox import Outbox
from alerts.state import HELD_KEY, held_of
from gateway.backoff import Backoff
from gateway.clock import AcceleratedClock, Clock, SimClock
from gateway.detection.base import Home
from gateway.detection.sos import SosDetector
from gateway.errors import UplinkError
from gateway.model import Device, DeviceKind, Event, Reading, Resident, Room, Severity
from gateway.pipeline import Pipeline
from gateway.runtime import Runtime
from simulators.transport import InProcessDevices
from tests.support.harness import (
    advance_gateway,
    gateway_config,
    running,
    settings_for,
    wait_until,
)
from tests.support.storage import scribble_over_a_page


class FlakyDriver:
    name = "flaky"

    def __init__(self, clock: SimClock, failures: int) -> None:
        self.clock = clock
        self.failures = failures
        self.runs = 0

    async def run(self, sink):  # type: ignore[no-untyped-def]
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError(f"adapter wedged (run {self.runs})")
        await sink(Reading(self.clock.wall(), "sos-r1", {"action": "sos"}))
        await asyncio.Event().wait()  # stays connected

    def diagnostics(self) -> dict:
        return {"runs": self.runs}

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}


def flaky_runtime(
    tmp_path: Path, failures: int, max_backoff_s: float
) -> tuple[SimClock, FlakyDriver, Runtime]:
    """A gateway whose only driver fails ``failures`` times, then stays connected."""
    clock = SimClock()
    driver = FlakyDriver(clock, failures)
    runtime = Runtime(
        settings_for(gateway_config(tmp_path, None, None)),
        clock,
        None,
        [driver],
        backoff_factory=lambda: Backoff(initial_s=10.0, maximum_s=max_backoff_s),
    )
    return clock, driver, runtime


async def test_failing_driver_is_restarted_with_backoff(tmp_path: Path) -> None:
    clock, driver, runtime = flaky_runtime(tmp_path, failures=2, max_backoff_s=100.0)
    task = asyncio.create_task(runtime.run())
    try:
        async with asyncio.timeout(10):
            while driver.runs < 1:
                await asyncio.sleep(0)
            for _ in range(20):
                await asyncio.sleep(0)
            assert driver.runs == 1  # waiting out its backoff on the clock, not spinning
            assert not runtime.driver_running("flaky")
            while runtime.manager.counters["raised"] == 0:
                clock.advance(5.0)
                await asyncio.sleep(0)
        assert runtime.driver_failures == {"flaky": 2}
        assert driver.runs == 3 and not task.done()
        assert runtime.driver_running("flaky")  # its third run stays connected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()


async def test_a_driver_that_keeps_failing_is_a_gateway_problem_until_it_runs_again(
    tmp_path: Path,
) -> None:
    """A crash-looping driver with nothing to say for itself: gateway_degraded (cause
    "driver") once it has failed for the grace, cleared once it runs again."""
    _, driver, runtime = flaky_runtime(tmp_path, failures=8, max_backoff_s=60.0)

    def degraded() -> list[str]:
        return [
            a.details["cause"]
            for a in runtime.manager.active.values()
            if a.type == "gateway_degraded"
        ]

    async with running(runtime):
        while not degraded():
            assert driver.runs <= 8, "no gateway_degraded while the driver kept failing"
            await advance_gateway(runtime, 5.0)
        assert degraded() == ["driver"] * 3  # one per resident
        assert "adapter wedged" in next(
            a.details["reason"]
            for a in runtime.manager.active.values()
            if a.type == "gateway_degraded"
        )
        while degraded():
            await advance_gateway(runtime, 5.0)
        assert driver.runs == 9  # cleared only once it ran (its 9th run stays connected)


class BrokenDetector:
    name = "broken"

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        raise ZeroDivisionError("bug")

    def on_tick(self) -> list[Event]:
        raise ZeroDivisionError("bug")

    def next_deadline(self) -> float | None:
        return None


def test_a_failing_detector_does_not_blind_the_others() -> None:
    clock = SimClock()
    home = Home([Resident("r1")], [Device("b", DeviceKind.BUTTON, "r1", Room.LOUNGE)])
    pipeline = Pipeline(
        home, [BrokenDetector(), SosDetector(clock)], AlertManager("g", clock), clock
    )
    changes = pipeline.feed(Reading(clock.wall(), "b", {"action": "sos"}))
    assert [c.alert.type for c in changes] == ["sos"]
    pipeline.tick()
    assert pipeline.counters["detector_errors"] == 2
    assert pipeline.feed(Reading(clock.wall(), "ghost", {"action": "sos"})) == []
    assert pipeline.counters["unknown_device"] == 1


class DetectorQuotingItsReading(BrokenDetector):
    name = "quoting"

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        raise ValueError(f"heart rate {reading.values['hr']} out of range")


def test_a_detector_failing_on_a_reading_is_logged_without_its_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A traceback ends with the exception's message, which may quote the reading (a heart
    rate): no health values in logs. The site is enough to find the bug."""
    clock = SimClock()
    home = Home([Resident("r1")], [Device("bed", DeviceKind.BED, "r1", Room.BEDROOM)])
    pipeline = Pipeline(home, [DetectorQuotingItsReading()], AlertManager("g", clock), clock)
    with caplog.at_level("DEBUG"):
        pipeline.feed(Reading(clock.wall(), "bed", {"occupied": True, "hr": 187}))
    assert pipeline.counters["detector_errors"] == 1
    assert "187" not in caplog.text
    assert "ValueError at" in caplog.text and "test_runtime.py" in caplog.text


def test_the_periodic_tick_does_not_recede_while_waiting() -> None:
    clock = SimClock()
    home = Home([Resident("r1")], [])
    pipeline = Pipeline(home, [SosDetector(clock)], AlertManager("g", clock), clock)
    first = pipeline.next_deadline()
    clock.advance(59.0)
    assert pipeline.next_deadline() == first  # asking again after waiting changes nothing
    clock.advance(2.0)
    assert pipeline.next_deadline() <= clock.monotonic()  # due now
    pipeline.tick()
    assert pipeline.next_deadline() == clock.monotonic() + 60.0


T_START = 1_750_000_000.0


def one_press_runtime(tmp_path: Path, clock: Clock) -> tuple[Runtime, Reading]:
    """A gateway whose only device input is one SOS press at the clock's start."""
    press = Reading(clock.wall(), "sos-r1", {"action": "sos"})
    runtime = Runtime(
        settings_for(gateway_config(tmp_path, None, None)),
        clock,
        None,
        [InProcessDevices([press], clock)],
    )
    return runtime, press


async def test_silence_detected_on_periodic_ticks_in_the_live_loop(tmp_path: Path) -> None:
    """Detectors that need no deadline of their own (device health) still get their ticks:
    a button silent for 25 h is reported offline by the running gateway."""
    clock = SimClock()
    runtime, press = one_press_runtime(tmp_path, clock)

    def offline_raised() -> bool:
        return any(a.type == "device_offline" for a in runtime.manager.active.values())

    async with running(runtime):
        await wait_until(lambda: runtime.manager.counters["raised"] > 0)
        for _ in range(int(26 * 3600 / 60)):
            clock.advance(60.0)
            for _ in range(3):
                await asyncio.sleep(0)
            if offline_raised():
                break
        # The loop may not have run its last tick yet when the clock stops advancing.
        await wait_until(offline_raised)
        offline = [a for a in runtime.manager.active.values() if a.type == "device_offline"]
        assert {a.device for a in offline} >= {"sos-r1"}
        assert min(a.t for a in offline) - press.t >= 25 * 3600


async def test_alerts_open_at_a_restart_still_clear_when_their_cause_ends(tmp_path: Path) -> None:
    """Buttons silent for a day raise device_offline; the gateway restarts (a new monotonic
    origin); the button pressed afterwards resolves its own alert, the silent ones stay open
    and are not raised a second time."""
    clock = SimClock()
    first = Runtime(settings_for(gateway_config(tmp_path, None, None)), clock, None, [])
    async with running(first):
        await advance_gateway(first, 25 * 3600.0 + 60.0)
        async with asyncio.timeout(10):  # committed: the open alerts saved, then queued
            while (await first.outbox.depth()).get("alert", 0) < 3:
                await asyncio.sleep(0.01)
    offline = {a.device: a.id for a in first.manager.active.values() if a.type == "device_offline"}
    assert set(offline) == {"sos-r1", "sos-r2", "sos-r3"}

    after_reboot = SimClock(start_wall=clock.wall() + 120.0, start_mono=3.0)
    second, _press = one_press_runtime(tmp_path, after_reboot)
    assert second.pipeline.counters["alerts_resumed"] == 3
    async with running(second):
        await wait_until(lambda: offline["sos-r1"] not in second.manager.active)
        await advance_gateway(second, 25 * 3600.0 + 60.0)
    now = {a.device: a for a in second.manager.active.values() if a.type == "device_offline"}
    for device in ("sos-r2", "sos-r3"):  # taken back, not raised a second time
        assert (now[device].id, now[device].count) == (offline[device], 1)
    assert now["sos-r1"].id != offline["sos-r1"]  # silent for a day since its press: a new one
    assert second.manager.counters["resolved"] == 1


async def test_ticks_happen_on_a_clock_that_moves_between_reads(tmp_path: Path) -> None:
    """On a real clock time moves between reading a deadline and reading the clock; the loop
    must still tick (here: an unacknowledged SOS escalates after 5 simulated minutes)."""
    clock = AcceleratedClock(start_wall=1_750_000_000.0, speed=3600.0)
    runtime, _press = one_press_runtime(tmp_path, clock)
    async with running(runtime):
        await wait_until(lambda: runtime.manager.counters["escalated"] > 0)
        (alert,) = runtime.manager.active.values()
        assert alert.state.value == "escalated"


def _sos_runtime(tmp_path: Path) -> tuple[SimClock, Runtime]:
    clock = SimClock()
    runtime = Runtime(
        settings_for(gateway_config(tmp_path, None, None)), clock, None, [], tmp_path / "state"
    )
    return clock, runtime


async def test_alerts_and_open_alerts_outlive_an_outbox_file_damaged_under_the_gateway(
    tmp_path: Path,
) -> None:
    """The SD card damages the outbox file while the gateway runs: the file is set aside, the
    SOS presses still reach the outbox, and the new file holds the open alerts, so a restart
    still knows all three."""
    clock, runtime = _sos_runtime(tmp_path)
    async with running(runtime):
        await runtime.put_reading(Reading(clock.wall(), "sos-r1", {"action": "sos"}))
        await wait_until(lambda: runtime.outbox.outbox.depth().get("alert") == 1)
        scribble_over_a_page(tmp_path / "state" / "outbox.sqlite3", page=1)
        for device in ("sos-r2", "sos-r3"):
            await runtime.put_reading(Reading(clock.wall(), device, {"action": "sos"}))
        await wait_until(lambda: runtime.manager.counters["raised"] == 3)
        await advance_gateway(runtime, 60.0)
    assert runtime.outbox.outbox.counters["damaged_files"] == 1
    _, again = _sos_runtime(tmp_path)
    assert {a.resident for a in again.manager.active.values()} == {"r1", "r2", "r3"}
    await again.close()


async def test_a_damaged_state_at_start_is_set_aside_and_the_gateway_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    for name in ("alerts.sqlite3", "outbox.sqlite3"):
        (state / name).write_bytes(b"\x00torn write" * 300)
    clock, runtime = _sos_runtime(tmp_path)
    async with running(runtime):
        await runtime.put_reading(Reading(clock.wall(), "sos-r1", {"action": "sos"}))
        await wait_until(lambda: runtime.outbox.outbox.depth().get("alert") == 1)
    assert (state / "alerts.sqlite3.corrupt-1").exists()
    assert (state / "outbox.sqlite3.corrupt-1").exists()


async def test_a_visit_for_a_resident_this_gateway_does_not_have_is_rejected(
    tmp_path: Path,
) -> None:
    _, runtime = _sos_runtime(tmp_path)
    await runtime.handle_command(b'{"command": "visit_start", "resident": "nobody"}')
    await runtime.handle_command(b'{"command": "visit_start", "resident": "r1"}')
    assert runtime.counters["commands_rejected"] == 1
    assert sorted(runtime.manager.visits) == ["r1"]
    # a command that says when it was issued: long ago, its visit is over; a bad time is refused
    old = runtime.clock.wall() - 4 * 3600
    await runtime.handle_command(
        b'{"command": "visit_start", "resident": "r2", "hours": 1, "t": %.0f}' % old
    )
    await runtime.handle_command(b'{"command": "visit_start", "resident": "r3", "t": "soon"}')
    # ISO 8601 as a platform may write it: issued 5 h ago, its visit is over too
    iso = dt.datetime.fromtimestamp(old - 3600, dt.UTC).isoformat().encode()
    await runtime.handle_command(
        b'{"command": "visit_start", "resident": "r2", "hours": 1, "t": "%s"}' % iso
    )
    assert sorted(runtime.manager.visits) == ["r1"]
    assert runtime.counters["commands_rejected"] == 2
    assert runtime.manager.counters["visit_starts_expired"] == 2
    await runtime.close()


async def test_a_visit_start_whose_time_is_an_integer_too_large_for_a_float_is_rejected(
    tmp_path: Path,
) -> None:
    """``t`` = 10**400 (valid JSON, under Python's 4,300-digit limit): math.isfinite raised
    OverflowError out of parse_command, a handler error with a traceback, not a rejection."""
    _, runtime = _sos_runtime(tmp_path)
    await runtime.handle_command(
        b'{"command": "visit_start", "resident": "r1", "t": 1%s}' % (b"0" * 400)
    )
    assert runtime.counters["commands_rejected"] == 1 and not runtime.manager.visits
    await runtime.close()


async def test_an_ack_that_carries_a_time_of_its_own_still_acknowledges(tmp_path: Path) -> None:
    """Only visit_start reads ``t``. A platform that stamps every command with its time (an
    ISO string: v1 ignores fields it does not know) had its ack refused once ``t`` was
    checked on every command: the alert stayed open and went on escalating."""
    clock, runtime = _sos_runtime(tmp_path)
    async with running(runtime):
        await runtime.put_reading(Reading(clock.wall(), "sos-r1", {"action": "sos"}))
        await wait_until(lambda: runtime.outbox.outbox.depth().get("alert") == 1)
        (alert,) = runtime.manager.active.values()
        await runtime.handle_command(
            b'{"command": "ack", "alert_id": "%s", "by": "nurse", "t": "2026-12-07T10:00:00Z"}'
            % alert.id.encode()
        )
        assert runtime.counters["commands_rejected"] == 0
        assert alert.state.value == "acknowledged"


async def test_a_command_with_text_that_is_no_unicode_is_rejected_and_every_start_still_works(
    tmp_path: Path,
) -> None:
    """JSON's ``"\\udc00"`` (a lone surrogate) is valid JSON but no UTF-8 text. An ack with
    it as ``by`` acknowledged the alert, then failed to encode its message (staff never got
    the confirmation), and the alert kept that ``by``: its ``restored`` copy could not be
    encoded at any later start, so the gateway failed at every start. An integer over
    Python's 4,300-digit limit escaped as a bare ValueError instead of a rejection."""
    clock, first = _sos_runtime(tmp_path)
    async with running(first):
        await first.put_reading(Reading(clock.wall(), "sos-r1", {"action": "sos"}))
        await wait_until(lambda: first.outbox.outbox.depth().get("alert") == 1)
        (alert,) = first.manager.active.values()
        for bad in (
            b'{"command": "ack", "alert_id": "%s", "by": "\\udc00"}' % alert.id.encode(),
            b'{"command": "visit_start", "resident": "r1", "by": "x\\ud800"}',
            b'{"command": "ack", "alert_id": "%s", "n": 1%s}' % (alert.id.encode(), b"0" * 5000),
        ):
            await first.handle_command(bad)
        assert first.counters["commands_rejected"] == 3
        assert alert.state.value == "open" and not first.manager.visits
        await first.put_reading(Reading(clock.wall(), "sos-r2", {"action": "sos"}))
        await wait_until(lambda: first.outbox.outbox.depth().get("alert") == 2)
    _, again = _sos_runtime(tmp_path)
    async with running(again):
        assert len(again.manager.active) == 2


async def test_a_visit_goes_on_after_a_restart_and_its_end_is_saved_too(tmp_path: Path) -> None:
    """Staff on site restart the gateway (or the power fails): the visit, which holds back
    the resident's behaviour alerts (a night exit as staff leave), must not end with it."""

    def restarted(after_s: float) -> Runtime:
        clock = SimClock(start_wall=T_START + after_s, start_mono=3.0)
        return Runtime(
            settings_for(gateway_config(tmp_path, None, None)), clock, None, [], tmp_path / "state"
        )

    first = restarted(0.0)
    await first.handle_command(b'{"command": "visit_start", "resident": "r1", "hours": 1}')
    await first.close()
    second = restarted(600.0)
    assert second.manager.in_visit("r1") and not second.manager.in_visit("r2")
    event = Event("night_exit", "r1", second.clock.wall(), Severity.HIGH)
    assert second.manager.handle(event) == []  # held back, as before the restart
    await second.handle_command(b'{"command": "visit_end", "resident": "r1"}')
    await second.close()
    third = restarted(900.0)
    assert not third.manager.in_visit("r1")
    await third.close()


async def test_an_open_alert_whose_messages_were_all_delivered_is_sent_again_at_the_start(
    tmp_path: Path,
) -> None:
    """At each start every open alert without a queued message goes out once more as
    ``restored`` (docs/protocol.md); one with a message still queued does not."""
    clock, first = _sos_runtime(tmp_path)
    async with running(first):
        for device in ("sos-r1", "sos-r2"):
            await first.put_reading(Reading(clock.wall(), device, {"action": "sos"}))
        await wait_until(lambda: first.outbox.outbox.depth().get("alert") == 2)
        first.outbox.outbox.ack(first.outbox.outbox.pending()[0].seq)  # the platform has r1's
    _, again = _sos_runtime(tmp_path)
    async with running(again):
        await wait_until(lambda: again.outbox.outbox.depth().get("alert") == 2)
        messages = [json.loads(i.payload) for i in again.outbox.outbox.pending()]
    assert [(m["change"], m["resident"]) for m in messages] == [
        ("raised", "r2"),
        ("restored", "r1"),
    ]


async def test_an_sos_open_at_a_restart_escalates_a_window_after_the_press_not_the_restart(
    tmp_path: Path,
) -> None:
    """Nobody acknowledged the SOS; the power fails 2 min after the press, for 1 min. Taken
    back from the outbox's file, it escalates 5 min after the press on the wall clock, 2 min
    after the restart: before, its timer started again at the restart (8 min after the press;
    with a longer power cut, the whole cut later)."""
    clock, first = _sos_runtime(tmp_path)
    pressed = clock.wall()
    async with running(first):
        await first.put_reading(Reading(pressed, "sos-r1", {"action": "sos"}))
        await wait_until(lambda: first.outbox.outbox.depth().get("alert") == 1)
        await advance_gateway(first, 120.0)
    after_cut = SimClock(start_wall=pressed + 180.0, start_mono=3.0)
    second = Runtime(
        settings_for(gateway_config(tmp_path, None, None)), after_cut, None, [], tmp_path / "state"
    )
    async with running(second):
        await advance_gateway(second, 119.0)
        assert second.manager.counters["escalated"] == 0
        await advance_gateway(second, 1.0)
        assert second.manager.counters["escalated"] == 1
        (alert,) = second.manager.active.values()
        assert alert.state.value == "escalated" and alert.last_t == pressed + 300.0
        messages = [json.loads(i.payload) for i in second.outbox.outbox.pending()]
    assert [m["change"] for m in messages] == ["raised", "escalated"]  # raised still queued
    assert not any("escalation_armed_wall" in json.dumps(m) for m in messages)  # not published


async def test_a_commit_the_disk_refuses_is_retried_at_the_tick(tmp_path: Path) -> None:
    """A full SD card: the SOS is held in memory and the open alerts with it; a tick writes
    both once there is room, so a restart then knows the alert."""
    clock, runtime = _sos_runtime(tmp_path)
    box = runtime.outbox.outbox
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL, as on a full card
    with contextlib.suppress(sqlite3.OperationalError):
        for seq in itertools.count(10**9):  # small summaries fill the room the file has left
            box._db.execute("INSERT INTO outbox VALUES (?, 'summary', 'r1', 't', x'73', 0)", (seq,))
    async with running(runtime):
        await runtime.put_reading(Reading(clock.wall(), "sos-r1", {"action": "sos"}))
        await wait_until(lambda: box.depth().get("alert_unsaved") == 1)
        await advance_gateway(runtime, 60.0)
        assert box.has_unsaved  # still full
        await runtime.outbox.run(box._db.execute, "PRAGMA max_page_count = 1073741823")
        await advance_gateway(runtime, 60.0)
        assert box.depth().get("alert") == 1 and not box.has_unsaved
    _, again = _sos_runtime(tmp_path)
    assert [a.resident for a in again.manager.active.values()] == ["r1"]
    await again.close()


async def test_changes_committed_together_are_queued_in_their_order(tmp_path: Path) -> None:
    """Changes committed together are queued in one transaction, in the order they were made
    in, with the open alerts as they stand after the last of them."""
    clock, runtime = _sos_runtime(tmp_path)
    (raised,) = runtime.manager.handle(Event("sos", "r1", clock.wall(), Severity.CRITICAL))
    (resolved,) = runtime.manager.resolve(raised.alert.id, "nurse")
    (second,) = runtime.manager.handle(Event("sos", "r2", clock.wall(), Severity.CRITICAL))
    await runtime._commit([raised, resolved, second])
    changes = [json.loads(i.payload)["change"] for i in runtime.outbox.outbox.pending()]
    assert changes == ["raised", "resolved", "raised"]
    assert list(runtime.outbox.outbox.open_alerts()) == [second.alert.id]
    await runtime.close()


class _SessionFailingAsItCloses:
    """A platform session whose command stream, cancelled, raises the link's own error, as a
    client library may while the connection is torn down under it."""

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        return None

    async def subscribe_commands(self) -> str | None:
        return None

    async def commands(self) -> AsyncIterator[bytes]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise UplinkError("connection lost while closing") from None
        yield b""  # pragma: no cover - never reached


class _LinkFailingAsItCloses:
    name = "failing-as-it-closes"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[_SessionFailingAsItCloses]:
        yield _SessionFailingAsItCloses()


async def test_stop_ends_the_gateway_although_the_uplink_fails_as_it_is_cancelled(
    tmp_path: Path,
) -> None:
    """Python 3.11's TaskGroup loses a cancellation that arrives while one of its tasks fails:
    the uplink took the error for a broken link and reconnected, and systemd's stop hung
    until it killed the gateway (no learned state saved)."""
    settings = settings_for(gateway_config(tmp_path, None, None))
    runtime = Runtime(settings, SimClock(), _LinkFailingAsItCloses(), [], tmp_path / "state")
    assert runtime.forwarder is not None
    task = asyncio.create_task(runtime.run())
    await wait_until(runtime.forwarder.connected.is_set)
    runtime.stop()
    try:
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()
        assert runtime.forwarder.counters["connects"] == 1  # not reconnected
    finally:
        task.cancel()  # a second cancellation ends a hung run (a sleep is not guarded)
        await asyncio.wait({task}, timeout=10)
        await runtime.close()


async def test_the_open_alerts_are_written_again_when_a_damaged_outbox_file_is_replaced(
    tmp_path: Path,
) -> None:
    """The damage took the open alerts' page: nothing of them could be read back into the
    new file. The next tick writes the gateway's own set there, so a restart still knows
    the alert though no alert changed since."""
    clock, runtime = _sos_runtime(tmp_path)
    async with running(runtime):
        await runtime.put_reading(Reading(clock.wall(), "sos-r1", {"action": "sos"}))
        await wait_until(lambda: runtime.outbox.outbox.depth().get("alert") == 1)
        path = tmp_path / "state" / "outbox.sqlite3"
        with contextlib.closing(sqlite3.connect(path)) as db:
            (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'open_alerts'")
        for page in (1, root[0] - 1):  # the messages' root page and the open alerts'
            scribble_over_a_page(path, page=page)
        await runtime.outbox.pending()  # finds the damage: a new file takes over
        assert runtime.outbox.outbox.counters["damaged_files"] == 1
        await advance_gateway(runtime, 60.0)
    _, again = _sos_runtime(tmp_path)
    assert [a.resident for a in again.manager.active.values()] == ["r1"]
    await again.close()


class _DriverReturningWhenCancelled:
    name = "returns-when-cancelled"

    async def run(self, sink: Callable[[Reading], Awaitable[None]]) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # a library swallowing it
            await asyncio.Event().wait()

    def diagnostics(self) -> dict[str, object]:
        return {}

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}


async def test_stop_ends_the_gateway_although_a_driver_swallows_the_cancellation(
    tmp_path: Path,
) -> None:
    settings = settings_for(gateway_config(tmp_path, None, None))
    driver = _DriverReturningWhenCancelled()
    runtime = Runtime(settings, SimClock(), None, [driver], tmp_path / "state")
    task = asyncio.create_task(runtime.run())
    await wait_until(runtime.ready.is_set)
    runtime.stop()
    try:
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        await runtime.close()


def _wander_risk_home(tmp_path: Path, after_s: float) -> Runtime:
    """r1 at risk of wandering (a night exit is alerted at once), a front door and a hallway
    sensor; the clock at 00:50 UTC plus ``after_s``, a new monotonic origin for each run."""
    config = gateway_config(tmp_path, None, None)
    config["gateway"]["timezone"] = "UTC"
    config["residents"][0]["wander_risk"] = True
    for device, kind, room, role in (
        ("front-door", "door", "entrance", "exit"),
        ("hallway", "motion", "hallway", None),
    ):
        spec = {"id": device, "kind": kind, "room": room, "resident": "r1"}
        config["devices"].append({**spec, "transport": "simulated", "role": role})
    night = dt.datetime(2024, 1, 10, 0, 50, tzinfo=dt.UTC).timestamp()
    clock = SimClock(start_wall=night + after_s, start_mono=5.0)
    return Runtime(settings_for(config), clock, None, [], tmp_path / "state")


async def _night_exit_held_for_a_visit(tmp_path: Path) -> None:
    """Staff on site with r1 at night; r1 goes out of the front door: night_exit is held
    back for the visit. Then the gateway restarts."""
    first = _wander_risk_home(tmp_path, 0.0)
    async with running(first):
        await first.handle_command(b'{"command": "visit_start", "resident": "r1", "hours": 1}')
        wall = first.clock.wall()
        await first.put_reading(Reading(wall, "hallway", {"motion": True}))
        await first.put_reading(Reading(wall + 60.0, "front-door", {"open": True}))
        await wait_until(lambda: first.manager.counters["held_during_visit"] == 1)
        await wait_until(lambda: first.outbox.outbox.depth().get("alert", 0) == 0)


async def test_an_alert_held_for_a_visit_is_raised_when_the_visit_ends_after_a_restart(
    tmp_path: Path,
) -> None:
    """Before, what a visit held back lived in memory only: restarted during the visit, the
    gateway never raised the night exit, and its detector (which counted it raised) never
    raised it again."""
    await _night_exit_held_for_a_visit(tmp_path)
    second = _wander_risk_home(tmp_path, 600.0)
    async with running(second):
        assert second.manager.in_visit("r1") and second.manager.active == {}
        await second.handle_command(b'{"command": "visit_end", "resident": "r1"}')
        await advance_gateway(second, 1.0)
        await wait_until(lambda: len(second.manager.active) == 1)
        (alert,) = second.manager.active.values()
        assert (alert.type, alert.resident) == ("night_exit", "r1")
        assert alert.severity is Severity.CRITICAL  # at risk of wandering


async def test_an_alert_held_for_a_visit_and_over_before_it_ends_is_not_raised_after_a_restart(
    tmp_path: Path,
) -> None:
    """The restarted gateway's night_exit takes the held alert as its own: r1 seen inside
    again lets it go, as without the restart, and that is saved too."""
    await _night_exit_held_for_a_visit(tmp_path)
    second = _wander_risk_home(tmp_path, 600.0)
    async with running(second):
        await second.put_reading(Reading(second.clock.wall(), "hallway", {"motion": True}))
        await wait_until(lambda: second.manager.held_records() == [])
        await wait_until(lambda: held_of(second.outbox.outbox.open_alerts()) == [])
    third = _wander_risk_home(tmp_path, 900.0)
    async with running(third):
        assert third.manager.in_visit("r1") and third.manager.held_records() == []
        await third.handle_command(b'{"command": "visit_end", "resident": "r1"}')
        await advance_gateway(third, 1.0)
        assert third.manager.active == {}


async def test_a_held_alert_saved_with_a_severity_that_cannot_be_read_does_not_stop_the_start(
    tmp_path: Path,
) -> None:
    """A record of what a visit held back, damaged or from another version (a severity that is
    not a label: None, a number, an enum pickled as such), is skipped like any unreadable
    saved record; the others are still taken back. Before, ``Severity.parse`` raised
    AttributeError, which restore_held did not catch: the gateway could not start at all."""
    await _night_exit_held_for_a_visit(tmp_path)
    box = Outbox(tmp_path / "state" / "outbox.sqlite3", SimClock())
    records = box.open_alerts()
    (good,) = held_of(records)
    records[HELD_KEY] = [{**good, "severity": None}, {**good, "severity": 3}, good]
    box.commit([], records)
    box.close()
    second = _wander_risk_home(tmp_path, 600.0)
    async with running(second):
        assert [e["type"] for e in second.manager.held_records()] == ["night_exit"]
        await second.handle_command(b'{"command": "visit_end", "resident": "r1"}')
        await wait_until(lambda: len(second.manager.active) == 1)
