"""Brokers other than Mosquitto, where they behave in ways the client must survive
(../shared/BROKERS.md): here nats-server, which refuses QoS 2 by closing the connection and
answers an MQTT 5 CONNECT with a 3.1.1 CONNACK."""

from __future__ import annotations

import attrs
import pytest
import trio

import trio_mqtt
from tests.mosquitto import Mosquitto
from tests.nats import NatsServer
from trio_mqtt import ConnectRefusedError, ProtocolVersion, PublishError, ReasonCode

POLICY = trio_mqtt.ReconnectPolicy(initial_delay=0.05, max_delay=0.5)


async def test_a_v5_connect_to_nats_is_refused_as_unsupported_protocol(
    nats: NatsServer,
) -> None:
    """nats-server answers MQTT 5 with the 3.1.1 CONNACK `20 02 00 01`: the client reports
    UNSUPPORTED_PROTOCOL_VERSION (0x84), so the application can fall back to 3.1.1."""
    with trio.fail_after(10), pytest.raises(ConnectRefusedError) as caught:
        async with trio_mqtt.open_client(nats.url, client_id="v5-to-nats"):
            pass
    assert caught.value.reason_code is ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
    async with trio_mqtt.open_client(
        nats.url, client_id="v5-to-nats", protocol=ProtocolVersion.V311
    ) as client:
        await client.publish("fallback/works", b"1", qos=1)


async def test_a_qos2_publish_nats_closes_on_fails_and_the_client_goes_on(
    nats: NatsServer,
) -> None:
    """nats-server closes the connection on each QoS 2 PUBLISH. The session resent it after
    every reconnect, forever; now, once STRIKES (3) connections in a row, spanning the policy's
    ``poison_after`` (here 1 s), ended with that PUBLISH the oldest unanswered, publish()
    raises PublishError, and the next publish on the same client is acknowledged."""
    policy = attrs.evolve(POLICY, poison_after=1.0)
    async with (
        trio_mqtt.open_client(
            nats.url,
            client_id="poisoned",
            protocol=ProtocolVersion.V311,
            reconnect=policy,
        ) as client,
        client.subscribe("poison/check", qos=1) as messages,
    ):
        start = trio.current_time()
        with trio.fail_after(20), pytest.raises(PublishError) as caught:
            await client.publish("poison/check", b"two", qos=2)
        assert trio.current_time() - start >= policy.poison_after
        assert "each time this PUBLISH was sent" in str(caught.value)
        assert isinstance(caught.value.__cause__, trio_mqtt.ConnectionLostError)
        assert client.reconnects >= 2  # three connections at least
        with trio.fail_after(20):
            await client.publish("poison/check", b"one", qos=1)
            message = await messages.receive()
        assert message.payload == b"one"


async def test_protocol_auto_settles_on_what_each_broker_speaks(
    nats: NatsServer, mosquitto: Mosquitto
) -> None:
    """``protocol="auto"``: MQTT 5 where the broker speaks it, MQTT 3.1.1 where it answers
    0x84 (nats-server); either way the client works."""
    for url, expected in [
        (nats.url, ProtocolVersion.V311),
        (mosquitto.url, ProtocolVersion.V5),
    ]:
        with trio.fail_after(10):
            async with (
                trio_mqtt.open_client(url, protocol="auto") as client,
                client.subscribe("auto/check", qos=1) as messages,
            ):
                assert client.protocol is expected
                await client.publish("auto/check", b"hello", qos=1)
                assert (await messages.receive()).payload == b"hello"
                assert client.reconnects == 0  # the fallback is not a reconnect


async def test_protocol_auto_refuses_what_needs_one_version(
    mosquitto: Mosquitto,
) -> None:
    store = trio_mqtt.MemorySessionStore()
    with pytest.raises(ValueError, match="session_store"):
        async with trio_mqtt.open_client(
            mosquitto.url, protocol="auto", client_id="x", session_store=store
        ):
            pass
    with pytest.raises(ValueError, match="auto"):
        async with trio_mqtt.open_client(mosquitto.url, protocol="mqtt5"):  # type: ignore[arg-type]
            pass
