"""The evil-broker catalogue: every bad behaviour a broken or hostile broker can show, with the
reaction the spec asks of the client. Each case runs a real client against a scripted broker and
asserts: the typed exception (with its reason code), the DISCONNECT the client sent (MQTT 5), and
that everything ended within a bounded time with no task left behind.

The same catalogue is listed, with each reaction, in docs/transports.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from trio_mqtt import (
    ConnectError,
    ConnectionLostError,
    ConnectRefusedError,
    MalformedPacketError,
    MQTTError,
    ProtocolVersion,
    ReasonCode,
    RemoteProtocolError,
)
from trio_mqtt.lowlevel import Connect, Disconnect, Packet, Publish, Subscribe

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311
MALFORMED, PROTOCOL = ReasonCode.MALFORMED_PACKET, ReasonCode.PROTOCOL_ERROR

Script = Callable[[ScriptedBroker], Awaitable[None]]
Action = Callable[[trio_mqtt.MQTTClient], Awaitable[Any]]


async def _idle(client: trio_mqtt.MQTTClient) -> None:
    await trio.sleep_forever()


async def _subscribe(client: trio_mqtt.MQTTClient) -> None:
    async with client.subscribe("t"):
        await trio.sleep_forever()


def _publish(qos: int) -> Action:
    async def publish(client: trio_mqtt.MQTTClient) -> None:
        await client.publish("t", b"x", qos=qos)
        await trio.sleep_forever()

    return publish


@attrs.frozen
class Evil:
    """One bad behaviour: what the broker sends (after CONNACK unless ``before_connack``), what
    the client is doing meanwhile, and the expected exception and reason code."""

    name: str
    send: bytes | Script
    error: type[MQTTError]
    code: ReasonCode | None = (
        None  # the exception's reason code and the DISCONNECT's (MQTT 5)
    )
    before_connack: bool = False
    action: Action = _idle
    version: ProtocolVersion = V5
    options: dict[str, Any] = attrs.field(factory=dict)
    disconnect: bool = True  # whether the client should say DISCONNECT before closing


def _after(packet_type: type, reply: Callable[[Packet], bytes]) -> Script:
    """Wait for the client's ``packet_type``, then answer with ``reply(packet)``."""

    async def script(broker: ScriptedBroker) -> None:
        packet = await broker.expect(packet_type)
        await broker.send(reply(packet))

    return script


def _pid(packet: Packet) -> int:
    packet_id = getattr(packet, "packet_id", None)
    assert isinstance(packet_id, int)
    return packet_id


async def _eof_mid_packet(broker: ScriptedBroker) -> None:
    await broker.send(wire.publish("t", b"x" * 100)[:20])
    await broker.stream.aclose()


async def _flood(broker: ScriptedBroker) -> None:
    # 3 QoS 1 messages against our Receive Maximum of 2, in one write, so that none of them
    # can have been acknowledged when the third arrives
    await broker.send(
        b"".join(wire.publish("t", b"x", qos=1, packet_id=i) for i in (1, 2, 3))
    )


async def _trickle_connack(broker: ScriptedBroker) -> None:
    await broker.send(wire.connack()[:1])  # and never the rest: slowloris


