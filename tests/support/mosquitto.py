"""A real mosquitto for tests: TLS and passwords like production, on a free loopback port,
started as a child process and stopped by its PID."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.mqtt import make_client
from gateway.settings import BrokerSettings

USER = "eldergate"
PASSWORD = "correct-horse-battery"
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_ADMIN = "dynsec-admin"
# An ACL entry of the dynamic-security plugin: (acltype, topic, allow), acltype one of
# subscribeLiteral, subscribePattern, publishClientSend, publishClientReceive, ...
DynsecAcl = tuple[str, str, bool]


def free_ports(n: int) -> list[int]:
    """Hold every socket until all are chosen, so the same port cannot come back twice."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path  # a CA that did not sign the server: "wrong CA"


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    days = "2"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        days,
        "-subj",
        "/CN=eldergate test CA",
        cwd=folder,
    )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-days",
        days,
        "-subj",
        "/CN=someone else",
        cwd=folder,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
        cwd=folder,
    )
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        days,
        "-extfile",
        "san.ext",
        cwd=folder,
    )
    return Pki(
        folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "other.pem"
    )


SHIPPED_LOCAL_CONF = Path(__file__).resolve().parents[2] / "config" / "mosquitto-local.conf"
DELIVERY_KEYS = ("queue_qos0_messages", "max_queued_messages")


def shipped_delivery_settings(path: Path = SHIPPED_LOCAL_CONF) -> list[str]:
    """The lines of the home broker's shipped configuration that decide what it keeps for
    the gateway while it is away, so that tests run the home broker as installed."""
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip().split(" ")[0] in DELIVERY_KEYS
    ]


class Mosquitto:
    def __init__(
        self,
        folder: Path,
        pki: Pki | None,
        port: int | None = None,
        acl: str | None = None,
        extra: Sequence[str] = (),
        dynsec: Sequence[DynsecAcl] | None = None,
        dynsec_defaults: Mapping[str, bool] | None = None,
    ) -> None:
        """``acl``: the lines of a mosquitto ACL file for the one user (anything it does not
        allow is denied), e.g. ``"topic write zigbee2mqtt/#"``; ``extra``: more lines of
        configuration (:func:`shipped_delivery_settings`).

        ``dynsec``: the user is kept by the dynamic-security plugin instead of the password
        file, with these ACL entries (the first that matches decides; what none matches is
        allowed, unless ``dynsec_defaults`` says otherwise, e.g. ``{"subscribe": False}``).
        mosquitto 2.0's ``acl_file`` never refuses a subscription (it grants one it denies,
        then delivers nothing on it); the plugin refuses it (SUBACK 0x87 for MQTT 5, 0x80 for
        3.1.1), as many brokers do. Its settings can be changed while the broker runs
        (:meth:`dynsec_command`)."""
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is not installed: run ./scripts/setup")
        self.folder = folder
        self.pki = pki
        self.port = port or free_ports(1)[0]
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.password_file = folder / "password.txt"  # the client's secret, as in production
        self.password_file.write_text(PASSWORD + "\n")
        passwd = folder / "passwd"
        subprocess.run(
            ["mosquitto_passwd", "-c", "-b", str(passwd), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        lines = [
            "user root",
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence true",
            f"persistence_location {folder}/",
            "autosave_interval 1",
            "autosave_on_changes true",
            f"log_dest file {folder}/mosquitto.log",
            "max_queued_messages 100000",
            f"listener {self.port} 127.0.0.1",
        ]
        if dynsec is None:
            lines.append(f"password_file {passwd}")
        else:
            (folder / "dynsec.json").write_text(
                json.dumps(_dynsec_config(dynsec, dynsec_defaults or {}))
            )
            lines += [f"plugin {DYNSEC_PLUGIN}", f"plugin_opt_config_file {folder}/dynsec.json"]
        lines += extra
        if acl is not None:
            (folder / "acl").write_text(f"user {USER}\n{acl}\n")
            lines.append(f"acl_file {folder}/acl")
        if pki is not None:
            lines += [
                f"cafile {pki.ca}",
                f"certfile {pki.server_cert}",
                f"keyfile {pki.server_key}",
            ]
        (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def settings(self, **overrides: object) -> dict[str, object]:
        base: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "password_file": str(self.password_file),
        }
        if self.pki is not None:
            base["ca_file"] = str(self.pki.ca)
        base.update(overrides)
        return base

    def broker_settings(self, **overrides: object) -> BrokerSettings:
        return BrokerSettings(**self.settings(**overrides))  # type: ignore[arg-type]

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err} {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.005)  # waiting for a child process to bind, not for simulated time
        raise RuntimeError("mosquitto did not start listening")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        # mosquitto 2.0 installs its signal handlers just before it sets its run flag, so a
        # SIGTERM landing between the two (a broker stopped right after it started listening,
        # on a busy machine) is forgotten and the broker runs on: the signal is sent again.
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def dynsec_command(self, command: dict[str, Any]) -> None:
        """Change the dynamic-security plugin's settings while the broker runs (its
        ``$CONTROL`` API), e.g. ``{"command": "setDefaultACLAccess", "acls": [...]}``."""
        admin = make_client(self.broker_settings(username=DYNSEC_ADMIN), DYNSEC_ADMIN)
        async with asyncio.timeout(10), admin as client:
            await client.subscribe(f"{DYNSEC_TOPIC}/response", qos=1)
            await client.publish(DYNSEC_TOPIC, json.dumps({"commands": [command]}), qos=1)
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                (response,) = json.loads(message.payload)["responses"]
                if "error" in response:
                    raise RuntimeError(f"dynamic security: {response['error']}")
                return


def _dynsec_config(acls: Sequence[DynsecAcl], defaults: Mapping[str, bool]) -> dict[str, Any]:
    """The plugin's file: the one user with a role holding ``acls``, and an administrator of
    the plugin's own (a change to a role disconnects its clients, and the answer with them)."""

    def client(username: str, role: str) -> dict[str, Any]:
        salt = os.urandom(12)  # the password hashed as the plugin does: PBKDF2-SHA512
        digest = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, 101)
        return {
            "username": username,
            "password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(),
            "iterations": 101,
            "roles": [{"rolename": role}],
        }

    def role(name: str, entries: Sequence[DynsecAcl]) -> dict[str, Any]:
        return {
            "rolename": name,
            "acls": [  # the higher priority is checked first
                {"acltype": kind, "topic": topic, "allow": allow, "priority": -i}
                for i, (kind, topic, allow) in enumerate(entries)
            ],
        }

    own = [
        (kind, f"{DYNSEC_TOPIC}/#", True)
        for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
    ]
    kinds = ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe")
    return {
        "clients": [client(USER, "test"), client(DYNSEC_ADMIN, "admin")],
        "roles": [role("test", acls), role("admin", own)],
        "defaultACLAccess": {**dict.fromkeys(kinds, True), **defaults},
    }
