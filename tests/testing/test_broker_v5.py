"""trio_mqtt.testing's broker: what only MQTT 5 has (session expiry, will delay), on
virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from trio_mqtt import ConnectionLostError, Will
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
