"""Outgoing: the machine's outbound buffer, which the I/O layer drains."""

from __future__ import annotations

from collections.abc import Callable

from .._enums import ProtocolVersion, ReasonCode
from .._exceptions import LocalProtocolError
from ._codec import encode_packet
from ._packets import Packet
from ._session import PacketIdAllocator
from ._wire import MAX_PACKET_SIZE


class Outgoing:
    """Encoded packets waiting for the I/O layer, in the order they were queued."""

    __slots__ = ("chunks", "max_size", "qos0", "size", "version")

    def __init__(self, version: ProtocolVersion) -> None:
        self.version = version
        #: the encoded packets (a hot path may append to it directly, and add to ``size``)
        self.chunks: list[bytes] = []
        self.size = 0  # bytes queued
        #: QoS 0 PUBLISH packets among ``chunks`` (lost, if the connection is; counted then)
        self.qos0 = 0
        #: the server's Maximum Packet Size (its CONNACK): nothing larger is queued
        self.max_size = MAX_PACKET_SIZE

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

    def check_size(self, data: bytes) -> None:
        """Raise LocalProtocolError (0x95) if ``data`` exceeds the server's Maximum Packet
        Size: [MQTT-3.1.2-24] a client never sends a larger packet."""
        if len(data) > self.max_size:
            raise LocalProtocolError(
                f"a {len(data)}-byte packet exceeds the server's Maximum Packet Size of "
                f"{self.max_size}",
                reason_code=ReasonCode.PACKET_TOO_LARGE,
            )

    def send_numbered(
        self,
        ids: PacketIdAllocator,
        make: Callable[[int], Packet],
        wire: Callable[[Packet], tuple[Packet, Callable[[], None]]] | None = None,
    ) -> tuple[int, Packet]:
        """Allocate a packet id, build the packet with ``make(id)``, encode, check and queue
        it; on any failure the id is released again, so a refused command never leaks an id
        ([MQTT-2.2.1-3]). ``wire``, if given, says what to send instead of the packet (a
        PUBLISH under a topic alias) and what to do once that is queued."""
        packet_id = ids.allocate()
        try:
            packet = make(packet_id)
            sent, queued = (packet, None) if wire is None else wire(packet)
            data = encode_packet(sent, self.version)
            self.check_size(data)
        except BaseException:
            ids.release(packet_id)
            raise
        self.append(data)
        if queued is not None:
            queued()
        return packet_id, packet

    def take(self) -> bytes:
        """Everything queued, as one bytes object; the buffer is empty after."""
        chunks = self.chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.size = 0
        self.qos0 = 0
        return data
