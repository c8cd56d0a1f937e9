"""The gateway's settings: one TOML file, validated as a whole at start.

The dataclasses below are the schema (see :mod:`gateway.schema`); every key is documented in
``config/eldergate.example.toml``. :func:`load_settings` raises :class:`SettingsError` naming the
file, every wrong key and what was expected; ``eldergate check-config`` prints the same list.
Detector settings come from ``[detection.<name>]`` tables validated against each detector's own
settings dataclass (registered in :data:`DETECTION_SETTINGS`).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
import ssl
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.manager import DEFAULT_FLAP_HOLD_S
from gateway.model import Device, DeviceKind, Resident, Room, Severity, is_number
from gateway.schema import SchemaErrors, build

CURRENT_VERSION = 1
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Any name an installer chooses ("卧室门" as well as "bedroom-door"); it is pseudonymous, not
# a person's. On the mqtt transport it is also a topic level.
_DEVICE_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_TOPIC_LEVEL = re.compile(r"^[^/+#]+$")
_TOPIC = re.compile(r"^[^/+#\x00]+(/[^/+#\x00]+)*$")
_BLE_ADDRESS = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
# Device options the device's own keys set (DeviceSettings.to_model): written in ``options``
# they are ignored or, for a BLE device, used unchecked.
_OWN_KEYS = {
    "transport": "transport",
    "friendly_name": "friendly_name",
    "address": "address",
    "ble_address": "address (with transport = 'ble')",
    "key": "key",
    "bthome_key": "key (with transport = 'ble')",
}

# name -> "module:Class" of the detector's frozen settings dataclass. Imported lazily so that a
# config check does not import numpy-heavy detector code it does not need.
DETECTION_SETTINGS: dict[str, str] = {
    "sos": "gateway.detection.sos:SosSettings",
    "fall": "gateway.detection.fall_alerts:FallSettings",
    "device_health": "gateway.detection.device_health:DeviceHealthSettings",
    "gateway_health": "gateway.detection.gateway_health:GatewayHealthSettings",
    "routine": "gateway.detection.routine:RoutineSettings",
}


class SettingsError(Exception):
    """Every problem of one config file, each as ``FILE: key: what is expected``."""

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = path
        self.errors = [f"{path}: {e}" for e in errors]
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class GatewaySettings:
    id: str = field(metadata={"doc": "unique id of this gateway on the platform"})
    languages: list[str] = field(
        default_factory=lambda: ["zh", "en"],
        metadata={"doc": "languages of the alert texts, from 'zh' and 'en'"},
    )
    storage_path: str = field(
        default="/var/lib/eldergate", metadata={"doc": "folder for the outbox and learned state"}
    )
    timezone: str = field(default="", metadata={"doc": "IANA zone; empty = system local time"})
    heartbeat_s: float = field(default=60.0, metadata={"min": 5, "max": 3600})

    def __post_init__(self) -> None:
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"timezone: expected an IANA zone such as 'Asia/Shanghai', got "
                    f"{self.timezone!r}"
                ) from None
        if not _ID.match(self.id):
            raise ValueError(f"id: expected letters, digits, '-_.:', got {self.id!r}")
        bad = [lang for lang in self.languages if lang not in ("zh", "en")]
        if bad or not self.languages:
            raise ValueError(f"languages: expected a list from 'zh', 'en', got {bad}")


@dataclass(frozen=True)
class ResidentSettings:
    id: str = field(metadata={"doc": "pseudonymous id, never a name"})
    night_start: str = "23:00"
    night_end: str = "06:00"
    wander_risk: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("night_start", "night_end"):
            if not _HHMM.match(getattr(self, name)):
                raise ValueError(
                    f"{name}: expected local time 'HH:MM', got {getattr(self, name)!r}"
                )

    def to_model(self) -> Resident:
        return Resident(self.id, self.night_start, self.night_end, self.wander_risk, self.settings)


@dataclass(frozen=True)
class DeviceSettings:
    id: str
    kind: DeviceKind
    resident: str
    room: Room = Room.OTHER
    role: str | None = None
    transport: str = field(
        default="mqtt",
        metadata={"choices": ("mqtt", "zigbee2mqtt", "ble", "emfit", "simulated")},
    )
    friendly_name: str | None = field(default=None, metadata={"doc": "Zigbee2MQTT name"})
    address: str | None = field(default=None, metadata={"doc": "BLE address or Emfit host"})
    key: str | None = field(default=None, metadata={"doc": "BTHome encryption key (hex)"})
    options: dict[str, Any] = field(default_factory=dict)

    def to_model(self) -> Device:
        options = dict(self.options)
        for name in ("transport", "friendly_name", "address", "key"):
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        if self.transport == "ble":  # the names the BLE driver reads (drivers/ble/driver.py)
            options["ble_address"] = self.address
            if self.key:
                options["bthome_key"] = self.key
        return Device(self.id, self.kind, self.resident, self.room, self.role, options)


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str | None = None
    keepalive_s: int = field(default=30, metadata={"min": 5, "max": 3600})


@dataclass(frozen=True)
class LocalBrokerSettings(BrokerSettings):
    device_topic: str = field(
        default="eldergate/devices",
        metadata={"doc": "JSON readings on <device_topic>/<device id>"},
    )
    zigbee2mqtt_base_topic: str | None = field(
        default="zigbee2mqtt", metadata={"doc": "Zigbee2MQTT base topic; empty to disable"}
    )
    bed_topic: str = field(
        default="eldergate/bed", metadata={"doc": "bed MQTT profile on <bed_topic>/<device id>"}
    )


@dataclass(frozen=True)
class PlatformSettings(BrokerSettings):
    enabled: bool = True
    port: int = field(default=8883, metadata={"min": 1, "max": 65535})
    topic_prefix: str = "eldergate"
    session_expiry_s: int = field(default=7 * 24 * 3600, metadata={"min": 0})


@dataclass(frozen=True)
class WebhookUplinkSettings:
    url: str = field(
        metadata={"doc": "https://HOST/PATH[?QUERY] of the platform's webhook (the query kept)"}
    )
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token_file: str | None = field(default=None, metadata={"doc": "file with a bearer token"})
    poll_s: float = field(default=30.0, metadata={"min": 1, "max": 3600})

    def __post_init__(self) -> None:
        if not self.url.startswith("https://"):
            raise ValueError(f"url: expected https://HOST/PATH, got {self.url!r}")


@dataclass(frozen=True)
class OutboxSettings:
    max_other_rows: int = field(default=10_000, metadata={"min": 10})
    max_other_age_h: float = field(default=72.0, metadata={"min": 1})


@dataclass(frozen=True)
class AlertSettings:
    repeat_window_s: float = field(
        default=60.0, metadata={"min": 0, "doc": "repeated presses within it are one alert"}
    )
    escalate_critical_after_s: float = field(default=300.0, metadata={"min": 30})
    escalate_high_after_s: float = field(default=900.0, metadata={"min": 30})
    visit_max_h: float = field(default=3.0, metadata={"min": 0.1, "max": 24})
    summary_time: str = field(default="08:00", metadata={"doc": "local time of the daily summary"})
    flap_hold_s: dict[str, float] = field(
        default_factory=dict,
        metadata={
            "doc": "per maintenance type: one the gateway resolved that comes back within it "
            "stays open until its condition has been gone this long; merged over the "
            "defaults; 0 = off for that type"
        },
    )

    def __post_init__(self) -> None:
        if not _HHMM.match(self.summary_time):
            raise ValueError(f"summary_time: expected 'HH:MM', got {self.summary_time!r}")
        unknown = sorted(set(self.flap_hold_s) - set(DEFAULT_FLAP_HOLD_S))
        if unknown:
            raise ValueError(
                f"flap_hold_s: unknown alert type(s) {unknown} "
                f"(expected some of: {', '.join(DEFAULT_FLAP_HOLD_S)})"
            )
        bad = [k for k, v in self.flap_hold_s.items() if not 0 <= v <= 7 * 86400]
        if bad:
            raise ValueError(f"flap_hold_s: must be seconds within [0, 604800], got {bad}")


@dataclass(frozen=True)
class Settings:
    gateway: GatewaySettings
    version: int = CURRENT_VERSION
    residents: list[ResidentSettings] = field(default_factory=list)
    devices: list[DeviceSettings] = field(default_factory=list)
    local_broker: LocalBrokerSettings | None = None
    platform: PlatformSettings | None = None
    webhook: WebhookUplinkSettings | None = None
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    ble: dict[str, Any] = field(default_factory=dict)
    detection: dict[str, Any] = field(default_factory=dict)

    def residents_model(self) -> list[Resident]:
        """Residents with the gateway's time zone as their default ``tz``."""
        residents = [r.to_model() for r in self.residents]
        if not self.gateway.timezone:
            return residents
        return [
            dataclasses.replace(r, settings={"tz": self.gateway.timezone, **r.settings})
            for r in residents
        ]

    def devices_model(self) -> list[Device]:
        return [d.to_model() for d in self.devices]

    def detector_settings(self, name: str) -> Any:
        """The validated settings object of detector ``name`` (its defaults if not configured)."""
        return self.detection.get(name) or _settings_class(name)()


