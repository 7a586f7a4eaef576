"""Session state: what must survive a reconnect (section 4.1), kept apart from the connection.

The outbound side keeps every QoS 1/2 PUBLISH until its final acknowledgement, and every PUBREL
until PUBCOMP, in the order they were sent, so that a resumed session resends them in order
([MQTT-4.4.0-1]). The inbound side keeps the QoS 2 packet ids received but not yet released, so a
redelivered QoS 2 message is not handed to the application twice ([MQTT-4.3.3-9]).
"""

from __future__ import annotations

import attrs

from ._packets import Publish, PubRel


class PacketIdsExhausted(Exception):
    """All 65535 packet identifiers are in use."""


@attrs.define(eq=False)
class PacketIdAllocator:
    """Hands out packet identifiers 1..65535, wrapping, never one still in use ([MQTT-2.2.1-3])."""

    _in_use: set[int] = attrs.field(factory=set)
    _next: int = 1

    def allocate(self) -> int:
        in_use = self._in_use
        if len(in_use) >= 65535:
            raise PacketIdsExhausted("all 65535 packet identifiers are in use")
        candidate = self._next
        while candidate in in_use:
            candidate = candidate % 65535 + 1
        in_use.add(candidate)
        self._next = candidate % 65535 + 1
        return candidate

    def release(self, packet_id: int) -> None:
        self._in_use.discard(packet_id)

    def in_use(self, packet_id: int) -> bool:
        return packet_id in self._in_use

    def __len__(self) -> int:
        return len(self._in_use)


@attrs.define(eq=False)
class SessionState:
    """Everything of a session that outlives one network connection."""

    #: Outbound QoS 1/2 PUBLISH awaiting PUBACK/PUBREC, or PUBREL awaiting PUBCOMP, in send order.
    outbound: dict[int, Publish | PubRel] = attrs.field(factory=dict)
    #: Inbound QoS 2 packet ids delivered to the application and awaiting PUBREL.
    inbound_qos2: set[int] = attrs.field(factory=set)
    packet_ids: PacketIdAllocator = attrs.field(factory=PacketIdAllocator)

    def clear(self) -> None:
        """Forget everything (clean start, or the broker did not keep the session)."""
        self.outbound.clear()
        self.inbound_qos2.clear()
        self.packet_ids = PacketIdAllocator()
