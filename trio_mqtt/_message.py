"""The values users receive: messages and publish results."""

from __future__ import annotations

from typing import Protocol, final

import attrs

from ._enums import QoS, ReasonCode
from ._sansio._fast import fast_constructor
from ._sansio._packets import Publish
from ._sansio._properties import EMPTY_PROPERTIES, Properties


class Acknowledgement(Protocol):
    """One subscription's share of a received QoS 1/2 message's acknowledgement (what
    :meth:`Message.ack` calls). The router implements it."""

    def ack(self) -> None:
        """Taken (or dropped): the broker may count the message as delivered."""

    def abandon(self) -> None:
        """Never to be acknowledged: the broker redelivers it to the next connection."""


class _MessageSlots:
    # Message's storage, so that the router can build one cheaply (see _sansio._fast)
    __slots__ = (
        "__weakref__", "_acknowledger", "payload", "properties", "qos", "retain", "topic"
    )  # fmt: skip


@final
@attrs.frozen(kw_only=True)
class Message(_MessageSlots):
    """An application message received on a subscription.

    Attributes:
        topic: the topic it was published to.
        payload: its payload, as bytes.
        qos: the QoS it was delivered with.
        retain: whether it was delivered from the broker's retained store (or retain-as-published).
        properties: its MQTT 5 properties (content type, user properties, response topic, ...).
    """

    topic: str
    payload: bytes
    qos: QoS
    retain: bool = False
    properties: Properties = EMPTY_PROPERTIES
    _acknowledger: Acknowledgement | None = attrs.field(
        default=None, eq=False, repr=False, alias="_acknowledger"
    )

    def ack(self) -> None:
        """Acknowledge this message to the broker (PUBACK for QoS 1, PUBREC for QoS 2).

        Only needed on a subscription opened with ``manual_ack=True``; elsewhere the client
        acknowledges each message when the application receives it, and this does nothing.
        Synchronous: it only queues the packet, which leaves after the acknowledgements of every
        message that arrived earlier (the spec's order, [MQTT-4.6.0-2], [MQTT-4.6.0-3]). A QoS 0
        message has nothing to acknowledge; repeated calls do nothing.

        If the connection dropped since the message arrived, the acknowledgement is sent on the
        resumed connection; the broker's redelivery of the same message is not handed to the
        application again.

        Raises:
            Nothing: a message of a closed client or subscription is acknowledged (or left to
            the broker) as the client closes.
        """
        if self._acknowledger is not None:
            self._acknowledger.ack()


class _NewMessage(Protocol):
    def __call__(
        self,
        *,
        topic: str,
        payload: bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
        acknowledger: Acknowledgement | None,
    ) -> Message: ...


#: ``Message(...)`` without ``__init__``'s cost (keyword-only; no validation: see _fast)
new_message: _NewMessage = fast_constructor(Message)


def message_from_publish(
    publish: Publish, acknowledger: Acknowledgement | None = None
) -> Message:
    """The message a received PUBLISH carries (``acknowledger``: its manual ack)."""
    return new_message(
        topic=publish.topic, payload=publish.payload, qos=publish.qos,
        retain=publish.retain, properties=publish.properties, acknowledger=acknowledger,
    )  # fmt: skip


@final
@attrs.frozen(kw_only=True)
class PublishResult:
    """The broker's answer to a publish.

    Attributes:
        packet_id: the packet identifier used (``None`` for QoS 0).
        reason_code: the PUBACK / PUBCOMP reason code (``SUCCESS`` for QoS 0, or
            ``NO_MATCHING_SUBSCRIBERS``, which is still a success).
        properties: the acknowledgement's properties (reason string, user properties).
    """

    packet_id: int | None
    reason_code: ReasonCode = ReasonCode.SUCCESS
    properties: Properties = EMPTY_PROPERTIES
