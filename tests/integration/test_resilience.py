"""Reconnect, offline queueing and session resumption against a real Mosquitto, through the
fault-injecting proxy of tests/proxy.py."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import trio_mqtt
from tests.chaos import persistent
from tests.integration.test_client import VERSIONS, unique
from tests.mosquitto import Mosquitto, free_port
from tests.proxy import Proxy, client_behind_proxy, open_proxy
from trio_mqtt import (
    ClientState,
    Connected,
    ConnectionLostError,
    Disconnected,
    NotConnectedError,
    ProtocolVersion,
    ReasonCode,
    ReconnectPolicy,
    StateChange,
    StateWatcher,
)

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)


async def next_change(watcher: StateWatcher, kind: type[StateChange]) -> StateChange:
    """The next state change of type ``kind`` (others are skipped)."""
    async for change in watcher:
        if isinstance(change, kind):
            return change
    raise AssertionError(f"the client closed before a {kind.__name__}")


@pytest.mark.parametrize("version", VERSIONS)
async def test_reconnects_after_a_cut_and_reports_each_state(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    topic = unique("cut")
    with trio.fail_after(10):
        async with (
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, protocol=version, reconnect=FAST
            ) as client,
            client.subscribe(topic, qos=1) as messages,
        ):
            with client.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                await client.publish(topic, b"before", qos=1)
                assert (await messages.receive()).payload == b"before"
                assert proxy.cut() == 1
                lost = await next_change(changes, Disconnected)
                assert isinstance(lost, Disconnected)
                assert isinstance(lost.cause, ConnectionLostError)
                back = await next_change(changes, Connected)
                assert isinstance(back, Connected)
                assert client.state is ClientState.CONNECTED
                assert client.reconnects == 1
            # the subscription was restored (clean session: re-subscribed by the client)
            assert not back.session_present
            await client.publish(topic, b"after", qos=1)
            assert (await messages.receive()).payload == b"after"


async def test_a_watcher_started_late_sees_where_the_client_is(
    mosquitto: Mosquitto,
) -> None:
    """watch_state() yields the latest change first: a watcher made after a reconnect starts
    with that reconnect's Connected, not with nothing until the next change. (Before, a late
    watcher saw nothing until the connection next changed.)"""
    with trio.fail_after(10):
        async with (
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(proxy.url, reconnect=FAST) as client,
        ):
            with client.watch_state() as early:
                first = await anext(early)
                assert isinstance(first, Connected)
                assert first.endpoint == client.endpoint
                assert proxy.cut() == 1
                back = await next_change(early, Connected)
            with client.watch_state() as late:
                current = await anext(late)
            assert current is back  # the reconnect, not the first connection
            assert client.reconnects == 1


@asynccontextmanager
async def keepalive_1s_behind_proxy(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> AsyncIterator[tuple[Proxy, trio_mqtt.MQTTClient]]:
    """A client with a one-second keep alive, reconnecting fast, behind a fault proxy."""
    async with client_behind_proxy(
        mosquitto.port, protocol=version, keepalive=1, reconnect=FAST
    ) as (proxy, client):
        yield proxy, client


@pytest.mark.parametrize("version", VERSIONS)
async def test_black_hole_is_detected_by_keepalive_then_reconnected(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    topic = unique("hole")
    with trio.fail_after(15):
        async with (
            keepalive_1s_behind_proxy(mosquitto, version) as (proxy, client),
            client.subscribe(topic, qos=1) as messages,
        ):
            with client.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                proxy.blackhole(up=True, down=True)  # sockets stay open, bytes vanish
                lost = await next_change(changes, Disconnected)
                assert isinstance(lost, Disconnected)
                assert "did not answer PINGREQ" in str(lost.cause)
                proxy.blackhole()
                await next_change(changes, Connected)
            await client.publish(topic, b"through", qos=1)
            assert (await messages.receive()).payload == b"through"


@pytest.mark.parametrize("version", VERSIONS)
async def test_publishes_wait_offline_and_go_out_in_call_order(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    topic = unique("offline")
    results: list[int] = []
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as watcher,
            watcher.subscribe(topic, qos=1) as messages,
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, protocol=version, reconnect=FAST
            ) as client,
        ):
            with client.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                proxy.refuse()
                proxy.cut()
                await next_change(changes, Disconnected)
                assert client.state is not ClientState.CONNECTED

                async def publish(n: int, qos: int) -> None:
                    await client.publish(topic, str(n).encode(), qos=qos)
                    results.append(n)

                async with trio.open_nursery() as nursery:
                    for n in range(30):
                        # each publish is queued before the next starts: call order is known
                        nursery.start_soon(publish, n, n % 3)
                        await trio.testing.wait_all_tasks_blocked()
                    assert results == []  # all waiting while offline
                    proxy.refuse(False)
            assert sorted(results) == list(range(30))
            received = [int((await messages.receive()).payload) for _ in range(30)]
    # Mosquitto forwards QoS 0/1 messages on receipt and QoS 2 ones on PUBREL, so call order
    # is observable among QoS 0/1 and among QoS 2 [MQTT-4.6.0-6]
    assert [n for n in received if n % 3 != 2] == [n for n in range(30) if n % 3 != 2]
    assert [n for n in received if n % 3 == 2] == list(range(2, 30, 3))


async def test_offline_queue_full_and_offline_timeout(mosquitto: Mosquitto) -> None:
    with trio.fail_after(10):
        async with (
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, reconnect=FAST, offline_queue=2, offline_timeout=0.2
            ) as client,
        ):
            with client.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                proxy.refuse()
                proxy.cut()
                await next_change(changes, Disconnected)
            outcomes: list[str] = []

            async def publish(n: int) -> None:
                try:
                    await client.publish("t/offline", b"x", qos=1)
                    outcomes.append("sent")
                except NotConnectedError as exc:
                    outcomes.append("full" if "full" in str(exc) else "timeout")

            async with trio.open_nursery() as nursery:
                for n in range(3):
                    nursery.start_soon(publish, n)
                    await trio.testing.wait_all_tasks_blocked()
    assert sorted(outcomes) == ["full", "timeout", "timeout"]


async def test_the_offline_queue_is_bounded_in_bytes_too(mosquitto: Mosquitto) -> None:
    """10,000 publishes of 10 KB took 157 MB while offline: offline_queue_bytes bounds the
    payload held (here 1 MB: two 400 KB messages fit, a third does not), and what was
    queued goes out, whole, once the broker is back."""
    topic = unique("offline-bytes")
    big = bytes(400_000)
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url) as watcher,
            watcher.subscribe(topic, qos=1) as messages,
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, reconnect=FAST, offline_queue_bytes=1_000_000
            ) as client,
        ):
            with client.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                proxy.refuse()
                proxy.cut()
                await next_change(changes, Disconnected)
            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(
                        functools.partial(client.publish, topic, big, qos=1)
                    )
                    await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(NotConnectedError, match="bytes"):
                    await client.publish(topic, big, qos=1)
                # still room for this one
                nursery.start_soon(functools.partial(client.publish, topic, b"small"))
                await trio.testing.wait_all_tasks_blocked()
                proxy.refuse(False)
            payloads = [(await messages.receive()).payload for _ in range(3)]
    assert sorted(payloads, key=len) == [b"small", big, big]


async def test_without_reconnect_a_cut_raises(mosquitto: Mosquitto) -> None:
    with trio.fail_after(10), pytest.raises(ConnectionLostError):
        async with (
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(proxy.url, reconnect=None) as client,
        ):
            proxy.cut()
            await client.wait_connected()
            await trio.sleep_forever()


async def test_gives_up_after_max_attempts(mosquitto: Mosquitto) -> None:
    # stable_after=0: the connection cut below counts as having lasted (by default one
    # lost within 5 s of its CONNACK is itself a failed attempt)
    policy = ReconnectPolicy(
        initial_delay=0.01, max_delay=0.01, max_attempts=3, stable_after=0
    )
    with trio.fail_after(10), pytest.raises(trio_mqtt.ConnectError):
        async with (
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(proxy.url, reconnect=policy),
        ):
            proxy.refuse()
            proxy.cut()
            await trio.sleep_forever()
    assert proxy.connections == 1 + 3


async def test_endpoints_are_tried_in_turn(mosquitto: Mosquitto) -> None:
    dead = f"mqtt://127.0.0.1:{free_port()}"
    with trio.fail_after(10):
        async with trio_mqtt.open_client([dead, mosquitto.url]) as client:
            assert (await client.publish("t/endpoints", b"x", qos=1)).packet_id


async def test_first_connect_waits_for_the_broker_when_asked(
    mosquitto: Mosquitto,
) -> None:
    policy = ReconnectPolicy(
        initial_delay=0.05, max_delay=0.1, retry_first_connect=True
    )
    with trio.fail_after(10):
        async with open_proxy(mosquitto.port) as proxy:
            proxy.refuse()

            async def open_the_door() -> None:
                while proxy.connections < 3:
                    await proxy.connected.wait()
                proxy.refuse(False)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(open_the_door)
                async with trio_mqtt.open_client(proxy.url, reconnect=policy) as client:
                    assert client.state is ClientState.CONNECTED
            assert proxy.connections >= 4


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [1, 2])
async def test_unacknowledged_publish_is_resent_on_resume(
    mosquitto: Mosquitto, version: ProtocolVersion, qos: int
) -> None:
    """The acknowledgement is lost on the way back; the resumed session resends the PUBLISH with
    DUP=1 and the waiting publish() resolves; QoS 2 arrives once."""
    topic = unique("resume")
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(
                mosquitto.url, client_id=unique("sub"), protocol=version
            ) as watcher,
            watcher.subscribe(topic, qos=2) as messages,
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, client_id=unique("pub"), protocol=version, reconnect=FAST,
                **persistent(version),  # type: ignore[arg-type]
            ) as client,
        ):  # fmt: skip
            proxy.blackhole(
                down=True
            )  # the broker gets the PUBLISH; we never hear back
            result: list[trio_mqtt.PublishResult] = []

            async def publish() -> None:
                result.append(await client.publish(topic, b"once", qos=qos))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(publish)
                # the broker answered (PUBACK/PUBREC, 4 bytes), so it has the message
                await proxy.wait_dropped_down(4)
                if qos == 1:  # Mosquitto forwards QoS 2 only on PUBREL
                    assert (await messages.receive()).payload == b"once"
                with client.watch_state() as changes:
                    await anext(changes)  # where the client is now (Connected)
                    proxy.blackhole()
                    proxy.cut()
                    back = await next_change(changes, Connected)
                    assert isinstance(back, Connected)
                    assert back.session_present
            assert result[0].packet_id is not None
            await watcher.publish(topic, b"sentinel", qos=1)
            after = (await messages.receive()).payload
            if qos == 2:
                assert after == b"once"
                assert (await messages.receive()).payload == b"sentinel"  # exactly once
            else:
                assert after in (b"once", b"sentinel")  # a QoS 1 duplicate is allowed


async def publish_while_cut(
    url: Callable[[int], str],
    port: int,
    version: ProtocolVersion,
    *,
    qos: int,
    count: int,
    **options: Any,
) -> tuple[list[int], int]:
    """A persistent subscriber reaches the broker's ``port`` through a proxy (``url(port)`` is
    how to reach a port); its connection is cut and refused while ``count`` messages are
    published; the session must be resumed. Returns what it received and its reconnects."""
    topic = unique("queued")
    async with (
        trio_mqtt.open_client(url(port), protocol=version, **options) as publisher,
        open_proxy(port) as proxy,
        trio_mqtt.open_client(
            url(proxy.port), client_id=unique("persub"), protocol=version,
            reconnect=FAST, **persistent(version), **options,
        ) as subscriber,
        subscriber.subscribe(topic, qos=qos) as messages,
    ):  # fmt: skip
        with subscriber.watch_state() as changes:
            await anext(changes)  # where the client is now (Connected)
            proxy.refuse()
            proxy.cut()
            await next_change(changes, Disconnected)
            for n in range(count):
                await publisher.publish(topic, str(n).encode(), qos=qos)
            proxy.refuse(False)
            back = await next_change(changes, Connected)
            assert isinstance(back, Connected)
            assert back.session_present
        received = [int((await messages.receive()).payload) for _ in range(count)]
    return received, subscriber.reconnects


@pytest.mark.parametrize("version", VERSIONS)
async def test_persistent_subscriber_misses_nothing_while_cut(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    with trio.fail_after(15):
        received, reconnects = await publish_while_cut(
            lambda port: f"mqtt://127.0.0.1:{port}",
            mosquitto.port,
            version,
            qos=2,
            count=20,
        )
    assert received == list(range(20))
    assert reconnects == 1


async def test_redelivery_of_a_message_the_application_holds_is_not_handed_over_twice(
    mosquitto: Mosquitto,
) -> None:
    """A message received but not yet acknowledged when the link drops is redelivered by the
    resumed session (DUP=1); the client re-binds it instead of delivering a copy, and the late
    acknowledgement leaves on the new connection."""
    topic = unique("held")
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto.url) as publisher,
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(
                proxy.url, client_id=unique("held"), reconnect=FAST,
                clean_start=False, session_expiry=300,
            ) as subscriber,
            subscriber.subscribe(topic, qos=1, manual_ack=True) as messages,
        ):  # fmt: skip
            await publisher.publish(topic, b"1", qos=1)
            first = await messages.receive()
            with subscriber.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                proxy.cut()
                await next_change(changes, Connected)
            await publisher.publish(topic, b"2", qos=1)
            second = await messages.receive()
            assert (first.payload, second.payload) == (b"1", b"2")
            first.ack()
            second.ack()
            assert messages.statistics().delivered == 2


@pytest.mark.parametrize("version", VERSIONS)
async def test_manual_ack(mosquitto: Mosquitto, version: ProtocolVersion) -> None:
    """Unacknowledged messages come back to a restarted application; acknowledged ones do not,
    even when the acknowledgement is given across a reconnect."""
    topic = unique("manual")
    client_id = unique("manual")
    options = {"client_id": client_id, "protocol": version, **persistent(version)}
    with trio.fail_after(20):
        async with trio_mqtt.open_client(mosquitto.url, protocol=version) as publisher:
            async with (
                open_proxy(mosquitto.port) as proxy,
                trio_mqtt.open_client(proxy.url, reconnect=FAST, **options) as app,  # type: ignore[arg-type]
                app.subscribe(topic, qos=1, manual_ack=True) as messages,
            ):
                for n in range(4):
                    await publisher.publish(topic, str(n).encode(), qos=1)
                got = [await messages.receive() for _ in range(4)]
                got[0].ack()
                got[0].ack()  # idempotent
                # a barrier: this PUBACK comes back after the broker has read the one for "0"
                await app.publish(unique("barrier"), b"", qos=1)
                with app.watch_state() as changes:
                    await anext(changes)  # where the client is now (Connected)
                    proxy.cut()
                    await next_change(changes, Connected)
                got[1].ack()  # acknowledged on the resumed connection
            # the application "crashes" with 2 and 3 unacknowledged; a new one gets them again
            async with (
                trio_mqtt.open_client(mosquitto.url, **options) as again,  # type: ignore[arg-type]
                again.subscribe(topic, qos=1, manual_ack=True) as redelivered,
            ):
                await publisher.publish(topic, b"sentinel", qos=1)
                payloads = []
                while not payloads or payloads[-1] != b"sentinel":
                    message = await redelivered.receive()
                    payloads.append(message.payload)
                    message.ack()
    assert payloads == [b"2", b"3", b"sentinel"]


@asynccontextmanager
async def redirecting_server(
    reference: str, *, after_connect: bool
) -> AsyncIterator[str]:
    """A TCP server that answers CONNECT with CONNACK 0x9D (server moved) and a Server Reference,
    or, ``after_connect``, accepts and answers the first request with DISCONNECT 0x9C (use
    another server)."""
    from trio_mqtt.lowlevel import (
        ConnAck,
        Disconnect,
        PacketReader,
        Properties,
        encode_packet,
    )

    async def handle(stream: trio.SocketStream) -> None:
        reader = PacketReader()
        while not reader.feed(await stream.receive_some()):
            pass  # until the CONNECT is complete
        props = Properties(server_reference=reference)
        if after_connect:
            await stream.send_all(encode_packet(ConnAck()))
            while not reader.feed(await stream.receive_some()):
                pass  # until the client's first request (its SUBSCRIBE)
            packet = Disconnect(
                reason_code=ReasonCode.USE_ANOTHER_SERVER, properties=props
            )
        else:
            packet = ConnAck(reason_code=ReasonCode.SERVER_MOVED, properties=props)
        await stream.send_all(encode_packet(packet))
        await stream.receive_some()  # the client closes

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        )
        yield f"mqtt://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("after_connect", [False, True], ids=["connack", "disconnect"])
async def test_server_reference_is_followed(
    mosquitto: Mosquitto, after_connect: bool
) -> None:
    """MQTT 5 redirection (section 4.11): CONNACK 0x9D or DISCONNECT 0x9C with a Server
    Reference sends the client to the referenced server, at once."""
    topic = unique("moved")
    with trio.fail_after(10):
        async with (
            redirecting_server(f"127.0.0.1:{mosquitto.port}", after_connect=after_connect) as url,
            trio_mqtt.open_client(url, reconnect=FAST) as client,
        ):  # fmt: skip
            with client.watch_state() as changes:
                await anext(changes)  # where the client is now (Connected)
                # after_connect: SUBSCRIBE is answered by DISCONNECT; asked again at Mosquitto
                async with client.subscribe(topic, qos=1) as messages:
                    if after_connect:
                        change = await next_change(changes, Connected)
                        assert isinstance(change, Connected)
                        assert change.endpoint.port == mosquitto.port
                    await client.publish(topic, b"here", qos=1)
                    assert (await messages.receive()).payload == b"here"
            assert client.endpoint.port == mosquitto.port


@pytest.mark.parametrize("version", VERSIONS)
async def test_manual_ack_leaves_unseen_messages_to_the_broker(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    """Leaving a manual-ack subscription with messages still buffered (a worker shutting down)
    does not acknowledge them: the next process of the session gets them."""
    topic = unique("unseen")
    options = {
        "client_id": unique("worker"),
        "protocol": version,
        **persistent(version),
    }
    with trio.fail_after(20):
        async with trio_mqtt.open_client(mosquitto.url, protocol=version) as publisher:
            async with (
                trio_mqtt.open_client(mosquitto.url, **options) as app,  # type: ignore[arg-type]
                app.subscribe(topic, qos=1, manual_ack=True) as jobs,
                app.subscribe(topic, qos=1) as observer,
            ):  # fmt: skip
                for n in range(3):
                    await publisher.publish(topic, str(n).encode(), qos=1)
                # routed to both subscriptions at once: all three are in `jobs` now
                assert [(await observer.receive()).payload for _ in range(3)] == [
                    b"0", b"1", b"2",
                ]  # fmt: skip
                assert jobs.statistics().buffered == 3
                (await jobs.receive()).ack()
            async with (
                trio_mqtt.open_client(mosquitto.url, **options) as again,  # type: ignore[arg-type]
                again.subscribe(topic, qos=1, manual_ack=True) as redelivered,
            ):  # fmt: skip
                await publisher.publish(topic, b"sentinel", qos=1)
                payloads = []
                while not payloads or payloads[-1] != b"sentinel":
                    message = await redelivered.receive()
                    payloads.append(message.payload)
                    message.ack()
    assert payloads == [b"1", b"2", b"sentinel"]
