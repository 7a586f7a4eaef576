"""OutboundFlows: our QoS 1/2 messages from PUBLISH until the server's acknowledgement.

Flow control (section 4.9): at most the server's Receive Maximum of them are in flight; the
caller waits for a free slot (:class:`QuotaExceeded`). After CONNACK the session's
unacknowledged PUBLISH (DUP=1, [MQTT-3.3.1-1]) and PUBREL are resent in their original order,
before anything new ([MQTT-4.4.0-1]), as the quota allows and a chunk at a time
(:data:`RESEND_CHUNK`), so that a session of 10,000 large messages is not copied into one
buffer at reconnect.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable
from typing import Final

import attrs

from .._enums import QoS, ReasonCode
from .._exceptions import LocalProtocolError, RemoteProtocolError
from ._aliases import OutboundAliases
from ._codec import encode_publish, new_publish
from ._events import Event, PublishAcknowledged, PublishExpired
from ._limits import QuotaExceeded, ServerLimits
from ._outgoing import Outgoing
from ._packets import Packet, PubAck, PubComp, Publish, PubRec, PubRel
from ._properties import Properties
from ._session import SessionState

_NO_BACKLOG: Final[deque[int]] = deque(maxlen=0)  # shared and always empty
#: How many bytes of resent packets are encoded ahead of the network.
RESEND_CHUNK: Final = 256 * 1024


class OutboundFlows:
    """The outbound QoS 1/2 flows of one connection of a session."""

    __slots__ = (
        "_backlog",
        "_out",
        "_resend_dup",
        "_session",
        "_v5",
        "aliases",
        "blamed",
        "inflight",
        "limit",
    )

    def __init__(self, session: SessionState, out: Outgoing, *, v5: bool) -> None:
        self._session = session
        self._out = out
        self._v5 = v5
        self.limit = 65535  # the server's Receive Maximum
        self.inflight = 0  # flows counted against it
        # the session's flows still to be (re)sent once the quota allows, in order
        self._backlog: deque[int] = _NO_BACKLOG
        self._resend_dup = True
        #: the flow an acknowledgement that broke the protocol named (see _poison)
        self.blamed: int | None = None
        #: the topic aliases we set, when the application asked for them (see _aliases)
        self.aliases: OutboundAliases | None = None

    @property
    def quota_available(self) -> bool:
        """Whether another QoS 1/2 PUBLISH may be sent now ([MQTT-4.9.0-2])."""
        return not self._backlog and self.inflight < self.limit

    @property
    def resending(self) -> bool:
        """Whether resends wait for quota or for the buffer to drain."""
        return bool(self._backlog)

    def oldest_sent(self) -> int | None:
        """The packet id of the oldest flow sent on this connection and not yet acknowledged."""
        outbound = self._session.outbound
        if not outbound:
            return None
        packet_id = next(iter(outbound))
        return None if packet_id in self._backlog else packet_id

    def _unexpected(
        self, what: str, packet_id: int, expected: str
    ) -> RemoteProtocolError:
        """The protocol error for an acknowledgement of the wrong kind; when it names a flow
        of ours (RabbitMQ's PUBACK to a QoS 2 PUBLISH), that flow is :attr:`blamed`."""
        if packet_id in self._session.outbound:
            self.blamed = packet_id
        return RemoteProtocolError(
            f"{what} for packet id {packet_id}, which has no {expected} in flight"
        )

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
        server: ServerLimits,
        expires_at: float | None = None,
    ) -> int | None:
        """Queue a PUBLISH within the server's limits (see :meth:`MQTTConnection.publish`)."""
        if qos > server.maximum_qos:
            raise LocalProtocolError(
                f"QoS {int(qos)} exceeds the server's Maximum QoS {int(server.maximum_qos)}",
                reason_code=ReasonCode.QOS_NOT_SUPPORTED,
            )  # section 3.2.2.3.4: the client must not exceed Maximum QoS
        if retain and not server.retain_available:
            raise LocalProtocolError(
                "the server does not support retained messages",
                reason_code=ReasonCode.RETAIN_NOT_SUPPORTED,
            )  # section 3.2.2.3.5
        out = self._out
        aliases = self.aliases
        if not qos:
            wire_topic, wire_props = topic, properties
            if aliases is not None:
                wire_topic, wire_props, alias, known = aliases.wire(topic, properties)
            data = encode_publish(
                wire_topic, payload, 0, retain, False, None, wire_props, self._v5
            )
            out.check_size(data)
            out.chunks.append(
                data
            )  # Outgoing.append(), inline: the hot path of publishing
            out.size += len(data)
            if aliases is not None:
                aliases.commit(topic, alias, known)
            return None
        if self._backlog or self.inflight >= self.limit:
            raise QuotaExceeded
        session = self._session
        packet_id, packet = out.send_numbered(
            session.packet_ids,
            lambda pid: new_publish(
                topic=topic, payload=payload, qos=qos, retain=retain, dup=False,
                packet_id=pid, properties=properties,
            ),
            wire=self._aliased if aliases is not None else None,
        )  # fmt: skip
        assert isinstance(packet, Publish)
        session.store_outbound(packet_id, packet)  # with its topic: resends carry it
        if expires_at is not None:
            session.expires[packet_id] = expires_at
        self.inflight += 1
        return packet_id

    def _aliased(self, packet: Packet) -> tuple[Packet, Callable[[], None]]:
        """``packet`` as sent under a topic alias (the session keeps it as it was), and what
        records the alias once it is queued."""
        aliases = self.aliases
        assert aliases is not None
        assert isinstance(packet, Publish)
        topic, properties, alias, known = aliases.wire(packet.topic, packet.properties)
        commit = functools.partial(aliases.commit, packet.topic, alias, known)
        return attrs.evolve(packet, topic=topic, properties=properties), commit

    def resume(
        self, *, limit: int, session_present: bool, now: float = 0.0
    ) -> list[Event]:
        """A CONNACK accepted the connection: resend the session's flows (see the module
        docstring). Returns the flows it ends: without a session, a PUBREL awaiting PUBCOMP is
        moot (PUBREC already told us the server owns the message)."""
        self.limit = limit
        session = self._session
        events: list[Event] = []
        if not session_present:
            for packet_id, stored in list(session.outbound.items()):
                if isinstance(stored, PubRel):
                    session.finish_outbound(packet_id)
                    events.append(PublishAcknowledged(packet_id, ReasonCode.SUCCESS))
        if session.expires:
            events += self._expire(now)
        self.inflight = 0
        # Without a session the PUBLISHes go again as new messages under their ids: the
        # application's publish() is still waiting for them. (A shared empty deque when there
        # is nothing to resend: 760 bytes per idle client.)
        self._backlog = deque(session.outbound) if session.outbound else _NO_BACKLOG
        self._resend_dup = session_present
        self.resend()
        return events

    def _expire(self, now: float) -> list[Event]:
        """Before resending: end the flows whose Message Expiry Interval has passed, and give
        the others what is left of it (section 3.3.2.3.3; whole seconds, rounded up)."""
        session = self._session
        events: list[Event] = []
        for packet_id, deadline in list(session.expires.items()):
            stored = session.outbound.get(packet_id)
            if not isinstance(stored, Publish):
                continue  # PUBREL: the server has the message; it is not resent
            left = deadline - now
            if left <= 0:
                session.finish_outbound(packet_id)
                events.append(PublishExpired(packet_id))
            else:
                properties = attrs.evolve(
                    stored.properties, message_expiry_interval=math.ceil(left)
                )
                session.store_outbound(
                    packet_id, attrs.evolve(stored, properties=properties)
                )
        return events

    def resend(self) -> None:
        """Queue the next chunk of resends, as far as the quota allows."""
        backlog = self._backlog
        outbound = self._session.outbound
        dup = self._resend_dup
        out = self._out
        while backlog and self.inflight < self.limit and out.size < RESEND_CHUNK:
            packet_id = backlog.popleft()
            stored = outbound.get(packet_id)
            if stored is None:
                continue
            if isinstance(stored, Publish) and stored.dup is not dup:
                stored = attrs.evolve(stored, dup=dup)
            out.send(stored)
            self.inflight += 1

    def _finish(self, packet_id: int) -> None:
        self._session.finish_outbound(packet_id)
        self.inflight -= 1
        if self._backlog:
            self.resend()

    def on_puback(self, packet: PubAck) -> list[Event]:
        stored = self._session.outbound.get(packet.packet_id)
        if not (isinstance(stored, Publish) and stored.qos == 1):
            raise self._unexpected("PUBACK", packet.packet_id, "QoS 1 PUBLISH")
        self._finish(packet.packet_id)
        return [
            PublishAcknowledged(packet.packet_id, packet.reason_code, packet.properties)
        ]

    def on_pubrec(self, packet: PubRec) -> list[Event]:
        packet_id = packet.packet_id
        stored = self._session.outbound.get(packet_id)
        if isinstance(stored, PubRel):
            self._out.send(stored)  # a repeated PUBREC: answer with PUBREL again
            return []
        if not (isinstance(stored, Publish) and stored.qos == 2):
            raise self._unexpected("PUBREC", packet_id, "QoS 2 PUBLISH")
        if packet.reason_code.is_failure:
            self._finish(
                packet_id
            )  # section 4.3.3: the flow ends; the id is free again
            return [
                PublishAcknowledged(packet_id, packet.reason_code, packet.properties)
            ]
        pubrel = PubRel(packet_id=packet_id)
        # Keep send order: the PUBREL replaces the PUBLISH in place ([MQTT-4.3.3-3]).
        self._session.store_outbound(packet_id, pubrel)
        self._out.send(pubrel)
        return []

    def on_pubcomp(self, packet: PubComp) -> list[Event]:
        if not isinstance(self._session.outbound.get(packet.packet_id), PubRel):
            raise self._unexpected("PUBCOMP", packet.packet_id, "PUBREL")
        self._finish(packet.packet_id)
        return [
            PublishAcknowledged(packet.packet_id, packet.reason_code, packet.properties)
        ]
