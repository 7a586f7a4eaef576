"""A fault-injecting TCP proxy for the resilience tests: it sits between a client and a real
broker and can cut every connection, refuse new ones, black-hole traffic without closing (one
direction or both), and cut at random points on a seeded schedule.

    async with open_proxy(broker_port) as proxy:
        ... open_client(proxy.url) ...
        proxy.cut()                  # every live connection dies (RST-like close)
        proxy.blackhole(down=True)   # broker -> client bytes vanish; the sockets stay open
        proxy.refuse(True)           # new connections are closed at once
        proxy.stall()                # stop reading from the client (its socket fills up)
        nursery.start_soon(proxy.chaos, random.Random(7), 0.1, 0.4)
"""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import trio

import trio_mqtt


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections = 0  # accepted so far
        self.cuts = 0  # connections cut by cut()
        self._live: set[trio.CancelScope] = set()
        self._refuse = False
        self._up_blocked = False  # client -> broker
        self._down_blocked = False  # broker -> client
        self.connected = trio.Event()  # set on each new connection (then replaced)
        self.dropped_down = 0  # broker -> client bytes black-holed so far
        self._dropped = trio.Event()
        #: called with (connection number, upward, bytes) for every forwarded chunk
        self.tap: Callable[[int, bool, bytes], None] | None = None
        #: relay a half-close (EOF one way) as one, as TCP does, instead of closing both ways
        self.half_close = False
        #: connections the client reset (RST) rather than closed (FIN)
        self.client_resets = 0
        self._stalled: trio.Event | None = None  # set again when stalling ends

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def cut(self) -> int:
        """Close every live connection now; returns how many."""
        count = len(self._live)
        for scope in list(self._live):
            scope.cancel()
        self.cuts += count
        return count

    def refuse(self, refuse: bool = True) -> None:
        self._refuse = refuse

    def blackhole(self, *, up: bool = False, down: bool = False) -> None:
        """Drop the bytes going client -> broker (``up``) and/or broker -> client (``down``)."""
        self._up_blocked, self._down_blocked = up, down

    def stall(self, stalled: bool = True) -> None:
        """Stop reading what the client sends (a broker too slow to read: the client's socket
        buffers fill and its writes block), or read again."""
        if stalled and self._stalled is None:
            self._stalled = trio.Event()
        elif not stalled and self._stalled is not None:
            self._stalled.set()
            self._stalled = None

    async def wait_dropped_down(self, nbytes: int) -> None:
        """Wait until ``nbytes`` broker -> client bytes in all have been black-holed."""
        while self.dropped_down < nbytes:
            await self._dropped.wait()

    async def chaos(self, rng: random.Random, low: float, high: float) -> None:
        """Cut every connection at random intervals in [low, high) seconds, forever."""
        while True:
            await trio.sleep(rng.uniform(low, high))
            self.cut()

    async def _pump(
        self, source: trio.abc.Stream, sink: trio.abc.Stream, upward: bool, number: int
    ) -> None:
        while True:
            if upward and self._stalled is not None:
                await self._stalled.wait()
            data = await source.receive_some(65536)
            if not data:
                return
            if self._up_blocked if upward else self._down_blocked:
                if not upward:
                    self.dropped_down += len(data)
                    self._dropped.set()
                    self._dropped = trio.Event()
                continue  # black hole: read and forget
            if self.tap is not None:
                self.tap(number, upward, data)
            await sink.send_all(data)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        self.connected.set()
        self.connected = trio.Event()
        if self._refuse:
            await trio.aclose_forcefully(client)
            return
        upstream: trio.SocketStream | None = None
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
            with trio.CancelScope() as scope:
                self._live.add(scope)
                try:
                    async with trio.open_nursery() as nursery:
                        number = self.connections
                        nursery.start_soon(
                            self._pump_then_cancel, client, upstream, True, number
                        )
                        nursery.start_soon(
                            self._pump_then_cancel, upstream, client, False, number
                        )
                finally:
                    self._live.discard(scope)
        except OSError:
            pass
        finally:
            # aclose_forcefully closes the socket before its checkpoint, which re-raises
            # Cancelled when the server is shutting down: hence one finally per stream
            try:
                await trio.aclose_forcefully(client)
            finally:
                if upstream is not None:
                    await trio.aclose_forcefully(upstream)

    async def _pump_then_cancel(
        self, source: trio.abc.Stream, sink: trio.abc.Stream, upward: bool, number: int
    ) -> None:
        try:
            await self._pump(source, sink, upward, number)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            # a reset read from the client, or met writing to it
            if isinstance(exc.__cause__ or exc, ConnectionResetError | BrokenPipeError):
                self.client_resets += 1
        else:
            if self.half_close and isinstance(sink, trio.SocketStream):
                with suppress(
                    trio.BrokenResourceError, trio.ClosedResourceError, OSError
                ):
                    await sink.send_eof()
                return  # the other direction goes on until it ends too
        if self._up_blocked if upward else self._down_blocked:
            # A black hole swallows the close too: the other side must find out by itself
            # (keep alive), and only cut() ends the connection.
            await trio.sleep_forever()
        # one side closed: the whole connection goes
        trio.lowlevel.current_task().parent_nursery.cancel_scope.cancel()  # type: ignore[union-attr]


@asynccontextmanager
async def open_proxy(upstream_port: int) -> AsyncIterator[Proxy]:
    """A proxy to 127.0.0.1:``upstream_port``; an exception from the block leaves it bare."""
    proxy = Proxy(upstream_port)
    try:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, proxy._handle, 0, host="127.0.0.1")
            )
            proxy.port = listeners[0].socket.getsockname()[1]
            try:
                yield proxy
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        raise group.exceptions[0] from None


@asynccontextmanager
async def client_behind_proxy(
    upstream_port: int, **options: Any
) -> AsyncIterator[tuple[Proxy, trio_mqtt.MQTTClient]]:
    """A proxy to 127.0.0.1:``upstream_port`` and a client connected through it
    (``open_client(proxy.url, **options)``)."""
    async with (
        open_proxy(upstream_port) as proxy,
        trio_mqtt.open_client(proxy.url, **options) as client,
    ):
        yield proxy, client
