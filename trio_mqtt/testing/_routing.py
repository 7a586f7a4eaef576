"""Routing: the test broker's state and what every connection shares (sessions, retained
messages, routing, timers, faults, the log). :class:`MQTTBroker` is its public face; each
:class:`ClientConnection` uses it through the ``BrokerCore`` protocol."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import attrs
import trio

from .._enums import ReasonCode
from .._sansio._packets import Packet, Publish, Will
from .._topics import topic_matches
from ._client import ClientConnection
from ._state import BrokerOptions, Faults, Session, Stored, Subscription


@attrs.frozen
class LoggedPacket:
    """One packet the broker received from (``"in"``) or sent to (``"out"``) a client.

    Attributes:
        client_id: the client's id (``""`` before its CONNECT).
        direction: ``"in"``, ``"out"``, ``"will"`` (a will published), or ``"dropped in"``
            / ``"dropped out"`` (a fault dropped it).
        packet: the decoded packet.
        time: when, on Trio's clock.
    """

    client_id: str
    direction: str
    packet: Packet
    time: float


class Routing:
    """The broker's state and the operations its connections share."""

    def __init__(self, nursery: trio.Nursery, options: BrokerOptions) -> None:
        self.nursery = nursery
        self.options = options
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, Stored] = {}
        self.log: list[LoggedPacket] = []
        self.connections: set[ClientConnection] = set()
        self.refusing = False
        self.refusal_code: ReasonCode | None = None
        self.fault_sets: dict[str, Faults] = {}
        self._share_turn = itertools.count()
        self._assigned = itertools.count(1)

    async def serve(self, stream: trio.abc.Stream) -> None:
        """Serve one client connection until it ends."""
        connection = ClientConnection(self, stream)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    def refusal(self) -> tuple[bool, ReasonCode | None]:
        """Whether new connections are refused, and with which CONNACK code (None: the
        connection is closed without one)."""
        return self.refusing, self.refusal_code

    def faults(self, client_id: str) -> Faults:
        """The faults set for ``client_id``'s connections (made on first use)."""
        return self.fault_sets.setdefault(client_id, Faults())

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

        self.nursery.start_soon(wait)

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
