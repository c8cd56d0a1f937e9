"""``eldergate replay FILE [--until T]`` (contract 2): one JSON alert per line on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from gateway.recording import RecordError, TimeFormat
from gateway.replay import Replayer


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="recording (JSON Lines); '-' for stdin")
    parser.add_argument(
        "--until", help="keep the clock running to this time (epoch seconds or ISO 8601)"
    )
    parser.add_argument(
        "--all-changes",
        action="store_true",
        help="print every alert change (escalated, cancelled, resolved), not only new alerts",
    )
    parser.add_argument("--gateway-id", default="replay")


def run(args: argparse.Namespace) -> int:
    replayer = Replayer(gateway_id=args.gateway_id)
    until = None
    if args.until is not None:
        until = _number_or_text(args.until)
        try:  # checked before replaying; read in the recording's zone after it (naive ISO)
            TimeFormat().parse(until)
        except RecordError as exc:
            print(f"eldergate replay: --until: {exc}", file=sys.stderr)
            return 2
    try:
        stream = _open(args.file)
    except OSError as exc:
        print(f"eldergate replay: cannot open {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    reported = 0
    with stream:
        for change in replayer.run(stream, until):
            if args.all_changes or change.change == "raised":
                print(json.dumps(replayer.alert_json(change), ensure_ascii=False), flush=False)
            while reported < len(replayer.stats.errors):
                print(f"{args.file}: {replayer.stats.errors[reported]}", file=sys.stderr)
                reported += 1
    for error in replayer.stats.errors[reported:]:
        print(f"{args.file}: {error}", file=sys.stderr)
    stats = replayer.stats
    print(
        f"replayed {stats.readings} readings from {stats.lines} lines; "
        f"{stats.bad_lines} bad lines skipped",
        file=sys.stderr,
    )
    return 0


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _open(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    return open(path, encoding="utf-8", errors="replace")
