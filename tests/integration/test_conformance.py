"""Keeping the test double honest: the same scenarios against trio_mqtt.testing's in-process
broker and against a real Mosquitto, asserting the same observable results (what clients
receive, with which flags, QoS and properties; what CONNACK says).

Where the two would differ, Mosquitto is right, unless it is one of the Mosquitto 2.0.11 bugs
of ../shared/BROKERS.md (the configurations here avoid them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import trio

import trio_mqtt
from tests.chaos import persistent
from tests.integration.test_client import VERSIONS, unique
from tests.mosquitto import Mosquitto
from tests.proxy import Proxy, open_proxy
from trio_mqtt import MQTTClient, ProtocolVersion, QoS, RetainHandling, Will
from trio_mqtt.testing import MQTTBroker, open_broker

# Mosquitto's settings in the mosquitto_tight fixture, as the double's options
TIGHT = {
    "receive_maximum": 2,
    "maximum_qos": QoS.AT_LEAST_ONCE,
    "retain_available": False,
    "maximum_packet_size": 256,
    "topic_alias_maximum": 3,
    "server_keep_alive": 30,
}


class Target:
    """One broker under test: clients connect through ``connect``, and ``vanish`` ends a
    client's connection without DISCONNECT (a proxy cut for Mosquitto)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.double: MQTTBroker | None = None
        self.mosquitto: Mosquitto | None = None
        self._proxies: dict[str, Proxy] = {}
        self._nursery: trio.Nursery | None = None

    @asynccontextmanager
    async def connect(self, **options: object) -> AsyncIterator[MQTTClient]:
        client_id = str(options.setdefault("client_id", unique("c")))
        if self.double is not None:
            async with trio_mqtt.open_client(
                transport_factory=self.double.connect_stream,
                **options,  # type: ignore[arg-type]
            ) as client:
                yield client
            return
        assert self.mosquitto is not None
        async with open_proxy(self.mosquitto.port) as proxy:
            self._proxies[client_id] = proxy
            async with trio_mqtt.open_client(proxy.url, **options) as client:  # type: ignore[arg-type]
                yield client

    def vanish(self, client_id: str) -> None:
        if self.double is not None:
            self.double.cut(client_id)
        else:
            self._proxies[client_id].cut()


@asynccontextmanager
async def target_for(
    name: str, request: pytest.FixtureRequest, **double_options: object
) -> AsyncIterator[Target]:
    target = Target(name)
    if name == "double":
        async with open_broker(**double_options) as broker:
            target.double = broker
            yield target
    else:
        fixture = "mosquitto_tight" if double_options else "mosquitto"
        target.mosquitto = request.getfixturevalue(fixture)
        yield target


BROKERS = pytest.mark.parametrize("broker", ["double", "mosquitto"])


@pytest.fixture(autouse=True)
async def _bounded() -> AsyncIterator[None]:
    """No scenario may hang: each has 10 s."""
    with trio.fail_after(10):
        yield


Connect = Callable[..., AbstractAsyncContextManager[MQTTClient]]


@BROKERS
@pytest.mark.parametrize("version", VERSIONS)
async def test_retained_messages(
    broker: str, version: ProtocolVersion, request: pytest.FixtureRequest
) -> None:
    """Stored and sent to a new subscription with RETAIN 1; a live message has RETAIN 0;
    an empty payload clears it ([MQTT-3.3.1-6], [MQTT-3.3.1-9], [MQTT-3.3.1-12])."""
    topic = unique("retained")
    async with (
        target_for(broker, request) as target,
        target.connect(protocol=version) as c,
    ):
        await c.publish(topic, b"stored", qos=1, retain=True)
        async with c.subscribe(topic, qos=1) as messages:
            first = await messages.receive()
            await c.publish(topic, b"live", qos=1, retain=True)
            second = await messages.receive()
        await c.publish(topic, b"", qos=1, retain=True)
        async with c.subscribe(topic, qos=1) as messages:
            await c.publish(topic, b"after", qos=1)
            third = await messages.receive()
    assert (first.payload, first.retain) == (b"stored", True)
    assert (second.payload, second.retain) == (b"live", False)
    assert (third.payload, third.retain) == (
        b"after",
        False,
    )  # nothing retained was left


@BROKERS
async def test_retain_handling_and_retain_as_published(
    broker: str, request: pytest.FixtureRequest
) -> None:
    topic = unique("handling")
    async with target_for(broker, request) as target, target.connect() as c:
        await c.publish(topic, b"stored", qos=1, retain=True)
        async with c.subscribe(
            topic,
            qos=1,
            retain_handling=RetainHandling.DO_NOT_SEND,
            retain_as_published=True,
        ) as messages:
            await c.publish(topic, b"live", qos=1, retain=True)
            live = await messages.receive()
        await c.publish(topic, b"", qos=1, retain=True)
    assert (live.payload, live.retain) == (b"live", True)


