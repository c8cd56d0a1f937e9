"""The BLE driver against simulated peripherals on bumble's virtual controller, through bleak
with the bumble backend classes: the same driver and bleak code path as on the Pi."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import numpy as np
import pytest
from bleak.exc import BleakDBusError

from drivers.ble.base import Advertisement
from drivers.ble.driver import LINK_HEALTHY_AFTER_S, BleDeviceSpec, BleDriver, specs_from_devices
from gateway.clock import SimClock
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.model import Device, DeviceKind, Event, EventAction, Reading
from simulators.ble import start_ble_world
from tests.drivers.ble.conftest import BAND, BED, BUTTON, DOOR, HR_BAND, running_rig
from tests.support.falls import real_fall_at_50hz

pytestmark = pytest.mark.ble

ALL = [
    ("wristband", BAND),
    ("heart_rate", HR_BAND),
    ("bed", BED),
    ("door", DOOR),
    ("button", BUTTON),
]


async def test_every_kind_of_device_reaches_the_sink(specs) -> None:
    async with running_rig(ALL, specs) as rig:
        band, hr, bed, door, button = (rig.world[a] for _, a in ALL)
        status = await rig.next_reading(lambda r: r.device == "band-1")
        assert status.values == {"worn": True, "battery": 87}  # read on connect
        battery = await rig.next_reading(lambda r: r.device == "hr-1")
        assert battery.values == {"battery": 90}

        await rig.until(
            lambda: all(link["connected"] for link in rig.driver.diagnostics()["links"].values())
        )
        samples = np.linspace(-2, 2, 75).reshape(25, 3)
        await band.send_motion(samples)
        motion = await rig.next_reading(lambda r: "acc" in r.values)
        assert motion.device == "band-1"
        np.testing.assert_allclose(motion.values["acc"], samples, atol=8 / 32768)
        assert (motion.values["fs"], motion.values["seq"], motion.values["gap"]) == (50.0, 0, 0)
        assert motion.t == pytest.approx(rig.clock.wall() - 24 / 50)  # first sample's time

        await band.press("sos")
        assert (await rig.next_reading(lambda r: "action" in r.values)).values == {"action": "sos"}
        await hr.send_heart_rate(72, rr_intervals_s=[0.8, 0.82], contact=False)
        beat = await rig.next_reading(lambda r: r.device == "hr-1")
        assert beat.values["hr"] == 72 and beat.values["worn"] is False
        assert beat.values["rr_intervals"] == pytest.approx([0.8, 0.82], abs=1e-3)
        await bed.send(True, hr=58, rr=14.5, movement=3)
        assert (await rig.next_reading(lambda r: r.device == "bed-1")).values == {
            "occupied": True,
            "hr": 58,
            "rr": 14.5,
            "movement": 3,
        }

        await door.set_open(True)
        opened = await rig.next_reading(lambda r: r.device == "front-door" and r.get("open"))
        assert opened.values["battery"] == 100
        await button.press("double")
        pressed = await rig.next_reading(
            lambda r: r.device == "sos-button" and "action" in r.values
        )
        assert pressed.values["action"] == "double"


async def test_second_button_gets_its_suffix_and_repeats_are_dropped() -> None:
    specs = [BleDeviceSpec(BUTTON, "remote")]
    async with running_rig([], specs) as rig:
        remote = rig.world.add("button", BUTTON, buttons=2)
        await remote.start()
        await remote.press("long", button=2)
        reading = await rig.next_reading(lambda r: "action" in r.values)
        assert (reading.device, reading.values["action"]) == ("remote:2", "long")
        # the sensor keeps re-advertising the same packet: no second reading
        before = rig.driver.counters["advertisements"]
        await rig.until(lambda: rig.driver.counters["advertisements"] > before + 20)
        assert all("action" not in r.values for r in rig.pending + drain(rig.readings))


async def test_encrypted_bthome_needs_its_key() -> None:
    key = bytes(range(16))
    specs = [BleDeviceSpec(DOOR, "door-ok", bthome_key=key), BleDeviceSpec(BUTTON, "no-key")]
    async with running_rig([], specs) as rig:
        keyed = rig.world.add("door", DOOR, key=key)
        unkeyed = rig.world.add("door", BUTTON, key=bytes(16))
        await keyed.start()
        await unkeyed.start()
        await keyed.set_open(True)
        assert (await rig.next_reading(lambda r: r.get("open"))).device == "door-ok"
        await rig.until(lambda: rig.driver.counters["decode_errors"] > 0)


async def test_unknown_addresses_are_counted_and_ignored() -> None:
    async with running_rig([("door", DOOR)], [BleDeviceSpec(BAND, "band-1", "wristband")]) as rig:
        await rig.until(lambda: rig.driver.counters["advertisements_unknown"] >= 5)
        assert rig.driver.diagnostics()["unknown_addresses"] == 1
        assert rig.readings.empty()


async def test_peripheral_dropping_mid_stream_reconnects_and_reports_the_gap() -> None:
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        band = rig.world[BAND]
        await rig.linked("band-1")
        await band.send_motion(np.zeros((25, 3)))
        first = await rig.next_reading(lambda r: "acc" in r.values)
        assert (first.values["seq"], first.values["gap"]) == (0, 0)

        await band.drop_connection()
        band.lose_samples(40)  # sampled while the link was down
        await rig.until(lambda: rig.driver.diagnostics()["links"]["band-1"]["drops"] == 1)
        await rig.linked("band-1", connects=2)  # after a backoff on the SimClock

        await band.send_motion(np.zeros((25, 3)))
        after = await rig.next_reading(lambda r: "acc" in r.values)
        assert (after.values["seq"], after.values["gap"]) == (65, 40)
        link = rig.driver.diagnostics()["links"]["band-1"]
        assert (link["connects"], link["drops"], link["samples_missed"]) == (2, 1, 40)

        await band.resend_last_press()  # nothing pressed yet: an empty value, decode error
        await band.press("sos")
        await band.resend_last_press()  # the band re-sends: not a second press
        await band.press("cancel")
        actions = [
            (await rig.next_reading(lambda r: "action" in r.values)).values["action"]
            for _ in range(2)
        ]
        assert actions == ["sos", "cancel"]
        assert rig.driver.diagnostics()["links"]["band-1"]["duplicate_presses"] == 1


async def test_an_sos_after_a_band_reboot_gets_through() -> None:
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        band = rig.world[BAND]
        await rig.linked("band-1")
        await band.press("sos")  # the installer's test press, event id 1
        assert (await rig.next_reading(lambda r: "action" in r.values)).values["action"] == "sos"
        rig.clock.advance(4 * 3600)
        await band.drop_connection()  # the band reboots: its RAM counters start over
        band.button_event_id = 0
        band.counter = 0
        await rig.linked("band-1", connects=2)
        await band.press("sos")  # a real emergency, event id 1 again
        assert (await rig.next_reading(lambda r: "action" in r.values)).values["action"] == "sos"
        assert rig.driver.diagnostics()["links"]["band-1"]["duplicate_presses"] == 0


async def test_a_device_missing_its_characteristics_is_counted_and_retried() -> None:
    # a heart-rate band configured as a wristband: no wristband service
    specs = [BleDeviceSpec(HR_BAND, "band-1", "wristband")]
    async with running_rig([("heart_rate", HR_BAND)], specs) as rig:
        await rig.until(lambda: rig.driver.connection_failures.get("gatt", 0) >= 2, advance_s=5)
        assert rig.driver.diagnostics()["links"]["band-1"]["connected"] is False


async def test_watchdog_restarts_a_silent_scanner() -> None:
    async with running_rig([("door", DOOR)], [BleDeviceSpec(DOOR, "front-door")]) as rig:
        door = rig.world[DOOR]
        await rig.next_reading()
        await door.stop_advertising()
        rig.clock.advance(60)  # quiet, but not yet for long enough
        await rig.until(lambda: rig.driver.diagnostics()["silent_for_s"] >= 60)
        assert rig.driver.counters["watchdog_restarts"] == 0
        await rig.until(lambda: rig.driver.counters["watchdog_restarts"] == 1, advance_s=10)
        await rig.until(lambda: rig.driver.counters["scan_starts"] == 2)
        heard = rig.driver.counters["advertisements"]
        await door.advertise()
        await rig.until(lambda: rig.driver.counters["advertisements"] > heard)
        recovery = rig.driver.diagnostics()["recovery"]
        assert recovery["failures"] == {"silent": 1}
        assert recovery["consecutive_restarts"] == 0  # heard again: back to the first rung


async def test_connected_gatt_devices_do_not_trip_the_watchdog() -> None:
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        await rig.linked("band-1")
        for _ in range(10):
            rig.clock.advance(60)  # the band is connected, so it does not advertise
            await rig.until(lambda: True)
        assert rig.driver.counters["watchdog_restarts"] == 0


async def test_bluez_errors_climb_the_recovery_ladder() -> None:
    async with running_rig([("door", DOOR)], [BleDeviceSpec(DOOR, "front-door")]) as rig:
        adapter = rig.world.adapter
        await rig.next_reading()
        for _ in range(3):
            adapter.fail_next("scan_start", BleakDBusError("org.bluez.Error.InProgress", []))
        adapter.unplug()  # the scan goes quiet; the first restart finds the adapter gone
        await rig.until(lambda: adapter.resets >= 1, advance_s=10)
        await rig.until(lambda: rig.driver.scanning, advance_s=1)
        await rig.next_reading(lambda r: r.device == "front-door")
        failures = rig.driver.diagnostics()["recovery"]["failures"]
        assert failures["silent"] == 1 and failures["adapter_gone"] >= 1
        assert rig.driver.counters["adapter_resets"] >= 1
        assert not rig.driver.diagnostics()["degraded"]


async def test_an_adapter_that_stays_gone_is_degraded_then_recovers() -> None:
    async with running_rig([("door", DOOR)], [BleDeviceSpec(DOOR, "front-door")]) as rig:
        adapter = rig.world.adapter
        await rig.next_reading()
        adapter.reset_revives = False
        adapter.unplug()
        assert rig.driver.problems() == {}
        await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
        assert rig.driver.counters["adapter_reset_failures"] >= 2
        # the gateway's problem to report (gateway_degraded), not only a diagnostic
        assert [cause for cause, _ in rig.driver.problems().values()] == ["ble_adapter"]
        adapter.reset_revives = True  # someone replugged the dongle
        await rig.until(lambda: rig.driver.scanning, advance_s=30)
        await rig.next_reading(lambda r: r.device == "front-door")
        assert not rig.driver.diagnostics()["degraded"]
        assert rig.driver.problems() == {}


def test_specs_from_configured_devices() -> None:
    devices = [
        Device("band-1", DeviceKind.WRISTBAND, "p1", options={"ble_address": BAND.lower()}),
        Device(
            "door", DeviceKind.DOOR, "p1", options={"ble_address": DOOR, "bthome_key": "00" * 16}
        ),
        Device("bed-mqtt", DeviceKind.BED, "p1"),
    ]
    specs = specs_from_devices(devices)
    assert specs == [
        BleDeviceSpec(BAND, "band-1", "wristband", kind=DeviceKind.WRISTBAND),
        BleDeviceSpec(DOOR, "door", None, bytes(16), kind=DeviceKind.DOOR),
    ]


def drain(queue):
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_a_fall_whose_notifications_a_stalled_host_hands_over_together_is_alerted() -> None:
    """End to end through bumble's virtual link, bleak and the driver, into the fall detector
    on the same clock: a real fall sent in 10-sample notifications while the host is stalled
    for 1 s around the impact, so the driver stamps five of them at one moment. Dated by the
    band's counter, every sample keeps its place and the fall is raised at its impact (dated
    on arrival they overlapped, samples were dropped as repeats and the grid no longer
    matched the samples sent, and this fall was dated 0.6 s late; with the synthetic falls in
    tests/detection such a stall lost the fall)."""
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        band = rig.world[BAND]
        await rig.linked("band-1")
        detector = FallAlerts(rig.clock, FallSettings())
        device = Device("band-1", DeviceKind.WRISTBAND, "p1")
        samples, peak = real_fall_at_50hz()
        impact_batch = round(peak * 50) // 10
        stalled = range(impact_batch - 2, impact_batch + 3)
        start = rig.clock.wall()
        events: list[Event] = []

        def run_deadlines() -> None:
            while (due := detector.next_deadline()) is not None and due <= rig.clock.monotonic():
                events.extend(detector.on_tick())

        for k, i in enumerate(range(0, samples.shape[0], 10)):
            if k not in stalled:
                rig.clock.advance(0.2)
            elif k == stalled[0]:
                rig.clock.advance(0.2 * len(stalled))  # the host wakes: all arrive now
            await band.send_motion(samples[i : i + 10])
            reading = await rig.next_reading(lambda r: "acc" in r.values)
            events.extend(detector.on_reading(reading, device))
            run_deadlines()
        for _ in range(60):
            rig.clock.advance(0.2)
            run_deadlines()
        raised = [e for e in events if e.action is EventAction.RAISE]
        assert [e.type for e in raised] == ["fall"]
        assert raised[0].t - start == pytest.approx(peak, abs=0.1)
        slot = detector.diagnostics()["wristbands"] - 1
        assert samples.shape[0] - int(detector.ring.written[slot]) in (0, 1)


async def test_a_hung_scan_stop_is_bounded_and_reported() -> None:
    async with running_rig(
        [("door", DOOR)], [BleDeviceSpec(DOOR, "front-door")], scan_stop_timeout_s=0.01
    ) as rig:
        adapter, door = rig.world.adapter, rig.world[DOOR]
        await rig.next_reading()
        await door.stop_advertising()
        adapter.hang("scan_stop")  # bluetoothd stops answering StopDiscovery
        await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
        assert rig.driver.counters["scan_call_timeouts"] >= 3
        assert adapter.resets >= 2
        assert [cause for cause, _ in rig.driver.problems().values()] == ["ble_adapter"]
        adapter.hang("scan_stop", False)
        await door.advertise()
        await rig.until(lambda: not rig.driver.diagnostics()["degraded"], advance_s=30)
        assert rig.driver.problems() == {}


async def test_one_slow_scan_stop_in_a_quiet_home_climbs_one_step_only() -> None:
    """The resident is out with the only band, and one StopDiscovery is slow (a loaded Pi):
    the suspicion it raised was cleared only by an advertisement, which a quiet home does
    not send, so the adapter was reset twice and reported degraded."""
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs, scan_stop_timeout_s=0.05) as rig:
        band = rig.world[BAND]
        await rig.linked("band-1")
        await band.drop_connection()
        await band.stop_advertising()
        rig.world.adapter.hang("scan_stop")
        await rig.until(lambda: rig.driver.counters["scan_call_timeouts"] >= 1, advance_s=10)
        rig.world.adapter.hang("scan_stop", False)  # every later call is prompt
        restarts = rig.driver.counters["quiet_restarts"]
        await rig.until(lambda: rig.driver.counters["quiet_restarts"] >= restarts + 5, advance_s=10)
        assert not rig.driver.diagnostics()["degraded"]
        assert rig.world.adapter.resets <= 1 and rig.driver.problems() == {}


async def test_a_hung_scan_start_is_bounded_and_reported() -> None:
    async with running_rig(
        [("door", DOOR)], [BleDeviceSpec(DOOR, "front-door")], scan_start_timeout_s=0.01
    ) as rig:
        adapter = rig.world.adapter
        adapter.hang("scan_start")
        await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
        assert rig.driver.diagnostics()["recovery"]["failures"]["adapter_gone"] >= 3
        assert rig.driver.problems()
        adapter.hang("scan_start", False)
        await rig.until(lambda: rig.driver.scanning, advance_s=30)  # the next reset is due
        await rig.next_reading(lambda r: r.device == "front-door")
        assert rig.driver.problems() == {}


async def test_resident_out_with_the_only_band_is_not_an_adapter_problem() -> None:
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        band = rig.world[BAND]
        await rig.linked("band-1")
        await band.drop_connection()  # she walks out of range with it
        await band.stop_advertising()
        await rig.until(lambda: rig.driver.counters["quiet_restarts"] >= 10, advance_s=10)
        assert rig.world.adapter.resets == 0  # no power-cycle of a healthy adapter
        assert rig.driver.problems() == {}
        await band.advertise()  # she is back
        await rig.linked("band-1", connects=2)


async def test_a_lone_event_driven_button_is_not_an_adapter_problem() -> None:
    async with running_rig([], [BleDeviceSpec(BUTTON, "sos-button")]) as rig:
        await rig.until(lambda: rig.driver.counters["quiet_restarts"] >= 10, advance_s=10)
        assert rig.world.adapter.resets == 0
        assert rig.driver.problems() == {}


async def test_a_periodic_advertiser_gone_quiet_still_climbs_to_an_adapter_reset() -> None:
    """A scanner that stops delivering: a stationary periodic advertiser heard before falls
    silent, which a quiet home cannot explain."""
    specs = [BleDeviceSpec(DOOR, "front-door", periodic=True)]
    async with running_rig([("door", DOOR)], specs) as rig:
        door = rig.world[DOOR]
        await rig.next_reading()
        await door.stop_advertising()
        await rig.until(lambda: rig.world.adapter.resets >= 1, advance_s=10)
        assert rig.driver.counters["quiet_restarts"] == 0
        await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
        await door.advertise()
        await rig.until(lambda: not rig.driver.diagnostics()["degraded"], advance_s=30)


def test_beds_are_periodic_advertisers_worn_devices_and_buttons_are_not() -> None:
    devices = [
        Device("bed-1", DeviceKind.BED, "p1", options={"ble_address": BED}),
        Device("band-1", DeviceKind.WRISTBAND, "p1", options={"ble_address": BAND}),
        Device("sos", DeviceKind.BUTTON, "p1", options={"ble_address": BUTTON}),
    ]
    assert [spec.periodic for spec in specs_from_devices(devices)] == [True, False, False]


async def test_a_link_that_drops_at_once_backs_off_and_a_healthy_one_resets_it() -> None:
    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs, watchdog_timeout_s=1e6) as rig:
        band = rig.world[BAND]

        def attempts() -> int:
            return rig.driver.diagnostics()["backend"]["connect_attempts"]

        async def drop_and_time_the_next_attempt() -> float:
            """Simulated seconds from a drop to the next connection attempt; time stands
            still while a connection is being set up (that takes real time on bumble)."""
            before = attempts()
            await band.drop_connection()
            dropped_at = rig.clock.monotonic()
            await rig.until(lambda: not rig.driver.diagnostics()["links"]["band-1"]["connected"])
            for _ in range(1000):  # 250 s at most
                if attempts() > before:
                    break
                rig.clock.advance(0.25)
                for _ in range(10):  # let the woken connection loop reach connect()
                    await asyncio.sleep(0)
            waited = rig.clock.monotonic() - dropped_at
            await rig.until(lambda: rig.driver.diagnostics()["links"]["band-1"]["connected"])
            return waited

        await rig.linked("band-1")
        waits = [await drop_and_time_the_next_attempt() for _ in range(6)]  # drops at once
        assert waits[0] <= 1.25 and waits[-1] >= 16  # 1, 2, 4 ... 32 s, each halved at worst
        rig.clock.advance(LINK_HEALTHY_AFTER_S)  # this time the link holds
        assert await drop_and_time_the_next_attempt() <= 1.25  # back to the first wait


def test_the_bleak_backend_keeps_configured_and_the_most_recent_devices() -> None:
    """Phones in a block of flats advertise from ever new random addresses: every one was
    kept for good. An address a client was made for is kept, and the most recent others (the
    driver makes a band's client once it heard it)."""
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from drivers.ble.bleak_backend import RECENT_DEVICES, BleakBackend

    backend = BleakBackend()
    scanner = backend.scanner()
    backend.client("aa:bb:cc:dd:ee:01", lambda: None)
    data = AdvertisementData(None, {0x4C: b"\x10\x05"}, {}, [], None, -90, ())
    for i in range(5_000):
        address = f"4{i % 10}:00:00:00:{i >> 8 & 255:02X}:{i & 255:02X}"
        scanner._on_detection(BLEDevice(address, None, None), data)
        if i == 2_500:
            scanner._on_detection(BLEDevice("AA:BB:CC:DD:EE:01", "band", None), data)
    assert len(backend._devices) == RECENT_DEVICES + 1
    assert "AA:BB:CC:DD:EE:01" in backend._devices  # heard 2,500 advertisers ago, kept
    assert backend.counters["advertisements"] == 5_001


async def test_the_driver_stops_although_a_library_swallowed_its_cancellation() -> None:
    """A scan start is under way when the gateway stops, and the call swallows the
    cancellation (Python 3.11's wait_for, which bumble's HCI commands use): the scan loop
    went on into a new session and the driver never ended (the test suite hung on it)."""
    world = await start_ble_world([])
    world.adapter.swallow_cancel("scan_start")
    driver = BleDriver(world.backend(), SimClock(), [BleDeviceSpec(BUTTON, "sos-button")])

    async def sink(reading: Reading) -> None:
        return None

    task = asyncio.create_task(driver.run(sink))
    try:
        for _ in range(100):
            await asyncio.sleep(0)  # let it reach the scan start
        driver.stop()
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()
    finally:
        task.cancel()  # a second cancellation ends a hung session
        await asyncio.wait({task}, timeout=10)
        await world.close()


async def test_the_driver_stops_although_its_sink_swallowed_the_cancellation() -> None:
    """The gateway stops while a reading is being handed on, and the sink swallows the
    cancellation (aiomqtt's wait for a PUBACK uses Python 3.11's wait_for; the BLE bridge of
    ``simulate --ble`` publishes there): the forward loop went back to waiting for the next
    reading and the driver never ended (``simulate --ble`` hung in CI)."""
    world = await start_ble_world([("button", BUTTON)])
    driver = BleDriver(world.backend(), SimClock(), [BleDeviceSpec(BUTTON, "sos-button")])
    handing_on = asyncio.Event()

    async def sink(reading: Reading) -> None:
        handing_on.set()
        # the PUBACK and the cancellation crossed
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()

    task = asyncio.create_task(driver.run(sink))
    try:
        await world[BUTTON].press()
        await asyncio.wait_for(handing_on.wait(), 10)
        driver.stop()
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        assert task.cancelled()
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        await world.close()


# --- the ambient radio as evidence against a scanner that locked up ---

# not configured: the neighbours' phones and TV
NEIGHBOURS = ["4E:00:00:00:00:01", "4E:00:00:00:00:02", "4E:00:00:00:00:03"]
# a home with no periodic advertiser: the band is out with the resident, the button only
# advertises when pressed
BUTTON_HOME = [BleDeviceSpec(BAND, "band-1", "wristband"), BleDeviceSpec(BUTTON, "sos-button")]


async def hear_for(rig, seconds: float, step_s: float = 80.0) -> None:
    """Simulated time moves on by ``seconds``, in steps shorter than the watchdog's timeout
    (90 s); after each step the driver hears a few more advertisements (the simulated
    peripherals advertise every 20 ms of real time, in turn), so every neighbour is heard
    several times in every 5-minute bucket."""
    end = rig.clock.monotonic() + seconds
    while rig.clock.monotonic() < end:
        rig.clock.advance(step_s)
        heard = rig.driver.counters["advertisements"]
        await rig.until(lambda n=heard + 9: rig.driver.counters["advertisements"] >= n)


async def deaf_until_degraded(rig) -> None:
    """Steady ambient radio for 70 min, then the scanner locks up for good."""
    await hear_for(rig, 70 * 60)
    assert rig.driver.diagnostics()["ambient_radio_steady"]
    rig.world.adapter.deafen()
    await rig.until(lambda: rig.world.adapter.resets >= 1, advance_s=10)
    assert rig.driver.counters["quiet_restarts"] == 0  # every silence climbed
    assert rig.driver.problems() == {}  # one reset is not yet a problem
    await rig.until(lambda: rig.driver.diagnostics()["degraded"], advance_s=10)
    assert rig.world.adapter.resets >= 2  # the evidence held after the resets
    assert rig.driver.diagnostics()["ambient_radio_steady"]  # the hour before the silence
    assert [cause for cause, _ in rig.driver.problems().values()] == ["ble_adapter"]


async def test_a_deaf_scanner_amid_steady_ambient_radio_is_reset_then_degraded() -> None:
    """A scanner that locks up in a home without a periodic advertiser: before, it was
    restarted every 2 min and never reset nor reported (an SOS press lost until the button's
    own silence alert, a day later). The neighbours' devices heard steadily for the hour
    before the silence make it evidence against the scanner."""
    async with running_rig([("door", n) for n in NEIGHBOURS], BUTTON_HOME) as rig:
        await deaf_until_degraded(rig)


async def test_a_deaf_scanner_that_a_reset_cures_is_reset_once() -> None:
    async with running_rig([("door", n) for n in NEIGHBOURS], BUTTON_HOME) as rig:
        await hear_for(rig, 70 * 60)
        rig.world.adapter.deafen(until_reset=True)
        heard = rig.driver.counters["advertisements"]
        await rig.until(lambda: rig.world.adapter.resets >= 1, advance_s=10)
        await rig.until(lambda: rig.driver.counters["advertisements"] > heard, advance_s=1)
        await hear_for(rig, 30 * 60)
        assert rig.world.adapter.resets == 1
        assert rig.driver.diagnostics()["recovery"]["consecutive_resets"] == 0
        assert not rig.driver.diagnostics()["degraded"] and rig.driver.problems() == {}


async def test_after_a_deaf_spell_the_ambient_radio_heard_again_clears_it() -> None:
    async with running_rig([("door", n) for n in NEIGHBOURS], BUTTON_HOME) as rig:
        await deaf_until_degraded(rig)
        rig.world.adapter.deafen(False)  # the scanner delivers again (the next reset is due)
        await rig.until(lambda: not rig.driver.diagnostics()["degraded"], advance_s=30)
        assert rig.driver.problems() == {}
        recovery = rig.driver.diagnostics()["recovery"]
        assert (recovery["consecutive_restarts"], recovery["consecutive_resets"]) == (0, 0)
        # the hour before a new silence now holds the deaf spell: no evidence until the
        # ambient radio has been steady for an hour again
        assert not rig.driver.diagnostics()["ambient_radio_steady"]
        button = rig.world.add("button", BUTTON)
        await button.start()
        await button.press("press")
        pressed = await rig.next_reading(lambda r: r.get("action") is not None)
        assert (pressed.device, pressed.values["action"]) == ("sos-button", "press")


@pytest.mark.parametrize(
    ("neighbours", "minutes"),
    [(NEIGHBOURS, 30), (NEIGHBOURS[:2], 70)],
    ids=["three-neighbours-for-half-an-hour", "a-phone-and-a-tv-for-over-an-hour"],
)
async def test_silence_after_unsteady_ambient_radio_is_a_quiet_home(neighbours, minutes) -> None:
    """Ambient radio heard only briefly, or from two devices only, that falls silent (the
    resident goes out with their phone, the TV switches itself off): a quiet home as before,
    one scan restart per silence, no reset."""
    async with running_rig([("door", n) for n in neighbours], BUTTON_HOME) as rig:
        await hear_for(rig, minutes * 60)
        assert not rig.driver.diagnostics()["ambient_radio_steady"]
        for address in neighbours:
            await rig.world[address].stop_advertising()
        await rig.until(lambda: rig.driver.counters["quiet_restarts"] >= 10, advance_s=10)
        assert rig.driver.counters["watchdog_restarts"] == rig.driver.counters["quiet_restarts"]
        assert rig.world.adapter.resets == 0
        assert not rig.driver.diagnostics()["degraded"] and rig.driver.problems() == {}


async def test_a_decoder_bug_is_logged_without_the_bytes_its_exception_quotes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Decoder crashes were logged with ``logger.exception``: the traceback ends with the
    exception's message, which can quote the value being decoded (a heart rate, a name)."""

    class Buggy:
        def to_readings(self, address, name, manufacturer, service, t, now_mono):  # type: ignore[no-untyped-def]
            raise ValueError(f"cannot read {name!r}: {service!r}")

    clock = SimClock()
    spec = BleDeviceSpec("AA:BB:CC:DD:EE:01", "door-1")
    driver = BleDriver(object(), clock, [spec], advertisement_decoder=Buggy())  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG)
    driver._on_advertisement(
        Advertisement("AA:BB:CC:DD:EE:01", "Mary's pendant", -60, {}, {"fcd2": b"\x40\x02\x48"})
    )
    assert driver.counters["decoder_crashes"] == 1
    logged = "\n".join(
        f"{r.getMessage()}\n{logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
    )
    assert "ValueError" in logged and "to_readings" in logged
    assert "Mary" not in logged and "x40" not in logged


