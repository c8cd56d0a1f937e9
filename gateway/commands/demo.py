"""``eldergate demo [--duration SECONDS] [--port PORT]`` (contract 5): simulated residents living
accelerated days with incidents, the gateway, and the reference platform with its staff console.
No broker, no hardware: the devices, the gateway and the platform talk in-process, through the
same pipeline, outbox and forwarder as in the field."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from alerts.forwarders.memory import MemoryPlatformLink
from gateway.clock import AcceleratedClock
from gateway.commands.simulate import time_of_day
from gateway.runtime import Runtime
from gateway.settings import parse_settings
from simulators.platform.app import Platform
from simulators.platform.console import Console
from simulators.platform.store import PlatformStore
from simulators.scenarios import SimResident, home_stream
from simulators.transport import InProcessDevices

RESIDENTS = [
    SimResident("r1", ("fall",), seed=1),
    SimResident("r2", ("sos", "night_wander"), seed=2),
    SimResident("r3", ("dead_battery", "collapse"), seed=3, battery_start=30.0),
]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, help="stop after this many seconds (real time)")
    parser.add_argument("--port", type=int, default=8080, help="staff console port")
    parser.add_argument(
        "--speed",
        type=float,
        default=600.0,
        help="simulated seconds per real second (default: a day in 2.4 min)",
    )
    parser.add_argument(
        "--start", default="09:55", type=time_of_day, help="simulated start time of day (UTC)"
    )


def _settings(state_dir: Path, residents: list[SimResident]) -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    for r in residents:
        for d in r.devices():
            entry = {
                "id": d.id,
                "kind": d.kind.value,
                "room": d.room.value,
                "resident": r.id,
                "transport": "simulated",
            }
            if d.role:
                entry["role"] = d.role
            devices.append(entry)
    return {
        "gateway": {
            "id": "demo-gateway",
            "storage_path": str(state_dir),
            "heartbeat_s": 60,
            "timezone": "UTC",
        },
        "residents": [{"id": r.id, "wander_risk": r.resident().wander_risk} for r in residents],
        "devices": devices,
    }


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except OSError as exc:
        print(f"eldergate demo: {exc}", file=sys.stderr)
        return 1


def _print_alert(alert: dict[str, Any]) -> None:
    text = alert.get("text", {})
    print(
        json.dumps(
            {
                "alert": alert.get("type"),
                "severity": alert.get("severity"),
                "resident": alert.get("resident"),
                "t": alert.get("t"),
                "text": text.get("en") or next(iter(text.values()), ""),
            },
            ensure_ascii=False,
        ),
        flush=True,
    )


async def _main(args: argparse.Namespace) -> int:
    today = dt.datetime.now(dt.UTC).date()
    start = dt.datetime.combine(today, args.start, dt.UTC).timestamp()
    clock = AcceleratedClock(start, args.speed)
    platform = Platform(PlatformStore(":memory:"), on_new_alert=_print_alert)
    link = MemoryPlatformLink(platform.receive)
    platform.default_sender = link.send_command
    console = Console(platform, "127.0.0.1", args.port)
    port = await console.start()
    print(
        f"eldergate demo: staff console at http://127.0.0.1:{port} — simulated time runs "
        f"{args.speed:g}x; residents {', '.join(r.id for r in RESIDENTS)}",
        file=sys.stderr,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="eldergate-demo-") as state:
        settings = parse_settings(_settings(Path(state), RESIDENTS), "<demo>")
        devices = InProcessDevices(home_stream(RESIDENTS, start), clock)
        runtime = Runtime(settings, clock, link, [devices])
        task = asyncio.create_task(runtime.run())
        try:
            if args.duration is not None:
                await asyncio.sleep(args.duration)
            else:
                await task
        finally:
            runtime.stop()
            task.cancel()  # in case run() never began
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await runtime.close()
            await console.stop()
    counts = platform.counters
    print(f"eldergate demo: platform received {counts['new_alerts']} alerts", file=sys.stderr)
    return 0
