"""Presses through the BLE driver while its reading queue is full of wristband notifications
(many bands at 50 Hz, a slow Pi: the runtime's sink waits for room): an SOS or a button's press
is handed on ahead of the queued notifications and never dropped for room, and a band's cancel
keeps its place after the band's own samples (the fall detector needs it there)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from drivers.ble.driver import BleDeviceSpec, specs_from_devices
from gateway.clock import SimClock
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.model import Device, DeviceKind, Event, EventAction, Reading
from tests.drivers.ble.conftest import BAND, BUTTON, Rig, running_rig
from tests.support.falls import real_fall_at_50hz

pytestmark = pytest.mark.ble

QUEUE = 8  # the driver's reading queue, small so that a test fills it
BATCH = 5  # samples per notification: notification k carries sample counter k * BATCH

BAND_SPEC = BleDeviceSpec(BAND, "band-1", "wristband")
# configured as the gateway does (gateway.wiring): the spec knows the pendant is a button
PENDANT_SPEC = specs_from_devices(
    [Device("pendant", DeviceKind.BUTTON, "r1", options={"ble_address": BUTTON})]
)[0]


def label(reading: Reading) -> str:
    """``m<k>`` for the band's k-th notification, else the press's action."""
    if "acc" in reading.values:
        return f"m{reading.values['seq'] // BATCH}"
    return str(reading.get("action", reading.device))


def handled(rig: Rig) -> int:
    """Readings the driver has queued or dropped for room, whatever became of them."""
    counters = rig.driver.counters
    return sum(
        counters.get(name, 0) for name in ("readings", "readings_dropped", "presses_dropped")
    )


async def hold_sink_and_flood(  # type: ignore[no-untyped-def]
    rig: Rig, band, notifications: int | Sequence[np.ndarray], step_s: float = 0.0
) -> None:
    """The sink holds the band's first notification (the runtime's queue is full); the next
    go to the driver's queue, or find it full. ``notifications``: how many (of zeros), or
    their samples; ``step_s``: simulated time before each (as the band streams)."""
    if isinstance(notifications, int):
        notifications = [np.zeros((BATCH, 3))] * notifications
    await rig.linked("band-1")
    await rig.next_reading(lambda r: r.device == "band-1")  # its status, read on connect
    rig.sink_open.clear()
    for k, samples in enumerate(notifications):
        rig.clock.advance(step_s)
        before = handled(rig)
        await band.send_motion(samples)
        await rig.until(lambda: handled(rig) == before + 1)  # noqa: B023
        if k == 0:
            await rig.until(lambda: rig.in_sink is not None)


async def release(rig: Rig) -> list[Reading]:
    """Open the sink; what it got (the one it held first), once the driver has handed on
    everything it queued (and did not give up for a press's room)."""
    rig.sink_open.set()
    counters = rig.driver.counters
    await rig.until(
        lambda: rig.delivered == counters["readings"] - counters.get("readings_evicted", 0)
    )
    got = []
    while not rig.readings.empty():
        got.append(rig.readings.get_nowait())
    return got


async def release_labels(rig: Rig) -> list[str]:
    return [label(reading) for reading in await release(rig)]


async def test_a_band_sos_is_handed_on_ahead_of_the_queued_notifications() -> None:
    """Five notifications queued behind the one the sink holds, then the band's SOS: it went
    to the sink after all five (and, with a full queue of 4,096, after ~80 s of one band's
    data, 2-4 s of pipeline work on a Pi) before it even reached the runtime's urgent queue."""
    async with running_rig([("wristband", BAND)], [BAND_SPEC]) as rig:
        band = rig.world[BAND]
        await hold_sink_and_flood(rig, band, 6)
        await band.press("sos")
        await rig.until(lambda: handled(rig) == 8)  # status, six notifications, the press
        assert await release_labels(rig) == ["m0", "sos", "m1", "m2", "m3", "m4", "m5"]
        assert rig.driver.counters["presses_ahead"] == 1


async def test_a_band_sos_is_not_dropped_when_the_queue_is_full() -> None:
    """The driver's queue full of notifications and more coming (two of them dropped for
    room), then the band's SOS: it was dropped with them (``readings_dropped``), and the
    person's call for help was lost."""
    async with running_rig([("wristband", BAND)], [BAND_SPEC], queue_size=QUEUE) as rig:
        band = rig.world[BAND]
        await hold_sink_and_flood(rig, band, 1 + QUEUE + 2)
        assert rig.driver.counters["readings_dropped"] == 2
        await band.press("sos")
        await rig.until(lambda: handled(rig) == 1 + 1 + QUEUE + 2 + 1)
        got = await release_labels(rig)
        assert got == ["m0", "sos", *(f"m{k}" for k in range(1, QUEUE + 1))]
        assert rig.driver.counters["readings_dropped"] == 2  # notifications only
        assert rig.driver.counters["presses_dropped"] == 0


async def test_a_band_cancel_keeps_its_place_and_a_pendant_press_goes_first() -> None:
    """The queue full of the band's notifications; the wearer presses cancel on the band, then
    a pendant (a BTHome button) is pressed. The pendant's press goes ahead of everything
    queued; the band's cancel is not dropped but stays after the band's samples queued before
    it (taken before them, the fall detector would not apply it to the fall in them), the
    oldest queued notification given up for its room. Both presses were dropped."""
    async with running_rig(
        [("wristband", BAND), ("button", BUTTON)], [BAND_SPEC, PENDANT_SPEC], queue_size=QUEUE
    ) as rig:
        band, pendant = rig.world[BAND], rig.world[BUTTON]
        await rig.next_reading(lambda r: r.device == "pendant")  # its first advertisement
        await hold_sink_and_flood(rig, band, 1 + QUEUE)
        await band.press("cancel")
        await rig.until(lambda: handled(rig) == 1 + 1 + 1 + QUEUE + 1)
        await pendant.press("press")
        await rig.until(lambda: handled(rig) == 1 + 1 + 1 + QUEUE + 2)
        got = await release_labels(rig)
        assert got == ["m0", "press", *(f"m{k}" for k in range(2, QUEUE + 1)), "cancel"]
        counters = rig.driver.counters
        assert (counters["readings_evicted"], counters["readings_dropped"]) == (1, 0)
        assert (counters["presses_ahead"], counters["presses_dropped"]) == (1, 0)


async def test_room_for_a_press_is_taken_from_a_notification_not_an_earlier_press() -> None:
    """A cancel at the head of the full queue, then another: a notification is given up for
    the second, and both cancels reach the sink in order."""
    async with running_rig([("wristband", BAND)], [BAND_SPEC], queue_size=QUEUE) as rig:
        band = rig.world[BAND]
        await hold_sink_and_flood(rig, band, 1)
        await band.press("cancel")
        await rig.until(lambda: handled(rig) == 1 + 1 + 1)
        for _ in range(QUEUE - 1):
            await band.send_motion(np.zeros((BATCH, 3)))
        await rig.until(lambda: handled(rig) == 1 + 1 + 1 + QUEUE - 1)
        await band.press("cancel")
        await rig.until(lambda: handled(rig) == 1 + 1 + 1 + QUEUE)
        got = await release_labels(rig)
        assert got == ["m0", "cancel", *(f"m{k}" for k in range(2, QUEUE)), "cancel"]
        assert rig.driver.counters["readings_evicted"] == 1


async def test_a_band_cancel_through_a_full_queue_still_withdraws_the_fall_before_it() -> None:
    """A real fall streamed by the band while the sink holds (the queue exactly full of its
    notifications), then the wearer's cancel; what the sink gets goes into the fall detector
    on the same clock. The cancel was dropped and the false fall alert stood (a staff visit
    for nothing); taken ahead of the band's samples, it would stand too (the band's own press
    is not applied to a fall whose data comes after it)."""
    samples, _ = real_fall_at_50hz()
    chunks = [samples[i : i + 25] for i in range(0, len(samples), 25)]
    async with running_rig([("wristband", BAND)], [BAND_SPEC], queue_size=len(chunks) - 1) as rig:
        band = rig.world[BAND]
        await hold_sink_and_flood(rig, band, chunks, step_s=0.5)
        rig.clock.advance(0.5)
        await band.press("cancel")
        await rig.until(lambda: handled(rig) == 1 + len(chunks) + 1)
        detector = FallAlerts(rig.clock, FallSettings())
        device = Device("band-1", DeviceKind.WRISTBAND, "r1")
        events: list[Event] = []
        for reading in await release(rig):
            events.extend(detector.on_reading(reading, device))
        events.extend(run_detector(detector, rig.clock, 60.0))
        assert [e.action for e in events] == [EventAction.RAISE, EventAction.CANCEL]
        assert rig.driver.counters["readings_evicted"] == 1


def run_detector(detector: FallAlerts, clock: SimClock, seconds: float) -> list[Event]:
    events: list[Event] = []
    for _ in range(round(seconds / 0.2)):
        clock.advance(0.2)
        while (due := detector.next_deadline()) is not None and due <= clock.monotonic():
            events.extend(detector.on_tick())
    return events
