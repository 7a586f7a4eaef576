"""Leaving ``open_client()`` by cancellation is a clean disconnect, checked at the broker.

Every way a Trio program stops a client (a deadline, ``fail_after``, a service task whose
nursery is cancelled, with a subscription block open or not) must send DISCONNECT 0x00 so that
Mosquitto ends the session normally and discards the will ([MQTT-3.1.2-8], [MQTT-3.14.4-3]),
within the close grace, and raise nothing but what the caller's own scope expects.
"""

from __future__ import annotations

import fcntl
import functools
import signal
import ssl
import termios
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import trio

import trio_mqtt
from tests.child import child, read_all
from tests.ejabberd import PASSWORD, USERNAME, Ejabberd
from tests.integration.test_client import VERSIONS, unique
from tests.mosquitto import Mosquitto, TLSFiles
from tests.proxy import open_proxy
from trio_mqtt import MQTTClient, ProtocolVersion, TLSConfig, Will
from trio_mqtt._io._link import CLOSE_GRACE

Opener = Callable[[], AbstractAsyncContextManager[MQTTClient]]
WAYS = ["move_on_after", "fail_after", "service_task", "subscription_open"]


async def leave_by_cancellation(way: str, open_client: Opener) -> float:
    """Open a client and leave its block the ``way`` given; return the seconds from the
    cancellation to the block's exit."""
    cancelled_at = 0.0

    if way == "service_task":

        async def service(*, task_status: trio.TaskStatus[MQTTClient]) -> None:
            async with open_client() as client:
                task_status.started(client)
                await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            await nursery.start(service)
            cancelled_at = time.monotonic()
            nursery.cancel_scope.cancel()
        return time.monotonic() - cancelled_at

    if way == "fail_after":
        with pytest.raises(trio.TooSlowError):  # the caller's own timeout, bare
            with trio.fail_after(60) as scope:
                async with open_client():
                    cancelled_at = time.monotonic()
                    scope.deadline = trio.current_time()  # the deadline passes now
                    await trio.sleep_forever()
        return time.monotonic() - cancelled_at

    with trio.move_on_after(60) as scope:
        async with open_client() as client:
            cancelled_at = time.monotonic()
            scope.deadline = trio.current_time()
            if way == "subscription_open":
                async with client.subscribe(unique("open/sub"), qos=1):
                    await trio.sleep_forever()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    return time.monotonic() - cancelled_at


