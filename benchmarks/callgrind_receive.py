"""Instructions per received message, for callgrind (deterministic where timings are not).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/callgrind_receive.py N [none|noop|otel|otel-nolatency]

An in-process client receives N QoS 0 PUBLISHes (64-byte payload, pre-encoded, sent 500 at a
time) over a socket pair from a scripted peer, through ``async for``, as users read them. Run
it for N = 20,000 and N = 60,000: the difference in "Collected" instructions, divided by
40,000, is the cost of one message. The second argument picks the client's ``hooks``
(:func:`hooks_for`): none (default), a no-op ``on_message_received``, or OpenTelemetry.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parents[1]))

import trio_mqtt
from tests import wire


class _NoOp(trio_mqtt.ClientHooks):
    """A listener on every event that does nothing: the cost of calling hooks at all."""

    def on_message_received(self, message: trio_mqtt.Message) -> None:
        pass

    def on_publish_acknowledged(self, *args: object) -> None:  # type: ignore[override]
        pass


def hooks_for(mode: str) -> trio_mqtt.ClientHooks | None:
    """The ``hooks`` of a benchmark mode: none, noop, otel (the SDK, a manual reader), or
    otel-nolatency (the same with ``record_latency=False``)."""
    if mode == "none":
        return None
    if mode == "noop":
        return _NoOp()
    if mode in ("otel", "otel-nolatency"):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from trio_mqtt.otel import OpenTelemetryHooks

        return OpenTelemetryHooks(
            MeterProvider(metric_readers=[InMemoryMetricReader()]),
            record_latency=mode == "otel",
        )
    raise SystemExit(f"unknown hooks mode {mode!r}: none, noop, otel, otel-nolatency")


async def main(count: int, mode: str = "none") -> None:
    a, b = socket.socketpair()
    ours = trio.SocketStream(trio.socket.from_stdlib_socket(a))
    theirs = trio.SocketStream(trio.socket.from_stdlib_socket(b))

    async def factory() -> trio.abc.Stream:
        return ours

    async def peer() -> None:
        await theirs.receive_some()  # CONNECT
        await theirs.send_all(wire.connack())
        subscribe = await theirs.receive_some()
        await theirs.send_all(wire.suback(int.from_bytes(subscribe[2:4], "big"), 0))
        chunk = wire.publish("bench/rx", b"x" * 64) * 500
        for _ in range(count // 500):
            await theirs.send_all(chunk)
        while await theirs.receive_some():
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer)
        async with (
            trio_mqtt.open_client(
                transport_factory=factory, reconnect=None, hooks=hooks_for(mode)
            ) as client,
            client.subscribe("bench/rx", buffer_size=10_000) as messages,
        ):
            received = 0
            async for _ in messages:
                received += 1
                if received == count:
                    break
    print(received)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), *sys.argv[2:3])
