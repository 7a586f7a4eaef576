"""Encoding: one packet value to the bytes of one control packet.

:func:`encode_packet` checks what the wire format needs (lengths, packet identifiers, flags valid
for the version) and raises :class:`ValueError` when the value cannot be sent. The PUBLISH path
(:func:`encode_publish`) is the hot one: precompiled structs and a single join.
"""

from __future__ import annotations

from typing import Final

from .._enums import (
    REASON_TO_CONNACK_V311,
    PacketType,
    ProtocolVersion,
    ReasonCode,
)
from .._topics import topic_name_problem
from ._fields import ALLOWED_REASON_CODES, V311_SUBACK
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
    UnsubAck,
    Unsubscribe,
)
from ._properties import (
    EMPTY_PROPERTIES,
    WILL,
    Properties,
    encode_properties,
)
from ._wire import (
    encode_binary,
    encode_string,
    encode_vbi,
    pack_u16,
)

#: The largest packet the format can express: the fixed header plus the largest remaining length.

_V5: Final = ProtocolVersion.V5
_PROTOCOL_NAME: Final = encode_string("MQTT")

# ---------------------------------------------------------------------------------------------
# Encoding

# (a tuple: isinstance() against ``A | B`` builds the union at every call, ~1 µs on 3.11)
_ACKS = (PubAck, PubRec, PubRel, PubComp)


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
            if code not in V311_SUBACK:
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
    if isinstance(packet, _ACKS):
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