def _settings_class(name: str) -> Any:
    module, _, cls = DETECTION_SETTINGS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _storage_problems(storage_path: str) -> list[str]:
    """A storage folder under a file can never be made (the gateway then keeps its outbox in
    memory only, and says so at each start): named here, before it is installed."""
    path = Path(storage_path)
    for folder in (path, *path.parents):
        if folder.exists():
            if folder.is_dir():
                return []
            return [f"gateway.storage_path: expected a folder, {str(folder)!r} is a file"]
    return []


def _cross_checks(settings: Settings) -> list[str]:
    errors: list[str] = _storage_problems(settings.gateway.storage_path)
    resident_ids = [r.id for r in settings.residents]
    for i, rid in enumerate(resident_ids):
        if not _ID.match(rid):
            errors.append(f"residents[{i}].id: expected a short pseudonymous id, got {rid!r}")
        if resident_ids.count(rid) > 1 and resident_ids.index(rid) != i:
            errors.append(f"residents[{i}].id: duplicate resident id {rid!r}")
    device_ids = [d.id for d in settings.devices]
    friendly_names: dict[str, int] = {}
    ble_addresses: dict[str, int] = {}
    for i, dev in enumerate(settings.devices):
        if not _DEVICE_ID.match(dev.id):
            errors.append(
                f"devices[{i}].id: expected 1 to 64 characters, no control characters, "
                f"got {dev.id!r}"
            )
        elif dev.transport == "mqtt" and not _TOPIC_LEVEL.match(dev.id):
            # its topic level on the JSON device and bed topics: never heard with these
            errors.append(
                f"devices[{i}].id: an mqtt device's id is its topic level, expected no "
                f"'/', '+' or '#', got {dev.id!r}"
            )
        if device_ids.index(dev.id) != i:
            errors.append(f"devices[{i}].id: duplicate device id {dev.id!r}")
        for key in dev.options:
            if key in _OWN_KEYS:
                errors.append(
                    f"devices[{i}].options.{key}: not an option, set the device's "
                    f"{_OWN_KEYS[key]} instead"
                )
        offline_after = dev.options.get("offline_after_s")
        if offline_after is not None and not (
            is_number(offline_after) and math.isfinite(offline_after) and offline_after > 0
        ):  # device_health fell back to the kind's default without a word
            errors.append(
                f"devices[{i}].options.offline_after_s: expected seconds > 0, got {offline_after!r}"
            )
        weekly_test = dev.options.get("weekly_test")
        if weekly_test is not None and not isinstance(weekly_test, bool):
            errors.append(
                f"devices[{i}].options.weekly_test: expected true or false, got {weekly_test!r}"
            )
        if dev.transport in ("mqtt", "zigbee2mqtt") and (
            settings.local_broker is None
            or (dev.transport == "zigbee2mqtt" and not settings.local_broker.zigbee2mqtt_base_topic)
        ):
            needs = (
                "a [local_broker] table"
                if settings.local_broker is None
                else "local_broker.zigbee2mqtt_base_topic"
            )
            errors.append(
                f"devices[{i}].transport: {dev.transport!r} needs {needs} "
                "(nothing else would hear this device)"
            )
        if dev.transport == "ble" and dev.address:
            if not _BLE_ADDRESS.match(dev.address):
                errors.append(
                    f"devices[{i}].address: expected a BLE address such as "
                    f"'C0:FF:EE:00:00:01', got {dev.address!r}"
                )
            elif dev.address.upper() in ble_addresses:
                first = ble_addresses[dev.address.upper()]
                errors.append(
                    f"devices[{i}].address: {dev.address!r} is already devices[{first}]'s"
                )
            else:
                ble_addresses[dev.address.upper()] = i
        if dev.transport == "zigbee2mqtt" and dev.friendly_name:
            if dev.friendly_name in friendly_names:
                first = friendly_names[dev.friendly_name]
                errors.append(
                    f"devices[{i}].friendly_name: {dev.friendly_name!r} is already "
                    f"devices[{first}]'s"
                )
            else:
                friendly_names[dev.friendly_name] = i
        if dev.resident not in resident_ids:
            errors.append(
                f"devices[{i}].resident: expected one of the residents' ids "
                f"({', '.join(resident_ids) or 'none defined'}), got {dev.resident!r}"
            )
        if dev.transport in ("ble", "emfit") and not dev.address:
            errors.append(f"devices[{i}].address: required for transport {dev.transport!r}")
        profile = dev.options.get("ble_profile")
        if profile is not None and profile not in BLE_PROFILES:
            errors.append(
                f"devices[{i}].options.ble_profile: expected one of {', '.join(BLE_PROFILES)}, "
                f"got {profile!r}"
            )
        if dev.key is not None:
            try:
                if len(bytes.fromhex(dev.key)) != 16:
                    raise ValueError
            except ValueError:
                errors.append(f"devices[{i}].key: expected 32 hex digits (a 16-byte key)")
        if dev.transport == "zigbee2mqtt" and not dev.friendly_name:
            errors.append(f"devices[{i}].friendly_name: required for transport 'zigbee2mqtt'")
    for key in settings.ble:
        if key not in ("adapter",):
            errors.append(f"ble.{key}: unknown key (expected: adapter)")
    if settings.platform is not None and settings.platform.enabled and settings.webhook:
        errors.append("webhook: expected either [platform] (MQTT) or [webhook], not both")
    if settings.webhook is not None:
        for key in ("ca_file", "cert_file", "key_file", "token_file"):
            value = getattr(settings.webhook, key)
            if value and not Path(value).is_file():
                errors.append(f"webhook.{key}: expected a readable file, {value!r} not found")
            elif value and key == "token_file":
                errors.extend(_secret_problems(value, "webhook.token_file"))
    for section in ("local_broker", "platform"):
        broker = getattr(settings, section)
        if broker is None:
            continue
        for key in ("password_file", "ca_file", "cert_file", "key_file"):
            value = getattr(broker, key)
            if value and not Path(value).is_file():
                errors.append(f"{section}.{key}: expected a readable file, {value!r} not found")
            elif value and key == "password_file":
                errors.extend(_secret_problems(value, f"{section}.password_file"))
        if broker.ca_file and Path(broker.ca_file).is_file():
            try:
                ssl.create_default_context(cafile=broker.ca_file)
            except (ssl.SSLError, OSError, ValueError):
                errors.append(
                    f"{section}.ca_file: expected PEM CA certificates, {broker.ca_file!r} "
                    "holds none"
                )
        if broker.password_file and not broker.username:
            errors.append(f"{section}.username: required when password_file is set")
        if bool(broker.cert_file) != bool(broker.key_file):
            errors.append(f"{section}.cert_file/key_file: expected both or neither")
        for key in ("topic_prefix", "device_topic", "zigbee2mqtt_base_topic", "bed_topic"):
            written = getattr(broker, key, None)
            if not written:
                continue
            # the home broker's drivers strip a trailing '/': 'zigbee2mqtt/' always worked
            topic = written.rstrip("/") if section == "local_broker" else written
            if not _TOPIC.match(topic):
                # a wildcard in a topic the gateway publishes to or builds filters from
                # failed at every (re)connection, in a loop
                errors.append(
                    f"{section}.{key}: expected topic levels without '+', '#' or an empty "
                    f"level, got {written!r}"
                )
    return errors


