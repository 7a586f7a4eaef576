"""Throughput of a worker pool (examples/worker_pool.py) with 1, 2 and 4 worker processes.

    .venv/bin/python benchmarks/worker_pool.py [--jobs 2000] [--size 2000] [--workers 1,2,4]

Each run has a private Mosquitto. JOBS jobs of SIZE SHA-256 rounds each (2,000: ~2 ms of CPU)
go to ``$share/workers/jobs/#``. A run is timed from the first job published to the last
result received. Broker CPU % is Mosquitto's CPU time over that span: near 100 % the broker is
the limit. On a machine with C cores, more than C busy workers cannot go faster.
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).parents[1]))

import trio_mqtt
from tests.mosquitto import Mosquitto, running_mosquitto

EXAMPLE: dict[str, Any] = runpy.run_path(
    str(Path(__file__).parents[1] / "examples" / "worker_pool.py")
)
TICKS = os.sysconf("SC_CLK_TCK")


def broker_cpu(broker: Mosquitto) -> float:
    assert broker.process is not None
    stat = Path(f"/proc/{broker.process.pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run(
    broker: Mosquitto, workers: int, jobs: int, size: int
) -> tuple[float, float]:
    """Jobs per second, and the broker's CPU share over the run."""
    async with (
        trio_mqtt.open_client(broker.url) as client,
        client.subscribe("results/+", qos=1) as results,
        trio.open_nursery() as nursery,
    ):
        pool = [
            await nursery.start(EXAMPLE["WorkerProcess"](f"bench-{n}").run, broker.url)
            for n in range(workers)
        ]
        t0, c0 = trio.current_time(), broker_cpu(broker)
        async with client.pipeline(max_in_flight=100) as pipe:
            for n in range(jobs):
                await pipe.publish(f"jobs/{n}", b"%d" % size, qos=1)
        done = set()
        async for result in results:
            done.add(result.topic)
            if len(done) == jobs:
                break
        span = trio.current_time() - t0
        cpu = broker_cpu(broker) - c0
        for member in pool:
            member.process.send_signal(signal.SIGTERM)
    return jobs / span, 100 * cpu / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    print(f"{args.jobs} jobs of {args.size} SHA-256 rounds, {os.cpu_count()} cores\n")
    print("| workers | jobs/s | broker CPU % |\n|---|---|---|")
    for workers in (int(w) for w in args.workers.split(",")):
        with (
            tempfile.TemporaryDirectory() as directory,
            running_mosquitto(Path(directory)) as broker,
        ):
            rate, cpu = trio.run(run, broker, workers, args.jobs, args.size)
        print(f"| {workers} | {rate:,.0f} | {cpu:.0f} |", flush=True)


if __name__ == "__main__":
    main()
