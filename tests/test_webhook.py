"""The HTTPS webhook uplink against a real TLS server on loopback: delivered in order, retried
on a server error, commands fetched."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from alerts.forwarder import Forwarder
from alerts.forwarders.webhook import WebhookPlatformLink, WebhookSettings
from alerts.outbox import ALERT, AsyncOutbox, Outbox
from alerts.protocol import Topics
from gateway.backoff import Backoff
from gateway.clock import Clock, SimClock, SystemClock
from tests.support.harness import wait_until
from tests.support.mosquitto import Pki


class Hook:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.fail_next = 1
        self.commands: object = [{"command": "ack", "alert_id": "a1", "by": "nurse"}]
        self.refused_topics: set[str] = set()  # answered 422
        self.commands_status = 200  # the answer to GET /commands
        self.paths: list[tuple[str, str]] = []  # (method, path with its query)


@pytest.fixture
def webhook_server(pki: Pki) -> Iterator[tuple[int, Hook]]:
    hook = Hook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            hook.paths.append(("POST", self.path))
            if self.headers.get("Authorization") != "Bearer s3cret":
                return self._answer(401)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if hook.fail_next:
                hook.fail_next -= 1
                return self._answer(500)
            if self.headers["X-Eldergate-Topic"] in hook.refused_topics:
                return self._answer(422)
            hook.received.append((self.headers["X-Eldergate-Topic"], json.loads(body)))
            self._answer(200)

        def do_GET(self) -> None:
            # Pending commands are served on every poll: they are idempotent, and a poll whose
            # answer was lost (session torn down mid-request) must not lose a command.
            hook.paths.append(("GET", self.path))
            if hook.commands_status != 200:
                return self._answer(hook.commands_status)
            raw = hook.commands if isinstance(hook.commands, bytes) else None
            self._answer(200, raw or json.dumps(hook.commands).encode())

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hook
    server.shutdown()
    server.server_close()


def webhook_forwarder(
    outbox: AsyncOutbox,
    pki: Pki,
    port: int,
    poll_s: float,
    commands: list[bytes],
    clock: Clock | None = None,
    path: str = "/hook",
) -> Forwarder:
    """A forwarder draining ``outbox`` to the test server, commands appended to ``commands``
    (one that is not an object with a "command" string makes the handler raise)."""
    clock = clock or SystemClock()

    async def on_command(payload: bytes) -> None:
        commands.append(payload)
        if not isinstance(json.loads(payload)["command"], str):
            raise TypeError("a handler that cannot take this command")

    async def health() -> dict:
        return {"state": "online"}

    settings = WebhookSettings(
        f"https://localhost:{port}{path}", str(pki.ca), token="s3cret", poll_s=poll_s
    )
    link = WebhookPlatformLink(settings, clock)
    return Forwarder(
        outbox,
        link,
        Topics("eldergate", "gw"),
        clock,
        on_command,
        health,
        heartbeat_s=3600,
        backoff=Backoff(0.01, 0.05),
    )


@contextlib.asynccontextmanager
async def running_forwarder(forwarder: Forwarder) -> AsyncIterator[Forwarder]:
    """The forwarder running for the block; then stopped, and its outbox closed."""
    task = asyncio.create_task(forwarder.run())
    try:
        yield forwarder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await forwarder.outbox.close()


async def test_webhook_delivers_in_order_retries_and_fetches_commands(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook], caplog: pytest.LogCaptureFixture
) -> None:
    port, hook = webhook_server
    outbox = AsyncOutbox(Outbox(tmp_path / "o.db", SystemClock()))
    for i in range(3):
        await outbox.put(ALERT, "r1", "eldergate/gw/alert/r1", json.dumps({"n": i}).encode())
    commands: list[bytes] = []
    forwarder = webhook_forwarder(outbox, pki, port, 0.05, commands)
    async with running_forwarder(forwarder):
        await wait_until(
            lambda: {b.get("n") for t, b in hook.received if "/alert/" in t} == {0, 1, 2}
        )
        await wait_until(lambda: forwarder.counters["sent"] == 3)
        await wait_until(lambda: len(commands) >= 1)
        assert await outbox.depth() == {}
    alerts = [body["n"] for topic, body in hook.received if topic.endswith("/alert/r1")]
    # At least once, in order: a message cut off by the failed session may come twice.
    assert list(dict.fromkeys(alerts)) == [0, 1, 2] and sorted(alerts) == alerts
    assert forwarder.counters["failures"] >= 1
    assert any("answered 500" in r.getMessage() for r in caplog.records)
    assert json.loads(commands[0])["alert_id"] == "a1"


async def test_a_failing_webhook_is_reported_down_once_and_restored_once(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook], caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook session opens without reaching the server: the uplink counts as restored only
    once a message is delivered, so an outage logs one "down" line, not one pair per retry."""
    port, hook = webhook_server
    hook.fail_next = 1_000_000
    outbox = AsyncOutbox(Outbox(tmp_path / "o.db", SystemClock()))
    await outbox.put(ALERT, "r1", "eldergate/gw/alert/r1", b'{"n": 0}')
    forwarder = webhook_forwarder(outbox, pki, port, 60.0, [])
    messages = lambda: [r.getMessage() for r in caplog.records]  # noqa: E731
    async with running_forwarder(forwarder):
        await wait_until(lambda: forwarder.counters["failures"] >= 5)
        assert not forwarder.connected.is_set()
        assert forwarder.counters["connects"] == 0
        assert sum(m.startswith("uplink down") for m in messages()) == 1
        assert not any(m.startswith("uplink restored") for m in messages())
        hook.fail_next = 0
        await wait_until(lambda: forwarder.counters["sent"] == 1)
        assert forwarder.connected.is_set()
        assert sum(m.startswith("uplink restored") for m in messages()) == 1


