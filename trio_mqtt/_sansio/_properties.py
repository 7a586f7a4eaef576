"""MQTT 5.0 properties (section 2.2.2): the table of identifiers, their wire types, the packets each
may appear in, and the typed :class:`Properties` value that carries them.

Theory of operation: one row per property in :data:`PROPERTY_TABLE` drives both directions. A
property in a packet that does not allow it is malformed (section 2.2.2.2); a single-valued
property given twice is a protocol error (each property's definition in chapter 3). Values whose
range the spec restricts (0/1 bytes, non-zero maxima) are checked on decode as protocol errors.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

import attrs

from .._enums import PacketType, PayloadFormat, QoS
from .._exceptions import MalformedPacketError, RemoteProtocolError
from ._wire import (
    MAX_U16,
    MAX_U32,
    MAX_VBI,
    Buffer,
    decode_binary,
    decode_string,
    decode_vbi,
    encode_binary,
    encode_string,
    encode_vbi,
    pack_u16,
    pack_u32,
    unpack_u16,
    unpack_u32,
)

#: The pseudo packet kind of the Will Properties inside CONNECT (section 3.1.3.2).
WILL: Final = 0

# (a tuple: isinstance() against ``A | B`` builds the union at every call, ~1 µs on 3.11)
BYTES_LIKE = (bytes, bytearray, memoryview)


class WireType(IntEnum):
    """How a property value is written (section 2.2.2.2)."""

    FLAG = 2  # a byte that must be 0 or 1
    U16 = 3
    U32 = 4
    VBI = 5
    UTF8 = 6
    BINARY = 7
    PAIR = 8


# The members as module constants for the codec below, which reads them for every property:
# on Python 3.11 reading an attribute of an enum class goes through ``EnumType.__getattr__``'s
# hook (~110 ns and an object each time; the hook is gone in 3.12).
_FLAG, _U16, _U32, _VBI = WireType.FLAG, WireType.U16, WireType.U32, WireType.VBI
_UTF8, _BINARY = WireType.UTF8, WireType.BINARY
_SUBSCRIBE = PacketType.SUBSCRIBE


@attrs.frozen(kw_only=True, repr=False)
class Properties:
    """The MQTT 5.0 properties of one packet. Every field is optional; ``None`` means absent.

    Field names follow the spec. ``user_properties`` keeps order and duplicates (section 3.3.2.3.7);
    ``subscription_identifiers`` holds the Subscription Identifiers (several in a PUBLISH, at most one
    in a SUBSCRIBE). MQTT 3.1.1 has no properties: encoding drops them, decoding yields the empty set.
    """

    payload_format_indicator: PayloadFormat | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = attrs.field(default=None, repr=False)
    request_problem_information: bool | None = None
    will_delay_interval: int | None = None
    request_response_information: bool | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: QoS | None = None
    retain_available: bool | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: bool | None = None
    subscription_identifier_available: bool | None = None
    shared_subscription_available: bool | None = None

    def __repr__(self) -> str:
        # Only the properties that are set; authentication data is never shown.
        shown = []
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            shown.append(
                f"{name}=<redacted>"
                if name == "authentication_data"
                else f"{name}={value!r}"
            )
        return f"Properties({', '.join(shown)})"

    def is_empty(self) -> bool:
        """Whether no property is set.

        Returns:
            True for the empty set of properties.

        Raises:
            Nothing.
        """
        return self is EMPTY_PROPERTIES or self == EMPTY_PROPERTIES


EMPTY_PROPERTIES: Final = Properties()

_P = PacketType
_ALL_WITH_PROPERTIES = frozenset(
    {
        _P.CONNECT, _P.CONNACK, _P.PUBLISH, WILL, _P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP,
        _P.SUBSCRIBE, _P.SUBACK, _P.UNSUBSCRIBE, _P.UNSUBACK, _P.DISCONNECT, _P.AUTH,
    }
)  # fmt: skip
_ACKS = frozenset(
    {
        _P.CONNACK,
        _P.PUBACK,
        _P.PUBREC,
        _P.PUBREL,
        _P.PUBCOMP,
        _P.SUBACK,
        _P.UNSUBACK,
        _P.DISCONNECT,
        _P.AUTH,
    }
)
_MESSAGE = frozenset({_P.PUBLISH, WILL})


@attrs.frozen
class PropertySpec:
    """One row of the property table."""

    identifier: int
    name: str
    wire_type: WireType
    packets: frozenset[int]
    multiple: bool = False
    nonzero: bool = False


PROPERTY_TABLE: Final[tuple[PropertySpec, ...]] = (
    PropertySpec(0x01, "payload_format_indicator", WireType.FLAG, _MESSAGE),
    PropertySpec(0x02, "message_expiry_interval", WireType.U32, _MESSAGE),
    PropertySpec(0x03, "content_type", WireType.UTF8, _MESSAGE),
    PropertySpec(0x08, "response_topic", WireType.UTF8, _MESSAGE),
    PropertySpec(0x09, "correlation_data", WireType.BINARY, _MESSAGE),
    # [MQTT-3.8.2.1.2] a Subscription Identifier of 0 is a protocol error; PUBLISH may carry several.
    PropertySpec(0x0B, "subscription_identifiers", WireType.VBI, frozenset({_P.PUBLISH, _P.SUBSCRIBE}), multiple=True, nonzero=True),
    PropertySpec(0x11, "session_expiry_interval", WireType.U32, frozenset({_P.CONNECT, _P.CONNACK, _P.DISCONNECT})),
    PropertySpec(0x12, "assigned_client_identifier", WireType.UTF8, frozenset({_P.CONNACK})),
    PropertySpec(0x13, "server_keep_alive", WireType.U16, frozenset({_P.CONNACK})),
    PropertySpec(0x15, "authentication_method", WireType.UTF8, frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    PropertySpec(0x16, "authentication_data", WireType.BINARY, frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    PropertySpec(0x17, "request_problem_information", WireType.FLAG, frozenset({_P.CONNECT})),
    PropertySpec(0x18, "will_delay_interval", WireType.U32, frozenset({WILL})),
    PropertySpec(0x19, "request_response_information", WireType.FLAG, frozenset({_P.CONNECT})),
    PropertySpec(0x1A, "response_information", WireType.UTF8, frozenset({_P.CONNACK})),
    PropertySpec(0x1C, "server_reference", WireType.UTF8, frozenset({_P.CONNACK, _P.DISCONNECT})),
    PropertySpec(0x1F, "reason_string", WireType.UTF8, _ACKS),
    # Sections 3.1.2.11.3 and 3.2.2.3.3: Receive Maximum 0 is a protocol error.
    PropertySpec(0x21, "receive_maximum", WireType.U16, frozenset({_P.CONNECT, _P.CONNACK}), nonzero=True),
    PropertySpec(0x22, "topic_alias_maximum", WireType.U16, frozenset({_P.CONNECT, _P.CONNACK})),
    # [MQTT-3.3.2-8] a Topic Alias of 0 is not permitted.
    PropertySpec(0x23, "topic_alias", WireType.U16, frozenset({_P.PUBLISH}), nonzero=True),
    PropertySpec(0x24, "maximum_qos", WireType.FLAG, frozenset({_P.CONNACK})),
    PropertySpec(0x25, "retain_available", WireType.FLAG, frozenset({_P.CONNACK})),
    PropertySpec(0x26, "user_properties", WireType.PAIR, _ALL_WITH_PROPERTIES, multiple=True),
    # Section 3.1.2.11.4: Maximum Packet Size 0 is a protocol error.
    PropertySpec(0x27, "maximum_packet_size", WireType.U32, frozenset({_P.CONNECT, _P.CONNACK}), nonzero=True),
    PropertySpec(0x28, "wildcard_subscription_available", WireType.FLAG, frozenset({_P.CONNACK})),
    PropertySpec(0x29, "subscription_identifier_available", WireType.FLAG, frozenset({_P.CONNACK})),
    PropertySpec(0x2A, "shared_subscription_available", WireType.FLAG, frozenset({_P.CONNACK})),
)  # fmt: skip

_BY_ID: Final = {spec.identifier: spec for spec in PROPERTY_TABLE}
_CONVERTERS: Final = {
    "payload_format_indicator": PayloadFormat,
    "maximum_qos": QoS,
}
_FIELDS: Final = tuple(spec.name for spec in PROPERTY_TABLE)


def _kind_name(kind: int) -> str:
    return "Will Properties" if kind == WILL else PacketType(kind).name


def _encode_value(spec: PropertySpec, value: object) -> bytes:
    wire = spec.wire_type
    head = bytes((spec.identifier,))
    if wire is _FLAG:
        if isinstance(value, bool):
            return head + (b"\x01" if value else b"\x00")
        if value not in (0, 1):
            raise ValueError(f"property {spec.name} must be 0 or 1, not {value!r}")
        return head + (b"\x01" if value else b"\x00")
    if wire in (_U16, _U32, _VBI):
        if not isinstance(value, int):
            raise TypeError(
                f"property {spec.name} must be an int, not {type(value).__name__}"
            )
        top = MAX_U16 if wire is _U16 else MAX_U32 if wire is _U32 else MAX_VBI
        if not (1 if spec.nonzero else 0) <= value <= top:
            raise ValueError(f"property {spec.name}={value} is out of range")
        if wire is _U16:
            return head + pack_u16(value)
        return head + (pack_u32(value) if wire is _U32 else encode_vbi(value))
    if wire is _UTF8:
        if not isinstance(value, str):
            raise TypeError(f"property {spec.name} must be a str")
        return head + encode_string(value)
    if wire is _BINARY:
        if not isinstance(value, BYTES_LIKE):
            raise TypeError(f"property {spec.name} must be bytes")
        return head + encode_binary(bytes(value))
    if not (isinstance(value, tuple) and len(value) == 2):
        raise TypeError(f"each of {spec.name} must be a (name, value) pair of str")
    key, val = value
    return head + encode_string(str(key)) + encode_string(str(val))


def encode_properties(props: Properties, kind: int) -> bytes:
    """Encode ``props`` with their length prefix for a packet of ``kind`` (a PacketType or WILL).

    Raises:
        ValueError: a property is not allowed in this packet, or a value is out of range.
    """
    if props is EMPTY_PROPERTIES:
        return b"\x00"
    parts: list[bytes] = []
    for spec in PROPERTY_TABLE:
        value = getattr(props, spec.name)
        if value is None or value == ():
            continue
        if kind not in spec.packets:
            raise ValueError(
                f"property {spec.name} is not allowed in {_kind_name(kind)}"
            )
        if spec.multiple:
            if kind == _SUBSCRIBE and spec.identifier == 0x0B and len(value) > 1:
                raise ValueError(
                    "SUBSCRIBE carries at most one subscription identifier"
                )
            parts.extend(_encode_value(spec, item) for item in value)
        else:
            parts.append(_encode_value(spec, value))
    body = b"".join(parts)
    return encode_vbi(len(body)) + body


def decode_properties(
    data: Buffer, pos: int, end: int, kind: int
) -> tuple[Properties, int]:
    """Decode a property block (its length prefix first) at ``pos`` for a packet of ``kind``."""
    length, pos = decode_vbi(data, pos, end)
    if length == 0:
        return EMPTY_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise MalformedPacketError(
            f"the property length {length} runs past the end of the packet"
        )
    values: dict[str, object] = {}
    while pos < stop:
        identifier = data[pos]
        pos += 1
        spec = _BY_ID.get(identifier)
        if spec is None:
            raise MalformedPacketError(
                f"unknown property identifier 0x{identifier:02X} in {_kind_name(kind)}"
            )
        if kind not in spec.packets:
            # Section 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
            raise MalformedPacketError(
                f"property {spec.name} (0x{identifier:02X}) is not allowed in {_kind_name(kind)}"
            )
        value: object
        wire = spec.wire_type
        if wire is _FLAG:
            if pos >= stop:
                raise MalformedPacketError(f"property {spec.name} is truncated")
            byte = data[pos]
            pos += 1
            if byte > 1:
                raise RemoteProtocolError(
                    f"property {spec.name} must be 0 or 1, got {byte}"
                )
            value = (
                _CONVERTERS[spec.name](byte) if spec.name in _CONVERTERS else bool(byte)
            )
        elif wire is _U16:
            if pos + 2 > stop:
                raise MalformedPacketError(f"property {spec.name} is truncated")
            (value,) = unpack_u16(data, pos)
            pos += 2
        elif wire is _U32:
            if pos + 4 > stop:
                raise MalformedPacketError(f"property {spec.name} is truncated")
            (value,) = unpack_u32(data, pos)
            pos += 4
        elif wire is _VBI:
            value, pos = decode_vbi(data, pos, stop)
        elif wire is _UTF8:
            value, pos = decode_string(data, pos, stop)
        elif wire is _BINARY:
            value, pos = decode_binary(data, pos, stop)
        else:
            key, pos = decode_string(data, pos, stop)
            val, pos = decode_string(data, pos, stop)
            value = (key, val)
        if spec.nonzero and value == 0:
            raise RemoteProtocolError(f"property {spec.name} must not be 0")
        if spec.multiple:
            previous = values.get(spec.name, ())
            if kind == _SUBSCRIBE and previous and spec.identifier == 0x0B:
                raise RemoteProtocolError(
                    "SUBSCRIBE carries more than one subscription identifier"
                )
            values[spec.name] = (*previous, value)  # type: ignore[misc]
        elif spec.name in values:
            raise RemoteProtocolError(
                f"property {spec.name} appears more than once in {_kind_name(kind)}"
            )
        else:
            values[spec.name] = value
    if pos != stop:
        raise MalformedPacketError("a property runs past the property length")
    return Properties(**values), pos  # type: ignore[arg-type]
