"""The durable outbox: every message for the platform is committed here before it is sent, and
removed only after the platform's broker confirmed it (PUBACK).

* SQLite (standard library), WAL journal, ``synchronous=FULL``: a committed alert survives
  kill -9 and power loss.
* Order: items are delivered in insertion order (``seq``), which keeps each resident's alerts in
  order; the forwarder sends one at a time.
* Bounds: non-alert messages (summaries) are pruned by count and age; alerts are never dropped.
* A full or failing SD card: the alert is kept in memory (and logged loudly), delivered from
  there, and written to disk as soon as the disk accepts it again.
* The open alerts live in the same file and are written in the same transaction as the
  messages that change them (:meth:`Outbox.commit`): after a power cut the file has both or
  neither, so a restarted gateway knows exactly the alerts whose messages are queued.
* A damaged file (at start, or found damaged later): set aside, what can be read from it is
  kept, and a new file takes over (``gateway.storage``), so delivery never stops on it; on a
  full card what was read back is held in memory until the new file can be started.

All methods are blocking; the async shell runs them on one dedicated thread
(:class:`AsyncOutbox`) so SQLite never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sqlite3
from collections.abc import Callable, Sequence
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
CREATE TABLE IF NOT EXISTS open_alerts (key TEXT PRIMARY KEY, value BLOB);
"""
_COLUMNS = "seq, kind, resident, topic, payload, created"


