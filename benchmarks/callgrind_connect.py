"""Instructions per connection, for callgrind (deterministic where timings are not).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/callgrind_connect.py PORT N [connect|full]

N clients connect to the Mosquitto on 127.0.0.1:PORT, 50 at a time, each holding its
``open_client`` block in a task of its own. ``connect`` exits the process (``os._exit``) as soon
as all are connected, so closing is not counted; ``full`` closes them all. Run it for N = 100
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


async def main(port: int, count: int, mode: str) -> None:
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
