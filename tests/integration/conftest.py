"""Real Mosquitto brokers started by the suite on free loopback ports.

Without a mosquitto binary these tests skip, unless TRIO_MQTT_REQUIRE_BROKER=1 (set by the test
command and CI), in which case they fail: a green run must have talked to a real broker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.mosquitto import BINARY, Mosquitto, TLSFiles, running_mosquitto


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def _require_binary() -> None:
    if BINARY is None:
        if os.environ.get("TRIO_MQTT_REQUIRE_BROKER") == "1":
            pytest.fail("mosquitto is not installed but TRIO_MQTT_REQUIRE_BROKER=1")
        pytest.skip(
            "mosquitto is not installed: `bash scripts/test` installs it; TRIO_MQTT_REQUIRE_BROKER=1 turns this skip into a failure"
        )


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A plain broker shared by the whole session."""
    _require_binary()
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    directory = tmp_path_factory.mktemp("tls")
    server = ca.issue_cert("localhost", "127.0.0.1")
    files = TLSFiles(
        ca_pem=directory / "ca.pem",
        cert_pem=directory / "server.pem",
        key_pem=directory / "server.key",
    )
    ca.cert_pem.write_to_path(str(files.ca_pem))
    server.cert_chain_pems[0].write_to_path(str(files.cert_pem))
    server.private_key_pem.write_to_path(str(files.key_pem))
    return files


@pytest.fixture(scope="session")
def mosquitto_tls(
    tls_files: TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mosquitto]:
    """A broker with a plain and a TLS listener (certificates from trustme)."""
    _require_binary()
    with running_mosquitto(
        tmp_path_factory.mktemp("mosquitto-tls"), tls=tls_files
    ) as broker:
        yield broker


@pytest.fixture(scope="session")
def mosquitto_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker that requires user name and password (alice / wonderland)."""
    _require_binary()
    with running_mosquitto(
        tmp_path_factory.mktemp("mosquitto-auth"), passwords={"alice": "wonderland"}
    ) as broker:
        yield broker


@pytest.fixture
def mosquitto_persistent(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of its own with persistence on, for tests that restart it."""
    _require_binary()
    with running_mosquitto(tmp_path, persistence=True) as broker:
        yield broker
