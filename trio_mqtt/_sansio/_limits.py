"""The machine's states, and what the server's CONNACK allows."""

from __future__ import annotations

import enum

import attrs

from .._enums import QoS
from ._properties import Properties
from ._wire import MAX_PACKET_SIZE


class ConnectionState(enum.Enum):
    """Where one network connection is in its life."""

    IDLE = "idle"  # nothing sent yet
    CONNECTING = "connecting"  # CONNECT sent, waiting for CONNACK
    CONNECTED = "connected"
    CLOSED = "closed"  # DISCONNECT sent or received, refused, or failed


class QuotaExceeded(Exception):
    """Raised by :meth:`MQTTConnection.publish` when the server's Receive Maximum is reached.

    Not an error: the caller waits for an acknowledgement to free a slot ([MQTT-4.9.0-2]).
    """


@attrs.frozen
class ServerLimits:
    """What the server's CONNACK allows (section 3.2.2.3), with the spec's defaults."""

    receive_maximum: int = 65535
    maximum_qos: QoS = QoS.EXACTLY_ONCE
    retain_available: bool = True
    maximum_packet_size: int = MAX_PACKET_SIZE
    topic_alias_maximum: int = 0
    wildcard_subscription_available: bool = True
    subscription_identifier_available: bool = True
    shared_subscription_available: bool = True
    server_keep_alive: int | None = None

    @classmethod
    def from_connack(cls, props: Properties) -> ServerLimits:
        """The limits a CONNACK's properties set; an absent property keeps the spec's default."""
        given = {f.name: getattr(props, f.name) for f in attrs.fields(cls)}
        return attrs.evolve(cls(), **{k: v for k, v in given.items() if v is not None})
