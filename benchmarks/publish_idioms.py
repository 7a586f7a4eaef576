"""The three ways to publish many QoS 1 messages, timed in one run (docs/publishing.md).

    python -m tests.mosquitto -- .venv/bin/python benchmarks/publish_idioms.py [COUNT]

Prints messages per second for: awaiting each publish in turn, one task per publish, and a
pipeline (the documented way). Against the broker in ``MQTT_URL``.
"""

from __future__ import annotations

import os
import sys
import time

import trio

import trio_mqtt

PAYLOAD = b"x" * 64


async def one_by_one(client: trio_mqtt.MQTTClient, count: int) -> None:
    for _ in range(count):
        await client.publish("bench/idioms", PAYLOAD, qos=1)


async def task_per_message(client: trio_mqtt.MQTTClient, count: int) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(lambda: client.publish("bench/idioms", PAYLOAD, qos=1))


async def pipeline(client: trio_mqtt.MQTTClient, count: int) -> None:
    async with client.pipeline(max_in_flight=1000) as pipe:
        for _ in range(count):
            await pipe.publish("bench/idioms", PAYLOAD, qos=1)


async def main(count: int) -> None:
    url = os.environ["MQTT_URL"]
    async with trio_mqtt.open_client(url) as client:
        for name, idiom in [
            ("await publish() in a loop", one_by_one),
            ("one task per publish()", task_per_message),
            ("client.pipeline()", pipeline),
        ]:
            start = time.perf_counter()
            await idiom(client, count)
            elapsed = time.perf_counter() - start
            print(f"{name:28} {count / elapsed:>10,.0f} msgs/s")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