@dataclass(frozen=True, slots=True)
class Message:
    kind: str
    resident: str
    topic: str
    payload: bytes


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
        self._unsaved: dict[int, OutboxItem] = {}  # alerts the disk refused, kept in memory
        self._open_unsaved: dict[str, Any] | None = None  # open alerts the disk refused
        self.counters = {
            "put": 0,
            "acked": 0,
            "disk_errors": 0,
            "dropped_other": 0,
            "damaged_files": 0,
        }
        # None while no file can be opened: the new file that replaces a damaged one on a
        # full card, or any file on a card gone read-only
        self._db: sqlite3.Connection | None = None
        try:
            aside = set_aside_if_damaged(Path(self.path), "outbox")
            if aside is None:
                self._db = self._connect()
        except (sqlite3.Error, OSError) as exc:
            aside = None
            self._hold_what_reads(exc)
        if aside is not None:  # damaged while we were off (a power cut): take back what reads
            self._took_back(self._read_back(aside), aside, "found damaged at start")
        last = 0
        with contextlib.suppress(sqlite3.Error):  # a new file that is not there yet is empty
            last = int(
                self._database().execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0]
            )
        self._next_seq = max([last, *self._unsaved]) + 1
        self._first_seq = self._next_seq  # the first of this run's items
        self._queued_mono: dict[int, float] = {}  # this run's non-alert items, when queued

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _database(self) -> sqlite3.Connection:
        """The open file; after a damaged one was set aside, the new file, started here once
        the card takes it (until then this raises, and what was read back stays in memory)."""
        if self._db is None:
            self._db = self._connect()
        return self._db

    def _start_afresh(self, exc: sqlite3.DatabaseError) -> None:
        """The file went bad under us (SD card damage): set it aside, start a new one, and
        write to it what can still be read from the old."""
        # Read before closing: the last connection to close removes the -shm file, which a
        # full card would not let the reading create again.
        found = self._read_back(Path(self.path))
        if self._db is not None:
            self._db.close()
            self._db = None
        try:
            aside = set_aside(Path(self.path))
        except OSError as rename_error:  # a card gone read-only: all of it stays in memory
            self.counters["damaged_files"] += 1
            log.critical(
                "OUTBOX FILE DAMAGED (%s) and cannot be set aside (%s): %d messages read back "
                "from it are held in memory with every new one; replace the SD card",
                exc,
                rename_error.strerror,
                found,
            )
            raise sqlite3.OperationalError("damaged outbox file cannot be set aside") from exc
        self._took_back(found, aside, str(exc))

    def _hold_what_reads(self, exc: sqlite3.Error | OSError) -> None:
        """The file cannot be opened at all (an SD card worn out into read-only, which is how
        many end their life): what can be read of it is held in memory with everything this
        run commits, sent from there, and written once a file can be opened (tried at each
        commit). Before, the gateway could not start at all: no alert, no SOS."""
        self.counters["disk_errors"] += 1
        found = self._read_back(Path(self.path), read_only=True)
        log.critical(
            "OUTBOX FILE CANNOT BE OPENED (%s): %d messages and %d open alerts read from it "
            "are held in memory with every new one and sent from there; a power cut would "
            "lose them: replace the SD card",
            exc,
            found,
            len(self._open_unsaved or {}),
        )

    def _read_back(self, damaged: Path, read_only: bool = False) -> int:
        """Into memory: items a scan of the damaged file reaches from either end before it
        meets the damage (what sat in the damaged pages stays there, for recovery by hand),
        and the open alerts, unless this run has newer ones to write. Returns how many items.
        ``read_only``: a file that cannot be opened for writing, read as it stands."""
        rows = readable_rows(damaged, "outbox", _COLUMNS, read_only=read_only)
        found = [item for item in map(_item_or_none, rows) if item]
        for item in found:
            self._unsaved.setdefault(item.seq, item)
        if self._open_unsaved is None:
            opened = readable_rows(damaged, "open_alerts", "key, value", read_only=read_only)
            self._open_unsaved = _open_alerts_of(opened)
        return len(found)

    def _took_back(self, found: int, aside: Path, why: str) -> None:
        """Logs it, and writes what was read back to the new file if the card takes it."""
        self.counters["damaged_files"] += 1
        log.critical(
            "OUTBOX FILE DAMAGED (%s): set aside as %s, %d messages read back from it, a new "
            "file takes over; recover the rest with sqlite3 .recover",
            why,
            aside.name,
            found,
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

    def _on_disk(self, query: Callable[[], list[Any]]) -> list[Any]:
        """``query``'s rows; none while the new file that replaces a damaged one cannot be
        started: it holds nothing yet, everything is in memory."""
        try:
            return self._repairing(query)
        except sqlite3.Error:
            if self._db is not None:
                raise
            return []

    def put(self, kind: str, resident: str, topic: str, payload: bytes) -> int:
        """Commit one message; returns its sequence number (see :meth:`commit`)."""
        return self.commit([Message(kind, resident, topic, payload)])[0]

    def commit(
        self, messages: Sequence[Message], open_alerts: dict[str, Any] | None = None
    ) -> list[int]:
        """Commit ``messages`` and, if given, make the stored open alerts exactly
        ``open_alerts`` (``alerts.state.records_of``), in one transaction; returns the
        messages' sequence numbers once they are durable. If the disk refuses (a full SD card)
        the alerts among them and the open alerts are held in memory, delivered from there and
        written with the next commit the disk takes (or :meth:`retry_unsaved`); other messages
        are dropped."""
        now = self.clock.wall()
        items = [
            OutboxItem(seq, m.kind, m.resident, m.topic, m.payload, now)
            for seq, m in enumerate(messages, start=self._next_seq)
        ]
        self._next_seq += len(items)
        self.counters["put"] += len(items)
        try:
            self._repairing(lambda: self._write_with_unsaved(items, open_alerts))
        except sqlite3.Error as exc:
            self._hold_in_memory(items, open_alerts, exc)
        else:
            others = [item.seq for item in items if item.kind != ALERT]
            if others:
                mono = self.clock.monotonic()
                self._queued_mono.update(dict.fromkeys(others, mono))
                with contextlib.suppress(sqlite3.Error):  # pruning waits for the next put
                    self._prune_other()
        return [item.seq for item in items]

    def _write_with_unsaved(
        self, items: list[OutboxItem], open_alerts: dict[str, Any] | None
    ) -> None:
        """``items`` and ``open_alerts`` together with whatever the disk refused before (held
        alerts, older open alerts when none are given): a newer set of open alerts must never
        reach the disk without the messages that led to it."""
        held = [item for _, item in sorted(self._unsaved.items())]
        if open_alerts is None:
            open_alerts = self._open_unsaved
        self._write(held + items, open_alerts)
        if held or self._open_unsaved is not None:
            log.warning(
                "outbox: %d held messages%s written to disk after an earlier disk error",
                len(held),
                " and the open alerts" if self._open_unsaved is not None else "",
            )
        self._unsaved.clear()
        self._open_unsaved = None

    def _write(self, items: list[OutboxItem], open_alerts: dict[str, Any] | None) -> None:
        db = self._database()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                # OR IGNORE: a held item a failed COMMIT did write after all is the same item
                "INSERT OR IGNORE INTO outbox(seq, kind, resident, topic, payload, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(i.seq, i.kind, i.resident, i.topic, i.payload, i.created) for i in items],
            )
            if open_alerts is not None:
                db.execute("DELETE FROM open_alerts")
                db.executemany(
                    "INSERT INTO open_alerts(key, value) VALUES (?, ?)",
                    [
                        (key, pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
                        for key, value in open_alerts.items()
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    def _hold_in_memory(
        self, items: list[OutboxItem], open_alerts: dict[str, Any] | None, exc: sqlite3.Error
    ) -> None:
        self.counters["disk_errors"] += 1
        if open_alerts is not None:
            self._open_unsaved = open_alerts
        alerts = [item for item in items if item.kind == ALERT]
        self._unsaved.update((item.seq, item) for item in alerts)
        if len(alerts) < len(items):
            self.counters["dropped_other"] += len(items) - len(alerts)
            log.error("outbox disk error (%s): %d messages dropped", exc, len(items) - len(alerts))
        if alerts or open_alerts is not None:
            log.critical(
                "OUTBOX DISK ERROR (%s): %d alerts kept in memory only, %d unsaved in all%s; "
                "free space on the SD card or replace it",
                exc,
                len(alerts),
                len(self._unsaved),
                ", open alerts not saved" if open_alerts is not None else "",
            )

    def _prune_other(self) -> None:
        # Age: on the monotonic clock for what this run queued (a Pi that boots with an old
        # date and then takes NTP's must not drop the summaries of its first minutes as days
        # old); by the stamp for what earlier runs left.
        now = self.clock.monotonic()
        cutoff = self.clock.wall() - self.max_other_age_s
        db = self._database()
        cur = db.execute(
            "DELETE FROM outbox WHERE kind != ? AND created < ? AND seq < ?",
            (ALERT, cutoff, self._first_seq),
        )
        dropped = cur.rowcount
        expired = [seq for seq, t in self._queued_mono.items() if now - t > self.max_other_age_s]
        for seq in expired:
            dropped += db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount
            del self._queued_mono[seq]
        cur = db.execute(
            "DELETE FROM outbox WHERE kind != ? AND seq NOT IN "
            "(SELECT seq FROM outbox WHERE kind != ? ORDER BY seq DESC LIMIT ?)",
            (ALERT, ALERT, self.max_other_rows),
        )
        dropped += cur.rowcount
        if dropped:
            self.counters["dropped_other"] += dropped
            log.warning("outbox bound reached: %d old non-alert messages dropped", dropped)

    def retry_unsaved(self) -> int:
        """Try to write what the disk refused (memory-only alerts and the latest open alerts)
        in one transaction; returns how many alerts are still held in memory (the open alerts
        may be held with none: see :attr:`has_unsaved`)."""
        if not self.has_unsaved:
            return 0
        try:
            self._write_with_unsaved([], None)
        except sqlite3.Error:
            return len(self._unsaved)
        return 0

    @property
    def has_unsaved(self) -> bool:
        return bool(self._unsaved) or self._open_unsaved is not None

    def open_alerts(self) -> dict[str, Any]:
        """The open alerts as last committed (records, ``alerts.state.alerts_of`` reads them);
        a value that cannot be read back is logged and left out."""
        if self._open_unsaved is not None:
            return dict(self._open_unsaved)
        rows = self._repairing(
            lambda: self._database().execute("SELECT key, value FROM open_alerts").fetchall()
        )
        return _open_alerts_of(rows)

    def pending(self, limit: int = 100) -> list[OutboxItem]:
        rows = self._on_disk(
            lambda: (
                self._database()
                .execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY seq LIMIT ?", (limit,))
                .fetchall()
            )
        )
        items = [OutboxItem(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]
        if self._unsaved:
            by_seq = {i.seq: i for i in items} | self._unsaved
            items = [by_seq[seq] for seq in sorted(by_seq)][:limit]
        return items

    def ack(self, seq: int) -> None:
        """The platform has it: forget it. Never called before the broker's PUBACK."""
        self._queued_mono.pop(seq, None)
        held = self._unsaved.pop(seq, None)
        try:  # a held item may be on disk too: a COMMIT that reported an error but wrote
            self._repairing(
                lambda: self._database().execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            )
        except sqlite3.Error:
            if held is None and self._db is not None:  # with no file, no copy on disk
                raise
        self.counters["acked"] += 1

    def depth(self) -> dict[str, int]:
        rows = self._on_disk(
            lambda: (
                self._database()
                .execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind")
                .fetchall()
            )
        )
        out = {str(kind): int(n) for kind, n in rows}
        if self._unsaved:
            out["alert_unsaved"] = len(self._unsaved)
        return out

    def close(self) -> None:
        if self._db is not None:
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


def _open_alerts_of(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, blob in rows:
        try:
            found[str(key)] = pickle.loads(blob)
        except Exception as exc:  # damaged, or written by other code
            log.error("open alert %s unreadable (%s); left out", key, exc)
    return found


class AsyncOutbox:
    """Runs every outbox call on one dedicated thread, and wakes the forwarder on new items."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eldergate-outbox")
        self.new_item = asyncio.Event()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the storage thread (other small SQLite stores share it).

        A call handed to the thread is carried out even if its caller is cancelled (a stop):
        the cancellation is taken once the call has ended. Cancelling the executor's future
        took a call still queued behind another (a slow SD card) off the queue: an alert
        change raised at a stop was never committed, and lost at the next start."""
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._executor, fn, *args)
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            await asyncio.wait({call})  # a second cancellation stops the wait, not the call
            raise

    async def put(self, kind: str, resident: str, topic: str, payload: bytes) -> int:
        seq = await self.run(self.outbox.put, kind, resident, topic, payload)
        self.new_item.set()
        return seq

    async def commit(
        self, messages: Sequence[Message], open_alerts: dict[str, Any] | None = None
    ) -> list[int]:
        seqs = await self.run(self.outbox.commit, messages, open_alerts)
        if seqs:
            self.new_item.set()
        return seqs

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
