"""paho-mqtt 2.x (its network thread: loop_start) in the benchmark workloads (see common.py)."""

from __future__ import annotations

import selectors
import threading

import paho.mqtt.client as mqtt

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


def connect(args: Args, inflight: int = 100) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", args.port, keepalive=600)
    client.loop_start()
    connected.wait(10)
    return client


def publish(args: Args) -> None:
    client = connect(args, args.inflight)
    done = threading.Event()
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        if acked == args.count:
            done.set()

    client.on_publish = on_publish
    c0, t0 = cpu(), now()
    for _ in range(args.count):
        client.publish(args.topic, PAYLOAD, qos=args.qos)
    done.wait(300)
    report(count=acked, start=t0, end=now(), cpu=cpu() - c0)
    client.disconnect()
    client.loop_stop()


def sub(args: Args) -> None:
    client = connect(args)
    done, subscribed = threading.Event(), threading.Event()
    state = {"received": 0, "first": 0.0, "c0": 0.0}

    def on_message(*_: object) -> None:
        if not state["received"]:
            state["first"], state["c0"] = now(), cpu()
        state["received"] += 1
        if state["received"] == args.count:
            done.set()

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe(args.topic, qos=args.qos)
    subscribed.wait(10)
    ready()
    done.wait(120)
    report(
        count=state["received"],
        first=state["first"],
        last=now(),
        cpu=cpu() - state["c0"],
    )
    client.disconnect()
    client.loop_stop()


def roundtrip(args: Args) -> None:
    client = connect(args)
    arrived, subscribed = threading.Event(), threading.Event()
    client.on_message = lambda *a: arrived.set()
    client.on_subscribe = lambda *a: subscribed.set()
    client.subscribe(args.topic, qos=args.qos)
    subscribed.wait(10)
    latencies = []
    c0, started = cpu(), now()
    for _ in range(args.count):
        arrived.clear()
        t0 = now()
        client.publish(args.topic, PAYLOAD, qos=args.qos)
        arrived.wait(10)
        latencies.append(now() - t0)
        if now() - started > ROUNDTRIP_SECONDS:
            break
    report(count=len(latencies), cpu=cpu() - c0, **percentiles(latencies))
    client.disconnect()
    client.loop_stop()


def connect_all(args: Args) -> list[mqtt.Client]:
    """Many clients in one thread, through paho's external-loop API (loop_read/loop_write):
    with a network thread per client (loop_start), 1,000 connections did not finish here.
    paho's ``connect()`` is a blocking TCP connect, so they are opened one after the other
    and their CONNACKs read together."""
    raise_fd_limit()
    clients: list[mqtt.Client] = []
    connected = 0

    def on_connect(*_: object) -> None:
        nonlocal connected
        connected += 1

    with selectors.DefaultSelector() as selector:
        for _ in range(args.count):
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            client.on_connect = on_connect
            client.connect("127.0.0.1", args.port, keepalive=600)
            selector.register(client.socket(), selectors.EVENT_READ, client)
            clients.append(client)
            client.loop_write()
        deadline = now() + 60
        while connected < args.count and now() < deadline:
            for key, _ in selector.select(timeout=1):
                key.data.loop_read()
    return clients[:connected]


def idle(args: Args) -> None:
    m0, t0 = rss(), now()
    clients = connect_all(args)
    t1, m1 = now(), rss()
    report(
        count=len(clients),
        connect=(t1 - t0) / args.count,
        memory=(m1 - m0) / args.count,
    )
    for client in clients:
        client.disconnect()


def storm(args: Args) -> None:
    m0, peak0, t0 = rss(), peak_rss(), now()
    clients = connect_all(args)
    storm_report(len(clients), t0, m0, peak0)
    for client in clients:
        client.disconnect()


if __name__ == "__main__":
    function, arguments = mode_function(globals())
    function(arguments)
