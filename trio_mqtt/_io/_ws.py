"""MQTT over WebSocket (section 6): a WebSocket client connection as a :class:`trio.abc.Stream`.

The protocol work is wsproto's (the sans-IO engine trio-websocket is built on); this module only
moves bytes. It runs no task of its own: :meth:`WebSocketStream.receive_some` reads frames in
the caller's task and answers pings and the closing handshake there, so the stream needs no
nursery and its failures surface where they happen. MQTT packets are a byte stream across
WebSocket messages: one message may hold several packets or part of one, and both are fine.

Only the link's writer calls :meth:`send_all`; the reader's rare control frames (pong, close)
take a lock so that they never interleave with a data frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

SUBPROTOCOL = "mqtt"  # [MQTT-6.0.0-3]
_RECEIVE_SIZE = 65536
_CLOSE_TIMEOUT = 1.0


class WebSocketHandshakeError(Exception):
    """The server did not accept the WebSocket upgrade (``status`` is its HTTP status)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WebSocketStream(trio.abc.Stream):
    """A client WebSocket over ``stream``, after :meth:`handshake` succeeded."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._data = bytearray()  # payload received and not yet returned
        self._eof = False
        self._send_lock = trio.Lock()
        self.subprotocol: str | None = None

    @property
    def transport_stream(self) -> trio.abc.Stream:
        """The stream the WebSocket runs over (TCP or TLS)."""
        return self._stream

    async def handshake(
        self, host: str, path: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Send the upgrade request offering subprotocol ``mqtt``; wait for the answer.

        Raises:
            WebSocketHandshakeError: the server refused, or chose another subprotocol.
            trio.BrokenResourceError: the connection failed.
        """
        request = Request(
            host=host,
            target=path,
            subprotocols=[SUBPROTOCOL],
            extra_headers=[(k.encode(), v.encode()) for k, v in headers],
        )
        await self._stream.send_all(self._ws.send(request))
        while self._ws.state is ConnectionState.CONNECTING:
            data = await self._stream.receive_some(_RECEIVE_SIZE)
            if not data:
                raise WebSocketHandshakeError(
                    "the server closed the connection during the WebSocket handshake"
                )
            try:
                self._ws.receive_data(bytes(data))
                events = list(self._ws.events())
            except RemoteProtocolError as exc:
                raise WebSocketHandshakeError(
                    f"invalid WebSocket handshake response: {exc}"
                ) from None
            for event in events:
                if isinstance(event, RejectConnection):
                    raise WebSocketHandshakeError(
                        f"the server refused the WebSocket upgrade with HTTP {event.status_code}",
                        event.status_code,
                    )
                if isinstance(event, AcceptConnection):
                    self.subprotocol = event.subprotocol
                    if event.subprotocol not in (None, SUBPROTOCOL):
                        raise WebSocketHandshakeError(
                            f"the server chose WebSocket subprotocol {event.subprotocol!r}, not 'mqtt'"
                        )
                elif isinstance(event, BytesMessage):
                    self._data += event.data  # data right behind the upgrade response

    # -- receiving -----------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to ``max_bytes`` bytes of MQTT data; ``b""`` once the WebSocket has closed.

        Raises:
            trio.BrokenResourceError: the server broke the WebSocket protocol or sent a text
                frame ([MQTT-6.0.0-1]); the connection is closed.
        """
        while not self._data and not self._eof:
            data = await self._stream.receive_some(_RECEIVE_SIZE)
            try:
                self._ws.receive_data(bytes(data) if data else None)
                replies = [self._on_event(event) for event in self._ws.events()]
            except (RemoteProtocolError, _TextFrameError) as exc:
                await self._abort(
                    1002 if isinstance(exc, RemoteProtocolError) else 1003
                )
                raise trio.BrokenResourceError(f"WebSocket: {exc}") from None
            for reply in replies:
                if reply:
                    await self._send_control(reply)
            if not data:
                self._eof = True
        if max_bytes is None or max_bytes >= len(self._data):
            out = bytes(self._data)
            self._data.clear()
        else:
            out = bytes(self._data[:max_bytes])
            del self._data[:max_bytes]
        return out

    def _on_event(self, event: Event) -> bytes:
        """Take in one event; return the control frame to answer with (or ``b""``)."""
        if isinstance(event, BytesMessage):
            self._data += event.data
        elif isinstance(event, TextMessage):
            raise _TextFrameError("text frame received; MQTT uses binary frames")
        elif isinstance(event, Ping):
            return self._ws.send(event.response())
        elif isinstance(event, CloseConnection):
            self._eof = True
            if self._ws.state is ConnectionState.REMOTE_CLOSING:
                return self._ws.send(event.response())
        return b""

    # -- sending -------------------------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as one binary message."""
        try:
            frame = self._ws.send(BytesMessage(data=bytes(data)))
        except LocalProtocolError:
            raise trio.ClosedResourceError("the WebSocket is closed") from None
        async with self._send_lock:
            await self._stream.send_all(frame)

    async def _send_control(self, frame: bytes) -> None:
        async with self._send_lock:
            await self._stream.send_all(frame)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    # -- closing ---------------------------------------------------------------------------------

    async def _abort(self, code: int) -> None:
        """Send a close frame with ``code`` if possible, then drop the connection."""
        try:
            if self._ws.state is ConnectionState.OPEN:
                frame = self._ws.send(CloseConnection(code=code))
                with trio.move_on_after(_CLOSE_TIMEOUT):
                    await self._send_control(frame)
        except (LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(self._stream)

    async def aclose(self) -> None:
        """Start the closing handshake (code 1000) and close the connection."""
        await self._abort(1000)


class _TextFrameError(Exception):
    pass
