"""Broker options shared by the commands that talk to a broker (platform, simulate)."""

from __future__ import annotations

import argparse

from gateway.settings import BrokerSettings


def add_broker_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--broker", default=default, help="HOST:PORT of the broker")
    parser.add_argument("--username")
    parser.add_argument("--password-file", help="file holding the password (one line)")
    parser.add_argument("--ca-file", help="CA certificate for TLS (omit for plain MQTT)")


def broker_from_arguments(args: argparse.Namespace) -> BrokerSettings:
    host, _, port = args.broker.rpartition(":")
    try:
        port_number = int(port)
    except ValueError:
        raise SystemExit(f"--broker: expected HOST:PORT, got {args.broker!r}") from None
    return BrokerSettings(
        host=host or "127.0.0.1",
        port=port_number,
        username=args.username,
        password_file=args.password_file,
        ca_file=args.ca_file,
    )
