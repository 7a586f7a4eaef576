"""The receive hot path's shortcuts give the same results as the general code they bypass."""

from __future__ import annotations

import attrs
import pytest
import trio

from trio_mqtt import MalformedPacketError, Message, QoS, RemoteProtocolError
from trio_mqtt._engine._inbox import Inbox
from trio_mqtt._engine._router import ROUTE_CACHE_SIZE, Router
from trio_mqtt._message import new_message
from trio_mqtt._sansio._fast import fast_constructor
from trio_mqtt._sansio._publish_decoder import TOPICS, TOPICS_CACHED, new_publish
from trio_mqtt.lowlevel import (
    EMPTY_PROPERTIES,
    PacketReader,
    Properties,
    Publish,
    SubscriptionRequest,
    encode_packet,
)

# -- fast keyword-only constructors ----------------------------------------------------------------------


def test_fast_publish_is_a_frozen_publish() -> None:
    props = Properties(subscription_identifiers=(7,))
    fast = new_publish(
        topic="a/b",
        payload=b"x",
        qos=QoS.AT_LEAST_ONCE,
        retain=True,
        dup=False,
        packet_id=3,
        properties=props,
    )
    slow = Publish(
        topic="a/b", payload=b"x", qos=QoS.AT_LEAST_ONCE, retain=True, packet_id=3,
        properties=props,
    )  # fmt: skip
    assert type(fast) is Publish
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.topic = "c"  # type: ignore[misc]
    assert attrs.evolve(fast, dup=True).dup


def test_fast_message() -> None:
    message = new_message(
        topic="t",
        payload=b"p",
        qos=QoS.AT_MOST_ONCE,
        retain=False,
        properties=EMPTY_PROPERTIES,
        acknowledger=None,
    )
    assert type(message) is Message
    assert message == Message(topic="t", payload=b"p", qos=QoS.AT_MOST_ONCE)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.payload = b""  # type: ignore[misc]


def test_fast_constructors_take_keywords_only() -> None:
    """Two bools side by side (retain, dup) cannot be swapped silently by position."""
    with pytest.raises(TypeError, match="positional"):
        new_publish("a/b", b"x", QoS.AT_MOST_ONCE, True, False, None, EMPTY_PROPERTIES)  # type: ignore[misc]
    with pytest.raises(TypeError, match="unexpected keyword"):
        new_publish(topic="a", payload=b"", qos=QoS.AT_MOST_ONCE, retained=True)  # type: ignore[call-arg]


def test_fast_constructor_refuses_a_class_without_a_matching_slots_base() -> None:
    @attrs.frozen
    class Plain:
        a: int

    with pytest.raises(TypeError, match="base must hold exactly its fields"):
        fast_constructor(Plain)

    class _Slots:
        __slots__ = ("__weakref__", "a")

    @attrs.frozen
    class Checked(_Slots):
        a: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(TypeError, match="validator"):
        fast_constructor(Checked)


# -- the reader's shortcuts -------------------------------------------------------------------------


def _publish_with_id(identifier: int) -> bytes:
    props = Properties(subscription_identifiers=(identifier,))
    return encode_packet(Publish(topic="a", payload=b"p", properties=props))


@pytest.mark.parametrize("identifier", [1, 127, 128, 268_435_455])
def test_subscription_identifier_shortcut(identifier: int) -> None:
    (packet,) = PacketReader().feed(_publish_with_id(identifier))
    assert isinstance(packet, Publish)
    assert packet.properties.subscription_identifiers == (identifier,)
    assert packet.payload == b"p"


def test_truncated_subscription_identifier_is_not_read_from_the_next_packet() -> None:
    # property length 2 but the packet ends after the 0x0B: the next packet's first byte
    # must not be taken for the identifier
    truncated = bytes.fromhex("30 05 0001 61 02 0b")
    with pytest.raises(MalformedPacketError):
        PacketReader().feed(truncated + encode_packet(Publish(topic="a")))  # 0x30...


def test_subscription_identifier_zero_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        PacketReader().feed(bytes.fromhex("30 06 0001 61 02 0b 00"))


