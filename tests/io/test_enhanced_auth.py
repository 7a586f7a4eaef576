"""MQTT 5 enhanced authentication (section 4.12) with SCRAM-SHA-256, against a scripted broker that
implements the server side from RFC 5802/7677 (tests/scram_server.py). Mosquitto 2.0 has no SCRAM
(enhanced authentication there needs a plugin), so this is the real-broker-impossible case."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.lowlevel

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from tests.scram_server import ScramServer
from trio_mqtt import (
    AuthenticationError,
    ConnectionLostError,
    ConnectRefusedError,
    ProtocolVersion,
    ReasonCode,
    RemoteProtocolError,
    ScramAuthenticator,
)
from trio_mqtt.lowlevel import Auth, Connect, Disconnect, Packet, Publish

METHOD = "SCRAM-SHA-256"
CONTINUE, REAUTH = 0x18, 0x19


def auth_data(packet: Packet) -> bytes:
    props = getattr(packet, "properties", None)
    assert props is not None, packet
    assert props.authentication_method == METHOD, packet
    data = props.authentication_data
    assert isinstance(data, bytes)
    return data


async def scram_exchange(
    broker: ScriptedBroker, server: ScramServer, first: Packet, *, connect: bool
) -> bool:
    """Run the server side from the client's first message; end with CONNACK (connect) or
    AUTH 0x00 (re-authentication) on success, CONNACK 0x87 / DISCONNECT 0x87 on failure."""
    await broker.send(wire.auth(CONTINUE, METHOD, server.first(auth_data(first))))
    answer = await broker.expect(Auth)
    assert isinstance(answer, Auth)
    assert answer.reason_code is ReasonCode.CONTINUE_AUTHENTICATION
    ok, final = server.final(auth_data(answer))
    if connect:
        code = 0x00 if ok else 0x87
        await broker.send(wire.connack(code, properties=wire.auth_props(METHOD, final)))
    elif ok:
        await broker.send(wire.auth(0x00, METHOD, final))
    else:
        await broker.send(wire.frame(0xE0, b"\x87\x00"))  # DISCONNECT: not authorized
    return ok


async def connect_only(client: trio_mqtt.MQTTClient) -> None:
    """A block that does nothing: the test is about connecting."""


async def run(
    script: Callable[[ScriptedBroker], Awaitable[None]],
    body: Callable[[trio_mqtt.MQTTClient], Awaitable[None]],
    authenticator: ScramAuthenticator,
    **options: Any,
) -> Exception | None:
    """Run the client against ``script``; return what open_client raised (None: nothing)."""
    broker = ScriptedBroker(ProtocolVersion.V5)
    error: Exception | None = None
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script, broker)
            try:
                async with trio_mqtt.open_client(
                    transport_factory=broker.factory,
                    authenticator=authenticator,
                    reconnect=None,
                    **options,
                ) as client:
                    await body(client)
            except Exception as exc:
                error = exc
    return error


async def test_scram_connect_with_mutual_authentication() -> None:
    server = ScramServer("alice", "wonderland")
    seen: list[Packet] = []

    async def script(broker: ScriptedBroker) -> None:
        connect = await broker.expect(Connect)
        assert isinstance(connect, Connect)
        assert connect.properties.authentication_method == METHOD
        assert await scram_exchange(broker, server, connect, connect=True)
        publish = await broker.expect(Publish)
        seen.append(publish)
        await broker.send(wire.puback(getattr(publish, "packet_id", 0) or 0))
        seen.append(await broker.expect(Disconnect))

    async def body(client: trio_mqtt.MQTTClient) -> None:
        await client.publish("t", b"authenticated", qos=1)

    assert (
        await run(
            script, body, ScramAuthenticator(username="alice", password="wonderland")
        )
        is None
    )
    assert [type(p) for p in seen] == [Publish, Disconnect]


async def test_wrong_password_is_refused_and_not_retried() -> None:
    server = ScramServer("alice", "wonderland")
    attempts = 0

    async def script(broker: ScriptedBroker) -> None:
        nonlocal attempts
        attempts += 1
        connect = await broker.expect(Connect)
        assert not await scram_exchange(broker, server, connect, connect=True)

    error = await run(
        script,
        connect_only,
        ScramAuthenticator(username="alice", password="looking-glass"),
    )
    assert isinstance(error, ConnectRefusedError)
    assert error.reason_code is ReasonCode.NOT_AUTHORIZED
    assert attempts == 1


async def test_an_impostor_server_is_detected() -> None:
    """A server that does not know the password cannot produce the server signature: the client
    refuses the connection even though the server said CONNACK 0x00."""
    impostor = ScramServer("alice", "not-the-password")
    received: list[Packet] = []

    async def script(broker: ScriptedBroker) -> None:
        connect = await broker.expect(Connect)
        await broker.send(
            wire.auth(CONTINUE, METHOD, impostor.first(auth_data(connect)))
        )
        await broker.expect(Auth)
        # accept anyway, with a signature computed from the wrong password
        await broker.send(
            wire.connack(properties=wire.auth_props(METHOD, b"v=" + b"A" * 44))
        )
        while (packet := await broker.receive()) is not None:
            received.append(packet)

    error = await run(
        script,
        connect_only,
        ScramAuthenticator(username="alice", password="wonderland"),
    )
    assert isinstance(error, AuthenticationError)
    assert "does not verify" in str(error)
    assert received == [Disconnect(reason_code=ReasonCode.UNSPECIFIED_ERROR)]


async def test_reauthentication_on_a_live_connection() -> None:
    server = ScramServer("alice", "wonderland")
    exchanges = 0

    async def script(broker: ScriptedBroker) -> None:
        nonlocal exchanges
        connect = await broker.expect(Connect)
        exchanges += await scram_exchange(broker, server, connect, connect=True)
        for _ in range(2):
            start = await broker.expect(Auth)
            assert isinstance(start, Auth)
            assert start.reason_code is ReasonCode.RE_AUTHENTICATE  # [MQTT-4.12.1-1]
            exchanges += await scram_exchange(broker, server, start, connect=False)
        await broker.expect(Disconnect)

    async def body(client: trio_mqtt.MQTTClient) -> None:
        await client.reauthenticate()
        await client.reauthenticate()

    assert (
        await run(
            script, body, ScramAuthenticator(username="alice", password="wonderland")
        )
        is None
    )
    assert exchanges == 3


async def test_refused_reauthentication_ends_the_connection_with_the_reason() -> None:
    server = ScramServer("alice", "wonderland")

    async def script(broker: ScriptedBroker) -> None:
        connect = await broker.expect(Connect)
        await scram_exchange(broker, server, connect, connect=True)
        start = await broker.expect(Auth)
        server.password = "changed"  # the credentials were revoked meanwhile
        server.__attrs_post_init__()
        assert not await scram_exchange(broker, server, start, connect=False)

    error = await run(
        script,
        lambda client: client.reauthenticate(),
        ScramAuthenticator(username="alice", password="wonderland"),
    )
    assert isinstance(error, ConnectionLostError)
    assert error.reason_code is ReasonCode.NOT_AUTHORIZED


async def test_auth_with_another_method_is_a_protocol_error() -> None:
    received: list[Packet] = []

    async def script(broker: ScriptedBroker) -> None:
        await broker.expect(Connect)
        await broker.send(wire.auth(CONTINUE, "SCRAM-SHA-1", b"r=x"))  # [MQTT-4.12.0-5]
        while (packet := await broker.receive()) is not None:
            received.append(packet)

    error = await run(
        script,
        connect_only,
        ScramAuthenticator(username="alice", password="wonderland"),
    )
    assert isinstance(error, RemoteProtocolError)
    assert error.reason_code is ReasonCode.PROTOCOL_ERROR
    assert received == [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)]


async def test_authenticator_needs_mqtt5() -> None:
    with pytest.raises(ValueError, match="MQTT 5"):
        async with trio_mqtt.open_client(
            "mqtt://127.0.0.1:1",
            protocol=ProtocolVersion.V311,
            authenticator=ScramAuthenticator(username="a", password="b"),
        ):
            pass
