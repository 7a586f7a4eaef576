"""What the decoders share: which reason codes each packet may carry, and the readers of
fixed-size fields that raise :class:`MalformedPacketError` (0x81) on a short packet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._enums import (
    PacketType,
    ReasonCode,
)
from .._exceptions import MalformedPacketError, RemoteProtocolError
from ._packets import (
    Packet,
)
from ._wire import (
    Buffer,
    unpack_u16,
)

# Reason codes each MQTT 5 packet may carry (sections 3.2.2.2, 3.4.2.1, ... 3.15.2.1).
_R = ReasonCode
ALLOWED_REASON_CODES: Final[dict[PacketType, frozenset[ReasonCode]]] = {
    PacketType.CONNACK: frozenset({
        _R.SUCCESS, _R.UNSPECIFIED_ERROR, _R.MALFORMED_PACKET, _R.PROTOCOL_ERROR,
        _R.IMPLEMENTATION_SPECIFIC_ERROR, _R.UNSUPPORTED_PROTOCOL_VERSION, _R.CLIENT_IDENTIFIER_NOT_VALID,
        _R.BAD_USER_NAME_OR_PASSWORD, _R.NOT_AUTHORIZED, _R.SERVER_UNAVAILABLE, _R.SERVER_BUSY, _R.BANNED,
        _R.BAD_AUTHENTICATION_METHOD, _R.TOPIC_NAME_INVALID, _R.PACKET_TOO_LARGE, _R.QUOTA_EXCEEDED,
        _R.PAYLOAD_FORMAT_INVALID, _R.RETAIN_NOT_SUPPORTED, _R.QOS_NOT_SUPPORTED, _R.USE_ANOTHER_SERVER,
        _R.SERVER_MOVED, _R.CONNECTION_RATE_EXCEEDED,
    }),
    PacketType.PUBACK: frozenset({
        _R.SUCCESS, _R.NO_MATCHING_SUBSCRIBERS, _R.UNSPECIFIED_ERROR, _R.IMPLEMENTATION_SPECIFIC_ERROR,
        _R.NOT_AUTHORIZED, _R.TOPIC_NAME_INVALID, _R.PACKET_IDENTIFIER_IN_USE, _R.QUOTA_EXCEEDED,
        _R.PAYLOAD_FORMAT_INVALID,
    }),
    PacketType.PUBREL: frozenset({_R.SUCCESS, _R.PACKET_IDENTIFIER_NOT_FOUND}),
    PacketType.SUBACK: frozenset({
        _R.GRANTED_QOS_0, _R.GRANTED_QOS_1, _R.GRANTED_QOS_2, _R.UNSPECIFIED_ERROR,
        _R.IMPLEMENTATION_SPECIFIC_ERROR, _R.NOT_AUTHORIZED, _R.TOPIC_FILTER_INVALID,
        _R.PACKET_IDENTIFIER_IN_USE, _R.QUOTA_EXCEEDED, _R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
        _R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, _R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
    }),
    PacketType.UNSUBACK: frozenset({
        _R.SUCCESS, _R.NO_SUBSCRIPTION_EXISTED, _R.UNSPECIFIED_ERROR, _R.IMPLEMENTATION_SPECIFIC_ERROR,
        _R.NOT_AUTHORIZED, _R.TOPIC_FILTER_INVALID, _R.PACKET_IDENTIFIER_IN_USE,
    }),
    PacketType.DISCONNECT: frozenset({
        _R.NORMAL_DISCONNECTION, _R.DISCONNECT_WITH_WILL_MESSAGE, _R.UNSPECIFIED_ERROR, _R.MALFORMED_PACKET,
        _R.PROTOCOL_ERROR, _R.IMPLEMENTATION_SPECIFIC_ERROR, _R.NOT_AUTHORIZED, _R.SERVER_BUSY,
        _R.SERVER_SHUTTING_DOWN, _R.KEEP_ALIVE_TIMEOUT, _R.SESSION_TAKEN_OVER, _R.TOPIC_FILTER_INVALID,
        _R.TOPIC_NAME_INVALID, _R.RECEIVE_MAXIMUM_EXCEEDED, _R.TOPIC_ALIAS_INVALID, _R.PACKET_TOO_LARGE,
        _R.MESSAGE_RATE_TOO_HIGH, _R.QUOTA_EXCEEDED, _R.ADMINISTRATIVE_ACTION, _R.PAYLOAD_FORMAT_INVALID,
        _R.RETAIN_NOT_SUPPORTED, _R.QOS_NOT_SUPPORTED, _R.USE_ANOTHER_SERVER, _R.SERVER_MOVED,
        _R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, _R.CONNECTION_RATE_EXCEEDED, _R.MAXIMUM_CONNECT_TIME,
        _R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, _R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
    }),
    PacketType.AUTH: frozenset({_R.SUCCESS, _R.CONTINUE_AUTHENTICATION, _R.RE_AUTHENTICATE}),
}  # fmt: skip
ALLOWED_REASON_CODES[PacketType.PUBREC] = ALLOWED_REASON_CODES[PacketType.PUBACK]
ALLOWED_REASON_CODES[PacketType.PUBCOMP] = ALLOWED_REASON_CODES[PacketType.PUBREL]
V311_SUBACK: Final = frozenset(
    {_R.GRANTED_QOS_0, _R.GRANTED_QOS_1, _R.GRANTED_QOS_2, _R.UNSPECIFIED_ERROR}
)
REASONS: Final = {int(code): code for code in ReasonCode}

# ---------------------------------------------------------------------------------------------
# Decoding. Each decoder gets (flags, data, pos, end, v5) where data[pos:end] is the packet body.

Decoder = Callable[
    [int, bytes, int, int, bool], Packet
]  # PacketReader.feed passes bytes


def read_u16(data: Buffer, pos: int, end: int, what: str) -> int:
    if pos + 2 > end:
        raise MalformedPacketError(f"the packet ends before its {what}")
    value: int = unpack_u16(data, pos)[0]
    return value


def read_packet_id(data: Buffer, pos: int, end: int) -> int:
    packet_id = read_u16(data, pos, end, "packet identifier")
    if packet_id == 0:
        raise RemoteProtocolError(
            "packet identifier 0 is not allowed"
        )  # [MQTT-2.2.1-3]
    return packet_id


def read_reason(data: Buffer, pos: int, packet_type: PacketType) -> ReasonCode:
    code = REASONS.get(data[pos])
    if code is None or code not in ALLOWED_REASON_CODES[packet_type]:
        raise MalformedPacketError(
            f"0x{data[pos]:02X} is not a valid reason code for {packet_type.name}"
        )
    return code


def expect_end(pos: int, end: int, packet_type: PacketType) -> None:
    if pos != end:
        raise MalformedPacketError(
            f"{end - pos} unexpected bytes at the end of {packet_type.name}"
        )
