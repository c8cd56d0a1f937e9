"""The staff console: one HTML page (alerts newest first, with Acknowledge and Resolve buttons
that really act, through the gateway) and a small JSON API. Standard library only."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from simulators.platform.app import Platform

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 64 * 1024

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eldergate — staff console</title>
<meta http-equiv="refresh" content="3">
<style>
body{{font-family:system-ui,sans-serif;margin:1.5rem;background:#f7f7f5}}
table{{border-collapse:collapse;width:100%;background:#fff}}
th,td{{padding:.4rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}
.critical{{color:#b00020;font-weight:bold}} .high{{color:#c25400}} .warning{{color:#7a6a00}}
.state-open,.state-escalated{{font-weight:bold}} .gw{{color:#555;font-size:.9rem}}
button{{padding:.25rem .8rem}}
</style></head><body>
<h1>Alerts</h1><p class="gw">{gateways}</p>
<table><thead><tr><th>Time (UTC)</th><th>Resident</th><th>Type</th><th>Severity</th>
<th>State</th><th>Alert</th><th></th></tr></thead><tbody>
{rows}
</tbody></table></body></html>"""

_ROW = """<tr id="{id}"><td>{time}</td><td>{resident}</td><td>{type}</td>
<td class="{severity}">{severity}</td><td class="state-{state}">{state}{count}</td>
<td>{text}</td><td>{action}</td></tr>"""

_ACK = """<form method="post" action="/alerts/{id}/ack"><button type="submit">Acknowledge</button>
</form>"""

_RESOLVE = """<form method="post" action="/alerts/{id}/resolve">
<button type="submit">Resolve</button></form>"""


def _action(alert: dict[str, Any]) -> str:
    """Acknowledge while nobody has; then Resolve (the gateway never closes an SOS or a fall
    by itself: staff do, once they have seen to it); nothing once closed."""
    alert_id = html.escape(alert["id"])
    if alert["state"] in ("open", "escalated"):
        return _ACK.format(id=alert_id) + _RESOLVE.format(id=alert_id)
    if alert["state"] == "acknowledged":
        return _RESOLVE.format(id=alert_id)
    return ""


def _when(t: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(t), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def _gateway_line(gateway: dict[str, Any]) -> str:
    """A gateway's state, and from its last heartbeat what staff must know before they trust
    the page: alerts still waiting in it, its messages the platform's broker refuses, part of
    the home unheard, their own commands refused or not taken (an Acknowledge shown done that
    never reached it)."""
    line = f"gateway {gateway['id']}: {gateway['state'] or '?'}"
    health = gateway.get("health")
    if not isinstance(health, dict):
        return html.escape(line)
    notes = []
    outbox = health.get("outbox")
    waiting = outbox.get("alert") if isinstance(outbox, dict) else None
    if isinstance(waiting, int) and waiting > 0:
        notes.append(f"{waiting} alert messages waiting to be sent")
    uplink = health.get("uplink")
    held = uplink.get("held") if isinstance(uplink, dict) else None
    if isinstance(held, int) and held > 0:
        notes.append(f"{held} messages refused by the platform, tried again every 5 min")
    problems = health.get("problems")
    if isinstance(problems, dict) and problems:
        notes.append(
            "not hearing part of the home: " + ", ".join(sorted(map(str, problems.values())))
        )
    commands = health.get("commands")
    if isinstance(commands, dict):
        if commands.get("refused"):
            notes.append(f"staff commands cannot reach it ({commands['refused']})")
        if commands.get("rejected"):
            notes.append(f"{commands['rejected']} staff commands not taken")
    if "t" in health:
        notes.append(f"last heartbeat {_when(health['t'])}")
    return html.escape(line + ("; " + "; ".join(notes) if notes else ""))


def render_page(platform: Platform) -> str:
    rows = []
    for a in platform.store.alerts():
        text = " / ".join(html.escape(str(v)) for v in a["text"].values())
        rows.append(
            _ROW.format(
                id=html.escape(a["id"]),
                time=_when(a["t"]),
                resident=html.escape(str(a["resident"])),
                type=html.escape(str(a["type"])),
                severity=html.escape(str(a["severity"])),
                state=html.escape(str(a["state"])),
                count=f" ×{a['count']}" if (a["count"] or 1) > 1 else "",
                text=text,
                action=_action(a),
            )
        )
    gateways = ", ".join(_gateway_line(g) for g in platform.store.gateways())
    return _PAGE.format(
        rows="\n".join(rows) or "<tr><td colspan=7>No alerts.</td></tr>",
        gateways=gateways or "no gateway seen yet",
    )


class Console:
    def __init__(self, platform: Platform, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.platform = platform
        self.host = host
        self.port = port
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, ctype, body, extra = await self._respond(reader)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            ValueError,
            asyncio.LimitOverrunError,
        ):
            status, ctype, body, extra = 400, "text/plain", b"bad request", {}
        head = [
            f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in extra.items()),
        ]
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except ConnectionError:
            pass

    async def _respond(
        self, reader: asyncio.StreamReader
    ) -> tuple[int, str, bytes, dict[str, str]]:
        request = await reader.readuntil(b"\r\n\r\n")
        if len(request) > MAX_REQUEST_BYTES:
            return 413, "text/plain", b"too large", {}
        lines = request.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {
            k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        length = min(int(headers.get("content-length", "0") or 0), MAX_REQUEST_BYTES)
        body = await reader.readexactly(length) if length else b""
        if method == "GET" and path in ("/", "/index.html"):
            return 200, "text/html; charset=utf-8", render_page(self.platform).encode(), {}
        if method == "GET" and path == "/api/alerts":
            data = json.dumps(self.platform.store.alerts(), ensure_ascii=False).encode()
            return 200, "application/json", data, {}
        if method == "POST" and path.startswith("/alerts/") and path.endswith(("/ack", "/resolve")):
            alert_id, action = path[len("/alerts/") :].rsplit("/", 1)
            by = parse_qs(body.decode("utf-8", "replace")).get("by", ["staff"])[0][:64]
            try:
                if action == "ack":
                    found = await self.platform.acknowledge(alert_id, by)
                else:
                    found = await self.platform.resolve(alert_id, by)
            except LookupError as exc:
                return 503, "text/plain", str(exc).encode(), {}
            if not found:
                return 404, "text/plain", b"no such alert", {}
            if "application/json" in headers.get("accept", ""):
                return 200, "application/json", b'{"ok": true}', {}
            return 303, "text/plain", b"", {"Location": "/"}
        return 404, "text/plain", b"not found", {}
