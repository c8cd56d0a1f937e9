"""SQLite files on an SD card that may be damaged: check one at start, set a damaged one aside.

A damaged file must not stop the gateway (a crash loop hears nobody): it is renamed
``<name>.corrupt-<n>`` together with its ``-wal`` and ``-shm`` (a journal left next to a new
file would be replayed into it), kept for an engineer to recover by hand (``sqlite3 FILE
.recover``), and the caller starts a new file.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

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
