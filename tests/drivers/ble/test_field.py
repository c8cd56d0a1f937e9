"""The wristband and the emergency buttons in the field, from the resident's side, through
bumble's virtual controller and the driver (the code the Pi runs), into the detectors that
act on what it hands on, on one simulated clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from drivers.ble.driver import BleDeviceSpec, specs_from_devices
from drivers.ble.profiles import BAND_SILENCE_TIMEOUT_S
from drivers.decoders.wristband import encode_status
from gateway.detection.base import Home
from gateway.detection.device_health import DeviceHealth
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.detection.sos import SosDetector
from gateway.model import Device, DeviceKind, Event, EventAction, Reading, Resident
from tests.drivers.ble.conftest import BAND, BED, BUTTON, DOOR, SAFETY_TIMEOUT_S, Rig, running_rig
from tests.support.falls import real_fall_at_50hz

pytestmark = pytest.mark.ble

BAND_DEVICE = Device("band-1", DeviceKind.WRISTBAND, "p1", options={"transport": "ble"})


def taken(rig: Rig) -> list[Reading]:
    """Every reading the sink got and no test took yet."""
    readings, rig.pending = rig.pending, []
    while not rig.readings.empty():
        readings.append(rig.readings.get_nowait())
    return readings


async def test_a_band_whose_firmware_hung_is_reported_offline() -> None:
    """The band's application hangs while its radio stack lives on (it keeps the link, answers
    reads from its GATT table, notifies nothing): no motion, no presses. The driver gives the
    silent link up every 150 s and connects again, and the status read on every connection
    was handed on as a reading, so device health heard the band every 150 s and never said
    ``device_offline`` while the resident's SOS presses went nowhere."""
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        health = DeviceHealth(rig.clock, Home([Resident("p1")], [BAND_DEVICE]))
        await rig.linked("band-1")
        events: list[Event] = []
        for connects in range(2, 6):  # four more connections: ten minutes
            rig.clock.advance(BAND_SILENCE_TIMEOUT_S)
            await rig.linked("band-1", connects=connects)
            for reading in taken(rig):
                events.extend(health.on_reading(reading, BAND_DEVICE))
            events.extend(health.on_tick())
        assert rig.driver.diagnostics()["links"]["band-1"]["silences"] == 4
        assert [(e.type, e.action) for e in events] == [("device_offline", EventAction.RAISE)]

        await rig.world[BAND].send_motion(np.zeros((25, 3)))  # the band is back to life
        reading = await rig.next_reading(lambda r: "acc" in r.values)
        cleared = health.on_reading(reading, BAND_DEVICE)
        assert [(e.type, e.action) for e in cleared] == [("device_offline", EventAction.CLEAR)]

        # a status read that says something new is handed on as before
        rig.world[BAND].status.value = encode_status(worn=False, battery=80)
        await rig.world[BAND].drop_connection()
        await rig.linked("band-1", connects=6)
        status = await rig.next_reading(lambda r: "worn" in r.values)
        assert status.values == {"worn": False, "battery": 80}


async def test_an_sos_button_is_heard_while_a_degraded_adapter_waits_for_its_next_reset() -> None:
    """The bed sensor (a periodic advertiser) is unplugged in a quiet home: its silence is
    taken as evidence against the scanner, and the adapter is reset, then reported degraded,
    reset again every 5 min. Between those resets the scanner was stopped: a BTHome SOS
    button, which advertises a press for a second or two, was unheard for 5 min of every 7
    (the press lost). The wait now listens: the press is heard at once, and, as any
    advertisement heard, clears the suspicion (no reset of a working adapter)."""
    bed = BleDeviceSpec(DOOR, "bed-1", periodic=True)
    pendant = specs_from_devices(
        [Device("pendant", DeviceKind.BUTTON, "p1", options={"ble_address": BUTTON})]
    )[0]
    async with running_rig([("door", DOOR)], [bed, pendant]) as rig:
        await rig.next_reading(lambda r: r.device == "bed-1")
        await rig.world[DOOR].stop_advertising()  # unplugged
        await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
        resets, starts = rig.world.adapter.resets, rig.driver.counters["scan_starts"]

        button = rig.world.add("button", BUTTON)
        await button.start()
        await button.press("press")  # no simulated time passes: she presses now
        press = await rig.next_reading(lambda r: r.device == "pendant" and "action" in r.values)
        sos = SosDetector(rig.clock).on_reading(press, Device("pendant", DeviceKind.BUTTON, "p1"))
        assert [(e.type, e.action) for e in sos] == [("sos", EventAction.RAISE)]
        await button.stop_advertising()

        assert not rig.driver.diagnostics()["degraded"] and rig.driver.problems() == {}
        await rig.until(lambda: rig.driver.counters["scan_starts"] > starts)  # scanning again
        assert rig.world.adapter.resets == resets


