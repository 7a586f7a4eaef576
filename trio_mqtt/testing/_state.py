"""The test broker's state: sessions, their subscriptions and message queues, retained messages.

Plain data, no I/O; :mod:`._broker` routes messages through it and :mod:`._client` speaks the
protocol to one connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from .._enums import QoS, ReasonCode
from .._sansio._packets import Connect, Packet, Publish, SubscriptionRequest, Will
from .._topics import split_shared


class Connection(Protocol):
    """A session's live connection, as the broker's routing sees it."""

    def pump(self) -> None:
        """Send what the session has queued, as the client's Receive Maximum allows."""


@attrs.define(eq=False)
class Subscription:
    """One topic filter a session subscribed to, with its options."""

    request: SubscriptionRequest
    identifier: int | None = None

    @property
    def share(self) -> str | None:
        """The share group of a ``$share/group/filter`` subscription."""
        return split_shared(self.request.topic_filter)[0]


@attrs.define(eq=False)
class Stored:
    """A message held for a session (queued or in flight), with when it arrived."""

    publish: Publish
    arrived: float

    def remaining(self, now: float) -> int | None:
        """What is left of its Message Expiry Interval (``None``: it has none; 0: expired)."""
        interval = self.publish.properties.message_expiry_interval
        if interval is None:
            return None
        return max(0, int(interval - (now - self.arrived)))


@attrs.define(eq=False)
class Session:
    """What the broker keeps for one client id, connected or not (section 4.1)."""

    client_id: str
    persistent: bool = False  # outlives its connection
    expiry: float = 0.0  # seconds after the connection ends (inf: never)
    subscriptions: dict[str, Subscription] = attrs.Factory(dict)
    #: messages for the client not yet sent (no quota, or offline)
    queue: deque[Stored] = attrs.Factory(deque)
    #: sent and unacknowledged: packet id -> message; "PUBREL" once PUBREC came
    inflight: dict[int, Stored | str] = attrs.Factory(dict)
    #: QoS 2 packet ids we answered with PUBREC, awaiting PUBREL
    inbound_qos2: set[int] = attrs.Factory(set)
    next_id: int = 0
    connection: Connection | None = None
    will: Will | None = None
    #: the timer that ends the session, or publishes the will, while offline
    timers: list[trio.CancelScope] = attrs.Factory(list)

    def allocate(self) -> int:
        """A packet id not in flight to the client."""
        for _ in range(65535):
            self.next_id = self.next_id % 65535 + 1
            if self.next_id not in self.inflight:
                return self.next_id
        raise RuntimeError("all packet ids are in flight")

    def cancel_timers(self) -> None:
        for scope in self.timers:
            scope.cancel()
        self.timers.clear()


@attrs.frozen
class SessionView:
    """A snapshot of a session, for assertions.

    Attributes:
        client_id: whose session.
        connected: whether a connection has it now.
        subscriptions: topic filter -> its QoS.
        queued: messages waiting to be sent to the client.
        inflight: messages sent and not yet acknowledged.
    """

    client_id: str
    connected: bool
    subscriptions: dict[str, QoS]
    queued: int
    inflight: int


def view(session: Session) -> SessionView:
    return SessionView(
        client_id=session.client_id,
        connected=session.connection is not None,
        subscriptions={f: s.request.qos for f, s in session.subscriptions.items()},
        queued=len(session.queue),
        inflight=len(session.inflight),
    )


class AuthExchange(Protocol):
    """One enhanced authentication (section 4.12), the broker's side: a test's
    ``enhanced_auth`` option makes one per CONNECT that names a method it knows."""

    def start(self, data: bytes | None) -> tuple[ReasonCode, bytes | None]:
        """Answer CONNECT's Authentication Data.

        Args:
            data: what the client sent in CONNECT.

        Returns:
            CONTINUE_AUTHENTICATION (0x18) with a challenge (sent in AUTH), SUCCESS with the
            final data (sent in CONNACK), or a failure code (CONNACK refuses with it).

        Raises:
            Whatever it raises ends the connection without an answer.
        """

    def step(self, data: bytes | None) -> tuple[ReasonCode, bytes | None]:
        """Answer the client's AUTH 0x18.

        Args:
            data: its Authentication Data.

        Returns:
            As :meth:`start`.

        Raises:
            Whatever it raises ends the connection without an answer.
        """


class BrokerCore(Protocol):
    """The broker, as one client connection uses it (implemented by ``Routing``)."""

    sessions: dict[str, Session]

    @property
    def options(self) -> BrokerOptions: ...

    def refusal(self) -> tuple[bool, ReasonCode | None]: ...

    def faults(self, client_id: str) -> Faults: ...

    def assign_id(self) -> str: ...

    def record(self, client_id: str, direction: str, packet: Packet) -> None: ...

    def start_timer(
        self, session: Session, delay: float, action: Callable[[], None]
    ) -> None: ...

    def route(self, publish: Publish, sender: str | None) -> None: ...

    def send_retained(self, session: Session, subscription: Subscription) -> None: ...

    def publish_will(self, client_id: str, will: Will) -> None: ...


@attrs.define
class Faults:
    """What a test made go wrong for one client id."""

    blackhole: bool = False
    delay: float = 0.0
    drops: dict[type, int] = attrs.Factory(dict)

    def drop(self, packet: Packet) -> bool:
        """Whether to drop ``packet`` (a black hole, or a drop still due for its type)."""
        if self.blackhole:
            return True
        left = self.drops.get(type(packet), 0)
        if left:
            self.drops[type(packet)] = left - 1
            return True
        return False


@attrs.define(kw_only=True)
class BrokerOptions:
    """What the broker says in CONNACK, and the hooks tests use to refuse things.

    Attributes:
        receive_maximum: its Receive Maximum.
        maximum_qos: its Maximum QoS.
        retain_available: whether it takes retained messages.
        maximum_packet_size: the largest packet it takes (``None``: the protocol's).
        topic_alias_maximum: how many topic aliases a client may set.
        server_keep_alive: a keep alive it imposes (``None``: the client's).
        shared_subscriptions: whether it says it supports ``$share/...`` (a SUBSCRIBE with one
            is refused with 0x9E when not).
        wildcard_subscriptions: likewise for wildcards (0xA2).
        subscription_identifiers: likewise for subscription identifiers (0xA1).
        send_topic_aliases: set topic aliases on what it sends to clients that allow them.
        authenticate: ``(connect) -> reason code or None``: refuse a CONNECT with that code.
        authorize_publish: ``(client_id, topic) -> reason code or None``: refuse a PUBLISH.
        authorize_subscribe: ``(client_id, topic_filter) -> reason code or None``.
        enhanced_auth: ``(method) -> AuthExchange or None``: MQTT 5 enhanced authentication
            (None, or no option: CONNACK 0x8C, bad authentication method).
    """

    receive_maximum: int = 65535
    maximum_qos: QoS = QoS.EXACTLY_ONCE
    retain_available: bool = True
    maximum_packet_size: int | None = None
    topic_alias_maximum: int = 10
    server_keep_alive: int | None = None
    shared_subscriptions: bool = True
    wildcard_subscriptions: bool = True
    subscription_identifiers: bool = True
    send_topic_aliases: bool = False
    authenticate: Callable[[Connect], ReasonCode | None] | None = None
    authorize_publish: Callable[[str, str], ReasonCode | None] | None = None
    authorize_subscribe: Callable[[str, str], ReasonCode | None] | None = None
    enhanced_auth: Callable[[str], AuthExchange | None] | None = None
