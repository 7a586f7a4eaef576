"""Private Mosquitto brokers for tests, benchmarks and the demo: free loopback ports, own config.

``python -m tests.mosquitto -- CMD ARGS...`` starts a plain broker, runs the command with
``MQTT_URL`` set to it, and stops the broker afterwards.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

from tests.brokers import free_port, launch, started, terminate

BINARY = shutil.which("mosquitto") or next(
    (
        p
        for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
        if os.path.exists(p)
    ),
    None,
)


@attrs.define
class TLSFiles:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


@attrs.define
class Mosquitto:
    """A running private broker. ``port`` is plain TCP; ``tls_port`` is set when TLS is configured."""

    workdir: Path
    config: Path
    port: int
    tls_port: int | None = None
    unix_socket: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        assert BINARY is not None, "mosquitto is not installed"
        self.log = self.workdir / "mosquitto.log"
        addresses: list[int | str] = [p for p in (self.port, self.tls_port) if p]
        if self.unix_socket is not None:
            addresses.append(str(self.unix_socket))
        self.process = launch(
            "mosquitto", [BINARY, "-c", str(self.config)], self.log, addresses, timeout
        )

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def kill(self) -> None:
        """Stop without letting the broker save its state (a crash)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    async def wait_for_log(self, text: str) -> str:
        """Wait (bounded by the caller) until the broker has logged ``text``; return the log."""
        import trio

        assert self.log is not None
        while True:
            log = self.log.read_text()
            if text in log:
                return log
            # The broker is another process: its log file is the only signal there is.
            await trio.sleep(0.01)

    def restart(self) -> None:
        self.stop()
        self.start()


def make_config(
    workdir: Path,
    *,
    tls: TLSFiles | None = None,
    require_certificate: bool = False,
    passwords: dict[str, str] | None = None,
    persistence: bool = False,
    unix_socket: bool = False,
    extra: str = "",
) -> Mosquitto:
    """Write a mosquitto.conf for the requested features into ``workdir``."""
    port = free_port()
    lines = [
        "per_listener_settings false",
        f"user {getpass.getuser()}",
        # Debian 2.0.11 leaks receive quota when QoS 1 and 2 mix on one connection (BROKERS.md).
        "max_inflight_messages 0",
        "max_queued_messages 10000000",
        "log_type error",
        "log_type warning",
        "log_type notice",  # connections and how they ended (tests/integration/test_lifecycle.py)
        "log_type subscribe",  # "<client id> <qos> <filter>": when a subscription is in place
        f"listener {port} 127.0.0.1",
    ]
    tls_port = None
    if tls is not None:
        tls_port = free_port()
        lines += [
            f"listener {tls_port} 127.0.0.1",
            f"cafile {tls.ca_pem}",
            f"certfile {tls.cert_pem}",
            f"keyfile {tls.key_pem}",
        ]
        if require_certificate:
            lines.append("require_certificate true")
    socket_path = workdir / "mosquitto.sock" if unix_socket else None
    if socket_path is not None:
        lines.append(f"listener 0 {socket_path}")
    if passwords:
        password_file = workdir / "passwords"
        password_file.touch(0o600)
        for user, password in passwords.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(password_file), user, password],
                check=True,
                capture_output=True,
            )
        lines += ["allow_anonymous false", f"password_file {password_file}"]
    else:
        lines.append("allow_anonymous true")
    if persistence:
        lines += [
            "persistence true",
            f"persistence_location {workdir}/",
            "autosave_interval 0",
        ]
    lines.append(extra)
    config = workdir / "mosquitto.conf"
    config.write_text("\n".join(lines) + "\n")
    return Mosquitto(
        workdir=workdir,
        config=config,
        port=port,
        tls_port=tls_port,
        unix_socket=socket_path,
    )


@contextlib.contextmanager
def running_mosquitto(
    workdir: Path | None = None, **options: object
) -> Iterator[Mosquitto]:
    """Start a private broker, retrying on the rare port collision, and stop it on exit."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="mosquitto-"))
            )
        with started(lambda _: make_config(workdir, **options)) as broker:  # type: ignore[arg-type]
            yield broker


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m tests.mosquitto -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with running_mosquitto() as broker:
        print(f"private mosquitto on {broker.url}", file=sys.stderr)
        return subprocess.run(
            args, env={**os.environ, "MQTT_URL": broker.url}
        ).returncode


if __name__ == "__main__":
    sys.exit(main())
