"""A fleet of idle connections in one process, and the reconnect storm after a broker restart.

    .venv/bin/python benchmarks/reconnect_storm.py [--clients 10000] [--gc-threshold N]

N clients (each in a task of its own holding its ``open_client`` block, keep alive 60 s, the
default reconnect policy: full jitter from 0.1 s, doubling) connect to a private Mosquitto, 50
at a time. The script reports the settled memory per connection, then restarts the broker and
reports how the fleet comes back: the time until every client is connected again, and the
rate over that time. (A finer peak rate cannot be read from inside the process: while the
reconnections keep the event loop busy, the clients' state changes are observed in batches.)

It also reports the CPU time each connection cost the client process and the broker while
the fleet connected. ``--gc-threshold N`` runs with ``gc.set_threshold(N, 50, 100)`` instead of
CPython's default (700, 10, 10): its cyclic collector's share of opening a large fleet.

The process's file-descriptor limit bounds N: a connection is a descriptor here and another in
the broker (this machine's hard limit is 20,000, so about 19,000 clients).
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parents[1]))

import trio_mqtt
from benchmarks.clients.common import rss
from benchmarks.clients.trio_mqtt_client import hold_clients
from tests.mosquitto import Mosquitto, running_mosquitto


async def fleet(broker: Mosquitto, clients: int) -> None:
    all_connected, restarted = trio.Event(), trio.Event()
    back: list[float] = []
    all_back = trio.Event()

    async def device(client: trio_mqtt.MQTTClient) -> None:
        with client.watch_state() as changes:
            async for change in changes:
                if restarted.is_set() and isinstance(change, trio_mqtt.Connected):
                    back.append(time.monotonic())
                    if len(back) == clients:
                        all_back.set()
                    await trio.sleep_forever()

    m0, t0 = rss(), time.monotonic()
    cpu0, broker_cpu0 = process_cpu(), broker_cpu(broker)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            functools.partial(
                hold_clients,
                broker.url,
                clients,
                50,
                all_connected,
                device,
                keepalive=60,
            )
        )
        await all_connected.wait()
        t1 = time.monotonic()
        ours = (process_cpu() - cpu0) / clients * 1e6
        theirs = (broker_cpu(broker) - broker_cpu0) / clients * 1e6
        settled = (rss() - m0) / clients / 1024
        print(
            f"{clients:,} connected in {t1 - t0:.1f} s ({clients / (t1 - t0):,.0f}/s), "
            f"{settled:.1f} KiB per connection (resident, watchers included), "
            f"CPU per connection: {ours:,.0f} us here, {theirs:,.0f} us in the broker",
            flush=True,
        )
        restarted.set()
        restart_at = time.monotonic()
        await trio.to_thread.run_sync(broker.stop)
        await trio.to_thread.run_sync(broker.start)  # returns once it listens again
        up_at = time.monotonic()
        with trio.fail_after(300):
            await all_back.wait()
        done = time.monotonic()
        last = max(back) - up_at
        print(
            f"broker restarted (down {up_at - restart_at:.2f} s): all {clients:,} back "
            f"{done - up_at:.1f} s after it was up again, "
            f"{clients / max(last, 1e-9):,.0f} reconnections/s on average",
            flush=True,
        )
        nursery.cancel_scope.cancel()


def process_cpu() -> float:
    """This process's CPU seconds (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def broker_cpu(broker: Mosquitto) -> float:
    """The broker process's CPU seconds, from /proc (Linux)."""
    assert broker.process is not None
    stat = Path(f"/proc/{broker.process.pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--gc-threshold", type=int, default=None)
    args = parser.parse_args()
    if args.gc_threshold is not None:
        gc.set_threshold(args.gc_threshold, 50, 100)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the broker inherits it
    with (
        tempfile.TemporaryDirectory() as directory,
        running_mosquitto(Path(directory)) as broker,
    ):
        trio.run(fleet, broker, args.clients)


if __name__ == "__main__":
    main()