def _secret_problems(path: str, key: str) -> list[str]:
    """A password or token file that is there but cannot be read as text (permissions, not
    UTF-8) passed the check and stopped the gateway on a traceback when it was read."""
    try:
        read_password(path)
    except OSError as exc:
        return [f"{key}: expected a readable file, {path!r}: {exc.strerror}"]
    except UnicodeDecodeError:
        return [f"{key}: expected one line of UTF-8 text, {path!r} is not"]
    return []


def parse_settings(data: dict[str, Any], path: str = "<config>") -> Settings:
    """Validate an already-parsed TOML document. Raises :class:`SettingsError`."""
    errors: list[str] = []
    version = data.get("version", CURRENT_VERSION)
    if version != CURRENT_VERSION:
        raise SettingsError(path, [f"version: expected {CURRENT_VERSION}, got {version!r}"])
    raw_detection = data.get("detection", {})
    detection: dict[str, Any] = {}
    if not isinstance(raw_detection, dict):
        errors.append(f"detection: expected a table, got {type(raw_detection).__name__}")
        raw_detection = {}
    for name, table in raw_detection.items():
        if name not in DETECTION_SETTINGS:
            known = ", ".join(sorted(DETECTION_SETTINGS))
            errors.append(f"detection.{name}: unknown detector (expected one of: {known})")
            continue
        try:
            detection[name] = build(_settings_class(name), table, f"detection.{name}")
        except SchemaErrors as exc:
            errors.extend(exc.errors)
    try:
        settings = build(Settings, {**data, "detection": {}}, "")
    except SchemaErrors as exc:
        raise SettingsError(path, exc.errors + errors) from None
    errors.extend(_cross_checks(settings))
    for name, values in detection.items():
        errors.extend(_named_values(dataclasses.asdict(values), f"detection.{name}"))
    model_path = getattr(detection.get("fall"), "model_path", None)
    if model_path and not Path(model_path).is_file():
        errors.append(
            f"detection.fall.model_path: expected a readable file, {model_path!r} not found"
        )
    for i, resident in enumerate(settings.residents):
        errors.extend(_named_values(resident.settings, f"residents[{i}].settings"))
        errors.extend(_resident_override_errors(resident.settings, f"residents[{i}].settings"))
    if errors:
        raise SettingsError(path, errors)
    return dataclasses.replace(settings, detection=detection)


