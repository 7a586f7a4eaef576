"""aiomqtt 2.x (asyncio over paho-mqtt) in the benchmark workloads (see common.py)."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt

from benchmarks.clients.common import (
    PAYLOAD,
    ROUNDTRIP_SECONDS,
    Args,
    cpu,
    mode_function,
    now,
    percentiles,
    raise_fd_limit,
    ready,
    report,
    rss,
    shares,
)  # fmt: skip


def client_for(args: Args) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", args.port, protocol=aiomqtt.ProtocolVersion.V5,
        max_inflight_messages=args.inflight, keepalive=600,
    )  # fmt: skip


async def publish(args: Args) -> None:
    async with client_for(args) as client:
        c0, t0 = cpu(), now()
        if not args.qos:
            for _ in range(args.count):
                await client.publish(args.topic, PAYLOAD)
        else:

            async def worker(n: int) -> None:
                for _ in range(n):
                    await client.publish(args.topic, PAYLOAD, qos=args.qos)

            async with asyncio.TaskGroup() as group:
                for n in shares(args.count, args.inflight):
                    group.create_task(worker(n))
        report(count=args.count, start=t0, end=now(), cpu=cpu() - c0)


async def sub(args: Args) -> None:
    async with client_for(args) as client:
        await client.subscribe(args.topic, qos=args.qos)
        ready()
        received, first, c0 = 0, 0.0, 0.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                async for _ in client.messages:
                    if not received:
                        first, c0 = now(), cpu()
                    received += 1
                    if received == args.count:
                        break
        report(count=received, first=first, last=now(), cpu=cpu() - c0)


async def roundtrip(args: Args) -> None:
    async with client_for(args) as client:
        await client.subscribe(args.topic, qos=args.qos)
        messages = aiter(client.messages)
        latencies = []
        c0, started = cpu(), now()
        for _ in range(args.count):
            t0 = now()
            await client.publish(args.topic, PAYLOAD, qos=args.qos)
            await anext(messages)
            latencies.append(now() - t0)
            if now() - started > ROUNDTRIP_SECONDS:
                break
        report(count=len(latencies), cpu=cpu() - c0, **percentiles(latencies))


async def idle(args: Args) -> None:
    raise_fd_limit()
    async with contextlib.AsyncExitStack() as stack:
        m0, t0 = rss(), now()
        for _ in range(args.count):
            await stack.enter_async_context(client_for(args))
        t1, m1 = now(), rss()
        report(
            count=args.count,
            connect=(t1 - t0) / args.count,
            memory=(m1 - m0) / args.count,
        )


if __name__ == "__main__":
    function, arguments = mode_function(globals())
    asyncio.run(function(arguments))