@pytest.mark.parametrize(
    ("dbus_error", "body", "kind"),
    [
        # bluetoothd gone (restarting, crashed): no one owns org.bluez on the system bus
        (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            ["The name org.bluez was not provided by any .service files"],
            "adapter_gone",
        ),
        # adapter powered off (rfkill, a reset under way)
        ("org.bluez.Error.NotReady", ["Resource Not Ready"], "not_ready"),
    ],
)
async def test_a_connection_failed_at_the_adapter_is_named_through_the_retry_wrapper(
    dbus_error: str, body: list[str], kind: str
) -> None:
    """bleak-retry-connector's establish_connection re-raises every failure as its own
    BleakConnectionError (``raise ... from exc``): the cause was taken for the peripheral's
    (``device_unreachable``), and a connection failed at the adapter never counted as the
    evidence against the adapter the silence rule looks for."""
    specs = [BleDeviceSpec(BED, "bed-1", "bed", periodic=True)]
    async with running_rig([("bed", BED)], specs) as rig:
        for _ in range(3):  # every attempt establish_connection makes in one driver attempt
            rig.world.adapter.fail_next("connect", BleakDBusError(dbus_error, body))
        await rig.until(lambda: sum(rig.driver.connection_failures.values()) >= 1)
        assert rig.driver.connection_failures == {kind: 1}
        assert rig.driver._adapter_trouble_at is not None
        await rig.linked("bed-1")  # the next attempt, after the backoff, goes through


