from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.recording import TimeFormat
from gateway.replay import Replayer
from tests.support.falls import FALL_MARKS_S, real_fall_at_50hz

DEVICE = {"type": "device", "id": "btn", "kind": "button", "room": "lounge", "resident": "p1"}
# p1's front door and hallway sensor
FRONT_DOOR = {
    "type": "device",
    "id": "front",
    "kind": "door",
    "room": "entrance",
    "role": "exit",
    "resident": "p1",
}
HALLWAY = {"type": "device", "id": "pir", "kind": "motion", "room": "hallway", "resident": "p1"}


def lines(*records: object) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) for r in records]


def test_sos_alert_at_press_time_and_bad_lines_skipped() -> None:
    replayer = Replayer()
    changes = list(
        replayer.run(
            lines(
                DEVICE,
                "{not json",
                {"type": "reading", "t": 1554076990.0, "device": "btn", "action": "sos"},
                {"type": "reading", "t": 1554076995.0, "device": "ghost", "action": "sos"},
                {"type": "reading", "t": "yesterday", "device": "btn", "action": "sos"},
                {"type": "reading", "t": 1554077000.0, "device": "btn", "open": "yes"},
                [1, 2],
                {"type": "reading", "t": 1554078000.0, "device": "btn", "action": "press"},
            )
        )
    )
    raised = [c for c in changes if c.change == "raised"]
    assert [(c.alert.type, c.alert.resident, c.alert.t) for c in raised] == [
        ("sos", "p1", 1554076990.0),
        ("sos", "p1", 1554078000.0),
    ]
    reasons = replayer.stats.errors
    assert [r.split(":")[0] for r in reasons] == ["line 2", "line 4", "line 5", "line 6", "line 7"]
    assert "unknown device 'ghost'" in reasons[1] and "open: expected true or false" in reasons[3]


def test_a_byte_order_mark_does_not_cost_the_first_line() -> None:
    """A recording saved by a Windows editor starts with a BOM: the first line (a device's
    declaration) was a bad line, and every reading of that device with it."""
    press = {"type": "reading", "t": 1000.0, "device": "btn", "action": "sos"}
    replayer = Replayer()
    first, *rest = lines(DEVICE, press)
    raised = [c.alert.type for c in replayer.run(["\ufeff" + first, *rest])]
    assert raised == ["sos"] and replayer.stats.bad_lines == 0


def test_until_keeps_the_clock_running() -> None:
    replayer = Replayer()
    press = {"type": "reading", "t": 1000.0, "device": "btn", "action": "sos"}
    without = [c.change for c in replayer.run(lines(DEVICE, press))]
    assert without == ["raised"]
    replayer = Replayer()
    with_until = [c.change for c in replayer.run(lines(DEVICE, press), until=1000.0 + 301)]
    assert with_until == ["raised", "escalated"]


