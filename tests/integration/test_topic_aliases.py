"""Topic aliases both ways (section 3.3.2.3.4). Outbound against a real Mosquitto (it takes
aliases, up to its max_topic_alias); inbound with a scripted broker, because neither
Mosquitto 2.0.11 nor ejabberd 23.01 sets aliases on what it sends (checked with the packet
trace: every PUBLISH to us carries its full topic)."""

from __future__ import annotations

import logging

import pytest
import trio

import trio_mqtt
from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto
from tests.proxy import open_proxy

TOPICS = [
    f"plant/{unique('building-with-a-long-name')}/line-{n}/temperature"
    for n in range(5)
]


async def _publish_all(url: str, **options: object) -> int:
    """Publish 10 rounds over the 5 topics through a tapping proxy; the bytes sent up."""
    sent = 0

    def tap(_connection: int, upward: bool, data: bytes) -> None:
        nonlocal sent
        if upward:
            sent += len(data)

    port = int(url.rsplit(":", 1)[1])
    async with open_proxy(port) as proxy:
        proxy.tap = tap
        async with trio_mqtt.open_client(proxy.url, **options) as client:  # type: ignore[arg-type]
            for _ in range(10):
                for topic in TOPICS:
                    await client.publish(topic, b"21.5", qos=1)
    return sent


async def test_outbound_aliases_are_resolved_by_a_real_broker_and_save_bytes(
    mosquitto_tight: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """Against Mosquitto with max_topic_alias 3, 5 topics in rotation (more than the aliases:
    the LRU must hand aliases over): every message arrives under its own topic (the broker
    resolved each alias as set), no alias is 0 or above 3 ([MQTT-3.3.2-8], [MQTT-3.3.2-9]),
    and fewer bytes are sent."""
    caplog.set_level(logging.DEBUG, logger="trio_mqtt.packets")
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto_tight.url) as subscriber,
            subscriber.subscribe("plant/#", qos=1, buffer_size=200) as messages,
        ):
            plain = await _publish_all(mosquitto_tight.url)
            caplog.clear()
            aliased = await _publish_all(mosquitto_tight.url, topic_aliases=True)
            got = [(await messages.receive()).topic for _ in range(100)]
    assert got == TOPICS * 20
    trace = [r.getMessage() for r in caplog.records if ">> PUBLISH" in r.getMessage()]
    aliases = {
        int(line.split("alias=")[1].split()[0]) for line in trace if "alias=" in line
    }
    assert aliases == {1, 2, 3}
    assert sum("topic=''" in line for line in trace) > 10  # sent as an alias alone
    assert aliased < plain


async def test_repeated_topics_go_as_aliases(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """One topic over and over: the first PUBLISH sets the alias, the rest carry an empty
    topic, and the broker delivers each under the topic. The bytes sent: topic length - 3
    fewer per message."""
    caplog.set_level(logging.DEBUG, logger="trio_mqtt.packets")
    topic = TOPICS[0]
    with trio.fail_after(15):
        async with (
            trio_mqtt.open_client(mosquitto.url) as subscriber,
            subscriber.subscribe(topic, qos=1, buffer_size=200) as messages,
        ):
            sent: dict[bool, int] = {}
            for aliasing in (False, True):
                count = 0

                def tap(_connection: int, upward: bool, data: bytes) -> None:
                    nonlocal count
                    count += len(data) if upward else 0

                async with open_proxy(mosquitto.port) as proxy:
                    proxy.tap = tap
                    async with trio_mqtt.open_client(
                        proxy.url, client_id="alias-check", topic_aliases=aliasing
                    ) as client:
                        for _ in range(100):
                            await client.publish(topic, b"21.5", qos=1)
                sent[aliasing] = count
            got = [(await messages.receive()).topic for _ in range(200)]
    assert got == [topic] * 200
    trace = [r.getMessage() for r in caplog.records if ">> PUBLISH" in r.getMessage()]
    with_alias = [line for line in trace if "alias=" in line]
    assert len(with_alias) == 100
    assert sum("topic=''" in line for line in with_alias) == 99
    assert sent[False] - sent[True] == 99 * (len(topic) - 3) - 3  # the first sets it
