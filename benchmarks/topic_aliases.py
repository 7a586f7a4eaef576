"""Bytes saved by outbound topic aliases on a long-topic workload (docs/mqtt5.md).

    python -m tests.mosquitto -- .venv/bin/python -m benchmarks.topic_aliases

Publishes 100 QoS 1 messages of 4 bytes to a 60-byte topic, with and without
``topic_aliases=True``, through a proxy that counts the bytes the client sends (CONNECT and
DISCONNECT included).
"""

from __future__ import annotations

import os

import trio

import trio_mqtt
from tests.proxy import open_proxy

TOPIC = "plant/building-with-a-long-name/line-0/sensor-12/temperature"


async def sent_bytes(port: int, *, aliases: bool) -> int:
    sent = 0

    def tap(_connection: int, upward: bool, data: bytes) -> None:
        nonlocal sent
        if upward:
            sent += len(data)

    async with open_proxy(port) as proxy:
        proxy.tap = tap
        async with trio_mqtt.open_client(proxy.url, topic_aliases=aliases) as client:
            for _ in range(100):
                await client.publish(TOPIC, b"21.5", qos=1)
    return sent


async def main() -> None:
    port = int(os.environ["MQTT_URL"].rsplit(":", 1)[1])
    plain = await sent_bytes(port, aliases=False)
    aliased = await sent_bytes(port, aliases=True)
    print(f"topic of {len(TOPIC)} bytes, 100 messages of 4 bytes")
    print(
        f"without aliases: {plain:,} bytes; with: {aliased:,} ({aliased / plain - 1:+.0%})"
    )


if __name__ == "__main__":
    trio.run(main)
