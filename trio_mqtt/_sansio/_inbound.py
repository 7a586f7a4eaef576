"""InboundFlows: the server's QoS 1/2 messages from PUBLISH until our acknowledgement.

A message is handed to the application once: QoS 2 duplicates are recognised by the session's
inbound state ([MQTT-4.3.3-9]) and, after a completed flow, by a fingerprint of the message
(section 4.3.3). Acknowledgements leave in the order the messages arrived ([MQTT-4.6.0-2],
[MQTT-4.6.0-3]), whatever order the application takes them in. Topic aliases the server sets
are resolved here ([MQTT-3.3.2-10], section 3.3.2.3.4).
"""

from __future__ import annotations

import attrs

from .._enums import ReasonCode
from .._exceptions import RemoteProtocolError
from ._outgoing import Outgoing
from ._packets import PubAck, PubComp, Publish, PubRec
from ._session import CONFIRM_EVERY, SessionState, fingerprint
from ._traffic import Traffic


class _Unacked:
    """A message handed to the client, awaiting acknowledge()."""

    __slots__ = ("acked", "mark", "qos")

    def __init__(self, qos: int, mark: int) -> None:
        self.qos = qos
        self.acked = False
        self.mark = mark  # QoS 2: the message's fingerprint (see SessionState.released)


class InboundFlows:
    """The inbound QoS 1/2 flows of one connection."""

    __slots__ = (
        "_aliases",
        "_out",
        "_session",
        "_traffic",
        "_unacked",
        "_v5",
        "receive_maximum",
        "receive_maximum_exceeded",
        "topic_alias_maximum",
    )

    def __init__(
        self,
        session: SessionState,
        out: Outgoing,
        *,
        v5: bool,
        receive_maximum: int,
        topic_alias_maximum: int,
        traffic: Traffic | None = None,
    ) -> None:
        self._traffic = traffic if traffic is not None else Traffic()
        self._session = session
        self._out = out
        self._v5 = v5
        self.receive_maximum = receive_maximum
        self.topic_alias_maximum = topic_alias_maximum
        # The server sent more unacknowledged QoS 1/2 messages than our Receive Maximum: the
        # I/O layer hands over the messages received, then ends the connection (0x93).
        self.receive_maximum_exceeded = False
        # Messages handed to the client, awaiting acknowledge(), in arrival order.
        self._unacked: dict[int, _Unacked] = {}
        self._aliases: dict[int, str] | None = (
            None  # made by the first alias the server sets
        )

    def on_publish(self, packet: Publish) -> Publish | None:
        """The message to hand to the application, or ``None`` (a duplicate: answered here).

        Raises:
            RemoteProtocolError: an invalid topic alias, or a packet id reused too early.
        """
        alias = packet.properties.topic_alias
        if alias is not None:
            packet = self._resolve_alias(packet, alias)
        qos = packet.qos
        if qos == 0:
            return packet
        if qos == 1:
            self._traffic.received_qos1 += 1
        else:
            self._traffic.received_qos2 += 1
        packet_id = packet.packet_id
        assert packet_id is not None
        unacked = self._unacked
        if packet_id in unacked:
            if unacked[packet_id].qos == qos == 2:
                return None  # a QoS 2 resend before we acknowledged: ours is still on its way
            raise RemoteProtocolError(
                f"PUBLISH reused packet id {packet_id} before we acknowledged it"
            )  # [MQTT-2.2.1-3] on the sender's side
        session = self._session
        inbound = session.inbound_qos2
        if qos == 2:
            if packet_id in inbound:
                # A redelivery of a message already handed over: PUBREC again, never the message
                # again ([MQTT-4.3.3-9]: the receiver must not deliver it twice).
                self._out.send(PubRec(packet_id=packet_id))
                return None
            mark = fingerprint(packet.topic, packet.payload)
            released = session.released.entries
            if released and packet_id in released:
                known = session.take_released(packet_id)
                if packet.dup and known == mark:
                    # The server re-sends a flow we completed (our PUBCOMP was lost, or the
                    # server forgot it: section 4.3.3 forbids the resend after PUBREL). It is
                    # the message delivered already: open the flow again, do not deliver.
                    session.add_inbound(packet_id, mark)
                    self._out.send(PubRec(packet_id=packet_id))
                    return None
                # anything else under the id is a new message: the server had our PUBCOMP
        else:
            mark = 0
        limit = self.receive_maximum
        if (
            self._v5  # 3.1.1 has no way to announce it: never enforce it there
            and len(unacked) + len(inbound) >= limit
            and (
                len(unacked) + sum(1 for p in inbound if p not in unacked)
                >= limit  # an acknowledged QoS 2 id waiting for its PUBREL is in both
            )
        ):
            # [MQTT-3.3.4-9] forbids it; the client ends the connection with 0x93 (section
            # 3.3.4), but only after the I/O layer has handled this batch (see
            # receive_maximum_exceeded): what the batch acknowledges goes out first.
            self.receive_maximum_exceeded = True
        unacked[packet_id] = _Unacked(qos, mark)
        return packet

    def _resolve_alias(self, packet: Publish, alias: int) -> Publish:
        if alias > self.topic_alias_maximum:
            raise RemoteProtocolError(
                f"topic alias {alias} exceeds our maximum {self.topic_alias_maximum}",
                reason_code=ReasonCode.TOPIC_ALIAS_INVALID,
            )  # [MQTT-3.3.2-10]
        if packet.topic:
            if self._aliases is None:
                self._aliases = {}
            self._aliases[alias] = packet.topic
            return packet
        topic = self._aliases.get(alias) if self._aliases is not None else None
        if topic is None:
            raise RemoteProtocolError(
                f"topic alias {alias} was never set"
            )  # section 3.3.2.3.4
        return attrs.evolve(packet, topic=topic)

    def acknowledge(self, packet_id: int) -> None:
        """The application has taken message ``packet_id``: queue its PUBACK or PUBREC, after
        those of every message that arrived before it ([MQTT-4.6.0-2], [MQTT-4.6.0-3]).
        Unknown or repeated ids are ignored (an ack for an earlier connection)."""
        entry = self._unacked.get(packet_id)
        if entry is None:
            return
        entry.acked = True
        if entry.qos == 2:
            # The application has it: from now on a redelivery is answered with PUBREC, never
            # handed over again ([MQTT-4.3.3-9]), even if the connection drops before the PUBREC
            # (held back until those of earlier messages are due) is sent. Stored first.
            self._session.add_inbound(packet_id, entry.mark)
        unacked = self._unacked
        while unacked:
            first = next(iter(unacked))
            entry = unacked[first]
            if not entry.acked:
                break
            del unacked[first]
            if entry.qos == 1:
                self._out.send(PubAck(packet_id=first))  # [MQTT-4.3.2-4]
            else:
                self._out.send(PubRec(packet_id=first))  # [MQTT-4.3.3-9]

    def on_pubrel(self, packet_id: int) -> bool:
        """PUBREL for inbound QoS 2 ``packet_id``: queue PUBCOMP ([MQTT-4.3.3-11]); True
        when enough completed flows await the server's confirmation (a PINGRESP: see
        :class:`KeepAlive`) that the caller should ask for it."""
        session = self._session
        if not session.release_inbound(packet_id):
            code = (
                ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
                if self._v5
                else ReasonCode.SUCCESS
            )
            self._out.send(PubComp(packet_id=packet_id, reason_code=code))
            return False
        self._out.send(PubComp(packet_id=packet_id))
        confirm = len(session.released) >= CONFIRM_EVERY
        session.trim_released(self.receive_maximum)
        return confirm
