"""The reference platform's storage: alerts de-duplicated by id, gateway state and health,
daily summaries. SQLite; small and synchronous (the platform is a development tool)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, gateway TEXT, resident TEXT, type TEXT, severity TEXT, t REAL,
    last_t REAL, state TEXT, count INTEGER, device TEXT, text TEXT, by TEXT,
    received REAL, updated REAL, deliveries INTEGER DEFAULT 1
);
CREATE TABLE IF NOT EXISTS gateways (id TEXT PRIMARY KEY, state TEXT, health TEXT, updated REAL);
CREATE TABLE IF NOT EXISTS summaries (
    gateway TEXT, resident TEXT, day TEXT, payload TEXT, PRIMARY KEY (gateway, resident, day)
);
"""
STATE_RANK = {"open": 0, "escalated": 1, "acknowledged": 2, "resolved": 3, "cancelled": 3}


@dataclass(frozen=True)
class Received:
    kind: str  # "alert", "state", "health", "summary"
    gateway: str
    new: bool  # first delivery of this alert id
    body: dict[str, Any]


class PlatformStore:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def ingest(self, topic: str, payload: bytes) -> Received | None:
        """Store one uplink message; None if it is not one of ours or malformed."""
        parts = topic.split("/")
        if len(parts) < 3:
            return None
        gateway, kind = parts[1], parts[2]
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        if kind == "alert":
            return self._ingest_alert(gateway, body)
        if kind in ("state", "health"):
            column = "state" if kind == "state" else "health"
            value = body.get("state") if kind == "state" else json.dumps(body)
            self._db.execute(
                f"INSERT INTO gateways(id, {column}, updated) VALUES (?, ?, ?) ON CONFLICT(id) "
                f"DO UPDATE SET {column}=excluded.{column}, updated=excluded.updated",
                (gateway, value, time.time()),
            )
            return Received(kind, gateway, False, body)
        if kind == "summary" and len(parts) >= 4:
            self._db.execute(
                "INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?)",
                (gateway, parts[3], str(body.get("day", "")), json.dumps(body)),
            )
            return Received(kind, gateway, False, body)
        return None

    def _ingest_alert(self, gateway: str, a: dict[str, Any]) -> Received | None:
        alert_id = a.get("id")
        if not isinstance(alert_id, str):
            return None
        row = self._db.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        now = time.time()
        if row is None:
            self._db.execute(
                "INSERT INTO alerts(id, gateway, resident, type, severity, t, last_t, state, "
                "count, device, text, by, received, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert_id,
                    gateway,
                    a.get("resident"),
                    a.get("type"),
                    a.get("severity"),
                    a.get("t"),
                    a.get("last_t"),
                    a.get("state"),
                    a.get("count", 1),
                    a.get("device"),
                    json.dumps(a.get("text", {}), ensure_ascii=False),
                    a.get("by"),
                    now,
                    now,
                ),
            )
            return Received("alert", gateway, True, a)
        # Updates only move forward: a late duplicate of "raised" must not reopen an ack'd alert.
        forward = STATE_RANK.get(str(a.get("state")), 0) >= STATE_RANK.get(row[0], 0)
        if forward:
            self._db.execute(
                "UPDATE alerts SET severity=?, last_t=?, state=?, count=?, text=?, by=?, "
                "updated=?, deliveries=deliveries+1 WHERE id=?",
                (
                    a.get("severity"),
                    a.get("last_t"),
                    a.get("state"),
                    a.get("count", 1),
                    json.dumps(a.get("text", {}), ensure_ascii=False),
                    a.get("by"),
                    now,
                    alert_id,
                ),
            )
        else:
            self._db.execute("UPDATE alerts SET deliveries=deliveries+1 WHERE id=?", (alert_id,))
        return Received("alert", gateway, False, a)

    def set_state(self, alert_id: str, state: str, by: str) -> None:
        """Staff's own click, shown before the gateway confirms it; never a step back (the
        gateway may have closed the alert meanwhile: a resident's cancel, a resolve)."""
        row = self._db.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None or STATE_RANK.get(state, 0) < STATE_RANK.get(row[0], 0):
            return
        self._db.execute(
            "UPDATE alerts SET state=?, by=?, updated=? WHERE id=?",
            (state, by, time.time(), alert_id),
        )

    def alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        return self._select("1=1", (), limit)

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        rows = self._select("id = ?", (alert_id,), 1)
        return rows[0] if rows else None

    def _select(self, where: str, params: tuple[Any, ...], limit: int) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT id, gateway, resident, type, severity, t, last_t, state, count, device, text, "
            f"by, deliveries FROM alerts WHERE {where} ORDER BY t DESC, received DESC LIMIT ?",
            (*params, limit),
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for row in rows:
            row["text"] = json.loads(row["text"] or "{}")
        return rows

    def gateways(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT id, state, health, updated FROM gateways").fetchall()
        return [
            {
                "id": r[0],
                "state": r[1],
                "health": json.loads(r[2]) if r[2] else None,
                "updated": r[3],
            }
            for r in rows
        ]

    def close(self) -> None:
        self._db.close()
