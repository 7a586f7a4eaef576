"""The values users receive: messages and publish results."""

from __future__ import annotations

from typing import final

import attrs

from ._enums import QoS, ReasonCode
from ._sansio._packets import Publish
from ._sansio._properties import EMPTY_PROPERTIES, Properties


@final
@attrs.frozen(kw_only=True)
class Message:
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

    @classmethod
    def _from_publish(cls, publish: Publish) -> Message:
        return cls(
            topic=publish.topic,
            payload=publish.payload,
            qos=publish.qos,
            retain=publish.retain,
            properties=publish.properties,
        )


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
