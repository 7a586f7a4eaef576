"""The code of docs/publishing.md, run against a broker by the suite (``# [name]`` fragments
are shown on the page by ``literalinclude``)."""

from __future__ import annotations

import sys

import trio

import trio_mqtt


async def publish_fast(client: trio_mqtt.MQTTClient, readings: list[bytes]) -> None:
    # [pipeline]
    async with client.pipeline(max_in_flight=1000) as pipe:
        for reading in readings:
            await pipe.publish("sensors/temperature", reading, qos=1)
    # here every message is acknowledged; if any was refused, PipelineError said which
    # [/pipeline]


async def main(url: str) -> None:
    readings = [b"%d" % n for n in range(2000)]
    async with (
        trio_mqtt.open_client(url) as client,
        client.subscribe("sensors/temperature", qos=1) as messages,
    ):
        await publish_fast(client, readings)
        received = [(await messages.receive()).payload for _ in readings]
    assert received == readings  # every one, in order
    print("done")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "mqtt://localhost:1883")
