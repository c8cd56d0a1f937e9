"""The interface every device driver implements.

A driver owns one connection (a broker, a BLE adapter, an HTTP poller), converts what it
receives into :class:`gateway.model.Reading` at its boundary, and hands readings to ``sink``.
``run`` returns only when cancelled; any exception it raises is caught by the runtime's
supervisor, logged with a traceback, counted, and the driver is restarted with backoff.
A driver never takes the gateway down.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.model import Reading

ReadingSink = Callable[[Reading], Awaitable[None]]


class Driver(Protocol):
    name: str

    async def run(self, sink: ReadingSink) -> None: ...

    def diagnostics(self) -> dict[str, Any]: ...
