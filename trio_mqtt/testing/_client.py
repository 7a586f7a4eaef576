"""ClientConnection: the test broker's side of one client connection.

One task reads and answers; a second writes (packets queue in a memory channel, so that routing
from another client's task never waits). Faults set for the client id (:class:`Faults`) apply
to both directions.
"""

from __future__ import annotations

import math

import attrs
import trio

from .._enums import ProtocolVersion, QoS, ReasonCode
from .._exceptions import MQTTError
from .._sansio._codec import MAX_PACKET_SIZE, PacketReader, encode_packet
from .._sansio._packets import (
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
    UnsubAck,
    Unsubscribe,
)
from .._sansio._properties import EMPTY_PROPERTIES, Properties
from .._topics import split_shared
from ._state import AuthExchange, BrokerCore, Session, Stored, Subscription

_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class ClientConnection:
    """The broker's side of one connection."""

    def __init__(self, broker: BrokerCore, stream: trio.abc.Stream) -> None:
        self.broker = broker
        self.stream = stream
        self.client_id = ""
        self.open = True
        self.session: Session | None = None
        self.version = ProtocolVersion.V5
        self.receive_maximum = 65535  # the client's
        self.max_packet_size = MAX_PACKET_SIZE  # the client's
        self.alias_maximum = 0  # aliases the client lets us set
        self._aliases_in: dict[int, str] = {}
        self._aliases_out: dict[str, int] = {}
        self._send, self._outbox = trio.open_memory_channel[bytes | None](math.inf)
        self._scope = trio.CancelScope()
        self._will_on_end = True
        self._assigned: str | None = None  # the client id we chose
        #: an enhanced authentication under way: its CONNECT and exchange
        self._exchange: tuple[Connect, AuthExchange] | None = None

    # -- sending ---------------------------------------------------------------------------------

    def send(self, packet: Packet) -> None:
        """Queue ``packet`` for the client (dropped if a fault says so, or if it exceeds the
        client's Maximum Packet Size, [MQTT-3.1.2-25])."""
        if not self.open:
            return
        faults = self.broker.faults(self.client_id)
        if faults.drop(packet):
            self.broker.record(self.client_id, "dropped out", packet)
            return
        data = encode_packet(packet, self.version)
        if len(data) > self.max_packet_size:
            return
        self.broker.record(self.client_id, "out", packet)
        self._send.send_nowait(data)

    async def send_raw(self, data: bytes) -> None:
        if data:
            self._send.send_nowait(data)
        await trio.lowlevel.checkpoint()

    async def _writer(self) -> None:
        try:
            async for data in self._outbox:
                if data is None:
                    await self.stream.aclose()
                    return
                if not data:
                    return  # cut without FIN: the stream stays open, and silent
                delay = self.broker.faults(self.client_id).delay
                if delay:
                    await trio.sleep(delay)
                await self.stream.send_all(data)
        except _TRANSPORT_ERRORS:
            self._scope.cancel()  # the client is gone: the reader stops too

    def taken_over(self) -> None:
        """Another connection took the session over ([MQTT-3.1.4-3]): end this one now."""
        if self.version is ProtocolVersion.V5:
            self.send(Disconnect(reason_code=ReasonCode.SESSION_TAKEN_OVER))
        self.cut(fin=True)
        self._ended()

    def cut(self, *, fin: bool, will: bool = True) -> None:
        """End the connection from the broker's side (see :meth:`MQTTBroker.cut`)."""
        self._will_on_end = will
        # the writer ends after what is queued: closing the stream (FIN), or just stopping
        self._send.send_nowait(None if fin else b"")
        self._scope.cancel()

    # -- the connection's life ---------------------------------------------------------------------

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            with self._scope:
                try:
                    await self._read_loop()
                except (MQTTError, *_TRANSPORT_ERRORS) as exc:
                    self._protocol_error(exc)
                self._send.send_nowait(None)
            self._ended()

    def _protocol_error(self, exc: BaseException) -> None:
        code = getattr(exc, "reason_code", None)
        if isinstance(code, ReasonCode) and self.version is ProtocolVersion.V5:
            self.send(Disconnect(reason_code=code))

    def _ended(self) -> None:
        """The connection is over: keep or drop the session, publish the will (section 4.1)."""
        if not self.open:
            return
        self.open = False
        session = self.session
        if session is None or session.connection is not self:
            return
        session.connection = None
        broker = self.broker
        will, session.will = session.will, None
        if will is not None and self._will_on_end:
            delay = min(float(will.properties.will_delay_interval or 0), session.expiry)
            client_id = session.client_id
            if delay:
                broker.start_timer(
                    session, delay, lambda: broker.publish_will(client_id, will)
                )
            else:
                broker.publish_will(client_id, will)
        if not session.expiry:
            broker.sessions.pop(session.client_id, None)
        elif session.expiry != math.inf:

            def expire() -> None:
                if broker.sessions.get(session.client_id) is session:
                    del broker.sessions[session.client_id]

            broker.start_timer(session, session.expiry, expire)

    async def _read_loop(self) -> None:
        reader = PacketReader(
            version=ProtocolVersion.V5,
            max_packet_size=self.broker.options.maximum_packet_size or MAX_PACKET_SIZE,
        )
        keep_alive = math.inf
        connected = False
        while True:
            with trio.move_on_after(
                keep_alive * 1.5 if keep_alive else math.inf
            ) as idle:
                data = await self.stream.receive_some(65536)
            if idle.cancelled_caught:  # [MQTT-3.1.2-22]
                if self.version is ProtocolVersion.V5:
                    self.send(Disconnect(reason_code=ReasonCode.KEEP_ALIVE_TIMEOUT))
                return
            if not data:
                return
            faults = self.broker.faults(self.client_id)
            for packet in reader.feed(data):
                if faults.drop(packet):
                    self.broker.record(self.client_id, "dropped in", packet)
                    continue
                if not connected:
                    if not isinstance(packet, Connect):
                        return  # [MQTT-3.1.0-1]
                    reader = PacketReader(
                        version=packet.protocol_version,
                        max_packet_size=reader.max_packet_size,
                    )
                    keep_alive = self._connect(packet)
                    if keep_alive < 0:
                        return
                    connected = True
                    continue
                self.broker.record(self.client_id, "in", packet)
                if (
                    self._exchange is not None
                ):  # authenticating: only AUTH 0x18 may come
                    if not (
                        isinstance(packet, Auth)
                        and packet.reason_code is ReasonCode.CONTINUE_AUTHENTICATION
                        and self._authenticated(
                            *self._exchange[1].step(
                                packet.properties.authentication_data
                            )
                        )
                    ):
                        return
                    continue
                if not self._handle(packet):
                    return

    # -- CONNECT ---------------------------------------------------------------------------------

    def _connect(self, connect: Connect) -> float:
        """Answer CONNECT; the keep alive in force, or -1 if refused."""
        broker, options = self.broker, self.broker.options
        self.version = connect.protocol_version
        v5 = self.version is ProtocolVersion.V5
        self.client_id = connect.client_id
        refusing, code = broker.refusal()
        if not refusing and options.authenticate is not None:
            code = options.authenticate(connect)
            refusing = code is not None
        if not self.client_id and not connect.clean_start and not v5:
            refusing, code = (
                True,
                ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
            )  # [MQTT-3.1.3-8]
        if refusing:
            broker.record(self.client_id, "in", connect)
            if code is not None:  # (3.1.1: the encoder gives the nearest return code)
                self.send(ConnAck(reason_code=code))
            return -1
        if not self.client_id:
            self.client_id = broker.assign_id()
            self._assigned = self.client_id
        broker.record(self.client_id, "in", connect)
        method = connect.properties.authentication_method
        if v5 and method is not None:  # enhanced authentication (section 4.12)
            make = options.enhanced_auth
            exchange = make(method) if make is not None else None
            if exchange is None:
                self.send(ConnAck(reason_code=ReasonCode.BAD_AUTHENTICATION_METHOD))
                return -1
            self._exchange = (connect, exchange)
            answer = exchange.start(connect.properties.authentication_data)
            if not self._authenticated(*answer):
                return -1
            return float(connect.keep_alive)
        return self._accept(connect)

    def _authenticated(self, code: ReasonCode, data: bytes | None) -> bool:
        """Act on an authentication step's answer; False if it refused the client."""
        assert self._exchange is not None
        connect = self._exchange[0]
        method = connect.properties.authentication_method
        if code is ReasonCode.CONTINUE_AUTHENTICATION:
            props = Properties(authentication_method=method, authentication_data=data)
            self.send(Auth(reason_code=code, properties=props))
            return True
        self._exchange = None
        if code.is_failure:
            self.send(ConnAck(reason_code=code))
            return False
        self._accept(connect, method, data)
        return True

    def _accept(
        self, connect: Connect, method: str | None = None, data: bytes | None = None
    ) -> float:
        """Accept the connection: the session, CONNACK, resends; the keep alive in force."""
        broker, options = self.broker, self.broker.options
        v5 = self.version is ProtocolVersion.V5
        assigned = self._assigned
        props = connect.properties
        self.receive_maximum = props.receive_maximum or 65535
        self.max_packet_size = props.maximum_packet_size or MAX_PACKET_SIZE
        self.alias_maximum = (
            (props.topic_alias_maximum or 0) if options.send_topic_aliases else 0
        )
        session = broker.sessions.get(self.client_id)
        if session is not None and session.connection is not None:  # [MQTT-3.1.4-3]
            assert isinstance(session.connection, ClientConnection)
            session.connection.taken_over()
            session = broker.sessions.get(self.client_id)
        present = session is not None and not connect.clean_start
        if session is not None:
            session.cancel_timers()  # the will delay and session expiry stop [MQTT-3.1.3-9]
        if not present:
            session = Session(self.client_id)
            broker.sessions[self.client_id] = session
        assert session is not None
        session.expiry = (
            (props.session_expiry_interval or 0)
            if v5
            else (0 if connect.clean_start else math.inf)
        )
        session.connection = self
        session.will = connect.will
        self.session = session
        keep_alive = float(connect.keep_alive)
        if v5 and options.server_keep_alive is not None:
            keep_alive = float(options.server_keep_alive)
        ack_props = EMPTY_PROPERTIES
        if v5:
            ack_props = Properties(
                assigned_client_identifier=assigned,
                receive_maximum=options.receive_maximum if options.receive_maximum != 65535 else None,
                maximum_qos=options.maximum_qos if options.maximum_qos < 2 else None,
                retain_available=None if options.retain_available else False,
                maximum_packet_size=options.maximum_packet_size,
                topic_alias_maximum=options.topic_alias_maximum or None,
                server_keep_alive=options.server_keep_alive,
                shared_subscription_available=None if options.shared_subscriptions else False,
                wildcard_subscription_available=None if options.wildcard_subscriptions else False,
                subscription_identifier_available=None
                if options.subscription_identifiers
                else False,
                authentication_method=method,
                authentication_data=data,
            )  # fmt: skip
        self.send(ConnAck(session_present=present, properties=ack_props))
        # [MQTT-4.4.0-1] resend what the client has not acknowledged, in order, then the queue
        for packet_id, stored in list(session.inflight.items()):
            if isinstance(stored, str):
                self.send(PubRel(packet_id=packet_id))
            else:
                self.send(attrs.evolve(stored.publish, dup=True, packet_id=packet_id))
        self.pump()
        return keep_alive

    # -- everything after CONNECT ------------------------------------------------------------

    def _handle(self, packet: Packet) -> bool:
        """Answer one packet; False to end the connection."""
        session = self.session
        assert session is not None
        if isinstance(packet, Publish):
            return self._publish(packet)
        if isinstance(packet, PubAck | PubComp):
            if isinstance(session.inflight.pop(packet.packet_id, None), Stored | str):
                self.pump()
        elif isinstance(packet, PubRec):
            if packet.packet_id in session.inflight:
                if packet.reason_code.is_failure:
                    del session.inflight[packet.packet_id]
                    self.pump()
                else:
                    session.inflight[packet.packet_id] = "PUBREL"
                    self.send(PubRel(packet_id=packet.packet_id))
        elif isinstance(packet, PubRel):
            session.inbound_qos2.discard(packet.packet_id)
            self.send(PubComp(packet_id=packet.packet_id))
        elif isinstance(packet, Subscribe):
            self._subscribe(packet)
        elif isinstance(packet, Unsubscribe):
            codes = []
            for topic_filter in packet.topic_filters:
                found = session.subscriptions.pop(topic_filter, None) is not None
                codes.append(
                    ReasonCode.SUCCESS if found else ReasonCode.NO_SUBSCRIPTION_EXISTED
                )
            self.send(UnsubAck(packet_id=packet.packet_id, reason_codes=tuple(codes)))
        elif isinstance(packet, PingReq):
            self.send(PingResp())
        elif isinstance(packet, Disconnect):
            if packet.reason_code is not ReasonCode.DISCONNECT_WITH_WILL_MESSAGE:
                session.will = None  # [MQTT-3.1.2-10]
            expiry = packet.properties.session_expiry_interval
            if expiry is not None:
                session.expiry = expiry
            return False
        else:
            return False  # a packet a client may not send: the connection ends
        return True

    def _publish(self, packet: Publish) -> bool:
        broker, options, session = self.broker, self.broker.options, self.session
        assert session is not None
        alias = packet.properties.topic_alias
        if alias is not None:
            if not 0 < alias <= options.topic_alias_maximum:
                return self._disconnect(
                    ReasonCode.TOPIC_ALIAS_INVALID
                )  # [MQTT-3.3.2-9]
            if packet.topic:
                self._aliases_in[alias] = packet.topic
            elif alias in self._aliases_in:
                packet = attrs.evolve(packet, topic=self._aliases_in[alias])
            else:
                return self._disconnect(ReasonCode.PROTOCOL_ERROR)  # [MQTT-3.3.2-7]
        if packet.qos > options.maximum_qos:
            return self._disconnect(ReasonCode.QOS_NOT_SUPPORTED)  # [MQTT-3.2.2-11]
        if packet.retain and not options.retain_available:
            return self._disconnect(ReasonCode.RETAIN_NOT_SUPPORTED)  # [MQTT-3.2.2-14]
        code = ReasonCode.SUCCESS
        if options.authorize_publish is not None:
            code = options.authorize_publish(self.client_id, packet.topic) or code
        again = packet.qos == 2 and packet.packet_id in session.inbound_qos2
        if not code.is_failure and not again:  # a QoS 2 resend is routed once only
            broker.route(
                attrs.evolve(packet, dup=False, packet_id=None), self.client_id
            )
        if self.version is ProtocolVersion.V311:
            code = ReasonCode.SUCCESS  # 3.1.1 acknowledges and drops a refused message
        assert packet.packet_id is not None or not packet.qos
        if packet.qos == 1:
            self.send(PubAck(packet_id=packet.packet_id or 0, reason_code=code))
        elif packet.qos == 2:
            if not code.is_failure:
                session.inbound_qos2.add(packet.packet_id or 0)
            self.send(PubRec(packet_id=packet.packet_id or 0, reason_code=code))
        return True

    def _subscribe(self, packet: Subscribe) -> None:
        broker, options, session = self.broker, self.broker.options, self.session
        assert session is not None
        ids = packet.properties.subscription_identifiers
        identifier = ids[0] if ids else None
        codes: list[ReasonCode] = []
        added: list[tuple[Subscription, bool]] = []
        for request in packet.subscriptions:
            topic_filter = request.topic_filter
            share, inner = split_shared(topic_filter)
            code: ReasonCode | None = None
            if share is not None and not options.shared_subscriptions:
                code = ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
            elif ("+" in inner or "#" in inner) and not options.wildcard_subscriptions:
                code = ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED
            elif identifier is not None and not options.subscription_identifiers:
                code = ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED
            elif options.authorize_subscribe is not None:
                code = options.authorize_subscribe(self.client_id, topic_filter)
            if code is not None and code.is_failure:
                codes.append(
                    code if self.version is ProtocolVersion.V5 else ReasonCode(0x80)
                )
                continue
            granted = QoS(min(request.qos, options.maximum_qos))
            existed = topic_filter in session.subscriptions
            subscription = Subscription(attrs.evolve(request, qos=granted), identifier)
            session.subscriptions[topic_filter] = subscription
            added.append((subscription, existed))
            codes.append(ReasonCode(int(granted)))
        self.send(SubAck(packet_id=packet.packet_id, reason_codes=tuple(codes)))
        for subscription, existed in added:
            handling = subscription.request.retain_handling
            if handling == 0 or (handling == 1 and not existed):
                broker.send_retained(session, subscription)

    def _disconnect(self, code: ReasonCode) -> bool:
        if self.version is ProtocolVersion.V5:
            self.send(Disconnect(reason_code=code))
        return False

    def pump(self) -> None:
        """Send queued messages while the client's Receive Maximum allows (section 4.9)."""
        session = self.session
        if session is None or not self.open:
            return
        now = trio.current_time()
        while session.queue:
            stored = session.queue[0]
            publish = stored.publish
            if publish.qos and len(session.inflight) >= self.receive_maximum:
                return
            session.queue.popleft()
            remaining = stored.remaining(now)
            if remaining == 0:
                continue  # expired while queued (section 3.3.2.3.3)
            if remaining is not None:
                publish = attrs.evolve(
                    publish,
                    properties=attrs.evolve(
                        publish.properties, message_expiry_interval=remaining
                    ),
                )
            if self.version is ProtocolVersion.V311:
                publish = attrs.evolve(publish, properties=EMPTY_PROPERTIES)
            if publish.qos:
                packet_id = session.allocate()
                publish = attrs.evolve(publish, packet_id=packet_id)
                session.inflight[packet_id] = Stored(publish, stored.arrived)
            self.send(self._aliased(publish))

    def _aliased(self, publish: Publish) -> Publish:
        """``publish`` under a topic alias, when the client allows them and the test asked."""
        if not self.alias_maximum:
            return publish
        alias = self._aliases_out.get(publish.topic)
        if alias is not None:
            props = attrs.evolve(publish.properties, topic_alias=alias)
            return attrs.evolve(publish, topic="", properties=props)
        if len(self._aliases_out) < self.alias_maximum:
            alias = self._aliases_out[publish.topic] = len(self._aliases_out) + 1
            props = attrs.evolve(publish.properties, topic_alias=alias)
            return attrs.evolve(publish, properties=props)
        return publish
