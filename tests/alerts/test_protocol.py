"""Platform commands as docs/protocol.md describes them, through the runtime that takes them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.clock import SimClock
from gateway.model import Reading
from gateway.runtime import Runtime
from tests.support.harness import gateway_config, settings_for


def _runtime(tmp_path: Path) -> tuple[SimClock, Runtime]:
    clock = SimClock()
    settings = settings_for(gateway_config(tmp_path, None, None))
    return clock, Runtime(settings, clock, None, [], tmp_path / "state")


async def test_a_command_of_another_protocol_version_is_rejected_not_acted_on(
    tmp_path: Path,
) -> None:
    """A field may change meaning only with a new ``v`` (docs/protocol.md): the gateway cannot
    know what a ``v: 2`` command means, so it must not act on it as if it were version 1. One
    without ``v`` (earlier platforms, the tests) is taken as version 1."""
    clock, runtime = _runtime(tmp_path)
    await runtime._commit(runtime._feed(Reading(clock.wall(), "sos-r1", {"action": "sos"})))
    (alert_id,) = runtime.manager.active
    for v in (2, "1", True, None, 1.5):
        for command in (
            {"command": "ack", "alert_id": alert_id},
            {"command": "visit_start", "resident": "r2"},
        ):
            await runtime.handle_command(json.dumps({"v": v, **command}).encode())
    assert runtime.counters["commands_rejected"] == 10
    assert runtime.manager.active[alert_id].state.value == "open"
    assert not runtime.manager.visits
    await runtime.handle_command(b'{"command": "visit_start", "resident": "r2"}')
    await runtime.handle_command(
        b'{"v": 1, "command": "ack", "alert_id": "%s"}' % alert_id.encode()
    )
    assert runtime.counters["commands_rejected"] == 10
    assert runtime.manager.active[alert_id].state.value == "acknowledged"
    assert sorted(runtime.manager.visits) == ["r2"]
    await runtime.close()


async def test_the_heartbeat_names_every_outbox_queue_also_when_empty(tmp_path: Path) -> None:
    """docs/protocol.md shows ``"outbox": {"alert": 0}``: a platform that watches for alerts
    stuck in a home reads ``outbox.alert``. An empty outbox sent ``{}``."""
    clock, runtime = _runtime(tmp_path)
    assert (await runtime.health())["outbox"] == {"alert": 0, "summary": 0}
    await runtime._commit(runtime._feed(Reading(clock.wall(), "sos-r1", {"action": "sos"})))
    assert (await runtime.health())["outbox"] == {"alert": 1, "summary": 0}
    await runtime.close()


async def test_a_command_re_served_on_every_poll_is_logged_once_an_hour_and_counted_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook platform serves a pending command on every poll until it sees the alert change
    it leads to (docs/protocol.md): one the gateway rejects, or an ``ack`` of an alert it does
    not have open, never leads to one, and came back every ``poll_s`` for good. The rejection
    was a warning of up to 16 KiB each time (the command's value quoted whole) in the journal on
    the SD card; the unknown alert was not logged at all."""
    clock, runtime = _runtime(tmp_path)
    bad = json.dumps({"command": "x" * 15_000}).encode()
    unknown = b'{"command": "ack", "alert_id": "gw-test-0000"}'
    with caplog.at_level(logging.INFO, logger="gateway.runtime"):
        for _ in range(120):  # an hour of polls every 30 s
            await runtime.handle_command(bad)
            await runtime.handle_command(unknown)
            clock.advance(29.0)
        first = [r.getMessage() for r in caplog.records]
        caplog.clear()
        clock.advance(120.0)
        await runtime.handle_command(bad)
        await runtime.handle_command(unknown)
        again = [r.getMessage() for r in caplog.records]
    assert runtime.counters["commands_rejected"] == 121
    assert runtime.manager.counters["unknown_alert_commands"] == 121
    assert len(first) == 2 and all(len(line) < 300 for line in first)
    assert "command: expected one of" in first[0] and "gw-test-0000" in first[1]
    assert len(again) == 2 and all("119 more like it" in line for line in again)
    await runtime.close()