def test_large_packet_in_pieces() -> None:
    payload = bytes(range(256)) * 400
    data = encode_packet(Publish(topic="big", payload=payload)) + encode_packet(
        Publish(topic="next", payload=b"n")
    )
    reader = PacketReader()
    got: list[object] = []
    for start in range(0, len(data), 1000):
        before = len(got)
        got += reader.feed(bytearray(data[start : start + 1000]))
        if len(got) == before:
            assert reader.buffered  # held, not decoded yet
    assert [(p.topic, p.payload) for p in got] == [("big", payload), ("next", b"n")]  # type: ignore[attr-defined]
    assert reader.buffered == 0


def test_topic_names_are_remembered_within_bounds() -> None:
    reader = PacketReader()
    for n in range(TOPICS_CACHED * 2 + 1):
        (packet,) = reader.feed(encode_packet(Publish(topic=f"t/{n}")))
        assert packet.topic == f"t/{n}"  # type: ignore[union-attr]
    assert len(TOPICS) <= TOPICS_CACHED
    first = reader.feed(encode_packet(Publish(topic="same")))[0]
    second = reader.feed(encode_packet(Publish(topic="same")))[0]
    assert first.topic is second.topic  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("topic_hex", "error"),
    [
        ("61ff", MalformedPacketError),
        ("6100", MalformedPacketError),
        ("612b", RemoteProtocolError),
    ],
)
def test_invalid_topic_names_are_never_remembered(
    topic_hex: str, error: type[Exception]
) -> None:
    packet = bytes.fromhex(f"30 05 0002 {topic_hex} 00")
    for _ in range(2):
        with pytest.raises(error):
            PacketReader().feed(packet)
    assert bytes.fromhex(topic_hex) not in TOPICS


def test_memoryview_input() -> None:
    data = memoryview(encode_packet(Publish(topic="m", payload=b"v")) * 2)
    packets = PacketReader().feed(data)
    assert [type(p.payload) for p in packets] == [bytes, bytes]  # type: ignore[union-attr]


# -- the router's remembered routes -------------------------------------------------------------------


def _subscription(topic_filter: str) -> Inbox:
    return Inbox((SubscriptionRequest(topic_filter=topic_filter),), buffer_size=100)


def _router() -> Router:
    return Router()  # QoS 0 routing needs no connection


_RECEIVED: dict[Inbox, list[str]] = {}  # (keeps each inbox: no id is reused)


def _received(subscription: Inbox) -> list[str]:
    """Every topic ``subscription`` received so far (taken from its buffer)."""
    got = _RECEIVED.setdefault(subscription, [])
    while True:
        try:
            got.append(subscription.take_nowait().topic)
        except trio.WouldBlock:
            return list(got)


def test_routes_follow_subscriptions_added_and_removed() -> None:
    router = _router()
    a, b = _subscription("x/+"), _subscription("x/#")
    router.add(a)
    assert router.route_nowait(Publish(topic="x/1"))
    router.add(b)
    assert router.route_nowait(Publish(topic="x/1"))
    router.remove(a)
    assert router.route_nowait(Publish(topic="x/1"))
    assert _received(a) == ["x/1", "x/1"]
    assert _received(b) == ["x/1", "x/1"]


def test_routes_follow_subscription_identifiers() -> None:
    router = _router()
    a, b = _subscription("x/+"), _subscription("x/+")
    router.add(a)
    router.add(b)
    router.set_filter_id("x/+", 1)
    one = Properties(subscription_identifiers=(1,))
    router.route_nowait(Publish(topic="x/1", properties=one))
    assert (_received(a), _received(b)) == (
        ["x/1"],
        ["x/1"],
    )  # one filter, both subscriptions
    router.remove(b)
    router.route_nowait(Publish(topic="x/1", properties=one))
    assert (_received(a), _received(b)) == (["x/1", "x/1"], ["x/1"])


def test_route_memory_is_bounded() -> None:
    router = _router()
    router.add(_subscription("#"))
    for n in range(ROUTE_CACHE_SIZE * 2 + 1):
        router.route_nowait(Publish(topic=f"t/{n}"))
    assert len(router._routes) <= ROUTE_CACHE_SIZE
