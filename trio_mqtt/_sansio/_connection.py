"""MQTTConnection: the client side of one MQTT network connection, without I/O.

Theory of operation. Commands (:meth:`connect`, :meth:`publish`, :meth:`subscribe`, ...) validate
against the negotiated limits, encode, and append to an outbound buffer that the I/O layer drains
with :meth:`data_to_send`. Received bytes go to :meth:`receive_data`, which decodes them and
dispatches each packet through :data:`_HANDLERS`, a table from (state, packet type) to handler
(PUBLISH while connected, the hot case, is dispatched inline): a packet the table has no entry
for is a protocol error. Handlers queue the acknowledgements the
spec requires (PUBACK, PUBREC, PUBREL, PUBCOMP, in the order the packets arrived,
[MQTT-4.6.0-2]..[MQTT-4.6.0-4]) and return events. Time is an argument (``now``); keep alive is
expressed as a deadline for the I/O layer to sleep until.

On a :class:`RemoteProtocolError` a DISCONNECT with its reason code (MQTT 5) is queued before the
exception propagates ([MQTT-4.13.1-1]); the I/O layer sends it and closes.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from .._enums import ProtocolVersion, QoS, ReasonCode
from .._exceptions import LocalProtocolError, RemoteProtocolError
from ._codec import (
    MAX_PACKET_SIZE,
    PacketReader,
    encode_packet,
    encode_publish,
    new_publish,
)
from ._events import (
    AuthChallenged,
    ConnectionAccepted,
    ConnectionRefused,
    DisconnectReceived,
    Event,
    KeepAliveExpired,
    PongReceived,
    PublishAcknowledged,
    ReauthenticationCompleted,
    SubscribeAcknowledged,
    UnsubscribeAcknowledged,
)
from ._packets import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
)
from ._properties import EMPTY_PROPERTIES, Properties
from ._session import CONFIRM_EVERY, SessionState, fingerprint
from ._wire import Buffer


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


_NO_BACKLOG: Final[deque[int]] = deque(maxlen=0)  # shared and always empty
#: How many bytes of resent packets are encoded ahead of the network.
RESEND_CHUNK: Final = 256 * 1024
_Handler = Callable[["MQTTConnection", Packet, float], Sequence[Event]]


class MQTTConnection:
    """The client protocol machine for one network connection.

    Args:
        version: the protocol version spoken.
        session: the session state, shared across connections of one session.
        receive_maximum: how many inbound QoS 1/2 messages may be unacknowledged (sent in CONNECT).
        max_packet_size: the largest packet accepted from the server (sent in CONNECT).
        topic_alias_maximum: how many inbound topic aliases the server may use (sent in CONNECT).
    """

    __slots__ = (
        "_backlog",
        "_clean_start",
        "_inbound_aliases",
        "_inflight",
        "_last_received",
        "_last_sent",
        "_out",
        "_out_size",
        "_pings",
        "_pong_deadline",
        "_reader",
        "_reauthenticating",
        "_requests",
        "_resend_dup",
        "_unacked",
        "_v5",
        "auth_method",
        "keep_alive",
        "receive_maximum",
        "receive_maximum_exceeded",
        "server",
        "session",
        "state",
        "topic_alias_maximum",
        "version",
    )

    def __init__(
        self,
        *,
        version: ProtocolVersion = ProtocolVersion.V5,
        session: SessionState | None = None,
        receive_maximum: int = 65535,
        max_packet_size: int = MAX_PACKET_SIZE,
        topic_alias_maximum: int = 0,
    ) -> None:
        self.version = version
        self.session = session if session is not None else SessionState()
        self.state = ConnectionState.IDLE
        self.server = ServerLimits()
        self.keep_alive = 0.0
        self.receive_maximum = receive_maximum
        # The server sent more unacknowledged QoS 1/2 messages than our Receive Maximum: the
        # I/O layer hands over the messages received, then calls end_overrun().
        self.receive_maximum_exceeded = False
        self.topic_alias_maximum = topic_alias_maximum
        self._reader = PacketReader(version=version, max_packet_size=max_packet_size)
        self._out: list[bytes] = []
        self._out_size = 0  # bytes in _out
        self._last_sent = 0.0
        self._last_received = 0.0
        self._clean_start = True  # what CONNECT asked for
        self._pong_deadline: float | None = None
        # The PINGREQs awaiting PINGRESP, oldest first: the session's completion count when each
        # was sent (a PINGRESP confirms the inbound QoS 2 flows completed before it).
        self._pings: tuple[int, ...] = ()
        # Outbound QoS 1/2 flows counted against the server's Receive Maximum, and the session's
        # flows still to be (re)sent once the quota allows, in order ([MQTT-4.9.0-2]).
        self._inflight = 0
        self._backlog: deque[int] = _NO_BACKLOG
        self._resend_dup = True
        # Inbound QoS 1/2 messages handed to the client, awaiting acknowledge(), in arrival order:
        # packet id -> [qos, acknowledged, fingerprint (QoS 2)]. Acks leave in this order
        # ([MQTT-4.6.0-2], [MQTT-4.6.0-3]).
        self._unacked: dict[int, list[int]] = {}
        self._inbound_aliases: dict[int, str] = {}
        # SUBSCRIBE/UNSUBSCRIBE in flight on this connection: packet id -> number of filters.
        self._requests: dict[int, int] = {}
        # Enhanced authentication (section 4.12): the method CONNECT named, and whether a
        # re-authentication we started is under way.
        self.auth_method: str | None = None
        self._reauthenticating = False
        self._v5 = version is ProtocolVersion.V5

    # -- commands ------------------------------------------------------------------------------

    def _send(self, packet: Packet) -> None:
        data = encode_packet(packet, self.version)
        self._out.append(data)
        self._out_size += len(data)

    def connect(self, packet: Connect, *, now: float) -> None:
        """Queue CONNECT. The keep alive interval comes from it (whole seconds)."""
        if self.state is not ConnectionState.IDLE:
            raise LocalProtocolError(
                "CONNECT was already sent on this connection"
            )  # [MQTT-3.1.0-2]
        if packet.protocol_version is not self.version:
            raise ValueError(
                "the CONNECT's protocol version differs from the connection's"
            )
        self.keep_alive = float(packet.keep_alive)
        self.auth_method = packet.properties.authentication_method if self._v5 else None
        self._clean_start = packet.clean_start
        self._send(packet)
        self._last_sent = self._last_received = now
        self.state = ConnectionState.CONNECTING

    def _require_connected(self) -> None:
        if self.state is not ConnectionState.CONNECTED:
            raise LocalProtocolError(
                f"the connection is {self.state.value}, not connected"
            )

    @property
    def send_quota_available(self) -> bool:
        """Whether another QoS 1/2 PUBLISH may be sent now (Receive Maximum, section 4.9)."""
        return not self._backlog and self._inflight < self.server.receive_maximum

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: QoS = QoS.AT_MOST_ONCE,
        retain: bool = False,
        properties: Properties = EMPTY_PROPERTIES,
    ) -> int | None:
        """Queue a PUBLISH. Returns its packet id (``None`` for QoS 0).

        Raises:
            QuotaExceeded: QoS 1/2 with the server's Receive Maximum reached; wait for an ack.
            LocalProtocolError: not connected, or the server's limits forbid it.
            ValueError: the packet cannot be encoded.
        """
        self._require_connected()
        server = self.server
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
        if not qos:
            data = encode_publish(
                topic, payload, 0, retain, False, None, properties, self._v5
            )
            self._check_size(data)
            self._out.append(data)
            self._out_size += len(data)
            return None
        if self._backlog or self._inflight >= server.receive_maximum:
            raise QuotaExceeded
        packet_id, packet = self._queue_with_packet_id(
            lambda pid: new_publish(
                topic=topic,
                payload=payload,
                qos=qos,
                retain=retain,
                dup=False,
                packet_id=pid,
                properties=properties,
            )
        )
        assert isinstance(packet, Publish)
        self.session.store_outbound(packet_id, packet)
        self._inflight += 1
        return packet_id

    def acknowledge(self, packet_id: int) -> None:
        """The application has taken the inbound QoS 1/2 message ``packet_id``: queue its PUBACK or
        PUBREC, after those of every message that arrived before it ([MQTT-4.6.0-2],
        [MQTT-4.6.0-3]). Unknown or repeated ids are ignored (an ack for an earlier connection)."""
        entry = self._unacked.get(packet_id)
        if entry is None or self.state is not ConnectionState.CONNECTED:
            return
        entry[1] = 1
        if entry[0] == 2:
            # The application has it: from now on a redelivery is answered with PUBREC, never
            # handed over again ([MQTT-4.3.3-9]), even if the connection drops before the PUBREC
            # (held back until those of earlier messages are due) is sent. Stored first.
            self.session.add_inbound(packet_id, entry[2])
        unacked = self._unacked
        while unacked:
            first = next(iter(unacked))
            qos, done, _ = unacked[first]
            if not done:
                break
            del unacked[first]
            if qos == 1:
                self._send(PubAck(packet_id=first))  # [MQTT-4.3.2-4]
            else:
                self._send(PubRec(packet_id=first))  # [MQTT-4.3.3-9]

    def _queue_with_packet_id(
        self, make: Callable[[int], Packet]
    ) -> tuple[int, Packet]:
        """Allocate a packet id, build and encode the packet, queue it; on any failure the id is
        released again, so a refused command never leaks an id ([MQTT-2.2.1-3])."""
        ids = self.session.packet_ids
        packet_id = ids.allocate()
        try:
            packet = make(packet_id)
            data = encode_packet(packet, self.version)
            self._check_size(data)
        except BaseException:
            ids.release(packet_id)
            raise
        self._out.append(data)
        self._out_size += len(data)
        return packet_id, packet

    def _check_size(self, data: bytes) -> None:
        if len(data) > self.server.maximum_packet_size:
            # [MQTT-3.1.2-24] never send a packet larger than the server's Maximum Packet Size.
            raise LocalProtocolError(
                f"a {len(data)}-byte packet exceeds the server's Maximum Packet Size of {self.server.maximum_packet_size}",
                reason_code=ReasonCode.PACKET_TOO_LARGE,
            )

    def subscribe(
        self,
        requests: Sequence[SubscriptionRequest],
        properties: Properties = EMPTY_PROPERTIES,
    ) -> int:
        """Queue SUBSCRIBE; returns its packet id."""
        self._require_connected()
        packet_id = self._queue_with_packet_id(
            lambda pid: Subscribe(
                packet_id=pid, subscriptions=tuple(requests), properties=properties
            )
        )[0]
        self._requests[packet_id] = len(requests)
        return packet_id

    def unsubscribe(
        self, topic_filters: Sequence[str], properties: Properties = EMPTY_PROPERTIES
    ) -> int:
        """Queue UNSUBSCRIBE; returns its packet id."""
        self._require_connected()
        packet_id = self._queue_with_packet_id(
            lambda pid: Unsubscribe(
                packet_id=pid, topic_filters=tuple(topic_filters), properties=properties
            )
        )[0]
        self._requests[packet_id] = len(topic_filters)
        return packet_id

    def auth(
        self,
        reason_code: ReasonCode,
        data: bytes | None = None,
        properties: Properties = EMPTY_PROPERTIES,
    ) -> None:
        """Queue AUTH with the negotiated method: ``CONTINUE_AUTHENTICATION`` answers an
        :class:`AuthChallenged`; ``RE_AUTHENTICATE`` starts a re-authentication on a live
        connection (section 4.12.1).

        Raises:
            LocalProtocolError: no Authentication Method was sent in CONNECT ([MQTT-4.12.1-1]),
                or the reason code does not fit the state.
        """
        if self.auth_method is None:
            raise LocalProtocolError(
                "AUTH needs the Authentication Method of CONNECT"
            )  # [MQTT-4.12.1-1], [MQTT-3.15.2-1]
        if reason_code is ReasonCode.RE_AUTHENTICATE:
            self._require_connected()
            if self._reauthenticating:
                raise LocalProtocolError("a re-authentication is already under way")
            self._reauthenticating = True
        elif reason_code is ReasonCode.CONTINUE_AUTHENTICATION:
            if not (self.state is ConnectionState.CONNECTING or self._reauthenticating):
                raise LocalProtocolError("no authentication exchange is under way")
        else:
            raise LocalProtocolError(
                f"a client cannot send AUTH {reason_code.describe()}"
            )
        self._send(
            Auth(
                reason_code=reason_code,
                properties=attrs.evolve(
                    properties,
                    authentication_method=self.auth_method,  # [MQTT-4.12.0-5]
                    authentication_data=data,
                ),
            )
        )

    def disconnect(
        self,
        reason_code: ReasonCode = ReasonCode.NORMAL_DISCONNECTION,
        properties: Properties = EMPTY_PROPERTIES,
    ) -> None:
        """Queue DISCONNECT and close the connection ([MQTT-3.14.4-1])."""
        if self.state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
            self._send(
                Disconnect(
                    reason_code=reason_code,
                    properties=properties if self._v5 else EMPTY_PROPERTIES,
                )
            )
        self.state = ConnectionState.CLOSED

    def connection_lost(self) -> None:
        """The network connection is gone (or closed): the machine is CLOSED, and the
        SUBSCRIBE/UNSUBSCRIBE requests in flight on it died with it; their packet ids are free
        again (such requests are never resent: the client asks again on the next connection).
        Idempotent."""
        self.state = ConnectionState.CLOSED
        ids = self.session.packet_ids
        for packet_id in self._requests:
            ids.release(packet_id)
        self._requests.clear()

    @property
    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return anything."""
        return bool(self._out)

    @property
    def buffered_size(self) -> int:
        """How many bytes :meth:`data_to_send` would return (for the caller's backpressure)."""
        return self._out_size

    def data_to_send(self, *, now: float) -> bytes:
        """Drain the outbound buffer; ``now`` is when the I/O layer sends it (keep alive)."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_size = 0
        self._last_sent = now
        if self._backlog and self.state is _CONNECTED:
            self._resend()  # the next chunk of the session's resends (has_data_to_send)
        return data

    def end_overrun(self) -> RemoteProtocolError:
        """The server overran our Receive Maximum (``receive_maximum_exceeded``): queue
        DISCONNECT 0x93 after whatever the received messages made us queue (acknowledgements
        of redelivered ones: the next connection then makes progress, where failing at the
        excess packet lost them and a broker that always overruns starved delivery), close,
        and return the error to raise."""
        if self._v5 and self.state is _CONNECTED:
            self._send(Disconnect(reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED))
        self.state = ConnectionState.CLOSED
        return RemoteProtocolError(
            "more unacknowledged QoS 1/2 messages than our Receive Maximum",
            reason_code=ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
        )

    # -- keep alive ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` next has work: the PINGRESP deadline, else the next
        PINGREQ (a keep alive interval after the last packet sent or received, whichever is
        older)."""
        if self.state is not ConnectionState.CONNECTED or not self.keep_alive:
            return None
        if self._pong_deadline is not None:
            return self._pong_deadline
        last = self._last_sent
        if self._last_received < last:
            last = self._last_received
        return last + self.keep_alive

    def handle_timeout(self, *, now: float, reading: bool = True) -> list[Event]:
        """Queue PINGREQ after a keep alive interval without sending anything ([MQTT-3.1.2-20]),
        or without receiving anything: a client that keeps publishing to a broker gone silent
        (a black hole) must notice too. Report a broker that did not answer within half the
        interval after that, i.e. at most 1.5x keep alive after the last packet it sent us
        (section 3.1.2.10: the client closes the connection).

        ``reading=False``: the I/O layer is not reading (it waits for the application to take
        messages), so a PINGRESP may be waiting unread: an overdue one is not held against the
        broker, and PINGREQ goes on every keep alive interval so that the broker keeps the
        connection ([MQTT-3.1.2-24])."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self._pong_deadline is not None:
            if reading:
                self.state = ConnectionState.CLOSED
                return [KeepAliveExpired()]
            self._pong_deadline = None
            self._last_received = now  # not reading: silence proves nothing
            if now < self._last_sent + self.keep_alive:
                return []
        self._ping()
        self._pong_deadline = now + self.keep_alive / 2
        return []

    def _ping(self) -> None:
        self._send(PingReq())
        self._pings += (self.session.released.count,)

    # -- input -----------------------------------------------------------------------------------

    def receive_data(self, data: Buffer, *, now: float) -> list[Event]:
        """Decode received bytes; returns the events they complete.

        Raises:
            RemoteProtocolError: the server broke the protocol; a DISCONNECT with its reason code
                is already queued (MQTT 5), and the connection is closed.
        """
        self._last_received = now
        try:
            packets = self._reader.feed(data)
            events: list[Event] = []
            for packet in packets:
                if type(packet) is Publish and self.state is _CONNECTED:
                    # the hot one, without the table's tuple key and a list per packet
                    event = self._on_publish(packet)
                    if event is not None:
                        events.append(event)
                    continue
                handler = _HANDLERS.get((self.state, type(packet)))
                if handler is None:
                    raise RemoteProtocolError(
                        f"unexpected {type(packet).__name__} while {self.state.value}"
                    )
                events.extend(handler(self, packet, now))
            return events
        except RemoteProtocolError as exc:
            if (
                self.state is ConnectionState.CONNECTED
                or self.state is ConnectionState.CONNECTING
            ) and self._v5:
                self._send(Disconnect(reason_code=exc.reason_code))
            self.state = ConnectionState.CLOSED
            raise

    def _on_connack(self, packet: ConnAck, now: float) -> list[Event]:
        if packet.reason_code.is_failure:
            self.state = ConnectionState.CLOSED
            return [ConnectionRefused(packet)]
        if packet.session_present and self._clean_start:
            # A broker that resumes a session we asked it to discard: our state and its
            # disagree, so neither side's resends can be trusted ([MQTT-3.2.2-4]).
            raise RemoteProtocolError(
                "CONNACK says a session is present although CONNECT asked for a clean start"
            )
        self.state = ConnectionState.CONNECTED
        self.server = ServerLimits.from_connack(packet.properties)
        if self.server.server_keep_alive is not None:
            self.keep_alive = float(self.server.server_keep_alive)  # [MQTT-3.2.2-21]
        events: list[Event] = [ConnectionAccepted(packet)]
        session = self.session
        if not packet.session_present:
            # Section 4.1: the server kept no session, so no inbound QoS 2 flow is open there, and
            # a PUBREL awaiting PUBCOMP is moot: PUBREC already told us the server owns it.
            for packet_id in list(session.inbound_qos2):
                session.discard_inbound(packet_id)
            session.forget_released()
            for packet_id, stored in list(session.outbound.items()):
                if isinstance(stored, PubRel):
                    session.finish_outbound(packet_id)
                    events.append(PublishAcknowledged(packet_id, ReasonCode.SUCCESS))
        self._inflight = 0
        # [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP=1, [MQTT-3.3.1-1]) and PUBREL in their
        # original order, before anything new. Without a session the PUBLISHes go again as new
        # messages under their ids: the application's publish() is still waiting for them.
        # (a shared empty deque when there is nothing to resend: 760 bytes per idle client)
        self._backlog = deque(session.outbound) if session.outbound else _NO_BACKLOG
        self._resend_dup = packet.session_present
        self._resend()
        return events

    def _resend(self) -> None:
        backlog = self._backlog
        session = self.session
        dup = self._resend_dup
        limit = self.server.receive_maximum
        # Encoded a chunk at a time (data_to_send asks for the next): a session of 10,000
        # large messages is not copied into one buffer at reconnect.
        while backlog and self._inflight < limit and self._out_size < RESEND_CHUNK:
            packet_id = backlog.popleft()
            stored = session.outbound.get(packet_id)
            if stored is None:
                continue
            if isinstance(stored, Publish) and stored.dup is not dup:
                stored = attrs.evolve(stored, dup=dup)
            self._send(stored)
            self._inflight += 1

    def _on_publish(self, packet: Publish) -> Publish | None:
        alias = packet.properties.topic_alias
        if alias is not None:
            if alias > self.topic_alias_maximum:
                raise RemoteProtocolError(
                    f"topic alias {alias} exceeds our maximum {self.topic_alias_maximum}",
                    reason_code=ReasonCode.TOPIC_ALIAS_INVALID,
                )  # [MQTT-3.3.2-10]
            if packet.topic:
                self._inbound_aliases[alias] = packet.topic
            else:
                topic = self._inbound_aliases.get(alias)
                if topic is None:
                    raise RemoteProtocolError(
                        f"topic alias {alias} was never set"
                    )  # section 3.3.2.3.4
                packet = attrs.evolve(packet, topic=topic)
        qos = packet.qos
        if qos == 0:
            return packet
        packet_id = packet.packet_id
        assert packet_id is not None
        unacked = self._unacked
        if packet_id in unacked:
            if unacked[packet_id][0] == qos == 2:
                return None  # a QoS 2 resend before we acknowledged: ours is still on its way
            raise RemoteProtocolError(
                f"PUBLISH reused packet id {packet_id} before we acknowledged it"
            )  # [MQTT-2.2.1-3] on the sender's side
        session = self.session
        inbound = session.inbound_qos2
        if qos == 2:
            if packet_id in inbound:
                # A redelivery of a message already handed over: PUBREC again, never the message
                # again ([MQTT-4.3.3-9]: the receiver must not deliver it twice).
                self._send(PubRec(packet_id=packet_id))
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
                    self._send(PubRec(packet_id=packet_id))
                    return None
                # anything else under the id is a new message: the server had our PUBCOMP
        else:
            mark = 0
        if (
            self._v5  # 3.1.1 has no way to announce it: never enforce it there
            and len(unacked) + len(inbound) >= self.receive_maximum
            and (
                len(unacked) + sum(1 for p in inbound if p not in unacked)
                >= self.receive_maximum  # an acknowledged QoS 2 id waiting for its PUBREC is in both
            )
        ):
            # [MQTT-3.3.4-9] forbids it; the client ends the connection with 0x93 (section
            # 3.3.4), but only after the I/O layer has handled this batch (see
            # receive_maximum_exceeded): what the batch acknowledges goes out first.
            self.receive_maximum_exceeded = True
        unacked[packet_id] = [qos, 0, mark]
        return packet

    def _finish_outbound(self, packet_id: int) -> None:
        self.session.finish_outbound(packet_id)
        self._inflight -= 1
        if self._backlog:
            self._resend()

    def _on_puback(self, packet: PubAck, now: float) -> list[Event]:
        stored = self.session.outbound.get(packet.packet_id)
        if not (isinstance(stored, Publish) and stored.qos == 1):
            raise RemoteProtocolError(
                f"PUBACK for packet id {packet.packet_id}, which has no QoS 1 PUBLISH in flight"
            )
        self._finish_outbound(packet.packet_id)
        return [
            PublishAcknowledged(packet.packet_id, packet.reason_code, packet.properties)
        ]

    def _on_pubrec(self, packet: PubRec, now: float) -> list[Event]:
        packet_id = packet.packet_id
        stored = self.session.outbound.get(packet_id)
        if isinstance(stored, PubRel):
            self._send(stored)  # a repeated PUBREC: answer with PUBREL again
            return []
        if not (isinstance(stored, Publish) and stored.qos == 2):
            raise RemoteProtocolError(
                f"PUBREC for packet id {packet_id}, which has no QoS 2 PUBLISH in flight"
            )
        if packet.reason_code.is_failure:
            self._finish_outbound(
                packet_id
            )  # section 4.3.3: the flow ends; the id is free again
            return [
                PublishAcknowledged(packet_id, packet.reason_code, packet.properties)
            ]
        pubrel = PubRel(packet_id=packet_id)
        # Keep send order: the PUBREL replaces the PUBLISH in place ([MQTT-4.3.3-3]).
        self.session.store_outbound(packet_id, pubrel)
        self._send(pubrel)
        return []

    def _on_pubrel(self, packet: PubRel, now: float) -> list[Event]:
        packet_id = packet.packet_id
        session = self.session
        if session.release_inbound(packet_id):
            self._send(PubComp(packet_id=packet_id))  # [MQTT-4.3.3-11]
            released = session.released
            if not self._pings and len(released) >= CONFIRM_EVERY:
                self._ping()  # ask the server to confirm it has these PUBCOMPs
            session.trim_released(self.receive_maximum)
        else:
            code = (
                ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
                if self._v5
                else ReasonCode.SUCCESS
            )
            self._send(PubComp(packet_id=packet_id, reason_code=code))
        return []

    def _on_pubcomp(self, packet: PubComp, now: float) -> list[Event]:
        if not isinstance(self.session.outbound.get(packet.packet_id), PubRel):
            raise RemoteProtocolError(
                f"PUBCOMP for packet id {packet.packet_id}, which has no PUBREL in flight"
            )
        self._finish_outbound(packet.packet_id)
        return [
            PublishAcknowledged(packet.packet_id, packet.reason_code, packet.properties)
        ]

    def _on_suback(self, packet: SubAck, now: float) -> list[Event]:
        self._release_request(packet.packet_id, "SUBACK", len(packet.reason_codes))
        return [
            SubscribeAcknowledged(
                packet.packet_id, packet.reason_codes, packet.properties
            )
        ]

    def _on_unsuback(self, packet: UnsubAck, now: float) -> list[Event]:
        count = len(packet.reason_codes) if self._v5 else None  # 3.1.1: no codes
        self._release_request(packet.packet_id, "UNSUBACK", count)
        return [
            UnsubscribeAcknowledged(
                packet.packet_id, packet.reason_codes, packet.properties
            )
        ]

    def _release_request(self, packet_id: int, what: str, count: int | None) -> None:
        ids = self.session.packet_ids
        expected = self._requests.pop(packet_id, None)
        if (
            expected is None
            or not ids.in_use(packet_id)
            or packet_id in self.session.outbound
        ):
            raise RemoteProtocolError(
                f"{what} for packet id {packet_id}, which has no request in flight"
            )
        if count is not None and count != expected:
            # one reason code per topic filter: [MQTT-3.9.3-1], [MQTT-3.11.3-1]
            raise RemoteProtocolError(
                f"{what} carries {count} reason codes for {expected} topic filters"
            )
        ids.release(packet_id)

    def _on_pingresp(self, packet: PingResp, now: float) -> list[Event]:
        pings = self._pings
        if pings:
            # the server has processed what we sent before that PINGREQ, PUBCOMPs included
            self.session.confirm_released(pings[0])
            self._pings = pings = pings[1:]
        if not pings:
            self._pong_deadline = None
        return [PongReceived()]

    def _on_disconnect(self, packet: Disconnect, now: float) -> list[Event]:
        self.state = ConnectionState.CLOSED
        return [DisconnectReceived(packet.reason_code, packet.properties)]

    def _on_auth(self, packet: Auth, now: float) -> list[Event]:
        props = packet.properties
        if self.auth_method is None:
            # we never named an Authentication Method, so the server must not send AUTH
            raise RemoteProtocolError(
                "AUTH received but no authentication method was negotiated"
            )  # [MQTT-4.12.0-6]
        if props.authentication_method != self.auth_method:
            raise RemoteProtocolError(
                f"AUTH names method {props.authentication_method!r}, not {self.auth_method!r}"
            )  # [MQTT-4.12.0-5]
        code = packet.reason_code
        if code is ReasonCode.CONTINUE_AUTHENTICATION and (
            self.state is ConnectionState.CONNECTING or self._reauthenticating
        ):
            return [AuthChallenged(props.authentication_data, props)]
        if code is ReasonCode.SUCCESS and self._reauthenticating:
            self._reauthenticating = False
            return [ReauthenticationCompleted(props.authentication_data, props)]
        raise RemoteProtocolError(
            f"unexpected AUTH {code.describe()} while {self.state.value}"
        )  # section 4.12: the server continues or ends what the client started


_CONNECTED: Final = ConnectionState.CONNECTED
_HANDLERS: Final[dict[tuple[ConnectionState, type], _Handler]] = {
    (ConnectionState.CONNECTING, ConnAck): MQTTConnection._on_connack,  # type: ignore[dict-item]
    (ConnectionState.CONNECTING, Disconnect): MQTTConnection._on_disconnect,  # type: ignore[dict-item]
    (ConnectionState.CONNECTING, Auth): MQTTConnection._on_auth,  # type: ignore[dict-item]
    (_CONNECTED, PubAck): MQTTConnection._on_puback,  # type: ignore[dict-item]
    (_CONNECTED, PubRec): MQTTConnection._on_pubrec,  # type: ignore[dict-item]
    (_CONNECTED, PubRel): MQTTConnection._on_pubrel,  # type: ignore[dict-item]
    (_CONNECTED, PubComp): MQTTConnection._on_pubcomp,  # type: ignore[dict-item]
    (_CONNECTED, SubAck): MQTTConnection._on_suback,  # type: ignore[dict-item]
    (_CONNECTED, UnsubAck): MQTTConnection._on_unsuback,  # type: ignore[dict-item]
    (_CONNECTED, PingResp): MQTTConnection._on_pingresp,  # type: ignore[dict-item]
    (_CONNECTED, Disconnect): MQTTConnection._on_disconnect,  # type: ignore[dict-item]
    (_CONNECTED, Auth): MQTTConnection._on_auth,  # type: ignore[dict-item]
}
# Everything else (a second CONNACK, CONNECT, SUBSCRIBE, PINGREQ from the server, any packet after
# CLOSED, anything but CONNACK/AUTH/DISCONNECT before CONNACK [MQTT-3.2.0-1]) is a protocol error.
