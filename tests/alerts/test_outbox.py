from __future__ import annotations

import sqlite3
from pathlib import Path

from alerts.outbox import ALERT, SUMMARY, Message, Outbox
from gateway.clock import SimClock
from tests.support.storage import scribble_over_a_page


def test_items_survive_reopen_in_order_and_leave_only_when_acked(tmp_path: Path) -> None:
    clock = SimClock()
    box = Outbox(tmp_path / "o.db", clock)
    seqs = [box.put(ALERT, f"r{i % 2}", "t", f"m{i}".encode()) for i in range(5)]
    box.close()
    box = Outbox(tmp_path / "o.db", clock)  # as after a restart
    assert [i.payload for i in box.pending()] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    box.ack(seqs[0])
    assert [i.seq for i in box.pending()] == seqs[1:]
    assert box.put(ALERT, "r0", "t", b"m5") > seqs[-1]  # sequence continues after reopen
    assert box.depth() == {"alert": 5}


def test_non_alert_messages_are_bounded_alerts_never(tmp_path: Path) -> None:
    clock = SimClock()
    box = Outbox(tmp_path / "o.db", clock, max_other_rows=10, max_other_age_s=3600)
    for i in range(30):
        box.put(ALERT, "r", "t", b"a")
        box.put(SUMMARY, "r", "t", f"s{i}".encode())
    assert box.depth() == {"alert": 30, "summary": 10}
    assert next(i.payload for i in box.pending(100) if i.kind == SUMMARY) == b"s20"
    clock.advance(7200)
    box.put(SUMMARY, "r", "t", b"new")
    assert box.depth() == {"alert": 30, "summary": 1}
    # NTP sets a Pi that booted with an old date forward: today's summary is not old
    clock.jump_wall(3 * 86400)
    box.put(SUMMARY, "r", "t", b"newer")
    assert box.depth() == {"alert": 30, "summary": 2}
    box.close()
    # what an earlier run left is aged by its stamp
    clock.advance(3601)
    box = Outbox(tmp_path / "o.db", clock, max_other_rows=10, max_other_age_s=3600)
    box.put(SUMMARY, "r", "t", b"after restart")
    assert [i.payload for i in box.pending(100) if i.kind == SUMMARY] == [b"after restart"]


def test_full_disk_keeps_alerts_in_memory_and_writes_them_later(tmp_path: Path) -> None:
    clock = SimClock()
    box = Outbox(tmp_path / "o.db", clock)
    box.put(ALERT, "r", "t", b"before")
    # Make the database unable to grow: SQLite reports SQLITE_FULL, as on a full SD card.
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    big = b"x" * 200_000
    full_seq = box.put(ALERT, "r", "t", big)
    assert box.counters["disk_errors"] == 1
    assert box.depth() == {"alert": 1, "alert_unsaved": 1}
    assert [i.seq for i in box.pending()][-1] == full_seq
    assert box.retry_unsaved() == 1  # still full
    box._db.execute("PRAGMA max_page_count = 1073741823")
    assert box.retry_unsaved() == 0
    assert box.depth() == {"alert": 2}
    box.close()
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE payload = ?", (big,)).fetchone() == (
            1,
        )


