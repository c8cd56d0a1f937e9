"""The live picture of each resident: last sign of life, probable room, home or away, in bed.

Every routine detector reads this picture. A *sign of life* is anything only a living person
inside the home causes: a motion sensor firing, an inner door or the fridge opened or closed (a
door's state counts only when it changes: Zigbee2MQTT re-sends it with every check-in), getting
into or out of bed, a wristband moving, a button press. Heart rate alone is not one (a person who
collapsed in bed still has a pulse), nor is a battery report.

Home or away: an exit door opening followed by no sign of life inside means away until the next
sign inside. The hallway and entrance sensors fire as a person walks out, so for
``leave_grace_s`` after the door only signs from other rooms prove the person stayed in.

Times: each sign is placed on the monotonic clock (``clock.monotonic()`` less how long ago the
reading says it happened, capped), so quiet durations survive wall-clock jumps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gateway.clock import Clock
from gateway.detection.base import DeafPeriods, Home
from gateway.detection.routine.localtime import EARLIEST_PLAUSIBLE_WALL
from gateway.model import Device, DeviceKind, Reading, Room

DEFAULT_LEAVE_GRACE_S = 120.0
MAX_READING_LAG_S = 600.0  # a reading older than this is placed at "now" (wall clock unreliable)
WRIST_MOVING_STD_G = 0.03  # std of |acc| above this is movement, below it a band on a table
NEAR_DOOR_ROOMS = frozenset({Room.ENTRANCE, Room.HALLWAY})
UP_ROOMS = frozenset({Room.KITCHEN, Room.LOUNGE, Room.OTHER, Room.ENTRANCE})
# Out of bed this long, a sign of life anywhere (a wristband's too) is being up: longer than a
# night-time trip to the bathroom, and the only way to tell "up" where no sensor watches a room
# outside the bedroom and bathroom.
UP_AFTER_BED_S = 20 * 60.0
# A picture saved longer ago than this (the gateway was off, or the clock is off) is not taken
# back after a restart: the person may have left or come back unseen meanwhile.
RESTORE_MAX_AGE_S = 12 * 3600.0
# A Pi without a real-time clock boots on the time last saved to disk (fake-hwclock saves it
# hourly): a picture up to this much in its "future" is taken back, its times moved to now.
RESTORE_CLOCK_BEHIND_S = 3600.0

INSIDE = "inside"
EXIT = "exit"


@dataclass(frozen=True, slots=True)
class Sign:
    kind: str  # INSIDE or EXIT
    room: Room | None  # None: a sign that says nothing about the room (a wristband)
    bed: bool | None = None  # True: got into bed; False: got out; None: no bed change


def classify(reading: Reading, device: Device) -> Sign | None:
    """What a reading says about the person's presence, or None when it says nothing."""
    values = reading.values
    kind = device.kind
    if kind is DeviceKind.MOTION:
        return Sign(INSIDE, device.room) if values.get("motion") is True else None
    if kind is DeviceKind.DOOR:
        if not isinstance(values.get("open"), bool):
            return None
        if device.is_exit:
            return Sign(EXIT, device.room) if values["open"] else None
        return Sign(INSIDE, device.room)
    if kind is DeviceKind.BED:
        occupied = values.get("occupied")
        if isinstance(occupied, bool):
            return Sign(INSIDE, Room.BEDROOM, bed=occupied)
        movement = values.get("movement")
        if isinstance(movement, (int, float)) and not isinstance(movement, bool) and movement > 0:
            return Sign(INSIDE, Room.BEDROOM)
        return None
    if kind is DeviceKind.BUTTON:
        return Sign(INSIDE, device.room) if values.get("action") else None
    if kind is DeviceKind.WRISTBAND:
        if values.get("worn") is False:
            return None
        return Sign(INSIDE, None) if _wrist_moving(values.get("acc")) else None
    return None


