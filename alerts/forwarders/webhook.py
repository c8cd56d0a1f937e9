"""The uplink over an HTTPS webhook, for platforms without an MQTT broker.

Each outbox message is POSTed as its JSON payload to ``url`` with the MQTT topic it would have
had in the ``X-Eldergate-Topic`` header (so one platform handler serves both transports); any 2xx
answer is the platform taking responsibility (the role of PUBACK). Commands are fetched by GET
``url + "/commands"`` every ``poll_s`` seconds (a JSON list of command objects). Commands are
idempotent; the platform serves a pending command on every poll until it sees the resulting
alert change arrive, so a poll answer lost in a torn-down session loses nothing. TLS with the
configured CA, optional client certificate; a bearer token read from a file. Standard library
only, run in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.clock import Clock
from gateway.errors import UplinkError

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

    async def commands(self) -> AsyncIterator[bytes]:
        while True:
            body = await asyncio.to_thread(self._link.request, "GET", "/commands", None, None)
            try:
                commands = json.loads(body or b"[]")
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UplinkError("webhook: /commands answered with something not JSON") from None
            for command in commands if isinstance(commands, list) else []:
                yield json.dumps(command).encode()
            await self._link.clock.sleep(self._link.settings.poll_s)


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
            conn.request(method, self._path + suffix, body=body, headers=headers)
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
        if not 200 <= response.status < 300:
            raise UplinkError(f"{where}: answered {response.status} {response.reason}")
        return data

    @asynccontextmanager
    async def session(self) -> AsyncIterator[WebhookSession]:
        yield WebhookSession(self)
