"""A stop asked for by systemd (``Runtime.request_stop``: an update, a reboot, a shutdown) lets
what is under way finish first, for at most ``STOP_GRACE_S``: a fall being decided gets its
alert (its samples are in memory only), and an alert queued while the platform is reachable
is delivered. A second request, or nothing under way, stops at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.outbox import Outbox
from alerts.state import alerts_of
from gateway.clock import SimClock
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.model import Device, DeviceKind, Reading
from gateway.runtime import STOP_GRACE_S, Runtime
from simulators.transport import InProcessDevices
from tests.support.falls import FS, real_fall_at_50hz
from tests.support.harness import (
    advance_gateway,
    gateway_config,
    running_platform,
    runtime_for,
    settings_for,
    wait_until,
)
from tests.support.mosquitto import Mosquitto

BATCH = 10  # samples per band notification (0.2 s at 50 Hz)
STEP_S = BATCH / FS


def band_runtime(tmp_path: Path, clock: SimClock, samples: np.ndarray) -> Runtime:
    """A gateway whose one wristband streams ``samples`` (50 Hz) from the clock's start."""
    config = gateway_config(tmp_path, None, None)
    config["devices"].append(
        {"id": "band-r1", "kind": "wristband", "resident": "r1", "transport": "simulated"}
    )
    start = clock.wall()
    readings = [
        Reading(start + i / FS, "band-r1", {"acc": samples[i : i + BATCH].tolist(), "fs": FS})
        for i in range(0, samples.shape[0], BATCH)
    ]
    return Runtime(settings_for(config), clock, None, [InProcessDevices(readings, clock)])


@contextlib.asynccontextmanager
async def started(runtime: Runtime) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runtime.run())
    try:
        await wait_until(runtime.ready.is_set)
        yield task
    finally:
        runtime.stop()
        await asyncio.wait({task}, timeout=10)
        await runtime.close()


async def step(runtime: Runtime) -> None:
    """One band notification's time on, and the turns the driver and the loop need to take
    it (``advance_gateway`` alone may not yield at all)."""
    await advance_gateway(runtime, STEP_S)
    for _ in range(5):
        await asyncio.sleep(0)


async def advance_until_stopped(
    runtime: Runtime, task: asyncio.Task[None], limit_s: float
) -> float:
    """Move the clock on a band notification at a time until the gateway has decided to stop
    (``Runtime.stopping``), then wait for it to end; the simulated seconds until it decided.
    Ending takes no simulated time but real time: a storage call under way (a fall's commit)
    is finished first on the outbox's thread, long enough on a loaded machine for many more
    steps to have been counted."""
    waited = 0.0
    while not runtime.stopping:
        assert waited < limit_s, "the gateway did not stop"
        await step(runtime)
        waited += STEP_S
    await asyncio.wait({task}, timeout=10)
    return waited


def fall_raises(runtime: Runtime) -> list[dict[str, Any]]:
    """The fall alerts' raise messages queued in the outbox."""
    messages = [json.loads(item.payload) for item in runtime.outbox.outbox.pending(100)]
    return [m for m in messages if m["type"] == "fall" and m["change"] == "raised"]


async def test_a_stop_during_a_fall_waits_for_its_alert(tmp_path: Path) -> None:
    clock = SimClock()
    samples, peak = real_fall_at_50hz()
    runtime = band_runtime(tmp_path, clock, samples)
    async with started(runtime) as task:
        while clock.monotonic() - 1000.0 < peak + 1.0:  # SimClock's monotonic starts at 1000
            await step(runtime)
        assert runtime.pipeline.deciding()  # the impact is a candidate, not decided yet
        assert fall_raises(runtime) == []
        runtime.request_stop()
        await asyncio.sleep(0)
        assert not task.done()
        waited = await advance_until_stopped(runtime, task, STOP_GRACE_S)
        assert task.cancelled()
        (raised,) = fall_raises(runtime)
        assert raised["resident"] == "r1"
        confirmation_s = FallSettings().confirmation_s
        # stopped at the first look after the alert was due, not at the end of the grace
        assert waited <= confirmation_s - 1.0 + 2 * STEP_S


async def test_nothing_under_way_stops_at_once(tmp_path: Path) -> None:
    clock = SimClock()
    lying = np.tile([0.0, 0.0, 1.0], (round(30 * FS), 1))
    runtime = band_runtime(tmp_path, clock, lying)
    async with started(runtime) as task:
        for _ in range(10):
            await step(runtime)
        assert not runtime.pipeline.deciding()
        runtime.request_stop()
        await asyncio.wait({task}, timeout=10)  # the simulated clock stands still
        assert task.cancelled()


