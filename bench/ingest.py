"""Zigbee2MQTT ingest throughput: messages per second through the topic codec to readings, on
one core (the decode path the local-broker driver runs for every message).

The message mix is what a home sends: door contacts, PIR motion, SOS presses (state message,
``/action`` copy, legacy reset), leak sensors, availability, bridge chatter. Prints one JSON
line, e.g. ``{"bench": "ingest_zigbee2mqtt", "messages_per_s": ..., ...}``.

    python bench/ingest.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from typing import Any

from drivers.decoders.encoders import z2m_availability, z2m_messages
from drivers.zigbee2mqtt import Zigbee2MqttCodec


def message_mix(n_devices: int = 40, n: int = 5000, seed: int = 7) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    names = [f"device {i:02d}" for i in range(n_devices)]
    out: list[tuple[str, bytes]] = []
    while len(out) < n:
        name = rng.choice(names)
        kind = rng.random()
        values: dict[str, Any]
        if kind < 0.45:
            values = {"open": rng.random() < 0.5, "battery": rng.randint(5, 100)}
        elif kind < 0.8:
            values = {"motion": rng.random() < 0.5, "battery": rng.randint(5, 100)}
        elif kind < 0.9:
            values = {"action": rng.choice(["press", "double", "sos", "hold"]),
                      "battery": rng.randint(5, 100)}
        elif kind < 0.95:
            values = {"water_leak": False, "tamper": False, "battery": rng.randint(5, 100)}
        else:
            out.append(z2m_availability("zigbee2mqtt", name, rng.random() < 0.9))
            continue
        out.extend(z2m_messages("zigbee2mqtt", name, values))
    return out[:n]


def run(seconds: float) -> dict[str, object]:
    messages = message_mix()
    devices = {f"device {i:02d}": f"dev-{i:02d}" for i in range(40)}
    codec = Zigbee2MqttCodec("zigbee2mqtt", devices)
    n = readings = 0
    t = 1_700_000_000.0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for topic, payload in messages:
            t += 0.5  # messages half a second apart: action collapse works as live
            readings += len(codec.decode(topic, payload, t))
        n += len(messages)
    elapsed = time.perf_counter() - start
    return {
        "bench": "ingest_zigbee2mqtt",
        "messages": n,
        "readings": readings,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(n / elapsed),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(run(args.seconds)))


if __name__ == "__main__":
    main()
