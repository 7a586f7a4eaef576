"""Failover across a real MQTT broker cluster: three nats-server nodes on loopback, routed to
each other, with the cluster's JetStream keeping the MQTT sessions. The client
is given every node's URL; nodes are killed with SIGKILL or restarted in turn while a
publisher and a persistent-session subscriber run.

nats-server speaks MQTT 3.1.1 with QoS 0 and 1 (../shared/BROKERS.md), so these tests run on
3.1.1 at QoS 1. The promise under test is at-least-once: nothing the publisher had
acknowledged is lost, whatever node dies; duplicates are allowed and reported.

Run with ``-s`` to see the figures (failover times, duplicates); nothing here asserts on time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

import trio_mqtt
from tests.integration.test_client import unique
from tests.nats import NatsCluster
from trio_mqtt import ProtocolVersion, ReconnectPolicy

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.5)


class Received:
    """What the subscriber got, in order, and events to wait on."""

    def __init__(self) -> None:
        self.payloads: list[int] = []
        self.at: list[float] = []
        self._changed = trio.Event()

    def add(self, payload: int) -> None:
        self.payloads.append(payload)
        self.at.append(trio.current_time())
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    def has_all(self, count: int) -> bool:
        return set(range(count)) <= set(self.payloads)


def open_subscriber(
    urls: list[str], client_id: str
) -> AbstractAsyncContextManager[trio_mqtt.MQTTClient]:
    """A persistent-session subscriber given every node, reconnecting fast."""
    return trio_mqtt.open_client(
        urls, protocol=ProtocolVersion.V311, client_id=client_id, clean_start=False,
        reconnect=FAST,
    )  # fmt: skip


async def consume(messages: trio_mqtt.Subscription, received: Received) -> None:
    async for message in messages:
        received.add(int(message.payload))


@asynccontextmanager
async def subscriber_and_publisher(
    urls: list[str], topic: str
) -> AsyncIterator[
    tuple[trio_mqtt.MQTTClient, trio_mqtt.MQTTClient, Received, trio.Nursery]
]:
    """A persistent-session subscriber to ``topic`` on the first node (what it receives goes
    into the ``Received``), a publisher on another node, and a nursery for the test's tasks."""
    async with (
        open_subscriber(urls, unique("sub")) as sub,
        sub.subscribe(topic, qos=1) as messages,
        trio_mqtt.open_client(  # another node first: a kill of the subscriber's spares it
            urls[1:] + urls[:1], protocol=ProtocolVersion.V311, reconnect=FAST
        ) as publisher,
        trio.open_nursery() as nursery,
    ):
        received = Received()
        nursery.start_soon(consume, messages, received)
        yield sub, publisher, received, nursery
        nursery.cancel_scope.cancel()


async def test_the_node_a_subscriber_is_on_is_killed_mid_stream(
    nats_cluster: NatsCluster,
) -> None:
    """SIGKILL the subscriber's node a third of the way through 300 QoS 1 messages: the
    client moves to another node, resumes the session the cluster kept (session present),
    and every message arrives."""
    count, topic, cluster = 300, unique("cluster/kill"), nats_cluster
    with trio.fail_after(60):
        async with subscriber_and_publisher(cluster.urls, topic) as (
            sub, publisher, received, nursery,
        ):  # fmt: skip
            killed_node = cluster.node_of(sub.endpoint.port)
            reconnected = trio.Event()

            async def watch() -> None:
                with sub.watch_state() as changes:
                    async for change in changes:
                        if isinstance(change, trio_mqtt.Connected) and sub.reconnects:
                            reconnected.set()

            nursery.start_soon(watch)

            async def publish() -> None:
                for n in range(count):
                    await publisher.publish(topic, b"%d" % n, qos=1)

            nursery.start_soon(publish)
            await received.wait_for(lambda: len(received.payloads) >= count // 3)
            killed_at = trio.current_time()
            cluster.kill(killed_node)
            await reconnected.wait()
            back_at = trio.current_time()
            seen_before = len(received.payloads)
            await received.wait_for(lambda: received.has_all(count))
            first_after = next(
                (t for t in received.at[seen_before:] if t >= back_at), back_at
            )
        assert sub.reconnects >= 1
        assert cluster.node_of(sub.endpoint.port) != killed_node
        assert sub.session_present  # the cluster kept the session
    duplicates = len(received.payloads) - len(set(received.payloads))
    print(
        f"\nkill -> reconnected {1000 * (back_at - killed_at):.0f} ms, "
        f"-> first message after {1000 * (first_after - killed_at):.0f} ms; "
        f"{duplicates} duplicates of {count}"
    )


async def test_a_rolling_restart_of_every_node_loses_nothing(
    nats_cluster: NatsCluster,
) -> None:
    """Each node in turn is killed and started again while a publisher and a subscriber run;
    the next goes once messages flow again and the restarted node serves MQTT sessions once
    more (else the next kill would leave the cluster without a quorum, which is an outage, not
    a rolling restart). Every acknowledged message arrives."""
    topic, cluster = unique("cluster/rolling"), nats_cluster
    urls = cluster.urls
    acknowledged = 0
    with trio.fail_after(120):
        async with subscriber_and_publisher(urls, topic) as (
            sub, publisher, received, nursery,
        ):  # fmt: skip
            done = trio.Event()

            async def publish() -> None:
                nonlocal acknowledged
                while not done.is_set():
                    await publisher.publish(topic, b"%d" % acknowledged, qos=1)
                    acknowledged += 1

            nursery.start_soon(publish)
            for node in range(len(urls)):
                mark = len(received.payloads)
                await received.wait_for(lambda m=mark: len(received.payloads) >= m + 50)
                restart(cluster, node)
                await serves(urls[node])
            mark = len(received.payloads)
            await received.wait_for(lambda m=mark: len(received.payloads) >= m + 50)
            done.set()
            final = acknowledged + 1  # the publish in progress may complete too
            await received.wait_for(lambda: received.has_all(acknowledged))
    assert received.has_all(acknowledged)
    assert max(received.payloads) <= final
    duplicates = len(received.payloads) - len(set(received.payloads))
    print(
        f"\nrolling restart: {acknowledged} acknowledged, all received; "
        f"{duplicates} duplicates; subscriber reconnects {sub.reconnects}, "
        f"publisher reconnects {publisher.reconnects}"
    )


async def serves(url: str) -> None:
    """Wait until the node at ``url`` takes an MQTT session and routes a message to it."""
    topic = unique("cluster/probe")
    policy = ReconnectPolicy(
        initial_delay=0.05, max_delay=0.5, retry_first_connect=True
    )
    async with (
        trio_mqtt.open_client(
            url, protocol=ProtocolVersion.V311, reconnect=policy
        ) as probe,
        probe.subscribe(topic, qos=1) as messages,
    ):
        await probe.publish(topic, b"ping", qos=1)
        assert (await messages.receive()).payload == b"ping"


def restart(cluster: NatsCluster, node: int) -> None:
    """Stop a node (SIGKILL) and start it again on the same ports and store."""
    cluster.kill(node)
    cluster.start_node(node)
