"""Open alerts survive a restart: staff acknowledging after the gateway rebooted still reach
the alert, a repeated press still joins it, and escalation goes on.

Kept with sqlitedict (one small table, written once per alert change — never per reading).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any

from sqlitedict import SqliteDict

from gateway.model import Alert, AlertState, Severity
from gateway.storage import set_aside_if_damaged

log = logging.getLogger(__name__)


def records_of(active: dict[str, Alert]) -> dict[str, dict[str, Any]]:
    """Plain copies, taken on the event loop before the storage thread writes them."""
    return {key: _to_record(alert) for key, alert in active.items()}


def _to_record(alert: Alert) -> dict[str, Any]:
    record = dataclasses.asdict(alert)
    record["severity"] = alert.severity.label
    record["state"] = alert.state.value
    return record


def _from_record(record: dict[str, Any]) -> Alert:
    fields = {f.name for f in dataclasses.fields(Alert)}
    values = {k: v for k, v in record.items() if k in fields}
    values["severity"] = Severity.parse(values["severity"])
    values["state"] = AlertState(values["state"])
    return Alert(**values)


class OpenAlertStore:
    """A damaged file is set aside at start (the open alerts are lost, not the gateway). A save
    that fails (a full SD card) raises; the next one reopens the file and writes the whole set
    again, since sqlitedict stays broken after an error."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        set_aside_if_damaged(self._path, "open alerts")
        self._db: SqliteDict | None = self._open()

    def _open(self) -> SqliteDict:
        return SqliteDict(str(self._path), tablename="open_alerts", autocommit=False)

    def load(self) -> list[Alert]:
        alerts = []
        for key, record in self._opened().items():
            try:
                alerts.append(_from_record(record))
            except (KeyError, ValueError, TypeError) as exc:
                log.error("open alert %s could not be restored (%s); skipped", key, exc)
        return alerts

    def save(self, records: dict[str, dict[str, Any]]) -> None:
        """Make the stored set equal to ``records`` (from :func:`records_of`) in one commit."""
        db = self._opened()
        try:
            for key in set(db.keys()) - set(records):
                del db[key]
            for key, record in records.items():
                db[key] = record
            db.commit()
        except Exception:
            self._db = None
            with contextlib.suppress(Exception):
                db.close(do_log=False, force=True)
            raise

    def _opened(self) -> SqliteDict:
        if self._db is None:
            self._db = self._open()
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