# the bedroom of one resident: a bed sensor (a periodic advertiser) and her band, over BLE
BEDROOM = [
    Device("bed-1", DeviceKind.BED, "p1", options={"transport": "ble", "ble_address": BED}),
    Device("band-1", DeviceKind.WRISTBAND, "p1", options={"transport": "ble", "ble_address": BAND}),
]


@pytest.mark.parametrize("band", ["notifying", "gone"])
async def test_a_dead_bed_sensor_beside_a_band_notifying_is_the_beds_silence(band: str) -> None:
    """The bed sensor dies (unplugged) while the band stays connected and notifying. The bed's
    silence was taken as evidence against the adapter: scan restarts, adapter resets (each one
    drops the band's link on a Pi), degraded - 8 resets an hour, a false ``gateway_degraded``,
    and, degraded, device health kept ``device_offline`` back for every BLE device, the dead
    bed first. A link delivering notifications says the adapter works: the bed is reported
    offline and the adapter left alone. With the band gone too (out with the resident),
    nothing says the adapter works: the bed's silence still climbs the ladder."""
    home = Home([Resident("p1")], BEDROOM)
    async with running_rig([("bed", BED), ("wristband", BAND)], specs_from_devices(BEDROOM)) as rig:
        clock = rig.clock
        health = DeviceHealth(
            clock,
            home,
            problems=lambda: {f"ble:{key}": v for key, v in rig.driver.problems().items()},
        )
        events: list[Event] = []

        def feed(*readings: Reading) -> None:
            for reading in [*readings, *taken(rig)]:
                events.extend(health.on_reading(reading, home.devices[reading.device]))
            if (due := health.next_deadline()) is not None and due <= clock.monotonic():
                events.extend(health.on_tick())

        await rig.linked("bed-1")
        await rig.linked("band-1")
        await rig.world[BED].send(occupied=True, hr=60, rr=14)
        feed(await rig.next_reading(lambda r: r.device == "bed-1" and "occupied" in r.values))
        await rig.world[BED].drop_connection()  # unplugged
        await rig.world[BED].stop_advertising()
        if band == "gone":
            await rig.world[BAND].drop_connection()
            await rig.world[BAND].stop_advertising()
            await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
            assert rig.world.adapter.resets >= 2 and rig.driver.problems()
            return

        for _ in range(3 * 60):  # an hour, the band notifying every 20 s
            clock.advance(20)
            await rig.world[BAND].send_motion(np.zeros((25, 3)))
            feed(await rig.next_reading(lambda r: "acc" in r.values))
            assert not rig.driver.diagnostics()["degraded"] and rig.driver.problems() == {}
        diagnostics = rig.driver.diagnostics()
        assert diagnostics["quiet_restarts"] >= 20  # the bed's silence: a scan restart each
        assert rig.world.adapter.resets == 0 and diagnostics["adapter_resets"] == 0
        assert diagnostics["links"]["band-1"]["connects"] == 1
        assert [(e.type, e.action, e.device) for e in events] == [
            ("device_offline", EventAction.RAISE, "bed-1")
        ]


async def test_a_dead_bed_sensor_beside_a_band_link_silent_still_climbs() -> None:
    """The band's link is up but has delivered nothing for longer than the scanner's silence
    window (a bluetoothd that restarted under it): no sign that the adapter works, so the dead
    bed's silence climbs, as before."""
    async with running_rig([("bed", BED), ("wristband", BAND)], specs_from_devices(BEDROOM)) as rig:
        await rig.linked("bed-1")
        await rig.linked("band-1")
        await rig.world[BED].drop_connection()
        await rig.world[BED].stop_advertising()
        # the watchdog's silence handed to the ladder (counted there whether it climbs or not)
        await rig.until(lambda: rig.driver._ladder.counts.get("silent", 0) >= 1, advance_s=10)
        assert rig.driver.diagnostics()["links"]["band-1"]["connects"] == 1  # still up
        assert rig.driver.counters["quiet_restarts"] == 0  # the silence climbed
        assert rig.driver.diagnostics()["recovery"]["consecutive_restarts"] == 1


async def test_the_driver_stops_at_once_while_a_degraded_adapter_waits_listening() -> None:
    bed = BleDeviceSpec(DOOR, "bed-1", periodic=True)
    async with running_rig([("door", DOOR)], [bed]) as rig:
        await rig.next_reading(lambda r: r.device == "bed-1")
        await rig.world[DOOR].stop_advertising()
        await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
        await rig.until(lambda: rig.driver.scanning)  # listening until the next reset
        assert rig.task is not None
        rig.driver.stop()
        rig.task.cancel()
        await asyncio.wait({rig.task}, timeout=SAFETY_TIMEOUT_S)  # no simulated time passes
        assert rig.task.cancelled()


