"""The code of docs/getting-started.md and docs/index.md, run against a broker by the suite
(tests/integration/test_examples.py): ``python examples/snippets/getting_started.py URL``.

Each ``# [name]`` ... ``# [/name]`` block is shown on its page by ``literalinclude``."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import trio

import trio_mqtt


async def first_steps(url: str) -> None:
    # [first-steps]
    async with trio_mqtt.open_client(url) as client:
        async with client.subscribe("home/+/temperature", qos=1) as messages:
            await client.publish("home/livingroom/temperature", b"21.5", qos=1)
            async for message in messages:
                print(message.topic, message.payload)
                break
    # [/first-steps]


async def connect(url: str) -> None:
    # [connect]
    async with trio_mqtt.open_client(
        url,                                     # mqtt://localhost:1883, mqtts:// (TLS, verified)...
        client_id="sensor-1",                    # None: assigned by the broker (MQTT 5) or generated (3.1.1)
        protocol=trio_mqtt.ProtocolVersion.V5,   # or .V311
        username=None, password=None,
        keepalive=60, clean_start=True, session_expiry=0,
        will=trio_mqtt.Will("status/sensor-1", b"offline", qos=1, retain=True),
    ) as client:
        async with client.subscribe("home/+/temperature", qos=1) as messages:
            result = await client.publish("home/livingroom/temperature", b"23", qos=1, retain=True)
            async for message in messages:       # trio_mqtt.Message: topic, payload, qos, retain, properties
                print(message.topic, message.payload)
                break
    # [/connect]
    assert result.reason_code is trio_mqtt.ReasonCode.SUCCESS
    async with trio_mqtt.open_client(url) as client:  # clear the retained message
        await client.publish("home/livingroom/temperature", b"", qos=1, retain=True)


async def publish(client: trio_mqtt.MQTTClient) -> trio_mqtt.PublishResult:
    # [publish]
    result = await client.publish("a/b", b"payload", qos=1, retain=False,
                                  content_type="text/plain", user_properties=[("k", "v")])
    # [/publish]
    return result


async def subscribe(
    client: trio_mqtt.MQTTClient,
    handle: Callable[[trio_mqtt.Message], Awaitable[None]],
) -> None:
    # [subscribe]
    async with client.subscribe("home/+/temperature", "alerts/#", qos=1) as messages:
        async for message in messages:
            await handle(message)
    # [/subscribe]


async def main(url: str) -> None:
    await first_steps(url)
    await connect(url)
    async with trio_mqtt.open_client(url) as client:
        assert (await publish(client)).reason_code in (
            trio_mqtt.ReasonCode.SUCCESS,
            trio_mqtt.ReasonCode.NO_MATCHING_SUBSCRIBERS,
        )
        topics = ["alerts/snippets", "home/snippets/temperature"]
        for topic in topics:  # retained: the subscription below is served them at once
            await client.publish(topic, b"1", qos=1, retain=True)
        seen: list[str] = []
        with trio.move_on_after(10) as scope:  # a bound; handle() ends it earlier

            async def handle(message: trio_mqtt.Message) -> None:
                if message.topic in topics:  # others' retained messages may come too
                    seen.append(message.topic)
                if len(seen) == 2:
                    scope.cancel()

            await subscribe(client, handle)
        assert sorted(seen) == topics
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)
    print("done")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "mqtt://localhost:1883")
