"""Poison requests: a request the broker answers by ending the connection, every time, fails
to its caller after a few connections, and the client goes on without it (scripted brokers,
one per connection; a real one, nats-server, is in tests/integration/test_brokers.py).

Before, the session resent such a request after every reconnect, forever: against RabbitMQ,
which answers a QoS 2 PUBLISH with PUBACK, 180 reconnects in 10 s while ``publish()`` never
returned.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from trio_mqtt import ProtocolVersion, PublishError, ReasonCode, SubscribeError
from trio_mqtt._sansio._poison import STRIKES
from trio_mqtt.lowlevel import (
    Connect,
    Disconnect,
    Packet,
    PingReq,
    Publish,
    PubRel,
    Subscribe,
    Unsubscribe,
)

V5, V311 = ProtocolVersion.V5, ProtocolVersion.V311
both_versions = pytest.mark.parametrize("version", [V5, V311], ids=["v5", "v3.1.1"])
# poison_after=0: these tests count connections; the time window has tests of its own
POLICY = trio_mqtt.ReconnectPolicy(initial_delay=0.05, max_delay=1, poison_after=0)


@attrs.define
class Behaviour:
    """How the scripted broker answers; each field may be changed while the test runs."""

    #: answer a QoS 2 PUBLISH with PUBACK, as RabbitMQ 3.10 does
    qos2_as_puback: bool = False
    #: close the connection on a SUBSCRIBE to one of these filters
    closes_on: frozenset[str] = frozenset()
    #: close the connection on a QoS 1 PUBLISH (a clustered broker electing leaders)
    closes_on_publish: bool = False
    #: what to do right after CONNACK: "" (nothing), "close", "shutdown" (DISCONNECT 0x8B, server shutting down),
    #: "blackhole" (read and answer nothing)
    after_connack: str = ""


@attrs.define
class Brokers:
    """A scripted broker for every connection the client makes, all playing ``behaviour``;
    ``seen`` has, per connection, the packets the client sent."""

    version: ProtocolVersion
    behaviour: Behaviour
    nursery: trio.Nursery
    seen: list[list[Packet]] = attrs.Factory(list)
    current: ScriptedBroker | None = None
    _changed: trio.Event = attrs.Factory(trio.Event)

    async def factory(self) -> trio.abc.Stream:
        broker = self.current = ScriptedBroker(self.version)
        self.seen.append([])
        self._change()
        self.nursery.start_soon(self._play, broker, self.seen[-1])
        return broker.client_stream

    def _change(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds; checked at each connection and packet."""
        while not condition():
            await self._changed.wait()

    async def cut(self) -> None:
        """Close the current connection, from the broker's side."""
        assert self.current is not None
        await self.current.stream.aclose()

    def sent(self, kind: type, **fields: object) -> list[int]:
        """On which connections (0-based) the client sent a ``kind`` packet with ``fields``."""
        return [
            number
            for number, packets in enumerate(self.seen)
            for packet in packets
            if isinstance(packet, kind)
            and all(getattr(packet, k) == v for k, v in fields.items())
        ]

    async def _play(self, broker: ScriptedBroker, log: list[Packet]) -> None:
        v5 = self.version is V5
        behaviour = self.behaviour
        try:
            log.append(await broker.expect(Connect))
            await broker.send(wire.connack(properties=b"\x00" if v5 else None))
            if behaviour.after_connack == "close":
                return
            if behaviour.after_connack == "shutdown" and v5:
                await broker.send(wire.frame(0xE0, bytes([0x8B, 0])))
                return
            while (packet := await broker.receive()) is not None:
                log.append(packet)
                self._change()
                if behaviour.after_connack == "blackhole":
                    continue
                if isinstance(packet, Publish) and packet.qos == 1:
                    if behaviour.closes_on_publish:
                        return
                    await broker.send(wire.puback(packet.packet_id))
                elif isinstance(packet, Publish) and packet.qos == 2:
                    if behaviour.qos2_as_puback:
                        await broker.send(wire.puback(packet.packet_id))
                    else:
                        await broker.send(wire.pubrec(packet.packet_id))
                elif isinstance(packet, PubRel):
                    await broker.send(wire.pubcomp(packet.packet_id))
                elif isinstance(packet, Subscribe):
                    filters = {s.topic_filter for s in packet.subscriptions}
                    if filters & behaviour.closes_on:
                        return
                    codes = [s.qos for s in packet.subscriptions]
                    await broker.send(wire.suback(packet.packet_id, *codes, v5=v5))
                elif isinstance(packet, Unsubscribe):
                    codes = [0] * len(packet.topic_filters) if v5 else []
                    await broker.send(wire.unsuback(packet.packet_id, *codes, v5=v5))
                elif isinstance(packet, PingReq):
                    await broker.send(wire.frame(0xD0, b""))
                elif isinstance(packet, Disconnect):
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await broker.stream.aclose()