@BROKERS
@pytest.mark.parametrize("version", VERSIONS)
async def test_qos_is_the_lower_of_publish_and_subscription(
    broker: str, version: ProtocolVersion, request: pytest.FixtureRequest
) -> None:
    topic = unique("qos")
    async with (
        target_for(broker, request) as target,
        target.connect(protocol=version) as c,
    ):
        async with c.subscribe(topic, qos=1) as messages:
            got = []
            for qos in (0, 1, 2):
                await c.publish(topic, b"%d" % qos, qos=qos)
                got.append((await messages.receive()).qos)
        async with c.subscribe(topic, qos=2) as messages:
            await c.publish(topic, b"2", qos=2)
            got.append((await messages.receive()).qos)
    assert got == [
        QoS.AT_MOST_ONCE,
        QoS.AT_LEAST_ONCE,
        QoS.AT_LEAST_ONCE,
        QoS.EXACTLY_ONCE,
    ]


@BROKERS
@pytest.mark.parametrize("version", VERSIONS)
async def test_qos_flows_keep_order_per_qos(
    broker: str, version: ProtocolVersion, request: pytest.FixtureRequest
) -> None:
    topic = unique("order")
    async with (
        target_for(broker, request) as target,
        target.connect(protocol=version) as c,
        c.subscribe(topic, qos=2, buffer_size=300) as messages,
    ):
        async with c.pipeline() as pipe:
            for n in range(300):
                await pipe.publish(topic, b"%d" % n, qos=1 + n % 2)
        got = [int((await messages.receive()).payload) for _ in range(300)]
    # section 4.6: order is kept among messages of one QoS (Mosquitto forwards a QoS 2
    # message later than a QoS 1 one sent after it); none is lost or doubled
    assert sorted(got) == list(range(300))
    assert [n for n in got if n % 2] == list(range(1, 300, 2))
    assert [n for n in got if not n % 2] == list(range(0, 300, 2))


@BROKERS
async def test_overlapping_subscriptions_each_get_the_message(
    broker: str, request: pytest.FixtureRequest
) -> None:
    """One client, two subscriptions matching one topic: each subscription gets it once
    (Mosquitto sends a copy per subscription, each with its own subscription identifier)."""
    topic = unique("overlap") + "/x"
    async with (
        target_for(broker, request) as target,
        target.connect() as c,
        c.subscribe(topic.rsplit("/", 1)[0] + "/#", qos=1) as wide,
        c.subscribe(topic, qos=0) as narrow,
    ):
        await c.publish(topic, b"m", qos=1)
        a, b = await wide.receive(), await narrow.receive()
        await c.publish(topic, b"marker", qos=1)
        assert (await wide.receive()).payload == b"marker"
        assert (await narrow.receive()).payload == b"marker"
    assert (a.payload, b.payload) == (b"m", b"m")
    assert len(a.properties.subscription_identifiers) == 1
    assert (
        a.properties.subscription_identifiers != b.properties.subscription_identifiers
    )
    assert (a.qos, b.qos) == (QoS.AT_LEAST_ONCE, QoS.AT_MOST_ONCE)


@BROKERS
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_persistent_session_queues_while_offline(
    broker: str, version: ProtocolVersion, request: pytest.FixtureRequest
) -> None:
    topic = unique("session")
    client_id = unique("persistent")
    options: dict[str, object] = {"protocol": version, "client_id": client_id}
    options.update(persistent(version))
    async with target_for(broker, request) as target:
        async with target.connect(**options) as c:
            with trio.CancelScope() as stopping:
                async with c.subscribe(topic, qos=1):
                    stopping.cancel()  # left by a cancellation: the broker keeps it
                    await trio.sleep_forever()
        async with target.connect(protocol=version) as other:
            for n in range(3):
                await other.publish(topic, b"%d" % n, qos=1)
            await other.publish(topic, b"qos0 is not queued", qos=0)
        async with (
            target.connect(**{**options, "clean_start": False}) as c,
            c.subscribe(topic, qos=1) as messages,
        ):
            assert c.session_present
            got = [(await messages.receive()).payload for _ in range(3)]
            await c.publish(topic, b"marker", qos=1)
            assert (await messages.receive()).payload == b"marker"
        async with target.connect(protocol=version, client_id=client_id) as c:
            assert not c.session_present  # clean start: discarded
    assert got == [b"0", b"1", b"2"]


