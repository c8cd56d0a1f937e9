"""Wristband notifications per second: the profile decode path alone, and end to end over the
virtual BLE stack (simulated band on bumble's LocalLink → bleak with the bumble backend → the
BLE driver → a counting sink). One core. Prints one JSON line, e.g.
``{"bench": "ingest_ble_wristband", "decode_notifications_per_s": ..., ...}``.

    python bench/ingest_ble.py [--notifications 3000] [--batch 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time

import numpy as np

from drivers.ble.driver import BleDeviceSpec, BleDriver
from drivers.ble.profiles import WristbandProfile
from drivers.decoders import wristband as wb
from gateway.clock import SimClock
from gateway.model import Reading
from simulators.ble import start_ble_world

BAND = "C0:00:00:00:00:01"


def bench_decode(notifications: int, batch: int) -> float:
    rng = np.random.default_rng(1)
    values = [
        wb.encode_motion(i * batch, 50.0, rng.normal(0, 1, (batch, 3)))
        for i in range(notifications)
    ]
    profile = WristbandProfile()
    start = time.perf_counter()
    for value in values:
        profile.on_motion(value)
    return notifications / (time.perf_counter() - start)


async def bench_end_to_end(notifications: int, batch: int) -> float:
    world = await start_ble_world([("wristband", BAND)])
    band = world[BAND]
    clock = SimClock()
    driver = BleDriver(world.backend(), clock, [BleDeviceSpec(BAND, "band-1", "wristband")])
    received = 0
    done = asyncio.Event()

    async def sink(reading: Reading) -> None:
        nonlocal received
        if "acc" in reading.values:
            received += 1
            if received == notifications:
                done.set()

    task = asyncio.create_task(driver.run(sink))
    async with asyncio.timeout(60):
        while not driver.diagnostics()["links"]["band-1"]["connected"]:
            await asyncio.sleep(0.001)
    samples = np.random.default_rng(2).normal(0, 1, (batch, 3))
    start = time.perf_counter()
    for _ in range(notifications):
        await band.send_motion(samples)
    async with asyncio.timeout(60):
        await done.wait()
    elapsed = time.perf_counter() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return notifications / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=25, help="samples per notification")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    decode = bench_decode(args.notifications * 10, args.batch)
    end_to_end = asyncio.run(bench_end_to_end(args.notifications, args.batch))
    print(json.dumps({
        "bench": "ingest_ble_wristband",
        "samples_per_notification": args.batch,
        "decode_notifications_per_s": round(decode),
        "end_to_end_notifications_per_s": round(end_to_end),
        "end_to_end_samples_per_s": round(end_to_end * args.batch),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
