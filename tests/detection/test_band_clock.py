"""BandClock: a band's batches dated by its sample counter, arrival only anchoring and
bounding the count (gateway/detection/band_clock.py)."""

from collections import Counter

import numpy as np
import pytest

from gateway.detection.band_clock import (
    COUNTER_MODULO,
    DRIFT_WINDOW_S,
    GAP_LAG_S,
    MAX_LAG_S,
    BandClock,
    WallOffsets,
)

FS = 50.0
N = 10  # samples per notification


def deliver(
    clock: BandClock, seq: int, arrived_mono: float, n: int = N, fs: float = FS
) -> float | None:
    return clock.first_sample(seq, n, fs, arrived_mono)


def true_stream(batches: int, rate: float = FS, start: float = 100.0, seq0: int = 0):
    """(seq, time the batch's last sample was taken) of a band sampling at ``rate``."""
    for k in range(batches):
        seq = seq0 + k * N
        yield seq, start + (k * N + N - 1) / rate


def test_jittery_arrivals_are_dated_by_the_counter() -> None:
    rng = np.random.default_rng(1)
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    firsts = []
    for seq, last_taken in true_stream(300):
        first = deliver(clock, seq, last_taken + rng.uniform(0.005, 0.08))
        assert first is not None
        firsts.append(first)
    steps = np.diff(firsts)
    assert np.allclose(steps, N / FS, atol=0.08)  # no batch moved by more than the jitter
    # settles on the earliest arrivals (the least delayed), never later than a sample was taken
    assert firsts[-1] == pytest.approx(100.0 + 299 * N / FS, abs=0.01)
    assert counters["band_clock_anchors"] == 1


def test_batches_handed_over_together_keep_their_places() -> None:
    """The host stalled for 0.6 s: three notifications arrive at one moment."""
    clock = BandClock(Counter())
    assert deliver(clock, 0, 100.18) == pytest.approx(100.0)
    together = 100.18 + 0.8
    firsts = [deliver(clock, seq, together) for seq in (10, 20, 30)]
    assert firsts == pytest.approx([100.2, 100.4, 100.6])


def test_lost_notifications_leave_a_gap_of_exactly_the_missing_samples() -> None:
    clock = BandClock(Counter())
    deliver(clock, 0, 100.18)
    assert deliver(clock, 60, 101.38) == pytest.approx(101.2)  # 50 samples lost: 1 s


def test_counter_wraps() -> None:
    clock = BandClock(Counter())
    top = COUNTER_MODULO - N
    deliver(clock, top, 100.18)
    assert deliver(clock, 0, 100.38) == pytest.approx(100.2)


@pytest.mark.parametrize("rate", [49.5, 50.5])  # a band 1 % slow or fast against its label
def test_a_band_off_its_nominal_rate_stays_within_a_window_of_its_arrivals(rate: float) -> None:
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    worst = 0.0
    for seq, last_taken in true_stream(3000, rate=rate):  # 10 minutes
        arrived = last_taken + 0.01
        first = deliver(clock, seq, arrived)
        assert first is not None
        taken = last_taken - (N - 1) / rate
        assert first <= arrived - (N - 1) / FS + 1e-9  # never dated after it arrived
        worst = max(worst, abs(first - taken))
    # a slow band's lag is taken out at each window's end: at most two windows of its drift
    assert worst < 2 * 0.01 * DRIFT_WINDOW_S + 0.02
    if rate < FS:
        assert counters["band_drift_corrections"] > 0


def test_a_buffer_flushed_after_a_reconnect_keeps_its_own_times() -> None:
    """The band kept sampling while out of range for 8 s and sends the buffer at 10x speed."""
    clock = BandClock(Counter())
    deliver(clock, 0, 100.18)
    seqs = range(10, 10 + 40 * N, N)  # 8 s of samples
    firsts = [deliver(clock, seq, 108.2 + 0.02 * i) for i, seq in enumerate(seqs)]
    assert firsts == pytest.approx([100.2 + 0.2 * i for i in range(40)])


def test_the_batch_just_dated_sent_again_is_a_duplicate() -> None:
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    deliver(clock, 0, 100.18)
    deliver(clock, 10, 100.38)
    assert deliver(clock, 10, 100.40) is None
    assert deliver(clock, 20, 100.58) == pytest.approx(100.4)
    assert counters["band_duplicate_batches"] == 1


def test_a_counter_that_steps_back_starts_a_new_count_at_the_arrival() -> None:
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    for seq, last_taken in true_stream(50, seq0=90_000):
        deliver(clock, seq, last_taken + 0.01)
    assert deliver(clock, 0, 200.18) == pytest.approx(200.0)  # the band rebooted
    assert counters["band_counter_restarts"] == 1
    assert counters["band_clock_anchors"] == 2


