"""client.pipeline(): many QoS 1/2 publishes in flight from one task (real Mosquitto; a scripted
broker where the broker's timing must be held still): order, the window, every failure
reported with its message, reconnects, and what a cancellation leaves behind."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from tests import wire
from tests.chaos import persistent
from tests.integration.test_client import VERSIONS, unique
from tests.io.scripted import ScriptedBroker
from tests.mosquitto import Mosquitto
from tests.proxy import open_proxy
from trio_mqtt import (
    PipelineError,
    ProtocolVersion,
    PublishError,
    QoS,
    ReasonCode,
    ReconnectPolicy,
)
from trio_mqtt.lowlevel import Connect, Publish


@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_pipeline_delivers_everything_in_order_within_its_window(
    mosquitto: Mosquitto, version: ProtocolVersion, qos: int
) -> None:
    topic = unique("pipe")
    count, window = 3000, 100
    with trio.fail_after(30):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as publisher,
            trio_mqtt.open_client(mosquitto.url, protocol=version) as subscriber,
            subscriber.subscribe(topic, qos=qos, buffer_size=count) as messages,
        ):
            async with publisher.pipeline(max_in_flight=window) as pipe:
                for n in range(count):
                    await pipe.publish(topic, n.to_bytes(4, "big"), qos=qos)
                    assert pipe.in_flight <= window
            assert pipe.in_flight == 0
            assert pipe.published == count
            received = [
                int.from_bytes((await messages.receive()).payload, "big")
                for _ in range(count)
            ]
    assert received == list(range(count))  # all of them, in order


async def test_qos0_in_a_pipeline_goes_out_as_publish_does(
    mosquitto: Mosquitto,
) -> None:
    topic = unique("pipe0")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url) as client,
            client.subscribe(topic, qos=1) as messages,
        ):
            async with client.pipeline() as pipe:
                await pipe.publish(topic, b"zero", qos=0)
                await pipe.publish(topic, b"one")  # QoS 1 by default
            assert [(await messages.receive()).payload for _ in range(2)] == [
                b"zero",
                b"one",
            ]


async def test_every_failure_is_reported_with_its_message(
    mosquitto_acl: Mosquitto,
) -> None:
    """A refused message stops the pipeline: the next publish() raises PipelineError, and
    leaving the block waits for the rest and reports every failure, each with its index,
    topic and PublishError (0x87 from Mosquitto's ACL)."""
    with trio.fail_after(10):
        async with trio_mqtt.open_client(
            mosquitto_acl.url, username="alice", password="wonderland"
        ) as client:
            with pytest.raises(PipelineError) as caught:
                async with client.pipeline(max_in_flight=10) as pipe:
                    for n in range(1000):
                        topic = "denied/x" if n in (3, 4) else "ok/x"
                        await pipe.publish(topic, b"%d" % n)
            failures = caught.value.failures
            assert [(f.index, f.topic, f.payload) for f in failures] == [
                (3, "denied/x", b"3"),
                (4, "denied/x", b"4"),
            ]
            for failure in failures:
                assert isinstance(failure.error, PublishError)
                assert failure.error.reason_code is ReasonCode.NOT_AUTHORIZED
            assert pipe.published < 1000  # it stopped at the first failure
            await client.publish("ok/after", b"the client goes on", qos=1)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_pipeline_survives_reconnects(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    """Connections cut while the pipeline runs: every message still arrives (QoS 1: at least
    once), and the block ends with each acknowledged."""
    topic = unique("pipe-cut")
    count = 2000
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.05)
    with trio.fail_after(30):
        async with (
            trio_mqtt.open_client(
                mosquitto.url, client_id=unique("pipe-sub"), protocol=version,
                **persistent(version),  # type: ignore[arg-type]
            ) as subscriber,
            subscriber.subscribe(topic, qos=1, buffer_size=4 * count) as messages,
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, client_id=unique("pipe-pub"), protocol=version,
                reconnect=policy, **persistent(version),  # type: ignore[arg-type]
            ) as publisher,
        ):  # fmt: skip
            async with publisher.pipeline(max_in_flight=200) as pipe:
                for n in range(count):
                    if n % 500 == 250:
                        proxy.cut()
                    await pipe.publish(topic, n.to_bytes(4, "big"))
            assert pipe.published == count
            assert publisher.reconnects >= 3
            seen: set[int] = set()
            while len(seen) < count:
                seen.add(int.from_bytes((await messages.receive()).payload, "big"))
    assert seen == set(range(count))


async def test_cancelling_a_pipeline_takes_back_what_was_not_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The broker's Receive Maximum is 4: 4 messages go out, 6 wait queued. Cancelling the
    block takes the 6 back (the broker never sees them); the 4 complete in the session when
    the broker acknowledges them, which frees their slots (a later publish goes out)."""
    broker = ScriptedBroker()
    receive_maximum_4 = wire.props(b"\x21" + wire.u16(4))
    seen: list[Publish] = []
    acked = trio.Event()

    async def play() -> None:
        await broker.expect(Connect)
        await broker.send(wire.connack(properties=receive_maximum_4))
        while len(seen) < 4:
            packet = await broker.expect(Publish)
            assert isinstance(packet, Publish)
            seen.append(packet)
        await cancelled.wait()
        for packet in seen:
            await broker.send(wire.puback(packet.packet_id))
        acked.set()
        while (packet := await broker.receive()) is not None:
            if isinstance(packet, Publish):
                seen.append(packet)
                await broker.send(wire.puback(packet.packet_id))

    cancelled = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(play)
        async with trio_mqtt.open_client(transport_factory=broker.factory) as client:
            with trio.move_on_after(5) as scope:
                async with client.pipeline(max_in_flight=100) as pipe:
                    for n in range(10):
                        await pipe.publish("t", b"%d" % n)
                    assert pipe.in_flight == 10
                    await trio.sleep_forever()
            assert scope.cancelled_caught
            cancelled.set()
            await acked.wait()
            with trio.fail_after(5):
                await client.publish("t", b"later", qos=QoS.AT_LEAST_ONCE)
        nursery.cancel_scope.cancel()
    assert [p.payload for p in seen] == [b"0", b"1", b"2", b"3", b"later"]


async def test_max_in_flight_must_be_positive(mosquitto: Mosquitto) -> None:
    async with trio_mqtt.open_client(mosquitto.url) as client:
        with pytest.raises(ValueError, match="max_in_flight"):
            client.pipeline(max_in_flight=0)
