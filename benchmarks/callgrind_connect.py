"""Instructions per connection, for callgrind (deterministic where timings are not).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/callgrind_connect.py PORT N [connect|full|floor]

N clients connect to the Mosquitto on 127.0.0.1:PORT, 50 at a time, each holding its
``open_client`` block in a task of its own. ``connect`` exits the process (``os._exit``) as soon
as all are connected, so closing is not counted; ``full`` closes them all. ``floor`` is the
least any Trio client can spend: a task per client that opens a socket, connects, sends a
CONNECT and reads the CONNACK, with no client library (trio-mqtt, docs/performance.md). Run it for N = 100
and N = 300: the difference in "Collected" instructions, divided by 200, is the cost of one
connection (docs/performance.md, fourth round). Start a broker with ``python -m tests.mosquitto``.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.clients.trio_mqtt_client import hold_clients


def _connect_packet(number: int) -> bytes:
    client_id = f"floor-{number}".encode()
    body = (
        b"\x00\x04MQTT\x04\x02\x02\x58" + len(client_id).to_bytes(2, "big") + client_id
    )
    return bytes([0x10, len(body)]) + body  # MQTT 3.1.1 CONNECT, keep alive 600 s


async def floor(port: int, count: int) -> None:
    """The floor: raw sockets, one task each, CONNECT sent and CONNACK read."""
    slots, connected, all_connected = trio.Semaphore(50), 0, trio.Event()

    async def one(number: int) -> None:
        nonlocal connected
        async with slots:
            sock = trio.socket.socket()
            await sock.connect(("127.0.0.1", port))
            stream = trio.SocketStream(sock)
            await stream.send_all(_connect_packet(number))
            assert (await stream.receive_some(4))[:1] == b"\x20"  # CONNACK
        connected += 1
        if connected == count:
            all_connected.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        for number in range(count):
            nursery.start_soon(one, number)
        await all_connected.wait()
        sys.stdout.flush()
        os._exit(0)


async def main(port: int, count: int, mode: str) -> None:
    if mode == "floor":
        await floor(port, count)
    all_connected, done = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            functools.partial(
                hold_clients, f"mqtt://127.0.0.1:{port}", count, 50, all_connected,
                lambda _: done.wait(), keepalive=600,
            )
        )  # fmt: skip
        await all_connected.wait()
        if mode == "connect":
            sys.stdout.flush()
            os._exit(0)
        done.set()


if __name__ == "__main__":
    trio.run(
        main,
        int(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3] if len(sys.argv) > 3 else "connect",
    )
