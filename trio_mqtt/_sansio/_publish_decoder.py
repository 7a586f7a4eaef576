"""The hot path of receiving: decoding a PUBLISH body, once per message.

Two process-wide caches make it cheap, both bounded whatever a broker sends and both emptied
by :func:`reset_caches` (tests; a process that wants the memory back):

* ``TOPICS``: topic names already decoded and checked, by their bytes. Topics repeat, so most
  PUBLISHes skip the UTF-8 decoding and the checks, and share one str (its hash computed once).
* the Properties of a lone Subscription Identifier (what brokers send with each message).

A decoded PUBLISH is built by :func:`new_publish`, keyword-only and without ``__init__``'s
cost (see :mod:`._fast`).
"""

from __future__ import annotations

from typing import Protocol

from .._enums import (
    QOS_LEVELS,
    PacketType,
    QoS,
)
from .._exceptions import MalformedPacketError, RemoteProtocolError
from ._fast import fast_constructor
from ._fields import read_packet_id
from ._packets import (
    Publish,
)
from ._properties import (
    EMPTY_PROPERTIES,
    Properties,
    decode_properties,
)
from ._wire import (
    Buffer,
)

#: Topic names already decoded and checked, by their bytes: topics repeat, so most PUBLISHes
#: skip the UTF-8 decoding and the checks, and share one str (whose hash is then computed once).
TOPICS: dict[bytes, str] = {}
TOPICS_CACHED = 1024  # then it starts again: bounded whatever a broker sends


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


def decode_publish(flags: int, data: bytes, pos: int, end: int, v5: bool) -> Publish:
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
    topic = TOPICS.get(raw)
    if topic is None:
        topic = _topic_name(raw)
        if len(TOPICS) >= TOPICS_CACHED:
            TOPICS.clear()
        TOPICS[raw] = topic
    packet_id = None
    if qos:
        packet_id = read_packet_id(data, pos, end)
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
        topic=topic,
        payload=data[pos:end],
        qos=QOS_LEVELS[qos],
        retain=flags & 1 != 0,
        dup=dup,
        packet_id=packet_id,
        properties=properties,
    )


class NewPublish(Protocol):
    def __call__(
        self,
        *,
        topic: str,
        payload: bytes,
        qos: QoS,
        retain: bool,
        dup: bool,
        packet_id: int | None,
        properties: Properties,
    ) -> Publish: ...


#: ``Publish(...)`` without ``__init__``'s cost (keyword-only; no validation: see _fast)
new_publish: NewPublish = fast_constructor(Publish)


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


def reset_caches() -> None:
    """Empty the decoder's caches."""
    TOPICS.clear()
    _SUBSCRIPTION_ID_PROPERTIES.clear()
