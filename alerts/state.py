"""Open alerts survive a restart: staff acknowledging after the gateway rebooted still reach
the alert, a repeated press still joins it, and escalation goes on.

Kept with sqlitedict (one small table, written once per alert change — never per reading).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from sqlitedict import SqliteDict

from gateway.model import Alert, AlertState, Severity

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
    def __init__(self, path: str | Path) -> None:
        self._db = SqliteDict(str(path), tablename="open_alerts", autocommit=False)

    def load(self) -> list[Alert]:
        alerts = []
        for key, record in self._db.items():
            try:
                alerts.append(_from_record(record))
            except (KeyError, ValueError, TypeError) as exc:
                log.error("open alert %s could not be restored (%s); skipped", key, exc)
        return alerts

    def save(self, records: dict[str, dict[str, Any]]) -> None:
        """Make the stored set equal to ``records`` (from :func:`records_of`) in one commit."""
        for key in set(self._db.keys()) - set(records):
            del self._db[key]
        for key, record in records.items():
            self._db[key] = record
        self._db.commit()

    def close(self) -> None:
        self._db.close()
