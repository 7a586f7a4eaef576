"""Testing a service that must survive a broker outage without losing QoS 1 messages.

The service (``collect``) subscribes to sensor readings with a persistent session and stores
each one; the test takes the broker away while readings are published, and checks that every
one was stored once the service is back. Runs on the in-process broker, on virtual time.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from trio_mqtt.testing import MQTTBroker
from trio_mqtt.testing.pytest_plugin import ConnectFactory


class Store:
    """Where the service keeps readings (a database in production; a list here, which the
    test can wait on)."""

    def __init__(self) -> None:
        self.readings: list[bytes] = []
        self._changed = trio.Event()

    def add(self, reading: bytes) -> None:
        self.readings.append(reading)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` different readings are stored (QoS 1 is at least once: a message
        whose PUBACK the outage swallowed comes again)."""
        while len(set(self.readings)) < count:
            await self._changed.wait()


async def collect(
    client: trio_mqtt.MQTTClient, store: Store, *, task_status: trio.TaskStatus[None]
) -> None:
    """The service under test: store every temperature reading."""
    async with client.subscribe("sensors/+/temperature", qos=1) as readings:
        task_status.started()
        async for reading in readings:
            store.add(reading.payload)


@pytest.mark.mqtt_versions
async def test_no_reading_is_lost_across_an_outage(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    store = Store()
    session = {"client_id": "collector", "clean_start": False, "session_expiry": 3600}
    async with (
        mqtt_connect(**session) as service,
        mqtt_connect() as sensor,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(collect, service, store)
        await sensor.publish("sensors/kitchen/temperature", b"21.0", qos=1)
        await store.wait_for(1)

        # [outage]
        mqtt_broker.refuse_connections()  # the outage: the service cannot come back yet
        mqtt_broker.cut("collector")
        for n in range(5):
            await sensor.publish("sensors/kitchen/temperature", b"2%d.5" % n, qos=1)
        await trio.sleep(30)  # half a minute of outage, in no real time
        mqtt_broker.accept_connections()

        with trio.fail_after(60):
            await store.wait_for(6)
        # [/outage]
        nursery.cancel_scope.cancel()
    # every reading, in order; the first may come twice (its PUBACK may be lost in the cut)
    assert list(dict.fromkeys(store.readings)) == [
        b"21.0", b"20.5", b"21.5", b"22.5", b"23.5", b"24.5",
    ]  # fmt: skip
    assert service.reconnects >= 1