@pytest.mark.parametrize("gesture", ["press", "long", "long_double", "long_triple", "hold"])
async def test_every_gesture_on_an_emergency_button_raises_an_sos(gesture: str) -> None:
    """A resident in distress presses as she can: twice and holds (BTHome's "long double",
    0x05), three times and holds. The SOS detector took only press, double, triple, long and
    hold from a button (``quadruple`` and Aqara's ``many`` over Zigbee2MQTT, NodOn's
    ``quadruple`` and ``quintuple`` neither), and raised nothing, while device health counted
    the same press as the button's weekly test."""
    device = Device("pendant", DeviceKind.BUTTON, "p1", options={"ble_address": BUTTON})
    async with running_rig([("button", BUTTON)], specs_from_devices([device])) as rig:
        sos = SosDetector(rig.clock)
        await rig.world[BUTTON].press(gesture)
        press = await rig.next_reading(lambda r: "action" in r.values)
        assert press.values["action"] == gesture
        events = sos.on_reading(press, device)
        assert [(e.type, e.action) for e in events] == [("sos", EventAction.RAISE)]


async def test_one_press_re_advertised_for_a_minute_is_one_press() -> None:
    """A BTHome button that keeps advertising its last packet (the same packet id) after a
    press: the re-broadcast filter's 20 s window ran from the first time the packet was heard,
    so the same press came again every 20 s while the button went on - an SOS re-sent to the
    platform three times a minute, and a new SOS alert once staff had resolved the first. The
    window of a press now runs from the last time it was heard; a packet without a press
    (a door's state) is still taken again after 20 s, as the device's sign of life."""
    device = Device("pendant", DeviceKind.BUTTON, "p1", options={"ble_address": BUTTON})
    door = BleDeviceSpec(DOOR, "front-door")
    async with running_rig(
        [("button", BUTTON), ("door", DOOR)], [*specs_from_devices([device]), door]
    ) as rig:
        await rig.world[BUTTON].press("press")
        await rig.next_reading(lambda r: "action" in r.values)
        for _ in range(12):  # a minute, the button and the door advertising all along
            rig.clock.advance(5)
            heard = rig.driver.counters["advertisements"]
            await rig.until(lambda n=heard + 10: rig.driver.counters["advertisements"] >= n)
        readings = taken(rig)
        assert [r for r in readings if "action" in r.values] == []
        assert len([r for r in readings if r.device == "front-door"]) >= 2

        await rig.world[BUTTON].stop_advertising()  # quiet for a while, then pressed again:
        rig.clock.advance(21)  # a new press even if its packet id came round to the same
        await rig.world[BUTTON].advertise()
        await rig.next_reading(lambda r: "action" in r.values)


async def test_a_band_in_and_out_of_the_garden_still_dates_its_fall_and_takes_its_cancel() -> None:
    """The resident goes out to the garden and back three times (7 min out of range each:
    ``device_offline`` raised and cleared each time), then falls indoors and presses cancel
    on the band. The band's counter runs on while it is away; the fall detector dates every
    sample by it, raises the fall at its impact and withdraws it on the cancel."""
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        band, clock = rig.world[BAND], rig.clock
        detector = FallAlerts(clock, FallSettings())
        health = DeviceHealth(clock, Home([Resident("p1")], [BAND_DEVICE]))
        events: list[Event] = []
        t0 = clock.monotonic()

        def tick() -> None:
            while (due := detector.next_deadline()) is not None and due <= clock.monotonic():
                events.extend(detector.on_tick())
            if (due := health.next_deadline()) is not None and due <= clock.monotonic():
                events.extend(health.on_tick())

        def feed(reading: Reading) -> None:
            events.extend(health.on_reading(reading, BAND_DEVICE))
            events.extend(detector.on_reading(reading, BAND_DEVICE))
            tick()

        async def stream(samples: np.ndarray) -> None:
            for start in range(0, len(samples), 25):
                chunk = samples[start : start + 25]
                clock.advance(len(chunk) / 50)
                taken_by_now = round((clock.monotonic() - t0) * 50)
                band.lose_samples(taken_by_now - len(chunk) - band.counter)  # sampled meanwhile
                await band.send_motion(chunk)
                feed(await rig.next_reading(lambda r: "acc" in r.values))

        still = np.tile([0.0, 0.0, 1.0], (500, 1))
        await rig.linked("band-1")
        for trip in range(3):
            await stream(still)
            await band.drop_connection()  # down the garden path
            await band.stop_advertising()
            for _ in range(42):  # 7 min
                clock.advance(10)
                tick()
            await band.advertise()  # back indoors
            await rig.linked("band-1", connects=trip + 2)
            for reading in taken(rig):
                feed(reading)
        samples, peak = real_fall_at_50hz()
        impact = clock.wall() + peak
        pressed = round((peak + 20) * 50)  # lying 11 s after the alert, she presses cancel
        await stream(samples[:pressed])
        await band.press("cancel")
        feed(await rig.next_reading(lambda r: "action" in r.values))
        await stream(samples[pressed:])

        offline = [e.action for e in events if e.type == "device_offline"]
        assert offline == [EventAction.RAISE, EventAction.CLEAR] * 3
        falls = [e for e in events if e.type == "fall"]
        assert [e.action for e in falls] == [EventAction.RAISE, EventAction.CANCEL]
        assert falls[0].t == pytest.approx(impact, abs=0.1)
        assert detector.counters["band_clock_lost"] == 0


