"""Learned per-person state, kept across restarts.

Detectors keep small rolling histories (quiet periods, wake-up times, bathroom stays, vital
ranges) as plain JSON-able values under string keys. :class:`SqliteLearnedStore` writes them to
an SQLite file (``gateway.storage.KeyValueFile``) at most once per ``commit_every_s`` of
monotonic time (SD cards wear out: never once per reading), within ``soon_s`` of a change put
with ``soon`` (one a restart must not miss), and on :meth:`close`. The commit is made by the next
``put`` or :meth:`commit_due` (the detectors' tick), so a change reaches disk within its period
even when the home then falls silent; in the gateway its SQLite transaction runs on a thread
of its own, so a slow SD card never holds up the loop;
:class:`MemoryLearnedStore` is the same thing in memory, for tests and replay.
"""

from __future__ import annotations

import logging
import pickle
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from gateway.clock import Clock
from gateway.storage import KeyValueFile

log = logging.getLogger(__name__)

DEFAULT_COMMIT_EVERY_S = 3600.0
# Also the least time between two commits, so a flapping sensor costs at most 12 writes an hour.
DEFAULT_SOON_S = 300.0


class LearnedStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def put(self, key: str, value: Any, *, soon: bool = False) -> None:
        """Remember ``value``; it reaches disk at the next periodic commit at the latest, or
        within the store's short period when ``soon``."""
        ...

    def commit_due(self) -> None:
        """Commit what changed if its period has passed (called at every tick)."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemoryLearnedStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.puts = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any, *, soon: bool = False) -> None:
        self.data[key] = value
        self.puts += 1

    def commit_due(self) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class SqliteLearnedStore:
    """Values are cached in memory and committed in one transaction per ``commit_every_s``
    (monotonic), so a crash loses at most that much learning. A commit that fails (a full SD
    card) is logged and counted, and what it held is tried again at the next one: learning
    must never stop the detectors that run on the same loop.

    With ``background`` (the gateway's, :func:`open_learned_store`) the SQLite transaction
    runs on a thread of the store's own: on a worn SD card one fsync can take seconds, and
    the loop meanwhile would handle no reading, an SOS press included. The changed values are
    pickled at the commit, on the caller's thread (the writer gets a snapshot and never reads
    the cache); at most one write is in flight, and what changes meanwhile stays in the cache
    for the next commit. A write's outcome is taken up (counted; on failure its values are
    due again) by the first :meth:`commit_due` after it ends, or by :meth:`flush` and
    :meth:`close`, which wait for it (a clean stop loses nothing). Without ``background`` a
    commit is written before the call returns: tests that cut the power at a simulated
    instant need the file as the commits before that instant left it."""

    def __init__(
        self,
        path: str | Path,
        clock: Clock,
        commit_every_s: float = DEFAULT_COMMIT_EVERY_S,
        soon_s: float = DEFAULT_SOON_S,
        *,
        background: bool = False,
    ) -> None:
        self._clock = clock
        self._commit_every_s = commit_every_s
        self._soon_s = soon_s
        self._soon = False
        self._file = KeyValueFile(Path(path), "learned", "learned state")
        self._cache: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._last_commit = clock.monotonic()
        self._writer = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="eldergate-learned")
            if background
            else None
        )
        self._in_flight: Future[None] | None = None
        self._writing: set[str] = set()  # the keys of the write in flight
        self._writing_soon = False
        self.commits = 0
        self.commit_errors = 0
        try:
            self._cache = self._file.items()
        except sqlite3.Error as exc:  # unreadable: start from the safe defaults
            log.warning("learned state unreadable (%s); starting with defaults", exc)

    def get(self, key: str, default: Any = None) -> Any:
        return self._cache.get(key, default)

    def put(self, key: str, value: Any, *, soon: bool = False) -> None:
        self._cache[key] = value
        self._dirty.add(key)
        self._soon = self._soon or soon
        self.commit_due()

    def commit_due(self) -> None:
        if self._in_flight is not None and self._in_flight.done():
            self._take_up_write()
        if not self._dirty or self._in_flight is not None:
            return
        elapsed = self._clock.monotonic() - self._last_commit
        if elapsed >= self._commit_every_s or (self._soon and elapsed >= self._soon_s):
            self._start_write()

    def flush(self) -> None:
        """Commit what changed now, and wait until it is written (or has failed)."""
        self._take_up_write()
        self._start_write()
        self._take_up_write()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        self._file.close()

    def _start_write(self) -> None:
        self._last_commit = self._clock.monotonic()
        if not self._dirty:
            return
        rows = [
            (key, pickle.dumps(self._cache[key], pickle.HIGHEST_PROTOCOL)) for key in self._dirty
        ]
        self._writing, self._writing_soon = self._dirty, self._soon
        self._dirty, self._soon = set(), False
        if self._writer is not None:
            self._in_flight = self._writer.submit(self._file.write, rows)
            return
        try:
            self._file.write(rows)
        except BaseException as exc:
            self._written(exc)
        else:
            self._written(None)

    def _take_up_write(self) -> None:
        """Wait for the write in flight, if any, and count its outcome."""
        if self._in_flight is not None:
            error = self._in_flight.exception()
            self._in_flight = None
            self._written(error)

    def _written(self, error: BaseException | None) -> None:
        keys, soon = self._writing, self._writing_soon
        self._writing, self._writing_soon = set(), False
        if error is None:
            self.commits += 1
            return
        self._dirty |= keys  # a newer value put meanwhile is the one written next
        self._soon = self._soon or soon
        if not isinstance(error, sqlite3.Error):
            raise error
        self.commit_errors += 1
        log.error("learned state not saved (%s); kept in memory, tried again later", error)


def open_learned_store(state_dir: Path | None, clock: Clock) -> LearnedStore:
    """The store a gateway uses: on disk under ``state_dir`` (None: in memory, as in replay)."""
    if state_dir is None:
        return MemoryLearnedStore()
    return SqliteLearnedStore(Path(state_dir) / "routine.sqlite", clock, background=True)