def knocks(seconds: float, every_s: float) -> np.ndarray:
    """An arm at rest knocked at 4 g every ``every_s``: an impact always being decided."""
    samples = np.tile([0.0, 0.0, 1.0], (round(seconds * FS), 1))
    for k in range(round(every_s * FS), samples.shape[0], round(every_s * FS)):
        samples[k : k + 2] = [3.0, 2.0, 1.5]
    return samples


async def knocked_for(runtime: Runtime, seconds: float) -> None:
    for _ in range(round(seconds / STEP_S)):
        await step(runtime)


async def test_a_stop_waits_no_longer_than_its_grace(tmp_path: Path) -> None:
    runtime = band_runtime(tmp_path, SimClock(), knocks(60.0, 1.5))
    async with started(runtime) as task:
        await knocked_for(runtime, 12.0)
        assert runtime.pipeline.deciding()
        runtime.request_stop()
        waited = await advance_until_stopped(runtime, task, STOP_GRACE_S + 2.0)
        assert runtime.pipeline.deciding()  # it still was: the grace ended the wait
        assert STOP_GRACE_S - STEP_S <= waited <= STOP_GRACE_S + 2 * STEP_S


async def test_a_second_request_stops_at_once(tmp_path: Path) -> None:
    runtime = band_runtime(tmp_path, SimClock(), knocks(60.0, 1.5))
    async with started(runtime) as task:
        await knocked_for(runtime, 12.0)
        runtime.request_stop()
        await asyncio.sleep(0)
        assert not task.done()
        runtime.request_stop()  # Ctrl-C twice, systemd's SIGTERM then SIGINT
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()


async def test_a_stop_loses_no_alert_whose_commit_waits_for_the_storage_thread(
    tmp_path: Path,
) -> None:
    """An alert change is committed on the outbox's one thread. A stop that came while that
    thread was still busy with an earlier call (a slow SD card) took the commit off its queue
    before it began: the alert raised, never written, and gone at the next start. Under load
    the same happened to a fall decided just before a stop (the gateway saw nothing under way
    and stopped at once)."""
    clock = SimClock()
    runtime = Runtime(settings_for(gateway_config(tmp_path, None, None)), clock, None, [])
    busy, card = threading.Event(), threading.Event()

    def slow_write() -> None:
        busy.set()
        card.wait()

    async with started(runtime) as task:
        earlier = asyncio.create_task(runtime.outbox.run(slow_write))
        try:
            await wait_until(busy.is_set)  # the thread is busy: what comes next is queued
            await runtime.put_reading(Reading(clock.wall(), "sos-r1", {"action": "sos"}))
            await wait_until(lambda: runtime.manager.counters["raised"] == 1)  # commit queued
            pipeline = next(t for t in asyncio.all_tasks() if t.get_name().endswith("pipeline]"))
            runtime.stop()
            await wait_until(lambda: pipeline.cancelling() > 0)
            # and the turn in which the cancellation reaches the thread's queue (nothing
            # completes on the held thread meanwhile, so the order is fixed)
            await asyncio.sleep(0)
        finally:
            card.set()
        await earlier
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()
    after_restart = Outbox(tmp_path / "state" / "outbox.sqlite3", SimClock())
    try:
        messages = [json.loads(item.payload) for item in after_restart.pending(100)]
        assert [(m["type"], m["change"]) for m in messages] == [("sos", "raised")]
        assert [a.type for a in alerts_of(after_restart.open_alerts())] == ["sos"]
    finally:
        after_restart.close()


@pytest.mark.broker
async def test_an_alert_queued_at_a_stop_reaches_the_platform_first(
    tmp_path: Path, platform_broker: Mosquitto
) -> None:
    """The platform's broker is held (SIGSTOP) while an SOS is queued and the stop asked
    for: the gateway stops only once the broker has acknowledged it (before, it stopped with
    the SOS queued, sent at the next start: after a shutdown, whenever that is)."""
    async with running_platform(platform_broker) as platform:
        runtime = runtime_for(gateway_config(tmp_path, None, platform_broker))
        task = asyncio.create_task(runtime.run())
        try:
            assert runtime.forwarder is not None
            await asyncio.wait_for(runtime.forwarder.connected.wait(), 10)
            assert platform_broker.proc is not None
            platform_broker.proc.send_signal(signal.SIGSTOP)
            try:
                await runtime.put_reading(
                    Reading(runtime.clock.wall(), "sos-r1", {"action": "sos"})
                )
                await wait_until(lambda: runtime.outbox.outbox.depth().get("alert") == 1)
                runtime.request_stop()
                await asyncio.sleep(0)
                assert not task.done()
            finally:
                platform_broker.proc.send_signal(signal.SIGCONT)
            await asyncio.wait({task}, timeout=STOP_GRACE_S + 5.0)
            assert task.cancelled()
            assert runtime.outbox.outbox.depth().get("alert", 0) == 0  # acknowledged
            (alert,) = await platform.wait_for_alerts(1)
            assert alert["type"] == "sos"
        finally:
            runtime.stop()
            await asyncio.wait({task}, timeout=10)
            await runtime.close()