CATALOGUE = [
    # -- before CONNACK --------------------------------------------------------------------
    Evil("garbage instead of CONNACK", b"\x00\x00", MalformedPacketError, MALFORMED, True),
    Evil("PUBLISH before CONNACK", wire.publish("t", b"x"), RemoteProtocolError, PROTOCOL, True),  # [MQTT-3.2.0-1]
    Evil("CONNACK with reserved flag bits", wire.frame(0x20, b"\x02\x00\x00"), MalformedPacketError, MALFORMED, True),  # [MQTT-3.2.2-1]
    Evil("CONNACK with an unknown reason code", wire.frame(0x20, b"\x00\x05\x00"), MalformedPacketError, MALFORMED, True),
    Evil("CONNACK Receive Maximum 0", wire.connack(properties=wire.props(b"\x21" + wire.u16(0))), RemoteProtocolError, PROTOCOL, True),  # [MQTT-3.2.2-?] section 3.2.2.3.3
    Evil("CONNACK Session Present after a clean start", wire.connack(session_present=True), RemoteProtocolError, PROTOCOL, True),  # [MQTT-3.2.2-4]
    Evil("CONNACK Maximum QoS 2", wire.connack(properties=wire.props(b"\x24\x02")), RemoteProtocolError, PROTOCOL, True),
    Evil("CONNACK with a PUBLISH-only property", wire.connack(properties=wire.props(b"\x01\x01")), MalformedPacketError, MALFORMED, True),
    Evil("CONNACK with a property twice", wire.connack(properties=wire.props(b"\x21\x00\x05", b"\x21\x00\x05")), RemoteProtocolError, PROTOCOL, True),  # [MQTT-2.2.2-?] section 2.2.2.2
    Evil("properties longer than the packet", wire.frame(0x20, b"\x00\x00\x09\x21"), MalformedPacketError, MALFORMED, True),
    Evil("remaining length of five bytes", b"\x20\xff\xff\xff\xff\x01", MalformedPacketError, MALFORMED, True),  # section 1.5.5
    Evil("silence instead of CONNACK", b"", ConnectError, None, True, options={"connect_timeout": 0.5}, disconnect=False),
    Evil("CONNACK one byte at a time, then nothing", _trickle_connack, ConnectError, None, True, options={"connect_timeout": 0.5}, disconnect=False),
    Evil("an MQTT 3.1.1 CONNACK to our v5 CONNECT (NATS, aedes)", wire.frame(0x20, b"\x00\x01"), ConnectRefusedError, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, True, disconnect=False),  # [MQTT-3.1.2-2]: the application can fall back to 3.1.1
    Evil("3.1.1 CONNACK with an invalid return code", wire.frame(0x20, b"\x00\x06"), MalformedPacketError, MALFORMED, True, version=V311, disconnect=False),
    # -- after CONNACK -----------------------------------------------------------------------
    Evil("a second CONNACK", wire.connack(), RemoteProtocolError, PROTOCOL),
    Evil("CONNECT from the server", wire.frame(0x10, b"\x00"), MalformedPacketError, MALFORMED),
    Evil("SUBSCRIBE from the server", wire.frame(0x82, wire.u16(1) + b"\x00" + wire.string("t") + b"\x00"), RemoteProtocolError, PROTOCOL),
    Evil("PINGREQ from the server", b"\xc0\x00", RemoteProtocolError, PROTOCOL),
    Evil("reserved packet type 0", b"\x00\x00", MalformedPacketError, MALFORMED),
    Evil("AUTH in MQTT 3.1.1", b"\xf0\x00", MalformedPacketError, MALFORMED, version=V311, disconnect=False),
    Evil("AUTH without an authentication method", wire.frame(0xF0, b"\x18\x00"), RemoteProtocolError, PROTOCOL),  # [MQTT-4.12.0-6]
    Evil("PUBACK for an unknown packet id", wire.puback(4242), RemoteProtocolError, PROTOCOL),
    Evil("PUBREC for an unknown packet id", wire.pubrec(4242), RemoteProtocolError, PROTOCOL),
    Evil("PUBCOMP for an unknown packet id", wire.pubcomp(4242), RemoteProtocolError, PROTOCOL),
    Evil("SUBACK for an unknown packet id", wire.suback(4242, 0), RemoteProtocolError, PROTOCOL),
    Evil("UNSUBACK for an unknown packet id", wire.unsuback(4242, 0), RemoteProtocolError, PROTOCOL),
    Evil("SUBACK with the wrong number of reason codes", _after(Subscribe, lambda p: wire.suback(_pid(p), 0, 0)), RemoteProtocolError, PROTOCOL, action=_subscribe),
    Evil("PUBACK answering a QoS 2 PUBLISH", _after(Publish, lambda p: wire.puback(_pid(p))), RemoteProtocolError, PROTOCOL, action=_publish(2)),
    Evil("PUBLISH with QoS 3", wire.frame(0x36, wire.string("t") + wire.u16(1) + b"\x00"), MalformedPacketError, MALFORMED),  # [MQTT-3.3.1-4]
    Evil("PUBLISH QoS 1 with packet id 0", wire.publish("t", b"x", qos=1, packet_id=0), RemoteProtocolError, PROTOCOL),  # [MQTT-2.2.1-3]
    Evil("PUBLISH to a wildcard topic", wire.publish("a/+", b"x"), RemoteProtocolError, PROTOCOL),  # [MQTT-3.3.2-2]
    Evil("PUBLISH with invalid UTF-8 in the topic", wire.frame(0x30, wire.u16(2) + b"\xc3\x28" + b"\x00"), MalformedPacketError, MALFORMED),  # [MQTT-1.5.4-1]
    Evil("PUBLISH with U+0000 in the topic", wire.publish("a\x00b", b"x"), MalformedPacketError, MALFORMED),  # [MQTT-1.5.4-2]
    Evil("PUBLISH with a topic alias above our maximum (16)", wire.publish("t", b"x", properties=wire.props(b"\x23" + wire.u16(17))), RemoteProtocolError, ReasonCode.TOPIC_ALIAS_INVALID),  # [MQTT-3.3.2-10]
    Evil("PUBLISH with topic alias 0", wire.publish("t", b"x", properties=wire.props(b"\x23" + wire.u16(0))), RemoteProtocolError, PROTOCOL),  # [MQTT-3.3.2-8]
    Evil("PUBLISH with an empty topic and no alias", wire.publish("", b"x"), RemoteProtocolError, PROTOCOL),  # [MQTT-3.3.2-1]
    Evil("PUBLISH with a subscription identifier 0", wire.publish("t", b"x", properties=wire.props(b"\x0b\x00")), RemoteProtocolError, PROTOCOL),
    Evil("more QoS 1 messages than our Receive Maximum", _flood, RemoteProtocolError, ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, options={"receive_maximum": 2, "buffer_size": 0}),  # [MQTT-3.3.4-9]
    Evil("a packet above our Maximum Packet Size", wire.publish("t", b"x" * 2000), RemoteProtocolError, ReasonCode.PACKET_TOO_LARGE, options={"max_packet_size": 1024}),  # [MQTT-3.1.2-24]
    Evil("a 256 MB length header (never buffered)", b"\x30\xff\xff\xff\x7f", RemoteProtocolError, ReasonCode.PACKET_TOO_LARGE),
    Evil("DISCONNECT with an unknown reason code", wire.frame(0xE0, b"\x05"), MalformedPacketError, MALFORMED),
    Evil("end of stream in the middle of a packet", _eof_mid_packet, ConnectionLostError, None, disconnect=False),
]  # fmt: skip


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda case: case.name)
async def test_hostile_broker(case: Evil) -> None:
    broker = ScriptedBroker(case.version)
    received: list[Packet] = []

    async def script() -> None:
        connect = await broker.expect(Connect)
        assert isinstance(connect, Connect)
        if not case.before_connack:
            await broker.send(
                wire.connack(properties=None if case.version is V311 else b"\x00")
            )
        if isinstance(case.send, bytes):
            await broker.send(case.send)
        else:
            await case.send(broker)
        # everything the client says until it closes
        with trio.move_on_after(3), contextlib.suppress(trio.ClosedResourceError):
            while (packet := await broker.receive()) is not None:
                received.append(packet)

    with trio.fail_after(5):  # bounded: no hang, whatever the broker does
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            with pytest.raises(case.error) as info:
                async with trio_mqtt.open_client(
                    transport_factory=broker.factory,
                    protocol=case.version,
                    reconnect=None,
                    **case.options,
                ) as client:
                    await case.action(client)
            nursery.cancel_scope.deadline = trio.current_time() + 3
    error = info.value
    assert not isinstance(error, BaseExceptionGroup)
    if case.code is not None:
        assert getattr(error, "reason_code", None) is case.code, str(error)
    disconnects = [p for p in received if isinstance(p, Disconnect)]
    if case.disconnect and case.version is V5:
        assert disconnects, f"no DISCONNECT after {case.name}"
        expected = case.code if case.code is not None else disconnects[0].reason_code
        assert disconnects[0].reason_code is expected
    else:
        assert all(
            d.reason_code is ReasonCode.NORMAL_DISCONNECTION for d in disconnects
        )


