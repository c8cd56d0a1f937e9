"""vitals: sustained out-of-range heart rate or breathing in bed, never one reading; silent
on real normal nights (Withings Sleep Analyzer, ../shared/data/bed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.commands.import_data import withings_records
from gateway.detection.routine.vitals import VitalsDetector
from gateway.model import EventAction, Reading
from tests.detection.routine.routine_sim import P, Sim, local

DAY = dt.date(2019, 5, 6)
WITHINGS = Path(__file__).resolve().parents[4] / "shared/data/bed/withings_sleep_analyzer"


def bed_sim() -> Sim:
    sim = Sim(local(DAY, "22:00"), bed=True)
    sim.feed(local(DAY, "22:00"), "bed", occupied=True)
    return sim


def feed_minutes(sim: Sim, start: float, values: Sequence[tuple[float, float]]) -> None:
    for i, (hr, rr) in enumerate(values):
        sim.feed(start + 60 * i, "bed", hr=hr, rr=rr)


def test_sustained_low_heart_rate_raises_once_and_clears() -> None:
    sim = bed_sim()
    start = local(DAY, "23:00")
    feed_minutes(sim, start, [(60, 14)] * 10 + [(35, 14)] * 12)
    alerts = sim.raised("vitals")
    assert len(alerts) == 1 and alerts[0].key == "hr"
    assert alerts[0].t >= start + 60 * 13  # several minutes, not the first low reading
    feed_minutes(sim, start + 60 * 22, [(62, 14)] * 12)
    assert [e.key for e in sim.events if e.type == "vitals" and e.action is EventAction.CLEAR] == [
        "hr"
    ]


def test_single_wild_readings_never_raise() -> None:
    sim = bed_sim()
    values = [(60.0, 14.0)] * 30
    values[5] = (190.0, 14.0)
    values[17] = (60.0, 45.0)
    values[25] = (20.0, 3.0)
    feed_minutes(sim, local(DAY, "23:00"), values)
    assert sim.raised("vitals") == []


def test_fast_breathing_raises_on_its_own_key() -> None:
    sim = bed_sim()
    feed_minutes(sim, local(DAY, "23:00"), [(70, 34)] * 12)
    assert [e.key for e in sim.raised("vitals")] == ["rr"]


def test_nonsense_values_are_counted_and_skipped() -> None:
    sim = bed_sim()
    vitals = next(d for d in sim.detector.detectors if isinstance(d, VitalsDetector))
    for i, bad in enumerate(["fast", -5, float("nan"), 10_000, True]):
        sim.feed(local(DAY, "23:00") + i, "bed", hr=bad)
    assert vitals.rejected == 5
    assert sim.raised() == []


def test_a_rate_at_the_top_of_the_learned_range_is_learned_not_fatal() -> None:
    """255.5 is under the 256 accepted but rounds to 256, one past the histogram."""
    sim = bed_sim()
    vitals = next(d for d in sim.detector.detectors if isinstance(d, VitalsDetector))
    sim.feed(local(DAY, "23:00"), "bed", hr=255.5, rr=14)
    assert vitals.histogram(P, "hr")[-1] == 1 and vitals.histogram(P, "rr")[14] == 1


@pytest.mark.skipif(not WITHINGS.is_dir(), reason="shared bed data not present")
def test_real_normal_nights_raise_no_vitals_alert() -> None:
    records = withings_records(WITHINGS)
    readings = [r for r in records if r["type"] == "reading"]
    assert len(readings) > 3000  # ~81 h of minute data
    sim = Sim(readings[0]["t"] - 60, bed=True)
    for record in readings:
        values = {k: v for k, v in record.items() if k not in ("type", "t", "device")}
        reading = Reading(record["t"], "bed", values)
        sim.run_until(record["t"])
        sim.events.extend(sim.detector.on_reading(reading, sim.home.devices["bed"]))
    assert sim.raised("vitals") == []
    vitals = next(d for d in sim.detector.detectors if isinstance(d, VitalsDetector))
    low, high = vitals.limits("p1", "hr")
    assert 40 <= low < high <= 120  # the person's own range was learned
    assert (low, high) != (40.0, 120.0)


def test_a_bed_flooding_readings_keeps_its_window_bounded() -> None:
    """A bed reports about once a second; one sending 20 a second (a bridge in a loop) kept
    every sample of the last ``sustain_s`` (10 min: 12,000 per signal, each reading judged
    over all of them: ~2 ms a reading on a PC). The window holds the newest 5 a second."""
    sim = bed_sim()
    start = local(DAY, "23:00")
    for n in range(20 * 300):  # 20 a second for 5 min, out of range throughout
        sim.feed(start + n * 0.05, "bed", hr=35, rr=14)
    vitals = next(d for d in sim.detector.detectors if isinstance(d, VitalsDetector))
    assert len(vitals._windows[(P, "hr")]) == len(vitals._windows[(P, "rr")]) == 3_000
    assert [e.key for e in sim.raised("vitals")] == ["hr"]
