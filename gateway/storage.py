"""SQLite files on an SD card that may be damaged or full: check one at start, set a damaged
one aside; :class:`KeyValueFile` for small state that must never hang the gateway.

A damaged file must not stop the gateway (a crash loop hears nobody): it is renamed
``<name>.corrupt-<n>`` together with its ``-wal`` and ``-shm`` (a journal left next to a new
file would be replayed into it), kept for an engineer to recover by hand (``sqlite3 FILE
.recover``), and the caller starts a new file.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import sqlite3
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def is_damage(exc: BaseException) -> bool:
    """SQLite's "file is not a database" / "database disk image is malformed" (not a full
    disk or a lock, which are ``OperationalError`` and pass)."""
    return type(exc) is sqlite3.DatabaseError


def set_aside(path: Path) -> Path:
    """Rename ``path`` (and its journal files) to the first free ``<name>.corrupt-<n>``."""
    n = 1
    while path.with_name(f"{path.name}.corrupt-{n}").exists():
        n += 1
    aside = path.with_name(f"{path.name}.corrupt-{n}")
    for suffix in ("-wal", "-shm"):
        journal = path.with_name(path.name + suffix)
        if journal.exists():
            journal.replace(aside.with_name(aside.name + suffix))
    path.replace(aside)
    return aside


def set_aside_if_damaged(path: Path, what: str) -> Path | None:
    """If ``path`` exists and SQLite's ``quick_check`` does not pass, set it aside and return
    where it went (the caller then starts afresh); None for a sound or missing file."""
    if not path.exists():
        return None
    problem: str | None = None
    try:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
        if rows != [("ok",)]:
            problem = "; ".join(str(r[0]) for r in rows[:3])
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        problem = str(exc)
    if problem is None:
        return None
    aside = set_aside(path)
    log.critical(
        "%s file %s is damaged (%s): set aside as %s", what, path.name, problem, aside.name
    )
    return aside


def readable_rows(
    path: Path, table: str, columns: str, *, read_only: bool = False
) -> list[tuple[Any, ...]]:
    """Rows of a damaged file's ``table`` that a scan reaches from either end (by rowid)
    before it meets the damage, in rowid order; what sat in damaged pages is not among them.
    ``read_only``: a file that cannot be opened for writing (an SD card worn out into
    read-only) is read as it stands, without its write-ahead log."""
    found: dict[int, tuple[Any, ...]] = {}
    with contextlib.suppress(sqlite3.Error):
        if read_only:
            old = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        else:
            old = sqlite3.connect(path)
        try:
            for order in ("ASC", "DESC"):
                query = f'SELECT rowid, {columns} FROM "{table}" ORDER BY rowid {order}'
                with contextlib.suppress(sqlite3.Error):
                    for row in old.execute(query):
                        found[row[0]] = tuple(row[1:])
        finally:
            old.close()
    return [found[rowid] for rowid in sorted(found)]


class KeyValueFile:
    """Pickled values by string key in one table of one SQLite file, written in one
    transaction per call; errors (a full SD card) raise at once and leave the file as it was.

    The layout is sqlitedict's (``key TEXT PRIMARY KEY, value BLOB``, pickled), so files it
    wrote read the same; sqlitedict itself is not used because its ``commit()`` never returns
    once a write has failed in its worker thread (piskvorky/sqlitedict#108): on a full SD card
    the whole gateway froze, falls and SOS included. A damaged file is set aside at start;
    what can be read of it goes to the new file, or, while a full card refuses that, is kept
    in memory (:meth:`items` includes it) and written with the first :meth:`update` it takes."""

    def __init__(self, path: Path, table: str, what: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = set_aside_if_damaged(path, what)
        self._what = what
        self._table = table
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA synchronous=FULL")
        self._read_back: list[tuple[Any, Any]] = []  # of a damaged file, not yet written
        if aside is not None:
            self._read_back = readable_rows(aside, table, "key, value")
            log.warning("%s: %d values read back from %s", what, len(self._read_back), aside.name)
        try:  # creates the table, with what was read back
            self.update({})
        except sqlite3.Error as exc:  # a full card must not stop the start: tried at each update
            log.error("%s: file not written (%s); what it holds is kept in memory", what, exc)

    def items(self) -> dict[str, Any]:
        """Every value that can be read back (one that cannot is logged and left out)."""
        found: dict[str, Any] = {}
        try:
            rows = self._db.execute(f'SELECT key, value FROM "{self._table}"').fetchall()
        except sqlite3.OperationalError:
            if not self._read_back:
                raise
            rows = []  # a new file the card did not let us start: only what was read back
        for key, blob in [*self._read_back, *rows]:
            try:
                found[str(key)] = pickle.loads(blob)
            except Exception as exc:  # a value written by other code, or damaged
                log.error("%s: value %s unreadable (%s); left out", self._what, key, exc)
        return found

    def update(self, values: dict[str, Any], *, replace_all: bool = False) -> None:
        """Write ``values`` (with ``replace_all``, the table becomes exactly ``values``)."""
        self.write(
            [(key, pickle.dumps(value, pickle.HIGHEST_PROTOCOL)) for key, value in values.items()],
            replace_all=replace_all,
        )

    def write(self, rows: list[tuple[str, bytes]], *, replace_all: bool = False) -> None:
        """:meth:`update` with values already pickled (by a caller that hands the write to
        another thread: the values are then a snapshot that thread never shares). Calls may
        come from any thread, one at a time."""
        table = f'"{self._table}"'
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB)"
            )
            if replace_all:
                self._db.execute(f"DELETE FROM {table}")
            else:
                self._db.executemany(
                    f"REPLACE INTO {table} (key, value) VALUES (?, ?)", self._read_back
                )
            self._db.executemany(f"REPLACE INTO {table} (key, value) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._read_back = []

    def close(self) -> None:
        self._db.close()
