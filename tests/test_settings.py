from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import SettingsError, load_settings
from tests.support.mosquitto import Pki

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "eldergate.example.toml"


def _example_with_files(tmp_path: Path, ca: Path) -> Path:
    """The example references /etc files; point them at real files in tmp_path."""
    text = EXAMPLE.read_text()
    for name in ("local-broker.password", "platform-ca.pem", "platform.password"):
        content = ca.read_text() if name.endswith(".pem") else "x\n"
        (tmp_path / name).write_text(content)
        text = text.replace(f"/etc/eldergate/{name}", str(tmp_path / name))
    out = tmp_path / "eldergate.toml"
    out.write_text(text)
    return out


def test_example_config_is_valid(tmp_path: Path, pki: Pki) -> None:
    settings = load_settings(_example_with_files(tmp_path, pki.ca))
    assert settings.gateway.id == "gw-0001"
    assert [d.id for d in settings.devices][:2] == ["front-door", "sos-button"]
    assert settings.devices_model()[0].is_exit


def test_example_config_names_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(EXAMPLE)
    assert any("platform.ca_file: expected a readable file" in e for e in err.value.errors)


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert all(e.startswith(f"{path}: ") for e in err.value.errors)
    return [e.split(": ", 1)[1] for e in err.value.errors]


def test_every_error_is_named_with_its_key(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        """
[gateway]
id = "gw 1"
heartbeat_s = "often"
colour = "blue"
[[residents]]
id = "r1"
night_start = "25:00"
[[devices]]
id = "d1"
kind = "toaster"
resident = "r1"
[[devices]]
id = "d2"
kind = "door"
resident = "nobody"
transport = "ble"
[platform]
port = 99999
[detection.sos]
cancel_window_s = "x"
[detection.teleport]
""",
    )
    text = "\n".join(errors)
    assert "gateway.heartbeat_s: expected a number, got str 'often'" in text
    assert "gateway.colour: unknown key" in text
    assert "residents[0].night_start: expected local time 'HH:MM', got '25:00'" in text
    assert "devices[0].kind: expected one of 'door'" in text
    assert "platform.port: expected at most 65535, got 99999" in text
    assert "detection.teleport: unknown detector" in text
    assert "detection.sos.cancel_window_s: expected a number, got str 'x'" in errors
    # cross-field checks run only once the shapes are right; fix shapes and see them
    errors = _errors(
        tmp_path,
        """
[gateway]
id = "gw1"
[[residents]]
id = "r1"
[[devices]]
id = "d2"
kind = "door"
resident = "nobody"
transport = "ble"
[[devices]]
id = "d2"
kind = "motion"
resident = "r1"
""",
    )
    assert "devices[0].resident: expected one of the residents' ids (r1), got 'nobody'" in errors
    assert "devices[0].address: required for transport 'ble'" in errors
    assert "devices[1].id: duplicate device id 'd2'" in errors


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[gateway\nid=1", "not valid TOML"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b"", "gateway: required"),
        (b"version = 7\n[gateway]\nid='g'", "version: expected 1, got 7"),
    ],
)
def test_corrupt_config_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert any(expected in e for e in err.value.errors), err.value.errors


