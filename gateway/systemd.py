"""systemd notify (Type=notify, WatchdogSec=): READY=1 once the pipeline runs, WATCHDOG=1 from
the processing loop itself, so a wedged pipeline (not just a live process) gets restarted.
Does nothing when not started by systemd (no NOTIFY_SOCKET)."""

from __future__ import annotations

import os
import socket

_last_ping = float("-inf")
WATCHDOG_PING_EVERY_S = 10.0


def notify(message: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


def watchdog_ping(now_mono: float) -> None:
    global _last_ping
    if now_mono - _last_ping >= WATCHDOG_PING_EVERY_S:
        _last_ping = now_mono
        notify("WATCHDOG=1")