@pytest.mark.parametrize(
    ("down_s", "counter_after"),
    [(20.0, 0), (400.0, 10_000_000)],
    ids=["counter-starts-over", "counter-ahead-after-a-long-reboot"],
)
async def test_a_band_that_rebooted_still_dates_a_fall_at_its_impact(
    down_s: float, counter_after: int
) -> None:
    """The band reboots (a battery swapped, a brown-out): its sample counter starts over, or,
    back after a long time, stands ahead of where it was by less than the time away. Neither
    the driver's gap count nor the fall detector's dating by the counter takes the old count
    on: the fall after it is raised once, at its impact."""
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        band, clock = rig.world[BAND], rig.clock
        detector = FallAlerts(clock, FallSettings())
        events: list[Event] = []

        async def stream(samples: np.ndarray) -> None:
            for start in range(0, len(samples), 25):
                clock.advance(0.5)
                await band.send_motion(samples[start : start + 25])
                reading = await rig.next_reading(lambda r: "acc" in r.values)
                events.extend(detector.on_reading(reading, BAND_DEVICE))
                while (due := detector.next_deadline()) is not None and due <= clock.monotonic():
                    events.extend(detector.on_tick())

        await rig.linked("band-1")
        band.counter = 5_000_000  # up for a day
        await stream(np.tile([0.0, 0.0, 1.0], (1000, 1)))
        await band.drop_connection()
        clock.advance(down_s)
        band.counter, band.button_event_id = counter_after, 0
        await rig.linked("band-1", connects=2)
        samples, peak = real_fall_at_50hz()
        impact = clock.wall() + 0.5 - 24 / 50 + peak  # the first batch's first sample + peak
        await stream(samples)
        raised = [e for e in events if e.action is EventAction.RAISE]
        assert [e.type for e in raised] == ["fall"]
        assert raised[0].t == pytest.approx(impact, abs=0.1)


async def test_two_bands_in_one_home_answer_for_their_own_wearers() -> None:
    """A couple, each with a band on one adapter: he falls, she presses cancel on her band
    (to stop her own band's buzzing): his fall stands; his cancel withdraws it. Both links
    stream all along and every batch reaches its own wearer's detector."""
    other = "C0:00:00:00:00:06"
    specs = [
        BleDeviceSpec(BAND, "band-1", "wristband"),
        BleDeviceSpec(other, "band-2", "wristband"),
    ]
    his, hers = BAND_DEVICE, Device("band-2", DeviceKind.WRISTBAND, "p2")
    async with running_rig([("wristband", BAND), ("wristband", other)], specs) as rig:
        clock = rig.clock
        detector = FallAlerts(clock, FallSettings())
        events: list[Event] = []
        await rig.linked("band-1")
        await rig.linked("band-2")
        samples, peak = real_fall_at_50hz()
        still = np.tile([0.0, 0.0, 1.0], (25, 1))
        presses = {
            round((peak + 12) * 50) // 25: ("band-2", other),
            round((peak + 15) * 50) // 25: ("band-1", BAND),
        }
        for k, start in enumerate(range(0, len(samples), 25)):
            clock.advance(0.5)
            await rig.world[BAND].send_motion(samples[start : start + 25])
            await rig.world[other].send_motion(still)
            for _ in range(2):
                reading = await rig.next_reading(lambda r: "acc" in r.values)
                events.extend(
                    detector.on_reading(reading, his if reading.device == "band-1" else hers)
                )
            if k in presses:
                device_id, address = presses[k]
                await rig.world[address].press("cancel")
                reading = await rig.next_reading(lambda r: "action" in r.values)
                assert reading.device == device_id
                events.extend(detector.on_reading(reading, his if device_id == "band-1" else hers))
            while (due := detector.next_deadline()) is not None and due <= clock.monotonic():
                events.extend(detector.on_tick())
        assert [(e.type, e.action, e.resident) for e in events] == [
            ("fall", EventAction.RAISE, "p1"),
            ("fall", EventAction.CANCEL, "p1"),
        ]
        assert detector.counters["alerts_cancelled"] == 1
