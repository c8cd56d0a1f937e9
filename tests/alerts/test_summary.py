from __future__ import annotations

import datetime as dt

from alerts.summary import DailySummary
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.model import Device, DeviceKind, Reading, Resident, Room

MIDNIGHT = dt.datetime(2024, 3, 4, tzinfo=dt.UTC).timestamp()


def test_summary_counts_a_day_and_is_due_next_morning() -> None:
    home = Home(
        [Resident("r1")],
        [
            Device("bed", DeviceKind.BED, "r1", Room.BEDROOM),
            Device("door", DeviceKind.DOOR, "r1", Room.ENTRANCE, "exit"),
            Device("pir", DeviceKind.MOTION, "r1", Room.KITCHEN),
        ],
    )
    clock = SimClock(MIDNIGHT - 3600)
    summary = DailySummary(clock, home, "UTC", "08:00")
    summary.observe(
        Reading(MIDNIGHT - 3600, "bed", {"occupied": True})
    )  # bed at 23:00 the day before
    clock.set_wall(MIDNIGHT + 7 * 3600)
    summary.observe(Reading(MIDNIGHT + 7 * 3600, "bed", {"occupied": False}))
    for hour in (9, 9, 12, 18):
        summary.observe(Reading(MIDNIGHT + hour * 3600, "pir", {"motion": True}))
    summary.observe(Reading(MIDNIGHT + 10 * 3600, "door", {"open": True}))
    summary.observe(Reading(MIDNIGHT + 10 * 3600, "unknown", {"open": True}))
    summary.record_alert("r1", "sos", MIDNIGHT + 11 * 3600)
    clock.set_wall(MIDNIGHT + 86400 + 7 * 3600)
    assert [s["day"] for s in summary.due()] == ["2024-03-03"]  # the evening before
    clock.set_wall(MIDNIGHT + 86400 + 8 * 3600)
    (day,) = summary.due()
    assert day["day"] == "2024-03-04" and day["resident"] == "r1"
    assert day["active_hours"] == 3 and day["rooms"] == {"kitchen": 4}
    assert day["exits"] == 1 and day["bed_exits"] == 1 and day["in_bed_h"] == 8.0
    assert day["alerts"] == {"sos": 1}
    assert summary.due() == []


def test_time_in_bed_is_measured_on_the_monotonic_clock() -> None:
    """The Pi boots at night with its clock in 1970 and NTP sets it while she sleeps: the
    night was counted from a 1970 stamp (474,871 h in bed)."""
    home = Home([Resident("r1")], [Device("bed", DeviceKind.BED, "r1", Room.BEDROOM)])
    clock = SimClock(60.0)  # 1970
    summary = DailySummary(clock, home, "UTC", "08:00")
    summary.observe(Reading(clock.wall(), "bed", {"occupied": True}))
    clock.advance(600)
    clock.jump_wall(MIDNIGHT - clock.wall())  # NTP
    clock.advance(8 * 3600 - 600)
    summary.observe(Reading(clock.wall(), "bed", {"occupied": False}))
    clock.set_wall(MIDNIGHT + 86400 + 9 * 3600)
    (day,) = [d for d in summary.due() if d["bed_exits"]]
    assert day["in_bed_h"] == 8.0


def test_no_summary_for_a_1970_day_nor_a_second_one_for_a_day_already_sent() -> None:
    """Readings before NTP set the clock made a summary dated 1970-01-01; a reading or an
    alert dated a day already summarised opened a second summary of that day."""
    home = Home([Resident("r1")], [Device("pir", DeviceKind.MOTION, "r1", Room.KITCHEN)])
    clock = SimClock(60.0)
    summary = DailySummary(clock, home, "UTC", "08:00")
    summary.observe(Reading(clock.wall(), "pir", {"motion": True}))
    clock.jump_wall(MIDNIGHT + 9 * 3600 - clock.wall())  # NTP
    summary.observe(Reading(clock.wall(), "pir", {"motion": True}))
    clock.set_wall(MIDNIGHT + 86400 + 8 * 3600)
    assert [(d["day"], d["active_hours"]) for d in summary.due()] == [("2024-03-04", 1)]
    summary.observe(Reading(MIDNIGHT + 20 * 3600, "pir", {"motion": True}))  # late
    summary.record_alert("r1", "inactivity", MIDNIGHT + 21 * 3600)
    clock.set_wall(MIDNIGHT + 2 * 86400 + 8 * 3600)
    assert summary.due() == []


