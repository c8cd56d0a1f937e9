"""The durable outbox: every message for the platform is committed here before it is sent, and
removed only after the platform's broker confirmed it (PUBACK).

* SQLite (standard library), WAL journal, ``synchronous=FULL``: a committed alert survives
  kill -9 and power loss.
* Order: items are delivered in insertion order (``seq``), which keeps each resident's alerts in
  order; the forwarder sends one at a time.
* Bounds: non-alert messages (summaries) are pruned by count and age; alerts are never dropped.
* A full or failing SD card: the alert is kept in memory (and logged loudly), delivered from
  there, and written to disk as soon as the disk accepts it again.
* A damaged file (at start, or found damaged later): set aside, what can be read from it is
  kept, and a new file takes over (``gateway.storage``), so delivery never stops on it.

All methods are blocking; the async shell runs them on one dedicated thread
(:class:`AsyncOutbox`) so SQLite never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.clock import Clock
from gateway.storage import is_damage, readable_rows, set_aside, set_aside_if_damaged

log = logging.getLogger(__name__)
T = TypeVar("T")

ALERT = "alert"
SUMMARY = "summary"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    resident TEXT NOT NULL,
    topic    TEXT NOT NULL,
    payload  BLOB NOT NULL,
    created  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, seq);
"""
_COLUMNS = "seq, kind, resident, topic, payload, created"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    kind: str
    resident: str
    topic: str
    payload: bytes
    created: float


class Outbox:
    def __init__(
        self,
        path: str | Path,
        clock: Clock,
        max_other_rows: int = 10_000,
        max_other_age_s: float = 72 * 3600.0,
    ) -> None:
        self.path = str(path)
        self.clock = clock
        self.max_other_rows = max_other_rows
        self.max_other_age_s = max_other_age_s
        aside = set_aside_if_damaged(Path(self.path), "outbox")
        self._db = self._connect()
        self._unsaved: dict[int, OutboxItem] = {}  # alerts the disk refused, kept in memory
        self.counters = {
            "put": 0,
            "acked": 0,
            "disk_errors": 0,
            "dropped_other": 0,
            "damaged_files": 0,
        }
        if aside is not None:  # damaged while we were off (a power cut): take back what reads
            self._take_back(aside, "found damaged at start")
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
        self._next_seq = max([int(row[0]), *self._unsaved]) + 1
        self._first_seq = self._next_seq  # the first of this run's items
        self._queued_mono: dict[int, float] = {}  # this run's non-alert items, when queued

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        return db

    def _start_afresh(self, exc: sqlite3.DatabaseError) -> None:
        """The file went bad under us (SD card damage): set it aside, start a new one, and
        write to it what can still be read from the old."""
        self._db.close()
        aside = set_aside(Path(self.path))
        self._db = self._connect()
        self._take_back(aside, str(exc))

    def _take_back(self, aside: Path, why: str) -> None:
        """Items a scan of the set-aside file reaches from either end before it meets the
        damage; what sat in the damaged pages stays there, for recovery by hand."""
        found = [i for i in map(_item_or_none, readable_rows(aside, "outbox", _COLUMNS)) if i]
        for item in found:
            self._unsaved.setdefault(item.seq, item)
        self.counters["damaged_files"] += 1
        log.critical(
            "OUTBOX FILE DAMAGED (%s): set aside as %s, %d messages read back from it, new "
            "file started; recover the rest with sqlite3 .recover",
            why,
            aside.name,
            len(found),
        )
        self.retry_unsaved()

    def _repairing(self, fn: Callable[[], T]) -> T:
        """``fn()``; if the file turns out damaged, once more on a new file."""
        try:
            return fn()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self._start_afresh(exc)
            return fn()

    def put(self, kind: str, resident: str, topic: str, payload: bytes) -> int:
        """Commit one message; returns its sequence number once it is durable (or, for an
        alert the disk refused, once it is held in memory)."""
        item = OutboxItem(self._next_seq, kind, resident, topic, payload, self.clock.wall())
        self._next_seq += 1
        self.counters["put"] += 1
        try:
            self._repairing(lambda: self._insert(item))
            if kind != ALERT:
                self._queued_mono[item.seq] = self.clock.monotonic()
                self._prune_other()
        except sqlite3.Error as exc:
            self.counters["disk_errors"] += 1
            if kind == ALERT:
                self._unsaved[item.seq] = item
                log.critical(
                    "OUTBOX DISK ERROR (%s): alert %d kept in memory only, %d unsaved; "
                    "free space on the SD card",
                    exc,
                    item.seq,
                    len(self._unsaved),
                )
            else:
                self.counters["dropped_other"] += 1
                log.error("outbox disk error (%s): %s message dropped", exc, kind)
        return item.seq

    def _insert(self, item: OutboxItem) -> None:
        self._db.execute(
            "INSERT INTO outbox(seq, kind, resident, topic, payload, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (item.seq, item.kind, item.resident, item.topic, item.payload, item.created),
        )

    def _prune_other(self) -> None:
        # Age: on the monotonic clock for what this run queued (a Pi that boots with an old
        # date and then takes NTP's must not drop the summaries of its first minutes as days
        # old); by the stamp for what earlier runs left.
        now = self.clock.monotonic()
        cutoff = self.clock.wall() - self.max_other_age_s
        cur = self._db.execute(
            "DELETE FROM outbox WHERE kind != ? AND created < ? AND seq < ?",
            (ALERT, cutoff, self._first_seq),
        )
        dropped = cur.rowcount
        expired = [seq for seq, t in self._queued_mono.items() if now - t > self.max_other_age_s]
        for seq in expired:
            dropped += self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount
            del self._queued_mono[seq]
        cur = self._db.execute(
            "DELETE FROM outbox WHERE kind != ? AND seq NOT IN "
            "(SELECT seq FROM outbox WHERE kind != ? ORDER BY seq DESC LIMIT ?)",
            (ALERT, ALERT, self.max_other_rows),
        )
        dropped += cur.rowcount
        if dropped:
            self.counters["dropped_other"] += dropped
            log.warning("outbox bound reached: %d old non-alert messages dropped", dropped)

    def retry_unsaved(self) -> int:
        """Try to write memory-only alerts to disk; returns how many are still unsaved."""
        written = 0
        for seq, item in sorted(self._unsaved.items()):
            try:
                self._insert(item)
            except sqlite3.Error:
                break
            del self._unsaved[seq]
            written += 1
        if written:
            log.warning("outbox: %d messages written to disk after an earlier disk error", written)
        return len(self._unsaved)

    def pending(self, limit: int = 100) -> list[OutboxItem]:
        rows = self._repairing(
            lambda: self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        )
        items = [OutboxItem(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]
        if self._unsaved:
            items = sorted([*items, *self._unsaved.values()], key=lambda i: i.seq)[:limit]
        return items

    def ack(self, seq: int) -> None:
        """The platform has it: forget it. Never called before the broker's PUBACK."""
        self._queued_mono.pop(seq, None)
        if self._unsaved.pop(seq, None) is None:
            self._repairing(lambda: self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)))
        self.counters["acked"] += 1

    def depth(self) -> dict[str, int]:
        rows = self._repairing(
            lambda: self._db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall()
        )
        out = {str(kind): int(n) for kind, n in rows}
        if self._unsaved:
            out["alert_unsaved"] = len(self._unsaved)
        return out

    def close(self) -> None:
        self._db.close()