@asynccontextmanager
async def client_and_brokers(
    version: ProtocolVersion,
    behaviour: Behaviour,
    reconnect: trio_mqtt.ReconnectPolicy = POLICY,
    **options: object,
) -> AsyncIterator[tuple[trio_mqtt.MQTTClient, Brokers]]:
    async with trio.open_nursery() as nursery:
        brokers = Brokers(version, behaviour, nursery)
        async with trio_mqtt.open_client(
            transport_factory=brokers.factory, protocol=version, reconnect=reconnect,
            **options,  # type: ignore[arg-type]
        ) as client:  # fmt: skip
            yield client, brokers
        nursery.cancel_scope.cancel()


@both_versions
async def test_a_qos2_publish_answered_with_puback_fails_and_the_client_goes_on(
    autojump_clock: trio.testing.MockClock, version: ProtocolVersion
) -> None:
    """RabbitMQ's answer to QoS 2: PUBACK. A protocol error each time (the client closes the
    connection, [MQTT-4.13.1-1]); the second time the same PUBLISH is named, the publish
    fails with PublishError (0x82) instead of being resent forever; then a QoS 1 publish is
    acknowledged on the next connection."""
    behaviour = Behaviour(qos2_as_puback=True)
    async with client_and_brokers(version, behaviour) as (client, brokers):
        with trio.fail_after(30), pytest.raises(PublishError) as caught:
            await client.publish("t", b"poison", qos=2)
        assert caught.value.reason_code is ReasonCode.PROTOCOL_ERROR
        assert "each time this PUBLISH was sent" in str(caught.value)
        assert isinstance(caught.value.__cause__, trio_mqtt.RemoteProtocolError)
        sent_on = brokers.sent(Publish, payload=b"poison")
        assert sent_on == [0, 1]  # NAMED_STRIKES connections, then never again
        with trio.fail_after(30):
            result = await client.publish("t", b"fine", qos=1)
        assert result.packet_id is not None
        assert brokers.sent(Publish, payload=b"fine") == [2]
        assert brokers.sent(Publish, payload=b"poison") == [0, 1]


@both_versions
async def test_a_subscribe_the_broker_closes_on_fails_and_the_client_goes_on(
    autojump_clock: trio.testing.MockClock, version: ProtocolVersion
) -> None:
    """A broker that closes the connection on a SUBSCRIBE (no reason given): after STRIKES
    connections with it the oldest request in flight, subscribe() raises SubscribeError."""
    behaviour = Behaviour(closes_on=frozenset({"bad/#"}))
    async with client_and_brokers(version, behaviour) as (client, brokers):
        with trio.fail_after(30), pytest.raises(SubscribeError) as caught:
            async with client.subscribe("bad/#"):
                pass
        assert caught.value.reason_codes == (ReasonCode.UNSPECIFIED_ERROR,)
        assert _subscribed(brokers, "bad/#") == [0, 1, 2]
        with trio.fail_after(30):
            async with client.subscribe("good/#"):
                await client.publish("good/1", b"x", qos=1)
        assert len(brokers.seen) == 4


@both_versions
async def test_a_renewed_subscription_that_is_poison_ends_its_iteration(
    autojump_clock: trio.testing.MockClock, version: ProtocolVersion
) -> None:
    """After a reconnect without the session the client renews each subscription; when the
    broker now closes on one, that subscription's iteration raises SubscribeError (nobody
    awaits the renewal) and the others are renewed and go on."""
    behaviour = Behaviour()
    async with (
        client_and_brokers(version, behaviour) as (client, brokers),
        client.subscribe("bad/#") as doomed,
        client.subscribe("good/#"),
    ):
        behaviour.closes_on = frozenset({"bad/#"})
        with trio.fail_after(30):
            await brokers.cut()  # the client reconnects and renews both
            with pytest.raises(SubscribeError) as caught:
                async for _ in doomed:
                    pass
            assert "each time this SUBSCRIBE was sent" in str(caught.value)
            await client.publish("good/1", b"still", qos=1)
        # the first, then STRIKES renewals, then never again
        assert _subscribed(brokers, "bad/#") == [0, 1, 2, 3]
        assert _subscribed(brokers, "good/#")[-1] == len(brokers.seen) - 1


