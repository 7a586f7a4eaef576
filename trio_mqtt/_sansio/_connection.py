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

from collections.abc import Callable, Sequence
from typing import Final

from .._enums import ProtocolVersion, QoS, ReasonCode
from .._exceptions import LocalProtocolError, RemoteProtocolError
from ._aliases import OutboundAliases
from ._authflow import NO_AUTH, AuthFlow
from ._codec import MAX_PACKET_SIZE, PacketReader, encode_publish
from ._events import (
    ConnectionAccepted,
    ConnectionRefused,
    DisconnectReceived,
    Event,
    KeepAliveExpired,
    PongReceived,
)
from ._inbound import InboundFlows
from ._keepalive import Due, KeepAlive
from ._limits import (
    ConnectionState as ConnectionState,
    QuotaExceeded as QuotaExceeded,
    ServerLimits as ServerLimits,
)
from ._outbound import RESEND_CHUNK as RESEND_CHUNK, OutboundFlows
from ._outgoing import Outgoing
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
    SubscriptionRequest,
    UnsubAck,
)
from ._poison import Suspect
from ._properties import EMPTY_PROPERTIES, Properties
from ._requests import Requests
from ._session import SessionState
from ._traffic import Traffic
from ._wire import Buffer

_Handler = Callable[["MQTTConnection", Packet, float], Sequence[Event]]


