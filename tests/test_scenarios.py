"""The simulator's scenarios, replayed through the whole detection and alert pipeline with
the gateway's default settings: each incident raises its own alerts and nothing else. The
simulated devices report on a real device's cadence, so the defaults apply unchanged (no
device is "offline" just because the simulator forgot it)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.replay import Replayer
from simulators.scenarios import STATUS_PERIOD_S, SimResident, home_stream

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC).timestamp()


def recording(resident: SimResident, hours: float) -> Iterator[str]:
    person = resident.resident()
    yield json.dumps(
        {"type": "resident", "id": person.id, "wander_risk": person.wander_risk, "tz": "UTC"}
    )
    for d in resident.devices():
        record: dict[str, Any] = {
            "type": "device",
            "id": d.id,
            "kind": d.kind.value,
            "room": d.room.value,
            "resident": d.resident,
        }
        if d.role:
            record["role"] = d.role
        yield json.dumps(record)
    for r in home_stream([resident], START):
        if r.t > START + hours * 3600:
            return
        values = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in r.values.items()}
        yield json.dumps({"type": "reading", "t": r.t, "device": r.device, **values})


def raised(scenario: str, hours: float = 30.0) -> dict[str, set[str]]:
    """Alert types raised per device kind ("-" for alerts on the resident)."""
    resident = SimResident("p1", (scenario,) if scenario != "day" else (), seed=4)
    replayer = Replayer()
    out: dict[str, set[str]] = {}
    for change in replayer.run(recording(resident, hours), until=START + hours * 3600):
        if change.change == "raised":
            device = change.alert.device or "-"
            out.setdefault(change.alert.type, set()).add(device.removeprefix("p1-"))
    assert replayer.stats.bad_lines == 0, replayer.stats.errors[:3]
    return out


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("day", {}),
        ("sos", {"sos": {"sos"}}),
        ("fall", {"fall": {"wristband"}}),
        # the band out of range with its wearer is not offline (device health)
        ("night_wander", {"night_exit": {"front-door"}}),
        ("dead_battery", {"battery_low": {"wristband"}, "device_offline": {"wristband"}}),
        ("collapse", {"inactivity": {"-"}}),
    ],
)
def test_each_scenario_raises_its_incident_and_nothing_else(
    scenario: str, expected: dict[str, set[str]]
) -> None:
    assert raised(scenario) == expected


def test_devices_report_on_their_own_cadence_after_a_collapse() -> None:
    resident = SimResident("p1", ("collapse",), seed=4)
    by_device: dict[str, list[float]] = {}
    last_motion = 0.0
    for r in home_stream([resident], START):
        if r.t > START + 40 * 3600:
            break
        by_device.setdefault(r.device, []).append(r.t)
        if r.values.get("motion") is True:
            last_motion = r.t
    assert START < last_motion < START + 8 * 3600  # the collapse at 15:30
    for device in ("p1-bed", "p1-wristband"):
        times = by_device[device]
        assert max(b - a for a, b in itertools.pairwise(times)) <= STATUS_PERIOD_S + 1
        assert times[-1] > last_motion + 24 * 3600  # still reporting long after the person stopped
