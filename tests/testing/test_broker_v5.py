"""trio_mqtt.testing's broker: what only MQTT 5 has (session expiry, will delay), on
virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from tests.scram_server import ScramServer
from trio_mqtt import (
    ConnectionLostError,
    ConnectRefusedError,
    ReasonCode,
    ScramAuthenticator,
    Will,
)
from trio_mqtt.lowlevel import Auth, Connect, Publish
from trio_mqtt.testing import MQTTBroker
from trio_mqtt.testing.pytest_plugin import ConnectFactory


async def test_session_expiry_and_will_delay_on_virtual_time(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    will = Will(
        "w", b"gone", qos=1, properties=trio_mqtt.Properties(will_delay_interval=30)
    )
    async with mqtt_connect() as watcher, watcher.subscribe("w", qos=1) as wills:
        with pytest.raises(ConnectionLostError):
            async with mqtt_connect(
                client_id="dev", will=will, session_expiry=60, reconnect=None
            ):
                mqtt_broker.cut("dev")
                await trio.sleep_forever()
        gone = trio.current_time()
        await wills.receive()
        assert trio.current_time() - gone == pytest.approx(30)
        assert mqtt_broker.session("dev").connected is False
        await trio.sleep(31)
        with pytest.raises(KeyError):
            mqtt_broker.session("dev")  # expired 60 s after the connection ended


class ScramExchange:
    """An AuthExchange for the test broker, on the RFC-written SCRAM server of the suite."""

    def __init__(self, password: str) -> None:
        self.server = ScramServer(username="alice", password=password)

    def start(self, data: bytes | None) -> tuple[ReasonCode, bytes | None]:
        assert data is not None
        return ReasonCode.CONTINUE_AUTHENTICATION, self.server.first(data)

    def step(self, data: bytes | None) -> tuple[ReasonCode, bytes | None]:
        assert data is not None
        ok, final = self.server.final(data)
        return (ReasonCode.SUCCESS, final) if ok else (ReasonCode.NOT_AUTHORIZED, None)


@pytest.mark.parametrize(
    ("password", "accepted"), [("wonderland", True), ("looking-glass", False)]
)
async def test_enhanced_authentication_hooks(
    mqtt_broker: MQTTBroker, mqtt_connect: ConnectFactory, password: str, accepted: bool
) -> None:
    """SCRAM-SHA-256 through the broker's ``enhanced_auth`` hook: CONNECT, AUTH 0x18 both
    ways, CONNACK with the server's proof (which the client verifies)."""
    mqtt_broker.options.enhanced_auth = lambda method: (
        ScramExchange("wonderland") if method == "SCRAM-SHA-256" else None
    )
    scram = ScramAuthenticator(username="alice", password=password)
    if accepted:
        async with mqtt_connect(authenticator=scram) as client:
            await client.publish("t", b"x", qos=1)
        assert len(mqtt_broker.packets(direction="out", kind=Auth)) == 1
    else:
        with pytest.raises(ConnectRefusedError) as caught:
            async with mqtt_connect(authenticator=scram):
                pass
        assert caught.value.reason_code is ReasonCode.NOT_AUTHORIZED


async def test_an_unknown_method_is_refused(
    mqtt_broker: MQTTBroker, mqtt_connect: ConnectFactory
) -> None:
    scram = ScramAuthenticator(username="alice", password="x")
    with pytest.raises(ConnectRefusedError) as caught:
        async with mqtt_connect(authenticator=scram):
            pass
    assert caught.value.reason_code is ReasonCode.BAD_AUTHENTICATION_METHOD


async def test_the_broker_sets_topic_aliases_when_asked(
    mqtt_broker: MQTTBroker, mqtt_connect: ConnectFactory
) -> None:
    """``send_topic_aliases``: within the client's Topic Alias Maximum (16 by default) the
    broker sends a topic once, then the alias alone; the client resolves each."""
    mqtt_broker.options.send_topic_aliases = True
    topic = "plant/line-1/temperature"
    async with mqtt_connect() as client, client.subscribe(topic, qos=1) as messages:
        for n in range(3):
            await client.publish(topic, b"%d" % n, qos=1)
        got = [(await messages.receive()).topic for _ in range(3)]
    assert got == [topic] * 3
    sent = mqtt_broker.packets(direction="out", kind=Publish)
    assert [(p.topic, p.properties.topic_alias) for p in sent] == [  # type: ignore[attr-defined]
        (topic, 1), ("", 1), ("", 1),
    ]  # fmt: skip


async def test_the_authenticate_hook_checks_credentials(
    mqtt_broker: MQTTBroker, mqtt_connect: ConnectFactory
) -> None:
    def authenticate(connect: Connect) -> ReasonCode | None:
        if (connect.username, connect.password) != ("alice", b"wonderland"):
            return ReasonCode.BAD_USER_NAME_OR_PASSWORD
        return None

    mqtt_broker.options.authenticate = authenticate
    async with mqtt_connect(username="alice", password="wonderland"):
        pass
    with pytest.raises(ConnectRefusedError) as caught:
        async with mqtt_connect(username="alice", password="guess"):
            pass
    assert caught.value.reason_code is ReasonCode.BAD_USER_NAME_OR_PASSWORD
