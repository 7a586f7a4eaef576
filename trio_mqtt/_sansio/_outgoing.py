"""Outgoing: the machine's outbound buffer, which the I/O layer drains."""

from __future__ import annotations

from .._enums import ProtocolVersion
from ._codec import encode_packet
from ._packets import Packet


class Outgoing:
    """Encoded packets waiting for the I/O layer, in the order they were queued."""

    __slots__ = ("chunks", "size", "version")

    def __init__(self, version: ProtocolVersion) -> None:
        self.version = version
        #: the encoded packets (a hot path may append to it directly, and add to ``size``)
        self.chunks: list[bytes] = []
        self.size = 0  # bytes queued

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def send(self, packet: Packet) -> None:
        """Encode and queue ``packet``."""
        data = encode_packet(packet, self.version)
        self.chunks.append(data)
        self.size += len(data)

    def append(self, data: bytes) -> None:
        """Queue an encoded packet."""
        self.chunks.append(data)
        self.size += len(data)

    def take(self) -> bytes:
        """Everything queued, as one bytes object; the buffer is empty after."""
        chunks = self.chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.size = 0
        return data
