"""Real Mosquitto brokers started by the suite on free loopback ports.

Without a mosquitto binary these tests skip, unless TRIO_MQTT_REQUIRE_BROKER=1 (set by the test
command and CI), in which case they fail: a green run must have talked to a real broker.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.ejabberd import BINARY as ejabberd_binary, Ejabberd, running_ejabberd
from tests.mosquitto import BINARY, Mosquitto, TLSFiles, running_mosquitto
from tests.nats import (
    BINARY as nats_binary,
    NatsCluster,
    NatsServer,
    running_nats,
    running_nats_cluster,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def _require_binary(name: str = "mosquitto", binary: str | None = BINARY) -> None:
    """Skip when the broker is missing (a bare `pytest` on a machine without it); fail instead
    under `bash scripts/test` and CI, which install it and set TRIO_MQTT_REQUIRE_BROKER=1."""
    if binary is None:
        if os.environ.get("TRIO_MQTT_REQUIRE_BROKER") == "1":
            pytest.fail(f"{name} is not installed but TRIO_MQTT_REQUIRE_BROKER=1")
        pytest.skip(
            f"{name} is not installed: `bash scripts/test` installs it; TRIO_MQTT_REQUIRE_BROKER=1 turns this skip into a failure"
        )


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A plain broker shared by the whole session."""
    _require_binary()
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="session")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """nats-server's MQTT 3.1.1 (it refuses QoS 2 by closing the connection)."""
    _require_binary("nats-server", nats_binary)
    with running_nats(tmp_path_factory.mktemp("nats")) as broker:
        yield broker


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A fresh three-node nats-server cluster for the test (its nodes get killed)."""
    _require_binary("nats-server", nats_binary)
    with running_nats_cluster(tmp_path) as cluster:
        yield cluster


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


@pytest.fixture(scope="session")
def client_cert(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client certificate and its key (one PEM file) issued by the suite's CA."""
    path = tmp_path_factory.mktemp("client-cert") / "client.pem"
    ca.issue_cert("client.example").private_key_and_cert_chain_pem.write_to_path(
        str(path)
    )
    return path


@pytest.fixture(scope="session")
def mosquitto_mtls(
    tls_files: TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mosquitto]:
    """A broker whose TLS listener requires a client certificate from the suite's CA."""
    _require_binary()
    with running_mosquitto(
        tmp_path_factory.mktemp("mosquitto-mtls"),
        tls=tls_files,
        require_certificate=True,
    ) as broker:
        yield broker


@pytest.fixture
def mosquitto_unix(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of its own with a Unix socket listener and persistence, for restarts."""
    _require_binary()
    with running_mosquitto(tmp_path, persistence=True, unix_socket=True) as broker:
        yield broker


@pytest.fixture(scope="session")
def ejabberd(ca: trustme.CA) -> Iterator[Ejabberd]:
    """ejabberd's mod_mqtt: MQTT over TCP, WebSocket and WebSocket over TLS (our CA, 2 days)."""
    _require_binary("ejabberd", ejabberd_binary)
    now = datetime.datetime.now(datetime.UTC)
    cert = ca.issue_cert(
        "localhost",
        "127.0.0.1",
        not_before=now - datetime.timedelta(hours=1),
        not_after=now + datetime.timedelta(days=2),
    )
    with running_ejabberd(
        certificate=cert.private_key_and_cert_chain_pem.bytes()
    ) as broker:
        yield broker


@pytest.fixture(scope="session")
def mosquitto_tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker with tight MQTT 5 limits in its CONNACK: Receive Maximum 2, Maximum QoS 1,
    Retain Available 0, Maximum Packet Size 256, Topic Alias Maximum 3, Server Keep Alive 30."""
    _require_binary()
    with running_mosquitto(
        tmp_path_factory.mktemp("mosquitto-tight"),
        extra="\n".join(
            [
                "max_inflight_messages 2",
                "max_qos 1",
                "retain_available false",
                "max_packet_size 256",
                "max_topic_alias 3",
                "max_keepalive 30",
            ]
        ),
    ) as broker:
        yield broker


@pytest.fixture(scope="session")
def mosquitto_acl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """alice may publish to ``ok/#`` only; MQTT 5 gets PUBACK 0x87 for anything else."""
    workdir = tmp_path_factory.mktemp("mosquitto-acl")
    acl = Path(workdir) / "acl"
    acl.write_text("user alice\ntopic readwrite ok/#\n")
    with running_mosquitto(
        workdir, passwords={"alice": "wonderland"}, extra=f"acl_file {acl}"
    ) as broker:
        yield broker
