"""Damage an SQLite file the way a failing SD card does."""

from __future__ import annotations

import pickle
import sqlite3
import threading
from pathlib import Path
from typing import Any


def scribble_over_a_page(path: Path, page: int = 3) -> None:
    """Overwrite part of one b-tree page of ``path``, then commit an unrelated change from
    another connection so that connections already open read the page again (as they would
    after the page left their cache)."""
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with path.open("r+b") as f:
        f.seek(page * page_size)
        f.write(b"\xff" * 200)
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE IF NOT EXISTS poke(x)")
    other.commit()
    other.close()


class HeldUpWrites:
    """Holds ``path``'s write lock from another connection until :meth:`release`: a write to
    the file meanwhile waits in SQLite's busy handler (up to its connection's timeout, 5 s by
    default) and goes ahead once the lock is released. A slow SD card (an fsync that takes
    seconds) cannot be made in a test; a write held up by a real lock on a real file is as
    slow for whoever waits for it, with nothing of SQLite or the disk replaced."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("BEGIN IMMEDIATE")
        self.released = threading.Event()

    def release(self) -> None:
        if not self.released.is_set():
            self._db.execute("ROLLBACK")
            self._db.close()
            self.released.set()


def values_on_disk(path: Path, table: str) -> dict[str, Any]:
    """What a restart would read of a key-value file's ``table`` now (readers are not held
    up by :class:`HeldUpWrites`)."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(f'SELECT key, value FROM "{table}"').fetchall()
    finally:
        db.close()
    return {key: pickle.loads(blob) for key, blob in rows}
