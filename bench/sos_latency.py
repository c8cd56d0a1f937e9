"""SOS press → alert at the platform, through the whole live path on real brokers.

1,000 presses are published one at a time on the home's mosquitto (plain, password), go through
the gateway's local-broker driver, the SOS detector, the alert manager, the durable outbox
(synchronous SQLite commit), the forwarder, the platform's mosquitto over TLS (QoS 1), and are
received by the reference platform. Beside it, as a baseline in the same run, the floor of
one hop: a client publishing straight onto the platform broker (TLS, QoS 1) and the platform
receiving it. Prints one JSON line: p50/p99/max
in milliseconds, the baseline, and the ratio.

    .venv/bin/python bench/sos_latency.py [--presses N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.mqtt import make_client
from tests.support.harness import (
    gateway_config,
    running,
    running_platform,
    runtime_for,
    wait_until,
)
from tests.support.mosquitto import Mosquitto, make_pki


async def measure(presses: int, tmp: Path) -> dict[str, object]:
    pki = make_pki(tmp / "pki")
    local = Mosquitto(tmp / "local", None).start()
    remote = Mosquitto(tmp / "remote", pki).start()
    try:
        runtime = runtime_for(gateway_config(tmp, local, remote))
        arrived: dict[float, float] = {}
        landed = asyncio.Event()
        async with running_platform(remote) as harness, running(runtime):
            receive = harness.platform.receive

            def timed_receive(topic: str, payload: bytes):  # type: ignore[no-untyped-def]
                got = receive(topic, payload)
                if got is not None and got.kind == "alert" and got.new:
                    arrived[float(got.body["t"])] = time.perf_counter()
                    landed.set()
                return got

            async def until_arrived(t: float) -> None:
                async with asyncio.timeout(10):
                    while t not in arrived:
                        landed.clear()
                        await landed.wait()

            harness.platform.receive = timed_receive  # type: ignore[method-assign]
            await wait_until(lambda: runtime.forwarder.connected.is_set())
            latencies = []
            async with make_client(local.broker_settings(), "bench-button") as client:
                for i in range(presses):
                    t = 1_750_000_000.0 + 600.0 * i  # 10 min apart: each press a new alert
                    body = json.dumps({"action": "sos", "t": t})
                    sent = time.perf_counter()
                    await client.publish(f"eldergate/devices/sos-r{1 + i % 3}", body, qos=1)
                    await until_arrived(t)
                    latencies.append((arrived[t] - sent) * 1000.0)
            # Baseline in the same run: one hop on the platform broker (TLS, QoS 1), no gateway.
            baseline = []
            async with make_client(remote.broker_settings(), "bench-baseline") as client:
                for i in range(presses):
                    t = 2_000_000_000.0 + i
                    body = json.dumps(
                        {
                            "v": 1,
                            "id": f"baseline-{i}",
                            "type": "sos",
                            "t": t,
                            "resident": "r1",
                            "state": "open",
                        }
                    )
                    sent = time.perf_counter()
                    await client.publish("eldergate/baseline/alert/r1", body, qos=1)
                    await until_arrived(t)
                    baseline.append((arrived[t] - sent) * 1000.0)
    finally:
        local.stop()
        remote.stop()
    latencies.sort()
    baseline.sort()
    return {
        "bench": "sos_latency",
        "presses": presses,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        "max_ms": round(latencies[-1], 2),
        "target_p99_ms": 50,
        "baseline_one_hop_p50_ms": round(statistics.median(baseline), 2),
        "baseline_one_hop_p99_ms": round(baseline[int(0.99 * (len(baseline) - 1))], 2),
        "p50_ratio_to_baseline": round(
            statistics.median(latencies) / statistics.median(baseline), 2
        ),
        "machine": f"{platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(measure(args.presses, Path(tmp)))))


if __name__ == "__main__":
    main()