def _item_or_none(row: tuple[Any, ...]) -> OutboxItem | None:
    """A row of a damaged file as an item, if its values still have the types they were
    written with (damage can change a value's type)."""
    seq, kind, resident, topic, payload, created = row
    if isinstance(payload, str):
        payload = payload.encode()
    texts = all(isinstance(v, str) for v in (kind, resident, topic))
    if not (isinstance(seq, int) and texts and isinstance(payload, bytes | memoryview)):
        return None
    stamp = float(created) if isinstance(created, int | float) else 0.0
    return OutboxItem(seq, kind, resident, topic, bytes(payload), stamp)


class AsyncOutbox:
    """Runs every outbox call on one dedicated thread, and wakes the forwarder on new items."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eldergate-outbox")
        self.new_item = asyncio.Event()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the storage thread (other small SQLite stores share it)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def put(self, kind: str, resident: str, topic: str, payload: bytes) -> int:
        seq = await self.run(self.outbox.put, kind, resident, topic, payload)
        self.new_item.set()
        return seq

    async def pending(self, limit: int = 100) -> list[OutboxItem]:
        return await self.run(self.outbox.pending, limit)

    async def ack(self, seq: int) -> None:
        await self.run(self.outbox.ack, seq)

    async def retry_unsaved(self) -> int:
        return await self.run(self.outbox.retry_unsaved)

    async def depth(self) -> dict[str, int]:
        return await self.run(self.outbox.depth)

    async def close(self) -> None:
        await self.run(self.outbox.close)
        self._executor.shutdown(wait=True)
