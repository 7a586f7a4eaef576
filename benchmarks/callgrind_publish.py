"""Instructions per acknowledged QoS 1 publish, for callgrind (deterministic where timings
are not).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/callgrind_publish.py N [none|noop|otel|otel-nolatency] [QOS]

An in-process client publishes N QoS 1 messages (64-byte payload) one after the other, each
awaited as users do, over a socket pair to a scripted peer that answers each PUBLISH with its
PUBACK. Run it for N = 5,000 and N = 15,000: the difference in "Collected" instructions,
divided by 10,000, is the cost of one publish. The second argument picks the client's
``hooks``, as in callgrind_receive.py. With QOS 0 (the third argument) the messages are
QoS 0, published the same way, and the peer only reads.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parents[1]))

import trio_mqtt
from benchmarks.callgrind_receive import hooks_for
from tests import wire

TOPIC, PAYLOAD = "bench/tx", b"x" * 64


async def main(count: int, mode: str = "none", qos: int = 1) -> None:
    a, b = socket.socketpair()
    ours = trio.SocketStream(trio.socket.from_stdlib_socket(a))
    theirs = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    size = len(wire.publish(TOPIC, PAYLOAD, qos=1, packet_id=1))

    async def factory() -> trio.abc.Stream:
        return ours

    async def peer() -> None:
        await theirs.receive_some()  # CONNECT
        await theirs.send_all(wire.connack())
        buffer = b""
        while data := await theirs.receive_some():
            buffer += data
            acks = []
            if not qos:
                buffer = b""
                continue
            while len(buffer) >= size and buffer[0] == 0x32:
                packet, buffer = buffer[:size], buffer[size:]
                packet_id = int.from_bytes(
                    packet[4 + len(TOPIC) : 6 + len(TOPIC)], "big"
                )
                acks.append(wire.puback(packet_id))
            if acks:
                await theirs.send_all(b"".join(acks))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        async with trio_mqtt.open_client(
            transport_factory=factory, reconnect=None, hooks=hooks_for(mode)
        ) as client:
            for _ in range(count):
                await client.publish(TOPIC, PAYLOAD, qos=qos)
            print(client.statistics().ack_latency.count)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), *sys.argv[2:3], *map(int, sys.argv[3:4]))
