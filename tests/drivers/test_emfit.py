"""The Emfit QS poller against a local HTTP server on loopback, on simulated time."""

from __future__ import annotations

import asyncio
import random

import pytest

from drivers.decoders.encoders import emfit_status_text
from drivers.emfit import EmfitHttpError, EmfitPoller, parse_http_response
from gateway.clock import SimClock
from gateway.model import Reading


class InstantClock(SimClock):
    """Every sleep advances simulated time at once and is recorded."""

    def __init__(self, stop_after: int = 0) -> None:
        super().__init__()
        self.sleeps: list[float] = []
        self.stop_after = stop_after
        self.enough = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.stop_after and len(self.sleeps) >= self.stop_after:
            self.enough.set()
        self.advance(seconds)
        await asyncio.sleep(0)


def _ok(body: str) -> bytes:
    return b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + body.encode()


async def serve(responses: list[bytes | None]):
    """A loopback server answering each connection with the next response (None = hang up)."""
    queue = list(responses)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # the poller was cancelled mid-request
            writer.close()
            return
        answer = queue.pop(0) if queue else _ok(emfit_status_text({"occupied": False}))
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_polls_decodes_and_backs_off_on_failures() -> None:
    good = _ok(emfit_status_text({"occupied": True, "hr": 55, "rr": 12, "movement": 4}))
    server, port = await serve([good, b"HTTP/1.0 500 Oops\r\n\r\n", b"garbage",
                                _ok("PRES=7<br>\r\n"), None, good])
    clock = InstantClock()
    poller = EmfitPoller("bed-p1", "127.0.0.1", clock, port=port, interval_s=1.0,
                         backoff_initial_s=2.0, backoff_max_s=5.0, rng=random.Random(1))
    readings: list[Reading] = []
    done = asyncio.Event()

    async def sink(reading: Reading) -> None:
        readings.append(reading)
        if len(readings) == 2:
            done.set()

    task = asyncio.create_task(poller.run(sink))
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    async with server:
        pass
    assert [r.values for r in readings] == [
        {"occupied": True, "hr": 55, "rr": 12, "movement": 4}] * 2
    assert readings[0].device == "bed-p1"
    assert poller.counters["http_error"] == 2  # the 500 and the garbage
    assert poller.counters["bad_data"] == 1
    assert poller.counters["unreachable"] == 1  # the hang-up
    # One interval after the good poll, then four growing, capped, jittered backoffs.
    assert clock.sleeps[0] == 1.0
    backoffs = clock.sleeps[1:5]
    assert [1.0 <= b <= 2.0 for b in backoffs[:1]] == [True]
    assert all(b <= 5.0 for b in backoffs)
    assert backoffs[2] >= 2.5  # 2 * 2**2 capped at 5, halved at worst
    assert poller.consecutive_failures == 0
    assert 0.0 <= poller.diagnostics()["last_ok_s_ago"] <= 1.0


async def test_unreachable_host_never_raises() -> None:
    server, port = await serve([])
    server.close()
    await server.wait_closed()  # nothing listens on that port any more
    clock = InstantClock(stop_after=12)
    poller = EmfitPoller("bed", "127.0.0.1", clock, port=port, backoff_max_s=60.0)

    async def sink(reading: Reading) -> None:
        raise AssertionError("no reading expected")

    task = asyncio.create_task(poller.run(sink))
    await asyncio.wait_for(clock.enough.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert poller.counters["unreachable"] >= 11
    assert max(clock.sleeps) <= 60.0
    assert poller.diagnostics()["last_ok_s_ago"] is None


@pytest.mark.parametrize("raw", [b"", b"HTTP/1.0 200 OK", b"SSH-2.0\r\n\r\n",
                                 b"HTTP/1.1 404 Not Found\r\n\r\nnope"])
def test_http_responses_rejected(raw: bytes) -> None:
    with pytest.raises(EmfitHttpError):
        parse_http_response(raw)


class _TricklingDevice:
    """A device that answers one byte at a time, each a second apart on the poller's clock:
    never silent long enough for a single read to time out."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.answer = _ok("PRES=1<br>\r\nHR=55<br>\r\n" + "X" * 200_000)
        self.sent = 0
        self.closed = False

    async def read(self, n: int) -> bytes:
        self.clock.advance(1.0)
        await asyncio.sleep(0)
        self.sent += 1
        return self.answer[self.sent - 1 : self.sent]

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        pass


async def test_a_trickling_answer_ends_in_a_timeout_not_hours_of_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each read had its own timeout, and none bounded the whole answer: a device (or
    whatever took its address) sending a byte every second or two held the poll for up to
    64 KiB of them, 18 hours and more, with no failure counted and no reading."""
    clock = SimClock()
    device = _TricklingDevice(clock)

    async def connect(host: str, port: int) -> tuple[_TricklingDevice, _TricklingDevice]:
        return device, device

    monkeypatch.setattr(asyncio, "open_connection", connect)
    poller = EmfitPoller("bed", "192.0.2.1", clock, timeout_s=3.0)
    start = clock.monotonic()
    with pytest.raises(TimeoutError):
        await poller.poll_once()
    assert clock.monotonic() - start <= 3.0 + 1.0
    assert device.closed


class _AnswerCrossingTheStop:
    """A status page whose last bytes arrive just as the gateway stops: the stop cancels the
    poller while it waits in ``asyncio.wait_for`` for the read that is completing."""

    def __init__(self, poller_task: list[asyncio.Task[None]]) -> None:
        self.poller_task = poller_task
        self.answered = False

    async def read(self, n: int) -> bytes:
        if self.answered:
            return b""
        self.answered = True
        self.poller_task[0].cancel()  # systemd's SIGTERM, as the answer comes in
        return _ok(emfit_status_text({"occupied": True, "hr": 55}))

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


async def test_the_poller_stops_although_wait_for_swallowed_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.11's ``asyncio.wait_for`` returns the result of a call that completes as the
    task is cancelled, and drops the cancellation: the poller went on polling (or slept on a
    clock that never moved) and the gateway's stop waited for it until systemd killed it."""
    task: list[asyncio.Task[None]] = []
    device = _AnswerCrossingTheStop(task)

    async def connect(host: str, port: int) -> tuple[_AnswerCrossingTheStop, ...]:
        return device, device

    monkeypatch.setattr(asyncio, "open_connection", connect)
    poller = EmfitPoller("bed", "192.0.2.1", SimClock())
    readings: list[Reading] = []

    async def sink(reading: Reading) -> None:
        readings.append(reading)

    task.append(asyncio.create_task(poller.run(sink)))
    try:
        await asyncio.wait(task, timeout=10)  # bounded: without the fix it never ends
        assert task[0].cancelled()
    finally:
        task[0].cancel()  # a second cancellation ends a hung poller
        await asyncio.wait(task, timeout=10)
