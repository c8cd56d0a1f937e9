"""The uplink over an HTTPS webhook, for platforms without an MQTT broker.

Each outbox message is POSTed as its JSON payload to ``url`` with the MQTT topic it would have
had in the ``X-Eldergate-Topic`` header (so one platform handler serves both transports); any 2xx
answer is the platform taking responsibility (the role of PUBACK); a 4xx other than 401/403
(the token), 408 and 429 refuses that one message (the role of a PUBACK reason >= 0x80).
Commands are fetched by GET ``url + "/commands"`` every ``poll_s`` seconds (a JSON list of
command objects). Commands are idempotent; the platform serves a pending command on every poll
until it sees the resulting alert change arrive, so a poll answer lost in a torn-down session
loses nothing. TLS with the configured CA, optional client certificate; a bearer token read
from a file. Standard library only, run in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.clock import Clock
from gateway.errors import PublishRefused, UplinkError

log = logging.getLogger(__name__)
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    timeout_s: float = 10.0
    poll_s: float = 30.0


class WebhookSession:
    def __init__(self, link: WebhookPlatformLink) -> None:
        self._link = link

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        await asyncio.to_thread(self._link.request, "POST", "", payload, topic)

    async def subscribe_commands(self) -> str | None:
        return None  # polled: a failing poll is logged by commands()

    async def commands(self) -> AsyncIterator[bytes]:
        """A failed poll is logged (once per reason) and tried again at the next one: the
        POSTs prove the link, and tearing the session down for a command endpoint that
        answers an error cut every session's deliveries short, so alerts waited out a
        growing backoff or never went."""
        failing: str | None = None
        while True:
            try:
                body = await asyncio.to_thread(self._link.request, "GET", "/commands", None, None)
            except UplinkError as exc:
                if exc.reason != failing:
                    log.error("webhook: cannot fetch commands: %s; the alerts still go", exc)
                failing = exc.reason
            else:
                if failing is not None:
                    log.warning("webhook: commands fetched again")
                failing = None
                for command in _command_list(body):
                    yield command
            await self._link.clock.sleep(self._link.settings.poll_s)


def _command_list(body: bytes) -> list[bytes]:
    """The commands of one /commands answer, each as its own JSON document. An answer that is
    not a JSON list is logged and skipped: tearing the session down for it would stop the
    outbox's delivery on every poll while the platform keeps serving it."""
    try:
        # an integer too long for Python (over 4,300 digits) stays text, so that command
        # alone is refused and the others of the answer still go
        commands = json.loads(body or b"[]", parse_int=_int_or_text)
        if not isinstance(commands, list):
            raise TypeError("not a list")
        return [json.dumps(command).encode() for command in commands]
    except (ValueError, TypeError, RecursionError) as exc:
        log.error("webhook: /commands answer ignored: expected a JSON list of commands (%s)", exc)
        return []


def _int_or_text(digits: str) -> int | str:
    return int(digits) if len(digits) <= 64 else digits


class WebhookPlatformLink:
    name = "webhook"

    def __init__(self, settings: WebhookSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        parts = urlsplit(settings.url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"webhook url: expected https://HOST/PATH, got {settings.url!r}")
        self._host = parts.hostname
        self._port = parts.port or 443
        self._path = parts.path.rstrip("/") or ""
        # a token some platforms put in the URL itself (https://HOST/PATH?key=...): it was
        # dropped, every request was refused, and no alert went out
        self._query = f"?{parts.query}" if parts.query else ""
        self._context = ssl.create_default_context(cafile=settings.ca_file)
        if settings.cert_file and settings.key_file:
            self._context.load_cert_chain(settings.cert_file, settings.key_file)

    def request(self, method: str, suffix: str, body: bytes | None, topic: str | None) -> bytes:
        where = f"webhook {self._host}:{self._port}"
        headers = {"Content-Type": "application/json"}
        if topic:
            headers["X-Eldergate-Topic"] = topic
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        conn = http.client.HTTPSConnection(
            self._host, self._port, timeout=self.settings.timeout_s, context=self._context
        )
        try:
            conn.request(method, self._path + suffix + self._query, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(MAX_RESPONSE_BYTES)
        except ssl.SSLCertVerificationError as exc:
            raise UplinkError(
                f"{where}: TLS certificate not trusted ({exc.verify_message})"
            ) from exc
        except ConnectionRefusedError as exc:
            raise UplinkError(f"{where}: connection refused") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise UplinkError(f"{where}: {exc}") from exc
        finally:
            conn.close()
        if response.status in (401, 403):
            raise UplinkError(f"{where}: refused ({response.status}); check the token")
        if method == "POST" and 400 <= response.status < 500 and response.status not in (408, 429):
            # this message, not the link (a timeout or rate limit is the link's)
            raise PublishRefused(f"{where}: refused the message ({response.status})")
        if not 200 <= response.status < 300:
            raise UplinkError(f"{where}: answered {response.status} {response.reason}")
        return data

    @asynccontextmanager
    async def session(self) -> AsyncIterator[WebhookSession]:
        yield WebhookSession(self)