def test_a_day_the_gateway_watched_only_part_of_says_so() -> None:
    """The gateway starts at 14:00 (installed, or back after a power cut: the figures are kept
    in memory): that day's summary counted only the afternoon and looked like a day in which
    the resident barely moved. The platform is told how much of the day was watched."""
    home = Home([Resident("r1")], [Device("pir", DeviceKind.MOTION, "r1", Room.KITCHEN)])
    clock = SimClock(MIDNIGHT + 14 * 3600)
    summary = DailySummary(clock, home, "UTC", "08:00")
    for hour in (15, 16, 24 + 9):
        clock.set_wall(MIDNIGHT + hour * 3600)
        summary.observe(Reading(clock.wall(), "pir", {"motion": True}))
    clock.set_wall(MIDNIGHT + 2 * 86400 + 8 * 3600)
    first, second = summary.due()
    assert (first["day"], first["partial"], first["watched_h"]) == ("2024-03-04", True, 10.0)
    assert (second["day"], second["partial"], second["watched_h"]) == ("2024-03-05", False, 24.0)


def test_a_gateway_that_booted_in_1970_watches_from_its_first_dated_reading() -> None:
    home = Home([Resident("r1")], [Device("pir", DeviceKind.MOTION, "r1", Room.KITCHEN)])
    clock = SimClock(60.0)  # 1970: no NTP yet
    summary = DailySummary(clock, home, "UTC", "08:00")
    clock.jump_wall(MIDNIGHT + 18 * 3600 - clock.wall())  # NTP at 18:00
    summary.observe(Reading(clock.wall(), "pir", {"motion": True}))
    clock.set_wall(MIDNIGHT + 86400 + 8 * 3600)
    (day,) = summary.due()
    assert (day["partial"], day["watched_h"]) == (True, 6.0)


def test_a_device_clock_far_ahead_holds_no_future_days_in_memory() -> None:
    """A bed or bridge whose clock is wrong dates each reading days or years ahead (the JSON
    device topic and the bed profile take a device's ``t`` up to 2100): every date opened a
    day's figures that stayed in memory until that day came, ~1 KB a reading for ever. They
    now count on the day the gateway's clock says."""
    home = Home([Resident("r1")], [Device("bed", DeviceKind.BED, "r1", Room.BEDROOM)])
    clock = SimClock(MIDNIGHT + 12 * 3600)
    summary = DailySummary(clock, home, "UTC", "08:00")
    for n in range(1, 2001):
        clock.advance(1.0)
        ahead = n * 86400.0 + 3600.0
        summary.observe(Reading(clock.wall() + ahead, "bed", {"occupied": n % 2 == 0}))
        summary.record_alert("r1", "vitals", clock.wall() + 3 * ahead)
    assert len(summary._days) == 1  # today's
    clock.set_wall(MIDNIGHT + 86400 + 8 * 3600)
    (day,) = summary.due()
    assert (day["day"], day["readings"], day["alerts"]) == ("2024-03-04", 2000, {"vitals": 2000})
    summary.observe(Reading(clock.wall() + 20 * 3600.0, "bed", {"occupied": True}))  # a bit ahead
    assert [key[1].isoformat() for key in summary._days] == ["2024-03-06"]


def test_a_day_watched_from_ntp_on_after_a_boot_on_a_stale_clock_says_so() -> None:
    """Back from a power cut at 06:00 on the 13th, the Pi boots on fake-hwclock's 21:00 of
    the 4th; NTP sets the clock at 06:30. The readings before it were dated on the 4th, so the
    13th is watched from 06:30 only; its summary said it was watched whole."""
    home = Home([Resident("r1")], [Device("pir", DeviceKind.MOTION, "r1", Room.KITCHEN)])
    clock = SimClock(MIDNIGHT + 21 * 3600)
    summary = DailySummary(clock, home, "UTC", "08:00")
    clock.advance(600)
    summary.observe(Reading(clock.wall(), "pir", {"motion": True}))  # 06:10, read as the 4th
    clock.advance(1200)
    clock.jump_wall(MIDNIGHT + 9 * 86400 + 6.5 * 3600 - clock.wall())  # NTP
    summary.observe(Reading(clock.wall(), "pir", {"motion": True}))
    clock.set_wall(MIDNIGHT + 10 * 86400 + 8 * 3600)
    assert [(d["day"], d["partial"], d["watched_h"]) for d in summary.due()] == [
        ("2024-03-04", True, 0.0),  # what the stale clock dated: no hour of that day watched
        ("2024-03-13", True, 17.5),
    ]
