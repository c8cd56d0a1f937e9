"""Abstract readings → the real bytes devices send, for simulators and tests.

The inverse of the decoders: what a Zigbee2MQTT bridge publishes for a door contact, a PIR or
an SOS button; what a bed speaking the eldergate bed profile publishes; what a BTHome sensor
advertises; what a heart-rate strap notifies. Round-trip tests hold both directions together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from drivers.decoders.bthome import encrypt_payload

# contract-3 action -> the Zigbee2MQTT action an SOS-capable button publishes.
Z2M_ACTIONS = {
    "press": "single",
    "double": "double",
    "triple": "triple",
    "long": "long",
    "hold": "hold",
    "release": "release",
    "sos": "emergency",
}


def z2m_state_payload(values: Mapping[str, Any], *, linkquality: int | None = 120,
                      battery_as_string: bool = False) -> dict[str, Any]:
    """The JSON object Zigbee2MQTT publishes on ``<base>/<friendly name>``."""
    out: dict[str, Any] = {}
    if "open" in values:
        out["contact"] = not bool(values["open"])  # true = closed
    if "motion" in values:
        out["occupancy"] = bool(values["motion"])
    for key in ("water_leak", "smoke", "gas", "tamper", "battery_low"):
        if key in values:
            out[key] = bool(values[key])
    if "battery" in values and values["battery"] is not None:
        battery = values["battery"]
        out["battery"] = str(battery) if battery_as_string else battery
        out.setdefault("voltage", int(2500 + 7 * float(battery)))
    if values.get("action"):
        out["action"] = Z2M_ACTIONS.get(str(values["action"]), str(values["action"]))
    if linkquality is not None:
        out["linkquality"] = linkquality
    return out


def z2m_messages(base_topic: str, friendly_name: str, values: Mapping[str, Any], *,
                 action_topic: bool = True, legacy_reset: bool = True,
                 linkquality: int | None = 120) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs for one change, in the order Zigbee2MQTT sends them. A press
    goes out as the state message, the ``/action`` copy, and (legacy action output) a state
    message with the action reset to ``""``."""
    base = base_topic.rstrip("/")
    state = z2m_state_payload(values, linkquality=linkquality)
    messages = [(f"{base}/{friendly_name}", json.dumps(state).encode())]
    if "action" in state:
        if action_topic:
            messages.append((f"{base}/{friendly_name}/action", state["action"].encode()))
        if legacy_reset:
            messages.append((f"{base}/{friendly_name}",
                             json.dumps({**state, "action": ""}).encode()))
    return messages


def z2m_availability(base_topic: str, friendly_name: str, online: bool, *,
                     legacy: bool = False) -> tuple[str, bytes]:
    state = "online" if online else "offline"
    payload = state if legacy else json.dumps({"state": state})
    return f"{base_topic.rstrip('/')}/{friendly_name}/availability", payload.encode()


def z2m_bridge_state(base_topic: str, online: bool, *, legacy: bool = False,
                     ) -> tuple[str, bytes]:
    state = "online" if online else "offline"
    payload = state if legacy else json.dumps({"state": state})
    return f"{base_topic.rstrip('/')}/bridge/state", payload.encode()


def bed_profile_payload(values: Mapping[str, Any], t: float | None = None) -> bytes:
    """One bed-profile message (``docs/devices/bed.md``)."""
    out: dict[str, Any] = {"occupied": bool(values.get("occupied", False))}
    for key in ("hr", "rr", "movement", "battery"):
        if key in values:
            out[key] = values[key]
    if t is not None:
        out["t"] = round(float(t), 3)
    return json.dumps(out).encode()


def emfit_status_text(values: Mapping[str, Any], serial: str = "00a1b2", uptime_s: int = 0,
                      ) -> str:
    """An Emfit QS ``dvmstatus.htm`` body."""
    occupied = bool(values.get("occupied", False))
    hr = int(values.get("hr") or 0) if occupied else 0
    rr = int(values.get("rr") or 0) if occupied else 0
    act = int(values.get("movement") or 0)
    lines = [f"SER={serial}", "TS=0", f"TS_R={uptime_s}", f"PRES={int(occupied)}",
             f"HR={hr}", f"RR={rr}", f"ACT={act}"]
    return "".join(f"{line}<br>\r\n" for line in lines)


_BTHOME_BUTTON = {"press": 0x01, "double": 0x02, "triple": 0x03, "long": 0x04, "hold": 0xFE}


def bthome_service_data(values: Mapping[str, Any], packet_id: int, *,
                        buttons: Sequence[str | None] | None = None,
                        key: bytes | None = None, mac: str | None = None,
                        counter: int = 0, trigger: bool = False) -> bytes:
    """BTHome v2 service data (UUID 0xFCD2) for a door/window sensor, motion sensor or button.
    ``buttons`` lists one event per button (None = no event); with ``key`` the packet is
    encrypted for ``mac``."""
    objects = bytearray([0x00, packet_id & 0xFF])
    if "battery" in values:
        objects += bytes([0x01, int(values["battery"]) & 0xFF])
    if "illuminance" in values:
        objects += bytes([0x05]) + round(float(values["illuminance"]) * 100).to_bytes(
            3, "little")
    if "motion" in values:
        objects += bytes([0x21, int(bool(values["motion"]))])
    if "open" in values:
        objects += bytes([0x2D, int(bool(values["open"]))])
    events = list(buttons) if buttons is not None else (
        [values["action"]] if "action" in values else [])
    for event in events:
        objects += bytes([0x3A, _BTHOME_BUTTON.get(event, 0) if event else 0])
    info = 0x40 | (0x04 if trigger else 0)
    if key is None:
        return bytes([info]) + bytes(objects)
    if mac is None:
        raise ValueError("an encrypted BTHome packet needs the sender's MAC")
    info |= 0x01
    mac_raw = bytes.fromhex(mac.replace(":", ""))
    return bytes([info]) + encrypt_payload(info, mac_raw, bytes(objects), counter, key)


def heart_rate_measurement(hr: int, *, worn: bool | None = None,
                           energy_kj: int | None = None,
                           rr_seconds: Sequence[float] = (),
                           uint16: bool | None = None) -> bytes:
    """A 0x2A37 value (``worn`` None = contact not supported)."""
    wide = hr > 255 if uint16 is None else uint16
    flags = 0x01 if wide else 0x00
    if worn is not None:
        flags |= 0x06 if worn else 0x04
    if energy_kj is not None:
        flags |= 0x08
    if rr_seconds:
        flags |= 0x10
    out = bytearray([flags])
    out += hr.to_bytes(2, "little") if wide else bytes([hr])
    if energy_kj is not None:
        out += energy_kj.to_bytes(2, "little")
    for rr in rr_seconds:
        out += round(rr * 1024).to_bytes(2, "little")
    return bytes(out)


__all__ = [
    "Z2M_ACTIONS",
    "bed_profile_payload",
    "bthome_service_data",
    "emfit_status_text",
    "heart_rate_measurement",
    "z2m_availability",
    "z2m_bridge_state",
    "z2m_messages",
    "z2m_state_payload",
]
