"""The ambient radio as evidence against the scanner: was it hearing the neighbourhood steadily?

On a real Pi the scanner hears advertisements from many devices nobody configured (the
neighbours' phones, TVs, trackers). When it had heard them steadily for the hour before a
silence began, a total silence afterwards is more likely a scanner that stopped delivering than
a neighbourhood that fell quiet at once. :class:`AmbientRadio` keeps just enough to answer that.

**The rule** (:meth:`AmbientRadio.steady_before`): the radio was steady before ``t`` when each
of the ``BUCKETS`` (12) whole ``BUCKET_S`` (5 min) buckets before the bucket holding ``t`` had
advertisements from at least ``ADDRESSES_PER_BUCKET`` (3) distinct addresses, configured or not.
Buckets are aligned on monotonic time, so the hour judged ends 0-5 min before ``t``: the
bucket in which the silence began may be cut short by it and is not judged. Three addresses in
*every* bucket, not a few addresses over the hour: one neighbour's phone rotates its random
address every ~15 min and so shows 4 or more addresses an hour while being one device, whose
owner walking out would be a total silence; and two sources may well leave together (the
resident goes out with their phone and the TV switches itself off), which must not climb to
an adapter reset and a ``gateway_degraded`` alert. Three at once in every 5 min takes three
sources present all hour, and a silence then takes all of them gone at the same moment.
Sporadic radio (a bucket with fewer addresses) is no evidence: the home may simply be quiet.

Cheap, as it runs for every advertisement: O(1) per advertisement (a bucket number and at most
``ADDRESSES_PER_BUCKET`` string comparisons), a fixed ring of ``BUCKETS + 1`` buckets each
holding at most ``ADDRESSES_PER_BUCKET`` address references (the strings the driver already
made). Addresses are kept only to tell them apart, never logged nor reported. Time is the
caller's monotonic time; pure state, no clock of its own.
"""

from __future__ import annotations

import math
from typing import Final

BUCKET_S: Final = 300.0
BUCKETS: Final = 12  # one hour
ADDRESSES_PER_BUCKET: Final = 3


class AmbientRadio:
    """Per 5-minute bucket, up to three distinct addresses heard; the last time anything was."""

    def __init__(
        self,
        *,
        bucket_s: float = BUCKET_S,
        buckets: int = BUCKETS,
        addresses_per_bucket: int = ADDRESSES_PER_BUCKET,
    ) -> None:
        if bucket_s <= 0 or buckets < 1 or addresses_per_bucket < 1:
            raise ValueError("bucket_s, buckets and addresses_per_bucket must be positive")
        self._bucket_s = bucket_s
        self._buckets = buckets
        self._need = addresses_per_bucket
        # the judged buckets and the one being filled: BUCKETS + 1 slots
        self._numbers: list[int | None] = [None] * (buckets + 1)  # bucket number in each slot
        self._addresses: list[list[str]] = [[] for _ in range(buckets + 1)]
        self.last_heard: float | None = None  # monotonic time of the last advertisement

    def _number(self, t: float) -> int:
        return math.floor(t / self._bucket_s)

    def heard(self, now: float, address: str) -> None:
        """An advertisement from ``address`` (any, configured or not) at monotonic ``now``."""
        self.last_heard = now
        number = self._number(now)
        slot = number % len(self._numbers)
        seen = self._addresses[slot]
        if self._numbers[slot] != number:
            self._numbers[slot] = number
            seen.clear()
        if len(seen) < self._need and address not in seen:
            seen.append(address)

    def steady_before(self, t: float) -> bool:
        """Whether each of the whole buckets of the hour before the bucket holding ``t`` had
        advertisements from enough distinct addresses (the module's rule). Meant for ``t`` the
        time of the last advertisement heard (or later): buckets older than the ring are
        forgotten and count as not steady."""
        current = self._number(t)
        for number in range(current - self._buckets, current):
            slot = number % len(self._numbers)
            if self._numbers[slot] != number or len(self._addresses[slot]) < self._need:
                return False
        return True

    def steady_before_last_heard(self) -> bool:
        """Whether the radio was steady in the hour before the last advertisement heard: the
        evidence for a silence going on now (False if nothing was ever heard)."""
        return self.last_heard is not None and self.steady_before(self.last_heard)


__all__ = ["ADDRESSES_PER_BUCKET", "BUCKETS", "BUCKET_S", "AmbientRadio"]
