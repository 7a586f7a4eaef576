"""A publisher process for the process-restart test: it publishes numbered QoS 1 and QoS 2
messages (interleaved, then a QoS 1 ``last`` marker) with a file-backed session store and waits
for acknowledgements that the test black-holes, until the test kills it with SIGKILL. It prints
``connected`` once connected and starts publishing when a line arrives on stdin. After the
last publish is accepted it prints ``queued`` (the test cuts the connection first, for the
publishes that wait in the offline queue).

    python -m tests.crashing_publisher URL STORE CLIENT_ID TOPIC_BASE COUNT VERSION
"""

from __future__ import annotations

import sys

import trio

import trio_mqtt
from trio_mqtt import ProtocolVersion, SQLiteSessionStore


async def main(
    url: str, store: str, client_id: str, base: str, count: int, version: int
) -> None:
    protocol = ProtocolVersion(version)
    options: dict[str, object] = {"clean_start": False}
    if protocol is ProtocolVersion.V5:
        options["session_expiry"] = 600
    async with (
        trio_mqtt.open_client(
            url, client_id=client_id, protocol=protocol,
            session_store=SQLiteSessionStore(store), **options,  # type: ignore[arg-type]
        ) as client,
        trio.open_nursery() as nursery,
    ):  # fmt: skip
        print("connected", flush=True)  # the test now black-holes the acknowledgements
        await trio.to_thread.run_sync(sys.stdin.readline)
        for n in range(count):
            for qos in (1, 2):
                # start() returns once the PUBLISH is queued: call order is send order
                await nursery.start(publish, client, f"{base}/{qos}", b"%d" % n, qos)
        await nursery.start(publish, client, f"{base}/1", b"last", 1)
        print("queued", flush=True)


async def publish(
    client: trio_mqtt.MQTTClient, topic: str, payload: bytes, qos: int,
    *, task_status: trio.TaskStatus[None],
) -> None:  # fmt: skip
    task_status.started()  # publish() queues before its first checkpoint
    await client.publish(
        topic, payload, qos=qos
    )  # never acknowledged: the test kills us first


if __name__ == "__main__":
    url, store, client_id, base, count, version = sys.argv[1:]
    trio.run(main, url, store, client_id, base, int(count), int(version))
