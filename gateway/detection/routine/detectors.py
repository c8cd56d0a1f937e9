"""All routine detectors of one home behind one Detector: one live picture, fed once per
reading, shared by every detector (so that one silence raises one alert, not two)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.clock import Clock
from gateway.detection.base import DeafPeriods, Home
from gateway.detection.routine.bed_exit import BedExitDetector, BedExitSettings
from gateway.detection.routine.inactivity import InactivityDetector, InactivitySettings
from gateway.detection.routine.learning import LearnedStore, MemoryLearnedStore
from gateway.detection.routine.localtime import EARLIEST_PLAUSIBLE_WALL
from gateway.detection.routine.long_bathroom import LongBathroomDetector, LongBathroomSettings
from gateway.detection.routine.night_exit import NightExitDetector, NightExitSettings
from gateway.detection.routine.not_up import NotUpDetector, NotUpSettings
from gateway.detection.routine.presence import DEFAULT_LEAVE_GRACE_S, Presence
from gateway.detection.routine.shell import RoutineDetector
from gateway.detection.routine.vitals import VitalsDetector, VitalsSettings
from gateway.errors import crash_site
from gateway.model import Alert, Device, Event, Reading

log = logging.getLogger(__name__)
PRESENCE_KEY = "presence"  # the live picture, for a restart (Presence.snapshot)


@dataclass(frozen=True)
class RoutineSettings:
    leave_grace_s: float = DEFAULT_LEAVE_GRACE_S
    inactivity: InactivitySettings = field(default_factory=InactivitySettings)
    not_up: NotUpSettings = field(default_factory=NotUpSettings)
    bed_exit_no_return: BedExitSettings = field(default_factory=BedExitSettings)
    night_exit: NightExitSettings = field(default_factory=NightExitSettings)
    long_bathroom: LongBathroomSettings = field(default_factory=LongBathroomSettings)
    vitals: VitalsSettings = field(default_factory=VitalsSettings)


class RoutineDetectors:
    name = "routine"

    def __init__(
        self,
        clock: Clock,
        home: Home,
        settings: RoutineSettings | None = None,
        store: LearnedStore | None = None,
        deaf: DeafPeriods | None = None,
    ) -> None:
        settings = settings or RoutineSettings()
        self._clock = clock
        self.store: LearnedStore = store if store is not None else MemoryLearnedStore()
        self.presence = Presence(clock, home, settings.leave_grace_s, deaf)
        self.detectors: list[RoutineDetector] = [
            InactivityDetector(clock, home, settings.inactivity, self.store, self.presence),
            NotUpDetector(clock, home, settings.not_up, self.store, self.presence),
            BedExitDetector(clock, home, settings.bed_exit_no_return, self.store, self.presence),
            NightExitDetector(clock, home, settings.night_exit, self.store, self.presence),
            LongBathroomDetector(clock, home, settings.long_bathroom, self.store, self.presence),
            VitalsDetector(clock, home, settings.vitals, self.store, self.presence),
        ]
        self.errors = 0
        self._picture_changed = False
        # Taken back once the wall clock is plausible (a Pi without a real-time clock boots in
        # 1970 and gets the time from NTP later); until then the saved picture is kept here.
        self._unrestored: object = self.store.get(PRESENCE_KEY)
        self._restore_when_plausible()
        self._saved_state = self._restart_state()

    def _restore_when_plausible(self) -> None:
        if self._unrestored is None or self._clock.wall() < EARLIEST_PLAUSIBLE_WALL:
            return
        restored = self.presence.restore(self._unrestored)
        self._unrestored = None
        if not restored:
            return
        log.info("live picture of %d residents taken back from before the restart", len(restored))
        for resident in restored:
            for detector in self.detectors:
                try:
                    detector.restored(resident)
                except Exception:
                    self.errors += 1
                    log.exception("routine detector %s failed", type(detector).__name__)

    def on_reading(self, reading: Reading, device: Device) -> list[Event]:
        events = self._from_each(lambda d: d.on_any_reading(reading, device))
        observation = self.presence.observe(reading, device)
        if observation is not None:
            events += self._from_each(lambda d: d.observe(observation))
            self._picture_changed = True
        return events

    def on_tick(self) -> list[Event]:
        self._restore_when_plausible()
        events = self._from_each(lambda d: d.on_tick())
        self._save_picture()
        # a silent home puts nothing: its last changes still reach disk within their period
        self.store.commit_due()
        return events

    def _save_picture(self) -> None:
        """Hand the picture for a restart to the store at a tick after it changed (at most a
        minute late). Last-sign times go to disk with the learned state (hourly); a change of
        home/away (an exit door, a sign inside after it), in-bed or an exit door's state is
        committed soon: a restart that took back "out" for a resident who has come home would
        watch nobody."""
        if self._clock.wall() < EARLIEST_PLAUSIBLE_WALL:
            return  # times in 1970 would only replace a picture still to be taken back
        state = self._restart_state()
        changed = state != self._saved_state
        if self._picture_changed or changed:
            self.store.put(PRESENCE_KEY, self.presence.snapshot(), soon=changed)
            self._picture_changed = False
            self._saved_state = state

    def _restart_state(self) -> tuple[dict[str, tuple[bool, bool | None]], dict[str, bool]]:
        # an exit not yet followed by a sign inside is what a restart takes back as "away"; an
        # exit door's state, since a restart that took back "open" for a door closed since
        # would not see it opened
        residents = {
            resident: (state.exit_mono is not None, state.in_bed)
            for resident, state in self.presence.residents.items()
            if state.last_sign_mono is not None
        }
        return residents, self.presence.exit_door_states()

    def _from_each(self, call: Callable[[RoutineDetector], list[Event]]) -> list[Event]:
        """One detector's failure must not keep the reading or the tick from the others (the
        pipeline guards this group as a whole)."""
        events: list[Event] = []
        for detector in self.detectors:
            try:
                events.extend(call(detector))
            except Exception as exc:  # by its site: the message may quote a reading
                self.errors += 1
                log.error(
                    "routine detector %s failed: %s", type(detector).__name__, crash_site(exc)
                )
        return events

    def away(self, resident: str) -> bool:
        """Whether the live picture has ``resident`` out: an exit door, and no sign inside
        since (also as taken back from before a restart)."""
        state = self.presence.residents.get(resident)
        return state is not None and state.away(
            self._clock.monotonic(), self.presence.leave_grace_s
        )

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (x.next_deadline() for x in self.detectors) if d is not None]
        return min(deadlines) if deadlines else None

    def resume(self, alert: Alert) -> bool:
        return any(detector.resume(alert) for detector in self.detectors)

    def close(self) -> None:
        self._restore_when_plausible()
        if self._clock.wall() >= EARLIEST_PLAUSIBLE_WALL:
            self.store.put(PRESENCE_KEY, self.presence.snapshot())
        self.store.close()


def build_routine_detector(
    clock: Clock,
    home: Home,
    settings: RoutineSettings | None = None,
    store: LearnedStore | None = None,
    deaf: DeafPeriods | None = None,
) -> RoutineDetectors:
    return RoutineDetectors(clock, home, settings, store, deaf)
