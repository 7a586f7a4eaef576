"""MQTT 5 features against real brokers (#16): what the CONNACK says (client.server), the
broker's limits honoured before sending, and the properties of CONNECT, PUBLISH and
DISCONNECT."""

from __future__ import annotations

import pytest
import trio

import trio_mqtt
from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto
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
