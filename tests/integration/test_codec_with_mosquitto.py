"""The codec speaks to a real Mosquitto over plain trio sockets, in each broker configuration."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from tests.mosquitto import Mosquitto
from trio_mqtt import ProtocolVersion, QoS, ReasonCode
from trio_mqtt.lowlevel import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    encode_packet,
)

VERSIONS = [ProtocolVersion.V5, ProtocolVersion.V311]


class RawSession:
    def __init__(self, stream: trio.abc.Stream, version: ProtocolVersion) -> None:
        self.stream = stream
        self.version = version
        self.reader = PacketReader(version=version)
        self.pending: list[Packet] = []

    async def send(self, packet: Packet) -> None:
        await self.stream.send_all(encode_packet(packet, self.version))

    async def receive(self) -> Packet:
        while not self.pending:
            data = await self.stream.receive_some()
            assert data, "the broker closed the connection"
            self.pending += self.reader.feed(data)
        return self.pending.pop(0)


async def _connect(
    stream: trio.abc.Stream, version: ProtocolVersion, client_id: str, **kw: object
) -> tuple[RawSession, ConnAck]:
    session = RawSession(stream, version)
    await session.send(Connect(protocol_version=version, client_id=client_id, **kw))  # type: ignore[arg-type]
    connack = await session.receive()
    assert isinstance(connack, ConnAck)
    return session, connack


async def _publish_to_self(session: RawSession, topic: str) -> None:
    await session.send(
        Subscribe(
            packet_id=1,
            subscriptions=(
                SubscriptionRequest(topic_filter=topic, qos=QoS.AT_LEAST_ONCE),
            ),
        )
    )
    assert await session.receive() == SubAck(
        packet_id=1, reason_codes=(ReasonCode.GRANTED_QOS_1,)
    )
    payload = bytes(range(256))
    await session.send(
        Publish(topic=topic, payload=payload, qos=QoS.AT_LEAST_ONCE, packet_id=2)
    )
    received = [await session.receive(), await session.receive()]
    assert PubAck(packet_id=2) in received
    echoed = next(p for p in received if isinstance(p, Publish))
    assert (echoed.topic, echoed.payload, echoed.qos) == (
        topic,
        payload,
        QoS.AT_LEAST_ONCE,
    )
    assert echoed.packet_id is not None
    await session.send(PubAck(packet_id=echoed.packet_id))
    await session.send(PingReq())
    assert await session.receive() == PingResp()


@pytest.mark.parametrize("version", VERSIONS)
async def test_plain(mosquitto: Mosquitto, version: ProtocolVersion) -> None:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", mosquitto.port)
        async with stream:
            session, connack = await _connect(stream, version, f"raw-{version.name}")
            assert connack.reason_code is ReasonCode.SUCCESS
            assert connack.session_present is False
            await _publish_to_self(session, f"raw/{version.name}/self")
            await session.send(Disconnect())


@pytest.mark.parametrize("version", VERSIONS)
async def test_tls(
    mosquitto_tls: Mosquitto, ca: trustme.CA, version: ProtocolVersion
) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert mosquitto_tls.tls_port is not None
    with trio.fail_after(10):
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", mosquitto_tls.tls_port, ssl_context=context
        )
        async with stream:
            session, connack = await _connect(stream, version, f"tls-{version.name}")
            assert connack.reason_code is ReasonCode.SUCCESS
            await _publish_to_self(session, f"tls/{version.name}")


@pytest.mark.parametrize("version", VERSIONS)
async def test_auth(mosquitto_auth: Mosquitto, version: ProtocolVersion) -> None:
    with trio.fail_after(10):
        async with await trio.open_tcp_stream(
            "127.0.0.1", mosquitto_auth.port
        ) as stream:
            _, refused = await _connect(
                stream, version, "auth-bad", username="alice", password=b"wrong"
            )
        # Mosquitto 2.0.11 answers a wrong password with "not authorized": 3.1.1 return code 5
        # and MQTT 5 0x87 both arrive as the same ReasonCode.
        assert refused.reason_code is ReasonCode.NOT_AUTHORIZED
        async with await trio.open_tcp_stream(
            "127.0.0.1", mosquitto_auth.port
        ) as stream:
            _, accepted = await _connect(
                stream, version, "auth-good", username="alice", password=b"wonderland"
            )
        assert accepted.reason_code is ReasonCode.SUCCESS


@pytest.mark.parametrize("version", VERSIONS)
async def test_persistence_survives_restart(
    mosquitto_persistent: Mosquitto, version: ProtocolVersion
) -> None:
    from trio_mqtt.lowlevel import Properties

    props = (
        Properties(session_expiry_interval=3600)
        if version is ProtocolVersion.V5
        else Properties()
    )
    with trio.fail_after(15):
        async with await trio.open_tcp_stream(
            "127.0.0.1", mosquitto_persistent.port
        ) as stream:
            session, first = await _connect(
                stream, version, "persist", clean_start=False, properties=props
            )
            await session.send(
                Subscribe(
                    packet_id=1,
                    subscriptions=(
                        SubscriptionRequest(topic_filter="p/#", qos=QoS.AT_LEAST_ONCE),
                    ),
                )
            )
            assert isinstance(await session.receive(), SubAck)
            await session.send(Disconnect())
        mosquitto_persistent.restart()  # SIGTERM: mosquitto saves its database on the way out
        async with await trio.open_tcp_stream(
            "127.0.0.1", mosquitto_persistent.port
        ) as stream:
            _, second = await _connect(
                stream, version, "persist", clean_start=False, properties=props
            )
    assert first.session_present is False
    assert second.session_present is True
