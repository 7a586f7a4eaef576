"""Client behaviour that needs a broker but not a real one, on trio_mqtt.testing's broker
under Trio's virtual clock: exact in time, and no real seconds spent. (Moved from
tests/integration/test_resilience.py, where each took 1.6 s of real time behind a proxy; the
plain black-hole test stays there, against Mosquitto, for interop.)"""

from __future__ import annotations

import functools

import pytest
import trio
import trio.testing

from trio_mqtt import Connected, Disconnected, ReconnectPolicy
from trio_mqtt.testing import MQTTBroker
from trio_mqtt.testing.pytest_plugin import ConnectFactory

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)
pytestmark = pytest.mark.mqtt_versions


@pytest.mark.parametrize("qos", [0, 1])
async def test_black_hole_is_detected_while_the_application_keeps_publishing(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
    qos: int,
) -> None:
    """Publishing 20 messages a second keeps the client sending, so it has no idle time to
    ping in; it must still notice a black hole within 1.5 x keep alive (10 s here): it pings
    once nothing has been received for a keep alive interval."""
    async with (
        mqtt_connect(client_id="busy", keepalive=10, reconnect=FAST) as client,
        trio.open_nursery() as publishers,
    ):

        async def publish_steadily() -> None:
            while True:
                publishers.start_soon(
                    functools.partial(client.publish, "t", b"x", qos=qos)
                )
                await trio.sleep(0.05)

        with client.watch_state() as changes:
            await anext(changes)  # Connected
            publishers.start_soon(publish_steadily)
            await trio.sleep(3)  # a steady stream first
            mqtt_broker.blackhole("busy")
            holed = trio.current_time()
            lost = await anext(changes)
            detected = trio.current_time() - holed
            assert isinstance(lost, Disconnected)
            assert "did not answer PINGREQ" in str(lost.cause)
            mqtt_broker.blackhole("busy", False)
            while not isinstance(await anext(changes), Connected):
                pass
        publishers.cancel_scope.cancel()
    assert detected <= 15  # 1.5 x keep alive, exactly: virtual time
    assert client.reconnects == 1


async def test_queued_messages_wait_for_the_subscription_that_takes_them(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    """A persistent session's messages queued while offline arrive right after CONNACK,
    before the program has subscribed again: the client holds them ("orphans", unacknowledged)
    and hands them to the subscription that takes them, in order, none dropped."""
    session = {"client_id": "worker", "clean_start": False, "session_expiry": 600}
    async with mqtt_connect(**session) as worker:
        with trio.CancelScope() as stopping:
            async with worker.subscribe("jobs/#", qos=1):
                stopping.cancel()  # leaving by a cancellation: the broker keeps it
                await trio.sleep_forever()
    async with mqtt_connect() as producer:
        for n in range(5):
            await producer.publish(f"jobs/{n}", b"%d" % n, qos=1)
    assert mqtt_broker.session("worker").queued == 5
    async with mqtt_connect(**session) as worker:
        assert worker.session_present
        await trio.testing.wait_all_tasks_blocked()  # the queued messages arrived, held
        assert mqtt_broker.session("worker").inflight == 5  # unacknowledged while held
        async with worker.subscribe("jobs/#", qos=1) as jobs:
            got = [(await jobs.receive()).payload for _ in range(5)]
        assert mqtt_broker.session("worker").inflight == 0
    assert got == [b"0", b"1", b"2", b"3", b"4"]


async def test_held_messages_go_to_each_subscription_that_takes_them(
    autojump_clock: trio.testing.MockClock,
    mqtt_broker: MQTTBroker,
    mqtt_connect: ConnectFactory,
) -> None:
    """Held messages for two filters the session kept: the first subscription takes only
    its own, the rest stay held, and a message that arrives for the other filter after
    that is held with them, in order, until its subscription opens; then every message is
    acknowledged."""
    session = {"client_id": "worker", "clean_start": False, "session_expiry": 600}
    async with mqtt_connect(**session) as worker:
        with trio.CancelScope() as stopping:
            async with (
                worker.subscribe("jobs/#", qos=1),
                worker.subscribe("news/#", qos=1),
            ):
                stopping.cancel()  # leaving by a cancellation: the broker keeps both
                await trio.sleep_forever()
    async with mqtt_connect() as producer:
        for topic in ("jobs/1", "news/1", "jobs/2", "news/2"):
            await producer.publish(topic, topic.encode(), qos=1)
    async with mqtt_connect(**session) as worker, mqtt_connect() as producer:
        await trio.testing.wait_all_tasks_blocked()  # all four arrived, held
        async with worker.subscribe("jobs/#", qos=1) as jobs:
            got_jobs = [(await jobs.receive()).payload for _ in range(2)]
        await producer.publish("news/3", b"news/3", qos=1)
        await trio.testing.wait_all_tasks_blocked()  # arrived: held behind the others
        # the three news held, and jobs/2: its PUBACK waits for news/1's, which arrived
        # before it (acknowledgements go in arrival order, [MQTT-4.6.0-2])
        assert mqtt_broker.session("worker").inflight == 4
        async with worker.subscribe("news/#", qos=1) as news:
            got_news = [(await news.receive()).payload for _ in range(3)]
        assert mqtt_broker.session("worker").inflight == 0
    assert got_jobs == [b"jobs/1", b"jobs/2"]
    assert got_news == [b"news/1", b"news/2", b"news/3"]
