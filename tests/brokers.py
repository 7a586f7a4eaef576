"""What every private test broker shares: free ports, waiting for its listeners, and starting it
with a retry (another process may take a free port between choosing it and binding it)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(
    name: str,
    process: subprocess.Popen[bytes],
    addresses: Sequence[int | str],
    timeout: float,
    log: Callable[[], str],
) -> None:
    """Wait until every TCP port (int) or Unix socket path (str) accepts connections.

    Raises:
        RuntimeError: the process exited, or a listener did not come up within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    pending = list(addresses)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log()}")
        address = pending[0]
        try:
            if isinstance(address, str):
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(address)
            else:
                socket.create_connection(("127.0.0.1", address), 0.2).close()
            pending.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not listen on {address} within {timeout}s:\n{log()}"
                ) from None
            time.sleep(
                0.01
            )  # polling the listener: a broker has no other readiness signal


def launch(
    name: str,
    argv: Sequence[str],
    log: Path,
    addresses: Sequence[int | str],
    timeout: float,
) -> subprocess.Popen[bytes]:
    """Start a broker (output appended to ``log``) and wait until it listens on every
    address (see :func:`wait_listening`); stop it again if it does not."""
    with open(log, "ab") as output:
        process = subprocess.Popen(list(argv), stdout=output, stderr=output)
    try:
        wait_listening(name, process, addresses, timeout, log.read_text)
    except RuntimeError:
        terminate(process)
        raise
    return process


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a broker process: SIGTERM, then SIGKILL if it is not gone within 5 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Startable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


B = TypeVar("B", bound=Startable)


@contextlib.contextmanager
def started(make: Callable[[int], B], attempts: int = 3) -> Iterator[B]:
    """Start ``make(attempt)`` (new ports each attempt); stop it on exit."""
    for attempt in range(attempts):
        broker = make(attempt)
        try:
            broker.start()
            break
        except RuntimeError:
            broker.stop()
            if attempt == attempts - 1:
                raise
    try:
        yield broker
    finally:
        broker.stop()
