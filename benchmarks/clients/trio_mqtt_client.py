"""trio-mqtt in the benchmark workloads (see common.py)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import trio_mqtt
from benchmarks.clients.common import (
    PAYLOAD,
    ROUNDTRIP_SECONDS,
    Args,
    cpu,
    mode_function,
    now,
    peak_rss,
    percentiles,
    raise_fd_limit,
    ready,
    report,
    rss,
    storm_report,
)  # fmt: skip


def url(args: Args) -> str:
    return f"mqtt://127.0.0.1:{args.port}"


async def publish(args: Args) -> None:
    async with trio_mqtt.open_client(url(args)) as client:
        c0, t0 = cpu(), now()
        if not args.qos:
            for _ in range(args.count):
                await client.publish(args.topic, PAYLOAD)
        else:
            # the documented way to publish fast: MQTTClient.pipeline (docs/publishing.md)
            async with client.pipeline(max_in_flight=args.inflight) as pipe:
                for _ in range(args.count):
                    await pipe.publish(args.topic, PAYLOAD, qos=args.qos)
        report(count=args.count, start=t0, end=now(), cpu=cpu() - c0)


async def sub(args: Args) -> None:
    async with (
        trio_mqtt.open_client(url(args)) as client,
        client.subscribe(args.topic, qos=args.qos, buffer_size=10_000) as messages,
    ):
        ready()
        received, first, c0 = 0, 0.0, 0.0
        last = 0.0
        with trio.move_on_after(120):
            async for _ in messages:
                if not received:
                    first, c0 = now(), cpu()
                received += 1
                if received == args.count:
                    break
        last = now()
        report(count=received, first=first, last=last, cpu=cpu() - c0)


async def roundtrip(args: Args) -> None:
    async with (
        trio_mqtt.open_client(url(args)) as client,
        client.subscribe(args.topic, qos=args.qos) as messages,
    ):
        latencies = []
        c0, started = cpu(), now()
        for _ in range(args.count):
            t0 = now()
            await client.publish(args.topic, PAYLOAD, qos=args.qos)
            await messages.receive()
            latencies.append(now() - t0)
            if now() - started > ROUNDTRIP_SECONDS:
                break
        report(count=len(latencies), cpu=cpu() - c0, **percentiles(latencies))


async def idle(args: Args) -> None:
    raise_fd_limit()
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        m0, t0 = rss(), now()
        for _ in range(args.count):
            await stack.enter_async_context(
                trio_mqtt.open_client(url(args), keepalive=600)
            )
        t1, m1 = now(), rss()
        report(
            count=args.count,
            connect=(t1 - t0) / args.count,
            memory=(m1 - m0) / args.count,
        )


async def hold_clients(
    url: str,
    count: int,
    at_a_time: int,
    all_connected: trio.Event,
    hold: Callable[[trio_mqtt.MQTTClient], Awaitable[object]],
    **options: Any,
) -> None:
    """Open ``count`` clients, ``at_a_time`` of them connecting at once, each in a task of its
    own running ``hold(client)`` inside its ``open_client`` block (the structured way to hold
    many connections); set ``all_connected`` once every one has connected. Returns when every
    ``hold`` has returned and its block has closed."""
    slots = trio.Semaphore(at_a_time)
    connected = 0

    async def one() -> None:
        nonlocal connected
        await slots.acquire()
        released = False
        try:
            async with trio_mqtt.open_client(url, **options) as client:
                slots.release()
                released = True
                connected += 1
                if connected == count:
                    all_connected.set()
                await hold(client)
        finally:
            if not released:
                slots.release()

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)


async def storm(args: Args) -> None:
    """COUNT clients connect, INFLIGHT at a time (see :func:`hold_clients`)."""
    raise_fd_limit()
    all_connected, done = trio.Event(), trio.Event()
    m0, peak0, t0 = rss(), peak_rss(), now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            functools.partial(
                hold_clients, url(args), args.count, args.inflight, all_connected,
                lambda _: done.wait(), keepalive=600,
            )
        )  # fmt: skip
        await all_connected.wait()
        storm_report(args.count, t0, m0, peak0)
        done.set()


def main() -> None:
    function, args = mode_function(globals())
    trio.run(function, args)


if __name__ == "__main__":
    main()
