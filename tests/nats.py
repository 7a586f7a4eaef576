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
