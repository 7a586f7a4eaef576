"""Lifecycle edges a real broker cannot be made to show on demand (scripted broker)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from tests.io.test_scripted_broker import _accept
from trio_mqtt import (
    ConnectionLostError,
    ProtocolVersion,
    QoS,
    ReasonCode,
    RemoteProtocolError,
    SQLiteSessionStore,
)
from trio_mqtt.lowlevel import (
    Connect,
    Disconnect,
    PacketReader,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    Subscribe,
    Unsubscribe,
)


async def test_new_work_waits_while_a_protocol_error_is_flushed() -> None:
    """After a protocol violation the client flushes a DISCONNECT (up to a second, here to a
    broker that reads nothing) before the link ends; a publish made meanwhile waits for the
    next connection like any publish while offline, instead of raising LocalProtocolError
    ("the connection is closed, not connected")."""
    broker = ScriptedBroker(socket=True, send_buffer=4096)
    violate = trio.Event()
    outcomes: list[object] = []

    async def script() -> None:
        await _accept(broker)
        await violate.wait()
        await broker.send(wire.suback(77, 0))  # a SUBACK for nothing asked: a violation
        await trio.sleep_forever()  # reads nothing more: the DISCONNECT cannot leave

    async def publish(payload: bytes, qos: QoS) -> None:
        try:
            await client.publish("t", payload, qos=qos)
            outcomes.append("published")
        except Exception as exc:
            outcomes.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            with pytest.raises(RemoteProtocolError):
                async with trio_mqtt.open_client(
                    transport_factory=broker.factory, keepalive=0, reconnect=None
                ) as client:
                    nursery.start_soon(publish, b"x" * 1_000_000, QoS.AT_MOST_ONCE)
                    await trio.testing.wait_all_tasks_blocked()  # the socket is full
                    violate.set()
                    await trio.testing.wait_all_tasks_blocked()  # the DISCONNECT waits
                    nursery.start_soon(publish, b"during the flush", QoS.AT_LEAST_ONCE)
                    await trio.testing.wait_all_tasks_blocked()
                    assert outcomes == []  # waiting, not failed
                    await trio.sleep_forever()
            nursery.cancel_scope.cancel()  # the script
    await broker.stream.aclose()
    # without reconnecting, both then fail with the connection's error
    assert [type(o) for o in outcomes] == [RemoteProtocolError, RemoteProtocolError], (
        outcomes
    )


@pytest.fixture(
    params=[
        (stream, version)
        for stream in ("memory", "socket")
        for version in (ProtocolVersion.V5, ProtocolVersion.V311)
    ],
    ids=lambda p: f"{p[0]}-{p[1].name}",
)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[ScriptedBroker]:
    """Both ways the link runs (a stream, as TLS and WebSocket; a plain socket), and both
    protocol versions."""
    stream, version = request.param
    broker = ScriptedBroker(version, socket=stream == "socket")
    yield broker
    await broker.stream.aclose()


@pytest.mark.parametrize("activity", ["idle", "qos0", "qos1", "subscribed"])
async def test_a_silent_broker_is_detected_whatever_the_application_does(
    broker: ScriptedBroker, autojump_clock: trio.testing.MockClock, activity: str
) -> None:
    """Keep alive 10 s. The broker reads everything but goes silent at t=20 (after streaming
    messages to a subscriber until then). Whether the application is idle or keeps sending,
    the client pings once nothing arrived for a keep alive interval and gives up when the
    PINGRESP is overdue: 1.5 x keep alive after the last packet received. Before,
    a client that kept publishing never pinged and never noticed."""
    silent_from = 20.0
    last_sent = 0.0  # by the broker: CONNACK, or the last message

    version = broker.reader.version
    v5 = version is ProtocolVersion.V5

    async def script() -> None:
        nonlocal last_sent
        await _accept(broker, wire.connack(properties=b"\x00" if v5 else None))
        if activity == "subscribed":
            subscribe = await broker.expect(Subscribe)
            assert isinstance(subscribe, Subscribe)
            await broker.send(wire.suback(subscribe.packet_id, 1, v5=v5))
            n = 0
            while trio.current_time() < silent_from:
                n += 1
                await broker.send(wire.publish("t", b"m", qos=1, packet_id=n, v5=v5))
                last_sent = trio.current_time()
                await broker.expect(PubAck)
                await trio.sleep(1)
        while await broker.receive() is not None:
            pass  # reads on, answers nothing: a black hole

    async def keep_busy(client: trio_mqtt.MQTTClient, nursery: trio.Nursery) -> None:
        while True:
            if activity == "qos0":
                await client.publish("t", b"x")
            elif activity == "qos1":  # each waits for a PUBACK that never comes
                nursery.start_soon(functools.partial(client.publish, "t", b"x", qos=1))
            await trio.sleep(0.5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        with (
            trio.fail_after(100),  # virtual seconds
            pytest.raises(ConnectionLostError, match="did not answer PINGREQ"),
        ):
            async with (
                trio_mqtt.open_client(
                    transport_factory=broker.factory,
                    keepalive=10,
                    reconnect=None,
                    protocol=version,
                ) as client,
                trio.open_nursery() as tasks,
            ):
                if activity == "subscribed":
                    tasks.start_soon(subscribed, client)
                else:
                    tasks.start_soon(keep_busy, client, tasks)
                await trio.sleep_forever()
        nursery.cancel_scope.cancel()
    assert trio.current_time() == pytest.approx(last_sent + 15)


async def subscribed(client: trio_mqtt.MQTTClient) -> None:
    async with client.subscribe("t", qos=1) as messages:
        async for _ in messages:
            pass


@pytest.mark.parametrize("version", [ProtocolVersion.V5, ProtocolVersion.V311])
async def test_session_present_after_a_clean_start_closes_the_connection(
    version: ProtocolVersion,
) -> None:
    """[MQTT-3.2.2-4]: the client has no session state (it asked for a clean start), so a
    CONNACK with Session Present = 1 ends the connection (MQTT 5: DISCONNECT 0x82)."""
    broker = ScriptedBroker(version)
    v5 = version is ProtocolVersion.V5
    seen: list[object] = []

    async def script() -> None:
        connect = await broker.expect(Connect)
        assert isinstance(connect, Connect)
        assert connect.clean_start
        await broker.send(
            wire.connack(session_present=True, properties=b"\x00" if v5 else None)
        )
        seen.append(await broker.receive())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            with pytest.raises(RemoteProtocolError, match="clean start"):
                async with trio_mqtt.open_client(
                    transport_factory=broker.factory, protocol=version, reconnect=None
                ):
                    pytest.fail("connected")
    if v5:
        assert seen == [Disconnect(reason_code=ReasonCode.PROTOCOL_ERROR)]
    else:
        assert seen == [None]  # 3.1.1: the connection is closed
    await broker.stream.aclose()


@pytest.mark.parametrize("misbehaviour", ["close", "violate"])
async def test_a_broker_that_drops_every_connection_is_not_hammered(
    autojump_clock: trio.testing.MockClock, misbehaviour: str
) -> None:
    """A broker that accepts CONNECT and at once closes, or breaks the protocol: every lost
    connection lived a few milliseconds, so none resets the backoff, which keeps growing
    from the initial delay (0.1 s, doubling). It made a connection every few milliseconds:
    110-130 in 6 s (paho-mqtt: 7)."""
    connections: list[float] = []

    async def serve(stream: trio.abc.Stream) -> None:
        broker = PacketReader(version=ProtocolVersion.V5)
        while not broker.feed(await stream.receive_some()):
            pass  # until CONNECT
        await stream.send_all(wire.connack())
        if misbehaviour == "violate":
            await stream.send_all(wire.suback(99, 0))
        await stream.aclose()

    async with trio.open_nursery() as nursery:

        async def factory() -> trio.abc.Stream:
            connections.append(trio.current_time())
            client, server = trio.testing.memory_stream_pair()
            nursery.start_soon(serve, server)
            return client

        with trio.move_on_after(6):
            async with trio_mqtt.open_client(transport_factory=factory):
                await trio.sleep_forever()
        nursery.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(connections)]
    assert min(gaps) >= 0.1 - 1e-9  # never sooner than the initial delay (virtual time)
    assert len(connections) <= 12, len(
        connections
    )  # the bounds: 0.1, 0.2, 0.4 ... 3.2 s: about 7


async def test_a_completed_qos2_flow_resent_after_a_restart_is_not_delivered_again(
    tmp_path: Path,
) -> None:
    """A broker that re-sends a QoS 2 PUBLISH after its PUBREL (Mosquitto 2.0.11 after a
    restart; section 4.3.3 forbids it) to a new process of the same session: the session
    store remembers the completed flow and the fingerprint of its message, so the resend is
    answered with PUBREC and not delivered a second time. Before, that memory was not
    journaled, and the message was delivered twice."""
    path = tmp_path / "session.db"
    received: list[bytes] = []

    async def run(
        script: Callable[[ScriptedBroker], Awaitable[None]], wanted: int
    ) -> None:
        broker = ScriptedBroker()
        done = trio.Event()

        async def play() -> None:
            await script(broker)
            done.set()
            while packet := await broker.receive():  # the client leaves: answer it
                if isinstance(packet, Unsubscribe):
                    await broker.send(wire.unsuback(packet.packet_id, 0))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(play)
            async with (
                trio_mqtt.open_client(
                    transport_factory=broker.factory, client_id="keeper",
                    clean_start=False, session_expiry=600,
                    session_store=SQLiteSessionStore(path),
                ) as client,
                client.subscribe("t", qos=2) as messages,
            ):  # fmt: skip
                for _ in range(wanted):
                    received.append((await messages.receive()).payload)
                await done.wait()  # the broker's side of the flows is over
        await broker.stream.aclose()

    async def first(broker: ScriptedBroker) -> None:
        await _accept(broker)
        subscribe = await broker.expect(Subscribe)
        assert isinstance(subscribe, Subscribe)
        await broker.send(wire.suback(subscribe.packet_id, 2))
        await broker.send(wire.publish("t", b"once", qos=2, packet_id=5))
        await broker.expect(PubRec)
        await broker.send(wire.pubrel(5))
        await broker.expect(PubComp)

    async def second(broker: ScriptedBroker) -> None:
        await _accept(broker, wire.connack(session_present=True))
        await broker.send(wire.publish("t", b"once", qos=2, packet_id=5, dup=True))
        assert await expect(broker, PubRec) == PubRec(packet_id=5)  # not delivered
        await broker.send(wire.pubrel(5))
        await expect(broker, PubComp)
        await broker.send(wire.publish("t", b"next", qos=2, packet_id=6))
        await expect(broker, PubRec)

    async def expect(broker: ScriptedBroker, cls: type) -> object:
        """The next packet of type ``cls``; the app's SUBSCRIBE may come first: SUBACK."""
        while isinstance(packet := await broker.receive(), Subscribe):
            await broker.send(wire.suback(packet.packet_id, 2))
        assert isinstance(packet, cls), packet
        return packet

    with trio.fail_after(10):
        await run(first, 1)
        await run(second, 1)
    assert received == [b"once", b"next"]


