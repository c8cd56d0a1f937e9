"""Wiring and supervision, nothing else.

    drivers ──► bounded reading queue ──► pipeline (detectors → alert manager)
                                              │ alert changes, committed first
                                              ▼
    platform ◄── forwarder ◄──────────── durable outbox
        └──────── commands (ack, resolve, visit) ──► alert manager ──► outbox

Each driver runs under a supervisor: an exception is logged with its traceback, counted, and the
driver restarted with backoff; a driver never takes the gateway down. A driver that keeps
failing, or that reports a problem of its own (``Driver.problems``), is a gateway problem
(:meth:`Runtime.problems`): once it lasts, ``gateway_degraded`` tells the platform that part of
the home cannot be heard. The processing loop waits on the injected clock, so tests drive it
with a :class:`SimClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from alerts.forwarder import Forwarder
from alerts.forwarders.base import PlatformLink
from alerts.manager import AlertChange, AlertManager
from alerts.outbox import ALERT, SUMMARY, AsyncOutbox, Message, Outbox
from alerts.protocol import CommandError, Topics, encode, parse_command
from alerts.state import alerts_of, held_of, records_of, take_over_legacy_file, visits_of
from alerts.summary import DailySummary
from drivers.base import Driver
from gateway import systemd
from gateway.backoff import Backoff
from gateway.clock import Clock
from gateway.detection.base import DeafPeriods, Home
from gateway.detection.gateway_health import GatewayHealth
from gateway.detectors import build_detectors, close_detectors
from gateway.errors import EldergateError, crash_site
from gateway.log_limits import RepeatedLines
from gateway.model import Reading, Severity
from gateway.pipeline import Pipeline
from gateway.settings import Settings

log = logging.getLogger(__name__)

READING_QUEUE_SIZE = 10_000
# Presses (Pipeline.is_urgent) have a queue of their own, taken first: a full reading queue
# of wristband notifications is ~0.5 s of work on a PC and 2-4 s on a Pi
# (bench/sos_behind_flood.py), too long for an SOS to wait behind.
URGENT_QUEUE_SIZE = 1_000
# While draining, the loop lets the drivers run every so many readings (a press still in a
# driver, or one waiting for room, reaches the urgent queue) and ends a round after a full
# queue's worth (a steady overload must not starve the ticks and the watchdog).
DRAIN_YIELD_EVERY = 50
# A driver that ran this long before failing was healthy: restart it without the long backoff.
DRIVER_HEALTHY_AFTER_S = 60.0
# A failing driver is tried again at least this often: its device is in the home (the loopback
# broker, the BLE adapter, the bed's own HTTP), so a try costs nothing, and once the cause is
# gone every minute more of backoff is a minute an SOS press goes unheard. The uplink to the
# platform, shared with every other gateway, backs off further (UPLINK_BACKOFF_MAX_S).
DRIVER_BACKOFF_MAX_S = 30.0
UPLINK_BACKOFF_MAX_S = 300.0
# A stop asked for by systemd (an update, a reboot, a shutdown) waits at most this long for a
# fall being decided and for the alerts queued to reach the platform: the samples that decide
# a fall are in memory only (a restart inside the confirmation window lost the fall), and an
# alert left queued at a shutdown waited for the next start. Looked at every STOP_POLL_S.
STOP_GRACE_S = 15.0
STOP_POLL_S = 0.2


def _queued_alert_ids(outbox: Outbox) -> set[str]:
    """The ids of the alerts that have a message waiting in the outbox."""
    ids = set()
    for item in outbox.pending(1_000_000):
        if item.kind == ALERT:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                ids.add(str(json.loads(item.payload)["id"]))
    return ids


class Runtime:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        link: PlatformLink | None,
        drivers: Sequence[Driver] = (),
        state_dir: Path | None = None,
        backoff_factory: Callable[[], Backoff] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.link = link
        self.drivers = list(drivers)
        self.state_dir = Path(state_dir or settings.gateway.storage_path)
        self.backoff_factory = backoff_factory or (lambda: Backoff(1.0, DRIVER_BACKOFF_MAX_S))
        gw = settings.gateway
        self.topics = Topics(
            settings.platform.topic_prefix if settings.platform else "eldergate", gw.id
        )
        self.home = Home(settings.residents_model(), settings.devices_model())
        self.manager = AlertManager(
            gw.id,
            clock,
            gw.languages,
            settings.alerts.repeat_window_s,
            {
                Severity.CRITICAL: settings.alerts.escalate_critical_after_s,
                Severity.HIGH: settings.alerts.escalate_high_after_s,
            },
            settings.alerts.visit_max_h * 3600.0,
            settings.alerts.flap_hold_s,
        )
        learned_dir: Path | None = self.state_dir
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # A typo, a path the service may not write (ProtectSystem=strict) or a card
            # read-only before the first start: the alerts still go out, held in memory.
            learned_dir = None
            log.error(
                "STORAGE FOLDER CANNOT BE MADE: gateway.storage_path %s (%s): alerts are queued "
                "and routines learned in memory only, and a restart loses them",
                self.state_dir,
                exc.strerror or exc,
            )
        self.outbox = AsyncOutbox(
            Outbox(
                self.state_dir / "outbox.sqlite3",
                clock,
                settings.outbox.max_other_rows,
                settings.outbox.max_other_age_h * 3600.0,
            )
        )
        take_over_legacy_file(self.state_dir, self.outbox.outbox)
        saved = self.outbox.outbox.open_alerts()
        self.manager.restore(alerts_of(saved))
        self.manager.restore_visits(visits_of(saved))
        held = self.manager.restore_held(held_of(saved))
        self._visits_saved = self.manager.visits_changed
        deaf = DeafPeriods()  # gateway health marks them, the routine detectors skip them
        detectors = build_detectors(
            clock,
            self.home,
            settings.detection,
            learned_dir,
            deaf,
            self.problems,
            settings.alerts.repeat_window_s,
        )
        detectors.append(
            GatewayHealth(
                clock, self.home, self.problems, settings.detection.get("gateway_health"), deaf
            )
        )
        self.summary = DailySummary(clock, self.home, gw.timezone, settings.alerts.summary_time)
        self.pipeline = Pipeline(
            self.home, detectors, self.manager, clock, observers=[self.summary.observe]
        )
        self.pipeline.resume([*self.manager.active.values(), *held])
        self.queue: asyncio.Queue[Reading] = asyncio.Queue(maxsize=READING_QUEUE_SIZE)
        self.urgent: asyncio.Queue[Reading] = asyncio.Queue(maxsize=URGENT_QUEUE_SIZE)
        self.forwarder: Forwarder | None = None
        if link is not None:
            self.forwarder = Forwarder(
                self.outbox,
                link,
                self.topics,
                clock,
                self.handle_command,
                self.health,
                gw.heartbeat_s,
                backoff_factory() if backoff_factory else Backoff(1.0, UPLINK_BACKOFF_MAX_S),
            )
        self.started_mono = clock.monotonic()
        self.ready = asyncio.Event()
        # The processing loop waits for a reading or its next deadline, every storage call of
        # its last turn ended (a test that moves a SimClock on waits for this).
        self.idle = False
        self.stopping = False
        self._stop_when_settled_task: asyncio.Task[None] | None = None
        # readings handed over by the drivers, and fed to the pipeline (see _stop_when_settled)
        self._received = self._fed = 0
        self._outbox_damage_seen = self.outbox.outbox.counters["damaged_files"]
        self._task: asyncio.Task[None] | None = None
        self.driver_failures: dict[str, int] = {}
        self._failing: dict[str, str] = {}  # driver -> how its last run ended (failed/returned)
        self._running_since: dict[str, float] = {}  # driver -> monotonic start of the current run
        self.counters = {"commands_rejected": 0, "pipeline_errors": 0}
        # A command that cannot be taken comes back on every poll of a webhook platform (it
        # serves one until it sees the alert change it leads to, which never comes).
        self._command_lines = RepeatedLines(clock)

    # -- the main loop ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop :meth:`run` (systemd's SIGTERM). A flag as well as a cancellation: Python
        3.11's TaskGroup loses a cancellation that arrives while one of its tasks fails (a
        client library raising its own error as the connection is torn down), and the uplink
        would then take it for a broken link and reconnect, forever."""
        self.stopping = True
        settling = self._stop_when_settled_task
        if settling is not None and settling is not asyncio.current_task():
            settling.cancel()
        if self.forwarder is not None:
            self.forwarder.stopping = True
        for driver in self.drivers:
            stop = getattr(driver, "stop", None)  # drivers with loops of their own
            if stop is not None:
                stop()
        if self._task is not None:
            self._task.cancel()

    def request_stop(self) -> None:
        """Stop once nothing is under way (systemd's SIGTERM, Ctrl-C): the gateway goes on
        hearing the devices until the readings received are fed, no fall is being decided
        (:meth:`Pipeline.deciding`) and, while the uplink is connected, no alert is left
        queued, for at most ``STOP_GRACE_S``.
        A second request, or one before :meth:`run`, stops at once."""
        if self.stopping or self._stop_when_settled_task is not None or self._task is None:
            self.stop()
            return
        self._stop_when_settled_task = asyncio.get_running_loop().create_task(
            self._stop_when_settled(), name="eldergate[stop]"
        )

    async def _stop_when_settled(self) -> None:
        by = self.clock.monotonic() + STOP_GRACE_S
        # The readings received by the last look are fed first: a loop that is behind (a Pi
        # busy, a band's buffer flushed at a reconnect) may hold the samples of a fall, or a
        # press, that no detector has seen yet. A steady stream taken as it comes holds none.
        received = self._received
        try:
            if await self._under_way(received):
                log.info("stopping within %.0f s: a fall or an alert is under way", STOP_GRACE_S)
            while self.clock.monotonic() < by and await self._under_way(received):
                received = self._received
                await self.clock.sleep(STOP_POLL_S)
        finally:
            self.stop()

    async def _under_way(self, received: int) -> bool:
        if self._fed < received or self.pipeline.deciding():
            return True
        if self.forwarder is None or not self.forwarder.connected.is_set():
            return False  # nothing to wait for: the alerts go at the next start
        return (await self.outbox.depth()).get(ALERT, 0) > 0

    async def run(self) -> None:
        if self.stopping:  # stop() came first (a signal during the start)
            raise asyncio.CancelledError
        self._task = asyncio.current_task()
        # The alerts open when the last run stopped, once more (unless a message of theirs is
        # still queued): the platform hears again what the gateway still holds open (it
        # de-duplicates by id and never takes a state back).
        queued = await self.outbox.run(_queued_alert_ids, self.outbox.outbox)
        again = [a for a in self.manager.active.values() if a.id not in queued]
        await self._commit([AlertChange("restored", a) for a in again])
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._process(), name="eldergate[pipeline]")
            if self.forwarder is not None:
                tg.create_task(
                    self._supervise("uplink", self.forwarder.run), name="eldergate[uplink]"
                )
            for driver in self.drivers:
                tg.create_task(
                    self._supervise(driver.name, partial(driver.run, self.put_reading)),
                    name=f"eldergate[driver:{driver.name}]",
                )
            self.ready.set()
            systemd.notify("READY=1")
            log.info(
                "gateway %s running: %d residents, %d devices, %d drivers",
                self.settings.gateway.id,
                len(self.home.residents),
                len(self.home.devices),
                len(self.drivers),
            )

    async def put_reading(self, reading: Reading) -> None:
        """The drivers' sink. Bounded: a flood waits here instead of eating the Pi's memory.
        A press goes on the urgent queue, which the loop takes first."""
        if self.pipeline.is_urgent(reading):
            await self.urgent.put(reading)
        else:
            await self.queue.put(reading)
        self._received += 1

    async def _process(self) -> None:
        pending_urgent: asyncio.Task[Reading] | None = None
        pending_get: asyncio.Task[Reading] | None = None
        sleeper: asyncio.Future[None] | None = None
        try:
            while True:
                timeout = self.pipeline.next_deadline() - self.clock.monotonic()
                if pending_urgent is None:
                    pending_urgent = asyncio.ensure_future(self.urgent.get())
                if pending_get is None:
                    pending_get = asyncio.ensure_future(self.queue.get())
                sleeper = asyncio.ensure_future(self.clock.sleep(max(0.0, timeout)))
                self.idle = True
                done, _ = await asyncio.wait(
                    {pending_urgent, pending_get, sleeper}, return_when=asyncio.FIRST_COMPLETED
                )
                self.idle = False
                sleeper.cancel()
                for got in (pending_urgent, pending_get):  # a press first
                    if got in done:
                        await self._commit(self._feed(got.result()))
                if pending_urgent in done:
                    pending_urgent = None
                if pending_get in done:
                    pending_get = None
                await self._drain()
                # The deadline first, then the clock: a real clock moves between the two calls.
                if self.pipeline.next_deadline() <= self.clock.monotonic():
                    await self._tick()
                systemd.watchdog_ping(self.clock.monotonic())
        finally:
            for waiter in (pending_urgent, pending_get, sleeper):
                if waiter is not None:
                    waiter.cancel()

    async def _drain(self) -> None:
        """What is queued, presses first. A round ends after a full queue's worth, so that a
        steady overload still lets the ticks and the watchdog come."""
        for fed in range(1, READING_QUEUE_SIZE + 1):
            if not self.urgent.empty():
                reading = self.urgent.get_nowait()
            elif not self.queue.empty():
                reading = self.queue.get_nowait()
            else:
                return
            await self._commit(self._feed(reading))
            if fed % DRAIN_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the drivers hand over what came meanwhile

    def _feed(self, reading: Reading) -> list[AlertChange]:
        """The pipeline already keeps one detector's failure from the others; this keeps a
        reading nothing foresaw (the manager's or the pipeline's own bug) from ending the loop
        that every later reading, SOS included, goes through."""
        self._fed += 1
        try:
            return self.pipeline.feed(reading)
        except Exception as exc:  # by its site: the message may quote the reading
            self.counters["pipeline_errors"] += 1
            log.error("a reading could not be processed; skipped: %s", crash_site(exc))
            return []

    async def _tick(self) -> None:
        await self._commit(self.pipeline.tick())
        for summary in self.summary.due():
            resident = summary["resident"]
            await self.outbox.put(SUMMARY, resident, self.topics.summary(resident), encode(summary))
        box = self.outbox.outbox
        if box.counters["damaged_files"] != self._outbox_damage_seen:
            # a new file took over; what it read back of the open alerts may be short of ours
            self._outbox_damage_seen = box.counters["damaged_files"]
            await self.outbox.commit([], records_of(self.manager))
        elif box.has_unsaved:  # a full SD card: try again each tick
            await self.outbox.retry_unsaved()

    async def _commit(self, changes: list[AlertChange]) -> None:
        """Every alert change is durable in the outbox before anything else happens to it,
        together with the open alerts as they now stand (one transaction: a restart knows
        exactly the alerts whose messages are queued). A visit started or ended is saved
        with them, alone if no alert changed."""
        if not changes and self.manager.visits_changed == self._visits_saved:
            return
        self._visits_saved = self.manager.visits_changed
        messages = []
        for change in changes:
            alert = change.alert
            if change.change == "raised":
                self.summary.record_alert(alert.resident, alert.type, alert.t)
            payload = encode(change.to_message(self.settings.gateway.id))
            messages.append(
                Message(ALERT, alert.resident, self.topics.alert(alert.resident), payload)
            )
        # a stop does not cancel the write once handed over (AsyncOutbox.run): the manager
        # holds the change already, and a restart would never hear of it
        await self.outbox.commit(messages, records_of(self.manager))
        for change in changes:
            alert = change.alert
            log.info(
                "alert %s: %s (%s) resident=%s id=%s",
                change.change,
                alert.type,
                alert.severity.label,
                alert.resident,
                alert.id,
            )

    async def _supervise(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        backoff = self.backoff_factory()
        # a failure that keeps coming (the home broker gone for hours: a try every 30 s) is
        # written once, then once an hour with how many more; all counted (driver_failures)
        lines = RepeatedLines(self.clock)
        while True:
            began = self.clock.monotonic()
            self._running_since[name] = began
            try:
                await start()
                if self.stopping:  # it swallowed the stop's cancellation (see stop())
                    raise asyncio.CancelledError
                log.warning("%s returned; restarting it", name)
                self._failing[name] = "returned"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the supervisor boundary: log, count, restart
                if self.stopping:
                    raise asyncio.CancelledError from exc  # see stop()
                self.driver_failures[name] = self.driver_failures.get(name, 0) + 1
                self._failing[name] = str(exc) or type(exc).__name__
                more = lines.due((type(exc).__name__, self._failing[name]))
                if more is not None:
                    log.error(
                        "%s failed: %s; restarting with backoff%s",
                        name,
                        exc,
                        more,
                        exc_info=not isinstance(exc, (EldergateError, OSError)),
                    )
            finally:
                self._running_since.pop(name, None)
            if self.clock.monotonic() - began > DRIVER_HEALTHY_AFTER_S:
                backoff.reset()
                lines = RepeatedLines(self.clock)  # a new outage is news
            await self.clock.sleep(backoff.next_delay())

    # -- the platform's commands --------------------------------------------------------------

    async def handle_command(self, payload: bytes) -> None:
        try:
            command = parse_command(payload)
        except CommandError as exc:
            self.counters["commands_rejected"] += 1
            self._log_command(f"platform command rejected: {exc}")
            return
        name, by = command["command"], command["by"]
        if name.startswith("visit") and command["resident"] not in self.home.residents:
            self.counters["commands_rejected"] += 1
            self._log_command(
                f"platform command rejected: {name} for a resident this gateway does not have"
            )
            return
        changes: list[AlertChange] = []
        unknown = self.manager.counters["unknown_alert_commands"]
        if name == "ack":
            changes = self.manager.acknowledge(command["alert_id"], by)
        elif name == "resolve":
            changes = self.manager.resolve(command["alert_id"], by)
        elif name == "visit_start":
            self.manager.start_visit(
                command["resident"], by, command.get("hours"), command.get("t")
            )
        elif name == "visit_end":
            self.manager.end_visit(command["resident"])
            # what the visit held back, now: the loop may be asleep until its next deadline
            changes = self.manager.on_tick()
        if self.manager.counters["unknown_alert_commands"] != unknown:
            alert_id = str(command["alert_id"])
            shown = alert_id if len(alert_id) <= 64 else f"{alert_id[:61]}..."
            self._log_command(
                f"platform command {name} for alert {shown!r}, which this gateway does not have "
                "open (closed already, or not its own): ignored"
            )
        await self._commit(changes)

    def _log_command(self, reason: str) -> None:
        more = self._command_lines.due(reason)
        if more is not None:
            log.warning("%s%s", reason, more)

    # -- health -------------------------------------------------------------------------------

    def driver_running(self, name: str) -> bool:
        """Whether the driver's current run is under way (not waiting out its backoff)."""
        return name in self._running_since

    def problems(self) -> dict[str, tuple[str, str]]:
        """What keeps part of the home from being heard now: ``{key: (cause, reason)}`` from
        every driver's own ``problems()``, and ``driver`` for one that failed and is waiting
        out its backoff (a driver's own words, when it has any, say it better)."""
        found: dict[str, tuple[str, str]] = {}
        for driver in self.drivers:
            own = driver.problems()
            found.update({f"{driver.name}:{key}": value for key, value in own.items()})
            failing = self._failing.get(driver.name)
            if failing is not None and not self.driver_running(driver.name) and not own:
                found[f"{driver.name}:driver"] = ("driver", f"{driver.name}: {failing}")
        return found

    async def health(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for device in self.home.devices.values():
            kinds[device.kind.value] = kinds.get(device.kind.value, 0) + 1
        return {
            "state": "online",
            "t": self.clock.wall(),
            "uptime_s": round(self.clock.monotonic() - self.started_mono, 1),
            # every queue, also an empty one: a platform watches ``outbox.alert``
            "outbox": {ALERT: 0, SUMMARY: 0, **await self.outbox.depth()},
            "devices": {"total": len(self.home.devices), "by_kind": kinds},
            "residents": len(self.home.residents),
            "queue": self.queue.qsize() + self.urgent.qsize(),
            "driver_failures": dict(self.driver_failures),
            "problems": {key: cause for key, (cause, _) in self.problems().items()},
            "pipeline": self.pipeline.diagnostics(),
            # the platform's commands this gateway could not take (malformed, another version,
            # a resident it does not have): the uplink adds whether they can arrive at all
            "commands": {"rejected": self.counters["commands_rejected"]},
        }

    def diagnostics(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline.diagnostics(),
            "uplink": self.forwarder.diagnostics() if self.forwarder else None,
            "drivers": {d.name: d.diagnostics() for d in self.drivers},
            "driver_failures": dict(self.driver_failures),
            **self.counters,
        }

    async def close(self) -> None:
        close_detectors(self.pipeline.detectors)
        await self.outbox.close()