def test_check_config_command_prints_every_error_and_exits_nonzero(
    tmp_path: Path, pki: Pki
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[gateway]\nid = "ok"\nheartbeat_s = 1\nlanguages = ["fr"]\n')
    exe = shutil.which("eldergate") or sys.executable
    args = [exe] if exe.endswith("eldergate") else [exe, "-m", "gateway.cli"]
    proc = subprocess.run([*args, "check-config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{path}: gateway.heartbeat_s: expected at least 5, got 1" in proc.stderr
    assert "languages" in proc.stderr
    good = _example_with_files(tmp_path, pki.ca)
    proc = subprocess.run([*args, "check-config", str(good)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_ca_file_that_holds_no_certificate_is_named(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    errors = _errors(tmp_path, f'[gateway]\nid = "g"\n[platform]\nhost = "h"\nca_file = "{ca}"\n')
    assert errors == [f"platform.ca_file: expected PEM CA certificates, '{ca}' holds none"]


def test_severities_time_zones_and_choices_are_checked_at_load(tmp_path: Path) -> None:
    """A severity typo passed the check and then lost every alert of that detector when it was
    raised; an unknown time zone or model was found only at run time."""
    errors = _errors(
        tmp_path,
        """
[gateway]
id = "gw-1"
[[residents]]
id = "r1"
[residents.settings]
tz = "Nowhere/Zone"
vitals = { severity = "urgent" }
not_up = { default_deadline = "10.30", margin_s = "2h" }
[detection.routine.vitals]
severity = "urgent"
tz = "Mars/Olympus"
[detection.routine.night_exit]
wander_severity = "critical"
""",
    )
    assert sorted(errors) == sorted(
        [
            "detection.routine.vitals.severity: expected one of info, warning, high, critical, "
            "got 'urgent'",
            "detection.routine.vitals.tz: expected an IANA time zone such as 'Europe/London', "
            "got 'Mars/Olympus'",
            "residents[0].settings.tz: expected an IANA time zone such as 'Europe/London', "
            "got 'Nowhere/Zone'",
            "residents[0].settings.vitals.severity: expected one of info, warning, high, "
            "critical, got 'urgent'",
            "residents[0].settings.not_up.default_deadline: expected local time 'HH:MM', "
            "got '10.30'",
            "residents[0].settings.not_up.margin_s: expected a number, got str '2h'",
        ]
    )
    model = "[gateway]\nid = 'gw-1'\n[detection.routine.inactivity]\nmodel = 'nonsense'\n"
    assert _errors(tmp_path, model) == [
        "detection.routine.inactivity.model: expected one of 'survival', 'longest', got 'nonsense'"
    ]
    up = "[gateway]\nid = 'gw-1'\n[detection.routine.inactivity]\nup_from = '25:00'\n"
    assert _errors(tmp_path, up) == [
        "detection.routine.inactivity.up_from: expected local time 'HH:MM', got '25:00'"
    ]


def test_transport_profile_adapter_and_model_file_mistakes_are_named(tmp_path: Path) -> None:
    from drivers.ble.profiles import PROFILES
    from gateway.settings import BLE_PROFILES

    assert set(BLE_PROFILES) == set(PROFILES)
    errors = _errors(
        tmp_path,
        """
[gateway]
id = "gw-1"
[ble]
adaptor = "hci1"
[[residents]]
id = "r1"
[[devices]]
id = "bed1"
kind = "bed"
resident = "r1"
transport = "emfit"
[[devices]]
id = "band1"
kind = "wristband"
resident = "r1"
transport = "ble"
address = "AA:BB:CC:DD:EE:FF"
options = { ble_profile = "wristbnd" }
[detection.fall]
model_path = "/nonexistent/fall_model.npz"
""",
    )
    assert sorted(errors) == sorted(
        [
            "devices[0].address: required for transport 'emfit'",
            "devices[1].options.ble_profile: expected one of wristband, heart_rate, bed, "
            "got 'wristbnd'",
            "ble.adaptor: unknown key (expected: adapter)",
            "detection.fall.model_path: expected a readable file, "
            "'/nonexistent/fall_model.npz' not found",
        ]
    )


def test_devices_that_would_never_be_heard_are_named(tmp_path: Path) -> None:
    """These all passed check-config, and the gateway then ran deaf to the device (its
    device_offline came hours later) or, for a BTHome key written as an option, stopped on a
    traceback at start. ``options = { ble_address = ... }`` was what docs/devices showed."""
    errors = _errors(
        tmp_path,
        """
[gateway]
id = "gw-1"
[[residents]]
id = "r1"
[[devices]]
id = "hall/motion"
kind = "motion"
resident = "r1"
[[devices]]
id = "band1"
kind = "wristband"
resident = "r1"
transport = "ble"
address = "C0-FF-EE-00-00-01"
[[devices]]
id = "band2"
kind = "wristband"
resident = "r1"
options = { ble_address = "C0:FF:EE:00:00:02" }
[[devices]]
id = "band3"
kind = "wristband"
resident = "r1"
transport = "ble"
address = "c0:ff:ee:00:00:03"
[[devices]]
id = "band4"
kind = "wristband"
resident = "r1"
transport = "ble"
address = "C0:FF:EE:00:00:03"
[[devices]]
id = "door1"
kind = "door"
resident = "r1"
transport = "ble"
address = "C0:FF:EE:00:00:04"
options = { bthome_key = "zz" }
[[devices]]
id = "door2"
kind = "door"
resident = "r1"
transport = "zigbee2mqtt"
friendly_name = "Door"
[[devices]]
id = "door3"
kind = "door"
resident = "r1"
transport = "zigbee2mqtt"
friendly_name = "Door"
""",
    )
    deaf = "needs a [local_broker] table (nothing else would hear this device)"
    mqtt, z2m = f"transport: 'mqtt' {deaf}", f"transport: 'zigbee2mqtt' {deaf}"
    assert sorted(errors) == sorted(
        [
            "devices[0].id: an mqtt device's id is its topic level, expected no '/', '+' or '#',"
            " got 'hall/motion'",
            f"devices[0].{mqtt}",
            "devices[1].address: expected a BLE address such as 'C0:FF:EE:00:00:01', "
            "got 'C0-FF-EE-00-00-01'",
            "devices[2].options.ble_address: not an option, set the device's address "
            "(with transport = 'ble') instead",
            f"devices[2].{mqtt}",
            "devices[4].address: 'C0:FF:EE:00:00:03' is already devices[3]'s",
            "devices[5].options.bthome_key: not an option, set the device's key "
            "(with transport = 'ble') instead",
            f"devices[6].{z2m}",
            f"devices[7].{z2m}",
            "devices[7].friendly_name: 'Door' is already devices[6]'s",
        ]
    )
    disabled = (
        "[gateway]\nid = 'gw-1'\n[local_broker]\nzigbee2mqtt_base_topic = ''\n[[residents]]\n"
        "id = 'r1'\n[[devices]]\nid = 'd'\nkind = 'door'\nresident = 'r1'\n"
        "transport = 'zigbee2mqtt'\nfriendly_name = 'D'\n"
    )
    assert _errors(tmp_path, disabled) == [
        "devices[0].transport: 'zigbee2mqtt' needs local_broker.zigbee2mqtt_base_topic "
        "(nothing else would hear this device)"
    ]


def test_device_health_settings_that_were_silently_ignored_are_named(tmp_path: Path) -> None:
    """A kind misspelt under stale_after_s, or an offline_after_s / weekly_test option of the
    wrong type, left the device on its default watch without a word: a bed said to be offline
    after 30 min stayed at 10, a pull cord exempted from weekly tests was still nagged."""
    errors = _errors(
        tmp_path,
        """
[gateway]
id = "gw-1"
[local_broker]
[[residents]]
id = "r1"
[[devices]]
id = "bed1"
kind = "bed"
resident = "r1"
options = { offline_after_s = "30min" }
[[devices]]
id = "fridge"
kind = "door"
resident = "r1"
options = { offline_after_s = -60 }
[[devices]]
id = "cord"
kind = "button"
resident = "r1"
options = { weekly_test = "no" }
[detection.device_health.stale_after_s]
wristbnd = 600.0
heart_rate = 900.0
""",
    )
    assert sorted(errors) == sorted(
        [
            "devices[0].options.offline_after_s: expected seconds > 0, got '30min'",
            "devices[1].options.offline_after_s: expected seconds > 0, got -60",
            "devices[2].options.weekly_test: expected true or false, got 'no'",
            "detection.device_health.stale_after_s: unknown device kind(s) ['wristbnd'] "
            "(expected some of: door, motion, bed, wristband, button, smoke, gas, water_leak, "
            "heart_rate)",
        ]
    )


def test_detector_values_out_of_range_and_misfit_overrides_are_named(tmp_path: Path) -> None:
    """Routine detector settings had no bounds: a quantile of 1.5 passed the check and made
    bed_exit_no_return raise whenever someone was out of bed once ten nights were learned (no
    alert), a negative return_s alerted on a night exit at once, hr_low above hr_high alerted
    for any heart rate in bed. A resident's override under a misspelt detector name, or not a
    table, was never read."""
    errors = _errors(
        tmp_path,
        """
[gateway]
id = "gw-1"
[[residents]]
id = "r1"
[residents.settings]
nigth_exit = { return_s = 600 }
vitals = 5
[residents.settings.long_bathroom]
default_s = -60
quantile = 99
[detection.routine]
leave_grace_s = -1.0
[detection.routine.bed_exit_no_return]
quantile = 1.5
[detection.routine.night_exit]
return_s = -900.0
[detection.routine.vitals]
hr_low = 130.0
min_samples = -1
""",
    )
    assert sorted(errors) == sorted(
        [
            "residents[0].settings.nigth_exit: unknown key (expected one of: tz, "
            "bed_exit_no_return, inactivity, long_bathroom, night_exit, not_up, vitals)",
            "residents[0].settings.vitals: expected a table, got int",
            "residents[0].settings.long_bathroom.default_s: expected at least 0, got -60",
            "residents[0].settings.long_bathroom.quantile: expected a share within [0, 1], got 99",
            "detection.routine.leave_grace_s: expected at least 0, got -1.0",
            "detection.routine.bed_exit_no_return.quantile: expected a share within [0, 1], "
            "got 1.5",
            "detection.routine.night_exit.return_s: expected at least 0, got -900.0",
            "detection.routine.vitals.hr_low: expected below hr_high (120.0), got 130.0",
            "detection.routine.vitals.min_samples: expected at least 0, got -1",
        ]
    )


def test_a_password_or_token_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """It passed check-config, and `run` stopped on a UnicodeDecodeError traceback."""
    secret = tmp_path / "token"
    secret.write_bytes(b"\xff\xfe")
    hook = f'[gateway]\nid = "g"\n[webhook]\nurl = "https://h/x"\ntoken_file = "{secret}"\n'
    assert _errors(tmp_path, hook) == [
        f"webhook.token_file: expected one line of UTF-8 text, '{secret}' is not"
    ]
    broker = f'[gateway]\nid = "g"\n[local_broker]\nusername = "u"\npassword_file = "{secret}"\n'
    assert _errors(tmp_path, broker) == [
        f"local_broker.password_file: expected one line of UTF-8 text, '{secret}' is not"
    ]


def test_a_storage_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    """The gateway stopped on a traceback at every start (it now runs from memory)."""
    (tmp_path / "a-file").write_text("")
    text = f'[gateway]\nid = "g"\nstorage_path = "{tmp_path / "a-file" / "state"}"\n'
    assert _errors(tmp_path, text) == [
        f"gateway.storage_path: expected a folder, '{tmp_path / 'a-file'}' is a file"
    ]


def test_topics_with_wildcards_or_empty_levels_are_named(tmp_path: Path) -> None:
    """A '+' or '#' in the platform's topic prefix made every publish fail (paho refuses a
    wildcard in a topic name), so the uplink restarted in a loop and no alert went out."""
    text = (
        '[gateway]\nid = "g"\n[platform]\nhost = "127.0.0.1"\ntopic_prefix = "care/+/homes"\n'
        '[local_broker]\ndevice_topic = "eldergate//devices"\nbed_topic = "eldergate/bed#"\n'
    )
    errors = _errors(tmp_path, text)
    assert [e.split(":")[0] for e in errors] == [
        "local_broker.device_topic",
        "local_broker.bed_topic",
        "platform.topic_prefix",
    ]
    assert "expected topic levels without '+', '#' or an empty level" in errors[0]
    good = tmp_path / "good.toml"
    good.write_text('[gateway]\nid = "g"\n[platform]\nhost = "h"\ntopic_prefix = "care/homes"\n')
    assert load_settings(good).platform.topic_prefix == "care/homes"


def test_a_local_topic_with_a_trailing_slash_still_loads_and_is_heard(tmp_path: Path) -> None:
    """The home broker's drivers have always taken ``zigbee2mqtt/`` as ``zigbee2mqtt`` (they
    strip a trailing '/'): such a config heard every device, and must not stop the gateway at
    its next start as an 'empty level'."""
    from drivers.zigbee2mqtt import codec_from_devices

    path = tmp_path / "ok.toml"
    path.write_text(
        '[gateway]\nid = "g"\n[[residents]]\nid = "r1"\n'
        '[[devices]]\nid = "door"\nkind = "door"\nresident = "r1"\n'
        'transport = "zigbee2mqtt"\nfriendly_name = "Front door"\n'
        '[local_broker]\nzigbee2mqtt_base_topic = "zigbee2mqtt/"\n'
        'device_topic = "eldergate/devices/"\nbed_topic = "eldergate/bed/"\n'
    )
    settings = load_settings(path)
    assert settings.local_broker is not None
    base = settings.local_broker.zigbee2mqtt_base_topic
    assert base is not None
    codec = codec_from_devices(base, settings.devices_model())
    (reading,) = codec.decode("zigbee2mqtt/Front door", b'{"contact": false}', 1e9)
    assert reading.device == "door" and reading.values["open"] is True
    bad = '[gateway]\nid = "g"\n[local_broker]\ndevice_topic = "/"\nbed_topic = "a//b/"\n'
    assert [e.split(":")[0] for e in _errors(tmp_path, bad)] == [
        "local_broker.device_topic",
        "local_broker.bed_topic",
    ]


def test_device_ids_in_any_script_load_where_they_are_no_topic_level(tmp_path: Path) -> None:
    """A Chinese installer names devices in Chinese; only an mqtt device's id is a topic
    level. The id rule added for topics first refused every such config."""
    config = tmp_path / "home.toml"
    config.write_text(
        '[gateway]\nid = "gw-1"\n[[residents]]\nid = "r1"\n'
        '[[devices]]\nid = "卧室门"\nkind = "door"\nresident = "r1"\ntransport = "simulated"\n'
        '[[devices]]\nid = "front door/main"\nkind = "door"\nresident = "r1"\n'
        'transport = "simulated"\n'
    )
    assert [d.id for d in load_settings(config).devices] == ["卧室门", "front door/main"]
    assert _errors(tmp_path, config.read_text().replace('id = "卧室门"', 'id = "a\\u0007b"')) == [
        "devices[0].id: expected 1 to 64 characters, no control characters, got 'a\\x07b'"
    ]