def _bed_moving(reading: Reading) -> bool:
    movement = reading.values.get("movement")
    return isinstance(movement, (int, float)) and not isinstance(movement, bool) and movement > 0


def _wrist_moving(acc: object) -> bool:
    if acc is None:
        return False
    try:
        samples = np.asarray(acc, dtype=float)
    except (TypeError, ValueError):
        return False
    if samples.ndim != 2 or samples.shape[1] != 3 or samples.shape[0] < 2:
        return False
    magnitude = np.sqrt(np.einsum("ij,ij->i", samples, samples))
    spread = float(np.std(magnitude))
    return math.isfinite(spread) and spread > WRIST_MOVING_STD_G


@dataclass(slots=True)
class Quiet:
    """A quiet period that a sign of life just ended."""

    start_mono: float
    start_wall: float
    duration_s: float
    room: Room | None
    away: bool
    in_bed: bool | None
    deaf: bool = False  # the gateway could not hear the home during some of it: do not learn it


@dataclass(slots=True)
class Observation:
    """One sign of life, with what it ended."""

    resident: str
    sign: Sign
    t: float
    mono: float
    wall: float  # wall time of the sign on the gateway's clock
    ended: Quiet | None  # the quiet period before this sign (None for the first sign)
    returned: bool  # this sign proved the person is inside after an exit door
    up: bool  # a sign of being up and about (outside bedroom and bathroom)
    device: Device
    # The bed sensor's first report since the gateway started, with no movement: it says
    # whether the bed is occupied, not that the person just moved (it would be filtered as a
    # repeat if the gateway had been running), so it clears no alert of a previous run.
    bed_state_only: bool = False
    # A hallway or entrance sign within the leave grace of an exit door that opened while the
    # person was away: inside only because the door let them in (no further sign yet).
    let_in: bool = False


class ResidentPresence:
    def __init__(
        self,
        resident: str,
        up_rooms: frozenset[Room],
        seen_in_rooms: bool = True,
        can_tell_up: bool = True,
    ) -> None:
        self.resident = resident
        self.up_rooms = up_rooms
        self.first_sign_mono: float | None = None
        self.last_sign_mono: float | None = None
        self.last_sign_wall: float | None = None
        self.room: Room | None = None
        self.room_since_mono: float | None = None
        self.exit_mono: float | None = None  # last exit door opening not yet followed by inside
        self.exit_device: str | None = None
        # The exit door opened while the person was away: it let them in, so any sign with a
        # room after it, the hallway's too, is them inside (a fall on coming home lies there).
        self.entering = False
        self.in_bed: bool | None = None  # from a bed sensor; None when there is none
        self.bed_since_mono: float | None = None
        self.last_up_mono: float | None = None
        # The last_sign_mono for which a silence alert (inactivity or not_up) is open, so that one
        # silence raises one alert even though two detectors watch it.
        self.silence_alerted_for: float | None = None
        # Taken back from before a restart: the quiet "since" the restart is part of a longer
        # one nobody heard all of (not learned), and the morning was watched before it.
        self.restored_at_mono: float | None = None
        # Whether anything in the home can place the person in a room (a motion sensor, an
        # inner door, a bed): where nothing can, a wristband is the only sign of being back.
        self.seen_in_rooms = seen_in_rooms
        # Whether any sign can say the person is up (a sensor in an up room, an exit door, a
        # bed sensor): where none can, a morning check would alarm on every ordinary day.
        self.can_tell_up = can_tell_up

    def away(self, now_mono: float, leave_grace_s: float = DEFAULT_LEAVE_GRACE_S) -> bool:
        return self.exit_mono is not None and now_mono - self.exit_mono >= leave_grace_s

    def quiet_s(self, now_mono: float) -> float | None:
        if self.last_sign_mono is None:
            return None
        return max(0.0, now_mono - self.last_sign_mono)

    def silence_alerted(self) -> bool:
        return self.last_sign_mono is not None and self.silence_alerted_for == self.last_sign_mono

    def mark_silence_alerted(self) -> None:
        self.silence_alerted_for = self.last_sign_mono


