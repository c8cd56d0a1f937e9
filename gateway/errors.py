"""The gateway's exceptions. Library errors (aiomqtt, ssl, sqlite3, bleak) are translated into
these at the boundary, always ``from exc``, with a reason an installer can act on.

EldergateError
 ├── UplinkError(reason)      the platform cannot be reached or refused us
 │    └── PublishRefused      the platform refused one message (MQTT 5 PUBACK reason >= 0x80)
 └── DriverError              a device connection failed (the supervisor restarts the driver)
"""

from __future__ import annotations

import asyncio
import traceback
from pathlib import Path


class EldergateError(Exception):
    pass


class UplinkError(EldergateError):
    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class DriverError(EldergateError):
    pass


class PublishRefused(UplinkError):
    """The platform took the connection but refused this one message (an ACL that does not
    cover the topic, a quota, a payload it rejects): the message is not delivered."""


def crash_site(exc: BaseException) -> str:
    """An unforeseen decoder exception for the log: its type and where it was raised (file,
    line, function, outermost first), not its message, which may quote the payload being
    decoded (a name an installer chose, a heart rate): none of those go into logs, and
    ``exc_info`` would print the message as the traceback's last line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " > ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames)
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__


def reraise_swallowed_cancellation() -> None:
    """Raise the current task's pending cancellation if a library swallowed it. Python 3.11's
    ``asyncio.wait_for`` (which bumble's HCI commands use, and D-Bus clients may) drops a
    cancellation that arrives as the awaited call completes; a loop that goes on would then
    sleep, on a clock that may never move again, instead of stopping."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
