"""Independent byte builders for broker-side packets, written from the spec (paho tests/lib style).

Nothing here calls trio_mqtt's encoder: scripted-broker tests compare against these bytes so that
a symmetric codec bug cannot hide.
"""

from __future__ import annotations

import struct


def vbi(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + vbi(len(body)) + body


def u16(n: int) -> bytes:
    return struct.pack("!H", n)


def string(s: str) -> bytes:
    raw = s.encode()
    return u16(len(raw)) + raw


def props(*items: bytes) -> bytes:
    body = b"".join(items)
    return vbi(len(body)) + body


def reason_string(text: str) -> bytes:
    return b"\x1f" + string(text)


def connack(
    code: int = 0, *, session_present: bool = False, properties: bytes | None = b"\x00"
) -> bytes:
    """MQTT 5 CONNACK; ``properties=None`` gives the 3.1.1 form."""
    body = bytes([1 if session_present else 0, code]) + (
        properties if properties is not None else b""
    )
    return frame(0x20, body)


def ack(
    first: int, packet_id: int, code: int | None = None, properties: bytes = b""
) -> bytes:
    body = u16(packet_id) + (bytes([code]) if code is not None else b"") + properties
    return frame(first, body)


def puback(packet_id: int, code: int | None = None, properties: bytes = b"") -> bytes:
    return ack(0x40, packet_id, code, properties)


def pubrec(packet_id: int, code: int | None = None, properties: bytes = b"") -> bytes:
    return ack(0x50, packet_id, code, properties)


def pubrel(packet_id: int) -> bytes:
    return ack(0x62, packet_id)


def pubcomp(packet_id: int) -> bytes:
    return ack(0x70, packet_id)


def suback(packet_id: int, *codes: int, v5: bool = True) -> bytes:
    return frame(0x90, u16(packet_id) + (b"\x00" if v5 else b"") + bytes(codes))


def unsuback(packet_id: int, *codes: int, v5: bool = True) -> bytes:
    return frame(0xB0, u16(packet_id) + (b"\x00" + bytes(codes) if v5 else b""))


def publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    packet_id: int | None = None,
    dup: bool = False,
    v5: bool = True,
    properties: bytes = b"\x00",
) -> bytes:
    first = 0x30 | (qos << 1) | (0x08 if dup else 0)
    body = (
        string(topic)
        + (u16(packet_id) if packet_id is not None else b"")
        + (properties if v5 else b"")
        + payload
    )
    return frame(first, body)


PINGRESP = b"\xd0\x00"


def binary(data: bytes) -> bytes:
    return u16(len(data)) + data


def auth_props(method: str, data: bytes | None = None) -> bytes:
    """Authentication Method (0x15) and Data (0x16) properties."""
    return props(
        b"\x15" + string(method),
        *([b"\x16" + binary(data)] if data is not None else []),
    )


def auth(code: int, method: str, data: bytes | None = None) -> bytes:
    return frame(0xF0, bytes([code]) + auth_props(method, data))
