"""Broker behaviour Mosquitto cannot be made to show: refusals, negative acks, silence, abuse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from trio_mqtt import (
    ConnectionLostError,
    ConnectRefusedError,
    ProtocolVersion,
    PublishError,
    QoS,
    ReasonCode,
    RemoteProtocolError,
    SubscribeError,
)
from trio_mqtt.lowlevel import (
    Connect,
    Disconnect,
    PingReq,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    Subscribe,
    Unsubscribe,
)


async def _accept(broker: ScriptedBroker, connack: bytes = wire.connack()) -> Connect:
    connect = await broker.expect(Connect)
    await broker.send(connack)
    assert isinstance(connect, Connect)
    return connect


@asynccontextmanager
async def scripted_client(
    broker: ScriptedBroker, script: Callable[[], Awaitable[None]], **options: Any
) -> AsyncIterator[trio_mqtt.MQTTClient]:
    """Run ``script`` as the broker, then connect a client to it (one connection: no
    reconnecting unless the test asks)."""
    options.setdefault("reconnect", None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        async with trio_mqtt.open_client(
            transport_factory=broker.factory, **options
        ) as client:
            yield client


@pytest.fixture(params=["memory", "socket"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[ScriptedBroker]:
    """Both ways the link runs: over a stream (here a memory stream, as TLS and WebSocket),
    and over a plain socket (direct sends, the reader keeping the connection alive)."""
    broker = ScriptedBroker(socket=request.param == "socket")
    yield broker
    await broker.stream.aclose()


async def test_connack_refusal_v5(broker: ScriptedBroker) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            _accept,
            broker,
            wire.connack(0x86, properties=wire.props(wire.reason_string("nope"))),
        )
        with pytest.raises(ConnectRefusedError) as info:
            async with trio_mqtt.open_client(
                transport_factory=broker.factory, password="hunter2", username="u"
            ):
                pytest.fail("connected despite the refusal")
    assert info.value.reason_code is ReasonCode.BAD_USER_NAME_OR_PASSWORD
    assert info.value.reason_string == "nope"
    assert "bad user name or password" in str(info.value)
    assert "hunter2" not in str(info.value) + repr(info.value)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION),
        (2, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID),
        (3, ReasonCode.SERVER_UNAVAILABLE),
        (4, ReasonCode.BAD_USER_NAME_OR_PASSWORD),
        (5, ReasonCode.NOT_AUTHORIZED),
    ],
)
async def test_connack_refusal_v311(code: int, expected: ReasonCode) -> None:
    broker = ScriptedBroker(ProtocolVersion.V311)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_accept, broker, wire.connack(code, properties=None))
        with pytest.raises(ConnectRefusedError) as info:
            async with trio_mqtt.open_client(
                transport_factory=broker.factory, protocol=ProtocolVersion.V311
            ):
                pytest.fail("connected despite the refusal")
    assert info.value.reason_code is expected


async def test_no_connack_is_a_connect_error(
    broker: ScriptedBroker, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(trio_mqtt.ConnectError, match="within 3s"):
        async with trio_mqtt.open_client(
            transport_factory=broker.factory, connect_timeout=3
        ):
            pytest.fail("connected without CONNACK")
    assert trio.current_time() == pytest.approx(3)


@pytest.mark.parametrize(("qos", "answer"), [(1, wire.puback), (2, wire.pubrec)])
async def test_negative_publish_ack(
    broker: ScriptedBroker, qos: int, answer: object
) -> None:
    async def script() -> None:
        await _accept(broker)
        publish = await broker.expect(Publish)
        assert isinstance(publish, Publish)
        assert publish.packet_id is not None
        await broker.send(
            answer(
                publish.packet_id,
                0x87,
                wire.props(
                    wire.reason_string("no access"),
                    b"\x26" + wire.string("k") + wire.string("v"),
                ),
            )
        )  # type: ignore[operator]

    async with scripted_client(broker, script) as client:
        with pytest.raises(PublishError) as info:
            await client.publish("t", b"x", qos=qos)
    assert info.value.reason_code is ReasonCode.NOT_AUTHORIZED
    assert info.value.reason_string == "no access"
    assert info.value.user_properties == (("k", "v"),)
    assert "NOT_AUTHORIZED (0x87): no access" in str(info.value)


async def test_suback_refusal(broker: ScriptedBroker) -> None:
    async def script() -> None:
        await _accept(broker)
        subscribe = await broker.expect(Subscribe)
        assert isinstance(subscribe, Subscribe)
        await broker.send(wire.suback(subscribe.packet_id, 0x01, 0x8F))

    async with scripted_client(broker, script) as client:
        with pytest.raises(SubscribeError) as info:
            async with client.subscribe("ok/#", "bad", qos=1):
                pytest.fail("subscribed despite the refusal")
    assert info.value.reason_codes == (
        ReasonCode.GRANTED_QOS_1,
        ReasonCode.TOPIC_FILTER_INVALID,
    )
    assert info.value.reason_code is ReasonCode.TOPIC_FILTER_INVALID


async def test_silent_broker_detected_within_one_and_a_half_keepalives(
    broker: ScriptedBroker, autojump_clock: trio.testing.MockClock
) -> None:
    async def script() -> None:
        await _accept(broker)
        await broker.expect(PingReq)  # and then never answer
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        with (
            trio.fail_after(60),
            pytest.raises(ConnectionLostError, match="did not answer PINGREQ"),
        ):
            async with trio_mqtt.open_client(
                transport_factory=broker.factory, keepalive=10, reconnect=None
            ):
                await trio.sleep_forever()
        nursery.cancel_scope.cancel()
    assert trio.current_time() == pytest.approx(
        15
    )  # 10 s idle, then 5 s without PINGRESP


async def test_keepalive_pings_and_survives(
    broker: ScriptedBroker, autojump_clock: trio.testing.MockClock
) -> None:
    pings: list[float] = []

    async def script() -> None:
        await _accept(broker)
        while isinstance(await broker.receive(), PingReq):
            pings.append(trio.current_time())
            await broker.send(wire.PINGRESP)

    async with scripted_client(broker, script, keepalive=10):
        await trio.sleep(35)
    assert pings == [
        10,
        20,
        30,
    ]  # [MQTT-3.1.2-20] a PINGREQ whenever 10 s passed without sending


async def test_keepalive_goes_on_while_the_reader_waits_for_a_full_subscription(
    broker: ScriptedBroker, autojump_clock: trio.testing.MockClock
) -> None:
    """The application does not take its messages: the reader waits (backpressure) and the
    connection is still kept alive, a PINGREQ every 10 s ([MQTT-3.1.2-20]); nothing is lost."""
    pings: list[float] = []

    async def script() -> None:
        await _accept(broker)
        subscribe = await broker.expect(Subscribe)
        assert isinstance(subscribe, Subscribe)
        await broker.send(wire.suback(subscribe.packet_id, 0x00))
        for n in range(4):
            await broker.send(wire.publish("full/t", b"%d" % n))
        packet = await broker.receive()
        while isinstance(packet, PingReq):
            pings.append(trio.current_time())
            await broker.send(wire.PINGRESP)
            packet = await broker.receive()
        assert isinstance(packet, Unsubscribe), (packet, pings)
        await broker.send(wire.unsuback(packet.packet_id, 0x00))

    async with (
        scripted_client(broker, script, keepalive=10) as client,
        client.subscribe("full/#", buffer_size=1) as messages,
    ):
        await trio.sleep(35)
        payloads = [(await messages.receive()).payload for _ in range(4)]
    assert payloads == [b"0", b"1", b"2", b"3"]
    assert pings == [pytest.approx(10), pytest.approx(20), pytest.approx(30)]


async def test_server_keep_alive_is_honoured(
    broker: ScriptedBroker, autojump_clock: trio.testing.MockClock
) -> None:
    pinged = trio.Event()

    async def script() -> None:
        await _accept(
            broker, wire.connack(properties=wire.props(b"\x13" + wire.u16(4)))
        )  # Server Keep Alive 4
        await broker.expect(PingReq)
        pinged.set()
        await broker.send(wire.PINGRESP)
        await broker.expect(Disconnect)

    async with scripted_client(broker, script, keepalive=60):
        await pinged.wait()
        assert trio.current_time() == pytest.approx(
            4
        )  # [MQTT-3.2.2-21] the server's value wins


async def test_receive_maximum_flow_control(broker: ScriptedBroker) -> None:
    seen: list[int] = []

    async def script() -> None:
        await _accept(
            broker, wire.connack(properties=wire.props(b"\x21" + wire.u16(2)))
        )  # Receive Maximum 2
        for _ in range(5):
            publish = await broker.expect(Publish)
            assert isinstance(publish, Publish)
            assert publish.packet_id is not None
            seen.append(publish.packet_id)
            if len(seen) >= 2:
                # With 2 in flight the client must wait: nothing more may be queued on the stream now.
                await trio.testing.wait_all_tasks_blocked()
                assert not broker.pending
                await broker.send(wire.puback(seen[-2]))
        await broker.send(wire.puback(seen[-1]))

    results: list[trio_mqtt.PublishResult] = []

    async def publish(client: trio_mqtt.MQTTClient, i: int) -> None:
        results.append(await client.publish("t", bytes([i]), qos=1))

    async with (
        scripted_client(broker, script) as client,
        trio.open_nursery() as nursery,
    ):
        for i in range(5):
            nursery.start_soon(publish, client, i)
    assert len(results) == 5
    assert all(r.reason_code is ReasonCode.SUCCESS for r in results)


async def test_inbound_qos2_redelivery_is_not_delivered_twice(
    broker: ScriptedBroker,
) -> None:
    async def script() -> None:
        await _accept(broker)
        subscribe = await broker.expect(Subscribe)
        assert isinstance(subscribe, Subscribe)
        await broker.send(wire.suback(subscribe.packet_id, 0x02))
        await broker.send(wire.publish("q2", b"once", qos=2, packet_id=9))
        assert await broker.expect(PubRec) == PubRec(packet_id=9)
        await broker.send(
            wire.publish("q2", b"once", qos=2, packet_id=9, dup=True)
        )  # [MQTT-4.3.3-10]
        assert await broker.expect(PubRec) == PubRec(packet_id=9)
        await broker.send(wire.pubrel(9))
        assert await broker.expect(PubComp) == PubComp(packet_id=9)
        await broker.send(
            wire.publish("q2", b"next", qos=2, packet_id=9)
        )  # the id is free again
        assert await broker.expect(PubRec) == PubRec(packet_id=9)
        unsubscribe = await broker.expect(Unsubscribe)
        assert isinstance(unsubscribe, Unsubscribe)
        await broker.send(
            wire.frame(0xB0, wire.u16(unsubscribe.packet_id) + b"\x00\x00")
        )

    async with (
        scripted_client(broker, script) as client,
        client.subscribe("q2", qos=2) as messages,
    ):
        first = await messages.receive()
        second = await messages.receive()
    assert (first.payload, second.payload) == (b"once", b"next")


async def test_qos2_outbound_flow(broker: ScriptedBroker) -> None:
    async def script() -> None:
        await _accept(broker)
        publish = await broker.expect(Publish)
        assert isinstance(publish, Publish)
        assert publish.qos == QoS.EXACTLY_ONCE
        await broker.send(wire.pubrec(publish.packet_id or 0))
        assert await broker.expect(PubRel) == PubRel(packet_id=publish.packet_id or 0)
        await broker.send(wire.pubcomp(publish.packet_id or 0))

    async with scripted_client(broker, script) as client:
        result = await client.publish("t", b"x", qos=2)
    assert result.reason_code is ReasonCode.SUCCESS


async def test_puback_for_unknown_packet_id_is_a_protocol_error(
    broker: ScriptedBroker,
) -> None:
    async def script() -> None:
        await _accept(broker)
        await broker.send(wire.puback(4242))
        assert await broker.expect(Disconnect) == Disconnect(
            reason_code=ReasonCode.PROTOCOL_ERROR
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        with pytest.raises(
            RemoteProtocolError, match="PUBACK for packet id 4242"
        ) as info:
            async with trio_mqtt.open_client(
                transport_factory=broker.factory, reconnect=None
            ):
                await trio.sleep_forever()
    assert info.value.reason_code is ReasonCode.PROTOCOL_ERROR
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_broker_disconnect_surfaces_with_reason(broker: ScriptedBroker) -> None:
    """The broker's DISCONNECT: reason code, Reason String and User Properties, in order."""
    user = b"\x26" + wire.string("node") + wire.string("b-2")
    user += b"\x26" + wire.string("node") + wire.string("b-3")

    async def script() -> None:
        await _accept(broker)
        await broker.send(
            wire.frame(
                0xE0, b"\x8b" + wire.props(wire.reason_string("maintenance"), user)
            )
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        with pytest.raises(ConnectionLostError) as info:
            async with trio_mqtt.open_client(
                transport_factory=broker.factory, reconnect=None
            ):
                await trio.sleep_forever()
    assert info.value.reason_code is ReasonCode.SERVER_SHUTTING_DOWN
    assert "maintenance" in str(info.value)
    assert info.value.reason_string == "maintenance"
    assert info.value.user_properties == (("node", "b-2"), ("node", "b-3"))


async def test_cancelled_publish_keeps_the_session_consistent(
    broker: ScriptedBroker,
) -> None:
    async def script() -> None:
        await _accept(broker)
        first = await broker.expect(Publish)
        assert isinstance(first, Publish)
        await trio.testing.wait_all_tasks_blocked()
        await broker.send(
            wire.puback(first.packet_id or 0)
        )  # arrives after the caller gave up
        second = await broker.expect(Publish)
        assert isinstance(second, Publish)
        await broker.send(wire.puback(second.packet_id or 0))

    async with scripted_client(broker, script) as client:
        with trio.CancelScope() as scope:
            scope.cancel()  # cancelled at its first checkpoint after queueing: the message still goes out
            await client.publish("t", b"1", qos=1)
        result = await client.publish("t", b"2", qos=1)
        assert result.reason_code is ReasonCode.SUCCESS
        assert (
            len(client._supervisor.session.packet_ids) == 0
        )  # both ids released by their PUBACKs


async def test_inputs_a_user_gets_wrong_raise_at_the_call(
    broker: ScriptedBroker,
) -> None:
    """A wrong payload type, QoS or option fails at the call, naming what was wrong, and
    nothing reaches the wire for it (the broker sees only the DISCONNECT)."""
    seen: list[object] = []

    async def script() -> None:
        await _accept(broker)
        seen.append(await broker.receive())

    with trio.fail_after(5):
        async with scripted_client(broker, script) as client:
            with pytest.raises(TypeError, match="not int"):
                await client.publish("t", 42)  # type: ignore[arg-type]  # was: 42 NUL bytes
            with pytest.raises(TypeError, match="not NoneType"):
                await client.publish("t", None, qos=1)  # type: ignore[arg-type]
            for call in (
                lambda: client.publish("t", b"x", qos=3),
                lambda: client.subscribe("t", qos=3),
            ):
                with pytest.raises(ValueError, match="qos must be 0, 1 or 2, not 3"):
                    await call()  # type: ignore[operator]
            with pytest.raises(ValueError, match="shared subscription"):
                client.subscribe("$share/g/t", no_local=True)  # [MQTT-3.8.3-4]
    assert [type(p) for p in seen] == [Disconnect]


def test_the_library_logs_nothing_until_the_application_configures_logging() -> None:
    import subprocess
    import sys

    code = "import logging, trio_mqtt; logging.getLogger('trio_mqtt').warning('hello')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("capability", "filters", "codes"),
    [
        (
            b"\x2a\x00",
            ("$share/g/t",),
            (ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,),
        ),
        (
            b"\x28\x00",
            ("a/b", "a/+"),
            (
                ReasonCode.UNSPECIFIED_ERROR,
                ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
        ),
    ],
    ids=["shared", "wildcard"],
)
async def test_what_the_broker_does_not_support_is_refused_locally(
    broker: ScriptedBroker,
    capability: bytes,
    filters: tuple[str, ...],
    codes: tuple[ReasonCode, ...],
) -> None:
    """CONNACK said Shared (or Wildcard) Subscription Available = 0: subscribe() raises the
    reason code the broker would have used, and no SUBSCRIBE is sent (ejabberd answers one
    with DISCONNECT 0x9E; resubscribing after each reconnect looped forever)."""
    seen: list[object] = []

    async def script() -> None:
        await _accept(broker, wire.connack(properties=wire.props(capability)))
        seen.append(await broker.receive())

    with trio.fail_after(5):
        async with scripted_client(broker, script) as client:
            with pytest.raises(SubscribeError) as info:
                async with client.subscribe(*filters):
                    pass
    assert info.value.reason_codes == codes
    assert [type(p) for p in seen] == [Disconnect]


async def test_an_unsubscribe_the_broker_never_answers_is_reported(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Leaving a subscription block waits (shielded, bounded) for the UNSUBACK; when none
    comes the block still ends, and a warning says so instead of nothing (#14)."""
    broker = ScriptedBroker()
    got: list[object] = []

    async def script() -> None:
        await _accept(broker)
        subscribe = await broker.expect(Subscribe)
        await broker.send(wire.suback(subscribe.packet_id, 0))  # type: ignore[union-attr]
        got.append(await broker.receive())  # the UNSUBSCRIBE, never answered
        got.append(await broker.receive())  # then the DISCONNECT

    with trio.fail_after(60):
        async with scripted_client(broker, script, keepalive=0) as client:
            start = trio.current_time()
            async with client.subscribe("t"):
                pass
            waited = trio.current_time() - start
            assert 5 <= waited < 6  # bounded, not forever
    assert [type(p) for p in got] == [Unsubscribe, Disconnect]
    assert any("no UNSUBACK" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("refused_by", ["broker", "application"])
async def test_no_subscription_identifiers_to_a_broker_without_them(
    broker: ScriptedBroker, refused_by: str
) -> None:
    """CONNACK said Subscription Identifiers Available = 0 (section 3.2.2.3.12), or the
    application said ``subscription_identifiers=False``: no SUBSCRIBE carries one (the broker
    would answer with DISCONNECT 0xA1), and overlapping subscriptions are still told apart,
    by matching the topic locally."""
    subscribes: list[Subscribe] = []
    connack = (
        wire.connack(properties=wire.props(b"\x29\x00"))
        if refused_by == "broker"
        else wire.connack()
    )
    options = {"subscription_identifiers": False} if refused_by == "application" else {}

    async def script() -> None:
        await _accept(broker, connack)
        for _ in range(2):
            subscribe = await broker.expect(Subscribe)
            assert isinstance(subscribe, Subscribe)
            subscribes.append(subscribe)
            await broker.send(wire.suback(subscribe.packet_id, 0))
        await broker.send(wire.publish("a/b", b"both"))
        await broker.send(wire.publish("a/c", b"wide only"))
        while (packet := await broker.receive()) is not None:
            if isinstance(packet, Unsubscribe):
                await broker.send(wire.unsuback(packet.packet_id, 0))

    with trio.fail_after(5):
        async with (
            scripted_client(broker, script, **options) as client,
            client.subscribe("a/+") as wide,
            client.subscribe("a/b") as narrow,
        ):
            assert (await wide.receive()).payload == b"both"
            assert (await wide.receive()).payload == b"wide only"
            assert (await narrow.receive()).payload == b"both"
            with pytest.raises(trio.WouldBlock):
                narrow.receive_nowait()
    assert len(subscribes) == 2
    for subscribe in subscribes:
        assert subscribe.properties.subscription_identifiers == ()


async def test_connect_properties_and_response_information(
    broker: ScriptedBroker,
) -> None:
    """CONNECT carries the User Properties, Request Response Information = 1 and Request
    Problem Information = 0 asked for; the CONNACK's Response Information becomes the base
    of request()'s response topic (section 4.10.1)."""
    seen: list[object] = []
    connack = wire.connack(
        properties=wire.props(b"\x1a" + wire.string("replies/for/you"))
    )

    async def script() -> None:
        seen.append(await _accept(broker, connack))
        subscribe = await broker.expect(Subscribe)
        assert isinstance(subscribe, Subscribe)
        seen.append(subscribe)
        await broker.send(wire.suback(subscribe.packet_id, 1))
        request = await broker.expect(Publish)
        assert isinstance(request, Publish)
        seen.append(request)
        await broker.send(wire.puback(request.packet_id))  # type: ignore[arg-type]
        props = request.properties
        assert props.response_topic is not None
        assert props.correlation_data is not None
        await broker.send(
            wire.publish(
                props.response_topic, b"42", qos=0,
                properties=wire.props(b"\x09" + wire.binary(props.correlation_data)),
            )
        )  # fmt: skip
        while (packet := await broker.receive()) is not None:
            if isinstance(packet, Unsubscribe):
                await broker.send(wire.unsuback(packet.packet_id, 0))

    with trio.fail_after(5):
        async with scripted_client(
            broker, script, request_response_information=True,
            request_problem_information=False, user_properties=[("site", "plant-7")],
        ) as client:  # fmt: skip
            assert client.server.response_information == "replies/for/you"
            response = await client.request("svc/answer", b"?")
    assert response.payload == b"42"
    connect, subscribe, request = seen
    assert isinstance(connect, Connect)
    assert connect.properties.request_response_information is True
    assert connect.properties.request_problem_information is False
    assert connect.properties.user_properties == (("site", "plant-7"),)
    assert isinstance(subscribe, Subscribe)
    topic = subscribe.subscriptions[0].topic_filter
    assert topic.startswith("replies/for/you/")
    assert isinstance(request, Publish)
    assert request.properties.response_topic == topic
