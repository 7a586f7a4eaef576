"""Testing that a device's will fires when it dies, and not when it shuts down cleanly.

The device (``run_device``) announces itself online (retained) and leaves a will that says
offline; the test kills its connection without a DISCONNECT, as a crash or a pulled cable
would, and a monitor sees the will.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from trio_mqtt.testing import MQTTBroker
from trio_mqtt.testing.pytest_plugin import ConnectFactory

STATUS = "devices/pump-1/status"
WILL = trio_mqtt.Will(STATUS, b"offline", qos=1, retain=True)


async def run_device(client: trio_mqtt.MQTTClient) -> None:
    """The device under test: say so when online, then work until stopped."""
    await client.publish(STATUS, b"online", qos=1, retain=True)
    await trio.sleep_forever()


@pytest.mark.mqtt_versions
async def test_the_will_fires_when_the_device_dies(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    async with mqtt_connect() as monitor, monitor.subscribe(STATUS, qos=1) as statuses:

        async def device_dies() -> None:
            async with (
                mqtt_connect(client_id="pump-1", will=WILL, reconnect=None) as device,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(run_device, device)
                assert (await statuses.receive()).payload == b"online"
                mqtt_broker.cut("pump-1")  # dies: no DISCONNECT reaches the broker

        with pytest.raises(trio_mqtt.ConnectionLostError):
            await device_dies()
        assert (await statuses.receive()).payload == b"offline"
    assert mqtt_broker.retained[STATUS].payload == b"offline"


@pytest.mark.mqtt_versions
async def test_no_will_when_the_device_shuts_down(
    mqtt_broker: MQTTBroker, mqtt_connect: ConnectFactory
) -> None:
    async with mqtt_connect(client_id="pump-1", will=WILL) as device:
        with trio.move_on_after(0.01):
            await run_device(device)
    # the block sent DISCONNECT: the broker discarded the will ([MQTT-3.1.2-10])
    assert mqtt_broker.packets(direction="will") == []
    assert mqtt_broker.retained[STATUS].payload == b"online"
