"""``eldergate decode``: raw device messages (JSON Lines on stdin) → normalised readings.

Exactly one output line per input line: a JSON array of readings (``[]`` when the message
means nothing), or ``{"error": "..."}``. The decoders are the ones the live drivers use.
"""

from __future__ import annotations

import argparse
import sys

from drivers.decoders import DecodeError
from drivers.decoders.bed import DEFAULT_BED_BASE_TOPIC
from drivers.decoders.bthome import parse_key
from drivers.decoders.raw import decode_line


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-topic", default="zigbee2mqtt", help="Zigbee2MQTT base topic (default: zigbee2mqtt)"
    )
    parser.add_argument(
        "--bed-base-topic",
        default=DEFAULT_BED_BASE_TOPIC,
        help=f"bed profile base topic (default: {DEFAULT_BED_BASE_TOPIC})",
    )
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="ADDRESS=HEX",
        help="BTHome encryption key for one BLE address (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    keys: dict[str, bytes] = {}
    for item in args.key:
        address, sep, hex_key = item.partition("=")
        try:
            if not sep:
                raise DecodeError("expected ADDRESS=HEX")
            keys[address.strip().upper()] = parse_key(hex_key)
        except DecodeError as exc:
            print(f"eldergate decode: bad --key {address!r}: {exc}", file=sys.stderr)
            return 2
    out = sys.stdout
    for line in sys.stdin:
        out.write(
            decode_line(
                line.rstrip("\r\n"),
                base_topic=args.base_topic,
                bed_base_topic=args.bed_base_topic,
                keys=keys,
            )
        )
        out.write("\n")
        out.flush()
    return 0