_SEVERITIES = tuple(s.label for s in Severity)
BLE_PROFILES = ("wristband", "heart_rate", "bed")  # drivers.ble.profiles.PROFILES (a test checks)


def _named_values(values: Any, path: str) -> list[str]:
    """Values whose key says what they must be, in a detector's settings or a resident's
    overrides (nested tables too): a severity (a typo there lost every such alert at the
    moment it was raised) and a time zone."""
    if not isinstance(values, dict):
        return []
    errors: list[str] = []
    for key, value in values.items():
        where = f"{path}.{key}"
        if isinstance(value, dict):
            errors.extend(_named_values(value, where))
        elif (key == "severity" or str(key).endswith("_severity")) and value not in _SEVERITIES:
            errors.append(f"{where}: expected one of {', '.join(_SEVERITIES)}, got {value!r}")
        elif is_number(value) and str(key).endswith(_DURATIONS) and value < 0:
            errors.append(f"{where}: expected at least 0, got {value}")
        elif is_number(value) and _is_share(str(key)) and not 0 <= value <= 1:
            errors.append(f"{where}: expected a share within [0, 1], got {value}")
        elif key == "tz" and value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                errors.append(
                    f"{where}: expected an IANA time zone such as 'Europe/London', got {value!r}"
                )
    for key, low in values.items():
        high = values.get(f"{str(key)[: -len('_low')]}_high")
        if str(key).endswith("_low") and is_number(low) and is_number(high) and low >= high:
            errors.append(f"{path}.{key}: expected below {key[:-4]}_high ({high}), got {low}")
    return errors


