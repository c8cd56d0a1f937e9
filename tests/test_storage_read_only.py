"""An SD card worn out into read-only mode (how many end their life): the gateway still starts,
takes back what it can read, and delivers alerts from memory. Before, the outbox could not be
opened (SQLite's write-ahead log needs its shared-memory file), and the gateway failed at
every start: no SOS was heard until someone replaced the card."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.outbox import ALERT, Message, Outbox
from gateway.clock import SimClock, SystemClock
from gateway.wiring import build_runtime
from tests.support.harness import (
    fast_backoff,
    gateway_config,
    publish_readings,
    running,
    running_platform,
    runtime_for,
    settings_for,
    wait_until,
)
from tests.support.mosquitto import Mosquitto
from tests.support.readonly import card, no_renames
from tests.support.storage import scribble_over_a_page


def test_an_outbox_on_a_card_gone_read_only_reads_back_and_holds_in_memory(
    tmp_path: Path,
) -> None:
    with card(tmp_path) as (folder, read_only):
        before = Outbox(folder / "outbox.sqlite3", SimClock())
        queued = before.put(ALERT, "r1", "t", b"sos")
        before.commit([], {"a1": {"x": 1}})
        before.close()
        with read_only:
            box = Outbox(folder / "outbox.sqlite3", SimClock())
            assert [i.seq for i in box.pending()] == [queued]
            assert box.open_alerts() == {"a1": {"x": 1}}
            new = box.put(ALERT, "r2", "t", b"fall")
            assert new > queued and [i.seq for i in box.pending()] == [queued, new]
            box.ack(queued)
            assert [i.seq for i in box.pending()] == [new]
            box.close()


@pytest.mark.broker
async def test_a_gateway_on_a_card_gone_read_only_still_delivers_sos(
    tmp_path: Path, local_broker: Mosquitto, platform_broker: Mosquitto
) -> None:
    with card(tmp_path) as (folder, read_only):
        config = gateway_config(tmp_path, local_broker, platform_broker)
        config["gateway"]["storage_path"] = str(folder)
        async with running_platform(platform_broker) as platform:
            runtime = runtime_for(config)
            async with running(runtime):
                await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
                await platform.wait_for_alerts(1)
            with read_only:
                runtime = runtime_for(config)  # a restart on the read-only card
                async with running(runtime):
                    assert len(runtime.manager.active) == 1  # the open SOS, read back
                    await publish_readings(local_broker, [("sos-r2", {"action": "sos"})])
                    await wait_until(lambda: any(a["resident"] == "r2" for a in platform.received))
                    await wait_until(lambda: runtime.outbox.outbox.depth() == {})
    assert {(a["type"], a["resident"]) for a in platform.received} == {("sos", "r1"), ("sos", "r2")}


def test_an_outbox_found_damaged_that_cannot_be_set_aside_keeps_delivering(
    tmp_path: Path,
) -> None:
    """A dying card, the file damaged and the card refusing to rename it aside (read-only):
    the OSError ended the commit of the next alert, and the processing loop with it. What
    reads of the file and every new alert are now held in memory and delivered."""
    path = tmp_path / "box" / "outbox.sqlite3"
    path.parent.mkdir()
    box = Outbox(path, SimClock())
    queued = [box.put(ALERT, "r1", "t", b"x" * 500) for _ in range(300)]
    box.commit([], {"a1": {"x": 1}})
    scribble_over_a_page(path, page=20)
    with no_renames(path.parent):
        read_back = [i.seq for i in box.pending(1000)]  # the scan meets the damage
        assert box.counters["damaged_files"] == 1
        assert 250 < len(read_back) < 300 and set(read_back) <= set(queued)
        (sos,) = box.commit([Message(ALERT, "r1", "t", b"sos")], {"a1": {}, "a2": {}})
        pending = [i.seq for i in box.pending(1000)]
        assert pending == [*read_back, sos] and box.open_alerts() == {"a1": {}, "a2": {}}
        box.ack(pending[0])
        assert [i.seq for i in box.pending(1000)] == pending[1:]
    box.close()


@pytest.mark.broker
async def test_a_gateway_whose_storage_folder_cannot_be_made_still_delivers_sos(
    tmp_path: Path,
    local_broker: Mosquitto,
    platform_broker: Mosquitto,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``gateway.storage_path`` a folder that cannot be created (a typo under a file, a path
    outside the service's writable ones, a card read-only before the first start): the
    gateway stopped on a traceback at every start, and systemd restarted it into the same one,
    so no SOS was heard at all. It now says why and runs from memory."""
    config = gateway_config(tmp_path, local_broker, platform_broker)
    config["gateway"]["storage_path"] = str(tmp_path / "a-file" / "state")
    settings = settings_for(config)  # check-config passes: nothing is in the way yet
    (tmp_path / "a-file").write_text("not a folder")
    async with running_platform(platform_broker) as platform:
        runtime = build_runtime(settings, SystemClock())
        runtime.backoff_factory = fast_backoff
        assert runtime.forwarder is not None
        runtime.forwarder.backoff = fast_backoff()
        async with running(runtime):
            await publish_readings(local_broker, [("sos-r1", {"action": "sos"})])
            await platform.wait_for_alerts(1)
            await wait_until(lambda: runtime.outbox.outbox.depth() == {})
    assert [a["type"] for a in platform.received] == ["sos"]
    assert any(
        "storage_path" in r.getMessage() and str(tmp_path / "a-file") in r.getMessage()
        for r in caplog.records
    )