def test_cli_keeps_iso_time_convention(tmp_path: Path) -> None:
    rec = tmp_path / "r.jsonl"
    rec.write_text(
        "\n".join(
            lines(
                DEVICE,
                {"type": "reading", "t": "2019-04-01T10:03:10", "device": "btn", "action": "sos"},
                "garbage",
            )
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "replay", str(rec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (alert,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert alert["t"] == "2019-04-01T10:03:10" and alert["type"] == "sos"
    assert {"id", "type", "severity", "resident", "t"} <= set(alert)
    assert "line 3: not JSON" in proc.stderr


@pytest.mark.parametrize("batch", [10, 39, 100])
def test_a_recorded_wristband_fall_with_its_sample_counter_replays_to_one_alert(
    batch: int,
) -> None:
    """A real fall (WEDA-FALL U01 F02, fixture) recorded as the BLE driver hands a band's
    notifications over (rate and sample counter, ``t`` the batch's first sample): the replay
    sets its clock to each reading's ``t``, so the counter dating must not take a batch
    longer than 1 s for one that arrived before it was sampled."""
    samples, peak = real_fall_at_50hz()
    assert FALL_MARKS_S[0] < peak < FALL_MARKS_S[1]  # the impact, within the dataset's marks
    start = 1_700_000_000.0
    band = {"type": "device", "id": "band", "kind": "wristband", "resident": "p1"}
    readings = [
        {
            "type": "reading",
            "t": start + i * 0.02,
            "device": "band",
            "acc": samples[i : i + batch].tolist(),
            "fs": 50.0,
            "seq": 9_000 + i,
        }
        for i in range(0, samples.shape[0], batch)
    ]
    replayer = Replayer()
    changes = list(replayer.run(lines(band, *readings), until=start + 60.0))
    raised = [c.alert for c in changes if c.change == "raised"]
    assert [a.type for a in raised] == ["fall"]
    assert raised[0].t - start == pytest.approx(peak, abs=0.1)


def test_times_no_date_can_hold_are_bad_lines_and_a_year_ahead_is_skipped() -> None:
    """A press in the year 10**292 once ended the replay (the daily summary could not date
    it) and one far ahead ticked through every minute on the way (minutes per year)."""
    press = {"type": "reading", "device": "btn", "action": "sos"}
    replayer = Replayer()
    changes = list(
        replayer.run(
            lines(
                DEVICE,
                {**press, "t": 1554076990.0},
                {**press, "t": 1e300},
                '{"type": "reading", "device": "btn", "action": "sos", "t": 1' + "0" * 5000 + "}",
                {**press, "t": "9999-12-31T23:59:59+14:00"},
                {**press, "t": 1554076990.0 + 2 * 365 * 86400},
                {**press, "t": 1554080000.0},
            )
        )
    )
    raised = [c.alert.t for c in changes if c.change == "raised"]
    assert raised == [1554076990.0, 1554080000.0]
    assert [r.split(":")[0] for r in replayer.stats.errors] == [f"line {n}" for n in (3, 4, 5, 6)]
    assert "more than a year after" in replayer.stats.errors[-1]


@pytest.mark.parametrize("zone", ["", "Z", "+02:00", "-05:00"])
def test_iso_times_are_the_homes_local_time_whatever_the_host_zone(monkeypatch, zone) -> None:
    """An ISO time says what time of day it was in the home: a door opened at 23:30
    (naive, or with its offset) is a night exit for night hours 22:00-07:00, on a host in any
    zone. Before, time of day was taken in the host's zone: naive input was read as UTC and
    then shown in the host's zone (13:30 in Honolulu), and an offset other than the host's moved
    the night."""
    monkeypatch.setenv("TZ", "Pacific/Honolulu")  # the host's zone must not matter
    home = [
        {"type": "resident", "id": "p1", "night_start": "22:00", "night_end": "07:00"},
        FRONT_DOOR,
        HALLWAY,
    ]

    def at(hhmmss: str) -> str:
        return f"2019-04-01T{hhmmss}{zone}"

    readings = [
        {"type": "reading", "t": at("20:00:00"), "device": "pir", "motion": True},
        {"type": "reading", "t": at("23:30:00"), "device": "front", "open": True},
        {"type": "reading", "t": at("23:30:20"), "device": "front", "open": False},
    ]
    replayer = Replayer()
    until = TimeFormat().parse(at("23:30:20")) + 3600.0
    raised = [c for c in replayer.run(lines(*home, *readings), until) if c.change == "raised"]
    night = [c for c in raised if c.alert.type == "night_exit"]
    assert len(night) == 1, [c.alert.type for c in raised]
    assert str(replayer.times.format(night[0].alert.t)).startswith("2019-04-01T23:")


@pytest.mark.parametrize("zone", ["", "+02:00"])
def test_per_sample_ts_in_iso_like_the_recordings_t(zone: str) -> None:
    """Contract 2: a wristband reading carries ``acc`` with ``fs`` or per-sample ``ts``, and a
    recording writes its times in epoch seconds or ISO 8601. ISO ``ts`` were silently dropped
    (no alert, no bad line); now read like ``t``, and a ``ts`` that is neither is a bad line."""
    samples, peak = real_fall_at_50hz()
    start = 1_700_000_000.0
    fmt = TimeFormat(iso=True, tz=dt.timezone(dt.timedelta(hours=2)) if zone else None)
    band = {"type": "device", "id": "band", "kind": "wristband", "resident": "p1"}
    readings = [
        {
            "type": "reading",
            "t": fmt.format(start + i / 50.0),
            "device": "band",
            "acc": samples[i : i + 25].tolist(),
            "ts": [fmt.format(start + k / 50.0) for k in range(i, min(i + 25, len(samples)))],
        }
        for i in range(0, samples.shape[0], 25)
    ]
    bad = {**readings[0], "ts": ["soon"] * len(readings[0]["acc"])}
    replayer = Replayer()
    changes = list(replayer.run(lines(band, *readings, bad), until=start + 90.0))
    raised = [c.alert for c in changes if c.change == "raised"]
    assert [a.type for a in raised] == ["fall"]
    assert raised[0].t - start == pytest.approx(peak, abs=0.1)
    (error,) = replayer.stats.errors
    assert error.startswith(f"line {len(readings) + 2}: ts")


def test_wristband_batches_the_detector_cannot_use_are_reported_bad_lines() -> None:
    """Contract 2: bad lines are reported with their line number, never silently dropped.
    A batch without a rate or times, with rows that are not [x, y, z], or with a ``ts`` of
    another length used to vanish inside the fall detector."""
    band = {"type": "device", "id": "band", "kind": "wristband", "resident": "p1"}
    ok = {"type": "reading", "t": 1554076990.0, "device": "band", "acc": [[0, 0, 1]] * 2}
    replayer = Replayer()
    list(
        replayer.run(
            lines(
                band,
                {**ok, "fs": 50},
                {**ok, "ts": [1554076990.0, 1554076990.02]},
                ok,
                {**ok, "fs": 50, "acc": [[0, 0], [0, 1]]},
                {**ok, "fs": 50, "acc": [["a", "b", "c"]]},
                {**ok, "ts": [1554076990.0]},
                {**ok, "fs": 0},
                {**ok, "fs": 50, "hr": 70},
            )
        )
    )
    assert [e.split(":")[0] for e in replayer.stats.errors] == [
        f"line {n}" for n in (4, 5, 6, 7, 8)
    ]
    assert replayer.stats.readings == 3


@pytest.mark.parametrize("zone", ["+08:00", "-05:00"])
def test_a_naive_until_is_the_homes_time_like_the_recordings_own(tmp_path: Path, zone) -> None:
    """Contract 2: ``--until T`` keeps the clock running to T. A recording whose times carry an
    offset and an ``--until`` written as the home's clock reads (no offset) mean the same
    zone: ``--until 2019-04-02T03:00:00`` after a door left open at 02:30-05:00 runs to 03:00
    there, past the 15 minutes a night exit waits. Before, the naive time was read as UTC,
    five hours too early west of Greenwich (nothing was raised) and eight too late east."""
    rec = tmp_path / "r.jsonl"
    rec.write_text(
        "\n".join(
            lines(
                FRONT_DOOR,
                HALLWAY,
                {
                    "type": "reading",
                    "t": f"2019-04-01T21:00:00{zone}",
                    "device": "pir",
                    "motion": True,
                },
                {
                    "type": "reading",
                    "t": f"2019-04-02T02:30:00{zone}",
                    "device": "front",
                    "open": True,
                },
                {
                    "type": "reading",
                    "t": f"2019-04-02T02:30:30{zone}",
                    "device": "front",
                    "open": False,
                },
            )
        )
        + "\n"
    )
    for until in ("2019-04-02T03:00:00", f"2019-04-02T03:00:00{zone}"):
        proc = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "replay", str(rec), "--until", until],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        alerts = [json.loads(x) for x in proc.stdout.splitlines()]
        assert [a["type"] for a in alerts] == ["night_exit"], (until, proc.stdout)
        assert alerts[0]["t"] == f"2019-04-02T02:45:00{zone}"


def test_until_in_the_recordings_zone_leaves_naive_and_epoch_recordings_as_they_were() -> None:
    naive = TimeFormat()
    naive.parse("2019-04-01T10:00:00")
    assert naive.parse_in_zone("2019-04-01T11:00:00") == TimeFormat().parse("2019-04-01T11:00:00")
    epoch = TimeFormat()
    epoch.parse(1554112800.0)
    assert epoch.parse_in_zone("2019-04-01T11:00:00") == 1554116400.0
    assert epoch.parse_in_zone(1554116400.0) == 1554116400.0 and not epoch.iso
    aware = TimeFormat()
    aware.parse("2019-04-01T10:00:00+08:00")
    assert aware.parse_in_zone("2019-04-01T11:00:00") == aware.parse("2019-04-01T11:00:00+08:00")
    assert aware.parse_in_zone("2019-04-01T03:00:00Z") == aware.parse("2019-04-01T11:00:00+08:00")


@pytest.mark.parametrize("resident_first", [True, False])
def test_devices_without_a_resident_belong_to_the_one_declared(resident_first: bool) -> None:
    """Contract 2's device records name their resident; one that does not, in a recording
    that declares one resident (here at risk of wandering), is that resident's. It went to a
    resident called "resident" with default settings: the alerts named someone else, and an
    at-risk resident's night exit waited 15 min instead of being raised at once."""
    person = {"type": "resident", "id": "p1", "wander_risk": True, "tz": "UTC"}
    door = {k: v for k, v in FRONT_DOOR.items() if k != "resident"}
    pir = {k: v for k, v in HALLWAY.items() if k != "resident"}
    declarations = [person, door, pir] if resident_first else [door, pir, person]
    readings = [
        {"type": "reading", "t": "2019-04-01T21:00:00", "device": "pir", "motion": True},
        {"type": "reading", "t": "2019-04-02T02:30:00", "device": "front", "open": True},
    ]
    replayer = Replayer()
    raised = [c.alert for c in replayer.run(lines(*declarations, *readings))]
    assert [(a.type, a.resident, a.severity.name) for a in raised] == [
        ("night_exit", "p1", "CRITICAL")
    ]
    assert set(replayer.home.residents) == {"p1"}


def test_devices_without_a_resident_stay_apart_when_the_recording_declares_two() -> None:
    replayer = Replayer()
    declared = [{"type": "resident", "id": p} for p in ("p1", "p2")]
    button = {"type": "device", "id": "btn", "kind": "button", "room": "lounge"}
    press = {"type": "reading", "t": 1000.0, "device": "btn", "action": "sos"}
    (change,) = replayer.run(lines(*declared, button, press))
    assert change.alert.resident == "resident"  # neither p1 nor p2 can be assumed
