"""A scripted broker on the far end of an in-memory stream, for what Mosquitto cannot be made to do."""

from __future__ import annotations

from socket import SO_SNDBUF, SOL_SOCKET

import trio
import trio.testing

from trio_mqtt import ProtocolVersion
from trio_mqtt.lowlevel import Packet, PacketReader


class ScriptedBroker:
    """The server half of a memory stream pair. Tests read what the client sent with
    :meth:`expect` and answer with raw bytes from ``tests.wire`` via :meth:`send`."""

    def __init__(
        self,
        version: ProtocolVersion = ProtocolVersion.V5,
        *,
        socket: bool = False,
        send_buffer: int | None = None,
    ) -> None:
        self.client_stream: trio.abc.Stream
        self.stream: trio.abc.Stream
        if socket:
            # A real socket pair (Unix), for the link's socket paths; ``send_buffer`` shrinks
            # the client's send buffer so that a write of more than that is cut short.
            client, server = trio.socket.socketpair()
            if send_buffer is not None:
                client.setsockopt(SOL_SOCKET, SO_SNDBUF, send_buffer)
            self.client_stream = trio.SocketStream(client)
            self.stream = trio.SocketStream(server)
        else:
            self.client_stream, self.stream = trio.testing.memory_stream_pair()
        self.reader = PacketReader(version=version)
        self.pending: list[Packet] = []
        self.raw = bytearray()

    async def factory(self) -> trio.abc.Stream:
        return self.client_stream

    async def receive(self, max_bytes: int | None = None) -> Packet | None:
        """The next packet from the client, or None at end of stream; ``max_bytes`` reads it
        in pieces of at most that size."""
        while not self.pending:
            data = await self.stream.receive_some(max_bytes)
            if not data:
                return None
            self.raw += data
            self.pending += self.reader.feed(data)
        return self.pending.pop(0)

    async def expect(self, cls: type) -> Packet:
        packet = await self.receive()
        assert isinstance(packet, cls), f"expected {cls.__name__}, got {packet!r}"
        return packet

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)