def test_the_catalogue_is_big_enough() -> None:
    assert len({case.name for case in CATALOGUE}) == len(CATALOGUE) >= 25


async def test_never_sends_more_than_the_brokers_maximum_packet_size() -> None:
    """[MQTT-3.1.2-24]: a PUBLISH too big for the broker raises to the caller, is not sent, and
    the connection goes on."""
    broker = ScriptedBroker(V5)
    received: list[Packet] = []

    async def script() -> None:
        await broker.expect(Connect)
        await broker.send(
            wire.connack(properties=wire.props(b"\x27" + (200).to_bytes(4, "big")))
        )
        while (packet := await broker.receive()) is not None:
            received.append(packet)
            if isinstance(packet, Publish) and packet.qos:
                await broker.send(wire.puback(packet.packet_id or 0))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            async with trio_mqtt.open_client(
                transport_factory=broker.factory, reconnect=None
            ) as client:
                with pytest.raises(trio_mqtt.LocalProtocolError) as info:
                    await client.publish("t", b"x" * 300, qos=1)
                assert info.value.reason_code is ReasonCode.PACKET_TOO_LARGE
                assert "Maximum Packet Size of 200" in str(info.value)
                await client.publish("t", b"small", qos=1)  # still connected
    publishes = [p for p in received if isinstance(p, Publish)]
    assert [p.payload for p in publishes] == [b"small"]
