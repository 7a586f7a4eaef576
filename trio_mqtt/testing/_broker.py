"""MQTTBroker: an in-process MQTT broker for tests, on the client's own sans-IO codec.

It is a test double, not a production broker: small and readable, with the behaviour of the
spec (and of Mosquitto where the spec leaves a choice), on Trio's clock (every timer is a
``trio.sleep``), so that keep alive, session expiry and will delays run under
``trio.testing.MockClock`` in no real time. Clients reach it over in-memory streams
(:meth:`MQTTBroker.connect_stream`, the client's ``transport_factory``) or a loopback TCP port
(:meth:`MQTTBroker.listen_tcp`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio
import trio.testing

from .._enums import ReasonCode
from .._sansio._packets import Packet, Publish, Will
from .._topics import topic_matches
from ._client import ClientConnection
from ._state import Faults, Options, Session, SessionView, Stored, Subscription, view

#: What the broker says in CONNACK, and the hooks tests use to refuse things.
BrokerOptions = Options


@attrs.frozen
class LoggedPacket:
    """One packet the broker received from (``"in"``) or sent to (``"out"``) a client.

    Attributes:
        client_id: the client's id (``""`` before its CONNECT).
        direction: ``"in"`` or ``"out"``.
        packet: the decoded packet.
        time: when, on Trio's clock.
    """

    client_id: str
    direction: str
    packet: Packet
    time: float


class MQTTBroker:
    """An in-process MQTT 5.0 / 3.1.1 broker for tests; get one from :func:`open_broker`.

    Attributes:
        options: what it advertises and refuses (changeable between connections).
        retained: topic -> the retained message.
        log: every packet in and out, in order (:class:`LoggedPacket`).
    """

    def __init__(self, nursery: trio.Nursery, options: Options) -> None:
        self._nursery = nursery
        self.options = options
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, Stored] = {}
        self.log: list[LoggedPacket] = []
        self._connections: set[ClientConnection] = set()
        self._refusal: ReasonCode | None = None
        self._refusing = False
        self._faults: dict[str, Faults] = {}
        self._share_turn = itertools.count()
        self._assigned = itertools.count(1)

    # -- connecting ------------------------------------------------------------------------------

    async def connect_stream(self) -> trio.abc.Stream:
        """A new connection to the broker, as the client's ``transport_factory`` wants it::

            open_client(transport_factory=broker.connect_stream)

        Returns:
            The client's end of an in-memory stream; the broker serves the other end.
        """
        client, server = trio.testing.memory_stream_pair()
        self._nursery.start_soon(self._serve, server)
        await trio.lowlevel.checkpoint()
        return client

    async def listen_tcp(self) -> str:
        """Also listen on a loopback TCP port; returns its ``mqtt://`` URL."""
        listeners = await self._nursery.start(
            functools.partial(trio.serve_tcp, self._serve, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        return f"mqtt://127.0.0.1:{port}"

    async def _serve(self, stream: trio.abc.Stream) -> None:
        connection = ClientConnection(self, stream)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    def refusal(self) -> tuple[bool, ReasonCode | None]:
        """Whether new connections are refused, and with which CONNACK code (None: the
        connection is closed without one)."""
        return self._refusing, self._refusal

    def faults(self, client_id: str) -> Faults:
        """The faults set for ``client_id``'s connections (made on first use)."""
        return self._faults.setdefault(client_id, Faults())

    def assign_id(self) -> str:
        return f"trio-mqtt-test-{next(self._assigned)}"

    def record(self, client_id: str, direction: str, packet: Packet) -> None:
        self.log.append(LoggedPacket(client_id, direction, packet, trio.current_time()))

    def start_timer(
        self, session: Session, delay: float, action: Callable[[], None]
    ) -> None:
        """Run ``action`` after ``delay`` seconds unless the session's timers are cancelled."""
        scope = trio.CancelScope()
        session.timers.append(scope)

        async def wait() -> None:
            with scope:
                await trio.sleep(delay)
                action()

        self._nursery.start_soon(wait)

    # -- routing ---------------------------------------------------------------------------------

    def route(self, publish: Publish, sender: str | None) -> None:
        """Hand a message to every session subscribed to its topic, and keep it if retained."""
        now = trio.current_time()
        if publish.retain:
            if publish.payload:
                self.retained[publish.topic] = Stored(publish, now)
            else:
                self.retained.pop(publish.topic, None)  # [MQTT-3.3.1-6]
        groups: dict[str, list[tuple[Session, Subscription]]] = {}
        for session in list(self.sessions.values()):
            matching = [
                s
                for f, s in session.subscriptions.items()
                if topic_matches(f, publish.topic)
            ]
            plain = [s for s in matching if s.share is None]
            for sub in matching:
                if sub.share is not None:
                    groups.setdefault(
                        f"{sub.share}\0{sub.request.topic_filter}", []
                    ).append((session, sub))
            if not plain:
                continue
            if sender == session.client_id:
                plain = [s for s in plain if not s.request.no_local]  # [MQTT-3.8.3-3]
            for subscription in plain:  # a copy per subscription, as Mosquitto does
                self.deliver(session, publish, [subscription], now)
        for members in groups.values():
            online = [m for m in members if m[0].connection is not None] or members
            session, sub = online[next(self._share_turn) % len(online)]
            self.deliver(session, publish, [sub], now)

    def deliver(
        self,
        session: Session,
        publish: Publish,
        subscriptions: list[Subscription],
        now: float,
        *,
        retained: bool = False,
    ) -> None:
        """One copy of ``publish`` for ``session``, for ``subscriptions`` (one, except for
        retained messages): the QoS they grant, their subscription identifiers (3.3.4)."""
        best = max(subscriptions, key=lambda s: s.request.qos)
        qos = min(publish.qos, best.request.qos)
        keep_retain = retained or any(
            s.request.retain_as_published for s in subscriptions
        )
        ids = tuple(s.identifier for s in subscriptions if s.identifier is not None)
        properties = attrs.evolve(
            publish.properties, subscription_identifiers=ids, topic_alias=None
        )
        copy = attrs.evolve(
            publish, qos=qos, retain=publish.retain and keep_retain, dup=False,
            packet_id=None, properties=properties,
        )  # fmt: skip
        if not qos and session.connection is None:
            return  # QoS 0 is not queued for an offline session (as Mosquitto)
        session.queue.append(Stored(copy, now))
        if session.connection is not None:
            session.connection.pump()

    def send_retained(self, session: Session, subscription: Subscription) -> None:
        """The retained messages a new subscription gets (retain handling, [MQTT-3.3.1-9])."""
        if subscription.share is not None:
            return  # never to a shared subscription
        now = trio.current_time()
        for topic, stored in list(self.retained.items()):
            if stored.remaining(now) == 0:
                del self.retained[topic]  # expired while retained
            elif topic_matches(subscription.request.topic_filter, topic):
                self.deliver(
                    session,
                    stored.publish,
                    [subscription],
                    stored.arrived,
                    retained=True,
                )

    def publish_will(self, client_id: str, will: Will) -> None:
        """Publish a client's will (its connection ended without a normal DISCONNECT)."""
        publish = Publish(
            topic=will.topic, payload=will.payload, qos=will.qos, retain=will.retain,
            properties=attrs.evolve(will.properties, will_delay_interval=None),
        )  # fmt: skip
        self.record(client_id, "will", publish)
        self.route(publish, None)

    # -- faults ----------------------------------------------------------------------------------

    def _connection(self, client_id: str) -> ClientConnection:
        for connection in self._connections:
            if connection.client_id == client_id and connection.open:
                return connection
        raise LookupError(f"no connection of client {client_id!r}")

    def cut(self, client_id: str, *, fin: bool = True) -> None:
        """End ``client_id``'s connection: with ``fin``, the client sees the end at once;
        without, its connection just goes silent (its keep alive finds out)."""
        self._connection(client_id).cut(fin=fin)

    def blackhole(self, client_id: str, on: bool = True) -> None:
        """Drop everything to and from ``client_id`` (the connection stays open)."""
        self.faults(client_id).blackhole = on

    def delay(self, client_id: str, seconds: float) -> None:
        """Hold each packet sent to ``client_id`` this long first."""
        self.faults(client_id).delay = seconds

    def drop_next(self, client_id: str, packet_type: type, count: int = 1) -> None:
        """Drop the next ``count`` packets of ``packet_type`` sent to or by ``client_id``."""
        drops = self.faults(client_id).drops
        drops[packet_type] = drops.get(packet_type, 0) + count

    def refuse_connections(
        self, reason_code: ReasonCode | None = ReasonCode.SERVER_UNAVAILABLE
    ) -> None:
        """Refuse new connections with that CONNACK code (``None``: close them unanswered)."""
        self._refusing, self._refusal = True, reason_code

    def accept_connections(self) -> None:
        """Accept new connections again."""
        self._refusing, self._refusal = False, None

    def restart(self, *, keep_sessions: bool = True) -> None:
        """As a broker restart: every connection is cut (without DISCONNECT, wills are not
        published); sessions and retained messages survive only with ``keep_sessions``."""
        for connection in list(self._connections):
            connection.cut(fin=True, will=False)
        if not keep_sessions:
            for session in self.sessions.values():
                session.cancel_timers()
            self.sessions.clear()
            self.retained.clear()

    async def send_raw(self, client_id: str, data: bytes) -> None:
        """Send bytes as they are to ``client_id`` (anything a broken broker might send)."""
        await self._connection(client_id).send_raw(data)

    # -- introspection ---------------------------------------------------------------------------

    @property
    def clients(self) -> list[str]:
        """The client ids connected now."""
        return sorted(c.client_id for c in self._connections if c.open and c.client_id)

    def session(self, client_id: str) -> SessionView:
        """A snapshot of ``client_id``'s session (KeyError if there is none)."""
        return view(self.sessions[client_id])

    def packets(
        self, client_id: str | None = None, *, direction: str | None = None,
        kind: type | None = None,
    ) -> list[Packet]:  # fmt: skip
        """The logged packets, filtered by client, direction (``"in"``, ``"out"``, ``"will"``)
        and packet type."""
        return [
            entry.packet
            for entry in self.log
            if (client_id is None or entry.client_id == client_id)
            and (direction is None or entry.direction == direction)
            and (kind is None or isinstance(entry.packet, kind))
        ]


@asynccontextmanager
async def open_broker(**options: object) -> AsyncIterator[MQTTBroker]:
    """Run an in-process broker for the duration of the block (:class:`BrokerOptions` are
    the keyword arguments); leaving it ends every connection and timer.

    Raises:
        TypeError: an unknown option.
    """
    settings = Options(**options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        broker = MQTTBroker(nursery, settings)
        try:
            yield broker
        finally:
            nursery.cancel_scope.cancel()