class MQTTConnection:
    """The client protocol machine for one network connection.

    Args:
        version: the protocol version spoken.
        session: the session state, shared across connections of one session.
        receive_maximum: how many inbound QoS 1/2 messages may be unacknowledged (sent in CONNECT).
        max_packet_size: the largest packet accepted from the server (sent in CONNECT).
        topic_alias_maximum: how many inbound topic aliases the server may use (sent in CONNECT).
        topic_aliases: set topic aliases on our PUBLISH packets, within the server's Topic
            Alias Maximum (:mod:`._aliases`).
        traffic: the counters this connection adds to (:class:`Traffic`), shared by the
            connections of one client; a new one if not given.
    """

    __slots__ = (
        "_auth",
        "_clean_start",
        "_inbound",
        "_keepalive",
        "_out",
        "_outbound",
        "_qos0_unwritten",
        "_reader",
        "_requests",
        "_topic_aliases",
        "_v5",
        "receive_maximum",
        "server",
        "session",
        "state",
        "traffic",
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
        topic_aliases: bool = False,
        traffic: Traffic | None = None,
    ) -> None:
        self.version = version
        self.traffic = traffic if traffic is not None else Traffic()
        # QoS 0 PUBLISHes in what data_to_send() returned and data_written() did not confirm
        self._qos0_unwritten = 0
        self._topic_aliases = topic_aliases  # set aliases on our PUBLISH (see _aliases)
        self.session = session if session is not None else SessionState()
        self.state = ConnectionState.IDLE
        self.server = ServerLimits()
        self.receive_maximum = receive_maximum
        self._v5 = version is ProtocolVersion.V5
        self._reader = PacketReader(version=version, max_packet_size=max_packet_size)
        self._out = Outgoing(version)
        self._keepalive = KeepAlive()
        self._inbound = InboundFlows(
            self.session, self._out, v5=self._v5, receive_maximum=receive_maximum,
            topic_alias_maximum=topic_alias_maximum, traffic=self.traffic,
        )  # fmt: skip
        self._outbound = OutboundFlows(self.session, self._out, v5=self._v5)
        self._clean_start = True  # what CONNECT asked for
        self._requests = Requests(
            self.session, self._out
        )  # SUBSCRIBE/UNSUBSCRIBE in flight
        self._auth = NO_AUTH  # enhanced authentication (section 4.12): see connect()

    @property
    def keep_alive(self) -> float:
        """The keep alive interval in seconds (CONNECT's, or the server's: [MQTT-3.2.2-21])."""
        return self._keepalive.interval

    @property
    def topic_alias_maximum(self) -> int:
        """How many inbound topic aliases the server may use (sent in CONNECT)."""
        return self._inbound.topic_alias_maximum

    @property
    def receive_maximum_exceeded(self) -> bool:
        """The server sent more unacknowledged QoS 1/2 messages than our Receive Maximum: the
        I/O layer hands over the messages received, then calls :meth:`end_overrun`."""
        return self._inbound.receive_maximum_exceeded

    # -- commands ------------------------------------------------------------------------------

    def _send(self, packet: Packet) -> None:
        self._out.send(packet)

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
        self._keepalive.interval = float(packet.keep_alive)
        method = packet.properties.authentication_method if self._v5 else None
        if method is not None:
            self._auth = AuthFlow(self._out, method)
        self._clean_start = packet.clean_start
        self._send(packet)
        self._keepalive.last_sent = self._keepalive.last_received = now
        self.state = ConnectionState.CONNECTING

    def _require_connected(self) -> None:
        if self.state is not _CONNECTED:
            raise LocalProtocolError(
                f"the connection is {self.state.value}, not connected"
            )

    @property
    def send_quota_available(self) -> bool:
        """Whether another QoS 1/2 PUBLISH may be sent now (Receive Maximum, section 4.9)."""
        return self._outbound.quota_available

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: QoS = QoS.AT_MOST_ONCE,
        retain: bool = False,
        properties: Properties = EMPTY_PROPERTIES,
        expires_at: float | None = None,
    ) -> int | None:
        """Queue a PUBLISH. Returns its packet id (``None`` for QoS 0). ``expires_at``: when
        its Message Expiry Interval ends, on the clock of ``now``: a resend after a reconnect
        then carries what is left of it, or does not happen.

        Raises:
            QuotaExceeded: QoS 1/2 with the server's Receive Maximum reached; wait for an ack.
            LocalProtocolError: not connected, or the server's limits forbid it.
            ValueError: the packet cannot be encoded.
        """
        self._require_connected()
        if qos or retain or self._outbound.aliases is not None:
            # the server's limits only concern these; aliases are the outbound flows' too
            packet_id = self._outbound.publish(
                topic, payload, qos, retain, properties, self.server, expires_at
            )
            traffic = self.traffic
            if qos == 1:
                traffic.sent_qos1 += 1
            elif qos == 2:
                traffic.sent_qos2 += 1
            else:
                traffic.sent_qos0 += 1
                self._out.qos0 += 1
            return packet_id
        # QoS 0, not retained: the hot path of publishing, inline
        data = encode_publish(
            topic, payload, 0, False, False, None, properties, self._v5
        )
        out = self._out
        out.check_size(data)
        out.chunks.append(data)
        out.size += len(data)
        out.qos0 += 1
        self.traffic.sent_qos0 += 1
        return None

    def acknowledge(self, packet_id: int) -> None:
        """The application has taken the inbound QoS 1/2 message ``packet_id``: queue its PUBACK
        or PUBREC, after those of every message that arrived before it ([MQTT-4.6.0-2],
        [MQTT-4.6.0-3]). Unknown or repeated ids are ignored (an ack for an earlier connection)."""
        if self.state is ConnectionState.CONNECTED:
            self._inbound.acknowledge(packet_id)

    def subscribe(
        self,
        requests: Sequence[SubscriptionRequest],
        properties: Properties = EMPTY_PROPERTIES,
    ) -> int:
        """Queue SUBSCRIBE; returns its packet id."""
        self._require_connected()
        return self._requests.subscribe(requests, properties)

    def unsubscribe(
        self, topic_filters: Sequence[str], properties: Properties = EMPTY_PROPERTIES
    ) -> int:
        """Queue UNSUBSCRIBE; returns its packet id."""
        self._require_connected()
        return self._requests.unsubscribe(topic_filters, properties)

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
        self._auth.queue(
            reason_code, data, properties,
            connecting=self.state is ConnectionState.CONNECTING,
            connected=self.state is ConnectionState.CONNECTED,
        )  # fmt: skip

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

    def suspects(self) -> list[Suspect]:
        """The requests that may have made the broker end this connection (see
        :mod:`._poison`): the one its offending acknowledgement named, else the oldest
        unacknowledged publish flow sent on it and the oldest SUBSCRIBE/UNSUBSCRIBE in flight.
        Asked before :meth:`connection_lost`, which forgets the requests."""
        requests = self._requests
        blamed = self._outbound.blamed
        if blamed is not None:
            return [Suspect("PUBLISH", blamed, named=True)]
        if requests.blamed is not None:
            described = requests.describe(requests.blamed)
            if described is not None:
                kind, filters = described
                return [Suspect(kind, requests.blamed, filters, named=True)]
        suspects = []
        flow = self._outbound.oldest_sent()
        if flow is not None:
            suspects.append(Suspect("PUBLISH", flow))
        oldest = requests.oldest()
        if oldest is not None:
            packet_id, kind, filters = oldest
            suspects.append(Suspect(kind, packet_id, filters))
        return suspects

    def connection_lost(self) -> None:
        """The network connection is gone (or closed): the machine is CLOSED, and the
        SUBSCRIBE/UNSUBSCRIBE requests in flight on it died with it; their packet ids are free
        again (such requests are never resent: the client asks again on the next connection).
        Idempotent. QoS 0 messages still queued, or in data the I/O layer took and did not
        confirm written (:meth:`data_written`), are lost (at most once), and counted
        (:attr:`Traffic.qos0_dropped`)."""
        self.state = ConnectionState.CLOSED
        self._requests.lost()
        out = self._out
        lost = out.qos0 + self._qos0_unwritten
        if lost:
            self.traffic.qos0_dropped += lost
            out.qos0 = self._qos0_unwritten = 0

    @property
    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return anything."""
        return bool(self._out)

    @property
    def buffered_size(self) -> int:
        """How many bytes :meth:`data_to_send` would return (for the caller's backpressure)."""
        return self._out.size

    def data_to_send(self, *, now: float) -> bytes:
        """Drain the outbound buffer; ``now`` is when the I/O layer sends it (keep alive)."""
        out = self._out
        if not out:
            return b""
        self._qos0_unwritten += out.qos0
        data = out.take()
        self.traffic.bytes_sent += len(data)
        self._keepalive.last_sent = now
        if self._outbound.resending and self.state is _CONNECTED:
            self._outbound.resend()  # the next chunk of the session's resends
        return data

    def data_written(self) -> None:
        """The I/O layer has handed everything :meth:`data_to_send` returned to the network
        (the operating system): from here a lost connection drops only what is queued since."""
        self._qos0_unwritten = 0

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
        """When :meth:`handle_timeout` next has work (see :class:`KeepAlive`)."""
        if self.state is not _CONNECTED:
            return None
        return self._keepalive.next_deadline()

    def handle_timeout(self, *, now: float, reading: bool = True) -> list[Event]:
        """Queue PINGREQ when one is due, or report a broker that did not answer
        (:class:`KeepAliveExpired`: the connection is closed). ``reading=False``: the I/O
        layer is not reading, so a PINGRESP may be waiting unread (see :meth:`KeepAlive.due`)."""
        if self.state is not _CONNECTED:
            return []
        due = self._keepalive.due(now, reading=reading)
        if due is Due.EXPIRED:
            self.state = ConnectionState.CLOSED
            return [KeepAliveExpired()]
        if due is Due.PING:
            self._send(PingReq())
            self._keepalive.pinged(self.session.released.count, now=now)
        return []

    # -- input -----------------------------------------------------------------------------------

    def receive_data(self, data: Buffer, *, now: float) -> list[Event]:
        """Decode received bytes; returns the events they complete.

        Raises:
            RemoteProtocolError: the server broke the protocol; a DISCONNECT with its reason code
                is already queued (MQTT 5), and the connection is closed.
        """
        self._keepalive.last_received = now
        traffic = self.traffic
        traffic.bytes_received += len(data)
        publishes = 0  # counted here, added once (QoS 1/2 again where their flows are)
        try:
            packets = self._reader.feed(data)
            events: list[Event] = []
            for packet in packets:
                if type(packet) is Publish and self.state is _CONNECTED:
                    # the hot one, without the table's tuple key and a list per packet
                    publishes += 1
                    event = self._inbound.on_publish(packet)
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
        finally:
            traffic.publishes_received += publishes

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
        self._out.max_size = self.server.maximum_packet_size
        if self._topic_aliases and self._v5 and self.server.topic_alias_maximum:
            self._outbound.aliases = OutboundAliases(self.server.topic_alias_maximum)
        if self.server.server_keep_alive is not None:
            self._keepalive.interval = float(
                self.server.server_keep_alive
            )  # [MQTT-3.2.2-21]
        events: list[Event] = [ConnectionAccepted(packet)]
        session = self.session
        if not packet.session_present:
            # Section 4.1: the server kept no session, so no inbound QoS 2 flow is open there.
            for packet_id in list(session.inbound_qos2):
                session.discard_inbound(packet_id)
            session.forget_released()
        # [MQTT-4.4.0-1] resend the session's flows, in their original order, before anything new
        events += self._outbound.resume(
            limit=self.server.receive_maximum, session_present=packet.session_present,
            now=now,
        )  # fmt: skip
        return events

    def _on_puback(self, packet: PubAck, now: float) -> list[Event]:
        return self._outbound.on_puback(packet)

    def _on_pubrec(self, packet: PubRec, now: float) -> list[Event]:
        return self._outbound.on_pubrec(packet)

    def _on_pubcomp(self, packet: PubComp, now: float) -> list[Event]:
        return self._outbound.on_pubcomp(packet)

    def _on_pubrel(self, packet: PubRel, now: float) -> list[Event]:
        if self._inbound.on_pubrel(packet.packet_id) and not self._keepalive.pings:
            # ask the server to confirm it has the PUBCOMPs sent so far
            self._send(PingReq())
            self._keepalive.pinged(self.session.released.count)
        return []

    def _on_suback(self, packet: SubAck, now: float) -> list[Event]:
        return self._requests.on_suback(packet)

    def _on_unsuback(self, packet: UnsubAck, now: float) -> list[Event]:
        return self._requests.on_unsuback(packet, v5=self._v5)

    def _on_pingresp(self, packet: PingResp, now: float) -> list[Event]:
        confirmed = self._keepalive.pong()
        if confirmed is not None:
            # the server has processed what we sent before that PINGREQ, PUBCOMPs included
            self.session.confirm_released(confirmed)
        return [PongReceived()]

    def _on_disconnect(self, packet: Disconnect, now: float) -> list[Event]:
        self.state = ConnectionState.CLOSED
        return [DisconnectReceived(packet.reason_code, packet.properties)]

    def _on_auth(self, packet: Auth, now: float) -> list[Event]:
        connecting = self.state is ConnectionState.CONNECTING
        return self._auth.on_auth(packet, connecting=connecting, state=self.state.value)


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