async def test_a_stop_waits_for_a_fall_whose_samples_are_still_queued(tmp_path: Path) -> None:
    """The gateway is behind (a Pi busy, a band flushing its buffer at a reconnect): the
    band's notifications up to a second after an impact are in the reading queue, not yet
    fed to the fall detector, when systemd stops it; the band goes on streaming. Those are
    data the gateway has received, and the fall they carry must get its alert before the
    gateway goes. Before, the stop saw no fall being decided (nothing fed yet) and went at
    once: the fall was lost."""
    clock = SimClock()
    samples, peak = real_fall_at_50hz()
    config = gateway_config(tmp_path, None, None)
    config["devices"].append(
        {"id": "band-r1", "kind": "wristband", "resident": "r1", "transport": "simulated"}
    )
    runtime = Runtime(settings_for(config), clock, None, [])
    start = clock.wall()
    batches = iter(range(0, samples.shape[0], BATCH))

    async def notify() -> None:
        """The band's next notification, a notification's time after the last."""
        i = next(batches)
        clock.advance(STEP_S)
        acc = samples[i : i + BATCH].tolist()
        await runtime.put_reading(Reading(start + i / FS, "band-r1", {"acc": acc, "fs": FS}))

    async with started(runtime) as task:
        for _ in range(round((peak + 1.0) / STEP_S)):
            await notify()  # the loop gets no turn meanwhile: all of it queued
        assert runtime.queue.qsize() > 0 and fall_raises(runtime) == []
        runtime.request_stop()
        waited = 0.0
        # until it has decided to stop: ending then takes real time, not simulated (the fall's
        # commit is finished on the outbox's thread), and the band's stream must not run on
        while not runtime.stopping:
            assert waited < STOP_GRACE_S, "the gateway did not stop"
            await notify()
            waited += STEP_S
            await wait_until(
                lambda: runtime.stopping or runtime.pipeline.next_deadline() > clock.monotonic()
            )
            for _ in range(5):  # the loop's turns to take the notification
                await asyncio.sleep(0)
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()
        (raised,) = fall_raises(runtime)
        assert raised["resident"] == "r1"


def test_an_impact_fed_but_not_yet_scanned_is_being_decided() -> None:
    """The gate scans the bands' new samples every 0.2 s (at a tick, or with a band's
    reading once that long has passed): the notifications that came since, the impact's
    among them, are fed but not yet looked at. A stop asked for in between must see the fall
    under way. Before, ``deciding`` looked only at what the gate had already found."""
    clock = SimClock()
    samples, peak = real_fall_at_50hz()
    fall = FallAlerts(clock)
    band = Device("band-r1", DeviceKind.WRISTBAND, "r1")
    start = clock.wall()
    first = round(peak * FS) - 2 * BATCH  # the band's notifications to a moment before impact
    for i in range(0, first, BATCH):
        clock.advance(STEP_S)
        fall.on_reading(
            Reading(start + i / FS, "band-r1", {"acc": samples[i : i + BATCH], "fs": FS}), band
        )
    assert not fall.deciding()
    # the impact's notifications, within one gate period (a burst, a host catching up)
    for i in range(first, first + 4 * BATCH, BATCH):
        fall.on_reading(
            Reading(start + i / FS, "band-r1", {"acc": samples[i : i + BATCH], "fs": FS}), band
        )
    assert fall.deciding()
    fall.on_tick()  # the gate's next look
    assert fall.deciding()


async def test_a_stop_asked_for_before_the_run_ends_it_at_once(tmp_path: Path) -> None:
    """A signal during the start, before the loop runs: the run must not go on regardless."""
    runtime = band_runtime(tmp_path, SimClock(), np.zeros((0, 3)))
    try:
        runtime.request_stop()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(runtime.run(), 10)
    finally:
        await runtime.close()
