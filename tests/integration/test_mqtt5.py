"""MQTT 5 features against real brokers (#16): what the CONNACK says (client.server), the
broker's limits honoured before sending, and the properties of CONNECT, PUBLISH and
DISCONNECT."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

import trio_mqtt
from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto
from tests.proxy import open_proxy
from trio_mqtt import LocalProtocolError, ProtocolVersion, QoS, ReasonCode


async def test_client_server_shows_the_brokers_connack(
    mosquitto_tight: Mosquitto,
) -> None:
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto_tight.url, keepalive=60) as client:
            server = client.server
            assert server.endpoint == client.endpoint
            assert server.session_present is False
            assert server.assigned_client_identifier  # we sent none: the broker chose
            assert server.receive_maximum == 2
            assert server.maximum_qos is QoS.AT_LEAST_ONCE
            assert server.retain_available is False
            assert server.maximum_packet_size == 256
            assert server.topic_alias_maximum == 3
            assert server.server_keep_alive == 30
            assert server.shared_subscription_available  # the spec's default: not sent


async def test_a_v311_broker_shows_the_specs_defaults(mosquitto: Mosquitto) -> None:
    async with trio_mqtt.open_client(
        mosquitto.url, protocol=ProtocolVersion.V311
    ) as client:
        server = client.server
        assert server.receive_maximum == 65535
        assert server.maximum_qos is QoS.EXACTLY_ONCE
        assert server.assigned_client_identifier is None
        assert server.properties.is_empty()


async def test_the_brokers_limits_are_honoured_before_sending(
    mosquitto_tight: Mosquitto,
) -> None:
    """Maximum QoS, Retain Available and Maximum Packet Size from the CONNACK refuse a publish
    locally, with the reason code the broker would have used; nothing is sent, and the
    connection goes on (the broker would disconnect us: [MQTT-3.2.2-11], [MQTT-3.2.2-14],
    [MQTT-3.1.2-24]). Receive Maximum 2 holds back the rest of a pipeline, never an error."""
    topic = unique("tight")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto_tight.url) as client,
            client.subscribe(topic, qos=1, buffer_size=200) as messages,
        ):
            cases = [
                ({"qos": 2}, b"x", ReasonCode.QOS_NOT_SUPPORTED),
                ({"qos": 1, "retain": True}, b"x", ReasonCode.RETAIN_NOT_SUPPORTED),
                ({"qos": 1}, b"x" * 300, ReasonCode.PACKET_TOO_LARGE),
            ]
            for options, payload, code in cases:
                with pytest.raises(LocalProtocolError) as caught:
                    await client.publish(topic, payload, **options)  # type: ignore[arg-type]
                assert caught.value.reason_code is code
            async with client.pipeline(max_in_flight=50) as pipe:
                for n in range(100):
                    await pipe.publish(topic, b"%d" % n)
            assert pipe.published == 100
            got = [(await messages.receive()).payload for _ in range(100)]
            assert got == [b"%d" % n for n in range(100)]
            assert client.reconnects == 0


async def test_disconnect_with_will_makes_the_broker_publish_it(
    mosquitto: Mosquitto,
) -> None:
    """DISCONNECT 0x04: the broker publishes the will although the client left cleanly
    (section 3.14.2.1); leaving without it, the will is discarded ([MQTT-3.1.2-10])."""
    topic = unique("will")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url) as watcher,
            watcher.subscribe(topic, qos=1) as wills,
        ):
            for farewell, payload in [
                (None, b"discarded"),
                (ReasonCode.DISCONNECT_WITH_WILL_MESSAGE, b"published"),
            ]:
                will = trio_mqtt.Will(topic, payload, qos=1)
                async with trio_mqtt.open_client(mosquitto.url, will=will) as client:
                    if farewell is not None:
                        await client.disconnect(farewell, reason_string="going")
                        with pytest.raises(trio.ClosedResourceError):
                            await client.publish(topic, b"after")
            assert (await wills.receive()).payload == b"published"
            await watcher.publish(topic, b"marker", qos=1)
            assert (await wills.receive()).payload == b"marker"  # nothing else came


async def test_disconnect_can_end_the_session(mosquitto: Mosquitto) -> None:
    """A Session Expiry Interval of 0 on DISCONNECT makes the broker discard a session it
    would have kept for 600 s: the next connection finds none."""
    client_id = unique("expiry")
    options: dict[str, object] = {"client_id": client_id, "session_expiry": 600}
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto.url, **options) as client:  # type: ignore[arg-type]
            pass
        async with trio_mqtt.open_client(
            mosquitto.url,
            clean_start=False,
            **options,  # type: ignore[arg-type]
        ) as client:
            assert client.session_present  # kept, as asked in CONNECT
            await client.disconnect(session_expiry=0)
        async with trio_mqtt.open_client(
            mosquitto.url,
            clean_start=False,
            **options,  # type: ignore[arg-type]
        ) as client:
            assert not client.session_present  # discarded, as asked in DISCONNECT


async def test_disconnect_refuses_what_the_spec_forbids(mosquitto: Mosquitto) -> None:
    async with trio_mqtt.open_client(mosquitto.url) as client:
        with pytest.raises(ValueError, match=r"MQTT-3\.14\.2-2"):
            await client.disconnect(session_expiry=60)
        with pytest.raises(ValueError, match="may not send"):
            await client.disconnect(ReasonCode.SERVER_SHUTTING_DOWN)
    async with trio_mqtt.open_client(
        mosquitto.url, protocol=ProtocolVersion.V311
    ) as client:
        with pytest.raises(ValueError, match=r"3\.1\.1"):
            await client.disconnect(ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)


@pytest.mark.parametrize("version", [ProtocolVersion.V5, ProtocolVersion.V311])
async def test_the_granted_qos_is_on_the_subscription(
    mosquitto_tight: Mosquitto, version: ProtocolVersion
) -> None:
    """Mosquitto with max_qos 1 grants QoS 1 to a QoS 2 request (SUBACK 0x01)."""
    async with (
        trio_mqtt.open_client(mosquitto_tight.url, protocol=version) as client,
        client.subscribe(unique("granted"), unique("other"), qos=2) as messages,
    ):
        assert messages.granted_qos == (QoS.AT_LEAST_ONCE, QoS.AT_LEAST_ONCE)


async def test_no_local_keeps_our_own_messages_from_us(mosquitto: Mosquitto) -> None:
    """[MQTT-3.8.3-3]: with No Local, the broker does not send us what we published."""
    topic = unique("nolocal")
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url) as client,
            trio_mqtt.open_client(mosquitto.url) as other,
            client.subscribe(topic, qos=1, no_local=True) as messages,
        ):
            await client.publish(topic, b"mine", qos=1)
            await other.publish(topic, b"theirs", qos=1)
            assert (await messages.receive()).payload == b"theirs"


async def test_retain_as_published_and_retain_handling(mosquitto: Mosquitto) -> None:
    """Retain As Published keeps the RETAIN flag on live messages ([MQTT-3.3.1-13]);
    Retain Handling 2 sends no retained message on subscribe, 1 only for a new subscription
    ([MQTT-3.3.1-10], [MQTT-3.3.1-11])."""
    topic = unique("retained")
    handling = trio_mqtt.RetainHandling
    with trio.fail_after(10):
        async with trio_mqtt.open_client(mosquitto.url) as client:
            await client.publish(topic, b"stored", qos=1, retain=True)
            async with client.subscribe(
                topic, qos=1, retain_handling=handling.DO_NOT_SEND,
                retain_as_published=True,
            ) as messages:  # fmt: skip
                await client.publish(topic, b"live", qos=1, retain=True)
                live = await messages.receive()
                assert (live.payload, live.retain) == (b"live", True)
            async with client.subscribe(topic, qos=1) as messages:
                await client.publish(topic + "/x", b"", qos=1)
                stored = await messages.receive()  # SEND_ON_SUBSCRIBE, the default
                assert (stored.payload, stored.retain) == (b"live", True)
                await client.publish(topic, b"plain", qos=1, retain=True)
                plain = await messages.receive()
                assert (plain.payload, plain.retain) == (
                    b"plain",
                    False,
                )  # not as published
                async with client.subscribe(
                    topic, qos=1, retain_handling=handling.SEND_IF_NEW_SUBSCRIPTION
                ) as again:
                    # the subscription exists already (the block above): nothing sent
                    await client.publish(topic, b"marker", qos=0)
                    assert (await again.receive()).payload == b"marker"
            await client.publish(topic, b"", qos=1, retain=True)  # clear it


async def test_a_shared_subscription_splits_the_work(mosquitto: Mosquitto) -> None:
    """``$share/group/filter`` on Mosquitto: 20 QoS 1 messages split between two
    subscribers of the group, none lost and none twice."""
    topic = unique("jobs")
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    all_in = trio.Event()
    with trio.fail_after(10):
        async with (
            trio_mqtt.open_client(mosquitto.url) as a,
            trio_mqtt.open_client(mosquitto.url) as b,
            a.subscribe(f"$share/workers/{topic}", qos=1) as for_a,
            b.subscribe(f"$share/workers/{topic}", qos=1) as for_b,
            trio_mqtt.open_client(mosquitto.url) as producer,
            trio.open_nursery() as nursery,
        ):

            async def collect(name: str, messages: trio_mqtt.Subscription) -> None:
                async for message in messages:
                    got[name].append(message.payload)
                    if len(got["a"]) + len(got["b"]) == 20:
                        all_in.set()

            nursery.start_soon(collect, "a", for_a)
            nursery.start_soon(collect, "b", for_b)
            async with producer.pipeline() as pipe:
                for n in range(20):
                    await pipe.publish(topic, b"%d" % n)
            await all_in.wait()
            nursery.cancel_scope.cancel()
    assert sorted(got["a"] + got["b"], key=int) == [b"%d" % n for n in range(20)]
    assert got["a"]
    assert got["b"]


async def test_a_message_that_expired_offline_is_not_sent(mosquitto: Mosquitto) -> None:
    """A QoS 1 publish with a 1 s Message Expiry Interval waits in the offline queue while
    the broker is unreachable for longer: it raises NotConnectedError, and the subscriber
    receives nothing of it; one with 60 s goes out when the client is back, with what is
    left of its interval."""
    topic = unique("expiry")
    policy = trio_mqtt.ReconnectPolicy(initial_delay=0.05, max_delay=0.1)
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto.url) as subscriber,
            subscriber.subscribe(topic, qos=1) as messages,
            open_proxy(mosquitto.port) as proxy,
            trio_mqtt.open_client(proxy.url, reconnect=policy) as client,
            trio.open_nursery() as nursery,
        ):
            proxy.refuse(True)
            with client.watch_state() as changes:
                await anext(changes)  # connected
                proxy.cut()
                await anext(changes)  # the connection is gone: what follows is queued
            outcomes: dict[int, object] = {}

            async def publish(interval: int) -> None:
                try:
                    outcomes[interval] = await client.publish(
                        topic, b"%d" % interval, qos=1, message_expiry_interval=interval
                    )
                except trio_mqtt.NotConnectedError as exc:
                    outcomes[interval] = exc

            nursery.start_soon(publish, 1)
            nursery.start_soon(publish, 60)
            await trio.sleep(
                1.5
            )  # the outage outlasts the 1 s interval: the point here
            proxy.refuse(False)
            message = await messages.receive()
    assert isinstance(outcomes[1], trio_mqtt.NotConnectedError)
    assert isinstance(outcomes[60], trio_mqtt.PublishResult)
    assert message.payload == b"60"
    left = message.properties.message_expiry_interval
    assert left is not None
    assert left <= 59


async def test_will_properties_reach_the_subscriber(mosquitto: Mosquitto) -> None:
    """Will Properties (section 3.1.3.2): the broker publishes the will with them, once the
    Will Delay Interval has passed after the client vanished (the session outlives it)."""
    topic = unique("will-props")
    will = trio_mqtt.Will(
        topic, "offline", qos=1,
        properties=trio_mqtt.Properties(
            will_delay_interval=1, content_type="text/plain", message_expiry_interval=600,
            response_topic="ops/ack", correlation_data=b"\x07",
            user_properties=(("site", "a"), ("site", "b")),
        ),
    )  # fmt: skip
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto.url) as watcher,
            watcher.subscribe(topic, qos=1) as wills,
            open_proxy(mosquitto.port) as proxy,
        ):
            with pytest.raises(trio_mqtt.ConnectionLostError):
                async with trio_mqtt.open_client(
                    proxy.url, will=will, session_expiry=10, reconnect=None
                ):
                    proxy.cut()  # gone without DISCONNECT
                    await trio.sleep_forever()
            gone = trio.current_time()
            message = await wills.receive()
            waited = trio.current_time() - gone
    props = message.properties
    assert message.payload == b"offline"
    assert (props.content_type, props.response_topic, props.correlation_data) == (
        "text/plain", "ops/ack", b"\x07",
    )  # fmt: skip
    assert props.user_properties == (("site", "a"), ("site", "b"))
    assert (
        waited >= 0.5
    )  # not before the Will Delay Interval (the broker counts whole seconds)
