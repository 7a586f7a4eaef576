"""The client against a real Mosquitto, both protocol versions."""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter

import pytest
import trio

import trio_mqtt
from tests.mosquitto import Mosquitto
from tests.proxy import open_proxy
from trio_mqtt import ConnectionLostError, ProtocolVersion, QoS, ReasonCode, Will

VERSIONS = [ProtocolVersion.V5, ProtocolVersion.V311]
_ids = itertools.count()


def unique(prefix: str) -> str:
    """A topic or client id no other test uses (tests share one broker)."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


@pytest.mark.parametrize("version", VERSIONS)
async def test_sensor_network_sequence(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    topic = unique("home") + "/livingroom/temperature"
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(
                mosquitto.url, client_id=unique("app"), protocol=version
            ) as app,
            trio_mqtt.open_client(
                mosquitto.url, client_id=unique("sensor"), protocol=version
            ) as sensor,
            app.subscribe(topic.replace("/livingroom/", "/+/"), qos=1) as readings,
        ):
            result = await sensor.publish(topic, b"23", qos=1)
            assert result.packet_id is not None
            assert result.reason_code is ReasonCode.SUCCESS
            message = await readings.receive()
    assert (message.topic, message.payload, message.qos, message.retain) == (
        topic,
        b"23",
        QoS.AT_LEAST_ONCE,
        False,
    )


@pytest.mark.parametrize("version", VERSIONS)
async def test_retained_messages(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    base = unique("retained")
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto.url, protocol=version) as publisher:
            await publisher.publish(f"{base}/a", b"first", qos=1, retain=True)
            await publisher.publish(
                f"{base}/a", b"last", qos=2, retain=True
            )  # replaces "first"
            await publisher.publish(f"{base}/b", b"other", qos=1, retain=True)
            async with publisher.subscribe(f"{base}/#", qos=1) as late:
                retained = {(m := await late.receive()).topic: m for _ in range(2)}
                await publisher.publish(f"{base}/a", b"new", qos=1)
                fresh = await late.receive()
            # The last retained message per topic comes first, at the subscription's QoS (1, not 2).
            assert retained[f"{base}/a"].payload == b"last"
            assert retained[f"{base}/a"].retain is True
            assert retained[f"{base}/a"].qos == QoS.AT_LEAST_ONCE
            assert retained[f"{base}/b"].payload == b"other"
            assert (fresh.payload, fresh.retain) == (b"new", False)
            # An empty retained payload clears the topic: a new subscriber only sees the sentinel.
            await publisher.publish(f"{base}/a", b"", qos=1, retain=True)
            await publisher.publish(f"{base}/b", b"", qos=1, retain=True)
            async with publisher.subscribe(f"{base}/#", qos=1) as after:
                await publisher.publish(f"{base}/sentinel", b"s", qos=1)
                first = await after.receive()
            assert (first.topic, first.retain) == (f"{base}/sentinel", False)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("pub_qos", list(QoS))
@pytest.mark.parametrize("sub_qos", list(QoS))
async def test_qos_both_directions(
    mosquitto: Mosquitto, version: ProtocolVersion, pub_qos: QoS, sub_qos: QoS
) -> None:
    topic = unique("qos")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as client,
            client.subscribe(topic, qos=sub_qos) as messages,
        ):
            payloads = [bytes([i]) * i for i in range(1, 6)]
            for payload in payloads:
                await client.publish(topic, payload, qos=pub_qos)
            received = [await messages.receive() for _ in payloads]
    assert [m.payload for m in received] == payloads  # in order, [MQTT-4.6.0-5]
    assert {m.qos for m in received} == {min(pub_qos, sub_qos)}


@pytest.mark.parametrize("version", VERSIONS)
async def test_ten_thousand_concurrent_publishes(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    topic = unique("flood")
    tasks, per_task = 100, 100
    received: Counter[bytes] = Counter()
    with trio.fail_after(60):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as publisher,
            trio_mqtt.open_client(mosquitto.url, protocol=version) as subscriber,
            subscriber.subscribe(f"{topic}/#", qos=1) as messages,
        ):
            results: list[trio_mqtt.PublishResult] = []

            async def publish_many(task: int) -> None:
                for i in range(per_task):
                    results.append(
                        await publisher.publish(
                            f"{topic}/{task}", f"{task}:{i}".encode(), qos=1
                        )
                    )

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for task in range(tasks):
                    nursery.start_soon(publish_many, task)
                async for message in messages:
                    received[message.payload] += 1
                    if len(received) == tasks * per_task:
                        break
            elapsed = time.perf_counter() - started
    print(
        f"\n10,000 concurrent QoS 1 publishes ({version.name}) resolved and received in {elapsed:.2f}s"
    )
    assert len(results) == tasks * per_task
    assert (
        len({r.packet_id for r in results[:100]}) == 100
    )  # pipelined: distinct ids in flight
    assert set(received) == {
        f"{t}:{i}".encode() for t in range(tasks) for i in range(per_task)
    }


@pytest.mark.parametrize("version", VERSIONS)
async def test_overlapping_subscriptions_and_unsubscribe(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    base = unique("overlap")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as client,
            trio_mqtt.open_client(
                mosquitto.url
            ) as probe,  # MQTT 5: PUBACK tells whether anyone subscribes
        ):
            async with client.subscribe(f"{base}/+/c", qos=1) as narrow:
                async with client.subscribe(f"{base}/#", qos=1) as wide:
                    await probe.publish(f"{base}/b/c", b"both", qos=1)
                    await probe.publish(f"{base}/x", b"wide only", qos=1)
                    assert (await narrow.receive()).payload == b"both"
                    assert [(await wide.receive()).payload for _ in range(2)] == [
                        b"both",
                        b"wide only",
                    ]
                # Leaving "wide" unsubscribed from "#"; "narrow" still receives.
                assert (
                    await probe.publish(f"{base}/x", b"-", qos=1)
                ).reason_code is ReasonCode.NO_MATCHING_SUBSCRIBERS
                await probe.publish(f"{base}/b/c", b"narrow still", qos=1)
                assert (await narrow.receive()).payload == b"narrow still"
            assert (
                await probe.publish(f"{base}/b/c", b"-", qos=1)
            ).reason_code is ReasonCode.NO_MATCHING_SUBSCRIBERS


@pytest.mark.parametrize("version", VERSIONS)
async def test_shared_filter_survives_one_subscription_leaving(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    topic = unique("same")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as client,
            client.subscribe(topic, qos=1) as first,
        ):
            async with client.subscribe(topic, qos=1) as second:
                await client.publish(topic, b"1", qos=1)
                assert (await second.receive()).payload == b"1"
            await client.publish(
                topic, b"2", qos=1
            )  # the filter is still in use by "first"
            assert [(await first.receive()).payload for _ in range(2)] == [b"1", b"2"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_will_on_vanish_not_on_disconnect(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    status = unique("status")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as watcher,
            watcher.subscribe(status, qos=1) as statuses,
        ):
            will = Will(status, b"offline", qos=1)
            async with trio_mqtt.open_client(
                mosquitto.url, protocol=version, will=will
            ):
                pass  # clean DISCONNECT: the broker discards the will ([MQTT-3.1.2-8])
            await watcher.publish(status, b"sentinel", qos=1)
            assert (await statuses.receive()).payload == b"sentinel"

            with pytest.raises(ConnectionLostError):
                async with (
                    open_proxy(mosquitto.port) as proxy,
                    trio_mqtt.open_client(
                        proxy.url, protocol=version, will=will, reconnect=None
                    ),
                ):
                    assert proxy.cut() == 1  # vanish: no DISCONNECT
                    await trio.sleep_forever()
            message = await statuses.receive()
    assert (message.payload, message.qos) == (b"offline", QoS.AT_LEAST_ONCE)


@pytest.mark.parametrize("version", VERSIONS)
async def test_mosquitto_pub_to_us_intact(
    mosquitto: Mosquitto, version: ProtocolVersion, tmp_path: object
) -> None:
    topic = unique("interop-in")
    every_byte = bytes(range(256)) * 4
    large = os.urandom(3 * 1024 * 1024)
    with trio.fail_after(30):
        async with (
            trio_mqtt.open_client(mosquitto.url, protocol=version) as client,
            client.subscribe(topic, qos=1) as messages,
        ):
            for payload in (every_byte, large):
                path = trio.Path(str(tmp_path)) / "payload.bin"
                await path.write_bytes(payload)
                await trio.run_process(
                    [
                        "mosquitto_pub",
                        "-p",
                        str(mosquitto.port),
                        "-t",
                        topic,
                        "-q",
                        "1",
                        "-f",
                        str(path),
                    ]
                )
                assert (await messages.receive()).payload == payload


@pytest.mark.parametrize("version", VERSIONS)
async def test_we_publish_mosquitto_sub_prints_intact(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    topic = unique("interop-out")
    payload = bytes(range(256)) * 8 + os.urandom(2 * 1024 * 1024)
    done = trio.Event()
    outputs: list[bytes] = []

    async def run_sub() -> None:
        argv = [
            "mosquitto_sub",
            "-p",
            str(mosquitto.port),
            "-t",
            topic,
            "-q",
            "1",
            "-C",
            "1",
            "-N",
        ]
        outputs.append((await trio.run_process(argv, capture_stdout=True)).stdout)
        done.set()

    with trio.fail_after(30):
        async with (
            trio.open_nursery() as nursery,
            trio_mqtt.open_client(mosquitto.url, protocol=version) as client,
        ):
            nursery.start_soon(run_sub)
            # Publish until mosquitto_sub (which subscribes at some point) has printed one message.
            while not done.is_set():
                await client.publish(topic, payload, qos=1)
                with trio.move_on_after(0.2):
                    await done.wait()
    assert outputs == [payload]


async def test_v5_properties_pass_through(mosquitto: Mosquitto) -> None:
    topic = unique("props")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url) as client,
            client.subscribe(topic, qos=1) as messages,
        ):
            await client.publish(
                topic, "grüße", qos=1, content_type="text/plain", payload_format_indicator=1,
                message_expiry_interval=3600, response_topic="replies/1", correlation_data=b"\x00\x01",
                user_properties=[("unit", "C"), ("unit", "F")],
            )  # fmt: skip
            message = await messages.receive()
    props = message.properties
    assert message.payload == "grüße".encode()
    assert (props.content_type, props.payload_format_indicator, props.response_topic, props.correlation_data) == (
        "text/plain", trio_mqtt.PayloadFormat.UTF8, "replies/1", b"\x00\x01",
    )  # fmt: skip
    assert props.user_properties == (
        ("unit", "C"),
        ("unit", "F"),
    )  # order and duplicates kept
    assert props.message_expiry_interval is not None
    assert (
        3590 <= props.message_expiry_interval <= 3600
    )  # the broker counts down the time it held it


@pytest.mark.parametrize("version", VERSIONS)
async def test_username_and_password(
    mosquitto_auth: Mosquitto, version: ProtocolVersion
) -> None:
    with trio.fail_after(10):
        with pytest.raises(trio_mqtt.ConnectRefusedError) as info:
            async with trio_mqtt.open_client(
                mosquitto_auth.url, protocol=version, username="alice", password="wrong"
            ):
                pytest.fail("connected with a wrong password")
        # Mosquitto 2.0.11 answers a wrong password with NOT_AUTHORIZED (3.1.1 return code 5).
        assert info.value.reason_code is ReasonCode.NOT_AUTHORIZED
        assert "wrong" not in str(info.value)
        url = mosquitto_auth.url.replace("mqtt://", "mqtt://alice:wonderland@")
        async with trio_mqtt.open_client(url, protocol=version) as client:
            assert (await client.publish("auth/ok", b"1", qos=1)).packet_id is not None


@pytest.mark.parametrize("version", VERSIONS)
async def test_persistent_session_and_clean_start(
    mosquitto: Mosquitto, version: ProtocolVersion
) -> None:
    client_id = unique("persistent")
    with trio.fail_after(10):
        async with trio_mqtt.open_client(
            mosquitto.url,
            client_id=client_id,
            protocol=version,
            clean_start=False,
            session_expiry=300,
        ) as first:
            assert first.session_present is False
        async with trio_mqtt.open_client(
            mosquitto.url,
            client_id=client_id,
            protocol=version,
            clean_start=False,
            session_expiry=300,
        ) as second:
            assert second.session_present is True  # the broker kept the session
        async with trio_mqtt.open_client(
            mosquitto.url, client_id=client_id, protocol=version, clean_start=True
        ) as third:
            assert third.session_present is False  # clean start discards it


async def test_user_exception_leaves_the_block_bare(mosquitto: Mosquitto) -> None:
    class Boom(Exception):
        pass

    def count_tasks(task: trio.lowlevel.Task) -> int:
        return 1 + sum(
            count_tasks(child)
            for nursery in task.child_nurseries
            for child in nursery.child_tasks
        )

    root = trio.lowlevel.current_root_task()
    before = count_tasks(root)
    with trio.fail_after(10):
        with pytest.raises(Boom):  # not an ExceptionGroup
            async with (
                trio_mqtt.open_client(mosquitto.url) as client,
                client.subscribe("boom/#"),
            ):
                # one task: the supervisor, which reads (the writer runs only while there
                # is something the publishing tasks could not send themselves)
                assert count_tasks(root) == before + 1
                raise Boom
    assert count_tasks(root) == before  # no task left behind


async def test_cancelled_from_outside_the_client_closes_cleanly(
    mosquitto: Mosquitto,
) -> None:
    """A cancel scope around the block cancels the client's tasks mid-read; leaving the block
    still sends DISCONNECT (Mosquitto logs a disconnect, not a closed connection), within the
    close grace, without an error and without a task left behind."""
    from trio_mqtt._io._link import CLOSE_GRACE

    client_id = unique("cancelled")
    root = trio.lowlevel.current_root_task()
    before = len(list(root.child_nurseries))
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with trio_mqtt.open_client(
                mosquitto.url, client_id=client_id
            ) as client:
                await client.publish("cancel/me", b"x", qos=1)
                scope.cancel()
                cancelled = time.monotonic()
                await trio.sleep_forever()
        elapsed = time.monotonic() - cancelled
        log = await mosquitto.wait_for_log(f"Client {client_id} disconnected.")
    assert scope.cancelled_caught
    assert f"Client {client_id} closed its connection" not in log
    assert elapsed < CLOSE_GRACE
    assert len(list(root.child_nurseries)) == before


async def test_connect_error_carries_the_cause() -> None:
    from tests.mosquitto import free_port

    with trio.fail_after(10), pytest.raises(trio_mqtt.ConnectError) as info:
        async with trio_mqtt.open_client(f"mqtt://127.0.0.1:{free_port()}"):
            pytest.fail("connected to a closed port")
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize("qos", list(QoS))
async def test_invalid_topic_raises_value_error_and_leaks_no_packet_id(
    mosquitto: Mosquitto, qos: QoS
) -> None:
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto.url) as client:
            for topic, fragment in (
                ("a/#", "wildcard"),
                ("a/+/b", "wildcard"),
                ("", "empty"),
                ("a\x00", r"U\+0000"),
            ):
                with pytest.raises(ValueError, match=fragment):
                    await client.publish(topic, b"x", qos=qos)
            assert len(client._supervisor.session.packet_ids) == 0
            result = await client.publish(
                "ok", b"x", qos=qos
            )  # the client is still usable
            assert (
                not result.reason_code.is_failure
            )  # SUCCESS, or NO_MATCHING_SUBSCRIBERS (0x10)


def test_bad_arguments_raise_at_the_call() -> None:
    """open_client() checks its arguments when called, before any ``async with`` (and with no
    event loop): the caller's mistake surfaces where it was made."""
    with pytest.raises(ValueError, match="offline_queue"):
        trio_mqtt.open_client("mqtt://127.0.0.1", offline_queue=-1)
    with pytest.raises(ValueError, match="scheme"):
        trio_mqtt.open_client("http://127.0.0.1")


async def test_an_open_client_block_is_entered_once(mosquitto: Mosquitto) -> None:
    block = trio_mqtt.open_client(mosquitto.url)
    async with block as client:
        await client.publish(unique("once"), b"x", qos=1)
    with pytest.raises(RuntimeError, match="entered once"):
        async with block:
            pass