class Presence:
    """The picture for every resident of one home; fed every reading once."""

    def __init__(
        self,
        clock: Clock,
        home: Home,
        leave_grace_s: float = DEFAULT_LEAVE_GRACE_S,
        deaf: DeafPeriods | None = None,
    ) -> None:
        self._clock = clock
        self._home = home
        self.leave_grace_s = leave_grace_s
        self.deaf = deaf or DeafPeriods()
        self.residents: dict[str, ResidentPresence] = {}
        self._door_open: dict[str, bool] = {}  # configured door -> its last reported state
        self._alerted_before_restore: set[str] = set()  # see mark_silence_alerted

    def snapshot(self) -> dict[str, dict[str, object]]:
        """What a restart needs of the picture, in wall time (kept with the learned state)."""
        now_mono, now_wall = self._clock.monotonic(), self._clock.wall()

        def wall(mono: float | None) -> float | None:
            return None if mono is None else now_wall - (now_mono - mono)

        return {
            resident: {
                "last_sign": wall(state.last_sign_mono),
                "first_sign": wall(state.first_sign_mono),
                "last_up": wall(state.last_up_mono),
                "exit": wall(state.exit_mono),
                "exit_device": state.exit_device,
                "entering": state.entering,
                "room": state.room.value if state.room is not None else None,
                "in_bed": state.in_bed,
                "doors": {
                    door: is_open
                    for door, is_open in self._door_open.items()
                    if door in self._home.devices and self._home.devices[door].resident == resident
                },
            }
            for resident, state in self.residents.items()
            if state.last_sign_mono is not None
        }

    def restore(self, snapshot: object) -> list[str]:
        """Take back the picture of before a restart (see :meth:`snapshot`): a resident home
        and silent then is watched from now on as silent since now (a collapse before the
        restart is found, later by the downtime, never earlier than it should be); one who had
        left stays away. A resident already seen in this run keeps this run's picture. Returns
        the residents taken back (none while the wall clock is not plausible)."""
        now_mono, now_wall = self._clock.monotonic(), self._clock.wall()
        if not isinstance(snapshot, dict) or now_wall < EARLIEST_PLAUSIBLE_WALL:
            return []
        restored = []
        for resident, saved in snapshot.items():
            try:
                last_sign = float(saved["last_sign"])
                room = Room(saved["room"]) if saved.get("room") is not None else None
            except (KeyError, TypeError, ValueError):
                continue
            seen = self.residents.get(resident)
            if (
                resident not in self._home.residents
                or (seen is not None and seen.last_sign_mono is not None)
                or not -RESTORE_CLOCK_BEHIND_S <= now_wall - last_sign <= RESTORE_MAX_AGE_S
            ):
                continue

            state = self.resident(resident)
            state.first_sign_mono = _mono_of(saved.get("first_sign"), now_mono, now_wall)
            state.last_up_mono = _mono_of(saved.get("last_up"), now_mono, now_wall)
            state.exit_mono = _mono_of(saved.get("exit"), now_mono, now_wall)
            exit_device = saved.get("exit_device")
            state.exit_device = exit_device if isinstance(exit_device, str) else None
            # the door let them in (a restart between it and the hallway sign)
            state.entering = state.exit_mono is not None and saved.get("entering") is True
            state.room, state.room_since_mono = room, now_mono
            in_bed = saved.get("in_bed")
            state.in_bed = in_bed if isinstance(in_bed, bool) else None
            state.last_sign_mono, state.last_sign_wall = now_mono, now_wall
            state.restored_at_mono = now_mono
            self._restore_doors(resident, saved.get("doors"))
            if resident in self._alerted_before_restore:
                state.mark_silence_alerted()
            restored.append(resident)
        self._alerted_before_restore.clear()
        return restored

    def exit_door_states(self) -> dict[str, bool]:
        """The last state heard of each exit door: open or not."""
        devices = self._home.devices
        return {
            door: is_open
            for door, is_open in self._door_open.items()
            if door in devices and devices[door].is_exit
        }

    def _restore_doors(self, resident: str, saved: object) -> None:
        """The doors' states of before the restart: Zigbee2MQTT re-sends a door's cached state
        with its next check-in, and a front door propped open (or a contact whose magnet
        slipped) would otherwise be a new exit at every restart, a critical night exit for a
        resident at risk of wandering. A state heard already in this run stays."""
        if not isinstance(saved, dict):
            return
        for door, is_open in saved.items():
            device = self._home.devices.get(door)
            if (
                device is not None
                and device.kind is DeviceKind.DOOR
                and device.resident == resident
                and isinstance(is_open, bool)
            ):
                self._door_open.setdefault(door, is_open)

    def deaf_during(self, start_mono: float, end_mono: float) -> bool:
        """Whether the gateway could not hear the home at some time in this span."""
        return self.deaf.overlaps(start_mono, end_mono)

    def mark_silence_alerted(self, resident: str) -> None:
        """A silence alert of a previous run is open for ``resident``: the silence taken back
        with the picture is the one it was raised for (one silence, one alert)."""
        state = self.residents.get(resident)
        if state is not None and state.last_sign_mono is not None:
            state.mark_silence_alerted()
        else:  # the picture is not taken back yet (a clock not set at boot): mark it then
            self._alerted_before_restore.add(resident)

    def _door_state_repeated(self, reading: Reading, device: Device) -> bool:
        """A door's state that says nothing new: Zigbee2MQTT re-sends a contact's cached state
        with every check-in and battery report, so an untouched fridge door would otherwise
        be a sign of life every hour, and a front door left open a new exit each time. The
        first state heard from a door counts only if open (a door heard closed may have been
        closed for days); after a restart the states of before it are taken back with the
        picture (:meth:`_restore_doors`)."""
        is_open = reading.values.get("open")
        if device.kind is not DeviceKind.DOOR or not isinstance(is_open, bool):
            return False
        previous = self._door_open.get(device.id)
        self._door_open[device.id] = is_open
        return is_open == previous or (previous is None and not is_open)

    def resident(self, resident: str) -> ResidentPresence:
        found = self.residents.get(resident)
        if found is None:
            up_rooms = _up_rooms(self._home, resident)
            found = ResidentPresence(
                resident,
                up_rooms,
                _has_room_sensors(self._home, resident),
                _can_tell_up(self._home, resident, up_rooms),
            )
            self.residents[resident] = found
        return found

    def observe(self, reading: Reading, device: Device) -> Observation | None:
        repeated = self._door_state_repeated(reading, device)  # tracks exit-door closings too
        sign = classify(reading, device)
        if sign is None or repeated:
            return None
        state = self.resident(device.resident)
        bed_state_only = sign.bed is not None and state.in_bed is None and not _bed_moving(reading)
        if sign.bed is not None and sign.bed == state.in_bed and not _bed_moving(reading):
            # Bed sensors report about once a second: the same occupancy again, with no
            # movement, is no new sign of life (a person collapsed in bed still "occupies" it).
            return None
        now_mono = self._clock.monotonic()
        now_wall = self._clock.wall()
        lag = now_wall - reading.t
        lag = lag if 0.0 <= lag <= MAX_READING_LAG_S else 0.0
        mono = now_mono - lag
        if state.last_sign_mono is not None:
            mono = max(mono, state.last_sign_mono)  # out-of-order readings never go back
        wall = now_wall - (now_mono - mono)

        ended = None
        if state.last_sign_mono is not None and state.last_sign_wall is not None:
            ended = Quiet(
                start_mono=state.last_sign_mono,
                start_wall=now_wall - (now_mono - state.last_sign_mono),
                duration_s=mono - state.last_sign_mono,
                room=state.room,
                away=state.away(mono, self.leave_grace_s),
                in_bed=state.in_bed,
                deaf=self.deaf_during(state.last_sign_mono, mono)
                or state.last_sign_mono == state.restored_at_mono,
            )
        returned = False
        let_in = False
        if sign.kind == EXIT:
            if state.exit_mono is None:
                state.entering = False
            elif mono - state.exit_mono >= self.leave_grace_s:
                state.entering = True  # away until now: the door lets them in
            state.exit_mono = mono
            state.exit_device = device.id
        elif state.exit_mono is not None and (
            (sign.room is not None and (sign.room not in NEAR_DOOR_ROOMS or state.entering))
            # a wristband has no room: still heard on the doorstep or the garden path, it
            # proves nothing where a room sensor could say so, and elsewhere only after the
            # grace or once the door has let the person in
            or (
                (sign.room is not None or not state.seen_in_rooms)
                and (state.entering or mono - state.exit_mono > self.leave_grace_s)
            )
        ):
            returned = state.entering or mono - state.exit_mono > self.leave_grace_s
            let_in = (
                state.entering
                and sign.room in NEAR_DOOR_ROOMS
                and mono - state.exit_mono <= self.leave_grace_s
            )
            state.entering = False
            state.exit_mono = None
            state.exit_device = None

        if sign.room is not None and sign.room != state.room:
            state.room = sign.room
            state.room_since_mono = mono
        if sign.bed is not None:
            state.in_bed = sign.bed
            state.bed_since_mono = mono
        if state.first_sign_mono is None:
            state.first_sign_mono = mono
        state.last_sign_mono = mono
        state.last_sign_wall = wall
        up = (
            sign.kind == EXIT
            or (sign.room is not None and sign.room in state.up_rooms)
            or (
                state.in_bed is False
                and state.bed_since_mono is not None
                and mono - state.bed_since_mono >= UP_AFTER_BED_S
            )
        )
        if up:
            state.last_up_mono = mono
        return Observation(
            resident=device.resident,
            sign=sign,
            t=reading.t,
            mono=mono,
            wall=wall,
            ended=ended,
            returned=returned,
            up=up,
            device=device,
            bed_state_only=bed_state_only,
            let_in=let_in,
        )