def _subscribed(brokers: Brokers, topic_filter: str) -> list[int]:
    """On which connections the client sent a SUBSCRIBE to ``topic_filter``."""
    return [
        number
        for number, packets in enumerate(brokers.seen)
        for packet in packets
        if isinstance(packet, Subscribe)
        and any(s.topic_filter == topic_filter for s in packet.subscriptions)
    ]


@both_versions
async def test_an_abandoned_poison_publish_is_dropped_from_the_session(
    autojump_clock: trio.testing.MockClock, version: ProtocolVersion
) -> None:
    """The caller of a poison publish gave up (cancelled) before it failed: the session still
    stops resending it, and later work goes through."""
    behaviour = Behaviour(qos2_as_puback=True)
    async with client_and_brokers(version, behaviour) as (client, brokers):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(client.publish, "t", b"poison", qos=2))
            with trio.fail_after(30):
                await brokers.wait_for(lambda: bool(brokers.sent(Publish)))
            nursery.cancel_scope.cancel()  # sent; its caller is gone
        with trio.fail_after(30):
            await client.publish("t", b"fine", qos=1)
        assert brokers.sent(Publish, payload=b"poison") == [0, 1]


@both_versions
@pytest.mark.parametrize("death", ["blackhole", "shutdown"])
async def test_what_a_request_cannot_cause_never_fails_it(
    autojump_clock: trio.testing.MockClock,
    version: ProtocolVersion,
    death: str,
) -> None:
    """Connections that end by a keep-alive timeout (a black hole), or by DISCONNECT 0x8B
    (server shutting down: about the server, not a packet), many times in a row, never fail
    the publish in flight: once the broker behaves, it is acknowledged. (3.1.1 has no
    DISCONNECT from the broker: there both cases are a black hole.)"""
    behaviour = Behaviour(after_connack=death if version is V5 else "blackhole")
    async with client_and_brokers(version, behaviour, keepalive=2) as (
        client,
        brokers,
    ):
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def publish() -> None:
                await client.publish("t", b"precious", qos=1)
                done.set()

            nursery.start_soon(publish)
            with trio.fail_after(120):
                await brokers.wait_for(lambda: len(brokers.seen) >= 6)
                behaviour.after_connack = ""
                await done.wait()
        assert len(brokers.seen) >= 6


# The default window: a plain close must go on for poison_after seconds before it fails a request.
WINDOWED = trio_mqtt.ReconnectPolicy(initial_delay=0.05, max_delay=1)


@both_versions
async def test_a_publish_the_broker_closes_on_for_a_while_is_kept(
    autojump_clock: trio.testing.MockClock, version: ProtocolVersion
) -> None:
    """A clustered broker electing leaders closes each connection on the resent publish for a
    few seconds (nats-server in a rolling restart): more than STRIKES connections in a row, but
    shorter than ``poison_after``. The publish is not failed; it is acknowledged once the
    broker recovers."""
    behaviour = Behaviour(closes_on_publish=True)
    async with client_and_brokers(version, behaviour, WINDOWED) as (client, brokers):
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            nursery.start_soon(functools.partial(client.publish, "t", b"m", qos=1))
            await brokers.wait_for(lambda: len(brokers.sent(Publish)) == STRIKES + 2)
            assert trio.current_time() - start < WINDOWED.poison_after
            behaviour.closes_on_publish = False
        # the nursery ended: publish() returned (a PublishError would have come out here)
        assert len(brokers.sent(Publish)) == STRIKES + 3


@both_versions
async def test_a_publish_the_broker_always_closes_on_fails_after_poison_after(
    autojump_clock: trio.testing.MockClock, version: ProtocolVersion
) -> None:
    """A broker that closes the connection on the publish for good: it fails with PublishError
    once STRIKES connections in a row, spanning ``poison_after`` seconds, ended on it."""
    behaviour = Behaviour(closes_on_publish=True)
    async with client_and_brokers(version, behaviour, WINDOWED) as (client, brokers):
        start = trio.current_time()
        with trio.fail_after(120), pytest.raises(PublishError) as caught:
            await client.publish("t", b"m", qos=1)
        assert trio.current_time() - start >= WINDOWED.poison_after
        assert len(brokers.sent(Publish)) > STRIKES
        assert "each time this PUBLISH was sent" in str(caught.value)
        behaviour.closes_on_publish = False
        with trio.fail_after(30):
            await client.publish("t", b"after", qos=1)  # the client goes on
