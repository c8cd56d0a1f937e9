"""Open alerts survive a restart: staff acknowledging after the gateway rebooted still reach
the alert, a repeated press still joins it, and escalation goes on.

Kept in one small SQLite table (``gateway.storage.KeyValueFile``), written once per alert
change — never per reading.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from gateway.model import Alert, AlertState, Severity
from gateway.storage import KeyValueFile

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
    """A damaged file is set aside at start with the alerts that can still be read taken back
    (never a gateway that cannot start); a save that fails (a full SD card) raises and leaves
    the last saved set in place."""

    def __init__(self, path: str | Path) -> None:
        self._file = KeyValueFile(Path(path), "open_alerts", "open alerts")

    def load(self) -> list[Alert]:
        alerts = []
        for key, record in self._file.items().items():
            try:
                alerts.append(_from_record(record))
            except (KeyError, ValueError, TypeError) as exc:
                log.error("open alert %s could not be restored (%s); skipped", key, exc)
        return alerts

    def save(self, records: dict[str, dict[str, Any]]) -> None:
        """Make the stored set equal to ``records`` (from :func:`records_of`) in one commit."""
        self._file.update(records, replace_all=True)

    def close(self) -> None:
        self._file.close()
