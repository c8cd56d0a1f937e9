"""Small state on an SD card that fills up or gets damaged: writes fail at once (never hang),
nothing already saved is lost, and writing resumes when the card has room again. "Full" is a
real write failure: the process's file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes the
kernel refuse to grow the file, as a full card does."""

from __future__ import annotations

import contextlib
import resource
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from alerts.outbox import ALERT, Message, Outbox
from gateway.clock import SimClock
from gateway.detection.routine.learning import SqliteLearnedStore, open_learned_store
from gateway.storage import KeyValueFile
from tests.support.storage import HeldUpWrites, scribble_over_a_page, values_on_disk


@contextlib.contextmanager
def card_full(path: Path) -> Iterator[None]:
    """No file may grow beyond ``path``'s size while inside."""
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


def test_learning_survives_a_full_card_and_is_saved_once_there_is_room(tmp_path: Path) -> None:
    clock = SimClock()
    path = tmp_path / "routine.sqlite"
    store = SqliteLearnedStore(path, clock, commit_every_s=60.0)
    store.put("quiets", [1.0])
    store.flush()
    with card_full(path):
        store.put("quiets", [1.0, 2.0])
        store.put("wakeups", list(range(5000)))  # does not fit
        clock.advance(61)
        store.put("wakeups", list(range(5000)))  # the periodic commit fails: no hang, no raise
        assert store.commit_errors == 1
    clock.advance(61)
    store.put("baths", [3.0])  # the next periodic commit carries what the failed one held
    store.close()
    again = SqliteLearnedStore(path, SimClock())
    assert again.get("quiets") == [1.0, 2.0] and again.get("wakeups") == list(range(5000))
    assert again.get("baths") == [3.0]


def test_a_commit_the_full_card_refuses_writes_neither_its_messages_nor_the_open_alerts(
    tmp_path: Path,
) -> None:
    """What a restart after a power cut would read is always a consistent pair: the open
    alerts and the messages that changed them land together or not at all."""
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, SimClock())
    first = box.commit([Message(ALERT, "r1", "t", b"raised a1")], {"a1": {"x": 1}})
    with card_full(path):
        refused = box.commit(
            [Message(ALERT, "r1", "t", b"raised a2" + b"y" * 200_000)],
            {"a1": {"x": 1}, "a2": {"x": 2}},
        )
        assert box.counters["disk_errors"] == 1 and box.has_unsaved
        assert box.retry_unsaved() == 1  # still full: no hang, no raise
    on_disk = Outbox(path, SimClock())  # what a restart now would find
    assert [i.seq for i in on_disk.pending()] == first
    assert on_disk.open_alerts() == {"a1": {"x": 1}}
    on_disk.close()
    assert [i.seq for i in box.pending()] == first + refused  # delivered from memory meanwhile
    assert box.retry_unsaved() == 0  # room again: both written, together
    box.close()
    again = Outbox(path, SimClock())
    assert [i.seq for i in again.pending()] == first + refused
    assert again.open_alerts() == {"a1": {"x": 1}, "a2": {"x": 2}}


def test_a_newer_set_of_open_alerts_is_not_overwritten_by_one_the_card_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, SimClock())
    box.commit([], {"a1": {"x": 1}})
    with card_full(path):
        box.commit([], {"a1": {"x": 1}, "big": {"blob": "y" * 200_000}})
    box.commit([Message(ALERT, "r1", "t", b"resolved big")], {"a1": {"x": 1}})
    assert not box.has_unsaved
    assert box.retry_unsaved() == 0
    box.close()
    assert Outbox(path, SimClock()).open_alerts() == {"a1": {"x": 1}}


def test_a_damaged_learned_state_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "routine.sqlite"
    path.write_bytes(b"\x00torn write" * 300)
    store = SqliteLearnedStore(path, SimClock())
    assert store.get("quiets") is None
    store.put("quiets", [1.0])
    store.close()
    assert SqliteLearnedStore(path, SimClock()).get("quiets") == [1.0]
    assert (tmp_path / "routine.sqlite.corrupt-1").exists()


