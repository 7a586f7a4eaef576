"""Decoding: the body of one control packet to a packet value.

Each decoder gets ``(flags, data, pos, end, v5)`` where ``data[pos:end]`` is the packet body.
Decoding raises :class:`MalformedPacketError` (0x81) for bytes that are not a valid encoding
and :class:`RemoteProtocolError` (0x82) for well-formed packets the spec forbids. Nothing else
escapes: the decoder's fuzz test holds it to that.
"""

from __future__ import annotations

from typing import Final

from .._enums import (
    CONNACK_V311_TO_REASON,
    QOS_LEVELS,
    PacketType,
    ProtocolVersion,
    ReasonCode,
    RetainHandling,
)
from .._exceptions import MalformedPacketError, RemoteProtocolError
from ._fields import (
    REASONS,
    Decoder,
    expect_end,
    read_packet_id,
    read_reason,
)
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
)
from ._publish_decoder import decode_publish
from ._wire import (
    Buffer,
    decode_binary,
    decode_string,
    unpack_u16,
)


def _ack_decoder(
    cls: type[PubAck | PubRec | PubRel | PubComp], packet_type: PacketType
) -> Decoder:
    def decode(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> Packet:
        packet_id = read_packet_id(data, pos, end)
        pos += 2
        if pos == end:
            return cls(packet_id=packet_id)
        if not v5:
            raise MalformedPacketError(
                f"MQTT 3.1.1 {packet_type.name} has a remaining length of 2"
            )
        code = read_reason(data, pos, packet_type)
        pos += 1
        properties = EMPTY_PROPERTIES
        if pos < end:
            properties, pos = decode_properties(data, pos, end, packet_type)
            expect_end(pos, end, packet_type)
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
    v5 = version is ProtocolVersion.V5
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
    expect_end(pos, end, PacketType.CONNECT)
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
    if v5 and end - pos == 2 and 0 < data[pos + 1] <= 5:
        # A server that speaks only MQTT 3.1.1 answers our v5 CONNECT with its own CONNACK
        # (no properties; return code 0x01 "unacceptable protocol version", [MQTT-3.1.2-2]),
        # as NATS and aedes do: a refusal for the protocol version, so that the application
        # can fall back to 3.1.1, not a malformed packet.
        code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
        properties = Properties(
            reason_string="the server answered in MQTT 3.1.1 (CONNACK return code "
            f"{data[pos + 1]}): it does not speak MQTT 5"
        )
        pos += 2
    elif v5:
        code = read_reason(data, pos + 1, PacketType.CONNACK)
        properties, pos = decode_properties(data, pos + 2, end, PacketType.CONNACK)
    else:
        mapped = CONNACK_V311_TO_REASON.get(data[pos + 1])
        if mapped is None:
            raise MalformedPacketError(
                f"unknown MQTT 3.1.1 CONNACK return code {data[pos + 1]}"
            )
        code, properties, pos = mapped, EMPTY_PROPERTIES, pos + 2
    expect_end(pos, end, PacketType.CONNACK)
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
    packet_id = read_packet_id(data, pos, end)
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
    packet_id = read_packet_id(data, pos, end)
    pos += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBACK)
        codes = tuple(read_reason(data, i, PacketType.SUBACK) for i in range(pos, end))
    else:
        codes = tuple(
            REASONS[b] if b in (0, 1, 2, 0x80) else _bad_v311_suback(b)
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
    packet_id = read_packet_id(data, pos, end)
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
    packet_id = read_packet_id(data, pos, end)
    pos += 2
    if not v5:
        expect_end(pos, end, PacketType.UNSUBACK)
        return UnsubAck(packet_id=packet_id)
    properties, pos = decode_properties(data, pos, end, PacketType.UNSUBACK)
    codes = tuple(read_reason(data, i, PacketType.UNSUBACK) for i in range(pos, end))
    if not codes:
        raise MalformedPacketError("UNSUBACK without reason codes")
    return UnsubAck(packet_id=packet_id, reason_codes=codes, properties=properties)


def _decode_ping(cls: type[PingReq | PingResp]) -> Decoder:
    instance = cls()

    def decode(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> Packet:
        expect_end(
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
    code = read_reason(data, pos, PacketType.DISCONNECT)
    properties = EMPTY_PROPERTIES
    if pos + 1 < end:
        properties, pos = decode_properties(data, pos + 1, end, PacketType.DISCONNECT)
        expect_end(pos, end, PacketType.DISCONNECT)
    return Disconnect(reason_code=code, properties=properties)


def _decode_auth(flags: int, data: Buffer, pos: int, end: int, v5: bool) -> Auth:
    if not v5:
        raise MalformedPacketError("packet type 15 (AUTH) is reserved in MQTT 3.1.1")
    if pos == end:
        return Auth()
    code = read_reason(data, pos, PacketType.AUTH)
    properties, pos = decode_properties(data, pos + 1, end, PacketType.AUTH)
    expect_end(pos, end, PacketType.AUTH)
    return Auth(reason_code=code, properties=properties)


# Indexed by packet type: (decoder, the fixed-header flags it requires or None for PUBLISH).
_DECODERS: Final[tuple[tuple[Decoder, int | None] | None, ...]] = (
    None,  # type 0 is reserved
    (_decode_connect, 0),
    (_decode_connack, 0),
    (decode_publish, None),
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


def decode_body(first: int, data: bytes, pos: int, end: int, v5: bool) -> Packet:
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
