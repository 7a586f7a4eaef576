"""The byte stream a link runs on: receive, try to send now, send all, close.

Two implementations, chosen by :func:`wrap_stream`, as httpcore's backends are:

* :class:`ByteStream` over any :class:`trio.abc.Stream` (TLS, WebSocket, memory streams in
  tests). Its reads must not be cut short: a TLS or WebSocket read cancelled half-way leaves
  the stream broken, so the link's writer keeps the connection alive instead
  (``reads_cut_short`` is False) and nothing is sent outside the writer (``try_send``
  sends nothing).
* :class:`SocketByteStream` over a plain TCP or Unix socket on POSIX. It reads and writes the
  descriptor itself, without the stream's layers: a read can be cut short by a deadline (the
  reader keeps the connection alive: an idle connection is one task), and ``try_send`` writes
  at once from the calling task (a request-response exchange costs no task switch).

Both make a TCP socket acknowledge at once after each read (see :func:`_quickack`).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Awaitable

import trio

from ._ws import WebSocketStream

RECEIVE_SIZE = 65536
# A read at least this large means the broker is streaming (read again before waiting).
_STREAMING = 512
TRANSPORT_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)

# (a tuple: isinstance() against ``A | B`` builds the union at every call, ~1 µs on 3.11)
_LAYERED = (trio.SSLStream, WebSocketStream)


class ByteStream:
    """A :class:`trio.abc.Stream` as the link uses it."""

    __slots__ = ("_quickack", "_received", "stream")

    #: Whether a read may be cancelled by a deadline and the stream stay usable.
    reads_cut_short = False

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._quickack = _quickack_socket(stream)
        self._received: bytes | None = None

    # Reading is two steps, ``await stream.wait()`` then ``stream.read()``, so that a plain
    # socket's wait is trio's own ``wait_readable`` with no coroutine of ours around it: an
    # idle connection then holds one frame less (memory per connection).

    def wait(self) -> Awaitable[None]:
        """Wait until :meth:`read` may have bytes (an awaitable: ``await stream.wait()``)."""
        return self._fill()

    async def _fill(self) -> None:
        self._received = bytes(await self.stream.receive_some(RECEIVE_SIZE))

    def read(self) -> bytes | None:
        """The bytes received (``b""``: the broker closed its end), or ``None`` if there were
        none after all (wait again)."""
        data, self._received = self._received, None
        if data and self._quickack is not None:
            _quickack(self._quickack)
        return data

    def try_send(self, data: bytes) -> int:
        """Send what can go without waiting; return how many bytes went (none here)."""
        return 0

    async def send_all(self, data: bytes) -> None:
        """Send ``data``, waiting as long as it takes (the caller bounds it)."""
        await self.stream.send_all(data)

    def detach(self) -> None:
        """No more direct use of the socket (it is about to be closed)."""

    async def aclose(self, grace: float, *, linger: bool = False) -> None:
        """Close, waiting at most ``grace`` seconds for a graceful close; errors ignored.

        With ``linger`` (a DISCONNECT was the last thing sent), first signal the end of our
        sending and read until the broker closes its end, within the same ``grace``: closing
        a TCP socket with unread bytes in it (a broker streaming messages to us) resets the
        connection, and a broker that meets the reset before it has read our DISCONNECT
        ends the session as lost and publishes the will ([MQTT-3.1.2-8]). Mosquitto does:
        "disconnected: Broken pipe". This is the lingering close of HTTP servers (RFC 9112
        section 9.6). A WebSocket's own close handshake does the same (RFC 6455 section 7)."""
        self.detach()
        stream = self.stream
        with trio.move_on_after(grace) as scope:
            if linger and not isinstance(stream, WebSocketStream):
                with contextlib.suppress(*TRANSPORT_ERRORS):
                    if isinstance(stream, trio.abc.HalfCloseableStream):
                        await stream.send_eof()  # the broker reads EOF after DISCONNECT
                    while True:  # after DISCONNECT nothing more is read [MQTT-3.14.4-2]
                        try:
                            if not await stream.receive_some(RECEIVE_SIZE):
                                break
                        except trio.BusyResourceError:
                            # the link's reader, cancelled, has yet to let go of the stream
                            await trio.lowlevel.checkpoint()
        with trio.move_on_after(0 if scope.cancelled_caught else grace):
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await stream.aclose()  # closes even when cancelled (trio's contract)

    async def discard(self) -> None:
        """Close at once."""
        self.detach()
        await trio.aclose_forcefully(self.stream)


class SocketByteStream(ByteStream):
    """A plain socket's descriptor, read and written directly (see the module docstring)."""

    __slots__ = ("_fd", "_streaming")

    reads_cut_short = True

    def __init__(self, stream: trio.SocketStream) -> None:
        super().__init__(stream)
        self._fd = stream.socket.fileno()
        self._streaming = False

    def wait(self) -> Awaitable[None]:
        # After a small read (an answer to what we sent) wait until the socket is readable;
        # after a large one (the broker is streaming) more is likely there already: read
        # again after a checkpoint. The descriptor is looked up each time: once detached it
        # may be closed and its number reused.
        fd = self._fd
        if fd < 0:
            raise trio.ClosedResourceError("the link has ended")
        # (returned, not awaited here: the caller awaits it at once, with no frame of ours)
        if self._streaming:
            return trio.lowlevel.checkpoint()  # noqa: ASYNC105
        return trio.lowlevel.wait_readable(fd)  # noqa: ASYNC105

    def read(self) -> bytes | None:
        try:
            data = os.read(self._fd, RECEIVE_SIZE)
        except BlockingIOError:  # nothing there (yet)
            self._streaming = False
            return None
        self._streaming = len(data) >= _STREAMING
        if self._quickack is not None:
            _quickack(self._quickack)
        return data

    def try_send(self, data: bytes) -> int:
        """One non-blocking write; 0 when the socket is full, broken or detached (the
        writer then sends the rest, or reports the error)."""
        if self._fd < 0:
            return 0
        try:
            return os.write(self._fd, data)
        except OSError:
            return 0

    def detach(self) -> None:
        self._fd = -1


def wrap_stream(stream: trio.abc.Stream) -> ByteStream:
    """The fastest byte stream for ``stream``: its socket directly when it is a plain
    :class:`trio.SocketStream` on POSIX, else the stream itself."""
    if os.name == "posix" and type(stream) is trio.SocketStream:
        return SocketByteStream(stream)
    return ByteStream(stream)


_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def _quickack_socket(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The TCP socket under ``stream`` if it can be made to acknowledge at once (Linux
    ``TCP_QUICKACK``, which the kernel resets after each receive: :func:`_quickack` sets it
    again after each read), or None.

    Why: many brokers (Mosquitto by default) write with Nagle's algorithm on. When the broker
    answers one PUBLISH with two packets in two writes (the routed copy to us, then our PUBACK),
    the second waits for the TCP acknowledgement of the first, which our kernel delays by up to
    40 ms when we have nothing to send: a QoS 1 round trip then takes 44 ms instead of 0.2 ms.

    The stream keeps the socket it has anyway, not a closure over it (200 bytes per idle
    connection).
    """
    while isinstance(stream, _LAYERED):
        stream = stream.transport_stream
    if _TCP_QUICKACK is None or not isinstance(stream, trio.SocketStream):
        return None
    sock = stream.socket
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return sock


def _quickack(sock: trio.socket.SocketType) -> None:
    try:  # noqa: SIM105 - once per receive: no context manager on the hot path
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)  # type: ignore[arg-type]
    except OSError:
        pass
