"""The link's socket paths: direct sends from the publishing task, what the writer finishes for
them, and the byte stream's order across both (a real socket pair, a scripted broker)."""

from __future__ import annotations

import os
import random
import socket

import trio
import trio.lowlevel

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from tests.io.test_scripted_broker import _accept, scripted_client
from trio_mqtt.lowlevel import Disconnect, Publish


def bytes_waiting(broker: ScriptedBroker) -> bool:
    """Whether bytes from the client wait unread on the broker's socket (no checkpoint)."""
    stream = broker.stream
    assert isinstance(stream, trio.SocketStream)
    with socket.socket(fileno=os.dup(stream.socket.fileno())) as peek:
        try:
            return bool(peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except BlockingIOError:
            return False


def running_tasks() -> int:
    """How many tasks this run has (the link's writer is one of them only while it runs)."""

    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(
            count(child)
            for nursery in task.child_nurseries
            for child in nursery.child_tasks
        )

    return count(trio.lowlevel.current_root_task())


async def test_a_direct_write_the_socket_cuts_short_is_finished_by_the_writer() -> None:
    """A PUBLISH larger than the socket's send buffer, sent directly by the publishing task,
    is cut short; the writer sends the rest, and a message queued meanwhile goes after it."""
    broker = ScriptedBroker(socket=True, send_buffer=4096)
    big = bytes(random.Random(7).randbytes(50_000))
    published, done = trio.Event(), trio.Event()
    received: list[Publish] = []

    async def script() -> None:
        await _accept(broker)
        # nothing read until both are queued: the socket stays full
        await published.wait()
        for _ in range(2):
            packet = await broker.receive(1000)
            assert isinstance(packet, Publish)
            received.append(packet)
        done.set()
        assert isinstance(await broker.receive(), Disconnect)
        await broker.stream.aclose()

    async with scripted_client(broker, script, keepalive=0) as client:
        await trio.testing.wait_all_tasks_blocked()
        idle = running_tasks()
        await client.publish("big", big)
        # Sent directly: bytes are on the socket before this task yields (a QoS 0 publish
        # under the high-water mark does not), and cut short: a writer started for the rest.
        assert bytes_waiting(broker)
        assert running_tasks() == idle + 1
        await client.publish("small", b"after")
        published.set()
        with trio.fail_after(10):
            await done.wait()
    assert [(p.topic, p.payload) for p in received] == [
        ("big", big),
        ("small", b"after"),
    ]


async def test_order_holds_across_direct_and_writer_sends() -> None:
    """Three tasks publish QoS 0 and QoS 1 messages, yielding at random, through a small send
    buffer to a broker that reads in small pieces and acknowledges (each read lets tasks send
    directly again): every message arrives whole, once, in each task's order."""
    broker = ScriptedBroker(socket=True, send_buffer=8192)
    per_task = 150
    got: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    async def script() -> None:
        await _accept(broker)
        while sum(map(len, got.values())) < 3 * per_task:
            packet = await broker.receive(700)
            assert isinstance(packet, Publish), packet
            index, filler = packet.payload.split(b":", 1)
            assert filler == bytes([int(index) % 251]) * (2000 + int(index) * 7)
            got[packet.topic].append(int(index))
            if packet.qos:
                await broker.send(wire.puback(packet.packet_id or 0))
        assert isinstance(await broker.receive(), Disconnect)
        await broker.stream.aclose()

    async def publisher(client: trio_mqtt.MQTTClient, topic: str, seed: int) -> None:
        rng = random.Random(seed)
        for index in range(per_task):
            filler = bytes([index % 251]) * (2000 + index * 7)
            qos = rng.choice((0, 1))
            await client.publish(topic, b"%d:%s" % (index, filler), qos=qos)
            if rng.random() < 0.5:
                await trio.lowlevel.checkpoint()

    with trio.fail_after(30):
        async with (
            scripted_client(broker, script) as client,
            trio.open_nursery() as nursery,
        ):
            for seed, topic in enumerate(got):
                nursery.start_soon(publisher, client, topic, seed)
    assert got == {topic: list(range(per_task)) for topic in got}


async def test_the_writer_runs_only_while_it_has_work(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Over a plain socket an idle connection is one task: the writer starts when a direct
    write is cut short, lingers a second once idle, ends, and starts again when needed."""
    broker = ScriptedBroker(socket=True, send_buffer=4096)
    payload = bytes(40_000)
    go = [trio.Event(), trio.Event()]

    async def script() -> None:
        await _accept(broker)
        for turn in range(2):
            await go[turn].wait()
            packet = await broker.receive()
            assert isinstance(packet, Publish)
            assert packet.payload == payload
        assert isinstance(await broker.receive(), Disconnect)
        await broker.stream.aclose()

    async with scripted_client(broker, script, keepalive=0) as client:
        await trio.testing.wait_all_tasks_blocked()
        idle = running_tasks()  # the broker's, the test's, and the client's reader
        for turn in range(2):
            await trio.testing.wait_all_tasks_blocked()
            assert running_tasks() == idle  # no writer
            await client.publish("t", payload)  # more than the socket takes at once
            assert running_tasks() == idle + 1  # a writer, for the rest
            go[turn].set()
            await trio.testing.wait_all_tasks_blocked()  # all sent; the writer idles
            assert running_tasks() == idle + 1
            await trio.sleep(1.5)  # virtual time: past the linger
            assert running_tasks() == idle
