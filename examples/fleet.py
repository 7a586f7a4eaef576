"""A fleet of simulated devices from one process: N clients (1,000 by default), each
publishing a reading at its own realistic interval. Useful as a load generator for a broker:
it reports the connection count and messages per second.

    python -m tests.mosquitto -- .venv/bin/python examples/fleet.py [DEVICES] [SECONDS]
"""

from __future__ import annotations

import os
import random
import sys
import time

import trio

import trio_mqtt


async def device(
    url: str,
    number: int,
    seconds: float,
    sent: list[int],
    rng: random.Random,
    *,
    task_status: trio.TaskStatus[None],
) -> None:
    async with trio_mqtt.open_client(
        url, client_id=f"fleet-{number}", keepalive=120
    ) as client:
        task_status.started()
        interval = rng.uniform(0.2, 1.0)  # each device has its own rhythm
        await trio.sleep(rng.uniform(0, interval))  # and they do not start in step
        deadline = trio.current_time() + seconds
        while trio.current_time() < deadline:
            reading = 20 + rng.gauss(0, 1)
            await client.publish(f"fleet/{number}/temperature", f"{reading:.2f}", qos=0)
            sent[0] += 1
            await trio.sleep(interval)


async def main(url: str, devices: int = 1000, seconds: float = 1.0) -> None:
    rng = random.Random(42)
    sent = [0]
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for number in range(devices):
            await nursery.start(device, url, number, seconds, sent, rng)
        connected = time.perf_counter() - start
        print(f"{devices} devices connected in {connected:.2f} s")
    elapsed = time.perf_counter() - start - connected
    print(f"{sent[0]} readings in {elapsed:.1f} s: {sent[0] / elapsed:,.0f} msgs/s")
    print("done")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    trio.run(main, os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"), count, duration)
