"""Child processes for the tests that kill or interrupt a whole program."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def child(
    module: str, *args: object, ready: bytes
) -> AsyncIterator[trio.Process]:
    """Run ``python -m module args`` from the repository root with piped standard streams,
    wait until it prints the ``ready`` line, and kill it on exit if it still runs."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert await read_line(process.stdout) == ready
        yield process
    finally:
        process.kill()
        await process.wait()


async def read_all(stream: trio.abc.ReceiveStream | None) -> bytes:
    """Everything ``stream`` has until its end."""
    assert stream is not None
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def read_line(stream: trio.abc.ReceiveStream | None) -> bytes:
    """The next line of ``stream``, without its end (a pipe may split a line anywhere: it is
    read a byte at a time, so nothing after the line is consumed)."""
    assert stream is not None
    line = b""
    while (byte := await stream.receive_some(1)) not in (b"\n", b""):
        line += byte
    return line
