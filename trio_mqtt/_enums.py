"""Enumerations whose values are MQTT wire values.

Every enum here is an :class:`enum.IntEnum` so that a member can be written to the wire as it is and
compared with plain integers (``QoS.AT_LEAST_ONCE == 1``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class QoS(IntEnum):
    """Quality of service of a PUBLISH or a subscription (MQTT 5.0 section 4.3)."""

    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1
    EXACTLY_ONCE = 2


#: ``QOS_LEVELS[n]`` is ``QoS(n)`` for 0..2, without Enum's call (hot paths: codec, publish).
QOS_LEVELS = (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE)


class ProtocolVersion(IntEnum):
    """The Protocol Level byte of CONNECT (section 3.1.2.2)."""

    V311 = 4
    V5 = 5


class RetainHandling(IntEnum):
    """Subscription option: whether retained messages are sent on subscribe (section 3.8.3.1)."""

    SEND_ON_SUBSCRIBE = 0
    SEND_IF_NEW_SUBSCRIPTION = 1
    DO_NOT_SEND = 2


class PayloadFormat(IntEnum):
    """The Payload Format Indicator property (section 3.3.2.3.2)."""

    UNSPECIFIED = 0
    UTF8 = 1


class PacketType(IntEnum):
    """The control packet type in the high nibble of the fixed header (section 2.1.2)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class ReasonCode(IntEnum):
    """MQTT 5.0 reason codes (section 2.4), under the spec's names.

    Some values carry several names in the spec (0x00 is *Success*, *Normal disconnection* and
    *Granted QoS 0*); they are aliases of one member here, so ``ReasonCode.NORMAL_DISCONNECTION is
    ReasonCode.SUCCESS``. MQTT 3.1.1 return codes are mapped onto these values by the codec.
    """

    SUCCESS = 0x00
    NORMAL_DISCONNECTION = 0x00
    GRANTED_QOS_0 = 0x00
    GRANTED_QOS_1 = 0x01
    GRANTED_QOS_2 = 0x02
    DISCONNECT_WITH_WILL_MESSAGE = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    CONTINUE_AUTHENTICATION = 0x18
    RE_AUTHENTICATE = 0x19
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_USER_NAME_OR_PASSWORD = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_UNAVAILABLE = 0x88
    SERVER_BUSY = 0x89
    BANNED = 0x8A
    SERVER_SHUTTING_DOWN = 0x8B
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    PACKET_IDENTIFIER_IN_USE = 0x91
    PACKET_IDENTIFIER_NOT_FOUND = 0x92
    RECEIVE_MAXIMUM_EXCEEDED = 0x93
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    MESSAGE_RATE_TOO_HIGH = 0x96
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    RETAIN_NOT_SUPPORTED = 0x9A
    QOS_NOT_SUPPORTED = 0x9B
    USE_ANOTHER_SERVER = 0x9C
    SERVER_MOVED = 0x9D
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    CONNECTION_RATE_EXCEEDED = 0x9F
    MAXIMUM_CONNECT_TIME = 0xA0
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2

    @property
    def is_failure(self) -> bool:
        """True for the failure codes, 0x80 and above (section 2.4)."""
        return self.value >= 0x80

    def describe(self) -> str:
        """The code as a person reads it.

        Returns:
            Its name and value, e.g. ``"BAD_USER_NAME_OR_PASSWORD (0x86)"``.

        Raises:
            Nothing.
        """
        return f"{self.name} (0x{self.value:02X})"


#: MQTT 3.1.1 CONNACK return codes (section 3.2.2.3 of 3.1.1) and the MQTT 5 reason code each means.
CONNACK_V311_TO_REASON: Final[dict[int, ReasonCode]] = {
    0: ReasonCode.SUCCESS,
    1: ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
    2: ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
    3: ReasonCode.SERVER_UNAVAILABLE,
    4: ReasonCode.BAD_USER_NAME_OR_PASSWORD,
    5: ReasonCode.NOT_AUTHORIZED,
}
#: The inverse of :data:`CONNACK_V311_TO_REASON`, for encoding a 3.1.1 CONNACK.
REASON_TO_CONNACK_V311: Final[dict[ReasonCode, int]] = {
    v: k for k, v in CONNACK_V311_TO_REASON.items()
}
