"""GATT profiles: which characteristics the driver reads and subscribes to on each kind of
connected device, and how each value becomes reading values.

* ``wristband``: the eldergate wristband profile (:mod:`drivers.decoders.wristband`).
* ``heart_rate``: a standard Heart Rate sensor, 0x180D/0x2A37, with Battery 0x180F/0x2A19
  (decoded by :mod:`drivers.decoders.gatt`).
* ``bed``: the eldergate bed sensor profile below (``docs/devices/bed_gatt.md``).

A profile object lives as long as the driver (not one connection), so that sample counters and
button event ids carry across reconnections: samples lost while the band was away show up as a
``gap``, and a press the band re-sends after reconnecting is not a second press.

Button event ids are a RAM counter on the band: a band that rebooted (charged, battery swapped,
brown-out) counts from 1 again, so an id equal to the last one is not proof of a repeat. A
press is dropped as a re-send only when it has the last press's id *and* action, the band's
sample counter has not shown a restart since, and, for an SOS, it arrives within
``PRESS_RESEND_WINDOW_S`` of it. When in doubt an SOS goes through: a re-send that slips through
joins the alert the first press opened if it comes within the alert manager's repeat window
(60 s), else it raises a second SOS (a staff call too many), while a dropped SOS would be
lost. A cancel is dropped however late: one re-sent after a fall must not withdraw it, while a
cancel dropped by mistake costs a staff visit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from drivers.decoders import DecodeError
from drivers.decoders import wristband as wb
from gateway.clock import Clock, SystemClock

# A band re-sends its last press when it reconnects unsure the gateway got it. Reconnecting
# takes at most the driver's 60 s backoff cap plus hearing the band and connecting (seconds);
# twice the cap covers it. An SOS repeated later than this is taken as a new press (see above).
PRESS_RESEND_WINDOW_S: Final = 120.0
# A band streams its accelerometer (a batch every second or so at 50 Hz) and its status (the
# simulated bands: every minute, and little else): a link that notified nothing for this long
# is dead however connected it looks (bluetoothd restarted or crashed under it), and the
# driver reconnects. Profiles without a steady stream have None.
BAND_SILENCE_TIMEOUT_S: Final = 150.0

# --- the bed sensor GATT profile (pure codec) ---

BED_SERVICE_UUID: Final = "e1de0101-5a8b-4c1e-9f00-6a7e5d0c0001"
BED_VITALS_UUID: Final = "e1de0102-5a8b-4c1e-9f00-6a7e5d0c0001"
BED_FORMAT: Final = struct.Struct("<BBHB")
BED_OCCUPIED: Final = 0x01
BED_HR_VALID: Final = 0x02
BED_RR_VALID: Final = 0x04
BED_FLAGS: Final = BED_OCCUPIED | BED_HR_VALID | BED_RR_VALID

HEART_RATE_SERVICE_UUID: Final = "0000180d-0000-1000-8000-00805f9b34fb"
HEART_RATE_MEASUREMENT_UUID: Final = "00002a37-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID: Final = "00002a19-0000-1000-8000-00805f9b34fb"


def encode_bed(occupied: bool, hr: float | None, rr: float | None, movement: int) -> bytes:
    """``u8 flags | u8 hr bpm | u16 rr in 0.01 breaths/min | u8 movement 0..100``."""
    flags = BED_OCCUPIED if occupied else 0
    if hr is not None:
        flags |= BED_HR_VALID
    if rr is not None:
        flags |= BED_RR_VALID
    hr_byte = 0 if hr is None else max(0, min(255, round(hr)))
    rr_centi = 0 if rr is None else max(0, min(0xFFFF, round(rr * 100)))
    return BED_FORMAT.pack(flags, hr_byte, rr_centi, max(0, min(100, movement)))


def decode_bed(value: bytes) -> dict[str, Any]:
    if len(value) != BED_FORMAT.size:
        raise DecodeError(f"bed: expected {BED_FORMAT.size} bytes, got {len(value)}")
    flags, hr, rr_centi, movement = BED_FORMAT.unpack(value)
    if flags & ~BED_FLAGS:
        raise DecodeError(f"bed: reserved flag bits set (0x{flags:02x})")
    if movement > 100:
        raise DecodeError(f"bed: movement {movement} out of 0..100")
    out: dict[str, Any] = {"occupied": bool(flags & BED_OCCUPIED), "movement": movement}
    if flags & BED_HR_VALID:
        out["hr"] = hr
    if flags & BED_RR_VALID:
        out["rr"] = rr_centi / 100.0
    return out


# --- profiles used by the driver ---

ValueHandler = Callable[[bytes], "dict[str, Any] | None"]


@dataclass(frozen=True, slots=True)
class CharacteristicUse:
    uuid: str
    handle: ValueHandler  # bytes -> reading values, None to drop; raises DecodeError
    notify: bool = True
    read_on_connect: bool = False
    required: bool = True  # a device without it is misconfigured (counted, retried later)


@dataclass(frozen=True, slots=True)
class _Press:
    event_id: int
    action: str
    at: float  # monotonic
    band_restarts: int  # the sample tracker's restart count when it arrived


class WristbandProfile:
    name = "wristband"
    silence_timeout_s: float | None = BAND_SILENCE_TIMEOUT_S

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self.tracker = wb.SampleCounterTracker()
        self._last_press: _Press | None = None
        self.duplicate_presses = 0

    def characteristics(self) -> list[CharacteristicUse]:
        return [
            CharacteristicUse(wb.STATUS_UUID, self.on_status, read_on_connect=True),
            CharacteristicUse(wb.BUTTON_UUID, self.on_button),
            CharacteristicUse(wb.MOTION_UUID, self.on_motion),
        ]

    def on_motion(self, value: bytes) -> dict[str, Any] | None:
        batch = wb.decode_motion(value)
        if batch.n == 0:
            return None
        gap = self.tracker.update(batch.counter, batch.n)
        if gap is None:
            return None
        return wb.motion_values(batch, gap)

    def on_button(self, value: bytes) -> dict[str, Any] | None:
        event = wb.decode_button(value)
        now = self._clock.monotonic()
        last = self._last_press
        # A cancel the band re-sends on reconnecting, however late, must not withdraw a fall
        # that came since (a cancel lost by mistake costs a staff visit); an SOS re-sent late
        # raises again at worst, while an SOS dropped by mistake could be a life.
        window = PRESS_RESEND_WINDOW_S if event.action == "sos" else math.inf
        if (
            last is not None
            and (last.event_id, last.action) == (event.event_id, event.action)
            and now - last.at <= window
            and last.band_restarts == self.tracker.restarts
        ):
            self.duplicate_presses += 1
            return None
        # the window runs from the press itself, so repeats cannot stretch it
        self._last_press = _Press(event.event_id, event.action, now, self.tracker.restarts)
        return {"action": event.action}

    def on_status(self, value: bytes) -> dict[str, Any] | None:
        status = wb.decode_status(value)
        out: dict[str, Any] = {"worn": status.worn}
        if status.battery is not None:
            out["battery"] = status.battery
        return out

    def diagnostics(self) -> dict[str, Any]:
        tracker = self.tracker
        return {
            "gaps": tracker.gaps,
            "samples_missed": tracker.samples_missed,
            "band_restarts": tracker.restarts,
            "duplicate_batches": tracker.duplicates,
            "duplicate_presses": self.duplicate_presses,
        }


class HeartRateProfile:
    name = "heart_rate"
    silence_timeout_s: float | None = None  # many sensors stop notifying when not worn

    def characteristics(self) -> list[CharacteristicUse]:
        return [
            CharacteristicUse(
                BATTERY_LEVEL_UUID,
                self.on_battery,
                notify=False,
                read_on_connect=True,
                required=False,
            ),
            CharacteristicUse(HEART_RATE_MEASUREMENT_UUID, self.on_heart_rate),
        ]

    @staticmethod
    def on_heart_rate(value: bytes) -> dict[str, Any] | None:
        from drivers.decoders.gatt import decode_gatt

        fields = decode_gatt("2a37", value)
        fields.pop("energy_kj", None)
        return fields

    @staticmethod
    def on_battery(value: bytes) -> dict[str, Any] | None:
        from drivers.decoders.gatt import decode_gatt

        return decode_gatt("2a19", value)

    def diagnostics(self) -> dict[str, Any]:
        return {}


class BedProfile:
    name = "bed"
    silence_timeout_s: float | None = None

    def characteristics(self) -> list[CharacteristicUse]:
        return [CharacteristicUse(BED_VITALS_UUID, decode_bed)]

    def diagnostics(self) -> dict[str, Any]:
        return {}


GattProfile = WristbandProfile | HeartRateProfile | BedProfile
# name -> factory taking the driver's clock
PROFILES: Final[dict[str, Callable[[Clock], GattProfile]]] = {
    "wristband": WristbandProfile,
    "heart_rate": lambda _clock: HeartRateProfile(),
    "bed": lambda _clock: BedProfile(),
}


__all__ = [
    "BAND_SILENCE_TIMEOUT_S",
    "BED_SERVICE_UUID",
    "BED_VITALS_UUID",
    "PRESS_RESEND_WINDOW_S",
    "PROFILES",
    "BedProfile",
    "CharacteristicUse",
    "GattProfile",
    "HeartRateProfile",
    "WristbandProfile",
    "decode_bed",
    "encode_bed",
]
