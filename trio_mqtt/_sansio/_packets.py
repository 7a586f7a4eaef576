"""The fifteen MQTT control packets as immutable values (chapter 3 of MQTT 5.0).

Fields carry the spec's names and hold wire values only: no acknowledgement state, no timestamps.
A resend is a new value (``attrs.evolve(publish, dup=True)``), never a mutation. The same classes
serve MQTT 3.1.1, whose packets are a subset: properties are dropped on encode, and reason codes
that 3.1.1 cannot carry are refused by the encoder.
"""

from __future__ import annotations

import attrs

from .._enums import ProtocolVersion, QoS, ReasonCode, RetainHandling
from ._properties import BYTES_LIKE, EMPTY_PROPERTIES, Properties


def payload_bytes(payload: object) -> bytes:
    """A payload as bytes: ``bytes``, ``bytearray`` and ``memoryview`` as they are, ``str`` as
    UTF-8. Anything else is a TypeError (``bytes(42)`` would be 42 NUL bytes)."""
    if type(payload) is bytes:
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, BYTES_LIKE):
        return bytes(payload)
    raise TypeError(
        "payload must be bytes, bytearray, memoryview or str, not "
        f"{type(payload).__name__}"
    )


@attrs.frozen
class Will:
    """The Will Message a broker publishes when the client vanishes (section 3.1.2.5).

    Args:
        topic: where the will is published.
        payload: its payload: ``bytes``, ``bytearray``, ``memoryview``, or ``str`` (sent as
            UTF-8), as for :meth:`~trio_mqtt.MQTTClient.publish`.
        qos: its QoS.
        retain: whether the broker retains it.
        properties: MQTT 5 Will Properties (will_delay_interval, message_expiry_interval, ...).
    """

    topic: str
    payload: bytes = attrs.field(default=b"", converter=payload_bytes)
    qos: QoS = attrs.field(default=QoS.AT_MOST_ONCE, converter=QoS)
    retain: bool = False
    properties: Properties = attrs.field(default=EMPTY_PROPERTIES, kw_only=True)


@attrs.frozen(kw_only=True)
class Connect:
    """CONNECT (section 3.1). ``keep_alive`` is in whole seconds; 0 disables keep alive."""

    protocol_version: ProtocolVersion = ProtocolVersion.V5
    client_id: str = ""
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = attrs.field(default=None, repr=False)
    will: Will | None = None
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class ConnAck:
    """CONNACK (section 3.2). 3.1.1 return codes are mapped to MQTT 5 reason codes."""

    session_present: bool = False
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


class _PublishSlots:
    # Publish's storage, so that the codec can build one cheaply (see _fast.positional)
    __slots__ = (
        "__weakref__", "dup", "packet_id", "payload", "properties", "qos", "retain", "topic"
    )  # fmt: skip


@attrs.frozen(kw_only=True)
class Publish(_PublishSlots):
    """PUBLISH (section 3.3). ``packet_id`` is ``None`` exactly when ``qos`` is 0."""

    topic: str
    payload: bytes = b""
    qos: QoS = QoS.AT_MOST_ONCE
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class PubAck:
    """PUBACK (section 3.4)."""

    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class PubRec:
    """PUBREC (section 3.5)."""

    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class PubRel:
    """PUBREL (section 3.6)."""

    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class PubComp:
    """PUBCOMP (section 3.7)."""

    packet_id: int
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class SubscriptionRequest:
    """One topic filter of a SUBSCRIBE with its subscription options (section 3.8.3.1)."""

    topic_filter: str
    qos: QoS = QoS.AT_MOST_ONCE
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: RetainHandling = RetainHandling.SEND_ON_SUBSCRIBE


@attrs.frozen(kw_only=True)
class Subscribe:
    """SUBSCRIBE (section 3.8)."""

    packet_id: int
    subscriptions: tuple[SubscriptionRequest, ...]
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class SubAck:
    """SUBACK (section 3.9): one reason code per requested filter, in order."""

    packet_id: int
    reason_codes: tuple[ReasonCode, ...]
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class Unsubscribe:
    """UNSUBSCRIBE (section 3.10)."""

    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class UnsubAck:
    """UNSUBACK (section 3.11). MQTT 3.1.1 carries no reason codes: the tuple is empty there."""

    packet_id: int
    reason_codes: tuple[ReasonCode, ...] = ()
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen
class PingReq:
    """PINGREQ (section 3.12)."""


@attrs.frozen
class PingResp:
    """PINGRESP (section 3.13)."""


@attrs.frozen(kw_only=True)
class Disconnect:
    """DISCONNECT (section 3.14). MQTT 3.1.1 carries no reason code: it decodes as 0x00."""

    reason_code: ReasonCode = ReasonCode.NORMAL_DISCONNECTION
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen(kw_only=True)
class Auth:
    """AUTH (section 3.15), MQTT 5 only."""

    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES


Packet = (
    Connect | ConnAck | Publish | PubAck | PubRec | PubRel | PubComp | Subscribe | SubAck
    | Unsubscribe | UnsubAck | PingReq | PingResp | Disconnect | Auth
)  # fmt: skip
