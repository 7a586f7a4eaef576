"""The benchmark: the same workloads for trio-mqtt, paho-mqtt, gmqtt, aiomqtt and the C client
(libmosquitto), each run against its own private Mosquitto, in one run, with the ratios.

    bash scripts/bench [--quick] [--runs N] [--libs trio-mqtt,gmqtt] [--workloads ...] [--write-docs]
                       [--nagle]

Every figure is the median of ``--runs`` runs (3; 1 with ``--quick``, which also uses a tenth of
the message counts and finishes in under a minute). Each client runs in a process of its own and
reports the CPU time (user + system) it spent inside the workload: "messages per client
CPU-second" is the fair figure on a small shared machine, where the broker often saturates
first. ``--write-docs`` regenerates the results section of docs/performance.md. The brokers
write with ``set_tcp_nodelay true``, as in the issue that set round 4's targets; ``--nagle``
runs them with Mosquitto's default, Nagle's algorithm on.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mosquitto import Mosquitto, running_mosquitto  # noqa: E402

C_SOURCE = ROOT / "benchmarks" / "c" / "mqttbench.c"
C_BINARY = ROOT / "benchmarks" / ".build" / "mqttbench"
DOCS = ROOT / "docs" / "performance.md"
LIBS = {
    "trio-mqtt": "benchmarks.clients.trio_mqtt_client",
    "gmqtt": "benchmarks.clients.gmqtt_client",
    "paho-mqtt": "benchmarks.clients.paho_client",
    "aiomqtt": "benchmarks.clients.aiomqtt_client",
    "C (libmosquitto)": None,
}
PEERS = ["gmqtt", "paho-mqtt", "aiomqtt", "C (libmosquitto)"]
TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Workload:
    name: str
    title: str
    count: int
    run: Callable[[str, Mosquitto, int], dict[str, float]]
    counted: str = "messages"  # what ``count`` counts, in the table's heading


def build_c() -> None:
    if C_BINARY.exists() and C_BINARY.stat().st_mtime >= C_SOURCE.stat().st_mtime:
        return
    C_BINARY.parent.mkdir(exist_ok=True)
    subprocess.run(
        ["gcc", "-O2", "-o", str(C_BINARY), str(C_SOURCE), "-lmosquitto"], check=True
    )


def command(lib: str, *args: object) -> list[str]:
    module = LIBS[lib]
    base = [str(C_BINARY)] if module is None else [sys.executable, "-m", module]
    return base + [str(a) for a in args]


def run_json(cmd: list[str], timeout: float = 600) -> dict[str, Any]:
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"{cmd} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@contextmanager
def background(cmd: list[str]) -> Iterator[subprocess.Popen[str]]:
    """Start ``cmd``; wait for its ``ready`` line."""
    process = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(
                f"{cmd} did not get ready: {line!r} {process.stderr.read() if process.stderr else ''}"
            )
        yield process
    finally:
        if process.poll() is None:
            try:
                process.wait(200)
            except subprocess.TimeoutExpired:
                process.kill()


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=300)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no result: {stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def broker_cpu(broker: Mosquitto) -> float:
    assert broker.process is not None
    fields = (
        Path(f"/proc/{broker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    )
    return (int(fields[11]) + int(fields[12])) / TICKS


# -- workloads -----------------------------------------------------------------------------------


def qos0_publish(lib: str, broker: Mosquitto, count: int) -> dict[str, float]:
    """(1) QoS 0 publish, counted by a separate (C) subscriber process."""
    with background(
        command("C (libmosquitto)", "sub", broker.port, "bench/q0", count)
    ) as sub:
        b0 = broker_cpu(broker)
        pub = run_json(command(lib, "publish", broker.port, "bench/q0", count, 0))
        got = finish(sub)
    span = max(got["last"] - pub["start"], 1e-9)
    return {
        "msgs/s": got["count"] / span,
        "publisher msgs/s": count / max(pub["end"] - pub["start"], 1e-9),
        "msgs per CPU-s": count / max(pub["cpu"], 1e-9),
        "delivered %": 100 * got["count"] / count,
        "broker CPU %": 100 * (broker_cpu(broker) - b0) / span,
    }


def qos_publish(qos: int) -> Callable[[str, Mosquitto, int], dict[str, float]]:
    def workload(lib: str, broker: Mosquitto, count: int) -> dict[str, float]:
        """(2, 3) QoS 1/2 publish with 100 in flight."""
        b0 = broker_cpu(broker)
        pub = run_json(
            command(lib, "publish", broker.port, f"bench/q{qos}", count, qos, 100)
        )
        span = max(pub["end"] - pub["start"], 1e-9)
        return {
            "msgs/s": count / span,
            "msgs per CPU-s": count / max(pub["cpu"], 1e-9),
            "broker CPU %": 100 * (broker_cpu(broker) - b0) / span,
        }

    return workload


def receive(lib: str, broker: Mosquitto, count: int) -> dict[str, float]:
    """(4) A C publisher sends QoS 0 messages; the library delivers them to user code."""
    with background(command(lib, "sub", broker.port, "bench/rx", count, 0)) as sub:
        b0 = broker_cpu(broker)
        pub = run_json(
            command("C (libmosquitto)", "publish", broker.port, "bench/rx", count, 0)
        )
        got = finish(sub)
    span = max(got["last"] - pub["start"], 1e-9)
    return {
        "msgs/s": got["count"] / span,
        "msgs per CPU-s": got["count"] / max(got["cpu"], 1e-9),
        "delivered %": 100 * got["count"] / count,
        "broker CPU %": 100 * (broker_cpu(broker) - b0) / span,
    }


def roundtrip(qos: int) -> Callable[[str, Mosquitto, int], dict[str, float]]:
    def workload(lib: str, broker: Mosquitto, count: int) -> dict[str, float]:
        """(5) Round trips through the broker: publish, wait for the message to come back
        (``count`` times, or as many as fit in the client's ``ROUNDTRIP_SECONDS``)."""
        result = run_json(
            command(lib, "roundtrip", broker.port, f"bench/rt{qos}", count, qos)
        )
        return {
            "p50 µs": result["p50"] * 1e6,
            "p99 µs": result["p99"] * 1e6,
            "round trips per CPU-s": result["count"] / max(result["cpu"], 1e-9),
        }

    return workload


def idle(lib: str, broker: Mosquitto, count: int) -> dict[str, float]:
    """(6) Idle connections from one process: connect time and memory per connection."""
    if LIBS[lib] is None:
        return {}
    result = run_json(command(lib, "idle", broker.port, "bench/idle", count))
    return {
        "connect ms": result["connect"] * 1e3,
        "KiB per connection": result["memory"] / 1024,
    }


def many(lib: str, broker: Mosquitto, count: int) -> dict[str, float]:
    """(6b) Many idle connections from one process work (trio-mqtt only; the fd limit raised)."""
    if lib != "trio-mqtt":
        return {}
    return idle(lib, broker, count)


def storm(count_at_a_time: int) -> Callable[[str, Mosquitto, int], dict[str, float]]:
    def workload(lib: str, broker: Mosquitto, count: int) -> dict[str, float]:
        """(7) A connection storm: N clients from one process connect, 50 at a time."""
        if LIBS[lib] is None or lib == "aiomqtt":
            return {}
        result = run_json(
            command(lib, "storm", broker.port, "bench/storm", count, 0, count_at_a_time)
        )
        return {
            "seconds": result["seconds"],
            "connections/s": result["rate"],
            "peak KiB per connection": result["peak"] / 1024,
            "settled KiB per connection": result["settled"] / 1024,
        }

    return workload


WORKLOADS = [
    Workload("qos0", "(1) QoS 0 publish, 64-byte messages, counted by a separate subscriber", 200_000, qos0_publish),
    Workload("qos1", "(2) QoS 1 publish, 100 in flight", 50_000, qos_publish(1)),
    Workload("qos2", "(3) QoS 2 publish, 100 in flight", 20_000, qos_publish(2)),
    Workload("receive", "(4) receive: a C publisher sends QoS 0 messages", 200_000, receive),
    Workload("rt0", "(5a) round trip through the broker, QoS 0", 5_000, roundtrip(0)),
    Workload("rt1", "(5b) round trip through the broker, QoS 1", 5_000, roundtrip(1)),
    Workload("idle", "(6) idle connections from one process", 1_000, idle, "connections"),
    Workload("many", "(6b) 10,000 idle connections from one process, trio-mqtt", 10_000, many, "connections"),
    Workload("storm", "(7) connection storm: 1,000 clients connect, 50 at a time", 1_000, storm(50), "connections"),
    Workload("storm10k", "(7b) connection storm: 10,000 clients connect, 50 at a time", 10_000, storm(50), "connections"),
]  # fmt: skip
# which metric the ratios compare, and whether bigger is better
HEADLINE = {
    "qos0": [("msgs/s", True), ("msgs per CPU-s", True)],
    "qos1": [("msgs/s", True), ("msgs per CPU-s", True)],
    "qos2": [("msgs/s", True), ("msgs per CPU-s", True)],
    "receive": [("msgs/s", True), ("msgs per CPU-s", True)],
    "rt0": [("p50 µs", False), ("round trips per CPU-s", True)],
    "rt1": [("p50 µs", False), ("round trips per CPU-s", True)],
    "idle": [("KiB per connection", False), ("connect ms", False)],
    "many": [],
    "storm": [("connections/s", True), ("peak KiB per connection", False)],
    "storm10k": [("connections/s", True), ("peak KiB per connection", False)],
}


# The broker's setting of the issue that set round 4's targets (#19): Mosquitto writes each
# packet at once instead of holding small ones back under Nagle's algorithm (its default).
NODELAY = "set_tcp_nodelay true"


def measure(
    workload: Workload, lib: str, runs: int, scale: float, broker_extra: str = NODELAY
) -> dict[str, float]:
    count = max(1, int(workload.count * scale))
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        with running_mosquitto(extra=broker_extra) as broker:
            samples.append(workload.run(lib, broker, count))
    keys = samples[0].keys()
    return {k: statistics.median(s[k] for s in samples) for k in keys}


def ratio(ours: float, theirs: float, bigger_is_better: bool) -> float:
    if not ours or not theirs:
        return float("nan")
    return ours / theirs if bigger_is_better else theirs / ours


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def table(results: dict[str, dict[str, dict[str, float]]], libs: list[str]) -> str:
    lines: list[str] = []
    for workload in WORKLOADS:
        per_lib = results.get(workload.name)
        if not per_lib:
            continue
        metrics = list(next(iter(per_lib.values())))
        lines += [
            f"**{workload.title}** ({fmt(workload.count * SCALE)} {workload.counted})",
            "",
        ]
        lines.append("| library | " + " | ".join(metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
        for lib in libs:
            if per_lib.get(lib):
                row = per_lib[lib]
                lines.append(
                    f"| {lib} | "
                    + " | ".join(fmt(row.get(m, float("nan"))) for m in metrics)
                    + " |"
                )
        ours = per_lib.get("trio-mqtt")
        if ours:
            parts = []
            for metric, bigger in HEADLINE[workload.name]:
                versus = [
                    f"{peer} {ratio(ours.get(metric, 0), per_lib[peer].get(metric, 0), bigger):.2f}x"
                    for peer in PEERS
                    if peer in per_lib and per_lib[peer].get(metric)
                ]
                if versus:
                    parts.append(f"{metric}: " + ", ".join(versus))
            if parts:
                lines += ["", "trio-mqtt's ratio (>1 is better): " + "; ".join(parts)]
        lines.append("")
    return "\n".join(lines)


SCALE = 1.0


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mosquitto = subprocess.run(
        ["bash", "-c", "dpkg-query -W -f='${Version}' mosquitto 2>/dev/null"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return (
        f"{os.cpu_count()} x {cpu}, Linux {platform.release()}, Python {platform.python_version()}, "
        f"Mosquitto {mosquitto or '?'}"
    )


def write_docs(text: str, command_line: str, broker_extra: str) -> None:
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    broker = (
        f"`{broker_extra}`" if broker_extra else "Nagle's algorithm on (its default)"
    )
    body = (
        f"{start}\nGenerated by `{command_line}` on {datetime.date.today()} "
        f"({machine()}; the brokers with {broker}).\n\n{text}\n{end}"
    )
    doc = DOCS.read_text()
    if start in doc:
        doc = re.sub(
            re.escape(start) + ".*?" + re.escape(end), lambda _: body, doc, flags=re.S
        )
    else:
        doc += "\n" + body + "\n"
    DOCS.write_text(doc)


def main() -> int:
    global SCALE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS))
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw medians here")
    parser.add_argument(
        "--nagle",
        action="store_true",
        help="brokers with Mosquitto's default, Nagle's algorithm on (else set_tcp_nodelay true)",
    )
    options = parser.parse_args()
    broker_extra = "" if options.nagle else NODELAY
    SCALE = 0.1 if options.quick else 1.0
    runs = options.runs or (1 if options.quick else 3)
    libs = [lib for lib in LIBS if lib in options.libs.split(",")]
    chosen = options.workloads.split(",")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (hard, hard)
    )  # brokers and clients inherit it
    build_c()
    results: dict[str, dict[str, dict[str, float]]] = {}
    started = time.monotonic()
    for workload in WORKLOADS:
        if workload.name not in chosen:
            continue
        for lib in libs:
            print(f"{workload.name:8} {lib:18}", end=" ", flush=True, file=sys.stderr)
            try:
                row = measure(workload, lib, runs, SCALE, broker_extra)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"failed: {exc}", file=sys.stderr)
                continue
            if row:
                results.setdefault(workload.name, {})[lib] = row
            print(", ".join(f"{k} {fmt(v)}" for k, v in row.items()), file=sys.stderr)
    text = table(results, libs)
    print(text)
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    if options.json:
        options.json.write_text(json.dumps(results, indent=1))
    if options.write_docs:
        shown = [a for a in sys.argv[1:] if a != str(options.json) and a != "--json"]
        write_docs(text, "bash scripts/bench " + " ".join(shown), broker_extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
