"""What every benchmark client shares: the command line, clocks and the one-line JSON report.

    python -m benchmarks.clients.<library> MODE PORT TOPIC COUNT [QOS [INFLIGHT]]

MODE is ``publish`` (COUNT 64-byte messages, at most INFLIGHT unacknowledged), ``sub`` (print
``ready`` once subscribed, then count COUNT messages), ``roundtrip`` (publish and wait for the
message to come back, COUNT times or for ``ROUNDTRIP_SECONDS``), ``idle`` (open COUNT connections one after the other and
hold them) or ``storm`` (open COUNT connections, INFLIGHT at a time, and hold them). Times are
``time.monotonic()`` (CLOCK_MONOTONIC, comparable across processes), CPU is ``process_time()``
(user + system, all threads) spent inside the workload, not in start-up.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Mapping
from typing import Any

import attrs

PAYLOAD = b"x" * 64
now = time.monotonic
cpu = time.process_time


@attrs.frozen
class Args:
    mode: str
    port: int
    topic: str
    count: int
    qos: int
    inflight: int


def parse() -> Args:
    argv = sys.argv[1:]
    return Args(
        mode=argv[0],
        port=int(argv[1]),
        topic=argv[2],
        count=int(argv[3]),
        qos=int(argv[4]) if len(argv) > 4 else 0,
        inflight=int(argv[5]) if len(argv) > 5 else 100,
    )


MODES = ("publish", "sub", "roundtrip", "idle", "storm")


def mode_function(namespace: Mapping[str, Any]) -> tuple[Any, Args]:
    """The command line's mode as the function of that name in a client module's
    ``namespace`` (its ``globals()``), and the parsed arguments to call it with."""
    args = parse()
    if args.mode not in MODES or args.mode not in namespace:
        raise SystemExit(
            f"unknown mode {args.mode!r} for this client: {', '.join(MODES)}"
        )
    return namespace[args.mode], args


def ready() -> None:
    print("ready", flush=True)


def report(**values: Any) -> None:
    print(json.dumps(values), flush=True)


def shares(count: int, parts: int) -> list[int]:
    """``count`` split into ``parts`` near-equal shares (one per publishing task)."""
    share, extra = divmod(count, parts)
    return [share + (i < extra) for i in range(parts)]


#: ``roundtrip`` stops after this many seconds if COUNT round trips have not been made by
#: then (a client that waits 44 ms per round trip would take minutes for 5,000).
ROUNDTRIP_SECONDS = 15.0


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50": ordered[len(ordered) // 2], "p99": ordered[len(ordered) * 99 // 100]}


def rss() -> int:
    """Resident memory of this process, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """This process's resident high-water mark so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def storm_report(count: int, t0: float, m0: int, peak0: int) -> None:
    """What a storm reports: the time until all were connected, connections per second, and
    memory per connection, at its peak (the high-water mark above where the storm started)
    and settled (once all are connected)."""
    t1, m1 = now(), rss()
    report(
        count=count,
        seconds=t1 - t0,
        rate=count / max(t1 - t0, 1e-9),
        peak=(max(peak_rss(), peak0) - m0) / count,
        settled=(m1 - m0) / count,
    )


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
