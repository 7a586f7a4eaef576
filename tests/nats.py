"""Private nats-server brokers for tests: MQTT 3.1.1 (QoS 0 and 1; sessions kept in JetStream)
on free loopback ports, each with its own store directory.

nats-server is the broker here that refuses QoS 2 by closing the connection on such a PUBLISH,
and answers an MQTT 5 CONNECT with a 3.1.1 CONNACK (../shared/BROKERS.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from tests.brokers import free_port, launch, started, terminate

BINARY = shutil.which("nats-server") or next(
    (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if os.path.exists(p)),
    None,
)


@attrs.define
class NatsServer:
    """A running private nats-server; ``port`` is its MQTT listener."""

    workdir: Path
    port: int
    client_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "nats.log"

    def start(self, timeout: float = 10.0) -> None:
        assert BINARY is not None, "nats-server is not installed"
        config = self.workdir / "nats.conf"
        config.write_text(
            f"listen: 127.0.0.1:{self.client_port}\n"
            f"server_name: trio-mqtt-{self.port}\n"
            f'jetstream {{ store_dir: "{self.workdir / "store"}" }}\n'
            f"mqtt {{ listen: 127.0.0.1:{self.port} }}\n"
        )
        self.process = launch(
            "nats-server", [BINARY, "-c", str(config)], self.log, [self.port], timeout
        )

    def stop(self) -> None:
        terminate(self.process)
        self.process = None


@contextlib.contextmanager
def running_nats(workdir: Path | None = None) -> Iterator[NatsServer]:
    """Start a private nats-server, retrying on the rare port collision; stop it on exit."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="nats-"))
            )
        root = workdir

        def make(attempt: int) -> NatsServer:
            directory = root / f"attempt-{attempt}"
            directory.mkdir(exist_ok=True)
            return NatsServer(
                workdir=directory, port=free_port(), client_port=free_port()
            )

        with started(make) as broker:
            yield broker


@attrs.define
class NatsCluster:
    """Nodes of one nats-server cluster on loopback: routes between every pair, JetStream on
    each (it keeps the MQTT sessions, replicated across the nodes), an MQTT listener each.
    Nodes can be killed (SIGKILL) and started again with the same ports and store."""

    workdir: Path
    mqtt_ports: list[int]
    client_ports: list[int]
    route_ports: list[int]
    processes: list[subprocess.Popen[bytes] | None] = attrs.field(factory=list)

    @property
    def urls(self) -> list[str]:
        return [f"mqtt://127.0.0.1:{port}" for port in self.mqtt_ports]

    def node_of(self, port: int) -> int:
        """The index of the node whose MQTT listener is ``port``."""
        return self.mqtt_ports.index(port)

    def log(self, node: int) -> Path:
        return self.workdir / f"n{node}.log"

    def start(self, timeout: float = 20.0) -> None:
        self.processes = [None] * len(self.mqtt_ports)
        for node in range(len(self.mqtt_ports)):
            self.start_node(node, timeout)
        self.wait_ready(timeout)

    def start_node(self, node: int, timeout: float = 20.0) -> None:
        assert BINARY is not None, "nats-server is not installed"
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.route_ports)
        config = self.workdir / f"n{node}.conf"
        config.write_text(
            f"server_name: n{node}\n"
            f"listen: 127.0.0.1:{self.client_ports[node]}\n"
            f'jetstream {{ store_dir: "{self.workdir / f"store{node}"}" }}\n'
            f"cluster {{ name: trio-mqtt; listen: 127.0.0.1:{self.route_ports[node]};"
            f" routes: [{routes}] }}\n"
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_ports[node]} }}\n"
        )
        self.processes[node] = launch(
            f"nats-server n{node}", [BINARY, "-c", str(config)], self.log(node),
            [self.mqtt_ports[node]], timeout,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the cluster has a JetStream metadata leader (MQTT sessions need one):
        the nodes are other processes, and their logs are the only signal they give."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(
                "JetStream cluster new metadata leader" in self.log(n).read_text()
                for n in range(len(self.mqtt_ports))
                if self.log(n).exists()
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("the nats cluster elected no JetStream leader")

    def kill(self, node: int) -> None:
        """SIGKILL a node: no goodbye to its clients or to the rest of the cluster."""
        process = self.processes[node]
        assert process is not None
        process.kill()
        process.wait()
        self.processes[node] = None

    def stop(self) -> None:
        for process in self.processes:
            terminate(process)
        self.processes = []


@contextlib.contextmanager
def running_nats_cluster(workdir: Path, nodes: int = 3) -> Iterator[NatsCluster]:
    """Start a ``nodes``-node nats cluster (see :class:`NatsCluster`); stop it on exit."""

    def make(attempt: int) -> NatsCluster:
        directory = workdir / f"cluster-{attempt}"
        directory.mkdir(exist_ok=True)
        return NatsCluster(
            workdir=directory,
            mqtt_ports=[free_port() for _ in range(nodes)],
            client_ports=[free_port() for _ in range(nodes)],
            route_ports=[free_port() for _ in range(nodes)],
        )

    with started(make) as cluster:
        yield cluster
