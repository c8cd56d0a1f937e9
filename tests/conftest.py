from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto, Pki, make_pki, shipped_delivery_settings


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def platform_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """The community platform's broker: TLS + password."""
    broker = Mosquitto(tmp_path / "platform-broker", pki).start()
    yield broker
    broker.stop()


@pytest.fixture
def local_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """The home's own mosquitto: password, loopback only (no TLS, as on the Pi), keeping
    for the gateway what the shipped configuration keeps."""
    broker = Mosquitto(tmp_path / "local-broker", None, extra=shipped_delivery_settings()).start()
    yield broker
    broker.stop()
