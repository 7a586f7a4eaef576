"""A private ejabberd serving MQTT (mod_mqtt) over TCP, WebSocket and WebSocket over TLS.

Debian's mosquitto is built without WebSocket support; ejabberd's mod_mqtt (Debian package
``ejabberd``) speaks MQTT 5 and 3.1.1 and serves it on an HTTP listener at ``/mqtt`` (see
docs/transports.md for the choice). Each instance runs as its own Erlang node with its own config,
spool, ports and distribution port, so it never touches a system ejabberd.

Notes: ejabberdctl started as root runs the node as user ``ejabberd``, so the work directory is
handed to that user; anonymous login (``login_anon``) still wants some user name and password;
certificates must be short-lived (a year-3000 expiry crashes its certificate timer).

``python -m tests.ejabberd`` starts one and prints its URLs until interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

from tests.brokers import free_port, started, wait_listening

BINARY = shutil.which("ejabberdctl") or (
    "/usr/sbin/ejabberdctl" if os.path.exists("/usr/sbin/ejabberdctl") else None
)
# mod_mqtt authenticates every client; with anonymous login any name and password will do.
USERNAME = "guest"
PASSWORD = "guest"

_CONFIG = """\
hosts:
  - localhost
loglevel: warning
auth_method: [anonymous]
anonymous_protocol: login_anon
allow_multiple_connections: true
{certfiles}
listen:
  - port: {mqtt_port}
    ip: "127.0.0.1"
    module: mod_mqtt
  - port: {ws_port}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /mqtt: mod_mqtt
{wss_listener}
modules:
  mod_mqtt:
    max_queue: 100000
    session_expiry: 3600
"""
_WSS_LISTENER = """\
  - port: {wss_port}
    ip: "127.0.0.1"
    module: ejabberd_http
    tls: true
    request_handlers:
      /mqtt: mod_mqtt
"""


@attrs.define
class Ejabberd:
    """A running private ejabberd: ``mqtt_port`` (TCP), ``ws_port``, ``wss_port`` (or None)."""

    workdir: Path
    mqtt_port: int
    ws_port: int
    wss_port: int | None
    node: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/mqtt"

    @property
    def wss_url(self) -> str:
        return f"wss://localhost:{self.wss_port}/mqtt"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def start(self, timeout: float = 30.0) -> None:
        assert BINARY is not None, "ejabberd is not installed"
        log = open(self.workdir / "console.log", "ab")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [
                BINARY,
                "--config", str(self.workdir / "ejabberd.yml"),
                "--ctl-config", str(self.workdir / "ejabberdctl.cfg"),
                "--spool", str(self.workdir / "spool"),
                "--logs", str(self.workdir / "logs"),
                "--node", self.node,
                "foreground",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,  # stop() signals the whole group: the shell, su and beam
        )  # fmt: skip
        log.close()
        ports = [p for p in (self.mqtt_port, self.ws_port, self.wss_port) if p]
        try:
            wait_listening("ejabberd", self.process, ports, timeout, self.console)
        except RuntimeError:
            self.stop()
            raise

    def console(self) -> str:
        path = self.workdir / "console.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def restart(self) -> None:
        self.stop()
        self.start()


def make_config(workdir: Path, *, certificate: bytes | None = None) -> Ejabberd:
    """Write the config of an instance into ``workdir`` (``certificate``: PEM cert and key, for
    wss). ``workdir``'s parents must let user ejabberd through (pytest's tmp_path does not)."""
    for sub in ("spool", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    certfile = None
    if certificate is not None:
        certfile = workdir / "server.pem"
        certfile.write_bytes(certificate)
    mqtt_port, ws_port = free_port(), free_port()
    wss_port = free_port() if certfile is not None else None
    (workdir / "ejabberd.yml").write_text(
        _CONFIG.format(
            mqtt_port=mqtt_port,
            ws_port=ws_port,
            certfiles=f'certfiles:\n  - "{certfile}"' if certfile else "",
            wss_listener=_WSS_LISTENER.format(wss_port=wss_port) if certfile else "",
        )
    )
    (workdir / "ejabberdctl.cfg").write_text(
        'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n'
        f"ERL_DIST_PORT={free_port()}\n"
        "INET_DIST_INTERFACE=127.0.0.1\n"
    )
    if os.geteuid() == 0:  # ejabberdctl runs the node as user ejabberd
        user = pwd.getpwnam("ejabberd")
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        workdir.chmod(0o755)
    return Ejabberd(
        workdir=workdir,
        mqtt_port=mqtt_port,
        ws_port=ws_port,
        wss_port=wss_port,
        node=f"trio_mqtt_test_{mqtt_port}@localhost",
    )


@contextlib.contextmanager
def running_ejabberd(*, certificate: bytes | None = None) -> Iterator[Ejabberd]:
    """Start a private ejabberd in a new directory under the system's temporary directory
    (retrying on the rare port collision); stop it and remove the directory on exit."""
    with tempfile.TemporaryDirectory(prefix="ejabberd-") as directory:
        workdir = Path(directory)
        workdir.chmod(0o755)
        make = functools.partial(make_config, certificate=certificate)
        with started(lambda attempt: make(workdir / f"run{attempt}")) as broker:
            yield broker


def main() -> int:
    with running_ejabberd() as broker:
        print(f"ejabberd: {broker.mqtt_url} {broker.ws_url}", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
