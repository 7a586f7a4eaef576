"""Session state: what must survive a reconnect (section 4.1), kept apart from the connection.

The outbound side keeps every QoS 1/2 PUBLISH until its final acknowledgement, and every PUBREL
until PUBCOMP, in the order they were sent, so that a resumed session resends them in order
([MQTT-4.4.0-1]). The inbound side keeps the QoS 2 packet ids whose PUBREC was sent but whose PUBREL
has not arrived, so a redelivered QoS 2 message is not handed to the application twice
([MQTT-4.3.3-9]).

It also remembers, for a while, the inbound QoS 2 messages it *completed* (PUBCOMP sent) until the
server is known to have that PUBCOMP: see :class:`ReleasedQoS2`.

Every change goes through a method, and each method tells the optional :class:`SessionJournal`,
which is how a durable store (``trio_mqtt.SQLiteSessionStore``) follows the session without this
layer doing any I/O.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Protocol

import attrs

from ._packets import Publish, PubRel


class PacketIdsExhausted(Exception):
    """All 65535 packet identifiers are in use."""


@attrs.define(eq=False)
class PacketIdAllocator:
    """Hands out packet identifiers 1..65535, wrapping, never one still in use ([MQTT-2.2.1-3])."""

    # a dict used as a set: an empty set takes 216 bytes, an empty dict 64 (one per client)
    _in_use: dict[int, None] = attrs.field(factory=dict)
    _next: int = 1

    def allocate(self) -> int:
        in_use = self._in_use
        if len(in_use) >= 65535:
            raise PacketIdsExhausted("all 65535 packet identifiers are in use")
        candidate = self._next
        while candidate in in_use:
            candidate = candidate % 65535 + 1
        in_use[candidate] = None
        self._next = candidate % 65535 + 1
        return candidate

    def reserve(self, packet_id: int) -> None:
        """Mark an id in use that was allocated by an earlier process (a restored session)."""
        self._in_use[packet_id] = None

    def release(self, packet_id: int) -> None:
        self._in_use.pop(packet_id, None)

    def in_use(self, packet_id: int) -> bool:
        return packet_id in self._in_use

    def __len__(self) -> int:
        return len(self._in_use)


def fingerprint(topic: str, payload: bytes) -> int:
    """What tells a re-sent inbound message from a new one under the same packet id: the same
    in every process (a session store keeps it), unlike ``hash()`` of a str."""
    # 56 bits: a store keeps it as a signed 64-bit integer
    return (
        zlib.crc32(payload, zlib.crc32(topic.encode())) << 24 | len(payload) & 0xFFFFFF
    )


@attrs.define(eq=False)
class ReleasedQoS2:
    """Inbound QoS 2 flows we completed with PUBCOMP that the server may not have seen completed.

    Section 4.3.3 forbids a server to re-send a PUBLISH once it has sent PUBREL, but Mosquitto
    2.0.11 does after a restart, and a connection cut can swallow our PUBCOMP: the server then
    still holds the flow. A DUP PUBLISH arriving for such an id, with the topic and payload of the
    message we delivered, is that message again: answered with PUBREC and not delivered
    ([MQTT-4.3.3-9]'s intent, exactly once), where forgetting the id at PUBREL would deliver it
    twice. Any other PUBLISH under the id is a new message (the server reused the id after our
    PUBCOMP reached it, [MQTT-2.2.1-3]).

    An entry goes once the server has processed a packet we sent after its PUBCOMP: the PINGRESP
    to a later PINGREQ (the connection sends one after every :data:`CONFIRM_EVERY` completions
    while none is outstanding; :meth:`confirm`). TCP delivers in order, so the flows the server
    has not seen completed are always the newest entries, and at most Receive Maximum of them
    (they count against it, [MQTT-3.3.4-9]): :meth:`trim` drops anything older.
    """

    #: packet id -> (fingerprint or None if unknown, completion number); oldest first
    entries: dict[int, tuple[int | None, int]] = attrs.field(factory=dict)
    #: completions so far (numbers the entries; a PINGREQ remembers it as its marker)
    count: int = 0

    def add(self, packet_id: int, fingerprint: int | None) -> None:
        entries = self.entries
        entries.pop(packet_id, None)  # completed again: newest once more
        entries[packet_id] = (fingerprint, self.count)
        self.count += 1

    def confirm(self, marker: int) -> list[int]:
        """The server has processed everything we sent before the PINGREQ that took ``marker``;
        returns the packet ids forgotten."""
        entries = self.entries
        gone = []
        while entries:
            packet_id, (_, number) = next(iter(entries.items()))
            if number >= marker:
                break
            del entries[packet_id]
            gone.append(packet_id)
        return gone

    def trim(self, limit: int) -> list[int]:
        """Keep the newest ``limit`` entries; returns the packet ids forgotten."""
        entries = self.entries
        gone = []
        while len(entries) > limit:
            packet_id = next(iter(entries))
            del entries[packet_id]
            gone.append(packet_id)
        return gone

    def __len__(self) -> int:
        return len(self.entries)


#: Completions after which the connection asks for a PINGRESP (confirming them) if none is pending.
CONFIRM_EVERY = 64


class SessionJournal(Protocol):
    """Told of every change to a :class:`SessionState`, in order (a durable store implements it)."""

    def outbound_stored(self, packet_id: int, packet: Publish | PubRel) -> None:
        """A PUBLISH was stored, or its PUBREL replaced it (same position in send order)."""

    def outbound_removed(self, packet_id: int) -> None:
        """The flow of ``packet_id`` ended."""

    def inbound_added(self, packet_id: int) -> None:
        """The application took inbound QoS 2 message ``packet_id``; its PUBREC follows."""

    def inbound_removed(self, packet_id: int) -> None:
        """PUBREL arrived for an inbound QoS 2 message."""

    def cleared(self) -> None:
        """The whole session was discarded."""

    def released_added(self, packet_id: int, fingerprint: int | None) -> None:
        """Inbound QoS 2 flow ``packet_id`` was completed (PUBCOMP); remembered with the
        fingerprint of its message until the server is known to have the PUBCOMP."""

    def released_removed(self, packet_ids: list[int]) -> None:
        """Completed inbound QoS 2 flows no longer remembered."""


@attrs.define(eq=False)
class SessionState:
    """Everything of a session that outlives one network connection."""

    #: Outbound QoS 1/2 PUBLISH awaiting PUBACK/PUBREC, or PUBREL awaiting PUBCOMP, in send order.
    outbound: dict[int, Publish | PubRel] = attrs.field(factory=dict)
    #: Inbound QoS 2 packet ids handed to the application (PUBREC due or sent), awaiting PUBREL.
    inbound_qos2: set[int] = attrs.field(factory=set)
    #: What the application was given under those ids, where known (not kept by the journal).
    inbound_fingerprints: dict[int, int] = attrs.field(factory=dict)
    #: Inbound QoS 2 flows completed, while the server may not know it.
    released: ReleasedQoS2 = attrs.field(factory=ReleasedQoS2)
    packet_ids: PacketIdAllocator = attrs.field(factory=PacketIdAllocator)
    journal: SessionJournal | None = None
    #: When outbound flows with a Message Expiry Interval expire (packet id -> the caller's
    #: clock), so that a resend carries what is left, or does not happen (not journaled).
    expires: dict[int, float] = attrs.field(factory=dict)
    #: Publishes an earlier process had accepted but not yet sent (a durable store's queue),
    #: keyed by their place in it, in order: the client sends them first.
    queued: list[tuple[int, Publish]] = attrs.field(factory=list)

    @classmethod
    def restore(
        cls,
        outbound: Iterable[tuple[int, Publish | PubRel]],
        inbound_qos2: Iterable[int],
        released: Iterable[tuple[int, int | None]] = (),
        queued: Iterable[tuple[int, Publish]] = (),
    ) -> SessionState:
        """Rebuild a session saved by an earlier process: ``outbound`` in send order,
        ``released`` (packet id, fingerprint) oldest first, ``queued`` in call order."""
        state = cls()
        for packet_id, packet in outbound:
            state.outbound[packet_id] = packet
            state.packet_ids.reserve(packet_id)
        state.inbound_qos2.update(inbound_qos2)
        for packet_id, mark in released:
            state.released.add(packet_id, mark)
        state.queued = list(queued)
        return state

    def store_outbound(self, packet_id: int, packet: Publish | PubRel) -> None:
        """Store a sent PUBLISH, or replace it in place by its PUBREL ([MQTT-4.3.3-3])."""
        self.outbound[packet_id] = packet
        if self.journal is not None:
            self.journal.outbound_stored(packet_id, packet)

    def finish_outbound(self, packet_id: int) -> None:
        """The flow ended: forget the packet and free its id."""
        del self.outbound[packet_id]
        self.packet_ids.release(packet_id)
        if self.expires:
            self.expires.pop(packet_id, None)
        if self.journal is not None:
            self.journal.outbound_removed(packet_id)

    def add_inbound(self, packet_id: int, fingerprint: int | None = None) -> None:
        self.inbound_qos2.add(packet_id)
        if fingerprint is not None:
            self.inbound_fingerprints[packet_id] = fingerprint
        if self.journal is not None:
            self.journal.inbound_added(packet_id)

    def discard_inbound(self, packet_id: int) -> None:
        if packet_id in self.inbound_qos2:
            self.inbound_qos2.discard(packet_id)
            self.inbound_fingerprints.pop(packet_id, None)
            if self.journal is not None:
                self.journal.inbound_removed(packet_id)

    def release_inbound(self, packet_id: int) -> bool:
        """PUBREL arrived: end the inbound flow ``packet_id`` and remember it as completed
        (:class:`ReleasedQoS2`). False if no such flow is known, neither open nor completed."""
        if packet_id in self.inbound_qos2:
            fingerprint = self.inbound_fingerprints.get(packet_id)
            self.discard_inbound(packet_id)
        elif packet_id in self.released.entries:
            # completed before, and PUBREL again: our PUBCOMP was lost
            fingerprint = self.released.entries[packet_id][0]
        else:
            return False
        self.released.add(packet_id, fingerprint)
        if self.journal is not None:
            self.journal.released_added(packet_id, fingerprint)
        return True

    def take_released(self, packet_id: int) -> int | None:
        """Forget completed flow ``packet_id`` (a PUBLISH came under its id); return the
        fingerprint of its message, if known."""
        mark = self.released.entries.pop(packet_id)[0]
        if self.journal is not None:
            self.journal.released_removed([packet_id])
        return mark

    def confirm_released(self, marker: int) -> None:
        """The server has our PUBCOMPs sent before the PINGREQ that took ``marker``."""
        self._forget_released(self.released.confirm(marker))

    def trim_released(self, limit: int) -> None:
        """Remember at most ``limit`` completed flows (see :class:`ReleasedQoS2`)."""
        self._forget_released(self.released.trim(limit))

    def forget_released(self) -> None:
        """The server kept no session: no completed flow of ours can be resent."""
        self._forget_released(self.released.trim(0))

    def _forget_released(self, gone: list[int]) -> None:
        if gone and self.journal is not None:
            self.journal.released_removed(gone)

    def clear(self) -> None:
        """Forget everything (the session was discarded)."""
        self.outbound.clear()
        self.expires.clear()
        self.inbound_qos2.clear()
        self.inbound_fingerprints.clear()
        self.released = ReleasedQoS2()
        self.packet_ids = PacketIdAllocator()
        if self.journal is not None:
            self.journal.cleared()
