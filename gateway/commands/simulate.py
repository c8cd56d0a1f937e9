"""``eldergate simulate --broker HOST:PORT --residents N --scenario NAME``: simulated residents'
devices speaking real Zigbee2MQTT, bed-profile and wristband-bridge payloads on a broker.
``--print-config`` prints the matching ``[[residents]]``/``[[devices]]`` tables for the gateway."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from gateway.clock import AcceleratedClock
from gateway.commands._broker import add_broker_arguments, broker_from_arguments
from gateway.model import Device, DeviceKind, Reading
from gateway.mqtt import make_client
from gateway.recording import RecordError, TimeFormat, parse_line
from gateway.settings import BrokerSettings
from simulators.mqtt_transport import MqttDevices, transport_of
from simulators.scenarios import SCENARIOS, SimResident, home_stream

MIXED = ("fall", "sos", "night_wander", "dead_battery", "collapse")


def configure(parser: argparse.ArgumentParser) -> None:
    add_broker_arguments(parser, "127.0.0.1:1883")
    parser.add_argument("--residents", type=int, default=1, help="how many simulated residents")
    parser.add_argument(
        "--scenario",
        default="day",
        choices=[*SCENARIOS, "mixed"],
        help="incident for every resident ('mixed': a different one each)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (>1 compresses the day as the gateway sees it)",
    )
    parser.add_argument(
        "--start", type=time_of_day, help="simulated start time of day HH:MM (default: now)"
    )
    parser.add_argument("--duration", type=float, help="stop after this many real seconds")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the gateway config tables for these devices and exit",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--recording",
        help="play a recording (contract 2, JSON Lines) instead of a scenario, from now on",
    )
    parser.add_argument(
        "--ble",
        action="store_true",
        help="wristbands over a real BLE stack on bumble's virtual controller, "
        "bridged to the broker by the gateway's BLE driver (needs bumble)",
    )


def time_of_day(text: str) -> dt.time:
    try:
        hh, mm = (int(part) for part in text.split(":"))
        return dt.time(hh, mm)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM, got {text!r}") from None


def residents(args: argparse.Namespace) -> list[SimResident]:
    out = []
    for i in range(args.residents):
        incidents = (MIXED[i % len(MIXED)],) if args.scenario == "mixed" else (args.scenario,)
        out.append(SimResident(f"sim{i + 1}", incidents, seed=args.seed + i))
    return out


def print_config(people: list[SimResident]) -> None:
    for person in people:
        print(f'[[residents]]\nid = "{person.id}"\n')
        for d in person.devices():
            print(f'[[devices]]\nid = "{d.id}"\nkind = "{d.kind.value}"\nroom = "{d.room.value}"')
            if d.role:
                print(f'role = "{d.role}"')
            transport = transport_of(d)
            print(f'resident = "{person.id}"\ntransport = "{transport}"')
            if transport == "zigbee2mqtt":
                print(f'friendly_name = "{d.id}"')
            print()


def run(args: argparse.Namespace) -> int:
    if args.residents < 1:
        print("eldergate simulate: --residents must be at least 1", file=sys.stderr)
        return 2
    people = residents(args)
    if args.print_config:
        print_config(people)
        return 0
    broker = broker_from_arguments(args)
    return asyncio.run(_main(args, people, broker))


async def _main(args: argparse.Namespace, people: list[SimResident], broker: BrokerSettings) -> int:
    now = time.time()
    start = now
    if args.start:
        start = dt.datetime.combine(dt.date.today(), args.start).timestamp()
    clock = AcceleratedClock(start, args.speed)
    devices = [d for p in people for d in p.devices()]
    stream: Iterable[Reading] = home_stream(people, start)
    if args.recording:
        devices, stream = load_recording(Path(args.recording), start)
    async with make_client(broker, f"eldergate-simulate-{os.getpid()}-{int(now)}") as client:
        bridge = None
        if args.ble:
            from simulators.ble_bridge import BleWristbandBridge

            bands = [d.id for d in devices if d.kind is DeviceKind.WRISTBAND]
            bridge = BleWristbandBridge(bands, client, clock)
            await bridge.start()
        sim = MqttDevices(client, devices, clock, override=bridge)
        play = asyncio.create_task(sim.play(stream))
        try:
            if args.duration is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(play), args.duration)
            else:
                await play
        finally:
            play.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await play
            if bridge is not None:
                await bridge.close()
                print(
                    f"eldergate simulate: {bridge.bridged} readings bridged from BLE",
                    file=sys.stderr,
                )
    print(f"eldergate simulate: {sim.published} messages published", file=sys.stderr)
    return 0


def load_recording(path: Path, start: float) -> tuple[list[Device], list[Reading]]:
    """A recording's devices and readings, the readings shifted so the first is at ``start``.
    Bad lines are reported and skipped, as in replay."""
    devices: list[Device] = []
    readings: list[Reading] = []
    times = TimeFormat()
    with path.open(encoding="utf-8", errors="replace") as lines:
        for lineno, line in enumerate(lines, start=1):
            try:
                record = parse_line(line, times)
            except RecordError as exc:
                print(f"{path}: line {lineno}: {exc}", file=sys.stderr)
                continue
            if isinstance(record, Device):
                devices.append(record)
            elif isinstance(record, Reading):
                readings.append(record)
    known = {d.id for d in devices}
    readings = sorted((r for r in readings if r.device in known), key=lambda r: r.t)
    shift = start - readings[0].t if readings else 0.0
    return devices, [Reading(r.t + shift, r.device, r.values) for r in readings]
