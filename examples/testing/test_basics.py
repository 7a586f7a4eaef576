"""The first tests of docs/testing.md: the fixtures, and the broker without pytest's help
(the page shows the ``# [name]`` fragments by ``literalinclude``)."""

from __future__ import annotations

import trio

import trio_mqtt
import trio_mqtt.testing


# [round-trip]
async def test_round_trip(mqtt_client):
    async with mqtt_client.subscribe("t", qos=1) as messages:
        await mqtt_client.publish("t", b"hello", qos=1)
        assert (await messages.receive()).payload == b"hello"
# [/round-trip]


async def test_the_broker_without_pytest_fixtures() -> None:
    with trio.fail_after(10):
        # [open-broker]
        async with trio_mqtt.testing.open_broker(receive_maximum=10) as broker:
            async with trio_mqtt.open_client(transport_factory=broker.connect_stream) as client:
                ...
        # [/open-broker]
                assert client.server.receive_maximum == 10
