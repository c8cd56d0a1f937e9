"""Learned per-person state, kept across restarts.

Detectors keep small rolling histories (quiet periods, wake-up times, bathroom stays, vital
ranges) as plain JSON-able values under string keys. :class:`SqliteLearnedStore` writes them to a
sqlitedict file at most once per ``commit_every_s`` of monotonic time (SD cards wear out: never
once per reading) and on :meth:`close`; :class:`MemoryLearnedStore` is the same thing in memory,
for tests and replay.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from gateway.clock import Clock
from gateway.storage import set_aside_if_damaged

log = logging.getLogger(__name__)

DEFAULT_COMMIT_EVERY_S = 3600.0


class LearnedStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def put(self, key: str, value: Any) -> None:
        """Remember ``value``; it reaches disk at the next periodic commit at the latest."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemoryLearnedStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.puts = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.puts += 1

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class SqliteLearnedStore:
    """sqlitedict-backed; values are cached in memory and committed in one transaction per
    ``commit_every_s`` (monotonic), so a crash loses at most that much learning."""

    def __init__(
        self, path: str | Path, clock: Clock, commit_every_s: float = DEFAULT_COMMIT_EVERY_S
    ) -> None:
        from sqlitedict import SqliteDict

        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        set_aside_if_damaged(self._path, "learned state")
        self._clock = clock
        self._commit_every_s = commit_every_s
        self._db = SqliteDict(str(self._path), tablename="learned", autocommit=False)
        self._cache: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._last_commit = clock.monotonic()
        self.commits = 0
        try:
            for key, value in self._db.items():
                self._cache[str(key)] = value
        except Exception as exc:  # a corrupt file must not stop the gateway: start afresh
            log.warning("learned state unreadable (%s); starting with defaults", type(exc).__name__)
            self._cache = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._cache.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self._cache[key] = value
        self._dirty.add(key)
        if self._clock.monotonic() - self._last_commit >= self._commit_every_s:
            self.flush()

    def flush(self) -> None:
        self._last_commit = self._clock.monotonic()
        if not self._dirty:
            return
        for key in self._dirty:
            self._db[key] = self._cache[key]
        self._db.commit()
        self._dirty.clear()
        self.commits += 1

    def close(self) -> None:
        self.flush()
        self._db.close()


def open_learned_store(state_dir: Path | None, clock: Clock) -> LearnedStore:
    """The store a gateway uses: on disk under ``state_dir`` (None: in memory, as in replay)."""
    if state_dir is None:
        return MemoryLearnedStore()
    return SqliteLearnedStore(Path(state_dir) / "routine.sqlite", clock)
