"""What a received message costs, and what a read costs, with the messages per read held fixed.

    .venv/bin/python benchmarks/paced_receive.py [--libs trio-mqtt,gmqtt] [--per-read 1,5,25,100,500]
        [--runs 3] [--gap-per-message 20]

Through a real broker, how many messages one read brings depends on how fast the broker writes
compared to how fast the client reads, so the receive workload of ``bench.py`` mixes two costs:
the cost of a message and the cost of a read (a wake-up: the system call, the event loop's
pass, the process woken from ``epoll_wait``). This script separates them. A scripted broker in
a process of its own (``peer`` below) accepts one client, answers its CONNECT and SUBSCRIBE,
then writes QoS 0 PUBLISHes (64-byte payload) in writes of K messages, each write a gap apart
that is long enough for the client to have read and handled the previous one: every read then
brings K messages. The client is the library's benchmark subscriber
(``python -m benchmarks.clients.<lib> sub``), which consumes messages as its documentation
recommends (trio-mqtt: ``async for``) and reports the CPU time (user + system) it spent from
the first message to the last.

For each library and K the script prints the median CPU µs per message over ``--runs`` runs,
then fits ``µs per message = per message + per read / K`` by least squares. A line is marked
``(gap too short?)`` when a write's K messages took more than half the gap: reads may then
have brought more than K.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBS = {
    "trio-mqtt": "benchmarks.clients.trio_mqtt_client",
    "gmqtt": "benchmarks.clients.gmqtt_client",
    "paho-mqtt": "benchmarks.clients.paho_client",
    "aiomqtt": "benchmarks.clients.aiomqtt_client",
}
TOPIC = b"bench/rx"


def gap_for(k: int, per_message: float) -> float:
    """Seconds between two writes of ``k`` messages: 200 µs plus ``per_message`` seconds per
    message (``--gap-per-message``: 20 µs by default, about three times what gmqtt spends on
    a message; more for slower libraries), so that each read finds one write."""
    return 200e-6 + per_message * k


def count_for(k: int) -> int:
    return 10_000 if k == 1 else 40_000


# -- the scripted broker (a process of its own) ------------------------------------------------


def _packets(conn: socket.socket) -> tuple[int, bytes]:
    """The next MQTT packet from ``conn``: (first byte, the rest after the length)."""
    buf = b""
    while True:
        if len(buf) >= 2:
            length, multiplier, i = 0, 1, 1
            while i < len(buf):
                byte = buf[i]
                length += (byte & 127) * multiplier
                multiplier *= 128
                i += 1
                if not byte & 128:
                    if len(buf) >= i + length:
                        return buf[0], buf[i : i + length]
                    break
        data = conn.recv(65536)
        if not data:
            raise SystemExit("peer: the client closed before subscribing")
        buf += data


def peer(count: int, k: int, gap: float) -> None:
    """Listen on a free port (printed), serve one subscriber, then send ``count`` messages in
    writes of ``k``, ``gap`` seconds apart (busy-waited: ``time.sleep`` is too coarse)."""
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    first, body = _packets(conn)
    assert first == 0x10, "CONNECT expected"
    v5 = body[6] == 5  # the protocol level, after the protocol name "MQTT"
    conn.sendall(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
    first, body = _packets(conn)
    assert first & 0xF0 == 0x80, "SUBSCRIBE expected"
    packet_id = body[:2]
    conn.sendall(
        b"\x90\x04" + packet_id + b"\x00\x00"
        if v5
        else b"\x90\x03" + packet_id + b"\x00"
    )
    variable = len(TOPIC).to_bytes(2, "big") + TOPIC + (b"\x00" if v5 else b"")
    body = variable + b"x" * 64
    chunk = (b"\x30" + bytes([len(body)]) + body) * k
    time.sleep(0.2)  # the subscriber has printed "ready" and waits in its loop
    for _ in range(count // k):
        conn.sendall(chunk)
        end = time.perf_counter() + gap
        while time.perf_counter() < end:
            pass
    conn.settimeout(30)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


# -- the driver --------------------------------------------------------------------------------


def run_once(lib: str, k: int, gap: float) -> float:
    """CPU µs per message of one run of ``lib``'s subscriber at ``k`` messages per read, the
    writes ``gap`` seconds apart."""
    count = count_for(k)
    with subprocess.Popen(
        [sys.executable, __file__, "peer", str(count), str(k), str(gap)],
        stdout=subprocess.PIPE,
        text=True,
    ) as broker:
        assert broker.stdout is not None
        port = broker.stdout.readline().strip()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                LIBS[lib],
                "sub",
                port,
                TOPIC.decode(),
                str(count),
                "0",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        broker.wait(60)
    result = json.loads(
        [line for line in out.stdout.splitlines() if line[:1] == "{"][-1]
    )
    if result["count"] != count:
        raise RuntimeError(f"{lib} received {result['count']} of {count}")
    return float(result["cpu"]) / count * 1e6


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares of ``y = a + b / k``: (a, b), µs per message and µs per read."""
    xs = [1 / k for k, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my - b * mx, b


def main() -> None:
    if sys.argv[1:2] == ["peer"]:
        peer(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libs", default="trio-mqtt,gmqtt")
    parser.add_argument("--per-read", default="1,5,25,100,500")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gap-per-message", type=float, default=20, help="µs")
    args = parser.parse_args()
    per_message = args.gap_per_message * 1e-6
    ks = [int(k) for k in args.per_read.split(",")]
    libs = args.libs.split(",")
    results: dict[str, list[tuple[int, float]]] = {lib: [] for lib in libs}
    print("| messages per read | " + " | ".join(libs) + " |")
    print("|---|" + "---|" * len(libs))
    for k in ks:
        cells = []
        for lib in libs:
            gap = gap_for(k, per_message)
            median = statistics.median(run_once(lib, k, gap) for _ in range(args.runs))
            results[lib].append((k, median))
            warn = " (gap too short?)" if median * k * 1e-6 > gap / 2 else ""
            cells.append(f"{median:.2f}{warn}")
        print(f"| {k} | " + " | ".join(cells) + " |", flush=True)
    print("\nCPU µs per message (median of", args.runs, "runs); fitted a + b / K:")
    for lib in libs:
        if len(results[lib]) > 1:
            a, b = fit(results[lib])
            print(f"- {lib}: {a:.2f} µs per message + {b:.1f} µs per read")


if __name__ == "__main__":
    main()