async def test_webhook_with_wrong_token_is_a_clear_error(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook]
) -> None:
    port, _ = webhook_server
    link = WebhookPlatformLink(
        WebhookSettings(f"https://127.0.0.1:{port}/hook", str(pki.ca), token="wrong"),
        SystemClock(),
    )
    from gateway.errors import UplinkError

    async with link.session() as session:
        with pytest.raises(UplinkError, match="refused \\(401\\); check the token"):
            await session.publish("t", b"{}")


async def test_commands_the_gateway_cannot_use_never_stop_delivery(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook], caplog: pytest.LogCaptureFixture
) -> None:
    """The platform serves a pending command on every poll: one that tore the session down
    would stop the outbox for good. A /commands answer that is not a JSON list, and a command
    whose handling raises, are logged and counted; every alert still goes."""
    port, hook = webhook_server
    hook.fail_next = 0
    outbox = AsyncOutbox(Outbox(tmp_path / "o.db", SystemClock()))
    commands: list[bytes] = []
    forwarder = webhook_forwarder(outbox, pki, port, 0.01, commands)
    async with running_forwarder(forwarder):
        hook.commands = {"command": "ack"}  # not a list
        await wait_until(
            lambda: any("/commands answer ignored" in r.getMessage() for r in caplog.records)
        )
        hook.commands = [{"command": ["ack"]}]
        await wait_until(lambda: forwarder.counters["command_errors"] >= 2)
        for i in range(5):
            await outbox.put(ALERT, "r1", "eldergate/gw/alert/r1", json.dumps({"n": i}).encode())
        await wait_until(lambda: forwarder.counters["sent"] == 5)
    assert forwarder.counters["failures"] == 0 and forwarder.counters["connects"] == 1
    assert [b["n"] for t, b in hook.received if "/alert/" in t] == [0, 1, 2, 3, 4]