async def test_a_band_link_that_stays_up_but_delivers_nothing_is_reconnected() -> None:
    """bleak hears of a drop only from BlueZ's Connected property: a bluetoothd that crashed
    or restarted under a connection never sends one, and the band's link looked up for
    good while its SOS presses went nowhere. The band streams its accelerometer, so a
    minute without any notification means a dead link: the driver reconnects."""
    from drivers.ble.profiles import BAND_SILENCE_TIMEOUT_S

    specs = [BleDeviceSpec(BAND, "band-1", "wristband")]
    async with running_rig([("wristband", BAND)], specs) as rig:
        band = rig.world[BAND]
        await rig.linked("band-1")
        await band.send_motion(np.zeros((25, 3)))
        await rig.next_reading(lambda r: "acc" in r.values)
        rig.clock.advance(BAND_SILENCE_TIMEOUT_S - 1)
        await band.send_motion(np.zeros((25, 3)))  # a streaming band keeps the link
        await rig.next_reading(lambda r: "acc" in r.values)
        rig.clock.advance(BAND_SILENCE_TIMEOUT_S - 1)
        await rig.until(lambda: True)
        assert rig.driver.diagnostics()["links"]["band-1"]["silences"] == 0

        rig.clock.advance(2)  # nothing since: the link is given up and made again
        await rig.linked("band-1", connects=2)
        link = rig.driver.diagnostics()["links"]["band-1"]
        assert (link["silences"], link["drops"]) == (1, 0)
        await band.press("sos")
        assert (await rig.next_reading(lambda r: "action" in r.values)).values["action"] == "sos"