def test_ack_of_memory_only_alert(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", SimClock())
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    seq = box.put(ALERT, "r", "t", b"y" * 100_000)
    box.ack(seq)
    assert box.depth() == {} and box.pending() == []


def test_a_file_damaged_under_the_outbox_is_set_aside_and_delivery_goes_on(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", SimClock())
    for i in range(300):
        box.put(ALERT, f"r{i % 3}", "t", b"x" * 500)
    scribble_over_a_page(tmp_path / "o.db", page=20)  # one of the messages' pages
    items = box.pending(1000)
    assert box.counters["damaged_files"] == 1 and (tmp_path / "o.db.corrupt-1").exists()
    # what the damaged page held is lost here (kept in the set-aside file); the rest is not
    assert 250 < len(items) < 300
    assert [i.seq for i in items] == sorted(i.seq for i in items)
    new = box.put(ALERT, "r0", "t", b"new")
    box.ack(items[0].seq)
    box.close()
    reopened = Outbox(tmp_path / "o.db", SimClock())  # the new file is sound and holds them
    assert [i.seq for i in reopened.pending(1000)] == [i.seq for i in items[1:]] + [new]
    assert reopened.counters["damaged_files"] == 0
    reopened.close()


def test_an_outbox_file_damaged_before_start_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "o.db").write_bytes(b"\x00torn write" * 300)
    box = Outbox(tmp_path / "o.db", SimClock())
    seq = box.put(ALERT, "r", "t", b"sos")
    assert [i.seq for i in box.pending()] == [seq]
    box.close()
    assert (tmp_path / "o.db.corrupt-1").read_bytes().startswith(b"\x00torn write")


def test_alerts_in_a_file_damaged_while_the_gateway_was_off_are_taken_back(
    tmp_path: Path,
) -> None:
    """A power cut damages the outbox's index, the rows are intact: the file fails the check
    at the next start and is set aside, and the alerts in it still go."""
    path = tmp_path / "o.db"
    box = Outbox(path, SimClock())
    seqs = [box.put(ALERT, "r1", "t", b"sos-%d" % i) for i in range(3)]
    box.commit([], {"a1": {"type": "sos"}})
    # damage can change a value's type too: such a row is left behind, it does not stop the start
    bad = box.put(ALERT, "r1", "t", b"x")
    box._db.execute("UPDATE outbox SET kind = X'00' WHERE seq = ?", (bad,))  # a BLOB
    box._db.execute("UPDATE outbox SET payload = 'sos-1' WHERE seq = ?", (seqs[1],))  # TEXT
    box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = box._db.execute("SELECT rootpage FROM sqlite_master WHERE name='outbox_kind'")
    index_page = page.fetchone()[0]
    box.close()
    with path.open("r+b") as f:
        f.seek((index_page - 1) * 4096)
        f.write(b"\xff" * 4096)
    again = Outbox(path, SimClock())
    assert again.counters["damaged_files"] == 1 and (tmp_path / "o.db.corrupt-1").exists()
    assert [(i.seq, i.payload) for i in again.pending()] == [
        (seq, b"sos-%d" % i) for i, seq in enumerate(seqs)
    ]
    assert again.open_alerts() == {"a1": {"type": "sos"}}
    new = again.put(ALERT, "r1", "t", b"next")
    again.close()
    assert [i.seq for i in Outbox(path, SimClock()).pending()] == [*seqs, new] and new > seqs[-1]


def test_a_message_held_in_memory_goes_to_disk_with_the_next_commit_that_fits(
    tmp_path: Path,
) -> None:
    """A's withdrawal was refused by a full card (held in memory, open set {} unsaved); room
    came back and B's raise was committed with the open set {B} before any retry: on disk
    A's withdrawal was gone and A was not open either, so a power cut then left the platform
    with A open for ever."""
    box = Outbox(tmp_path / "o.db", SimClock())
    (raised,) = box.commit([Message(ALERT, "r", "t", b"A raised")], {"A": {"id": "A"}})
    box.ack(raised)
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    (withdrawn,) = box.commit([Message(ALERT, "r", "t", b"A cancelled" + b" " * 200_000)], {})
    assert box.has_unsaved
    box._db.execute("PRAGMA max_page_count = 1073741823")
    (b,) = box.commit([Message(ALERT, "r", "t", b"B raised")], {"B": {"id": "B"}})
    assert not box.has_unsaved
    after_power_cut = Outbox(tmp_path / "o.db", SimClock())
    assert [i.seq for i in after_power_cut.pending()] == [withdrawn, b]
    assert after_power_cut.open_alerts() == {"B": {"id": "B"}}


def test_a_held_message_a_failed_commit_wrote_after_all_goes_once_and_blocks_nothing(
    tmp_path: Path,
) -> None:
    """A COMMIT that reported an error but wrote: the item held in memory is on disk too. It
    is listed once, the next commit is not blocked by it, and its ack deletes it for good."""
    box = Outbox(tmp_path / "o.db", SimClock())
    (seq,) = box.commit([Message(ALERT, "r", "t", b"sos")], {"A": {}})
    box._unsaved[seq] = box.pending()[0]  # as if the COMMIT had reported an error
    assert [i.seq for i in box.pending()] == [seq]  # not twice
    (later,) = box.commit([Message(ALERT, "r", "t", b"next")], {"A": {}, "B": {}})
    assert not box.has_unsaved and [i.seq for i in box.pending()] == [seq, later]
    box._unsaved[seq] = box.pending()[0]  # held again, and acked from memory
    box.ack(seq)
    assert [i.seq for i in box.pending()] == [later]
    box.close()
    again = Outbox(tmp_path / "o.db", SimClock())  # not sent again after a restart
    assert [i.seq for i in again.pending()] == [later]