async def test_messages_the_webhook_refuses_wait_others_go_on(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook]
) -> None:
    port, hook = webhook_server
    hook.fail_next = 0
    hook.refused_topics = {"eldergate/gw/alert/r2"}
    outbox = AsyncOutbox(Outbox(tmp_path / "o.db", SystemClock()))
    for i, resident in enumerate(["r2", "r1", "r2", "r1"]):
        await outbox.put(
            ALERT, resident, f"eldergate/gw/alert/{resident}", json.dumps({"n": i}).encode()
        )
    clock = SimClock()
    forwarder = webhook_forwarder(outbox, pki, port, 60.0, [], clock)
    forwarder.heartbeat_s = 60.0  # the next heartbeat before the refused ones' retry

    def uplink() -> object:
        beats = [b for t, b in hook.received if t == "eldergate/gw/health"]
        return beats[-1].get("uplink") if beats else None

    async with running_forwarder(forwarder):
        await wait_until(lambda: forwarder.counters["sent"] == 2)
        assert [i.resident for i in outbox.outbox.pending()] == ["r2", "r2"]
        clock.advance(forwarder.heartbeat_s)
        await wait_until(lambda: uplink() == {"refusals": 2, "held": 2})
    assert [b["n"] for t, b in hook.received if "/alert/" in t] == [1, 3]
    assert forwarder.counters["refused"] == 2 and forwarder.counters["failures"] == 0


@pytest.mark.parametrize("status", [404, 500])
async def test_a_failing_commands_endpoint_never_stops_delivery(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook], status: int
) -> None:
    """GET /commands answering an error (a platform whose command service is broken or not
    there) while POSTs are taken: each session's first poll tore the session down with the
    POSTs in flight, so the alerts behind it waited out a growing backoff, or never went."""
    port, hook = webhook_server
    hook.fail_next = 0
    hook.commands_status = status
    clock = SimClock()  # nobody advances it: a backoff would never end
    outbox = AsyncOutbox(Outbox(tmp_path / "o.db", clock))
    for i in range(3):
        await outbox.put(ALERT, "r1", "eldergate/gw/alert/r1", json.dumps({"n": i}).encode())
    forwarder = webhook_forwarder(outbox, pki, port, 30.0, [], clock)
    async with running_forwarder(forwarder):
        await wait_until(lambda: forwarder.counters["sent"] == 3, timeout=10)
        assert await outbox.depth() == {}
        hook.commands_status = 200  # the next poll, on time, fetches the commands again
        clock.advance(30.0)
        await wait_until(lambda: forwarder.counters["commands"] >= 1)
    assert forwarder.counters["failures"] == 0 and forwarder.counters["connects"] == 1
    assert [b["n"] for t, b in hook.received if "/alert/" in t] == [0, 1, 2]


async def test_a_webhook_url_with_a_query_keeps_it_on_every_request(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook]
) -> None:
    """Some platforms put a key in the URL itself: it was dropped from every request."""
    port, hook = webhook_server
    hook.fail_next = 0
    outbox = AsyncOutbox(Outbox(tmp_path / "o.db", SystemClock()))
    await outbox.put(ALERT, "r1", "eldergate/gw/alert/r1", b'{"n": 0}')
    commands: list[bytes] = []
    forwarder = webhook_forwarder(outbox, pki, port, 0.05, commands, path="/hook?key=k1")
    async with running_forwarder(forwarder):
        await wait_until(lambda: forwarder.counters["sent"] == 1 and len(commands) >= 1)
    assert ("POST", "/hook?key=k1") in hook.paths
    assert ("GET", "/hook/commands?key=k1") in hook.paths


async def test_one_command_with_a_number_python_cannot_read_spoils_no_other(
    tmp_path: Path, pki: Pki, webhook_server: tuple[int, Hook]
) -> None:
    """An integer of over 4,300 digits made the whole /commands answer unreadable, and the
    staff's acknowledgement beside it was lost with it."""
    port, hook = webhook_server
    hook.fail_next = 0
    huge = b"1" + b"0" * 5000
    hook.commands = (
        b'[{"command": "visit_start", "resident": "r1", "t": %s},'
        b' {"command": "ack", "alert_id": "a2", "by": "nurse"}]' % huge
    )
    outbox = AsyncOutbox(Outbox(tmp_path / "o.db", SystemClock()))
    commands: list[bytes] = []
    forwarder = webhook_forwarder(outbox, pki, port, 0.05, commands)
    async with running_forwarder(forwarder):
        await wait_until(lambda: any(b"a2" in c for c in commands))
    first = json.loads(next(c for c in commands if b"visit_start" in c))
    assert first["t"] == huge.decode()  # left as text: parse_command refuses that one alone
