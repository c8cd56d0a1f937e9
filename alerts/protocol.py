"""The uplink topic tree and message envelopes (documented in docs/protocol.md).

<prefix>/<gateway>/state              retained, {"v":1,"state":"online"|"offline"} (LWT)
<prefix>/<gateway>/alert/<resident>   QoS 1, alert changes (raised, repeated, escalated, ...)
<prefix>/<gateway>/health             retained, heartbeat every ``heartbeat_s``
<prefix>/<gateway>/summary/<resident> QoS 1, the daily well-being summary
<prefix>/<gateway>/command            platform → gateway: ack / resolve / visit_start / visit_end
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.recording import RecordError, TimeFormat

PROTOCOL_VERSION = 1
COMMANDS = frozenset({"ack", "resolve", "visit_start", "visit_end"})
MAX_COMMAND_BYTES = 16 * 1024


@dataclass(frozen=True)
class Topics:
    prefix: str
    gateway: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.gateway}"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def command(self) -> str:
        return f"{self.base}/command"

    def alert(self, resident: str) -> str:
        return f"{self.base}/alert/{resident}"

    def summary(self, resident: str) -> str:
        return f"{self.base}/summary/{resident}"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps({"v": PROTOCOL_VERSION, **message}, ensure_ascii=False).encode()


def state_payload(state: str) -> bytes:
    return encode({"state": state})


class CommandError(ValueError):
    pass


def parse_command(payload: bytes) -> dict[str, Any]:
    """Validate a platform command; raise :class:`CommandError` with the reason."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"command too large ({len(payload)} bytes)")
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError):  # also bad UTF-8 and an integer over 4,300 digits
        raise CommandError("command is not JSON") from None
    if not isinstance(message, dict):
        raise CommandError("command is not a JSON object")
    try:
        # JSON's "\udc00" is a lone surrogate: valid JSON, but no UTF-8 text. Taken into an
        # alert (``by``), no message of that alert could be encoded again, not even its
        # ``restored`` copy at the next start, which then failed.
        json.dumps(message, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise CommandError("command holds text that is not valid Unicode") from None
    version = message.get("v", PROTOCOL_VERSION)  # none: a platform written before it
    if type(version) is not int or version != PROTOCOL_VERSION:  # True is no version
        # a field may change meaning with a new version: such a command cannot be taken as ours
        raise CommandError(f"v: expected {PROTOCOL_VERSION}, got {_short(version)}")
    command = message.get("command")
    if not isinstance(command, str) or command not in COMMANDS:
        raise CommandError(f"command: expected one of {sorted(COMMANDS)}, got {_short(command)}")
    if command in ("ack", "resolve") and not isinstance(message.get("alert_id"), str):
        raise CommandError("alert_id: expected a string")
    if command.startswith("visit") and not isinstance(message.get("resident"), str):
        raise CommandError("resident: expected a string")
    hours = message.get("hours")
    if hours is not None and (
        isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 24
    ):
        raise CommandError("hours: expected a number of hours between 0 and 24")
    issued = message.get("t") if command == "visit_start" else None  # others never read it
    if issued is not None:
        try:  # epoch seconds, or ISO 8601 as a platform may well write it (naive: UTC)
            message["t"] = TimeFormat().parse(issued)
        except RecordError:
            raise CommandError(
                "t: expected when the command was issued, epoch seconds or ISO 8601"
            ) from None
    by = message.get("by", "staff")

    message["by"] = by if isinstance(by, str) and len(by) <= 64 else "staff"
    return message


def _short(value: Any) -> str:
    """A value quoted in a log line, cut short: a command may be 16 KiB."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