def test_values_of_a_file_whose_index_was_damaged_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    store = KeyValueFile(path, "open_alerts", "test")
    store.update({f"a{i}": {"n": i} for i in range(3)})
    store.close()
    with sqlite3.connect(path) as db:
        (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index'").fetchone()
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(b"\xff" * page_size)
    again = KeyValueFile(path, "open_alerts", "test")
    assert again.items() == {f"a{i}": {"n": i} for i in range(3)}
    assert (tmp_path / "alerts.sqlite3.corrupt-1").exists()


def test_a_damaged_outbox_file_on_a_full_card_still_delivers_and_is_replaced_later(
    tmp_path: Path,
) -> None:
    """A dying card: the outbox file turns out damaged while the card is full, so the new
    file that should take over cannot be started. What was read back of the old file and
    the alerts committed meanwhile are delivered from memory, and written to a new file once
    there is room (the outbox used to stay closed until a restart, which then no longer read
    the set-aside file: every alert in it was stranded)."""
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, SimClock())
    queued = [box.put(ALERT, "r1", "t", b"x" * 500) for _ in range(300)]
    box.commit([], {"a1": {"x": 1}})
    scribble_over_a_page(path, page=20)
    nothing = tmp_path / "empty"
    nothing.touch()
    with card_full(nothing):  # no file may grow at all
        read_back = [i.seq for i in box.pending(1000)]
        (sos,) = box.commit([Message(ALERT, "r1", "t", b"sos")], {"a1": {"x": 1}, "a2": {}})
        assert box.counters["damaged_files"] == 1 and box.has_unsaved
        assert 250 < len(read_back) < 300 and set(read_back) <= set(queued)
        assert [i.seq for i in box.pending(1000)] == [*read_back, sos]
        box.ack(read_back[0])
        assert box.retry_unsaved() > 0  # still full: no raise
    assert box.retry_unsaved() == 0
    box.close()
    again = Outbox(path, SimClock())
    assert [i.seq for i in again.pending(1000)] == [*read_back[1:], sos]
    assert again.open_alerts() == {"a1": {"x": 1}, "a2": {}}


def test_an_outbox_file_found_damaged_at_a_start_on_a_full_card_does_not_stop_the_start(
    tmp_path: Path,
) -> None:
    """The gateway used to fail at every start (a crash loop, nobody heard) until the card
    had room, and the empty file its failed start left then hid the set-aside one."""
    path = tmp_path / "outbox.sqlite3"
    before_power_cut = Outbox(path, SimClock())  # never closed: its -wal and -shm stay
    queued = [before_power_cut.put(ALERT, "r1", "t", b"x" * 500) for _ in range(300)]
    before_power_cut.commit([], {"a1": {"x": 1}})
    scribble_over_a_page(path, page=20)
    nothing = tmp_path / "empty"
    nothing.touch()
    with card_full(nothing):
        box = Outbox(path, SimClock())
        read_back = [i.seq for i in box.pending(1000)]
        assert 250 < len(read_back) < 300 and set(read_back) <= set(queued)
        assert box.open_alerts() == {"a1": {"x": 1}} and box.has_unsaved
        (sos,) = box.commit([Message(ALERT, "r1", "t", b"sos")], {"a1": {"x": 1}, "a2": {}})
        assert sos > queued[-1]
    assert box.retry_unsaved() == 0
    box.close()
    again = Outbox(path, SimClock())
    assert [i.seq for i in again.pending(1000)] == [*read_back, sos]
    assert again.open_alerts() == {"a1": {"x": 1}, "a2": {}}


def test_a_learned_state_file_found_damaged_at_a_start_on_a_full_card_does_not_stop_the_start(
    tmp_path: Path,
) -> None:
    """Its new file could not be started: the store, and with it the gateway, failed at every
    start until the card had room (nobody heard, SOS included), and then the empty file its
    failed start left hid what the set-aside one still held."""
    path = tmp_path / "routine.sqlite"
    before_power_cut = KeyValueFile(path, "learned", "test")  # never closed
    before_power_cut.update({f"k{i}": list(range(500)) for i in range(200)})
    scribble_over_a_page(path, page=20)
    nothing = tmp_path / "empty"
    nothing.touch()
    with card_full(nothing):
        store = SqliteLearnedStore(path, SimClock())
        read_back = {k for k in (f"k{i}" for i in range(200)) if store.get(k) is not None}
        assert 150 < len(read_back) < 200
        store.put("quiets", [1.0])
        store.flush()
        assert store.commit_errors == 1
    store.flush()
    store.close()
    again = SqliteLearnedStore(path, SimClock())
    assert {k for k in (f"k{i}" for i in range(200)) if again.get(k) is not None} == read_back
    assert again.get("quiets") == [1.0] and again.get("k199") == list(range(500))


def test_an_outbox_that_cannot_be_opened_holds_everything_in_memory(tmp_path: Path) -> None:
    """A file SQLite cannot open at all (here a directory in its place; on a Pi a card worn
    out into read-only mode, test_storage_read_only.py): the outbox used to raise, and the
    gateway could not start (no SOS heard). Now it starts, holds what it commits in memory,
    delivers from there, and writes to a file once one can be opened."""
    path = tmp_path / "outbox.sqlite3"
    path.mkdir()
    box = Outbox(path, SimClock())
    assert box.pending() == [] and box.open_alerts() == {} and box.counters["disk_errors"] == 1
    first, second = box.commit(
        [Message(ALERT, "r1", "t", b"sos"), Message(ALERT, "r2", "t", b"fall")], {"a1": {}}
    )
    assert [i.seq for i in box.pending()] == [first, second] and box.has_unsaved
    box.ack(first)
    assert [i.seq for i in box.pending()] == [second] and box.depth() == {"alert_unsaved": 1}
    path.rmdir()  # a file can be opened again: what is held goes to it with the next commit
    assert box.retry_unsaved() == 0
    box.close()
    again = Outbox(path, SimClock())
    assert [i.seq for i in again.pending()] == [second] and again.open_alerts() == {"a1": {}}


