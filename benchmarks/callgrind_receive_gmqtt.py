"""gmqtt's instructions per received message, the peer of ``callgrind_receive.py``.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/callgrind_receive_gmqtt.py N

The same scripted peer, in the same process (an asyncio server on a loopback port, since gmqtt
connects by host and port): CONNACK, SUBACK, then N QoS 0 PUBLISHes of 64 bytes, 500 at a time.
gmqtt hands each message to its ``on_message`` callback, the way its documentation shows. Run it
for N = 20,000 and N = 60,000: the difference in "Collected" instructions, divided by 40,000,
is the cost of one message (docs/performance.md). Needs the ``bench`` extra.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import gmqtt

sys.path.insert(0, str(Path(__file__).parents[1]))

from tests import wire


async def main(count: int) -> None:
    done = asyncio.Event()
    received = 0

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # CONNECT
        writer.write(wire.connack())
        subscribe = await reader.read(65536)
        writer.write(wire.suback(int.from_bytes(subscribe[2:4], "big"), 0))
        chunk = wire.publish("bench/rx", b"x" * 64) * 500
        for _ in range(count // 500):
            writer.write(chunk)
            await writer.drain()
        await done.wait()
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    def on_message(
        client: object, topic: str, payload: bytes, qos: int, props: object
    ) -> int:
        nonlocal received
        received += 1
        if received == count:
            done.set()
        return 0

    client = gmqtt.Client("callgrind-rx")
    client.on_message = on_message
    await client.connect("127.0.0.1", port)
    client.subscribe("bench/rx", qos=0)
    await done.wait()
    print(received)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
