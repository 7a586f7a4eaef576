"""Encoding and incremental decoding of MQTT 5.0 and 3.1.1 control packets.

Theory of operation:

* :func:`encode_packet` turns one packet value into the bytes of one control packet. It checks
  what the wire format needs (lengths, packet identifiers, flags valid for the version) and raises
  :class:`ValueError` when the value cannot be sent.
* :class:`PacketReader` is fed bytes as they arrive, split anywhere, and returns whole packets. It
  reads the fixed header first and refuses a packet whose announced size exceeds the maximum packet
  size before buffering any of its body (section 3.1.2.11.4 / [MQTT-3.2.2-15] on the client side),
  so a hostile length costs nothing.
* Decoding raises :class:`MalformedPacketError` (0x81) for bytes that are not a valid encoding and
  :class:`RemoteProtocolError` (0x82, or 0x95 for an oversized packet) for well-formed packets the
  spec forbids. Nothing else escapes: the decoder's fuzz test holds it to that.

The PUBLISH paths are the hot ones: no per-byte Python loops, precompiled structs, a single join.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._enums import (
    CONNACK_V311_TO_REASON,
    QOS_LEVELS,
    REASON_TO_CONNACK_V311,
    PacketType,
    ProtocolVersion,
    QoS,
    ReasonCode,
    RetainHandling,
)
from .._exceptions import MalformedPacketError, RemoteProtocolError
from .._topics import topic_name_problem
from ._fast import positional
from ._packets import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)
from ._properties import (
    EMPTY_PROPERTIES,
    WILL,
    Properties,
    decode_properties,
    encode_properties,
)
from ._wire import (
    MAX_VBI,
    Buffer,
    decode_binary,
    decode_string,
    encode_binary,
    encode_string,
    encode_vbi,
    pack_u16,
    unpack_u16,
)

#: The largest packet the format can express: the fixed header plus the largest remaining length.
MAX_PACKET_SIZE: Final = 1 + 4 + MAX_VBI

_V5: Final = ProtocolVersion.V5
_PROTOCOL_NAME: Final = encode_string("MQTT")

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
_V311_SUBACK: Final = frozenset(
    {_R.GRANTED_QOS_0, _R.GRANTED_QOS_1, _R.GRANTED_QOS_2, _R.UNSPECIFIED_ERROR}
)
_REASONS: Final = {int(code): code for code in ReasonCode}

# ---------------------------------------------------------------------------------------------
# Encoding


def _check_packet_id(packet_id: int | None) -> int:
    # [MQTT-2.2.1-3] packets that carry a Packet Identifier carry a non-zero one.
    if packet_id is None or not 0 < packet_id <= 0xFFFF:
        raise ValueError(f"packet_id must be 1..65535, not {packet_id!r}")
    return packet_id


def _frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_vbi(len(body)) + body


def _reason(packet_type: PacketType, code: ReasonCode) -> bytes:
    if code not in ALLOWED_REASON_CODES[packet_type]:
        raise ValueError(
            f"{code.describe()} is not a valid reason code for {packet_type.name}"
        )
    return bytes((code,))


def _encode_publish(p: Publish, v5: bool) -> bytes:
    return encode_publish(
        p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id, p.properties, v5
    )


def encode_publish(
    topic_name: str,
    payload: bytes,
    qos: int,
    retain: bool,
    dup: bool,
    packet_id: int | None,
    properties: Properties,
    v5: bool,
) -> bytes:
    """A PUBLISH from its fields, without building a :class:`Publish` (the send fast path).

    Raises:
        ValueError: a field the spec forbids.
    """
    topic = topic_name.encode("utf-8")
    if (
        "+" in topic_name
        or "#" in topic_name
        or "\x00" in topic_name
        or len(topic) > 0xFFFF
    ):
        raise ValueError(
            topic_name_problem(topic_name)
        )  # [MQTT-3.3.2-2] [MQTT-4.7.3-2/3]
    if not topic and (not v5 or properties.topic_alias is None):
        raise ValueError(
            "an empty topic name needs a topic alias (MQTT 5 only)"
        )  # [MQTT-4.7.3-1]
    if qos:
        if qos > 2:
            raise ValueError(f"qos must be 0, 1 or 2, not {qos}")
        pid = pack_u16(_check_packet_id(packet_id))
    else:
        if packet_id is not None:
            raise ValueError("a QoS 0 PUBLISH has no packet_id")  # [MQTT-2.2.1-2]
        if dup:
            raise ValueError("a QoS 0 PUBLISH cannot have dup set")  # [MQTT-3.3.1-2]
        pid = b""
    if not v5:
        props = b""
    elif properties is EMPTY_PROPERTIES:
        props = b"\x00"
    else:
        props = encode_properties(properties, PacketType.PUBLISH)
    length = 2 + len(topic) + len(pid) + len(props) + len(payload)
    first = 0x30 | (qos << 1) | (8 if dup else 0) | (1 if retain else 0)
    return b"".join(
        (
            bytes((first,)),
            encode_vbi(length),
            pack_u16(len(topic)),
            topic,
            pid,
            props,
            payload,
        )
    )


_ACK_FIRST_BYTES: Final = {
    PubAck: (0x40, PacketType.PUBACK),
    PubRec: (0x50, PacketType.PUBREC),
    PubRel: (0x62, PacketType.PUBREL),
    PubComp: (0x70, PacketType.PUBCOMP),
}


def _encode_ack(p: PubAck | PubRec | PubRel | PubComp, v5: bool) -> bytes:
    first, packet_type = _ACK_FIRST_BYTES[type(p)]
    pid = pack_u16(_check_packet_id(p.packet_id))
    code = p.reason_code
    if not v5:
        if code != 0:
            raise ValueError(
                f"MQTT 3.1.1 {packet_type.name} cannot carry reason code {code.describe()}"
            )
        return bytes((first, 2)) + pid
    reason = _reason(packet_type, code)
    if p.properties.is_empty():
        # Sections 3.4.2.1 and 3.4.2.2.1: Success with no properties may omit both.
        return (
            bytes((first, 2)) + pid if code == 0 else bytes((first, 3)) + pid + reason
        )
    return _frame(first, pid + reason + encode_properties(p.properties, packet_type))


def _encode_connect(p: Connect, version: ProtocolVersion) -> bytes:
    if p.protocol_version != version:
        raise ValueError(
            f"a {p.protocol_version.name} CONNECT cannot be encoded as {version.name}"
        )
    v5 = version is _V5
    if not 0 <= p.keep_alive <= 0xFFFF:
        raise ValueError(f"keep_alive must be 0..65535 seconds, not {p.keep_alive}")
    if not v5 and p.password is not None and p.username is None:
        raise ValueError(
            "MQTT 3.1.1 does not allow a password without a user name"
        )  # [MQTT-3.1.2-22]
    flags = 0x02 if p.clean_start else 0
    payload = [encode_string(p.client_id)]
    will = p.will
    if will is not None:
        flags |= 0x04 | (int(will.qos) << 3) | (0x20 if will.retain else 0)
        if will.qos > 2:
            raise ValueError(f"will qos must be 0, 1 or 2, not {will.qos}")
        if "+" in will.topic or "#" in will.topic or not will.topic:
            raise ValueError(f"invalid will topic {will.topic!r}")
        if v5:
            payload.append(encode_properties(will.properties, WILL))
        payload += [encode_string(will.topic), encode_binary(will.payload)]
    if p.username is not None:
        flags |= 0x80
        payload.append(encode_string(p.username))
    if p.password is not None:
        flags |= 0x40
        payload.append(encode_binary(p.password))
    header = _PROTOCOL_NAME + bytes((version, flags)) + pack_u16(p.keep_alive)
    if v5:
        header += encode_properties(p.properties, PacketType.CONNECT)
    return _frame(0x10, header + b"".join(payload))


def _encode_connack(p: ConnAck, v5: bool) -> bytes:
    if p.session_present and p.reason_code.is_failure:
        raise ValueError(
            "a refusing CONNACK cannot have session_present set"
        )  # [MQTT-3.2.2-6]
    flags = b"\x01" if p.session_present else b"\x00"
    if v5:
        return _frame(
            0x20,
            flags
            + _reason(PacketType.CONNACK, p.reason_code)
            + encode_properties(p.properties, PacketType.CONNACK),
        )
    code = REASON_TO_CONNACK_V311.get(p.reason_code)
    if code is None:
        raise ValueError(f"MQTT 3.1.1 CONNACK cannot carry {p.reason_code.describe()}")
    return bytes((0x20, 2)) + flags + bytes((code,))


def _encode_subscribe(p: Subscribe, v5: bool) -> bytes:
    if not p.subscriptions:
        raise ValueError("SUBSCRIBE needs at least one topic filter")  # [MQTT-3.8.3-2]
    parts = [pack_u16(_check_packet_id(p.packet_id))]
    if v5:
        parts.append(encode_properties(p.properties, PacketType.SUBSCRIBE))
    for sub in p.subscriptions:
        options = int(sub.qos)
        if v5:
            options |= (
                (4 if sub.no_local else 0)
                | (8 if sub.retain_as_published else 0)
                | (int(sub.retain_handling) << 4)
            )
        elif sub.no_local or sub.retain_as_published or sub.retain_handling:
            raise ValueError(
                "MQTT 3.1.1 has no no_local, retain_as_published or retain_handling"
            )
        parts += [encode_string(sub.topic_filter), bytes((options,))]
    return _frame(0x82, b"".join(parts))


def _encode_suback(p: SubAck, v5: bool) -> bytes:
    parts = [pack_u16(_check_packet_id(p.packet_id))]
    if v5:
        parts.append(encode_properties(p.properties, PacketType.SUBACK))
        parts += [_reason(PacketType.SUBACK, code) for code in p.reason_codes]
    else:
        for code in p.reason_codes:
            if code not in _V311_SUBACK:
                raise ValueError(f"MQTT 3.1.1 SUBACK cannot carry {code.describe()}")
            parts.append(bytes((code,)))
    return _frame(0x90, b"".join(parts))


def _encode_unsubscribe(p: Unsubscribe, v5: bool) -> bytes:
    if not p.topic_filters:
        raise ValueError(
            "UNSUBSCRIBE needs at least one topic filter"
        )  # [MQTT-3.10.3-2]
    parts = [pack_u16(_check_packet_id(p.packet_id))]
    if v5:
        parts.append(encode_properties(p.properties, PacketType.UNSUBSCRIBE))
    parts += [encode_string(f) for f in p.topic_filters]
    return _frame(0xA2, b"".join(parts))


def _encode_unsuback(p: UnsubAck, v5: bool) -> bytes:
    pid = pack_u16(_check_packet_id(p.packet_id))
    if not v5:
        return bytes((0xB0, 2)) + pid
    codes = b"".join(_reason(PacketType.UNSUBACK, code) for code in p.reason_codes)
    return _frame(
        0xB0, pid + encode_properties(p.properties, PacketType.UNSUBACK) + codes
    )


def _encode_disconnect(p: Disconnect, v5: bool) -> bytes:
    if not v5:
        return b"\xe0\x00"
    if p.properties.is_empty():
        # Section 3.14.2.1: the reason code may be omitted when it is 0x00 and there are no properties.
        return (
            b"\xe0\x00"
            if p.reason_code == 0
            else b"\xe0\x01" + _reason(PacketType.DISCONNECT, p.reason_code)
        )
    return _frame(
        0xE0,
        _reason(PacketType.DISCONNECT, p.reason_code)
        + encode_properties(p.properties, PacketType.DISCONNECT),
    )


def _encode_auth(p: Auth, v5: bool) -> bytes:
    if not v5:
        raise ValueError("AUTH does not exist in MQTT 3.1.1")
    if p.reason_code == 0 and (p.properties.is_empty()):
        return b"\xf0\x00"  # section 3.15.2.1
    return _frame(
        0xF0,
        _reason(PacketType.AUTH, p.reason_code)
        + encode_properties(p.properties, PacketType.AUTH),
    )


def encode_packet(packet: Packet, version: ProtocolVersion = _V5) -> bytes:
    """Encode ``packet`` as the bytes of one MQTT control packet of protocol ``version``.

    Raises:
        ValueError: the packet cannot be encoded (a field out of range, a property not allowed in
            this packet, a reason code or option the version cannot carry).
    """
    v5 = version is _V5
    if isinstance(packet, Publish):
        return _encode_publish(packet, v5)
    if isinstance(packet, PubAck | PubRec | PubRel | PubComp):
        return _encode_ack(packet, v5)
    if isinstance(packet, PingReq):
        return b"\xc0\x00"
    if isinstance(packet, PingResp):
        return b"\xd0\x00"
    if isinstance(packet, Connect):
        return _encode_connect(packet, version)
    if isinstance(packet, ConnAck):
        return _encode_connack(packet, v5)
    if isinstance(packet, Subscribe):
        return _encode_subscribe(packet, v5)
    if isinstance(packet, SubAck):
        return _encode_suback(packet, v5)
    if isinstance(packet, Unsubscribe):
        return _encode_unsubscribe(packet, v5)
    if isinstance(packet, UnsubAck):
        return _encode_unsuback(packet, v5)
    if isinstance(packet, Disconnect):
        return _encode_disconnect(packet, v5)
    if isinstance(packet, Auth):
        return _encode_auth(packet, v5)
    raise TypeError(f"not an MQTT packet: {packet!r}")


# ---------------------------------------------------------------------------------------------
# Decoding. Each decoder gets (flags, data, pos, end, v5) where data[pos:end] is the packet body.

_Decoder = Callable[
    [int, bytes, int, int, bool], Packet
]  # PacketReader.feed passes bytes


def _read_u16(data: Buffer, pos: int, end: int, what: str) -> int:
    if pos + 2 > end:
        raise MalformedPacketError(f"the packet ends before its {what}")
    value: int = unpack_u16(data, pos)[0]
    return value


def _read_packet_id(data: Buffer, pos: int, end: int) -> int:
    packet_id = _read_u16(data, pos, end, "packet identifier")
    if packet_id == 0:
        raise RemoteProtocolError(
            "packet identifier 0 is not allowed"
        )  # [MQTT-2.2.1-3]
    return packet_id


def _read_reason(data: Buffer, pos: int, packet_type: PacketType) -> ReasonCode:
    code = _REASONS.get(data[pos])
    if code is None or code not in ALLOWED_REASON_CODES[packet_type]:
        raise MalformedPacketError(
            f"0x{data[pos]:02X} is not a valid reason code for {packet_type.name}"
        )
    return code


def _expect_end(pos: int, end: int, packet_type: PacketType) -> None:
    if pos != end:
        raise MalformedPacketError(
            f"{end - pos} unexpected bytes at the end of {packet_type.name}"
        )


#: Topic names already decoded and checked, by their bytes: topics repeat, so most PUBLISHes
#: skip the UTF-8 decoding and the checks, and share one str (whose hash is then computed once).
_TOPICS: dict[bytes, str] = {}
_TOPICS_CACHED = 1024  # then it starts again: bounded whatever a broker sends


def _topic_name(raw: bytes) -> str:
    """A PUBLISH topic name from its bytes (decode_string's rules, and no wildcards)."""
    try:
        topic = raw.decode()
    except UnicodeDecodeError as exc:
        raise MalformedPacketError(
            f"a string is not well-formed UTF-8 ({exc.reason})"
        ) from None  # [MQTT-1.5.4-1]
    if "\x00" in topic:
        raise MalformedPacketError("a string contains U+0000")  # [MQTT-1.5.4-2]
    if "+" in topic or "#" in topic:
        raise RemoteProtocolError(
            f"PUBLISH topic {topic!r} contains a wildcard"
        )  # [MQTT-3.3.2-2]
    return topic


def _decode_publish(flags: int, data: bytes, pos: int, end: int, v5: bool) -> Publish:
    # ``data`` is bytes (PacketReader.feed sees to it): its slices are the topic and payload
    # without a further copy. Every microsecond here is paid once per message received.
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacketError("PUBLISH with QoS 3")  # [MQTT-3.3.1-4]
    dup = flags & 8 != 0
    if dup and not qos:
        raise RemoteProtocolError(
            "QoS 0 PUBLISH with the DUP flag set"
        )  # [MQTT-3.3.1-2]
    # the topic name: the hottest field of the hottest packet
    start = pos + 2
    if start > end:
        raise MalformedPacketError("the packet ends inside a length prefix")
    pos = start + ((data[start - 2] << 8) | data[start - 1])
    if pos > end:
        raise MalformedPacketError(
            f"a field claims {pos - start} bytes but only {end - start} remain"
        )
    raw = data[start:pos]
    topic = _TOPICS.get(raw)
    if topic is None:
        topic = _topic_name(raw)
        if len(_TOPICS) >= _TOPICS_CACHED:
            _TOPICS.clear()
        _TOPICS[raw] = topic
    packet_id = None
    if qos:
        packet_id = _read_packet_id(data, pos, end)
        pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        length = data[pos] if pos < end else -1
        if length == 0:
            pos += 1
        elif (
            length == 2
            and pos + 3 <= end
            and data[pos + 1] == 0x0B
            and 0 < data[pos + 2] < 0x80
        ):
            # The common case from a broker: one one-byte Subscription Identifier.
            properties = _SUBSCRIPTION_ID_PROPERTIES.get(data[pos + 2]) or (
                _subscription_id_properties(data[pos + 2])
            )
            pos += 3
        elif (
            2 <= length <= 5
            and pos + 1 + length <= end
            and data[pos + 1] == 0x0B
            and (identifier := _single_vbi(data, pos + 2, pos + 1 + length))
        ):
            # One longer Subscription Identifier and nothing else.
            properties = _subscription_id_properties(identifier)
            pos += 1 + length
        else:
            properties, pos = decode_properties(data, pos, end, PacketType.PUBLISH)
    if not topic and properties.topic_alias is None:
        raise RemoteProtocolError(
            "PUBLISH with an empty topic name and no topic alias"
        )  # [MQTT-4.7.3-1]
    if pos > end:
        raise MalformedPacketError("PUBLISH is truncated")
    return new_publish(
        topic,
        data[pos:end],
        QOS_LEVELS[qos],
        flags & 1 != 0,
        dup,
        packet_id,
        properties,
    )


#: Publish(topic, payload, qos, retain, dup, packet_id, properties), without __init__'s cost
new_publish: Callable[
    [str, bytes, QoS, bool, bool, int | None, Properties], Publish
] = positional(Publish)


_SUBSCRIPTION_ID_PROPERTIES: dict[int, Properties] = {}


def _single_vbi(data: Buffer, pos: int, end: int) -> int:
    """The variable byte integer filling exactly data[pos:end], or 0 if it does not."""
    value, shift = 0, 0
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value if pos == end else 0
    return 0


def _subscription_id_properties(identifier: int) -> Properties:
    """Shared, immutable Properties holding one subscription identifier (bounded cache)."""
    properties = _SUBSCRIPTION_ID_PROPERTIES.get(identifier)
    if properties is None:
        properties = Properties(subscription_identifiers=(identifier,))
        if len(_SUBSCRIPTION_ID_PROPERTIES) < 4096:
            _SUBSCRIPTION_ID_PROPERTIES[identifier] = properties
    return properties


def _ack_decoder(
    cls: type[PubAck | PubRec | PubRel | PubComp], packet_type: PacketType
) -> _Decoder:
    def decode(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> Packet:
        packet_id = _read_packet_id(data, pos, end)
        pos += 2
        if pos == end:
            return cls(packet_id=packet_id)
        if not v5:
            raise MalformedPacketError(
                f"MQTT 3.1.1 {packet_type.name} has a remaining length of 2"
            )
        code = _read_reason(data, pos, packet_type)
        pos += 1
        properties = EMPTY_PROPERTIES
        if pos < end:
            properties, pos = decode_properties(data, pos, end, packet_type)
            _expect_end(pos, end, packet_type)
        return cls(packet_id=packet_id, reason_code=code, properties=properties)

    return decode


def _decode_connect(
    flags: int, data: Buffer, pos: int, end: int, v5_hint: bool
) -> Connect:
    name, pos = decode_string(data, pos, end)
    if name != "MQTT":
        raise MalformedPacketError(
            f"protocol name {name!r} is not 'MQTT'"
        )  # [MQTT-3.1.2-1]
    if pos + 4 > end:
        raise MalformedPacketError("CONNECT is truncated in its variable header")
    level, connect_flags = data[pos], data[pos + 1]
    if level not in (4, 5):
        raise RemoteProtocolError(
            f"unsupported protocol level {level}",
            reason_code=ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
        )  # [MQTT-3.1.2-2]
    version = ProtocolVersion(level)
    v5 = version is _V5
    (keep_alive,) = unpack_u16(data, pos + 2)
    pos += 4
    if connect_flags & 0x01:
        raise MalformedPacketError("the reserved CONNECT flag is set")  # [MQTT-3.1.2-3]
    will_flag = bool(connect_flags & 0x04)
    will_qos = (connect_flags >> 3) & 3
    will_retain = bool(connect_flags & 0x20)
    if not will_flag and (will_qos or will_retain):
        raise MalformedPacketError(
            "will QoS or retain set without the will flag"
        )  # [MQTT-3.1.2-11] [MQTT-3.1.2-13]
    if will_qos == 3:
        raise MalformedPacketError("will QoS 3")  # [MQTT-3.1.2-12]
    has_user, has_password = bool(connect_flags & 0x80), bool(connect_flags & 0x40)
    if not v5 and has_password and not has_user:
        raise MalformedPacketError(
            "password flag without user name flag"
        )  # [MQTT-3.1.2-22] (3.1.1)
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = decode_properties(data, pos, end, PacketType.CONNECT)
    client_id, pos = decode_string(data, pos, end)
    will = None
    if will_flag:
        will_props = EMPTY_PROPERTIES
        if v5:
            will_props, pos = decode_properties(data, pos, end, WILL)
        will_topic, pos = decode_string(data, pos, end)
        will_payload, pos = decode_binary(data, pos, end)
        will = Will(
            will_topic,
            will_payload,
            QOS_LEVELS[will_qos],
            will_retain,
            properties=will_props,
        )
    username = password = None
    if has_user:
        username, pos = decode_string(data, pos, end)
    if has_password:
        password, pos = decode_binary(data, pos, end)
    _expect_end(pos, end, PacketType.CONNECT)
    return Connect(
        protocol_version=version, client_id=client_id, clean_start=bool(connect_flags & 0x02),
        keep_alive=keep_alive, username=username, password=password, will=will, properties=properties,
    )  # fmt: skip


def _decode_connack(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> ConnAck:
    if pos + 2 > end:
        raise MalformedPacketError("CONNACK is shorter than two bytes")
    ack_flags = data[pos]
    if ack_flags & 0xFE:
        raise MalformedPacketError(
            "reserved CONNACK acknowledge flags are set"
        )  # [MQTT-3.2.2-1]
    if v5:
        code = _read_reason(data, pos + 1, PacketType.CONNACK)
        properties, pos = decode_properties(data, pos + 2, end, PacketType.CONNACK)
    else:
        mapped = CONNACK_V311_TO_REASON.get(data[pos + 1])
        if mapped is None:
            raise MalformedPacketError(
                f"unknown MQTT 3.1.1 CONNACK return code {data[pos + 1]}"
            )
        code, properties, pos = mapped, EMPTY_PROPERTIES, pos + 2
    _expect_end(pos, end, PacketType.CONNACK)
    if ack_flags and code.is_failure:
        raise RemoteProtocolError(
            "a refusing CONNACK has session present set"
        )  # [MQTT-3.2.2-6]
    return ConnAck(
        session_present=bool(ack_flags), reason_code=code, properties=properties
    )


def _decode_subscribe(
    flags: int, data: Buffer, pos: int, end: int, v5: bool
) -> Subscribe:
    packet_id = _read_packet_id(data, pos, end)
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBSCRIBE)
    subscriptions = []
    while pos < end:
        topic_filter, pos = decode_string(data, pos, end)
        if pos >= end:
            raise MalformedPacketError("SUBSCRIBE ends before the subscription options")
        options = data[pos]
        pos += 1
        if options & (0xC0 if v5 else 0xFC):
            raise MalformedPacketError(
                "reserved subscription option bits are set"
            )  # [MQTT-3.8.3-5]
        if options & 3 == 3:
            raise MalformedPacketError(
                "subscription with QoS 3"
            )  # [MQTT-3.8.3-4] (3.1.1)
        if (options >> 4) & 3 == 3:
            raise RemoteProtocolError(
                "retain handling 3 is not allowed"
            )  # section 3.8.3.1
        no_local = bool(options & 4)
        if no_local and topic_filter.startswith("$share/"):
            raise RemoteProtocolError(
                "no_local on a shared subscription"
            )  # [MQTT-3.8.3-4]
        subscriptions.append(
            SubscriptionRequest(
                topic_filter=topic_filter, qos=QOS_LEVELS[options & 3], no_local=no_local,
                retain_as_published=bool(options & 8), retain_handling=RetainHandling((options >> 4) & 3),
            )
        )  # fmt: skip
    if not subscriptions:
        raise RemoteProtocolError("SUBSCRIBE without topic filters")  # [MQTT-3.8.3-2]
    return Subscribe(
        packet_id=packet_id, subscriptions=tuple(subscriptions), properties=properties
    )


def _decode_suback(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> SubAck:
    packet_id = _read_packet_id(data, pos, end)
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBACK)
        codes = tuple(_read_reason(data, i, PacketType.SUBACK) for i in range(pos, end))
    else:
        codes = tuple(
            _REASONS[b] if b in (0, 1, 2, 0x80) else _bad_v311_suback(b)
            for b in bytes(data[pos:end])
        )
    if not codes:
        raise MalformedPacketError("SUBACK without reason codes")
    return SubAck(packet_id=packet_id, reason_codes=codes, properties=properties)


def _bad_v311_suback(code: int) -> ReasonCode:
    raise MalformedPacketError(
        f"0x{code:02X} is not an MQTT 3.1.1 SUBACK return code"
    )  # [MQTT-3.9.3-2]


def _decode_unsubscribe(
    flags: int, data: Buffer, pos: int, end: int, v5: bool
) -> Unsubscribe:
    packet_id = _read_packet_id(data, pos, end)
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = decode_properties(data, pos, end, PacketType.UNSUBSCRIBE)
    filters = []
    while pos < end:
        topic_filter, pos = decode_string(data, pos, end)
        filters.append(topic_filter)
    if not filters:
        raise RemoteProtocolError(
            "UNSUBSCRIBE without topic filters"
        )  # [MQTT-3.10.3-2]
    return Unsubscribe(
        packet_id=packet_id, topic_filters=tuple(filters), properties=properties
    )


def _decode_unsuback(
    flags: int, data: Buffer, pos: int, end: int, v5: bool
) -> UnsubAck:
    packet_id = _read_packet_id(data, pos, end)
    pos += 2
    if not v5:
        _expect_end(pos, end, PacketType.UNSUBACK)
        return UnsubAck(packet_id=packet_id)
    properties, pos = decode_properties(data, pos, end, PacketType.UNSUBACK)
    codes = tuple(_read_reason(data, i, PacketType.UNSUBACK) for i in range(pos, end))
    if not codes:
        raise MalformedPacketError("UNSUBACK without reason codes")
    return UnsubAck(packet_id=packet_id, reason_codes=codes, properties=properties)


def _decode_ping(cls: type[PingReq | PingResp]) -> _Decoder:
    instance = cls()

    def decode(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> Packet:
        _expect_end(
            pos, end, PacketType.PINGREQ if cls is PingReq else PacketType.PINGRESP
        )
        return instance

    return decode


def _decode_disconnect(
    flags: int, data: Buffer, pos: int, end: int, v5: bool
) -> Disconnect:
    if pos == end:
        return Disconnect()
    if not v5:
        raise MalformedPacketError("MQTT 3.1.1 DISCONNECT has a remaining length of 0")
    code = _read_reason(data, pos, PacketType.DISCONNECT)
    properties = EMPTY_PROPERTIES
    if pos + 1 < end:
        properties, pos = decode_properties(data, pos + 1, end, PacketType.DISCONNECT)
        _expect_end(pos, end, PacketType.DISCONNECT)
    return Disconnect(reason_code=code, properties=properties)


def _decode_auth(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> Auth:
    if not v5:
        raise MalformedPacketError("packet type 15 (AUTH) is reserved in MQTT 3.1.1")
    if pos == end:
        return Auth()
    code = _read_reason(data, pos, PacketType.AUTH)
    properties, pos = decode_properties(data, pos + 1, end, PacketType.AUTH)
    _expect_end(pos, end, PacketType.AUTH)
    return Auth(reason_code=code, properties=properties)


# Indexed by packet type: (decoder, the fixed-header flags it requires or None for PUBLISH).
_DECODERS: Final[tuple[tuple[_Decoder, int | None] | None, ...]] = (
    None,  # type 0 is reserved
    (_decode_connect, 0),
    (_decode_connack, 0),
    (_decode_publish, None),
    (_ack_decoder(PubAck, PacketType.PUBACK), 0),
    (_ack_decoder(PubRec, PacketType.PUBREC), 0),
    (_ack_decoder(PubRel, PacketType.PUBREL), 2),  # [MQTT-3.6.1-1]
    (_ack_decoder(PubComp, PacketType.PUBCOMP), 0),
    (_decode_subscribe, 2),  # [MQTT-3.8.1-1]
    (_decode_suback, 0),
    (_decode_unsubscribe, 2),  # [MQTT-3.10.1-1]
    (_decode_unsuback, 0),
    (_decode_ping(PingReq), 0),
    (_decode_ping(PingResp), 0),
    (_decode_disconnect, 0),
    (_decode_auth, 0),
)


def _decode_body(first: int, data: bytes, pos: int, end: int, v5: bool) -> Packet:
    packet_type = first >> 4
    flags = first & 0x0F
    entry = _DECODERS[packet_type]
    if entry is None:
        raise MalformedPacketError("packet type 0 is reserved")  # section 2.1.2
    decoder, required_flags = entry
    if required_flags is not None and flags != required_flags:
        # [MQTT-2.1.3-1] reserved flag bits have fixed values; anything else is malformed.
        raise MalformedPacketError(
            f"invalid fixed header flags 0x{flags:X} for {PacketType(packet_type).name}"
        )
    try:
        return decoder(flags, data, pos, end, v5)
    except IndexError:  # a fixed-offset read past a truncated body
        raise MalformedPacketError(
            f"{PacketType(packet_type).name} is truncated"
        ) from None


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


class PacketReader:
    """Incremental decoder: feed it bytes in chunks of any size, get whole packets back.

    Args:
        version: the protocol version of the connection. A broker-side reader that does not
            know it yet decodes CONNECT (which is self-describing) and then sets :attr:`version`.
        max_packet_size: the largest packet accepted, fixed header included. A larger packet
            raises :class:`RemoteProtocolError` with reason code 0x95 as soon as its fixed header
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
                :attr:`max_packet_size` (reason code 0x95).
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
                        _decode_publish(
                            first & 0x0F, buf, pos + header, pos + total, v5
                        )
                    )
                else:
                    packets.append(
                        _decode_body(first, buf, pos + header, pos + total, v5)
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
