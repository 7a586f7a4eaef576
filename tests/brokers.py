"""What every private test broker shares: free ports, waiting for its listeners, and starting it
with a retry (another process may take a free port between choosing it and binding it)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
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
