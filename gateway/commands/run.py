"""``eldergate run --config FILE``: the gateway, as systemd runs it on the Pi."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from gateway.clock import SystemClock
from gateway.settings import SettingsError, load_settings
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


async def _main(settings: object) -> int:
    runtime = build_runtime(settings, SystemClock())  # type: ignore[arg-type]
    try:
        await runtime.run()
    finally:
        await runtime.close()
    return 0
