"""``eldergate run --config FILE``: the gateway, as systemd runs it on the Pi."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from gateway import systemd
from gateway.clock import SystemClock
from gateway.settings import Settings, SettingsError, load_settings
from gateway.wiring import build_runtime

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the gateway's TOML config")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    return asyncio.run(_main(settings))


async def _main(settings: Settings) -> int:
    runtime = build_runtime(settings, SystemClock())
    task = asyncio.create_task(runtime.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # systemd stops with SIGTERM: shut down cleanly so learned state is saved, once a fall
        # being decided has its alert (Runtime.request_stop). Alerts need no shutdown: they
        # are durable in the outbox the moment they exist.
        loop.add_signal_handler(sig, runtime.request_stop)
    try:
        await task
    except asyncio.CancelledError:
        systemd.notify("STOPPING=1")
        log.info("gateway stopping")
    finally:
        await runtime.close()
    return 0