# Keys whose name says a duration or a count (never below 0) or a share (within [0, 1]): a
# detector's settings carry no bounds of their own, and a quantile of 1.5 made bed_exit's
# threshold raise once learned (no alert), a negative return_s alerted a night exit at once.
_DURATIONS = ("_s", "_min", "_h", "_days", "_nights", "history", "min_learned", "_samples")


def _is_share(key: str) -> bool:
    return key == "quantile" or key.endswith(("_quantile", "_probability", "_fraction", "_q"))


def _resident_override_errors(overrides: dict[str, Any], path: str) -> list[str]:
    """A resident's detector overrides checked like the detector's own table (a typo such as
    ``default_deadline = "10.30"`` would otherwise be found only at the first tick)."""
    routine = typing.get_type_hints(_settings_class("routine"))
    tables = sorted(n for n, c in routine.items() if dataclasses.is_dataclass(c))
    errors: list[str] = []
    for name, table in overrides.items():
        cls = routine.get(name)
        if name == "tz":
            continue  # checked by _named_values
        if name not in tables:  # a misspelt detector: its overrides were never read
            errors.append(
                f"{path}.{name}: unknown key (expected one of: {', '.join(['tz', *tables])})"
            )
        elif not isinstance(table, dict):
            errors.append(f"{path}.{name}: expected a table, got {type(table).__name__}")
        elif isinstance(cls, type):
            try:
                build(cls, table, f"{path}.{name}")
            except SchemaErrors as exc:
                errors.extend(exc.errors)
    return errors


def load_settings(path: str | Path) -> Settings:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(str(path), [f"not UTF-8 text: {exc.reason}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(str(path), [f"not valid TOML: {exc}"]) from exc
    return parse_settings(data, str(path))


def read_password(password_file: str | None) -> str | None:
    if not password_file:
        return None
    return Path(password_file).read_text(encoding="utf-8").strip()
