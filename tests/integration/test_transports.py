"""Every transport against a real broker: TCP, TLS and Unix sockets (Mosquitto), WebSocket and
WebSocket over TLS (ejabberd's mod_mqtt; Debian's Mosquitto has no WebSocket). A round trip at
each QoS, and a cut connection that resumes its session, over each one."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trustme

import trio_mqtt
from tests.chaos import persistent
from tests.ejabberd import PASSWORD, USERNAME, Ejabberd
from tests.integration.test_client import VERSIONS, unique
from tests.integration.test_resilience import FAST, next_change, publish_while_cut
from tests.mosquitto import Mosquitto, TLSFiles
from trio_mqtt import (
    Connected,
    ConnectError,
    ProtocolVersion,
    QoS,
    TLSConfig,
)


@attrs.frozen
class Route:
    """How to reach one broker over one transport: ``url(port)`` for the client (a proxy may
    stand in front of ``port``), plus the options that transport needs."""

    url: Callable[[int], str]
    port: int  # the broker's listening port behind the URL (0: not TCP)
    options: dict[str, Any]


TRANSPORTS = ["tcp", "tls", "ws", "wss"]


@pytest.fixture(params=TRANSPORTS)
def route(request: pytest.FixtureRequest, tls_files: TLSFiles) -> Route:
    trusted = TLSConfig(ca_file=tls_files.ca_pem)
    if request.param in ("tcp", "tls"):
        broker: Mosquitto = request.getfixturevalue("mosquitto_tls")
        if request.param == "tcp":
            return Route(lambda p: f"mqtt://127.0.0.1:{p}", broker.port, {})
        assert broker.tls_port is not None
        return Route(
            lambda p: f"mqtts://localhost:{p}", broker.tls_port, {"tls": trusted}
        )
    ejabberd: Ejabberd = request.getfixturevalue("ejabberd")
    login = {"username": USERNAME, "password": PASSWORD}
    if request.param == "ws":
        return Route(lambda p: f"ws://127.0.0.1:{p}/mqtt", ejabberd.ws_port, login)
    assert ejabberd.wss_port is not None
    return Route(
        lambda p: f"wss://localhost:{p}/mqtt",
        ejabberd.wss_port,
        {**login, "tls": trusted},
    )


async def round_trip(url: str, version: ProtocolVersion, **options: Any) -> None:
    topic = unique("transport")
    async with (
        trio_mqtt.open_client(url, protocol=version, **options) as subscriber,
        trio_mqtt.open_client(url, protocol=version, **options) as publisher,
        subscriber.subscribe(topic, qos=2) as messages,
    ):
        payloads = [
            b"q0",
            b"q1",
            b"q2",
            bytes(range(256)) * 300,
        ]  # the last spans frames
        for qos, payload in zip([0, 1, 2, 1], payloads, strict=True):
            await publisher.publish(topic, payload, qos=qos)
        received = [await messages.receive() for _ in payloads]
    assert [m.payload for m in received] == payloads
    assert [m.qos for m in received] == [QoS(0), QoS(1), QoS(2), QoS(1)]


@pytest.mark.parametrize("version", VERSIONS)
async def test_round_trip(route: Route, version: ProtocolVersion) -> None:
    with trio.fail_after(20):
        await round_trip(route.url(route.port), version, **route.options)


@pytest.mark.parametrize("version", VERSIONS)
async def test_cut_connection_resumes_its_session(
    route: Route, version: ProtocolVersion
) -> None:
    """A persistent subscriber behind a proxy loses its connection; what was published
    meanwhile arrives after the client reconnects by itself over the same transport."""
    with trio.fail_after(30):
        received, reconnects = await publish_while_cut(
            route.url, route.port, version, qos=1, count=10, **route.options
        )
    assert received == list(range(10))
    assert reconnects == 1


# -- Unix sockets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_unix_socket_round_trip_and_resumption(
    mosquitto_unix: Mosquitto, version: ProtocolVersion
) -> None:
    url = f"unix://{mosquitto_unix.unix_socket}"
    topic = unique("unix")
    with trio.fail_after(30):
        await round_trip(url, version)
        async with (
            trio_mqtt.open_client(
                url, client_id=unique("sub"), protocol=version, reconnect=FAST,
                **persistent(version),  # type: ignore[arg-type]
            ) as subscriber,
            subscriber.subscribe(topic, qos=1) as messages,
        ):  # fmt: skip
            with subscriber.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                await trio.to_thread.run_sync(mosquitto_unix.restart)
                back = await next_change(changes, Connected)
            assert isinstance(back, Connected)
            assert (
                back.session_present
            )  # the broker kept the session across its restart
            async with trio_mqtt.open_client(url, protocol=version) as publisher:
                await publisher.publish(topic, b"after", qos=1)
            assert (await messages.receive()).payload == b"after"


# -- TLS -------------------------------------------------------------------------------------------


async def test_tls_verifies_certificate_and_host_name(
    mosquitto_tls: Mosquitto, tls_files: TLSFiles, ca: trustme.CA
) -> None:
    port = mosquitto_tls.tls_port
    with trio.fail_after(10):
        # the system's trust store does not know the suite's CA
        with pytest.raises(ConnectError) as info:
            async with trio_mqtt.open_client(f"mqtts://localhost:{port}"):
                pytest.fail("connected to an untrusted server")
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        # trusted CA, but the certificate is not for this name
        with pytest.raises(ConnectError) as info:
            async with trio_mqtt.open_client(
                f"mqtts://127.0.0.1:{port}",
                tls=TLSConfig(
                    ca_file=tls_files.ca_pem, server_hostname="elsewhere.example"
                ),
            ):
                pytest.fail("connected despite a host name mismatch")
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert "elsewhere.example" in str(info.value.__cause__)
        # trusted through TLSConfig, and through an SSLContext used as given
        context = ssl.create_default_context()
        ca.configure_trust(context)
        for tls in (TLSConfig(ca_data=ca.cert_pem.bytes().decode()), context):
            async with trio_mqtt.open_client(
                f"mqtts://localhost:{port}", tls=tls
            ) as client:
                assert (await client.publish(unique("tls"), b"1", qos=1)).packet_id


async def test_insecure_skip_verify_is_explicit_and_logged(
    mosquitto_tls: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(10):
        async with trio_mqtt.open_client(
            f"mqtts://127.0.0.1:{mosquitto_tls.tls_port}",
            tls=TLSConfig(insecure_skip_verify=True),
        ) as client:
            assert (await client.publish(unique("insecure"), b"1", qos=1)).packet_id
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("verification is OFF" in r.getMessage() for r in warnings)


async def test_client_certificate_required_and_accepted(
    mosquitto_mtls: Mosquitto, tls_files: TLSFiles, client_cert: Path
) -> None:
    url = f"mqtts://localhost:{mosquitto_mtls.tls_port}"
    with trio.fail_after(10):
        with pytest.raises(ConnectError):
            async with trio_mqtt.open_client(
                url, tls=TLSConfig(ca_file=tls_files.ca_pem), reconnect=None
            ):
                pytest.fail("connected without the required client certificate")
        tls = TLSConfig(ca_file=tls_files.ca_pem, client_cert=client_cert)
        await round_trip(url, ProtocolVersion.V5, tls=tls)


def test_tls_files_are_checked_before_connecting(tmp_path: Path) -> None:
    config = TLSConfig(client_cert=tmp_path / "missing.pem")
    with pytest.raises(FileNotFoundError):
        config.build_context()
    with pytest.raises(ValueError, match="used as given"):
        TLSConfig(context=ssl.create_default_context(), alpn_protocols=["mqtt"])
    with pytest.raises(TypeError):
        TLSConfig(alpn_protocols="mqtt")  # type: ignore[arg-type]
    assert "s3cret" not in repr(TLSConfig(key_password="s3cret"))
