"""The BLE driver: advertisements and GATT notifications in, readings out, for years.

One scan loop and one connection loop per connected (GATT) device, on any
:class:`~drivers.ble.base.BleBackend`:

* **Scanning**: every advertisement from a configured address marks the device as heard (its
  connection loop may try now) and, for advertisement-only devices (BTHome door contacts,
  motion sensors, buttons), is decoded by :class:`drivers.decoders.advertisements.
  AdvertisementDecoder` (BTHome v2 plain and encrypted, de-duplicated by packet id). Unknown
  addresses are counted and ignored.
* **Scanner watchdog**: no advertisement for ``watchdog_timeout_s`` (90 s) while some configured
  device is expected to advertise (any device not currently connected) → stop and restart the
  scan. Failures go up the :class:`~drivers.ble.recovery.RecoveryLadder`: restart scan → reset
  the adapter → degraded (reported in :meth:`BleDriver.diagnostics` and as a
  :meth:`BleDriver.problems` entry, which the gateway raises as ``gateway_degraded``; reset
  retried every 5 min, with a scan running meanwhile if one starts: an SOS button advertises
  its press for a second or two, and anything heard ends the wait without a reset, as the
  evidence that climbed there may be a periodic advertiser that died). Scan start and stop
  are bounded (``SCAN_START_TIMEOUT_S``, ``SCAN_STOP_TIMEOUT_S``): bleak's D-Bus calls have no
  timeout, and a call that never returns counts as ``adapter_gone``.
* **Silence is not a failure by itself**: a home can be quiet (the resident out with the only
  band, an event-driven button alone). Silence only restarts the scan, and climbs the ladder
  only with evidence against the adapter: a configured *periodic* advertiser (``periodic``: a
  stationary device that advertises whenever it is not connected, the bed sensor by default)
  not connected and unheard, either never heard since the adapter came up (start or last
  reset) or heard since and silent now (a scanner that stopped delivering), unless some GATT
  link delivered a value within ``watchdog_timeout_s`` (an adapter that works: the silence is
  that device's own, for device health's ``device_offline``; a dead bed sensor beside a
  notifying band reset the adapter 8 times an hour and held ``device_offline`` back);
  steady ambient radio that stopped (:mod:`drivers.ble.ambient`: advertisements from at least
  three distinct addresses, configured or not - the neighbours' phones and TVs - in every
  5 min of the hour before the silence began; judged on that hour, so it still holds after a
  reset while nothing at all is heard); or a connection attempt that failed at the adapter
  (``adapter_gone``, ``not_ready``) during the scan. A scan that starts cleanly resets the
  ladder, except after silence with evidence (which only an advertisement heard disproves) or
  a scan stop that timed out (until a later stop returns in time: one slow call on a loaded Pi
  climbs one step only). A locked scanner in a home with neither a periodic advertiser nor
  steady ambient radio (a detached house: only its own band and buttons) is still noticed
  only per device, by the device-silence alerts.
* **Connections**: connect when heard, read the profile's initial values, subscribe to its
  notifications; on a drop or failure, wait a jittered exponential backoff on the injected
  clock (reset only by a link that stayed up ``LINK_HEALTHY_AFTER_S``, so a device that drops
  right after connecting is not retried every second), then wait to hear the device advertise
  again before the next attempt (no hammering a band that left the flat).
* **Link silence**: a profile that streams (``silence_timeout_s``: the wristband) and notified
  nothing for that long is disconnected and connected again, as after a drop: bleak hears of
  a drop only from BlueZ, and a bluetoothd that crashed or restarted under a link never
  reports one, so the link looked up for good while the band's presses went nowhere. A value
  read on connect equal to the last one that characteristic handed on is not handed on again
  (``reads_unchanged``): a band whose application hung answers reads from its GATT table, and
  its status read at every reconnection kept ``device_offline`` away for good.
* **Readings to the sink**: queued, and handed on one at a time (the runtime's sink waits while
  its own queue is full). Presses (:func:`gateway.model.is_urgent`, the runtime's rule: an
  ``sos`` from any device, every reading of a button) have a small queue of their own that is
  handed on first, so a press never waits behind a band's queued notifications (counted
  ``presses_ahead``). A full queue drops the newest ordinary reading (``readings_dropped``);
  any other reading carrying an ``action`` (a band's ``cancel``) keeps its place among its
  device's readings, since the fall detector needs a band's cancel after the samples it
  answers, and is never dropped for room: the oldest queued reading without an action is
  given up for it (``readings_evicted``).

``run`` never returns except by cancellation; every failure is counted in ``diagnostics()`` and
logged (by device id and error class; never a reading's values).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from drivers.base import ReadingSink, StopFlag, first_sample_time
from drivers.ble.ambient import AmbientRadio
from drivers.ble.base import Advertisement, BleBackend, BleBackendError, BleErrorKind, BleScanner
from drivers.ble.profiles import PROFILES, CharacteristicUse, GattProfile
from drivers.ble.recovery import (
    SCANNER_WATCHDOG_CHECK_S,
    SCANNER_WATCHDOG_TIMEOUT_S,
    RecoveryLadder,
    RecoveryStep,
)
from drivers.decoders import DecodeError
from gateway.backoff import Backoff
from gateway.clock import Clock
from gateway.errors import crash_site
from gateway.log_limits import RepeatedLines
from gateway.model import Device, DeviceKind, Reading, is_urgent

logger = logging.getLogger(__name__)

READING_QUEUE_SIZE: Final = 4096  # ~80 s of one wristband at 50 notifications/s
# Presses (is_urgent) have a queue of their own, handed on first. A person's presses, each
# band's and BTHome button's re-sends already dropped: it fills only if the sink stays blocked
# for minutes, and the runtime takes a press within ~50 readings.
URGENT_QUEUE_SIZE: Final = 256
RECONNECT_INITIAL_S: Final = 1.0
RECONNECT_MAX_S: Final = 60.0
# A link that stayed up this long was healthy: reconnect without the long backoff. Shorter
# links (a band that drops right after subscribing) keep backing off (as the runtime's
# DRIVER_HEALTHY_AFTER_S does for drivers).
LINK_HEALTHY_AFTER_S: Final = 60.0
LOOP_RESTART_S: Final = 5.0  # after an unexpected error in one of the driver's own loops
DISCONNECT_TIMEOUT_S: Final = 5.0  # real time: BlueZ gives up on a disconnect within ~2 s
# Real time, as D-Bus replies are. StartDiscovery answers within a second or two, even on an
# adapter just powered on; StopDiscovery at once. Beyond these, bluetoothd is wedged.
SCAN_START_TIMEOUT_S: Final = 15.0
SCAN_STOP_TIMEOUT_S: Final = 5.0
# Link failures that say the adapter, not the peripheral, is in trouble.
_ADAPTER_LEVEL: Final = frozenset({BleErrorKind.ADAPTER_GONE, BleErrorKind.NOT_READY})
DEFAULT_PERIODIC_KINDS: Final = frozenset({DeviceKind.BED})
DEFAULT_PROFILE_BY_KIND: Final = {
    DeviceKind.WRISTBAND: "wristband",
    DeviceKind.HEART_RATE: "heart_rate",
    DeviceKind.BED: "bed",
}


@dataclass(frozen=True, slots=True)
class BleDeviceSpec:
    """One configured BLE device. ``profile`` None: advertisements only (BTHome and other
    broadcast sensors); otherwise a GATT profile name from :data:`drivers.ble.profiles.PROFILES`.
    """

    address: str
    device_id: str
    profile: str | None = None
    bthome_key: bytes | None = None
    # stationary and advertising whenever not connected: its silence is evidence against the
    # scanner (see the module docstring)
    periodic: bool = False
    # the configured kind: a button's readings are presses (gateway.model.is_urgent)
    kind: DeviceKind | None = None


def specs_from_devices(devices: Iterable[Device]) -> list[BleDeviceSpec]:
    """BLE specs from configured devices: those with ``options["ble_address"]``. The profile is
    ``options["ble_profile"]`` or follows the kind (wristband, heart_rate, bed connect; others
    only advertise); ``options["bthome_key"]`` is the hex bind key of an encrypted sensor. Beds
    are periodic advertisers; worn devices leave with the resident, and buttons and most
    BTHome sensors advertise only on events."""
    specs = []
    for device in devices:
        address = device.options.get("ble_address")
        if not address:
            continue
        profile = device.options.get("ble_profile", DEFAULT_PROFILE_BY_KIND.get(device.kind))
        key = device.options.get("bthome_key")
        specs.append(
            BleDeviceSpec(
                address=str(address).upper(),
                device_id=device.id,
                profile=None if profile in (None, "advertisement") else str(profile),
                bthome_key=bytes.fromhex(key) if key else None,
                periodic=device.kind in DEFAULT_PERIODIC_KINDS,
                kind=device.kind,
            )
        )
    return specs


@dataclass(slots=True)
class _Link:
    spec: BleDeviceSpec
    profile: GattProfile
    heard: asyncio.Event
    connected: bool = False
    connects: int = 0
    drops: int = 0
    silences: int = 0  # links given up as dead: connected, but nothing came for too long
    last_value_at: float = 0.0  # monotonic, the last value read or notified
    failures: int = 0
    last_error: str | None = None
    # what a characteristic read on connect last handed on (read or notified): a read that
    # says nothing new is no sign of life (see _on_value)
    handed_on: dict[str, bytes] = field(default_factory=dict)
    reads_unchanged: int = 0


class BleDriver(StopFlag):
    name = "ble"

    def __init__(
        self,
        backend: BleBackend,
        clock: Clock,
        devices: Sequence[BleDeviceSpec],
        *,
        watchdog_timeout_s: float = SCANNER_WATCHDOG_TIMEOUT_S,
        watchdog_check_s: float = SCANNER_WATCHDOG_CHECK_S,
        ladder: RecoveryLadder | None = None,
        rng: random.Random | None = None,
        scan_start_timeout_s: float = SCAN_START_TIMEOUT_S,
        scan_stop_timeout_s: float = SCAN_STOP_TIMEOUT_S,
        queue_size: int = READING_QUEUE_SIZE,
        advertisement_decoder: Any = None,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._watchdog_timeout_s = watchdog_timeout_s
        self._watchdog_check_s = watchdog_check_s
        self._ladder = ladder or RecoveryLadder(clock)
        self._scan_start_timeout_s = scan_start_timeout_s
        self._scan_stop_timeout_s = scan_stop_timeout_s
        self._rng = rng or random.Random()
        # for the sink: presses (is_urgent) first; bounded by hand (see _emit)
        self._queue: deque[Reading] = deque()
        self._urgent: deque[Reading] = deque()
        self._queue_size = queue_size
        self._queued = asyncio.Event()
        self._log_limits = RepeatedLines(clock)
        self._specs = {spec.address.upper(): spec for spec in devices}
        self._decoder = advertisement_decoder or self._default_decoder(devices)
        self._links: dict[str, _Link] = {}
        for spec in devices:
            if spec.profile is None:
                continue
            if spec.profile not in PROFILES:
                logger.error(
                    "BLE device %s: unknown profile %r, not connecting",
                    spec.device_id,
                    spec.profile,
                )
                continue
            self._links[spec.address.upper()] = _Link(
                spec, PROFILES[spec.profile](clock), asyncio.Event()
            )
        self.scanning = False
        self._last_advertisement = clock.monotonic()
        self._heard_since_start = False
        # evidence for the silence rule (module docstring)
        self._adapter_up_at = clock.monotonic()
        self._heard_since_adapter_up = False
        self._last_heard: dict[str, float] = {}  # configured addresses only
        self._ambient = AmbientRadio()  # every address: was the radio steady before a silence?
        self._scan_started_at = clock.monotonic()
        self._adapter_trouble_at: float | None = None
        self._suspect_scanner = False  # until an advertisement is heard
        self._stop_hung = False  # the last scan stop timed out (until one returns in time)
        self._unknown_addresses: set[str] = set()
        self._rssi: dict[str, int | None] = {}
        self.counters: dict[str, int] = {
            "advertisements": 0,
            "advertisements_unknown": 0,
            "scan_starts": 0,
            "scan_failures": 0,
            "watchdog_restarts": 0,
            "quiet_restarts": 0,
            "scan_call_timeouts": 0,
            "adapter_resets": 0,
            "adapter_reset_failures": 0,
            "readings": 0,
            "readings_dropped": 0,
            "readings_evicted": 0,
            "presses_ahead": 0,
            "presses_dropped": 0,
            "decode_errors": 0,
            "decoder_crashes": 0,
            "sink_errors": 0,
            "loop_crashes": 0,
        }
        self.connection_failures: dict[str, int] = {}

    @staticmethod
    def _default_decoder(devices: Sequence[BleDeviceSpec]) -> Any:
        from drivers.decoders.advertisements import AdvertisementDecoder

        keys = {spec.address.upper(): spec.bthome_key for spec in devices if spec.bthome_key}
        return AdvertisementDecoder(keys=keys)

    # --- the Driver protocol ---

    async def run(self, sink: ReadingSink) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                self._forever("forward", lambda: self._forward(sink)), name="eldergate[ble].forward"
            )
            tasks.create_task(self._forever("scan", self._scan_loop), name="eldergate[ble].scan")
            for link in self._links.values():
                spec = link.spec
                tasks.create_task(
                    self._forever(
                        f"link {spec.device_id}", functools.partial(self._connection_loop, link)
                    ),
                    name=f"eldergate[ble].link[{spec.device_id}]",
                )

    def problems(self) -> dict[str, tuple[str, str]]:
        if not self._ladder.degraded:
            return {}
        reason = f"BLE adapter not recovering after resets: {self._ladder.last_failure}"
        return {"ble_adapter": ("ble_adapter", reason)}

    def diagnostics(self) -> dict[str, Any]:
        return {
            "backend": self._backend.diagnostics(),
            "scanning": self.scanning,
            "silent_for_s": self._clock.monotonic() - self._last_advertisement,
            "recovery": self._ladder.diagnostics(),
            "degraded": self._ladder.degraded,
            "unknown_addresses": len(self._unknown_addresses),
            # steady in the hour before the last advertisement: a silence is evidence
            "ambient_radio_steady": self._ambient.steady_before_last_heard(),
            "connection_failures": dict(self.connection_failures),
            "links": {
                link.spec.device_id: {
                    "connected": link.connected,
                    "connects": link.connects,
                    "drops": link.drops,
                    "silences": link.silences,
                    "reads_unchanged": link.reads_unchanged,
                    "failures": link.failures,
                    "last_error": link.last_error,
                    **link.profile.diagnostics(),
                }
                for link in self._links.values()
            },
            "rssi": dict(self._rssi),
            "queue": len(self._queue) + len(self._urgent),
            **self.counters,
        }

    # --- supervision ---

    async def _forever(self, what: str, loop: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await loop()
            except Exception:
                self._stop_if_asked()
                self.counters["loop_crashes"] += 1
                logger.exception("BLE %s loop failed; restarting it", what)
                await self._clock.sleep(LOOP_RESTART_S)

    async def _forward(self, sink: ReadingSink) -> None:
        while True:
            while not (self._urgent or self._queue):
                self._queued.clear()
                await self._queued.wait()
            reading = (self._urgent or self._queue).popleft()  # a press first
            try:
                await sink(reading)
            except Exception:
                self.counters["sink_errors"] += 1
                logger.exception("BLE reading from %s: the sink failed", reading.device)
            # a sink that publishes (aiomqtt's wait for a PUBACK) can swallow the stop
            self._stop_if_asked()

    def _emit(self, reading: Reading, kind: DeviceKind | None) -> None:
        """Queue ``reading`` (of a device of ``kind``) for the sink; see the module docstring.
        Called from the scanner's and bleak's callbacks, so it cannot wait for room."""
        if is_urgent(reading, kind):
            if len(self._urgent) >= URGENT_QUEUE_SIZE:
                self._drop_press("the press queue is full")
                return
            if self._queue:
                self.counters["presses_ahead"] += 1  # handed on before those queued
            self._urgent.append(reading)
        elif len(self._queue) < self._queue_size:
            self._queue.append(reading)
        elif not _is_press(reading):
            self.counters["readings_dropped"] += 1
            return
        elif not self._evict_for(reading):
            self._drop_press("the reading queue is full of presses")
            return
        self.counters["readings"] += 1
        self._queued.set()

    def _evict_for(self, press: Reading) -> bool:
        """Make room for a press that keeps its place in the full reading queue: give up the
        oldest reading without an action (the order of the others is kept)."""
        for index, queued in enumerate(self._queue):
            if not _is_press(queued):
                del self._queue[index]
                self.counters["readings_evicted"] += 1
                self._queue.append(press)
                return True
        return False

    def _drop_press(self, why: str) -> None:
        self.counters["presses_dropped"] += 1
        suffix = self._log_limits.due(why)
        if suffix is not None:
            logger.error("BLE press dropped: %s%s", why, suffix)

    # --- scanning, watchdog, recovery ---

    async def _scan_loop(self) -> None:
        while True:
            self._stop_if_asked()
            scanner = self._backend.scanner()
            try:
                await self._bounded(scanner.start, "scan start", self._scan_start_timeout_s)
                self._stop_if_asked()
            except BleBackendError as exc:
                self.counters["scan_failures"] += 1
                logger.warning("BLE scan start failed (%s)", exc.kind.value)
                await self._stop_quietly(scanner)
                await self._recover(exc.kind)
                continue
            self.counters["scan_starts"] += 1
            self.scanning = True
            self._heard_since_start = False
            self._last_advertisement = self._scan_started_at = self._clock.monotonic()
            if not self._suspect_scanner and not self._stop_hung:
                self._ladder.succeeded()
            kind = await self._scan_session(scanner)
            self.scanning = False
            try:
                await self._bounded(scanner.stop, "scan stop", self._scan_stop_timeout_s)
            except BleBackendError as exc:
                if exc.kind is BleErrorKind.ADAPTER_GONE:
                    self._stop_hung = True  # a wedged bluetoothd, or one slow call
                    kind = exc.kind
            else:
                self._stop_hung = False  # one slow stop on a loaded Pi climbs one step only
            if kind is BleErrorKind.SILENT and not self._suspect_scanner:
                self.counters["quiet_restarts"] += 1
                self._ladder.failed(kind, escalate=False)
                continue
            await self._recover(kind)

    async def _bounded(
        self, call: Callable[[], Awaitable[None]], what: str, timeout_s: float
    ) -> None:
        """``call()``, or :class:`BleBackendError` ``adapter_gone`` if it does not return in
        time (a wedged bluetoothd never answers)."""
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                await call()
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            self.counters["scan_call_timeouts"] += 1
            logger.error("BLE %s did not return within %.0f s", what, timeout_s)
            raise BleBackendError(BleErrorKind.ADAPTER_GONE, f"{what} hung") from exc

    async def _stop_quietly(self, scanner: BleScanner) -> None:
        with contextlib.suppress(BleBackendError):
            await self._bounded(scanner.stop, "scan stop", self._scan_stop_timeout_s)

    async def _scan_session(self, scanner: BleScanner) -> BleErrorKind:
        """Consume advertisements until the watchdog fires or the scan fails."""
        consume = asyncio.create_task(self._consume(scanner), name="eldergate[ble].consume")
        watchdog = asyncio.create_task(self._watchdog(), name="eldergate[ble].watchdog")
        try:
            done, _ = await asyncio.wait({consume, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (consume, watchdog):
                task.cancel()
            await asyncio.gather(consume, watchdog, return_exceptions=True)
        if watchdog in done:
            self.counters["watchdog_restarts"] += 1
            evidence = self._silence_evidence()
            silent_for = self._clock.monotonic() - self._last_advertisement
            if evidence is None:
                logger.info("BLE nothing heard for %.0f s: restarting the scan", silent_for)
            else:
                self._suspect_scanner = True
                logger.warning(
                    "BLE scanner silent for %.0f s (%s): restarting the scan", silent_for, evidence
                )
            return BleErrorKind.SILENT
        error = consume.exception() if not consume.cancelled() else None
        self.counters["scan_failures"] += 1
        if isinstance(error, BleBackendError):
            logger.warning("BLE scan failed (%s)", error.kind.value)
            return error.kind
        logger.error("BLE scan ended unexpectedly: %r", error)
        return BleErrorKind.OTHER

    async def _watchdog(self) -> None:
        while True:
            await self._clock.sleep(self._watchdog_check_s)
            silent_for = self._clock.monotonic() - self._last_advertisement
            if silent_for > self._watchdog_timeout_s and self._expecting_advertisements():
                return

    def _expecting_advertisements(self) -> bool:
        """A connected peripheral stops advertising: silence is only suspicious when some
        configured device is not connected."""
        return any(
            spec.profile is None or (link := self._links.get(address)) is None or not link.connected
            for address, spec in self._specs.items()
        )

    def _silence_evidence(self) -> str | None:
        """Why this silence is the adapter's fault and not a quiet home, or None."""
        if self._adapter_trouble_at is not None and self._adapter_trouble_at >= (
            self._scan_started_at
        ):
            return "a connection failed at the adapter"
        # a link notifying now says the adapter works: a periodic advertiser's silence is
        # then that device's own, for device health's device_offline
        live = self._link_live()
        for address, spec in self._specs.items():
            link = self._links.get(address)
            if not spec.periodic or live or (link is not None and link.connected):
                continue
            if not self._heard_since_adapter_up:
                return f"nothing heard since the adapter came up, {spec.device_id} expected"
            heard = self._last_heard.get(address)
            if heard is not None and heard >= self._adapter_up_at:
                return f"{spec.device_id} was heard and is silent now"
        if self._ambient.steady_before_last_heard():
            return "steady ambient advertisements stopped"
        return None

    def _link_live(self) -> bool:
        """Some GATT link is up and delivered a value within the watchdog's timeout."""
        since = self._clock.monotonic() - self._watchdog_timeout_s
        return any(link.connected and link.last_value_at >= since for link in self._links.values())

    async def _recover(self, kind: BleErrorKind) -> None:
        self._stop_if_asked()  # after a scan call: bumble's can swallow a stop's cancellation
        step, delay_s = self._ladder.failed(kind)
        logger.warning(
            "BLE recovery: %s after %s (waiting %.0f s)", step.value, kind.value, delay_s
        )
        if self._ladder.degraded:
            if await self._listen(delay_s):
                logger.info("BLE heard again while degraded: no adapter reset")
                return
        elif delay_s > 0:
            await self._clock.sleep(delay_s)
        if step in (RecoveryStep.RESET_ADAPTER, RecoveryStep.DEGRADED):
            self.counters["adapter_resets"] += 1
            try:
                await self._backend.reset_adapter()
            except BleBackendError as exc:
                self.counters["adapter_reset_failures"] += 1
                logger.error("BLE adapter reset failed (%s)", exc.kind.value)
            else:
                self._adapter_up_at = self._clock.monotonic()
                self._heard_since_adapter_up = False

    async def _listen(self, delay_s: float) -> bool:
        """Wait ``delay_s`` (a degraded adapter's time to its next reset) with a scan running if
        one starts: True if anything was heard, which clears the suspicion (an SOS button
        advertises its press for a second or two, and the scanner stopped for those 5 min lost
        it; the evidence that climbed there may be a periodic advertiser that died)."""
        wait = asyncio.ensure_future(self._clock.sleep(delay_s))
        scanner = self._backend.scanner()
        self._heard_since_start = False
        try:
            try:
                await self._bounded(scanner.start, "scan start", self._scan_start_timeout_s)
            except BleBackendError:
                await self._stop_quietly(scanner)
                self._stop_if_asked()
                await wait  # no scan: the wait as it was
                return False
            self._stop_if_asked()  # bumble's HCI commands can swallow a stop's cancellation
            self.scanning = True
            consume = asyncio.create_task(
                self._consume(scanner, until_heard=True), name="eldergate[ble].listen"
            )
            try:
                await asyncio.wait({consume, wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                consume.cancel()
                await asyncio.gather(consume, return_exceptions=True)
                self.scanning = False
                await self._stop_quietly(scanner)
            if not self._heard_since_start:
                self._stop_if_asked()
                await wait  # the scan failed: the rest of the wait
            return self._heard_since_start
        finally:
            wait.cancel()

    async def _consume(self, scanner: BleScanner, *, until_heard: bool = False) -> None:
        async for advertisement in scanner.advertisements():
            self._on_advertisement(advertisement)
            if until_heard:
                return

    def _on_advertisement(self, adv: Advertisement) -> None:
        now = self._clock.monotonic()
        self._last_advertisement = now
        self.counters["advertisements"] += 1
        self._heard_since_adapter_up = True
        if not self._heard_since_start:
            self._heard_since_start = True
            self._suspect_scanner = False
            self._ladder.succeeded()
        address = adv.address.upper()
        self._ambient.heard(now, address)
        spec = self._specs.get(address)
        if spec is not None:
            self._last_heard[address] = now
        if spec is None:
            self.counters["advertisements_unknown"] += 1
            if len(self._unknown_addresses) < 10_000:
                self._unknown_addresses.add(address)
            return
        self._rssi[spec.device_id] = adv.rssi
        link = self._links.get(address)
        if link is not None:
            link.heard.set()
        if spec.profile is not None:
            return  # its data comes over GATT
        try:
            readings = self._decoder.to_readings(
                address,
                adv.name,
                adv.manufacturer_data,
                adv.service_data,
                self._clock.wall(),
                now,
            )
        except DecodeError as exc:
            self.counters["decode_errors"] += 1
            logger.debug("BLE advertisement from %s not decoded: %s", spec.device_id, exc)
            return
        except Exception as exc:
            self.counters["decoder_crashes"] += 1
            logger.error(
                "BLE advertisement decoder crashed on %s: %s", spec.device_id, crash_site(exc)
            )
            return
        for reading in readings:
            suffix = (
                reading.device[len(address) :] if reading.device.upper().startswith(address) else ""
            )
            self._emit(
                Reading(reading.t, spec.device_id + suffix, {**reading.values, "rssi": adv.rssi}),
                spec.kind,
            )

    # --- connections ---

    async def _connection_loop(self, link: _Link) -> None:
        spec = link.spec
        backoff = Backoff(initial_s=RECONNECT_INITIAL_S, maximum_s=RECONNECT_MAX_S, rng=self._rng)
        while True:
            self._stop_if_asked()
            await link.heard.wait()
            link.heard.clear()
            dropped = asyncio.Event()
            client = self._backend.client(spec.address, dropped.set)
            try:
                await client.connect()
                link.last_value_at = self._clock.monotonic()
                await self._subscribe(client, link)
                link.connected = True
                link.connects += 1
                up_since = self._clock.monotonic()
                logger.info("BLE %s connected", spec.device_id)
                if await self._hold(link, dropped):
                    link.silences += 1
                    logger.warning(
                        "BLE %s: nothing notified for %.0f s on a link still up: reconnecting",
                        spec.device_id,
                        self._clock.monotonic() - link.last_value_at,
                    )
                else:
                    link.drops += 1
                    logger.info("BLE %s: link dropped", spec.device_id)
                if self._clock.monotonic() - up_since >= LINK_HEALTHY_AFTER_S:
                    backoff.reset()
            except BleBackendError as exc:
                self._count_failure(link, exc.kind.value)
                if exc.kind in _ADAPTER_LEVEL:
                    self._adapter_trouble_at = self._clock.monotonic()
                logger.warning("BLE %s: %s", spec.device_id, exc.kind.value)
            finally:
                link.connected = False
                # a wedged controller must not hold the loop (or shutdown) forever
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                        await client.disconnect()
            self._stop_if_asked()
            await self._clock.sleep(backoff.next_delay())

    async def _hold(self, link: _Link, dropped: asyncio.Event) -> bool:
        """Wait while the link is up: False once it dropped, True once a profile that streams
        (``silence_timeout_s``) sent nothing for that long. A link can look up and deliver
        nothing: bleak learns of a drop only from BlueZ's ``Connected`` property, and a
        bluetoothd that crashed or restarted never reports one (bleak 3.1's BlueZ manager does
        not watch bluetoothd leave the bus; SignalK/signalk-server#3049)."""
        timeout_s = link.profile.silence_timeout_s
        if timeout_s is None:
            await dropped.wait()
            return False
        drop = asyncio.ensure_future(dropped.wait())
        try:
            while not dropped.is_set():
                silent_for = self._clock.monotonic() - link.last_value_at
                if silent_for >= timeout_s:
                    return True
                tick = asyncio.ensure_future(self._clock.sleep(timeout_s - silent_for))
                try:
                    await asyncio.wait({drop, tick}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    tick.cancel()
            return False
        finally:
            drop.cancel()

    def _count_failure(self, link: _Link, kind: str) -> None:
        link.failures += 1
        link.last_error = kind
        self.connection_failures[kind] = self.connection_failures.get(kind, 0) + 1

    async def _subscribe(self, client: Any, link: _Link) -> None:
        for use in link.profile.characteristics():
            if not client.has_characteristic(use.uuid):
                if use.required:
                    raise BleBackendError(BleErrorKind.GATT, f"no characteristic {use.uuid}")
                continue
            if use.read_on_connect:
                self._on_value(link, use, await client.read(use.uuid), read=True)
            if use.notify:
                await client.start_notify(use.uuid, functools.partial(self._on_value, link, use))

    def _on_value(
        self, link: _Link, use: CharacteristicUse, value: bytes, *, read: bool = False
    ) -> None:
        """A value notified, or ``read`` on connect. A read equal to what that characteristic
        last handed on is not handed on again: a band whose application hung keeps its link
        and answers reads from its GATT table, and its status read at every reconnection
        (the silent link given up every ``silence_timeout_s``) kept device health from ever
        saying ``device_offline``."""
        link.last_value_at = self._clock.monotonic()  # any value: the link is alive
        if read and link.handed_on.get(use.uuid) == value:
            link.reads_unchanged += 1
            return
        try:
            values = use.handle(value)
        except DecodeError as exc:
            self.counters["decode_errors"] += 1
            logger.debug("BLE %s: bad value on %s: %s", link.spec.device_id, use.uuid, exc)
            return
        except Exception as exc:
            self.counters["decoder_crashes"] += 1
            logger.error(
                "BLE %s: decoder crashed on %s: %s", link.spec.device_id, use.uuid, crash_site(exc)
            )
            return
        if values is None:
            return
        if use.read_on_connect:
            link.handed_on[use.uuid] = bytes(value)
        t = first_sample_time(self._clock.wall(), values)
        self._emit(Reading(t, link.spec.device_id, values), link.spec.kind)


def _is_press(reading: Reading) -> bool:
    return isinstance(reading.get("action"), str)


def address_map(devices: Mapping[str, str]) -> list[BleDeviceSpec]:
    """Advertisement-only specs from a plain ``address -> device id`` mapping."""
    return [BleDeviceSpec(address.upper(), device_id) for address, device_id in devices.items()]


__all__ = ["BleDeviceSpec", "BleDriver", "address_map", "specs_from_devices"]
