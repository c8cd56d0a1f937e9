"""Learned per-person state, kept across restarts.

Detectors keep small rolling histories (quiet periods, wake-up times, bathroom stays, vital
ranges) as plain JSON-able values under string keys. :class:`SqliteLearnedStore` writes them to
an SQLite file (``gateway.storage.KeyValueFile``) at most once per ``commit_every_s`` of
monotonic time (SD cards wear out: never once per reading), within ``soon_s`` of a change put
with ``soon`` (one a restart must not miss), and on :meth:`close`. The commit is made by the next
``put`` or :meth:`commit_due` (the detectors' tick), so a change reaches disk within its period
even when the home then falls silent;
:class:`MemoryLearnedStore` is the same thing in memory, for tests and replay.
"""

from __future__ import annotations

import logging
import sqlite3
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
    must never stop the detectors that run on the same loop."""

    def __init__(
        self,
        path: str | Path,
        clock: Clock,
        commit_every_s: float = DEFAULT_COMMIT_EVERY_S,
        soon_s: float = DEFAULT_SOON_S,
    ) -> None:
        self._clock = clock
        self._commit_every_s = commit_every_s
        self._soon_s = soon_s
        self._soon = False
        self._file = KeyValueFile(Path(path), "learned", "learned state")
        self._cache: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._last_commit = clock.monotonic()
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
        if not self._dirty:
            return
        elapsed = self._clock.monotonic() - self._last_commit
        if elapsed >= self._commit_every_s or (self._soon and elapsed >= self._soon_s):
            self.flush()

    def flush(self) -> None:
        self._last_commit = self._clock.monotonic()
        if not self._dirty:
            return
        try:
            self._file.update({key: self._cache[key] for key in self._dirty})
        except sqlite3.Error as exc:
            self.commit_errors += 1
            log.error("learned state not saved (%s); kept in memory, tried again later", exc)
            return
        self._dirty.clear()
        self._soon = False
        self.commits += 1

    def close(self) -> None:
        self.flush()
        self._file.close()


def open_learned_store(state_dir: Path | None, clock: Clock) -> LearnedStore:
    """The store a gateway uses: on disk under ``state_dir`` (None: in memory, as in replay)."""
    if state_dir is None:
        return MemoryLearnedStore()
    return SqliteLearnedStore(Path(state_dir) / "routine.sqlite", clock)