@BROKERS
@pytest.mark.parametrize("version", VERSIONS)
async def test_the_will(
    broker: str, version: ProtocolVersion, request: pytest.FixtureRequest
) -> None:
    """Published when the client vanishes; not after a normal DISCONNECT."""
    topic = unique("will")
    async with (
        target_for(broker, request) as target,
        target.connect(protocol=version) as watcher,
        watcher.subscribe(topic, qos=1) as wills,
    ):
        will = Will(topic, b"vanished", qos=1)
        async with target.connect(protocol=version, will=will):
            pass  # normal DISCONNECT: the will is discarded
        with pytest.raises(trio_mqtt.ConnectionLostError):
            async with target.connect(
                protocol=version,
                will=will,
                reconnect=None,
                client_id="doomed-" + unique("w"),
            ) as doomed:
                target.vanish(doomed.client_id)
                await trio.sleep_forever()
        assert (await wills.receive()).payload == b"vanished"
        await watcher.publish(topic, b"marker", qos=1)
        assert (await wills.receive()).payload == b"marker"


@BROKERS
async def test_shared_subscriptions_split_the_messages(
    broker: str, request: pytest.FixtureRequest
) -> None:
    topic = unique("shared")
    got: list[bytes] = []
    counts = {"a": 0, "b": 0}
    all_in = trio.Event()
    async with (
        target_for(broker, request) as target,
        target.connect() as a,
        target.connect() as b,
        a.subscribe(f"$share/g/{topic}", qos=1) as for_a,
        b.subscribe(f"$share/g/{topic}", qos=1) as for_b,
        trio.open_nursery() as nursery,
    ):

        async def collect(name: str, messages: trio_mqtt.Subscription) -> None:
            async for message in messages:
                got.append(message.payload)
                counts[name] += 1
                if len(got) == 10:
                    all_in.set()

        nursery.start_soon(collect, "a", for_a)
        nursery.start_soon(collect, "b", for_b)
        for n in range(10):
            await a.publish(topic, b"%d" % n, qos=1)
        await all_in.wait()
        nursery.cancel_scope.cancel()
    assert sorted(got, key=int) == [b"%d" % n for n in range(10)]
    assert counts["a"]
    assert counts["b"]


@BROKERS
async def test_no_local_and_dollar_topics(
    broker: str, request: pytest.FixtureRequest
) -> None:
    """No Local ([MQTT-3.8.3-3]); a '#' filter does not match '$' topics ([MQTT-4.7.2-1])."""
    base = unique("nl")
    async with (
        target_for(broker, request) as target,
        target.connect() as c,
        c.subscribe(base, qos=1, no_local=True) as own,
        c.subscribe("#", qos=1) as everything,
        c.subscribe(f"$x/{base}", qos=1) as dollar,
    ):
        await c.publish(base, b"mine", qos=1)
        await c.publish(f"$x/{base}", b"dollar", qos=1)
        async with target.connect() as other:
            await other.publish(base, b"theirs", qos=1)
        assert (await own.receive()).payload == b"theirs"
        assert (await dollar.receive()).payload == b"dollar"
        seen = [(await everything.receive()).payload for _ in range(2)]
    assert seen == [b"mine", b"theirs"]  # not the $ topic


@BROKERS
async def test_the_limits_in_connack(
    broker: str, request: pytest.FixtureRequest
) -> None:
    """The same limits configured on both say the same in CONNACK, and Receive Maximum 2
    holds a pipeline back without loss."""
    topic = unique("limits")
    async with (
        target_for(broker, request, **TIGHT) as target,
        target.connect() as c,
        c.subscribe(topic, qos=1, buffer_size=50) as messages,
    ):
        server = c.server
        async with c.pipeline() as pipe:
            for n in range(50):
                await pipe.publish(topic, b"%d" % n)
        got = [int((await messages.receive()).payload) for _ in range(50)]
    assert (
        server.receive_maximum, server.maximum_qos, server.retain_available,
        server.maximum_packet_size, server.topic_alias_maximum, server.server_keep_alive,
    ) == (2, QoS.AT_LEAST_ONCE, False, 256, 3, 30)  # fmt: skip
    assert got == list(range(50))


@BROKERS
async def test_topic_aliases_from_the_client(
    broker: str, request: pytest.FixtureRequest
) -> None:
    base = unique("alias")
    topics = [f"{base}/{n}" for n in range(4)]
    async with (
        target_for(broker, request, **TIGHT) as target,
        target.connect(topic_aliases=True) as c,
        c.subscribe(f"{base}/#", qos=1, buffer_size=40) as messages,
    ):
        for _ in range(5):
            for topic in topics:
                await c.publish(topic, b"x", qos=1)
        got = [(await messages.receive()).topic for _ in range(20)]
    assert got == topics * 5