def test_a_count_far_behind_its_arrivals_is_not_trusted() -> None:
    """A band that stopped counting while away: its counter says a second passed, the
    arrivals say two minutes."""
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    deliver(clock, 0, 100.18)
    arrived = 100.18 + 2 * MAX_LAG_S
    assert deliver(clock, 50, arrived) == pytest.approx(arrived - (N - 1) / FS)
    assert counters["band_clock_lost"] == 1


def test_after_lost_samples_a_late_count_restarts_at_the_arrival() -> None:
    """A band 2 % slow, back after 5 minutes out of range: its counter says 294 s passed, the
    arrivals 300 s. The batch after a gap is live (the band does not send what it missed), so
    the count starts again from its arrival instead of dating it 6 s early."""
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    deliver(clock, 0, 100.18)
    arrived = 100.18 + 300.0
    assert deliver(clock, 10 + round(294.0 * FS), arrived) == pytest.approx(arrived - 0.18)
    assert counters["band_clock_lost"] == 1
    # within GAP_LAG_S the counter still places the batch: a notification lost in the air,
    # and the batch after it handed over late by a stalled host
    assert deliver(clock, 10 + round(294.0 * FS) + 20, arrived + 0.4 + GAP_LAG_S / 2) == (
        pytest.approx(arrived - 0.18 + 0.4)
    )


@pytest.mark.parametrize("away_s", [150.0, 280.0])
def test_a_band_1pc_slow_back_after_minutes_is_dated_from_its_arrival(away_s: float) -> None:
    """Away for minutes, a band 1 % slow counts 1.5-2.8 s fewer samples than the time passed;
    its first batch back is live, so the count restarts from the arrival (kept, it dated a
    fall seconds early and then jumped, cutting the fall's window)."""
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    deliver(clock, 0, 100.18)
    arrived = 100.18 + away_s
    seq = N + round(away_s * 0.99 * FS)
    assert deliver(clock, seq, arrived) == pytest.approx(arrived - 0.18)
    assert counters["band_clock_lost"] == 1


def test_a_flush_right_after_a_drift_window_closed_keeps_its_times() -> None:
    """The window closes at the last batch before the link drops: that batch belongs to the
    next window, so the flush's lag is not taken for drift."""
    counters: Counter[str] = Counter()
    clock = BandClock(counters)
    for seq, last_taken in true_stream(101):  # the last one closes the first window
        deliver(clock, seq, last_taken + 0.01)
    assert counters["band_drift_corrections"] == 0
    next_seq = 101 * N
    back = 100.0 + 101 * N / FS + 25.0  # 25 s out of range, then the buffer at once
    firsts = [deliver(clock, next_seq + k * N, back) for k in range(5)]
    # (the count was anchored on an arrival 10 ms late)
    assert firsts == pytest.approx([100.0 + (101 + k) * N / FS for k in range(5)], abs=0.02)
    assert counters["band_drift_corrections"] == 0


WALL = 1_700_000_000.0


def test_a_stamp_is_read_on_the_wall_clock_it_was_made_with() -> None:
    """Stamped at mono 100, then NTP steps the clock by an hour; handled 0.5 s later."""
    offsets = WallOffsets()
    offsets.note(100.0, WALL + 100.0)
    stamp = WALL + 100.0
    offsets.note(100.2, WALL + 3600 + 100.2)
    band = WALL  # the band's history is still on the old clock
    assert offsets.waited(100.5, stamp, band, 0.18) == pytest.approx(0.5)
    # a stamp made after the step is read on the new clock
    assert offsets.waited(100.5, WALL + 3600 + 100.3, band, 0.18) == pytest.approx(0.2)


def test_wall_clocks_older_than_a_minute_are_forgotten() -> None:
    offsets = WallOffsets()
    offsets.note(100.0, WALL + 100.0)
    offsets.note(101.0, WALL + 3600 + 101.0)  # stepped on an hour
    new = WALL + 3600
    assert offsets.waited(101.5, WALL + 101.0, new, 0.18) == pytest.approx(0.5)
    later = 101.0 + MAX_LAG_S + 1
    offsets.note(later, new + later)
    # a stamp on the old clock now reads an hour old on the only clock left: capped
    assert offsets.waited(later + 0.5, WALL + later, new, 0.18) == MAX_LAG_S


def test_a_replay_stamp_ahead_of_its_clock_is_taken_as_it_is() -> None:
    """A replay sets its clock to a reading's first sample: the last sample's stamp is the
    batch's length ahead."""
    offsets = WallOffsets()
    offsets.note(100.0, WALL + 100.0)
    assert offsets.waited(100.0, WALL + 100.0 + 1.98, WALL, 1.98) == pytest.approx(-1.98)
