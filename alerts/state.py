"""Open alerts survive a restart: staff acknowledging after the gateway rebooted still reach
the alert, a repeated press still joins it, and escalation goes on.

They are kept as plain records in the outbox's file, written in the same transaction as the
messages of each alert change (``Outbox.commit``) — never per reading. Earlier versions kept
them in a file of their own (``alerts.sqlite3``), which :func:`take_over_legacy_file` moves
into the outbox once.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from alerts.manager import AlertManager
from alerts.outbox import Outbox
from gateway.model import Alert, AlertState, Severity
from gateway.storage import KeyValueFile

log = logging.getLogger(__name__)


# Visits under way, and the behaviour alerts held back for them, are kept beside the open
# alerts, under keys no alert id can take (alert ids are ``<gateway id>-<hex>``).
VISITS_KEY = "~visits"
HELD_KEY = "~held"


def records_of(manager: AlertManager) -> dict[str, Any]:
    """The manager's open alerts and visits as plain copies, taken on the event loop before
    the storage thread writes them."""
    records: dict[str, Any] = {key: _to_record(a) for key, a in manager.active.items()}
    visits = manager.visit_records()
    if visits:
        records[VISITS_KEY] = visits
    held = manager.held_records()
    if held:
        records[HELD_KEY] = held
    return records


def visits_of(records: dict[str, Any]) -> list[Any]:
    visits = records.get(VISITS_KEY, [])
    return visits if isinstance(visits, list) else []


def held_of(records: dict[str, Any]) -> list[Any]:
    held = records.get(HELD_KEY, [])
    return held if isinstance(held, list) else []


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


def alerts_of(records: dict[str, Any]) -> list[Alert]:
    """The alerts of :func:`records_of`'s records; one that cannot be read is logged and
    skipped."""
    alerts = []
    for key, record in records.items():
        if key in (VISITS_KEY, HELD_KEY):
            continue
        try:
            alerts.append(_from_record(record))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            log.error("open alert %s could not be restored (%s); skipped", key, exc)
    return alerts


LEGACY_FILE = "alerts.sqlite3"


def take_over_legacy_file(state_dir: Path, outbox: Outbox) -> None:
    """Move the open alerts an earlier version kept in ``alerts.sqlite3`` into the outbox,
    then remove that file. The file is the newest set whenever it exists, since this version
    removes it and never writes it: after a rollback to an earlier version and back, the
    outbox's own set is the older one."""
    path = state_dir / LEGACY_FILE
    if not path.exists():
        return
    legacy = KeyValueFile(path, "open_alerts", "open alerts (earlier version)")
    records = legacy.items()
    legacy.close()
    outbox.commit([], records)
    if outbox.has_unsaved:
        return  # the disk refused: keep the old file for the next start
    log.warning("%d open alerts moved from %s into the outbox", len(records), LEGACY_FILE)
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
