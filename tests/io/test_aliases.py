"""Topic aliases where a real broker cannot show them: aliases the broker sets on what it
sends us (Mosquitto 2.0.11 and ejabberd never do), and a resend after a reconnect (scripted
brokers; the outbound side against Mosquitto is in tests/integration/test_topic_aliases.py)."""

from __future__ import annotations

import pytest
import trio

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from tests.io.test_scripted_broker import _accept, broker, scripted_client
from trio_mqtt import Properties, ReasonCode, RemoteProtocolError
from trio_mqtt.lowlevel import Connect, Disconnect, Publish, Subscribe, Unsubscribe

ALIAS = b"\x23"  # the Topic Alias property
__all__ = ["broker"]  # the fixture, both ways the link runs


async def _serve_subscribe(broker: ScriptedBroker) -> None:
    subscribe = await broker.expect(Subscribe)
    assert isinstance(subscribe, Subscribe)
    await broker.send(wire.suback(subscribe.packet_id, 0))


async def _answer_until_gone(broker: ScriptedBroker) -> list[object]:
    seen = []
    while (packet := await broker.receive()) is not None:
        seen.append(packet)
        if isinstance(packet, Unsubscribe):
            await broker.send(wire.unsuback(packet.packet_id, 0))
    return seen


async def test_aliases_the_broker_sets_are_resolved(broker: ScriptedBroker) -> None:
    """CONNECT offers Topic Alias Maximum 16 (the default); the broker sets alias 16 with a
    topic, then sends the alias alone: both messages carry the topic."""
    connects: list[Connect] = []

    async def script() -> None:
        connects.append(await _accept(broker))
        await _serve_subscribe(broker)
        await broker.send(
            wire.publish(
                "long/topic", b"1", properties=wire.props(ALIAS + wire.u16(16))
            )
        )
        await broker.send(
            wire.publish("", b"2", properties=wire.props(ALIAS + wire.u16(16)))
        )
        await _answer_until_gone(broker)

    with trio.fail_after(5):
        async with (
            scripted_client(broker, script) as client,
            client.subscribe("long/#") as messages,
        ):
            first, second = await messages.receive(), await messages.receive()
    assert (first.topic, first.payload) == ("long/topic", b"1")
    assert (second.topic, second.payload) == ("long/topic", b"2")
    assert connects[0].properties.topic_alias_maximum == 16


async def test_no_aliases_offered_means_none_accepted(broker: ScriptedBroker) -> None:
    """``topic_alias_maximum=0``: CONNECT offers none, and an alias from the broker is a
    protocol error (DISCONNECT 0x94, [MQTT-3.2.2-17]'s mirror for the client)."""
    connects: list[Connect] = []
    after: list[object] = []

    async def script() -> None:
        connects.append(await _accept(broker))
        await _serve_subscribe(broker)
        await broker.send(
            wire.publish("t", b"x", properties=wire.props(ALIAS + wire.u16(1)))
        )
        after.extend(await _answer_until_gone(broker))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            with pytest.raises(RemoteProtocolError) as caught:
                async with (
                    trio_mqtt.open_client(
                        transport_factory=broker.factory, topic_alias_maximum=0,
                        reconnect=None,
                    ) as client,
                    client.subscribe("#") as messages,
                ):  # fmt: skip
                    await messages.receive()
    assert caught.value.reason_code is ReasonCode.TOPIC_ALIAS_INVALID
    assert connects[0].properties.topic_alias_maximum is None
    assert [type(p) for p in after] == [Disconnect]


async def test_a_resend_after_a_reconnect_carries_the_full_topic() -> None:
    """Aliases live as long as their connection ([MQTT-3.3.2-10]): a QoS 1 PUBLISH first sent
    as an alias alone is resent on the next connection with its topic and no alias."""
    first, second = ScriptedBroker(), ScriptedBroker()
    streams = iter([first, second])
    seen: dict[str, list[Publish]] = {"first": [], "second": []}
    tam = wire.props(b"\x22" + wire.u16(5))  # Topic Alias Maximum 5

    async def factory() -> trio.abc.Stream:
        return next(streams).client_stream

    async def play_first() -> None:
        await first.expect(Connect)
        await first.send(wire.connack(properties=tam))
        for _ in range(2):
            packet = await first.expect(Publish)
            assert isinstance(packet, Publish)
            seen["first"].append(packet)
        await first.stream.aclose()  # no PUBACK: both are resent

    async def play_second() -> None:
        await second.expect(Connect)
        await second.send(wire.connack(session_present=True, properties=tam))
        while len(seen["second"]) < 2:
            packet = await second.expect(Publish)
            assert isinstance(packet, Publish)
            seen["second"].append(packet)
            await second.send(wire.puback(packet.packet_id))  # type: ignore[arg-type]
        await _answer_until_gone(second)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(play_first)
            nursery.start_soon(play_second)
            async with (
                trio_mqtt.open_client(
                    transport_factory=factory, client_id="aliased", clean_start=False,
                    session_expiry=60, topic_aliases=True,
                    reconnect=trio_mqtt.ReconnectPolicy(initial_delay=0.01),
                ) as client,
                trio.open_nursery() as publishers,
            ):  # fmt: skip
                for payload in (b"1", b"2"):
                    publishers.start_soon(
                        lambda p=payload: client.publish("a/long/topic", p, qos=1)
                    )
            nursery.cancel_scope.cancel()
    assert [(p.topic, p.properties.topic_alias) for p in seen["first"]] == [
        ("a/long/topic", 1),
        ("", 1),
    ]
    assert [(p.topic, p.properties.topic_alias, p.dup) for p in seen["second"]] == [
        ("a/long/topic", None, True),
        ("a/long/topic", None, True),
    ]


async def test_a_hand_made_alias_is_refused(broker: ScriptedBroker) -> None:
    async def script() -> None:
        await _accept(broker)
        await _answer_until_gone(broker)

    with trio.fail_after(5):
        async with scripted_client(broker, script) as client:
            with pytest.raises(ValueError, match="topic_aliases=True"):
                await client.publish("t", b"x", properties=Properties(topic_alias=1))
            with pytest.raises(ValueError, match="topic alias"):
                await client.publish("", b"x")
