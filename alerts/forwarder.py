"""Drains the outbox to the platform, one message at a time in order, forever.

Connect → publish every pending item (each removed from the outbox only after its PUBACK) →
wait for new items, the heartbeat, or a command. Any uplink failure: log the reason once per
change of reason, back off (exponential, jitter, capped), reconnect. Never gives up, never
busy-loops, never drops an item.

A message the platform refuses (its ACL does not cover a new resident's topic, say) stays in
the outbox and is tried again every :data:`REFUSED_RETRY_S`, while every other goes on, that
resident's later alerts too: one refused message must never hold back an SOS, and the
platform's rule never to take an alert's state back keeps its end state right out of order.
Every heartbeat says how many refusals there were and how many messages wait for their retry
(``uplink``). A refused state or heartbeat message, or a command that cannot be handled, is
logged and counted; none takes the uplink down. Nor does a refused subscription to the command
topic (the platform's ACL does not let the gateway read it): staff commands cannot arrive, which
the heartbeat says (``commands.refused``), while the alerts go on; the subscription is asked for
again on the same session, after :data:`COMMANDS_RETRY_S` doubling up to
:data:`REFUSED_RETRY_S`, and at every reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from alerts.forwarders.base import PlatformLink, PlatformSession
from alerts.outbox import AsyncOutbox, OutboxItem
from alerts.protocol import Topics, encode, state_payload
from gateway.backoff import Backoff
from gateway.clock import Clock
from gateway.errors import PublishRefused, UplinkError, reraise_swallowed_cancellation
from gateway.log_limits import RepeatedLines

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes], Awaitable[None]]
HealthSource = Callable[[], Awaitable[dict[str, Any]]]
REFUSED_RETRY_S = 300.0
COMMANDS_RETRY_S = 30.0  # a refused command subscription: first retry, doubling to the above
# A session that lasted this long proved the link: its end is retried without the long backoff.
HEALTHY_AFTER_S = 60.0


class Forwarder:
    def __init__(
        self,
        outbox: AsyncOutbox,
        link: PlatformLink,
        topics: Topics,
        clock: Clock,
        on_command: CommandHandler,
        health: HealthSource,
        heartbeat_s: float = 60.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.topics = topics
        self.clock = clock
        self.on_command = on_command
        self.health = health
        self.heartbeat_s = heartbeat_s
        self.backoff = backoff or Backoff(initial_s=1.0, maximum_s=300.0)
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self.counters = {
            "sent": 0,
            "connects": 0,
            "failures": 0,
            "heartbeats": 0,
            "commands": 0,
            "refused": 0,
            "command_errors": 0,
            "health_errors": 0,
            "command_subscriptions_refused": 0,
        }
        # why the platform refuses the command subscription, while it does
        self.commands_refused: str | None = None
        self._command_refusal_lines = RepeatedLines(clock)
        self._held: dict[int, float] = {}  # outbox seq of a refused message -> its next try
        self.stopping = False  # set by the runtime's stop(): a failure now is the shutdown
        self._refusals_logged: set[str] = set()
        self._health_errors_logged: set[str] = set()

    async def run(self) -> None:
        while True:
            connected_at: float | None = None
            try:
                async with self.link.session() as session:
                    # Before anything else, as a command sent once we say "online" must find
                    # the subscription; a refusal leaves the session up for the alerts.
                    await self._subscribe_commands(session)
                    if self.stopping:  # aiomqtt's SUBACK wait swallowed the stop's cancellation
                        raise asyncio.CancelledError
                    # Retained; the MQTT link's last will replaces it with "offline". Only a
                    # delivered message proves the link: a webhook session opens without
                    # reaching the server, and "restored" must not alternate with "down".
                    await self._publish_own(session, self.topics.state, state_payload("online"))
                    self.counters["connects"] += 1
                    if self.last_error:
                        log.warning("uplink restored after: %s", self.last_error)
                    else:
                        log.info("uplink connected (%s)", self.link.name)
                    self.last_error = None
                    self.connected.set()
                    connected_at = self.clock.monotonic()
                    await self._serve(session)
            except UplinkError as exc:
                self.connected.clear()
                if self.stopping:  # a cancellation Python 3.11's TaskGroup lost on the way
                    raise asyncio.CancelledError from exc
                self.counters["failures"] += 1
                healthy = connected_at is not None and (
                    self.clock.monotonic() - connected_at >= HEALTHY_AFTER_S
                )
                if healthy:  # not only a delivery resets it: nothing to send is the norm
                    self.backoff.reset()
                delay = self.backoff.next_delay()
                if exc.reason != self.last_error:
                    log.error("uplink down: %s; retrying with backoff", exc.reason)
                self.last_error = exc.reason
                log.debug("uplink retry in %.1f s", delay)
                await self.clock.sleep(delay)
            except Exception:
                self.connected.clear()  # the supervisor restarts the uplink
                raise

    async def _serve(self, session: PlatformSession) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._drain(session), name="eldergate[uplink].drain")
                tg.create_task(self._heartbeat(session), name="eldergate[uplink].heartbeat")
                tg.create_task(self._commands(session), name="eldergate[uplink].commands")
        except ExceptionGroup as group:
            uplink, other = group.split(UplinkError)
            if uplink is not None and other is None:
                raise _leaf(uplink) from group
            raise

    async def _drain(self, session: PlatformSession) -> None:
        while True:
            self.outbox.new_item.clear()
            now = self.clock.monotonic()
            self._held = {seq: at for seq, at in self._held.items() if at > now}
            batch = await self.outbox.pending(100 + len(self._held))
            items = [item for item in batch if item.seq not in self._held][:100]
            for item in items:
                try:
                    await session.publish(item.topic, item.payload)
                except PublishRefused as exc:
                    self._hold(item, exc)
                    continue
                await self.outbox.ack(item.seq)
                self.counters["sent"] += 1
                self.backoff.reset()  # a delivery proves the link works
                # aiomqtt waits for the PUBACK with Python 3.11's wait_for, which can swallow
                # the stop's cancellation as the PUBACK comes: delivered, so acknowledged, but
                # the drain must not go on to wait for news (the gateway never stopped)
                reraise_swallowed_cancellation()
            if not items:
                await self.outbox.retry_unsaved()
                await self._wait_for_news()

    def _hold(self, item: OutboxItem, exc: PublishRefused) -> None:
        self._held[item.seq] = self.clock.monotonic() + REFUSED_RETRY_S
        self.counters["refused"] += 1
        log.error(
            "%s; this %s for resident %s stays in the outbox, tried again in %.0f s",
            exc.reason,
            item.kind,
            item.resident,
            REFUSED_RETRY_S,
        )

    async def _publish_own(self, session: PlatformSession, topic: str, payload: bytes) -> None:
        """The gateway's own retained state and heartbeat. The platform refusing one (an ACL
        without the health topic) is a mistake to report, not a reason to drop the link that
        carries the alerts."""
        try:
            await session.publish(topic, payload, retain=True)
        except PublishRefused as exc:
            self.counters["refused"] += 1
            if exc.reason not in self._refusals_logged:
                self._refusals_logged.add(exc.reason)
                log.error("%s; the alerts still go", exc.reason)

    async def _wait_for_news(self) -> None:
        """Until a new item is queued, or a refused message is due for its retry."""
        if not self._held:
            await self.outbox.new_item.wait()
            return
        due = min(self._held.values()) - self.clock.monotonic()
        news = asyncio.ensure_future(self.outbox.new_item.wait())
        retry = asyncio.ensure_future(self.clock.sleep(max(0.0, due)))
        try:
            await asyncio.wait({news, retry}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            news.cancel()
            retry.cancel()

    async def _heartbeat(self, session: PlatformSession) -> None:
        while True:
            report = await self._health_report()
            # the platform's own link, seen from here: whether its commands can arrive
            own = report.get("commands")
            report["commands"] = {
                **(own if isinstance(own, dict) else {}),
                "refused": self.commands_refused,
                "refusals": self.counters["command_subscriptions_refused"],
            }
            # the platform's broker refusing the gateway's messages (an ACL change there),
            # which otherwise only the gateway's own log shows
            report["uplink"] = {"refusals": self.counters["refused"], "held": len(self._held)}
            payload = encode(report)
            await self._publish_own(session, self.topics.health, payload)
            reraise_swallowed_cancellation()  # as in _drain
            self.counters["heartbeats"] += 1
            await self.clock.sleep(self.heartbeat_s)

    async def _health_report(self) -> dict[str, Any]:
        """The heartbeat's content. A bug in gathering it (a driver's diagnostics) must not
        end the session that carries the alerts: it is logged once and the heartbeat still
        goes, saying so."""
        try:
            return await self.health()
        except Exception as exc:
            self.counters["health_errors"] += 1
            name = type(exc).__name__
            if name not in self._health_errors_logged:
                self._health_errors_logged.add(name)
                log.exception("the health report could not be gathered; the alerts still go")
            return {"state": "online", "health_error": name}

    async def _subscribe_commands(self, session: PlatformSession) -> None:
        refused = await session.subscribe_commands()
        if refused is None:
            if self.commands_refused is not None:
                log.warning("platform granted the command subscription: commands arrive again")
            self.commands_refused = None
            return
        self.counters["command_subscriptions_refused"] += 1
        self.commands_refused = refused
        more = self._command_refusal_lines.due(refused)
        if more is not None:
            log.error(
                "platform refused the subscription to %s: %s; staff commands (ack, resolve, "
                "visit) cannot reach the gateway; the alerts still go; asked again every "
                "%.0f s at most%s",
                self.topics.command,
                refused,
                REFUSED_RETRY_S,
                more,
            )

    async def _commands(self, session: PlatformSession) -> None:
        backoff = Backoff(initial_s=COMMANDS_RETRY_S, maximum_s=REFUSED_RETRY_S)
        while self.commands_refused is not None:
            await self.clock.sleep(backoff.next_delay())
            await self._subscribe_commands(session)
            reraise_swallowed_cancellation()  # as in _drain
        async for payload in session.commands():
            self.counters["commands"] += 1
            try:
                await self.on_command(payload)
            except UplinkError:
                raise
            except Exception:  # one bad command must not stop the outbox's delivery
                self.counters["command_errors"] += 1
                log.exception("platform command could not be handled; ignored")

    def diagnostics(self) -> dict[str, Any]:
        return {
            "link": self.link.name,
            "connected": self.connected.is_set(),
            "last_error": self.last_error,
            "commands_refused": self.commands_refused,
            "held": len(self._held),
            **self.counters,
        }


def _leaf(group: BaseExceptionGroup[UplinkError]) -> UplinkError:
    first = group.exceptions[0]
    return _leaf(first) if isinstance(first, BaseExceptionGroup) else first