def _wall_of(value: object, now_wall: float) -> float | None:
    """A saved wall time, never after ``now_wall`` (a boot clock a little behind)."""
    ok = isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value)
    return min(float(value), now_wall) if ok else None  # type: ignore[arg-type]


def _mono_of(wall: object, now_mono: float, now_wall: float) -> float | None:
    known = _wall_of(wall, now_wall)
    return None if known is None else now_mono - (now_wall - known)


def _has_room_sensors(home: Home, resident: str) -> bool:
    return any(
        d.kind in (DeviceKind.MOTION, DeviceKind.BED)
        or (d.kind is DeviceKind.DOOR and not d.is_exit)
        for d in home.devices_of(resident)
    )


def _can_tell_up(home: Home, resident: str, up_rooms: frozenset[Room]) -> bool:
    return any(
        d.kind is DeviceKind.BED
        or (d.kind is DeviceKind.DOOR and d.is_exit)
        or (d.kind in _ROOM_KINDS and d.room in up_rooms)
        for d in home.devices_of(resident)
    )


def _up_rooms(home: Home, resident: str) -> frozenset[Room]:
    """Rooms whose signs mean "up and about". A home with no kitchen, lounge or other room
    sensor counts the hallway too."""
    rooms = {d.room for d in home.devices_of(resident) if d.kind in _ROOM_KINDS}
    if rooms & {Room.KITCHEN, Room.LOUNGE, Room.OTHER}:
        return UP_ROOMS
    return UP_ROOMS | {Room.HALLWAY}


_ROOM_KINDS = frozenset({DeviceKind.MOTION, DeviceKind.DOOR})
