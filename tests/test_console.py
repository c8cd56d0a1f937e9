"""The staff console: alerts newest first, with Acknowledge and Resolve buttons that really act,
through the gateway (in-process link, as in the demo)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from pathlib import Path

from alerts.forwarders.memory import MemoryPlatformLink
from gateway.clock import SystemClock
from gateway.model import Reading
from gateway.runtime import Runtime
from simulators.platform.app import Platform
from simulators.platform.console import Console, render_page
from simulators.platform.store import PlatformStore
from simulators.transport import InProcessDevices
from tests.support.harness import gateway_config, settings_for, wait_until


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def _post(url: str) -> int:
    request = urllib.request.Request(url, data=b"by=nurse-3", method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


async def test_console_lists_alerts_and_acknowledges_through_the_gateway(tmp_path: Path) -> None:
    clock = SystemClock()
    platform = Platform(PlatformStore(":memory:"))
    link = MemoryPlatformLink(platform.receive)
    platform.default_sender = link.send_command
    console = Console(platform, "127.0.0.1", 0)
    port = await console.start()
    now = clock.wall()
    presses = [
        Reading(now - 900, "sos-r1", {"action": "sos"}),
        Reading(now - 10, "sos-r2", {"action": "sos"}),
    ]
    settings = settings_for(gateway_config(tmp_path, None, None))
    runtime = Runtime(settings, clock, link, [InProcessDevices(presses, clock)])
    task = asyncio.create_task(runtime.run())
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until(lambda: len(platform.store.alerts()) == 2)
        page = await asyncio.to_thread(_get, base + "/")
        assert page.index("<td>r2</td>") < page.index("<td>r1</td>")  # newest first
        assert page.count("Acknowledge</button>") == 2 and "紧急呼叫" in page
        assert "gateway gw-test: online" in page
        api = json.loads(await asyncio.to_thread(_get, base + "/api/alerts"))
        target = next(a for a in api if a["resident"] == "r1")
        status = await asyncio.to_thread(_post, f"{base}/alerts/{target['id']}/ack")
        assert status == 303
        await wait_until(lambda: runtime.manager.counters["acknowledged"] == 1)
        assert runtime.manager.active[target["id"]].changed_by == "nurse-3"
        await wait_until(lambda: platform.store.alert(target["id"])["state"] == "acknowledged")
        page = await asyncio.to_thread(_get, base + "/")
        assert page.count("Acknowledge</button>") == 1
        # staff close what they acknowledged (the gateway never resolves an SOS by itself):
        # the acknowledged row offers Resolve, and it really resolves, through the gateway
        row = page[page.index(f'<tr id="{target["id"]}">') :]
        row = row[: row.index("</tr>")]
        assert "Acknowledge</button>" not in row
        assert f'action="/alerts/{target["id"]}/resolve"' in row and "Resolve</button>" in row
        status = await asyncio.to_thread(_post, f"{base}/alerts/{target['id']}/resolve")
        assert status == 303
        await wait_until(lambda: target["id"] not in runtime.manager.active)
        await wait_until(lambda: platform.store.alert(target["id"])["state"] == "resolved")
        page = await asyncio.to_thread(_get, base + "/")
        row = page[page.index(f'<tr id="{target["id"]}">') :]
        assert "</button>" not in row[: row.index("</tr>")]  # closed: nothing left to do
        # a click that crossed the gateway's own close (a cancel, a resolve) on the way does
        # not show the closed alert as open again
        platform.store.set_state(target["id"], "acknowledged", "nurse-4")
        assert platform.store.alert(target["id"])["state"] == "resolved"
        assert await asyncio.to_thread(_post, f"{base}/alerts/nope/ack") == 404
        assert await asyncio.to_thread(_post, f"{base}/elsewhere") == 404
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()
        await console.stop()


def test_the_console_says_what_the_gateway_heartbeat_warns_of() -> None:
    """Staff trust the page only as far as the gateway can be heard and can hear them: its
    last heartbeat's warnings are shown beside its state."""
    platform = Platform(PlatformStore(":memory:"))
    platform.receive("eldergate/gw-1/state", b'{"v": 1, "state": "online"}')
    platform.receive(
        "eldergate/gw-1/health",
        json.dumps(
            {
                "v": 1,
                "state": "online",
                "t": 1796683910.0,
                "outbox": {"alert": 3, "summary": 0},
                "uplink": {"refusals": 4, "held": 2},
                "problems": {"local_mqtt:zigbee2mqtt_bridge": "zigbee2mqtt_bridge"},
                "commands": {"rejected": 2, "refused": "Not authorized (0x87)", "refusals": 1},
            }
        ).encode(),
    )
    page = render_page(platform)
    assert "gateway gw-1: online" in page
    assert "3 alert messages waiting" in page
    assert "2 messages refused by the platform, tried again every 5 min" in page
    assert "not hearing part of the home: zigbee2mqtt_bridge" in page
    assert "staff commands cannot reach it (Not authorized (0x87))" in page
    assert "2 staff commands not taken" in page
    assert "last heartbeat 2026-12-07 22:51:50" in page
    # a quiet heartbeat adds nothing but its time
    platform.receive(
        "eldergate/gw-1/health",
        b'{"v": 1, "state": "online", "t": 1796683970.0, "outbox": {"alert": 0}, '
        b'"uplink": {"refusals": 4, "held": 0}, "problems": {}, '
        b'"commands": {"rejected": 0, "refused": null, "refusals": 0}}',
    )
    assert "gateway gw-1: online; last heartbeat 2026-12-07 22:52:50</p>" in render_page(platform)
