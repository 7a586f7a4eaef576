"""trio_mqtt.testing's broker, through its own pytest fixtures (mqtt_broker, mqtt_connect,
mqtt_protocol): its fault injection, timers on Trio's virtual clock, hooks and introspection.
What it shares with a real broker is checked against Mosquitto in
tests/integration/test_conformance.py."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from trio_mqtt import (
    ConnectRefusedError,
    ProtocolVersion,
    PublishError,
    ReasonCode,
    ReconnectPolicy,
    SubscribeError,
)
from trio_mqtt.lowlevel import (
    ConnAck,
    Connect,
    Disconnect,
    PacketReader,
    PubAck,
    Publish,
    Subscribe,
    encode_packet,
)
from trio_mqtt.testing import MQTTBroker
from trio_mqtt.testing.pytest_plugin import ConnectFactory

FAST = ReconnectPolicy(initial_delay=0.1, max_delay=1)
pytestmark = pytest.mark.mqtt_versions


async def test_the_fixtures_connect_a_client(
    mqtt_client: trio_mqtt.MQTTClient,
    mqtt_broker: MQTTBroker,
    mqtt_protocol: ProtocolVersion,
) -> None:
    assert mqtt_client.protocol is mqtt_protocol
    async with mqtt_client.subscribe("t", qos=1) as messages:
        await mqtt_client.publish("t", b"x", qos=1)
        assert (await messages.receive()).payload == b"x"
    assert mqtt_broker.clients == [mqtt_client.client_id]
    [connect] = mqtt_broker.packets(mqtt_client.client_id, kind=Connect)
    assert connect.protocol_version is mqtt_protocol  # type: ignore[attr-defined]
    assert mqtt_broker.session(mqtt_client.client_id).subscriptions == {}


async def test_a_cut_with_fin_is_seen_at_once_and_the_client_resumes(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    async with mqtt_connect(client_id="svc", reconnect=FAST) as client:
        with client.watch_state() as changes:
            await anext(changes)
            mqtt_broker.cut("svc")
            assert isinstance(await anext(changes), trio_mqtt.Disconnected)
            await client.wait_connected()
        assert client.reconnects == 1
        await client.publish("t", b"after", qos=1)


async def test_a_silent_cut_is_found_by_the_keep_alive(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    """Without FIN the client only learns of it from its keep alive: 1.5 times 10 s of virtual
    time, no real time."""
    async with mqtt_connect(client_id="svc", keepalive=10, reconnect=FAST) as client:
        with client.watch_state() as changes:
            await anext(changes)
            start = trio.current_time()
            mqtt_broker.cut("svc", fin=False)
            lost = await anext(changes)
        assert isinstance(lost, trio_mqtt.Disconnected)
        assert 10 <= trio.current_time() - start <= 16


async def test_drop_next_loses_a_puback_and_the_session_resends(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
    mqtt_protocol: ProtocolVersion,
) -> None:
    """The PUBACK never comes; the connection is cut; the resumed session resends the PUBLISH
    with DUP set ([MQTT-3.3.1-1]) and publish() resolves."""
    options: dict[str, object] = {
        "client_id": "pub",
        "reconnect": FAST,
        "clean_start": False,
    }
    if mqtt_protocol is ProtocolVersion.V5:
        options["session_expiry"] = 60
    async with mqtt_connect(**options) as client:
        mqtt_broker.drop_next("pub", PubAck)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: client.publish("t", b"x", qos=1))
            await trio.testing.wait_all_tasks_blocked()
            mqtt_broker.cut("pub")
    sent = mqtt_broker.packets("pub", direction="in", kind=Publish)
    assert [(p.payload, p.dup) for p in sent] == [(b"x", False), (b"x", True)]  # type: ignore[attr-defined]


async def test_refused_connections_and_restarts(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    mqtt_broker.refuse_connections(ReasonCode.NOT_AUTHORIZED)
    with pytest.raises(ConnectRefusedError) as caught:
        async with mqtt_connect():
            pass
    assert caught.value.reason_code is ReasonCode.NOT_AUTHORIZED
    mqtt_broker.accept_connections()
    async with mqtt_connect(client_id="a", reconnect=FAST) as client:
        await client.publish("kept", b"r", qos=1, retain=True)
        mqtt_broker.restart(keep_sessions=False)
        await trio.testing.wait_all_tasks_blocked()
        await client.wait_connected()
        assert mqtt_broker.retained == {}
        assert client.reconnects == 1


async def test_hooks_refuse_a_publish_and_a_subscribe(
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
    mqtt_protocol: ProtocolVersion,
) -> None:
    mqtt_broker.options.authorize_publish = lambda client_id, topic: (
        ReasonCode.NOT_AUTHORIZED if topic == "secret" else None
    )
    mqtt_broker.options.authorize_subscribe = lambda client_id, topic_filter: (
        ReasonCode.NOT_AUTHORIZED if topic_filter == "#" else None
    )
    async with mqtt_connect() as client:
        with pytest.raises(SubscribeError):
            async with client.subscribe("#"):
                pass
        if mqtt_protocol is ProtocolVersion.V5:
            with pytest.raises(PublishError) as caught:
                await client.publish("secret", b"x", qos=1)
            assert caught.value.reason_code is ReasonCode.NOT_AUTHORIZED
        else:  # 3.1.1 has no way to say no: acknowledged, and dropped
            await client.publish("secret", b"x", qos=1)
        assert [
            p.topic for p in mqtt_broker.packets(direction="out", kind=Publish)
        ] == []  # type: ignore[attr-defined]


async def test_send_raw_reaches_the_client(
    mqtt_broker: MQTTBroker, mqtt_connect: ConnectFactory
) -> None:
    """A broken broker's bytes: a PUBACK for nothing in flight is a protocol error."""
    with pytest.raises(trio_mqtt.RemoteProtocolError):
        async with mqtt_connect(client_id="victim", reconnect=None):
            await mqtt_broker.send_raw("victim", b"\x40\x02\x00\x09")
            await trio.sleep_forever()


async def test_the_broker_ends_a_silent_client_after_its_keep_alive(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_protocol: ProtocolVersion,
) -> None:
    """[MQTT-3.1.2-22]: a client silent for 1.5 times its keep alive is disconnected (MQTT 5:
    with DISCONNECT 0x8D first). A raw stream, so that no client keeps it alive."""
    stream = await mqtt_broker.connect_stream()
    connect = Connect(protocol_version=mqtt_protocol, client_id="quiet", keep_alive=4)
    await stream.send_all(encode_packet(connect, mqtt_protocol))
    reader = PacketReader(version=mqtt_protocol)
    received: list[object] = []
    start = trio.current_time()
    while data := await stream.receive_some():
        received += reader.feed(data)
    assert trio.current_time() - start == pytest.approx(6)
    expected = (
        [ConnAck, Disconnect] if mqtt_protocol is ProtocolVersion.V5 else [ConnAck]
    )
    assert [type(p) for p in received] == expected


async def test_a_tcp_listener_for_code_that_takes_a_url(
    mqtt_broker: MQTTBroker,
) -> None:
    url = await mqtt_broker.listen_tcp()
    async with trio_mqtt.open_client(url) as client:
        await client.publish("t", b"x", qos=1)
    assert mqtt_broker.packets(kind=Subscribe) == []
    assert len(mqtt_broker.packets(direction="in", kind=Publish)) == 1