HOUR = 3600.0


def _gateway_store(state_dir: Path, clock: SimClock) -> SqliteLearnedStore:
    """The learned state store a gateway opens (hourly commits, "soon" ones within 5 min)."""
    store = open_learned_store(state_dir, clock)
    assert isinstance(store, SqliteLearnedStore)
    return store


def _hourly_commit_held_up(
    tmp_path: Path,
) -> tuple[SimClock, Path, SqliteLearnedStore, HeldUpWrites]:
    """A gateway's store holding ``quiets`` with its hourly commit due, and the file's write
    lock held (:class:`HeldUpWrites`): the commit's write will wait for it."""
    clock = SimClock()
    path = tmp_path / "routine.sqlite"
    store = _gateway_store(tmp_path, clock)
    store.put("quiets", [1.0])
    held = HeldUpWrites(path)
    clock.advance(HOUR + 1)
    return clock, path, store, held


def _commit_due_until(store: SqliteLearnedStore, commits: int) -> None:
    """Tick (without moving simulated time) until ``commits`` writes have been taken up."""
    deadline = time.monotonic() + 10.0
    while store.commits < commits:
        assert time.monotonic() < deadline, f"{store.commits} commits, not {commits}"
        time.sleep(0.01)
        store.commit_due()


def test_a_slow_learned_state_write_does_not_hold_up_the_loop(tmp_path: Path) -> None:
    """The hourly commit ran on the event loop: on a worn SD card, whose fsync can take
    seconds, no reading was handled meanwhile, an SOS press included. A card that slow cannot
    be made here: the write is held up by a real lock on the real file instead
    (``HeldUpWrites``), and the old code sat in it for 5 s, then gave up."""
    _, path, store, held = _hourly_commit_held_up(tmp_path)
    started = time.monotonic()
    store.commit_due()  # the hourly commit
    assert time.monotonic() - started < 1.0
    assert values_on_disk(path, "learned") == {} and store.commit_errors == 0
    assert store.get("quiets") == [1.0]
    held.release()
    store.flush()  # waits for the write in flight; nothing else to write
    assert values_on_disk(path, "learned") == {"quiets": [1.0]}
    assert store.commits == 1 and store.commit_errors == 0
    store.close()


def test_a_value_put_while_a_learned_state_write_is_in_flight_goes_with_the_next_commit(
    tmp_path: Path,
) -> None:
    clock, path, store, held = _hourly_commit_held_up(tmp_path)
    store.commit_due()  # in flight until the lock goes
    store.put("quiets", [1.0, 2.0])
    store.put("wakeups", [7.0], soon=True)
    assert store.get("quiets") == [1.0, 2.0]  # reads see the latest put, not what is on disk
    clock.advance(301)
    store.commit_due()  # due, but one write at a time: it waits for the one in flight
    held.release()
    _commit_due_until(store, 1)  # taken up; the commit that was due goes ahead at once
    _commit_due_until(store, 2)
    assert values_on_disk(path, "learned") == {"quiets": [1.0, 2.0], "wakeups": [7.0]}
    assert store.commits == 2 and store.commit_errors == 0
    store.close()


def test_a_stop_with_a_learned_state_write_in_flight_waits_for_it_and_loses_nothing(
    tmp_path: Path,
) -> None:
    _, path, store, held = _hourly_commit_held_up(tmp_path)
    store.commit_due()
    store.put("wakeups", [7.0])  # not due before the stop's commit
    assert store.commit_errors == 0
    release = threading.Timer(0.3, held.release)
    release.start()
    store.close()  # the write in flight ends once the lock goes, then the stop's own
    assert held.released.is_set()
    release.join()
    assert values_on_disk(path, "learned") == {"quiets": [1.0], "wakeups": [7.0]}
    assert store.commits == 2 and store.commit_errors == 0
    assert SqliteLearnedStore(path, SimClock()).get("wakeups") == [7.0]


def test_a_learned_state_write_the_full_card_refuses_off_the_loop_is_counted_and_tried_again(
    tmp_path: Path,
) -> None:
    """A write that fails on the writer's thread is counted when it is taken up (at the next
    commit, or a flush, which waits for it), and nothing it held is lost."""
    clock = SimClock()
    path = tmp_path / "routine.sqlite"
    store = _gateway_store(tmp_path, clock)
    store.put("quiets", [1.0])
    store.flush()
    with card_full(path):
        store.put("wakeups", list(range(5000)))  # does not fit
        clock.advance(HOUR + 1)
        store.commit_due()
        assert store.commit_errors == 0  # not known yet: the loop did not wait for it
        store.flush()  # takes up the refused write, and tries once more: refused too
        assert store.commit_errors == 2 and store.commits == 1
        assert store.get("wakeups") == list(range(5000))
    clock.advance(HOUR + 1)
    store.commit_due()  # room again: the next hourly commit carries it
    _commit_due_until(store, 2)
    assert values_on_disk(path, "learned") == {"quiets": [1.0], "wakeups": list(range(5000))}
    store.close()
    assert store.commit_errors == 2 and store.commits == 2
