"""``eldergate check-config FILE``: print every error with file, key and what is expected."""

from __future__ import annotations

import argparse
import sys

from gateway.settings import SettingsError, load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the gateway's TOML config")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
    except SettingsError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{len(exc.errors)} error(s) in {args.file}", file=sys.stderr)
        return 1
    print(
        f"{args.file}: OK — gateway {settings.gateway.id}, {len(settings.residents)} residents, "
        f"{len(settings.devices)} devices"
    )
    return 0