@asynccontextmanager
async def will_watcher(
    url: str, topic: str, **options: object
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[None]]]:
    """A client subscribed to the will topic; yields a check that nothing but a sentinel
    arrived there (order on one topic is kept, so a will published earlier comes first)."""
    async with (
        trio_mqtt.open_client(url, **options) as watcher,  # type: ignore[arg-type]
        watcher.subscribe(topic, qos=1) as messages,
    ):

        @asynccontextmanager
        async def no_will() -> AsyncIterator[None]:
            yield
            await watcher.publish(topic, b"sentinel", qos=1)
            assert (await messages.receive()).payload == b"sentinel"

        yield no_will


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("transport", ["tcp", "tls"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_leaving_by_cancellation_disconnects_cleanly(
    mosquitto_tls: Mosquitto,
    tls_files: TLSFiles,
    version: ProtocolVersion,
    transport: str,
    way: str,
) -> None:
    options: dict[str, object] = {"protocol": version}
    url = mosquitto_tls.url
    if transport == "tls":
        url = f"mqtts://localhost:{mosquitto_tls.tls_port}"
        options["tls"] = TLSConfig(ca_file=tls_files.ca_pem)
    client_id = unique("leaver")
    will_topic = unique("will")

    def open_client() -> AbstractAsyncContextManager[MQTTClient]:
        return trio_mqtt.open_client(
            url,
            client_id=client_id,
            will=Will(will_topic, b"died", qos=1),
            **options,  # type: ignore[arg-type]
        )

    with trio.fail_after(10):
        async with will_watcher(url, will_topic, **options) as no_will, no_will():
            elapsed = await leave_by_cancellation(way, open_client)
            log = await mosquitto_tls.wait_for_log(f"Client {client_id} disconnected.")
    assert f"Client {client_id} closed its connection" not in log
    assert elapsed < CLOSE_GRACE  # no stall: the DISCONNECT goes at once


async def test_the_check_sees_a_will(
    mosquitto_tls: Mosquitto,
) -> None:
    """The checks above can fail: a client that vanishes without DISCONNECT is logged as
    having closed its connection, and its will reaches the watcher before the sentinel."""
    client_id = unique("vanisher")
    will_topic = unique("will")
    with trio.fail_after(10):
        async with will_watcher(mosquitto_tls.url, will_topic) as no_will:
            with pytest.raises(AssertionError):
                async with no_will():
                    with pytest.raises(trio_mqtt.ConnectionLostError):
                        async with (
                            open_proxy(mosquitto_tls.port) as proxy,
                            trio_mqtt.open_client(
                                proxy.url,
                                client_id=client_id,
                                will=Will(will_topic, b"died", qos=1),
                                reconnect=None,
                            ),
                        ):
                            assert proxy.cut() == 1  # vanish: no DISCONNECT
                            await trio.sleep_forever()
            await mosquitto_tls.wait_for_log(
                f"Client {client_id} closed its connection."
            )


async def _run_until_cancelled(
    url: str, client_id: str, *topics: str, **options: object
) -> None:
    """A program with a persistent session, subscribed, stopped by cancellation."""
    with trio.move_on_after(60) as scope:
        async with (
            trio_mqtt.open_client(url, client_id=client_id, **options) as client,  # type: ignore[arg-type]
            client.subscribe(*topics, qos=2),
        ):
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def _publish_while_away(url: str, topic: str, count: int) -> None:
    async with trio_mqtt.open_client(url) as publisher:
        for n in range(count):
            await publisher.publish(topic, b"%d" % n, qos=1)


def _persistent(version: ProtocolVersion) -> dict[str, object]:
    # MQTT 5: a session expiry keeps the session; 3.1.1: clean session off ([MQTT-3.1.2-4])
    options: dict[str, object] = {"protocol": version, "clean_start": False}
    if version is ProtocolVersion.V5:
        options["session_expiry"] = 300
    return options


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_persistent_session_keeps_its_subscriptions_across_a_stop(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    """The natural program (client block, subscription block inside) stopped by cancellation
    does not unsubscribe: what is published while it is away arrives when it restarts."""
    client_id, topic = unique("persistent"), unique("persist/t")
    options = _persistent(version)
    with trio.fail_after(10):
        await _run_until_cancelled(mosquitto.url, client_id, topic, **options)
        await _publish_while_away(mosquitto.url, topic, 3)
        async with (
            trio_mqtt.open_client(
                mosquitto.url, client_id=client_id, **options
            ) as client,  # type: ignore[arg-type]
            client.subscribe(topic, qos=1) as messages,
        ):
            assert client.session_present
            got = [(await messages.receive()).payload for _ in range(3)]
    assert got == [b"0", b"1", b"2"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_unsubscribe_ends_a_kept_subscription(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    """client.unsubscribe() ends what a stopped program kept; a subscription block left
    normally unsubscribes too. Either way nothing published afterwards is queued."""
    client_id, kept, left = unique("persistent"), unique("kept/t"), unique("left/t")
    options = _persistent(version)
    with trio.fail_after(10):
        await _run_until_cancelled(mosquitto.url, client_id, kept, **options)
        async with trio_mqtt.open_client(
            mosquitto.url, client_id=client_id, **options
        ) as client:  # type: ignore[arg-type]
            await client.unsubscribe(kept)
            with pytest.raises(ValueError, match="live subscription"):
                async with client.subscribe(left, qos=1):  # left by an error: kept
                    await client.unsubscribe(left)
            async with client.subscribe(left, qos=1):
                pass  # left normally: UNSUBSCRIBE
        for topic in (kept, left):
            await _publish_while_away(mosquitto.url, topic, 1)
        async with (
            trio_mqtt.open_client(
                mosquitto.url, client_id=client_id, **options
            ) as client,  # type: ignore[arg-type]
            client.subscribe(kept, left, "sentinel/" + client_id, qos=1) as messages,
        ):
            await client.publish("sentinel/" + client_id, b"sentinel", qos=1)
            # anything queued for the session arrives first (right after CONNACK)
            assert (await messages.receive()).payload == b"sentinel"


async def _publish_many(
    url: str, topic: str, qos: int, count: int, **options: object
) -> None:
    """Publish ``count`` messages, 100 in flight at a time."""
    async with trio_mqtt.open_client(url, **options) as publisher:  # type: ignore[arg-type]
        for start in range(0, count, 100):
            async with trio.open_nursery() as nursery:
                for n in range(start, min(start + 100, count)):
                    nursery.start_soon(
                        functools.partial(publisher.publish, topic, b"%d" % n, qos=qos)
                    )


@pytest.mark.parametrize("version", VERSIONS)
async def test_queued_messages_wait_for_a_late_subscription_and_none_is_dropped(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    """A persistent subscriber restarts with 3,000 QoS 1 and 3,000 QoS 2 messages queued for
    it, and opens its subscriptions only later. More arrive than the client holds for a
    subscription not yet opened (1,000): it stops reading instead of acknowledging and
    dropping them, and every message arrives, the QoS 2 ones once each."""
    client_id, base = unique("late"), unique("late")
    options = _persistent(version)
    count = 3000
    with trio.fail_after(30):
        await _run_until_cancelled(
            mosquitto.url, client_id, f"{base}/1", f"{base}/2", **options
        )
        for qos in (1, 2):
            await _publish_many(
                mosquitto.url, f"{base}/{qos}", qos, count, protocol=version
            )
        async with trio_mqtt.open_client(
            mosquitto.url, client_id=client_id, **options
        ) as client:  # type: ignore[arg-type]
            assert client.session_present
            await trio.sleep(0.5)  # the application is slow to subscribe: the scenario
            got: dict[int, list[bytes]] = {1: [], 2: []}
            async with (
                client.subscribe(f"{base}/1", qos=1) as ones,
                client.subscribe(f"{base}/2", qos=2) as twos,
            ):
                for qos, messages in ((1, ones), (2, twos)):
                    while len(got[qos]) < count:
                        got[qos].append((await messages.receive()).payload)
    expected = [b"%d" % n for n in range(count)]
    assert sorted(got[2], key=int) == expected  # QoS 2: each exactly once
    assert set(got[1]) == set(expected)  # QoS 1: none lost


async def test_an_unannounced_receive_maximum_is_not_enforced(
    mosquitto: Mosquitto,
) -> None:
    """MQTT 3.1.1 has no Receive Maximum to announce, so the broker may send any number of
    unacknowledged messages: a slow consumer with receive_maximum=10 must not disconnect
    over it (it livelocked: 152 reconnects in 30 s). The client holds at most 10 of them
    and stops reading until the application takes some (backpressure)."""
    topic = unique("v311-slow")
    count = 300
    buffered: list[int] = []
    with trio.fail_after(30):
        async with (
            trio_mqtt.open_client(
                mosquitto.url, protocol=ProtocolVersion.V311, receive_maximum=10
            ) as client,
            client.subscribe(topic, qos=1) as messages,
        ):
            # all 300 are sent (and acknowledged by the broker) before we take one
            await _publish_many(
                mosquitto.url, topic, 1, count, protocol=ProtocolVersion.V311
            )
            got = []
            for _ in range(count):
                buffered.append(messages.statistics().buffered)
                got.append((await messages.receive()).payload)
            assert client.reconnects == 0
    assert max(buffered) == 10  # held at the limit, never beyond
    assert sorted(got, key=int) == [b"%d" % n for n in range(count)]


@pytest.mark.parametrize("version", VERSIONS)
async def test_ack_on_arrival_lets_other_subscriptions_flow(
    ejabberd: Ejabberd, version: ProtocolVersion
) -> None:
    """ejabberd keeps one unacknowledged QoS 1 message in flight per client. Read three
    subscriptions one after another: by default the first message for the second
    subscription, unread, holds back everything else (head-of-line blocking; here a
    deadlock, as the first subscription waits for messages that never come). With
    ack_on_arrival each message is acknowledged once it is in its subscription's buffer."""
    login: dict[str, object] = {"username": USERNAME, "password": PASSWORD}
    base = unique("hol")
    topics = [f"{base}/{n}" for n in range(3)]

    async def read_in_turn(ack_on_arrival: bool) -> list[list[bytes]]:
        async with (
            trio_mqtt.open_client(
                ejabberd.mqtt_url, protocol=version, **login
            ) as client,  # type: ignore[arg-type]
            client.subscribe(topics[0], qos=1, ack_on_arrival=ack_on_arrival) as a,
            client.subscribe(topics[1], qos=1, ack_on_arrival=ack_on_arrival) as b,
            client.subscribe(topics[2], qos=1, ack_on_arrival=ack_on_arrival) as c,
        ):
            async with trio_mqtt.open_client(
                ejabberd.mqtt_url, protocol=version, **login
            ) as publisher:  # type: ignore[arg-type]
                for n in range(3):
                    for topic in topics:  # interleaved: a0 b0 c0 a1 b1 c1 ...
                        await publisher.publish(topic, b"%d" % n, qos=1)
            return [[(await s.receive()).payload for _ in range(3)] for s in (a, b, c)]

    with trio.fail_after(10):
        got = await read_in_turn(ack_on_arrival=True)
    assert got == [[b"0", b"1", b"2"]] * 3
    with trio.move_on_after(2) as stalled:
        await read_in_turn(ack_on_arrival=False)
    assert stalled.cancelled_caught  # the trade-off the option exists for


@pytest.mark.parametrize("version", VERSIONS)
async def test_ctrl_c_disconnects_cleanly(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    """Ctrl-C (SIGINT) in a program whose client runs in a service task, with a subscription
    open: Trio raises KeyboardInterrupt in the main task, the nursery cancels the service,
    and the client still sends DISCONNECT: no will, and no error but the KeyboardInterrupt."""
    client_id, will_topic = unique("ctrl-c"), unique("will")
    with trio.fail_after(20):
        async with (
            will_watcher(mosquitto.url, will_topic) as no_will,
            no_will(),
            child(
                "tests.service_client", mosquitto.url, client_id, will_topic,
                int(version), ready=b"ready",
            ) as process,
        ):  # fmt: skip
            process.send_signal(signal.SIGINT)
            await process.wait()
            stderr = await read_all(process.stderr)
    log = await mosquitto.wait_for_log(f"Client {client_id} disconnected.")
    assert f"Client {client_id} closed its connection" not in log
    # The program's own nursery wraps it (Trio's strict groups), and nothing else is there:
    # no ClosedResourceError, ConnectionLostError or other error from the client.
    report = stderr.decode()
    assert "KeyboardInterrupt" in report
    assert "(1 sub-exception)" in report
    assert "Error" not in report, report


async def test_a_shared_subscription_to_ejabberd_fails_at_once(
    ejabberd: Ejabberd,
) -> None:
    """ejabberd has no shared subscriptions and says so in CONNACK (Shared Subscription
    Available = 0): subscribe("$share/...") raises SubscribeError 0x9E without sending it.
    Sent, ejabberd answers with DISCONNECT 0x9E, and the client reconnected and resubscribed
    forever (146 reconnects in 15 s, #14)."""
    login: dict[str, object] = {"username": USERNAME, "password": PASSWORD}
    with trio.fail_after(10):
        async with trio_mqtt.open_client(ejabberd.mqtt_url, **login) as client:  # type: ignore[arg-type]
            with pytest.raises(trio_mqtt.SubscribeError) as info:
                async with client.subscribe(f"$share/g/{unique('jobs')}", qos=1):
                    pass
            assert (
                info.value.reason_code
                is trio_mqtt.ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
            )
            assert client.reconnects == 0
            await client.publish(
                unique("still"), b"up", qos=1
            )  # the connection goes on


async def test_using_a_closed_client_raises_closed_resource_error(
    mosquitto: Mosquitto,
) -> None:
    """The Trio convention: after its block, every operation of the client (and of a
    subscription left) raises trio.ClosedResourceError, at once; a state watcher just ends."""
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto.url) as client:
            async with client.subscribe(unique("closed")) as messages:
                pass
            with pytest.raises(trio.ClosedResourceError):
                await messages.receive()
        calls: list[Callable[[], object]] = [
            lambda: client.publish("t", b"x"),
            lambda: client.publish("t", b"x", qos=1),
            lambda: client.unsubscribe("t"),
            client.wait_connected,
            client.reauthenticate,
        ]
        for call in calls:
            with pytest.raises(trio.ClosedResourceError):
                await call()  # type: ignore[misc]
        with pytest.raises(trio.ClosedResourceError):
            async with client.subscribe("t"):
                pass
        with client.watch_state() as changes:
            assert [change async for change in changes] == []


class _InterruptingStream(trio.abc.Stream):
    """A TCP stream that raises SIGINT from inside the client's own code, once armed: in
    ``receive_some`` (the reader task) or ``send_all`` (the writer). This is where a Ctrl-C
    lands when the client is busy, the moment a test cannot otherwise pick."""

    def __init__(self, stream: trio.abc.Stream, where: str) -> None:
        self._stream = stream
        self._where = where
        self.armed = False

    def _maybe_interrupt(self, where: str) -> None:
        if self.armed and where == self._where:
            self.armed = False
            signal.raise_signal(signal.SIGINT)  # handled before the next line runs

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        self._maybe_interrupt("receive")
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._maybe_interrupt("send")
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self._stream.aclose()


@pytest.mark.parametrize("where", ["receive", "send"])
@pytest.mark.parametrize("version", VERSIONS)
def test_ctrl_c_inside_the_clients_own_tasks_still_disconnects_cleanly(
    mosquitto: Mosquitto, version: ProtocolVersion, where: str
) -> None:
    """A Ctrl-C that lands while the client's reader or writer runs is delivered to the main
    task at a checkpoint (the client's code is KeyboardInterrupt-protected, as Trio's own is),
    not raised in the middle of the client's bookkeeping: the block still sends DISCONNECT
    ([MQTT-3.14.4-3]: the will is discarded) and KeyboardInterrupt leaves it bare."""
    client_id, topic = unique("ki-inside"), unique("ki/inside")
    streams: list[_InterruptingStream] = []

    async def open_stream() -> trio.abc.Stream:
        tcp = await trio.open_tcp_stream("127.0.0.1", mosquitto.port)
        streams.append(_InterruptingStream(tcp, where))
        return streams[-1]

    async def main() -> None:
        with trio.fail_after(10):
            async with (
                trio_mqtt.open_client(
                    client_id=client_id, protocol=version, transport_factory=open_stream
                ) as client,
                client.subscribe(topic) as messages,
            ):
                await client.publish(topic, b"before")
                assert (await messages.receive()).payload == b"before"
                streams[-1].armed = True
                await client.publish(topic, b"interrupted")
                async for _ in messages:
                    pass

    with pytest.raises(KeyboardInterrupt) as caught:
        trio.run(main)
    assert type(caught.value) is KeyboardInterrupt  # bare, not in a group
    assert not streams[-1].armed  # the signal was raised where the test meant

    async def broker_saw() -> str:
        with trio.fail_after(5):
            return await mosquitto.wait_for_log(f"Client {client_id} disconnected.")

    log = trio.run(broker_saw)
    assert f"Client {client_id} closed its connection" not in log


@pytest.mark.parametrize("transport", ["tcp", "tls"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_leaving_with_unread_messages_in_the_socket_closes_without_a_reset(
    mosquitto_tls: Mosquitto,
    tls_files: TLSFiles,
    version: ProtocolVersion,
    transport: str,
) -> None:
    """A subscriber that is behind (its buffer is full, so it stops reading and the broker's
    messages wait in its socket) is cancelled, or Ctrl-C'd, with its subscription open: no
    UNSUBACK to read up to, the DISCONNECT goes at once. Closing a socket with unread bytes
    resets the connection (RST), and a broker that meets the reset before it has read the
    DISCONNECT ends the session as lost and publishes the will ([MQTT-3.1.2-8]): Mosquitto,
    busy writing to the client, logs "disconnected: Broken pipe". So after DISCONNECT the
    client reads until the broker closes, a lingering close: the connection ends with FIN,
    not RST (a relay between the two would see the reset), and the broker sees DISCONNECT."""
    port = mosquitto_tls.tls_port if transport == "tls" else mosquitto_tls.port
    client_id, topic, will_topic = unique("behind"), unique("flood"), unique("will")
    sockets: list[trio.socket.SocketType] = []

    async def open_stream() -> trio.abc.Stream:
        tcp = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        sockets.append(tcp.socket)
        if transport == "tcp":
            return tcp
        context = ssl.create_default_context(cafile=str(tls_files.ca_pem))
        return trio.SSLStream(tcp, context, server_hostname="localhost")

    def unread() -> int:
        return int.from_bytes(
            fcntl.ioctl(sockets[-1].fileno(), termios.FIONREAD, b"\0" * 4), "little"
        )

    with trio.fail_after(20):
        async with (
            open_proxy(port) as proxy,
            will_watcher(mosquitto_tls.url, will_topic) as no_will,
            no_will(),
            trio_mqtt.open_client(mosquitto_tls.url, protocol=version) as publisher,
        ):
            proxy.half_close = True
            with trio.CancelScope() as leave:
                async with (
                    trio_mqtt.open_client(
                        client_id=client_id, protocol=version, transport_factory=open_stream,
                        will=Will(will_topic, b"died", qos=1),
                    ) as client,
                    client.subscribe(topic, buffer_size=1, ack_on_arrival=True),
                ):  # fmt: skip
                    # 1 MB: more than the client takes in one read
                    for _ in range(1000):
                        await publisher.publish(topic, bytes(1000))
                    # Wait until the client has stopped reading and bytes wait in its
                    # socket: the kernel's queue length has no event to wait on.
                    while unread() < 65536:  # noqa: ASYNC110
                        await trio.sleep(0.01)
                    leave.cancel()
            log = await mosquitto_tls.wait_for_log(f"Client {client_id} disconnected")
    assert proxy.client_resets == 0
    assert f"Client {client_id} disconnected." in log
    assert f"Client {client_id} disconnected:" not in log  # ": Broken pipe", a reset
