"""gmqtt (asyncio) in the benchmark workloads (see common.py). gmqtt reports no publish
acknowledgement to the application, so completion is counted where it drops the acknowledged
message from its queue."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

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


class Client(gmqtt.Client):  # type: ignore[misc]
    acked = 0
    slots: asyncio.Semaphore | None = None
    all_acked: asyncio.Event | None = None
    target = 0

    def _remove_message_from_queue(self, mid: int) -> None:
        super()._remove_message_from_queue(mid)
        self.acked += 1
        if self.slots is not None:
            self.slots.release()
        if self.acked == self.target and self.all_acked is not None:
            self.all_acked.set()


async def connect(args: Args) -> Client:
    client = Client(uuid.uuid4().hex)
    await client.connect("127.0.0.1", args.port, version=MQTTv50, keepalive=600)
    return client


async def drained(client: Client) -> None:
    transport = client._connection._transport
    while transport.get_write_buffer_size():  # noqa: ASYNC110 - asyncio has no event for it
        await asyncio.sleep(0.0005)


async def publish(args: Args) -> None:
    client = await connect(args)
    client.target, client.all_acked = args.count, asyncio.Event()
    client.slots = asyncio.Semaphore(args.inflight)
    c0, t0 = cpu(), now()
    for i in range(args.count):
        if args.qos:
            await client.slots.acquire()
        client.publish(args.topic, PAYLOAD, qos=args.qos)
        if not args.qos and i % 1000 == 0:
            await drained(
                client
            )  # keep the write buffer bounded, as a real program would
    if args.qos:
        await client.all_acked.wait()
    else:
        await drained(client)
    report(count=args.count, start=t0, end=now(), cpu=cpu() - c0)
    await client.disconnect()


async def sub(args: Args) -> None:
    client = await connect(args)
    done, subscribed = asyncio.Event(), asyncio.Event()
    state = {"received": 0, "first": 0.0, "c0": 0.0}

    def on_message(
        c: object, topic: str, payload: bytes, qos: int, properties: object
    ) -> int:
        if not state["received"]:
            state["first"], state["c0"] = now(), cpu()
        state["received"] += 1
        if state["received"] == args.count:
            done.set()
        return 0

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe(args.topic, qos=args.qos)
    await subscribed.wait()
    ready()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 120)
    report(
        count=state["received"],
        first=state["first"],
        last=now(),
        cpu=cpu() - state["c0"],
    )
    await client.disconnect()


async def roundtrip(args: Args) -> None:
    client = await connect(args)
    arrived, subscribed = asyncio.Event(), asyncio.Event()

    def on_message(*_: object) -> int:
        arrived.set()
        return 0

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe(args.topic, qos=args.qos)
    await subscribed.wait()
    latencies = []
    c0, started = cpu(), now()
    for _ in range(args.count):
        arrived.clear()
        t0 = now()
        client.publish(args.topic, PAYLOAD, qos=args.qos)
        await arrived.wait()
        latencies.append(now() - t0)
        if now() - started > ROUNDTRIP_SECONDS:
            break
    report(count=len(latencies), cpu=cpu() - c0, **percentiles(latencies))
    await client.disconnect()


async def idle(args: Args) -> None:
    raise_fd_limit()
    m0, t0 = rss(), now()
    clients = [await connect(args) for _ in range(args.count)]
    t1, m1 = now(), rss()
    report(
        count=len(clients),
        connect=(t1 - t0) / args.count,
        memory=(m1 - m0) / args.count,
    )
    for client in clients:
        await client.disconnect()


async def storm(args: Args) -> None:
    """COUNT clients connect, INFLIGHT at a time (tasks limited by a semaphore)."""
    raise_fd_limit()
    slots = asyncio.Semaphore(args.inflight)

    async def one() -> Client:
        async with slots:
            return await connect(args)

    m0, peak0, t0 = rss(), peak_rss(), now()
    clients = await asyncio.gather(*(one() for _ in range(args.count)))
    storm_report(len(clients), t0, m0, peak0)
    for client in clients:
        await client.disconnect()


if __name__ == "__main__":
    function, arguments = mode_function(globals())
    asyncio.run(function(arguments))
