"""Wire primitives of MQTT (section 1.5): integers, variable byte integers, strings, binary data.

Decoders take ``(data, pos, end)`` and return ``(value, new_pos)``; they never read past ``end``
and raise :class:`MalformedPacketError` for anything the spec does not allow. Encoders take
values and return :class:`bytes`; they raise :class:`ValueError` for values that cannot be
encoded, because only our own caller can hand them such a value.
"""

from __future__ import annotations

import struct
from typing import Final

from .._exceptions import MalformedPacketError

Buffer = bytes | bytearray | memoryview

MAX_VBI: Final = 268_435_455  # four bytes of 7 bits (section 1.5.5)
#: The largest packet the format can express: the fixed header plus the largest remaining length.
MAX_PACKET_SIZE: Final = 1 + 4 + MAX_VBI
MAX_U16: Final = 0xFFFF
MAX_U32: Final = 0xFFFF_FFFF

U16: Final = struct.Struct("!H")
U32: Final = struct.Struct("!I")
pack_u16 = U16.pack
pack_u32 = U32.pack
unpack_u16 = U16.unpack_from
unpack_u32 = U32.unpack_from

# Encodings of the variable byte integers below 16384 are precomputed: lengths of ordinary packets.
_SMALL_VBI: Final[tuple[bytes, ...]] = tuple(
    bytes((n,)) if n < 128 else bytes(((n & 0x7F) | 0x80, n >> 7)) for n in range(16384)
)


def encode_vbi(value: int) -> bytes:
    """Encode a variable byte integer with the minimum number of bytes ([MQTT-1.5.5-1])."""
    if 0 <= value < 16384:
        return _SMALL_VBI[value]
    if value < 0 or value > MAX_VBI:
        raise ValueError(f"{value} does not fit a variable byte integer (0..{MAX_VBI})")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_vbi(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Decode a variable byte integer at ``pos``; at most four bytes (section 1.5.5)."""
    value = 0
    shift = 0
    for index in range(pos, min(pos + 4, end)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    if end - pos >= 4:
        raise MalformedPacketError("a variable byte integer is longer than four bytes")
    raise MalformedPacketError("the packet ends inside a variable byte integer")


def vbi_length(value: int) -> int:
    """How many bytes :func:`encode_vbi` uses for ``value``."""
    return 1 if value < 128 else 2 if value < 16384 else 3 if value < 2_097_152 else 4


def encode_string(text: str) -> bytes:
    """Encode a UTF-8 string with its two-byte length prefix (section 1.5.4)."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_U16:
        raise ValueError(
            f"a string of {len(raw)} UTF-8 bytes exceeds the 65535-byte limit"
        )
    if "\x00" in text:
        raise ValueError("MQTT strings must not contain U+0000")  # [MQTT-1.5.4-2]
    return pack_u16(len(raw)) + raw


def encode_binary(data: bytes) -> bytes:
    """Encode binary data with its two-byte length prefix (section 1.5.6)."""
    if len(data) > MAX_U16:
        raise ValueError(
            f"binary data of {len(data)} bytes exceeds the 65535-byte limit"
        )
    return pack_u16(len(data)) + bytes(data)


def decode_binary(data: Buffer, pos: int, end: int) -> tuple[bytes, int]:
    """Decode length-prefixed binary data at ``pos``."""
    if pos + 2 > end:
        raise MalformedPacketError("the packet ends inside a length prefix")
    (length,) = unpack_u16(data, pos)
    pos += 2
    if pos + length > end:
        raise MalformedPacketError(
            f"a field claims {length} bytes but only {end - pos} remain"
        )
    return bytes(data[pos : pos + length]), pos + length


def decode_string(data: Buffer, pos: int, end: int) -> tuple[str, int]:
    """Decode a length-prefixed UTF-8 string at ``pos``.

    Ill-formed UTF-8, including encoded surrogates, is malformed ([MQTT-1.5.4-1]), and so is
    U+0000 ([MQTT-1.5.4-2]).
    """
    raw, pos = decode_binary(data, pos, end)
    if b"\x00" in raw:
        raise MalformedPacketError("a string contains U+0000")
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError as exc:
        raise MalformedPacketError(
            f"a string is not well-formed UTF-8 ({exc.reason})"
        ) from None
