"""MQTT 5 features in one run: what the broker said, request/response, a pipeline with topic
aliases, subscription options, and a farewell that publishes the will.

    python -m tests.mosquitto -- .venv/bin/python examples/mqtt5_features.py

docs/mqtt5.md walks through it.
"""

from __future__ import annotations

import json
import os

import trio

import trio_mqtt


async def adder(client: trio_mqtt.MQTTClient, ready: trio.Event) -> None:
    """A responder: answers each request on svc/add with the sum of its two numbers."""
    async with client.serve("svc/add") as requests:
        ready.set()
        async for request in requests:
            a, b = json.loads(request.payload)
            await request.reply(json.dumps(a + b), content_type="application/json")


async def main(url: str) -> None:
    async with (
        trio_mqtt.open_client(url, topic_aliases=True) as client,
        trio.open_nursery() as nursery,
    ):
        server = client.server
        print(
            f"broker: receive maximum {server.receive_maximum}, "
            f"topic aliases {server.topic_alias_maximum}, "
            f"shared subscriptions {server.shared_subscription_available}"
        )

        # request/response: a responder in a task, and requests from this one
        ready = trio.Event()
        nursery.start_soon(adder, client, ready)
        await ready.wait()
        with trio.fail_after(5):
            response = await client.request("svc/add", json.dumps([2, 40]))
        print(
            "2 + 40 =", json.loads(response.payload), response.properties.content_type
        )

        # a pipeline: many QoS 1 messages in flight, each topic sent in full only once
        async with client.subscribe("plant/+/temperature", qos=1) as readings:
            async with client.pipeline(max_in_flight=100) as pipe:
                for n in range(300):
                    await pipe.publish(f"plant/line-{n % 3}/temperature", b"%d" % n)
            print("published", pipe.published, "readings")
            received = [await readings.receive() for _ in range(300)]
            print("received", len(received), "first:", received[0].topic)
            print("granted QoS", readings.granted_qos)

        # no_local: our own messages do not come back to us
        async with client.subscribe("chat/room", qos=1, no_local=True) as chat:
            await client.publish("chat/room", b"from me", qos=1)
            async with trio_mqtt.open_client(url) as friend:
                await friend.publish("chat/room", b"from a friend", qos=1)
            print("chat:", (await chat.receive()).payload.decode())

        # a farewell that asks the broker to publish the will anyway (reason code 0x04)
        async with client.subscribe("devices/+/status", qos=1) as statuses:
            will = trio_mqtt.Will("devices/sensor-1/status", "offline", qos=1)
            async with trio_mqtt.open_client(url, will=will) as device:
                await device.disconnect(
                    trio_mqtt.ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
                )
            print("will:", (await statuses.receive()).payload.decode())

        nursery.cancel_scope.cancel()
    print("done")


if __name__ == "__main__":
    trio.run(main, os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
