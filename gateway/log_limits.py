"""Log lines that repeat: the first of each kind is written, then at most one an hour with how
many were left out. A device or a platform that keeps sending what cannot be taken would
otherwise write a line per message to the journal on the SD card (which wears out)."""

from __future__ import annotations

from gateway.clock import Clock

EVERY_S = 3600.0
MAX_KINDS = 1000  # kinds remembered (a flood of distinct topics or reasons starts over)


class RepeatedLines:
    def __init__(self, clock: Clock, every_s: float = EVERY_S) -> None:
        self._clock = clock
        self._every_s = every_s
        self._logged: dict[object, tuple[float, int]] = {}  # kind -> (monotonic, left out since)

    def due(self, kind: object) -> str | None:
        """None if a line of this ``kind`` was written within the period (it is counted);
        otherwise what to add to the line ("" or how many were left out since the last)."""
        now = self._clock.monotonic()
        logged_at, left_out = self._logged.get(kind, (None, 0))
        if logged_at is not None and now - logged_at < self._every_s:
            self._logged[kind] = (logged_at, left_out + 1)
            return None
        if len(self._logged) >= MAX_KINDS:
            self._logged.clear()
        self._logged[kind] = (now, 0)
        return f" ({left_out} more like it since the last report)" if left_out else ""