async def test_a_broker_that_always_overruns_the_receive_maximum_does_not_starve_delivery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Mosquitto 2.0.11 can send more unacknowledged messages than the Receive Maximum we
    announce. This broker sends its whole backlog at once on every connection. The client
    ends each such connection with DISCONNECT 0x93 (section 3.3.4), but only after handling
    the batch, so the acknowledgements of what it already has go out first and every
    connection makes progress. Before, it failed at the excess packet, acknowledged
    nothing, and the same batch overran the next connection, forever."""
    backlog = {n: b"%d" % n for n in range(1, 11)}
    sent_once: set[int] = set()
    disconnects: list[ReasonCode] = []
    connections = 0
    all_acknowledged = trio.Event()

    async def serve(stream: trio.abc.Stream) -> None:
        nonlocal connections
        connections += 1
        reader = PacketReader(version=ProtocolVersion.V5)
        pending: list[object] = []

        async def receive() -> object:
            while not pending:
                data = await stream.receive_some()
                if not data:
                    return None
                pending.extend(reader.feed(data))
            return pending.pop(0)

        assert isinstance(await receive(), Connect)
        await stream.send_all(wire.connack(session_present=connections > 1))
        if connections == 1:
            subscribe = await receive()
            assert isinstance(subscribe, Subscribe)
            await stream.send_all(wire.suback(subscribe.packet_id, 1))
        await stream.send_all(
            b"".join(
                wire.publish("t", payload, qos=1, packet_id=n, dup=n in sent_once)
                for n, payload in backlog.items()
            )
        )
        sent_once.update(backlog)
        while (packet := await receive()) is not None:
            if isinstance(packet, PubAck):
                backlog.pop(packet.packet_id, None)
                if not backlog:
                    all_acknowledged.set()
            elif isinstance(packet, Disconnect):
                disconnects.append(packet.reason_code)
        await stream.aclose()

    got: set[bytes] = set()
    with trio.fail_after(60):  # virtual seconds
        async with trio.open_nursery() as nursery:

            async def factory() -> trio.abc.Stream:
                client, server = trio.testing.memory_stream_pair()
                nursery.start_soon(serve, server)
                return client

            async with (
                trio_mqtt.open_client(
                    transport_factory=factory, client_id="overrun", receive_maximum=3,
                    clean_start=False, session_expiry=60,
                ) as client,
                client.subscribe("t", qos=1) as messages,
            ):  # fmt: skip
                while len(got) < 10:
                    got.add((await messages.receive()).payload)
                await all_acknowledged.wait()
            nursery.cancel_scope.cancel()
    assert got == {b"%d" % n for n in range(1, 11)}
    # the first connection delivered the whole batch, then ended with 0x93; the next one
    # acknowledged what the application had taken (and overran again, and so on)
    assert disconnects[0] is ReasonCode.RECEIVE_MAXIMUM_EXCEEDED
    assert 2 <= connections <= 4, (disconnects, connections)


async def test_a_qos2_publish_whose_pubrel_a_lost_session_ends_resolves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """QoS 2: PUBREC came, our PUBREL was in flight, the connection was lost, and the next
    CONNACK has no session: the broker owned the message since PUBREC, so the flow ends
    there and publish() returns. That ending is the first event after CONNACK, which the
    link's reader handed to the wrong place: publish() waited forever."""
    first, second = ScriptedBroker(), ScriptedBroker()
    streams = iter([first, second])

    async def factory() -> trio.abc.Stream:
        return next(streams).client_stream

    async def play_first() -> None:
        await _accept(first)
        publish = await first.expect(Publish)
        await first.send(wire.pubrec(publish.packet_id))  # type: ignore[attr-defined]
        await first.expect(PubRel)
        await first.stream.aclose()  # no PUBCOMP

    async def play_second() -> None:
        await _accept(second)  # session_present = 0
        while await second.receive() is not None:
            pass

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(play_first)
            nursery.start_soon(play_second)
            async with trio_mqtt.open_client(
                transport_factory=factory,
                reconnect=trio_mqtt.ReconnectPolicy(initial_delay=0.1),
            ) as client:
                result = await client.publish("t", b"x", qos=2)
            nursery.cancel_scope.cancel()
    assert result.reason_code is ReasonCode.SUCCESS


