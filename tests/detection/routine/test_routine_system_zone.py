"""The system time zone (``tz`` not set, the default) keeps its daylight-saving rules."""

from __future__ import annotations

import datetime as dt

import pytest

from alerts.summary import DailySummary
from gateway.clock import SimClock
from gateway.detection.base import Home
from gateway.detection.routine.localtime import LocalTime
from gateway.model import Device, DeviceKind, Reading, Resident, Room

JULY_NOON_UTC = dt.datetime(2024, 7, 1, 12, 0, tzinfo=dt.UTC).timestamp()
JULY_MIDNIGHT_HALF_PAST_BST = dt.datetime(2024, 6, 30, 23, 30, tzinfo=dt.UTC).timestamp()


def test_the_system_zone_keeps_its_summer_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway started in winter with the system zone Europe/London: it took today's fixed
    offset (GMT), so in summer night windows and the summary's days were an hour off until
    the next restart."""
    monkeypatch.setenv("TZ", "Europe/London")
    assert LocalTime(None).minute_of_day(JULY_NOON_UTC) == 13 * 60  # BST
    home = Home([Resident("r1")], [Device("pir", DeviceKind.MOTION, "r1", Room.KITCHEN)])
    clock = SimClock(JULY_MIDNIGHT_HALF_PAST_BST)
    summary = DailySummary(clock, home, "", "08:00")
    summary.observe(Reading(JULY_MIDNIGHT_HALF_PAST_BST, "pir", {"motion": True}))
    clock.set_wall(JULY_NOON_UTC + 86400)
    assert [d["day"] for d in summary.due()] == ["2024-07-01"]  # 00:30 BST, not 23:30 GMT
