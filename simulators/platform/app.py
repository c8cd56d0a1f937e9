"""The reference community platform: receives uplink messages, keeps alerts de-duplicated by id,
and sends staff commands (acknowledge, resolve, visit) back down to the gateway.

Transport-free: :mod:`simulators.platform.mqtt` feeds it from a broker, the in-memory link
(:mod:`alerts.forwarders.memory`) feeds it in-process for the demo.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from simulators.platform.store import PlatformStore, Received

log = logging.getLogger(__name__)

CommandSender = Callable[[str, bytes], Awaitable[None]]  # (gateway id, payload)


class Platform:
    def __init__(
        self,
        store: PlatformStore,
        prefix: str = "eldergate",
        on_new_alert: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.on_new_alert = on_new_alert
        self.senders: dict[str, CommandSender] = {}  # gateway id -> how to reach it
        self.default_sender: CommandSender | None = None
        self.counters = {"received": 0, "new_alerts": 0, "duplicates": 0, "ignored": 0}

    def receive(self, topic: str, payload: bytes) -> Received | None:
        self.counters["received"] += 1
        got = self.store.ingest(topic, payload)
        if got is None:
            self.counters["ignored"] += 1
            return None
        if got.kind == "alert":
            if got.new:
                self.counters["new_alerts"] += 1
                if self.on_new_alert is not None:
                    self.on_new_alert(got.body)
            elif got.body.get("change") == "raised":
                self.counters["duplicates"] += 1
        return got

    async def command(self, gateway: str, message: dict[str, Any]) -> None:
        sender = self.senders.get(gateway, self.default_sender)
        if sender is None:
            raise LookupError(f"no route to gateway {gateway!r}")
        await sender(gateway, json.dumps({"v": 1, **message}).encode())

    async def acknowledge(self, alert_id: str, by: str = "staff") -> bool:
        return await self._alert_command(alert_id, "ack", "acknowledged", by)

    async def resolve(self, alert_id: str, by: str = "staff") -> bool:
        return await self._alert_command(alert_id, "resolve", "resolved", by)

    async def _alert_command(self, alert_id: str, command: str, state: str, by: str) -> bool:
        alert = self.store.alert(alert_id)
        if alert is None:
            return False
        await self.command(alert["gateway"], {"command": command, "alert_id": alert_id, "by": by})
        # Shown at once; the gateway's confirmation arrives on the uplink and is stored too.
        self.store.set_state(alert_id, state, by)
        return True
