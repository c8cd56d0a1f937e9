"""``eldergate platform``: the reference community platform alone (broker subscriber, SQLite,
staff console)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from gateway.commands._broker import add_broker_arguments, broker_from_arguments
from gateway.settings import BrokerSettings
from simulators.platform.app import Platform
from simulators.platform.console import Console
from simulators.platform.mqtt import PlatformMqttService
from simulators.platform.store import PlatformStore

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    add_broker_arguments(parser, "127.0.0.1:8883")
    parser.add_argument("--db", default="platform.sqlite3", help="SQLite file for alerts")
    parser.add_argument("--port", type=int, default=8080, help="staff console port")
    parser.add_argument("--prefix", default="eldergate", help="uplink topic prefix")


def run(args: argparse.Namespace) -> int:
    broker = broker_from_arguments(args)
    return asyncio.run(_main(args, broker))


def print_alert(alert: dict[str, object]) -> None:
    print(
        json.dumps(
            {
                "received": alert.get("type"),
                "id": alert.get("id"),
                "resident": alert.get("resident"),
                "severity": alert.get("severity"),
            },
            ensure_ascii=False,
        ),
        flush=True,
    )


async def _main(args: argparse.Namespace, broker: BrokerSettings) -> int:
    platform = Platform(PlatformStore(args.db), args.prefix, on_new_alert=print_alert)
    service = PlatformMqttService(platform, broker)
    console = Console(platform, "127.0.0.1", args.port)
    port = await console.start()
    print(f"staff console at http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        await service.run()
    finally:
        await console.stop()
    return 0
