"""The eldergate wristband GATT profile: encode and decode (pure).

The profile is documented, with byte layouts and worked examples, in ``docs/devices/wristband.md``.
The simulator (:mod:`simulators.ble.wristband`) encodes with these functions and the BLE driver
decodes with them, so the two cannot drift apart.

Characteristics of the wristband service (all little-endian):

* motion (notify): ``u8 version=1 | u8 range_g | u16 rate in 0.01 Hz | u32 counter of the first
  sample | u8 n | n x (i16 x, i16 y, i16 z)``; one count is ``range_g / 32768`` g.
* button (notify): ``u8 action (1 sos, 2 cancel) | u16 event id``.
* status (read, notify): ``u8 flags (bit 0 worn, bit 1 charging) | u8 battery % (255 unknown)``.

Every decoder returns a value or raises :class:`~drivers.decoders.DecodeError`; nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from drivers.decoders import DecodeError

SERVICE_UUID: Final = "e1de0001-5a8b-4c1e-9f00-6a7e5d0c0001"
MOTION_UUID: Final = "e1de0002-5a8b-4c1e-9f00-6a7e5d0c0001"
BUTTON_UUID: Final = "e1de0003-5a8b-4c1e-9f00-6a7e5d0c0001"
STATUS_UUID: Final = "e1de0004-5a8b-4c1e-9f00-6a7e5d0c0001"

MOTION_VERSION: Final = 1
MOTION_HEADER: Final = struct.Struct("<BBHIB")
MOTION_HEADER_BYTES: Final = MOTION_HEADER.size  # 9
SAMPLE_BYTES: Final = 6  # three int16
VALID_RANGES_G: Final = (2, 4, 8, 16)
COUNTER_MODULO: Final = 1 << 32
# Largest batch in one notification at the common negotiated ATT MTU of 247 (244-byte payload):
# (244 - 9) // 6 = 39. With the default MTU of 23 only one sample fits.
MAX_SAMPLES_PER_NOTIFICATION_MTU247: Final = (244 - MOTION_HEADER_BYTES) // SAMPLE_BYTES

BUTTON_FORMAT: Final = struct.Struct("<BH")
BUTTON_ACTIONS: Final = {1: "sos", 2: "cancel"}
BUTTON_CODES: Final = {name: code for code, name in BUTTON_ACTIONS.items()}

STATUS_FORMAT: Final = struct.Struct("<BB")
STATUS_WORN: Final = 0x01
STATUS_CHARGING: Final = 0x02
BATTERY_UNKNOWN: Final = 0xFF


@dataclass(frozen=True, slots=True)
class MotionBatch:
    """One motion notification: ``acc`` is an (n, 3) float array in g."""

    counter: int  # sample counter of the first sample (wraps at 2**32)
    fs: float  # sampling rate in Hz, as announced by the band
    range_g: int
    acc: np.ndarray

    @property
    def n(self) -> int:
        return int(self.acc.shape[0])


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    action: str  # "sos" | "cancel"
    event_id: int  # u16, increments per press; a re-sent event keeps its id


@dataclass(frozen=True, slots=True)
class Status:
    worn: bool
    charging: bool
    battery: int | None  # percent, None when the band does not know


def encode_motion(counter: int, fs: float, acc_g: Any, range_g: int = 8) -> bytes:
    """Encode samples (an (n, 3) array-like in g) as one motion notification. Values beyond
    the range clip, as a real accelerometer does."""
    if range_g not in VALID_RANGES_G:
        raise ValueError(f"range_g must be one of {VALID_RANGES_G}")
    samples = np.asarray(acc_g, dtype=np.float64).reshape(-1, 3)
    if samples.shape[0] > 255:
        raise ValueError("at most 255 samples per notification")
    rate_centi_hz = round(fs * 100)
    if not 0 < rate_centi_hz <= 0xFFFF:
        raise ValueError("fs must be within (0, 655.35] Hz")
    counts = np.clip(np.rint(samples * (32768.0 / range_g)), -32768, 32767).astype("<i2")
    header = MOTION_HEADER.pack(
        MOTION_VERSION, range_g, rate_centi_hz, counter % COUNTER_MODULO, samples.shape[0]
    )
    return header + counts.tobytes()


def decode_motion(value: bytes) -> MotionBatch:
    if len(value) < MOTION_HEADER_BYTES:
        raise DecodeError(f"motion: {len(value)} bytes, the header alone is 9")
    version, range_g, rate_centi_hz, counter, n = MOTION_HEADER.unpack_from(value)
    if version != MOTION_VERSION:
        raise DecodeError(f"motion: unknown format version {version}")
    if range_g not in VALID_RANGES_G:
        raise DecodeError(f"motion: invalid range {range_g} g")
    if rate_centi_hz == 0:
        raise DecodeError("motion: sampling rate 0")
    expected = MOTION_HEADER_BYTES + n * SAMPLE_BYTES
    if len(value) != expected:
        raise DecodeError(f"motion: {n} samples need {expected} bytes, got {len(value)}")
    counts = np.frombuffer(value, dtype="<i2", offset=MOTION_HEADER_BYTES).reshape(n, 3)
    acc = counts.astype(np.float64) * (range_g / 32768.0)
    return MotionBatch(counter=counter, fs=rate_centi_hz / 100.0, range_g=range_g, acc=acc)


def encode_button(action: str, event_id: int) -> bytes:
    return BUTTON_FORMAT.pack(BUTTON_CODES[action], event_id & 0xFFFF)


def decode_button(value: bytes) -> ButtonEvent:
    if len(value) != BUTTON_FORMAT.size:
        raise DecodeError(f"button: expected 3 bytes, got {len(value)}")
    code, event_id = BUTTON_FORMAT.unpack(value)
    action = BUTTON_ACTIONS.get(code)
    if action is None:
        raise DecodeError(f"button: unknown action code {code}")
    return ButtonEvent(action=action, event_id=event_id)


def encode_status(worn: bool, battery: int | None, charging: bool = False) -> bytes:
    flags = (STATUS_WORN if worn else 0) | (STATUS_CHARGING if charging else 0)
    if battery is not None and not 0 <= battery <= 100:
        raise ValueError("battery must be 0..100 or None")
    return STATUS_FORMAT.pack(flags, BATTERY_UNKNOWN if battery is None else battery)


def decode_status(value: bytes) -> Status:
    if len(value) != STATUS_FORMAT.size:
        raise DecodeError(f"status: expected 2 bytes, got {len(value)}")
    flags, battery = STATUS_FORMAT.unpack(value)
    if flags & ~(STATUS_WORN | STATUS_CHARGING):
        raise DecodeError(f"status: reserved flag bits set (0x{flags:02x})")
    if battery != BATTERY_UNKNOWN and battery > 100:
        raise DecodeError(f"status: battery {battery} % out of range")
    return Status(
        worn=bool(flags & STATUS_WORN),
        charging=bool(flags & STATUS_CHARGING),
        battery=None if battery == BATTERY_UNKNOWN else battery,
    )


class SampleCounterTracker:
    """Counts samples lost between motion notifications (pure state, one per band).

    ``gap`` is how many samples the counter says are missing before this batch: 0 normally, >0
    after lost notifications or a reconnection. A counter that goes backwards by more than half
    the counter space is a wrap; any other backward step means the band restarted (gap 0, the
    stream starts over) and is counted in ``restarts``. A repeated batch (same counter seen just
    before) is reported as a duplicate so the caller can drop it.
    """

    __slots__ = ("_next", "duplicates", "gaps", "restarts", "samples_missed")

    def __init__(self) -> None:
        self._next: int | None = None
        self.gaps = 0
        self.samples_missed = 0
        self.restarts = 0
        self.duplicates = 0

    def update(self, counter: int, n: int) -> int | None:
        """Returns the gap in samples before this batch, or None for a duplicate batch."""
        expected = self._next
        self._next = (counter + n) % COUNTER_MODULO
        if expected is None:
            return 0
        ahead = (counter - expected) % COUNTER_MODULO
        if ahead == 0:
            return 0
        if ahead < COUNTER_MODULO // 2:
            self.gaps += 1
            self.samples_missed += ahead
            return ahead
        behind = COUNTER_MODULO - ahead
        if behind <= n and (counter + n) % COUNTER_MODULO == expected:
            # the very batch we just had, sent again after a retransmission
            self.duplicates += 1
            return None
        self.restarts += 1
        return 0


def motion_values(batch: MotionBatch, gap: int) -> dict[str, Any]:
    """The reading values (contract 2/3) of one motion batch."""
    return {"acc": batch.acc, "fs": batch.fs, "seq": batch.counter, "gap": gap}


__all__ = [
    "BUTTON_UUID",
    "MOTION_UUID",
    "SERVICE_UUID",
    "STATUS_UUID",
    "ButtonEvent",
    "MotionBatch",
    "SampleCounterTracker",
    "Status",
    "decode_button",
    "decode_motion",
    "decode_status",
    "encode_button",
    "encode_motion",
    "encode_status",
    "motion_values",
]
