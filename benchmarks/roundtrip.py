"""100,000 QoS 0 messages published and received back through a private Mosquitto.

.venv/bin/python -m tests.mosquitto -- .venv/bin/python benchmarks/roundtrip.py
"""

from __future__ import annotations

import os
import time

import trio

import trio_mqtt

COUNT = 100_000


async def main(url: str) -> None:
    payload = b"x" * 64
    async with (
        trio_mqtt.open_client(url) as subscriber,
        trio_mqtt.open_client(url) as publisher,
        subscriber.subscribe("bench/roundtrip", qos=0) as messages,
    ):
        received = 0
        started = time.perf_counter()

        async def publish_all() -> None:
            for _ in range(COUNT):
                await publisher.publish("bench/roundtrip", payload)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish_all)
            with trio.move_on_after(60):
                async for _ in messages:
                    received += 1
                    if received == COUNT:
                        break
        elapsed = time.perf_counter() - started
    print(
        f"QoS 0 round trip: {received:,}/{COUNT:,} messages in {elapsed:.2f}s = {received / elapsed:,.0f} msgs/s"
    )


if __name__ == "__main__":
    trio.run(main, os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
