"""A program that runs an MQTT client in a service task of its main nursery, as Trio
applications do, until Ctrl-C. It prints ``ready`` once connected.

    python -m tests.service_client URL CLIENT_ID WILL_TOPIC VERSION
"""

from __future__ import annotations

import sys

import trio

import trio_mqtt
from trio_mqtt import ProtocolVersion, Will


async def service(
    url: str, client_id: str, will_topic: str, version: int,
    *, task_status: trio.TaskStatus[None],
) -> None:  # fmt: skip
    async with (
        trio_mqtt.open_client(
            url, client_id=client_id, protocol=ProtocolVersion(version),
            will=Will(will_topic, b"died", qos=1),
        ) as client,
        client.subscribe(will_topic + "/commands", qos=1) as commands,
    ):  # fmt: skip
        task_status.started()
        async for _ in commands:
            pass


async def main(url: str, client_id: str, will_topic: str, version: int) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(service, url, client_id, will_topic, version)
        print("ready", flush=True)
        await trio.sleep_forever()  # Ctrl-C lands here


if __name__ == "__main__":
    url, client_id, will_topic, version = sys.argv[1:]
    trio.run(main, url, client_id, will_topic, int(version))
