"""How long an SOS press waits behind a flood of wristband notifications; prints one JSON line.

    nice .venv/bin/python bench/sos_behind_flood.py [--bands 10] [--queued 10000]

The runtime's reading queue (``READING_QUEUE_SIZE``) full of wristband notifications as the BLE
driver sends them (25 samples at 50 Hz, rate and sample counter: a band flushing its buffer
after a link loss, or ten bands streaming), then one SOS press. Everything is fed through the
gateway's own pipeline (every detector ``build_detectors`` makes, the alert manager) on a
``SimClock`` that stands still, as the live loop does while it drains the queue. ``us_per_reading``
is the mean cost of one notification; ``sos_wait_s`` the real time until the SOS is fed if
it is taken in queue order (every notification before it, as before the urgent queue),
``sos_wait_pi_s`` the same times 6 (a Pi 3/4 is ~4-8x slower than this machine);
``urgent_wait_pi_s`` the bound with the urgent queue: the runtime lets the drivers hand over a
press every ``DRAIN_YIELD_EVERY`` readings, and takes it next.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from alerts.manager import AlertManager
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detectors import build_detectors
from gateway.model import Device, DeviceKind, Reading, Resident, Room
from gateway.pipeline import Pipeline
from gateway.runtime import DRAIN_YIELD_EVERY, READING_QUEUE_SIZE

BATCH = 25
FS = 50.0


def notifications(bands: int, count: int, rng: np.random.Generator) -> list[Reading]:
    """``count`` notifications round-robin over ``bands``: arm swing, noise and an impact-like
    spike every ~60 s per band, dated by their counters as a flush is."""
    out = []
    g = rng.normal(size=(bands, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    for k in range(count):
        band, n = k % bands, k // bands
        t = (n * BATCH + np.arange(BATCH)) / FS
        acc = g[band] + 0.3 * np.sin(2 * np.pi * t)[:, None] + rng.normal(0, 0.02, (BATCH, 3))
        if (n * BATCH) % 3000 < BATCH:
            acc[0] += 2.5 * g[band]
        seq = (n * BATCH) % 65536
        out.append(Reading(1.0e9, f"band-{band}", {"acc": acc, "fs": FS, "seq": seq, "gap": 0}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--queued", type=int, default=READING_QUEUE_SIZE)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    residents = [Resident(f"r{i}", "23:00", "06:00") for i in range(args.bands)]
    devices = [
        Device(f"band-{i}", DeviceKind.WRISTBAND, f"r{i}", Room.OTHER) for i in range(args.bands)
    ]
    devices.append(Device("sos-r0", DeviceKind.BUTTON, "r0", Room.LOUNGE))
    clock = SimClock(start_wall=1.0e9 + 60.0, start_mono=1000.0)
    home = Home(residents, devices)
    manager = AlertManager("bench", clock)
    pipeline = Pipeline(home, build_detectors(clock, home), manager, clock)
    flood = notifications(args.bands, args.queued, rng)
    started = time.perf_counter()
    for reading in flood:
        pipeline.feed(reading)
    waited = time.perf_counter() - started
    changes = pipeline.feed(Reading(clock.wall(), "sos-r0", {"action": "sos"}))
    print(
        json.dumps(
            {
                "bench": "sos_behind_flood",
                "machine": platform.machine(),
                "python": platform.python_version(),
                "bands": args.bands,
                "queued": args.queued,
                "us_per_reading": round(waited / args.queued * 1e6, 1),
                "sos_wait_s": round(waited, 2),
                "sos_wait_pi_s": round(waited * 6, 1),
                "urgent_wait_pi_s": round(waited / args.queued * (DRAIN_YIELD_EVERY + 1) * 6, 3),
                "sos_raised": any(c.alert.type == "sos" for c in changes),
            }
        )
    )


if __name__ == "__main__":
    main()
