"""What the client connection machine reports: frozen, past-tense facts (h2's style).

An application message is reported as the :class:`Publish` packet itself (mqttproto's way): the
packet is the fact, and a wrapper around it would cost an object per message received. For QoS
2 it is reported exactly once per packet id until PUBREL.
"""

from __future__ import annotations

import attrs

from .._enums import ReasonCode
from ._packets import ConnAck, Publish
from ._properties import EMPTY_PROPERTIES, Properties


@attrs.frozen
class ConnectionAccepted:
    """CONNACK with a success code arrived; the connection is open."""

    connack: ConnAck


@attrs.frozen
class ConnectionRefused:
    """CONNACK with a failure code arrived; the broker will close the connection."""

    connack: ConnAck


@attrs.frozen
class PublishAcknowledged:
    """The flow of an outbound QoS 1 or 2 PUBLISH ended: PUBACK, PUBREC >= 0x80, or PUBCOMP."""

    packet_id: int
    reason_code: ReasonCode
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen
class PublishExpired:
    """An outbound QoS 1/2 PUBLISH was not resent: its Message Expiry Interval passed while
    the connection was down (section 3.3.2.3.3). Its flow is over, unacknowledged."""

    packet_id: int
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen
class SubscribeAcknowledged:
    """SUBACK arrived."""

    packet_id: int
    reason_codes: tuple[ReasonCode, ...]
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen
class UnsubscribeAcknowledged:
    """UNSUBACK arrived (no reason codes in MQTT 3.1.1)."""

    packet_id: int
    reason_codes: tuple[ReasonCode, ...]
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen
class DisconnectReceived:
    """The broker sent DISCONNECT; the connection is over."""

    reason_code: ReasonCode
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen
class PongReceived:
    """PINGRESP arrived."""


@attrs.frozen
class KeepAliveExpired:
    """No PINGRESP came back in time: the broker is unresponsive ([MQTT-3.1.2-24] client side)."""


@attrs.frozen
class AuthChallenged:
    """The broker sent AUTH 0x18 (continue authentication): answer with
    :meth:`MQTTConnection.auth`. During CONNECT, or during a re-authentication we started."""

    data: bytes | None = attrs.field(repr=False)
    properties: Properties = EMPTY_PROPERTIES


@attrs.frozen
class ReauthenticationCompleted:
    """The broker accepted our re-authentication (AUTH 0x00); ``data`` is its final word."""

    data: bytes | None = attrs.field(repr=False)
    properties: Properties = EMPTY_PROPERTIES


#: The broker's answers to our requests, each carrying the request's packet identifier.
Acknowledged = (
    PublishAcknowledged
    | PublishExpired
    | SubscribeAcknowledged
    | UnsubscribeAcknowledged
)

Event = (
    ConnectionAccepted | ConnectionRefused | Publish | PublishAcknowledged | PublishExpired
    | SubscribeAcknowledged | UnsubscribeAcknowledged | DisconnectReceived | PongReceived
    | KeepAliveExpired | AuthChallenged | ReauthenticationCompleted
)  # fmt: skip
