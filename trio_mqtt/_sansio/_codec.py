"""Encoding and incremental decoding of MQTT 5.0 and 3.1.1 control packets.

Theory of operation:

* :func:`encode_packet` (in ``_encode``) turns one packet value into the bytes of one control
  packet.
* :class:`PacketReader` (here: the framing) is fed bytes as they arrive, split anywhere, and
  returns whole packets. It reads the fixed header first and refuses a packet whose announced
  size exceeds the maximum packet size before buffering any of its body (section 3.1.2.11.4 /
  [MQTT-3.2.2-15] on the client side), so a hostile length costs nothing (0x95).
* :func:`decode_packet` (in ``_decode``) decodes one packet's body; the PUBLISH body, the hot
  one, has a module of its own (``_publish_decoder``).
"""

from __future__ import annotations

from typing import Final

from .._enums import (
    ProtocolVersion,
    ReasonCode,
)
from .._exceptions import MalformedPacketError, RemoteProtocolError
from ._decode import decode_body as decode_body
from ._encode import (
    encode_packet as encode_packet,
    encode_publish as encode_publish,
)
from ._packets import (
    Packet,
)
from ._publish_decoder import (
    decode_publish,
    new_publish as new_publish,
    reset_caches as reset_caches,
)
from ._wire import (
    MAX_PACKET_SIZE as MAX_PACKET_SIZE,
    Buffer,
)

_V5: Final = ProtocolVersion.V5


class PacketReader:
    """Incremental decoder: feed it bytes in chunks of any size, get whole packets back.

    Args:
        version: the protocol version of the connection. A broker-side reader that does not
            know it yet decodes CONNECT (which is self-describing) and then sets ``version``.
        max_packet_size: the largest packet accepted, fixed header included. A larger packet
            raises :class:`~trio_mqtt.RemoteProtocolError` with reason code 0x95 as soon as its fixed header
            is read, before any of its body is buffered.

    After an error the reader is broken: every further :meth:`feed` raises the same error.
    """

    __slots__ = ("_buffer", "_error", "_need", "max_packet_size", "version")

    def __init__(
        self, *, version: ProtocolVersion = _V5, max_packet_size: int = MAX_PACKET_SIZE
    ) -> None:
        if not 2 <= max_packet_size <= MAX_PACKET_SIZE:
            raise ValueError(f"max_packet_size must be 2..{MAX_PACKET_SIZE}")
        self.version = version
        self.max_packet_size = max_packet_size
        self._buffer = bytearray()  # the start of an incomplete packet
        self._need = 0  # the size of that packet, once its fixed header is complete
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """How many bytes of an incomplete packet are held."""
        return len(self._buffer)

    def feed(self, data: Buffer) -> list[Packet]:
        """Add ``data`` and return every packet it completes, in order.

        Raises:
            MalformedPacketError: invalid bytes.
            RemoteProtocolError: a well-formed but forbidden packet, or one larger than
                ``max_packet_size`` (reason code 0x95).
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return []  # a large packet arriving in pieces: not complete yet
            # Decode from bytes, not the bytearray: slices of bytes are the payloads and topics
            # without a second copy (one copy of the chunk instead of two per message).
            buf = bytes(buffer)
            buffer.clear()
        else:
            buf = data if type(data) is bytes else bytes(data)
        self._need = 0  # unknown until a fixed header is complete
        size = len(buf)
        pos = 0
        packets: list[Packet] = []
        v5 = self.version is _V5
        limit = self.max_packet_size
        try:
            while size - pos >= 2:
                length = buf[pos + 1]
                header = 2
                if length & 0x80:
                    length &= 0x7F
                    shift = 7
                    while True:
                        if pos + header >= size:
                            if header >= 5:
                                raise MalformedPacketError(
                                    "the remaining length is longer than four bytes"
                                )
                            length = -1  # the length itself is incomplete
                            break
                        if header >= 5:
                            raise MalformedPacketError(
                                "the remaining length is longer than four bytes"
                            )  # section 1.5.5
                        byte = buf[pos + header]
                        header += 1
                        length |= (byte & 0x7F) << shift
                        if not byte & 0x80:
                            break
                        shift += 7
                    if length < 0:
                        break
                total = header + length
                if total > limit:
                    raise RemoteProtocolError(
                        f"a {total}-byte packet exceeds the maximum packet size of {limit} bytes",
                        reason_code=ReasonCode.PACKET_TOO_LARGE,
                    )
                if size - pos < total:
                    self._need = total
                    break
                first = buf[pos]
                if first & 0xF0 == 0x30:  # PUBLISH, the hot one: no table dispatch
                    packets.append(
                        decode_publish(first & 0x0F, buf, pos + header, pos + total, v5)
                    )
                else:
                    packets.append(
                        decode_body(first, buf, pos + header, pos + total, v5)
                    )
                pos += total
        except IndexError:  # a fixed-offset read past a truncated PUBLISH
            self._error = MalformedPacketError("PUBLISH is truncated")
            buffer.clear()
            raise self._error from None
        except RemoteProtocolError as exc:
            self._error = exc
            buffer.clear()
            raise
        if pos < size:
            buffer += buf[pos:]
        return packets


def decode_packet(data: Buffer, version: ProtocolVersion = _V5) -> Packet:
    """Decode exactly one whole packet from ``data`` (fixed header included).

    Raises:
        MalformedPacketError: the bytes are not one valid packet.
        RemoteProtocolError: the packet is well-formed but forbidden by the spec.
    """
    reader = PacketReader(version=version)
    packets = reader.feed(data)
    if len(packets) != 1 or reader.buffered:
        raise MalformedPacketError(
            f"expected exactly one whole packet, found {len(packets)} and {reader.buffered} spare bytes"
        )
    return packets[0]