@pytest.mark.parametrize("where", ["awaiting CONNACK", "waiting to retry"])
async def test_cancelled_while_opening_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, where: str
) -> None:
    """The first connection is made by the client's own task while ``async with`` waits for
    it (#19: a plain task and an event, no ``nursery.start()``). A cancellation of the caller
    meanwhile, at CONNACK or between attempts, is caught by the caller's scope like any other:
    no ExceptionGroup, and the socket closed."""
    broker = ScriptedBroker(socket=True)
    connects = 0

    async def script() -> None:
        nonlocal connects
        await broker.expect(Connect)
        connects += 1
        if where == "waiting to retry":
            await broker.send(wire.connack(ReasonCode.SERVER_UNAVAILABLE))
        await trio.sleep_forever()  # awaiting CONNACK: none comes

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        with trio.move_on_after(5) as scope:
            async with trio_mqtt.open_client(
                transport_factory=broker.factory, connect_timeout=60,
                reconnect=trio_mqtt.ReconnectPolicy(
                    retry_first_connect=True, initial_delay=30
                ),
            ):  # fmt: skip
                pytest.fail("connected")
        assert scope.cancelled_caught
        assert connects == 1
        assert await broker.stream.receive_some() == b""  # the client closed its end
        nursery.cancel_scope.cancel()
    await broker.stream.aclose()


async def test_a_refused_first_connection_raises_bare() -> None:
    """What ended the client's own task before it connected reaches the caller bare, from
    ``async with``: one ConnectRefusedError, not a group, and the block does not run."""
    broker = ScriptedBroker(socket=True)

    async def script() -> None:
        await broker.expect(Connect)
        await broker.send(wire.connack(ReasonCode.NOT_AUTHORIZED))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        with trio.fail_after(5), pytest.raises(trio_mqtt.ConnectRefusedError) as info:
            async with trio_mqtt.open_client(transport_factory=broker.factory):
                pytest.fail("the block ran")
    await broker.stream.aclose()
    assert info.value.reason_code is ReasonCode.NOT_AUTHORIZED
