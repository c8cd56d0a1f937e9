"""Short human texts for staff, in Chinese and English, beside each alert's machine fields.

Texts name the alert type, the room and counts; never a name, an address or a health value
beyond what staff need to decide (the vitals text says "heart rate out of range", not the
number).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ROOM_NAMES: dict[str, tuple[str, str]] = {
    "entrance": ("entrance", "入口"),
    "bedroom": ("bedroom", "卧室"),
    "bathroom": ("bathroom", "卫生间"),
    "kitchen": ("kitchen", "厨房"),
    "lounge": ("lounge", "客厅"),
    "hallway": ("hallway", "走廊"),
    "other": ("home", "家中"),
}

# type -> (english, chinese); {room}, {count}, {hours}, {minutes} are filled in when known.
TEXTS: dict[str, tuple[str, str]] = {
    "sos": ("Emergency button pressed ({count}×)", "紧急呼叫按钮被按下（{count}次）"),
    "fall": ("Fall detected on the wristband", "手环检测到跌倒"),
    "inactivity": (
        "No sign of life at home for {hours} h, longer than usual",
        "家中已{hours}小时无活动迹象，超出平时",
    ),
    "not_up": ("Not up at the usual time", "未在平时时间起床"),
    "bed_exit_no_return": (
        "Out of bed at night and not back for {minutes} min",
        "夜间离床{minutes}分钟未返回",
    ),
    "night_exit": ("Exit door opened at night", "夜间外门被打开"),
    "long_bathroom": (
        "In the bathroom for {minutes} min, longer than usual",
        "在卫生间已{minutes}分钟，超出平时",
    ),
    "vitals": ("{signal} out of range in bed", "卧床时{signal}异常"),
    "device_offline": (
        "Device offline: {device_kind} in the {room}",
        "设备离线：{room}的{device_kind}",
    ),
    "battery_low": ("Battery low: {device_kind} in the {room}", "电量低：{room}的{device_kind}"),
    "tamper": (
        "Device tampered with: {device_kind} in the {room}",
        "设备被拆动：{room}的{device_kind}",
    ),
    "smoke": ("Smoke alarm in the {room}", "{room}烟雾报警"),
    "gas": ("Gas alarm in the {room}", "{room}燃气报警"),
    "water_leak": ("Water leak in the {room}", "{room}漏水"),
    "button_untested": (
        "Emergency button not tested for 7 days",
        "紧急按钮已7天未测试",
    ),
    "gateway_degraded": ("Gateway degraded: {cause}", "网关工作异常：{cause}"),
}

# vitals' details["signal"] -> (english, chinese); the limits in its details stay out of the text
SIGNAL_NAMES: dict[str, tuple[str, str]] = {
    "hr": ("Heart rate", "心率"),
    "rr": ("Breathing rate", "呼吸频率"),
}
ANY_SIGNAL = ("Heart rate or breathing", "心率或呼吸")

# gateway_degraded's details["cause"] -> (english, chinese): what staff lose, not the error.
CAUSE_NAMES: dict[str, tuple[str, str]] = {
    "local_broker": (
        "the home's sensors and buttons cannot report (local MQTT broker unreachable)",
        "家中传感器和按钮无法上报（本地MQTT服务不可达）",
    ),
    "zigbee2mqtt_bridge": (
        "Zigbee sensors and buttons cannot report (Zigbee bridge offline)",
        "Zigbee传感器和按钮无法上报（Zigbee网关离线）",
    ),
    "subscription_refused": (
        "some of the home's sensors and buttons cannot report (the local MQTT broker refuses "
        "the gateway access to their messages)",
        "部分家中传感器和按钮无法上报（本地MQTT服务拒绝网关订阅其消息）",
    ),
    "ble_adapter": (
        "wristbands and Bluetooth sensors cannot report (Bluetooth adapter not recovering)",
        "手环和蓝牙传感器无法上报（蓝牙适配器无法恢复）",
    ),
    "driver": (
        "some devices cannot report (a device driver keeps failing)",
        "部分设备无法上报（驱动反复出错）",
    ),
}

KIND_NAMES: dict[str, tuple[str, str]] = {
    "door": ("door contact", "门磁"),
    "motion": ("motion sensor", "人体感应器"),
    "bed": ("bed sensor", "床垫传感器"),
    "wristband": ("wristband", "手环"),
    "button": ("emergency button", "紧急按钮"),
    "smoke": ("smoke alarm", "烟雾报警器"),
    "gas": ("gas alarm", "燃气报警器"),
    "water_leak": ("leak sensor", "漏水传感器"),
    "heart_rate": ("heart-rate sensor", "心率传感器"),
}

STATE_SUFFIX: dict[str, tuple[str, str]] = {
    "cancelled": (" (cancelled by the resident)", "（住户已取消）"),
    "escalated": (" — ESCALATED", "——已升级"),
}


# A detector's duration detail (seconds) -> the {hours} / {minutes} its text shows.
DURATION_KEYS = ("quiet_s", "out_s", "stay_s")


def _durations(details: Mapping[str, Any]) -> dict[str, str]:
    for key in DURATION_KEYS:
        seconds = details.get(key)
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
            return {"hours": f"{seconds / 3600:.1f}", "minutes": str(round(seconds / 60))}
    return {}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def render(
    alert_type: str, details: Mapping[str, Any], languages: Iterable[str], state: str = "open"
) -> dict[str, str]:
    english, chinese = TEXTS.get(alert_type, (alert_type.replace("_", " "), alert_type))
    room = str(details.get("room", "other"))
    kind = str(details.get("device_kind", ""))
    out: dict[str, str] = {}
    for lang in languages:
        index = 0 if lang == "en" else 1
        values = _Blank(details)
        values.update(_durations(details))
        values["room"] = ROOM_NAMES.get(room, (room, room))[index]
        values["device_kind"] = KIND_NAMES.get(kind, (kind or "device", kind or "设备"))[index]
        cause = str(details.get("cause", ""))
        values["cause"] = CAUSE_NAMES.get(cause, CAUSE_NAMES["driver"])[index]
        values["signal"] = SIGNAL_NAMES.get(str(details.get("signal", "")), ANY_SIGNAL)[index]
        template = english if index == 0 else chinese
        text = template.format_map(values)
        if state in STATE_SUFFIX:
            text += STATE_SUFFIX[state][index]
        out[lang] = text
    return out
