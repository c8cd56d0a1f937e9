"""Damage an SQLite file the way a failing SD card does."""

from __future__ import annotations

import sqlite3
from pathlib import Path


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
