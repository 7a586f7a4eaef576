"""A scripted broker on the far end of an in-memory stream, for what Mosquitto cannot be made to do."""

from __future__ import annotations

import trio
import trio.testing

from trio_mqtt import ProtocolVersion
from trio_mqtt.lowlevel import Packet, PacketReader


class ScriptedBroker:
    """The server half of a memory stream pair. Tests read what the client sent with
    :meth:`expect` and answer with raw bytes from ``tests.wire`` via :meth:`send`."""

    def __init__(self, version: ProtocolVersion = ProtocolVersion.V5) -> None:
        self.client_stream, self.stream = trio.testing.memory_stream_pair()
        self.reader = PacketReader(version=version)
        self.pending: list[Packet] = []
        self.raw = bytearray()

    async def factory(self) -> trio.abc.Stream:
        return self.client_stream

    async def receive(self) -> Packet | None:
        """The next packet from the client, or None at end of stream."""
        while not self.pending:
            data = await self.stream.receive_some()
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
