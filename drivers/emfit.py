"""Emfit QS bed sensor: polls the device's local HTTP API (``/dvmstatus.htm``) about once a
second and yields bed readings (``occupied``, ``hr``, ``rr``, ``movement``).

Standard library only: one short HTTP/1.0 request per poll over ``asyncio.open_connection``.
Failures (unreachable, timeout, HTTP error, garbled body) are counted by kind and retried with
a random, exponential, capped backoff on the injected clock; the poller never gives up and
never raises out of :meth:`EmfitPoller.run` except on cancellation. A bed that stays
unreachable shows up through device health (no readings → ``device_offline``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from drivers.base import ReadingSink, StopFlag
from drivers.decoders import DecodeError
from drivers.decoders.bed import decode_emfit
from gateway.clock import Clock
from gateway.model import Reading

log = logging.getLogger(__name__)
MAX_RESPONSE_BYTES = 64 * 1024


class EmfitHttpError(Exception):
    """The device answered, but not with a status page."""


class EmfitPoller(StopFlag):
    def __init__(
        self,
        device_id: str,
        host: str,
        clock: Clock,
        *,
        port: int = 80,
        path: str = "/dvmstatus.htm",
        interval_s: float = 1.0,
        timeout_s: float = 3.0,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        self.name = f"emfit[{device_id}]"
        self.device_id = device_id
        self.host = host
        self.port = port
        self.path = path
        self.clock = clock
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.rng = rng or random.Random()
        self.consecutive_failures = 0
        self.counters: dict[str, int] = {"polls": 0, "readings": 0, "unreachable": 0,
                                         "timeout": 0, "http_error": 0, "bad_data": 0}
        self.last_ok_mono: float | None = None

    async def fetch(self) -> str:
        """One GET of the status page → its body text, all within ``timeout_s`` (a device
        trickling its answer a byte at a time must not hold the poll for hours)."""
        deadline = self.clock.monotonic() + self.timeout_s

        def left() -> float:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise TimeoutError
            return min(remaining, self.timeout_s)

        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), left())
        try:
            request = (f"GET {self.path} HTTP/1.0\r\nHost: {self.host}\r\n"
                       "Connection: close\r\n\r\n")
            writer.write(request.encode("ascii"))
            timeout = left()  # each before its call: a coroutine made must be awaited
            await asyncio.wait_for(writer.drain(), timeout)
            raw = b""
            while len(raw) <= MAX_RESPONSE_BYTES:
                timeout = left()
                more = await asyncio.wait_for(reader.read(MAX_RESPONSE_BYTES + 1), timeout)
                if not more:
                    break
                raw += more
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        if not raw:
            raise ConnectionError("closed without answering")
        return parse_http_response(raw)

    async def poll_once(self) -> Reading:
        """Fetch and decode once (raises on failure)."""
        fields = decode_emfit(await self.fetch())
        t = fields.pop("t", None)
        return Reading(t=float(t) if t is not None else self.clock.wall(), device=self.device_id,
                       values=fields)

    def next_backoff_s(self) -> float:
        """Random in [1/2, 1] of the capped exponential (jitter spreads reconnects)."""
        step = self.backoff_initial_s * 2 ** max(0, self.consecutive_failures - 1)
        return min(self.backoff_max_s, step) * (0.5 + 0.5 * self.rng.random())

    async def run(self, sink: ReadingSink) -> None:
        while True:
            self._stop_if_asked()
            self.counters["polls"] += 1
            try:
                reading = await self.poll_once()
            except TimeoutError:
                self._failed("timeout")
            except (OSError, ConnectionError):
                self._failed("unreachable")
            except EmfitHttpError as exc:
                self._failed("http_error", str(exc))
            except DecodeError as exc:
                self._failed("bad_data", str(exc))
            else:
                self._stop_if_asked()  # the poll's wait_for may have swallowed the stop
                if self.consecutive_failures:
                    log.info("%s: reachable again after %d failures", self.name,
                             self.consecutive_failures)
                self.consecutive_failures = 0
                self.last_ok_mono = self.clock.monotonic()
                self.counters["readings"] += 1
                await sink(reading)
                await self.clock.sleep(self.interval_s)
                continue
            await self.clock.sleep(self.next_backoff_s())

    def _failed(self, kind: str, reason: str = "") -> None:
        self.counters[kind] += 1
        self.consecutive_failures += 1
        if self.consecutive_failures in (1, 10) or self.consecutive_failures % 100 == 0:
            log.warning("%s: poll failed (%s%s), %d in a row", self.name, kind,
                        f": {reason}" if reason else "", self.consecutive_failures)

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}  # one bed: its silence is device health's (device_offline)

    def diagnostics(self) -> dict[str, Any]:
        age = (None if self.last_ok_mono is None
               else round(self.clock.monotonic() - self.last_ok_mono, 1))
        return {**self.counters, "consecutive_failures": self.consecutive_failures,
                "last_ok_s_ago": age}


def parse_http_response(raw: bytes) -> str:
    if len(raw) > MAX_RESPONSE_BYTES:
        raise EmfitHttpError("response too large")
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise EmfitHttpError("no HTTP header")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise EmfitHttpError("not an HTTP response")
    if parts[1] != "200":
        raise EmfitHttpError(f"HTTP status {parts[1]}")
    return body.decode("utf-8", errors="replace")


__all__ = ["EmfitHttpError", "EmfitPoller", "parse_http_response"]
