"""Router: inbound messages to subscriptions, and their acknowledgements back to the broker.

A QoS 1/2 message becomes one :class:`_Delivery`, shared by every subscription it is routed to;
each inbox gets its :class:`_Share` (an :class:`Acknowledgement`). The PUBACK/PUBREC is queued
when every share is acknowledged: by the subscription when the application receives the message, or by
:meth:`Message.ack` with ``manual_ack``. The Receive Maximum we advertise therefore bounds how many
such messages are buffered, and the reader never waits for a slow consumer on their account.

Deliveries outlive their connection. One not yet acknowledged on the wire when the link drops
stays in ``held``; when the resumed session redelivers it (same packet id, DUP=1, [MQTT-4.4.0-1]), the
redelivery is not handed to the application again: the delivery is re-bound to the new connection
and its acknowledgement leaves there. That is what keeps QoS 2 exactly-once across reconnects
even for messages still sitting in a subscription's buffer.

Orphans. A resumed session's queue arrives right after CONNACK, before the application (a new
process, say) has opened the subscription it is for. A QoS 1/2 message whose topic matches no
filter this client has subscribed to is therefore held, unacknowledged, and handed to the first
subscription that matches it; if none ever does, it is redelivered to the next connection of the
session. Nothing is ever acknowledged and then dropped. A message matching a filter this client
unsubscribed from is acknowledged at once (in flight when we unsubscribed).

Bounds. Every QoS 1/2 message routed (buffered by subscriptions, or held) stays unacknowledged
until the application takes it, so our Receive Maximum bounds them all: an MQTT 5 broker sends
no more ([MQTT-3.3.4-9]). MQTT 3.1.1 has no way to announce it, so the broker may send more;
there the reader waits, reading nothing, while ``receive_maximum`` routed messages are
unacknowledged (backpressure instead of a disconnect over a limit the broker never heard of).
"""

from __future__ import annotations

import logging

from .._enums import ProtocolVersion
from .._io._link import Link
from .._io._wakeups import Waiters
from .._message import message_from_publish, new_message
from .._sansio._packets import Publish
from .._topics import topic_matches
from ._inbox import Inbox

log = logging.getLogger("trio_mqtt")

#: The most topics whose routes are remembered.
ROUTE_CACHE_SIZE = 1024


#: The empty filter set, shared (a new empty set is 216 bytes, per idle client).
NO_FILTERS: frozenset[str] = frozenset()


class _Delivery:
    __slots__ = ("abandoned", "link", "packet_id", "pending", "router")

    def __init__(
        self, router: Router, link: Link, packet_id: int, pending: int
    ) -> None:
        self.router = router
        self.link = (
            link  # the connection it arrived on: its acknowledgement leaves there
        )
        self.packet_id = packet_id
        self.pending = pending
        self.abandoned = False

    def release(self) -> None:
        self.pending -= 1
        if self.pending == 0 and not self.abandoned:
            self.router.acknowledge(self)


class _Share:
    __slots__ = ("delivery", "done")

    def __init__(self, delivery: _Delivery) -> None:
        self.delivery = delivery
        self.done = False

    def ack(self) -> None:
        if not self.done:
            self.done = True
            self.delivery.release()

    def abandon(self) -> None:
        """Never acknowledge this message: the broker redelivers it to the session's next
        connection, where it is routed afresh."""
        if not self.done:
            self.done = True
            delivery = self.delivery
            delivery.abandoned = True
            held = delivery.router.held
            if held.get(delivery.packet_id) is delivery:
                del held[delivery.packet_id]


class Router:
    """Routes inbound PUBLISHes of one client to its subscriptions."""

    __slots__ = (
        "_eager",
        "_limit",
        "_room",
        "_routes",
        "filter_ids",
        "held",
        "known",
        "link",
        "orphans",
        "subscriptions",
        "unacked",
    )

    def __init__(self) -> None:
        # (tuples, replaced when they change, and None: an empty list is one more object
        # for the garbage collector per idle client)
        self.subscriptions: tuple[Inbox, ...] = ()
        #: MQTT 5 subscription identifier of each topic filter, when the broker supports them.
        self.filter_ids: dict[str, int] = {}
        self.held: dict[int, _Delivery] = {}
        #: Every filter subscribed to in this process: a message matching none is an orphan.
        self.known = NO_FILTERS  # replaced as it grows (rarely)
        self.orphans: list[tuple[Publish, _Delivery]] | None = None  # rare: not a deque
        self.link: Link | None = None  # the current connection
        #: QoS 1/2 messages routed on this connection and not yet acknowledged (see Bounds)
        self.unacked = 0
        # the most of them before the reader waits (MQTT 3.1.1 only: see Bounds)
        self._limit = 1 << 62
        self._room = Waiters()  # the reader, waiting for unacked to fall below _limit
        self._eager = (
            0  # live ack_on_arrival subscriptions (they may have to be waited for)
        )
        # topic -> (subscription identifiers, the subscriptions it routes to)
        self._routes: dict[str, tuple[tuple[int, ...], tuple[Inbox, ...]]] = {}

    def new_connection(self, link: Link, session_present: bool) -> None:
        """A new connection is up; without the session, no redelivery will come."""
        self.link = link
        self.unacked = 0
        v311 = link.version is ProtocolVersion.V311
        self._limit = link.receive_maximum if v311 else 1 << 62
        if not session_present:
            self.held.clear()

    def acknowledge(self, delivery: _Delivery) -> None:
        """Every subscription it went to has taken ``delivery``: acknowledge it to the broker
        (if its connection is still the current one)."""
        link = delivery.link
        if link is self.link and link.connected:
            link.acknowledge(delivery.packet_id)
            self.unacked -= 1
            if self._room.count and self.unacked < self._limit:
                self._room.wake_all()
            # Forgotten now: once a PUBACK may have left, a PUBLISH reusing the id is a new
            # message, DUP or not ([MQTT-4.3.2-5]); QoS 2 is guarded by the session's inbound
            # state instead. A redelivery of this one is then a QoS 1 duplicate (allowed).
            if self.held.get(delivery.packet_id) is delivery:
                del self.held[delivery.packet_id]
        # else: acknowledged while offline, never sent: the resumed session's redelivery is
        # answered from ``held``.

    def routes_to(self, subscription: Inbox, publish: Publish) -> bool:
        ids = publish.properties.subscription_identifiers
        if not ids:
            return subscription.matches(publish.topic)
        owners = self.filter_ids
        for topic_filter in subscription.filters:
            if owners.get(topic_filter) in ids and topic_matches(
                topic_filter, publish.topic
            ):
                return True
        return False

    def _targets(self, publish: Publish) -> tuple[Inbox, ...]:
        # Topics repeat: the match is worked out once per topic and remembered, with the
        # identifiers it was for, until the subscriptions change (bounded; cleared when full).
        ids = publish.properties.subscription_identifiers
        known = self._routes.get(publish.topic)
        if known is not None and known[0] == ids:
            return known[1]
        targets = tuple(s for s in self.subscriptions if self.routes_to(s, publish))
        if not targets and ids:
            # identifiers of an earlier process's subscriptions (a resumed session's queue)
            targets = tuple(s for s in self.subscriptions if s.matches(publish.topic))
        if len(self._routes) >= ROUTE_CACHE_SIZE:
            self._routes.clear()
        self._routes[publish.topic] = (ids, targets)
        return targets

    def set_filter_id(self, topic_filter: str, identifier: int) -> None:
        """Messages carrying ``identifier`` are for the subscription with ``topic_filter``."""
        self.filter_ids[topic_filter] = identifier
        self._routes.clear()

    def remove(self, subscription: Inbox) -> None:
        """Route nothing more to ``subscription`` (if it is routed to)."""
        if subscription in self.subscriptions:
            self.subscriptions = tuple(
                s for s in self.subscriptions if s is not subscription
            )
            self._routes.clear()
            self._eager -= subscription.ack_on_arrival

    def route_nowait(self, publish: Publish) -> bool:
        """Route ``publish`` if that needs no waiting; False if a QoS 0 message meets a full
        subscription buffer (then :meth:`route` waits for room: backpressure)."""
        targets = self._targets(publish)
        if publish.qos:
            if self.unacked >= self._limit or (
                self._eager and _full(targets) is not None
            ):
                return False  # wait for room (see Bounds)
            self._route_acknowledged(publish, targets)
            return True
        if len(targets) == 1:  # the common case: one test and one append
            p = publish
            message = new_message(
                topic=p.topic, payload=p.payload, qos=p.qos, retain=p.retain,
                properties=p.properties, acknowledger=None,
            )  # fmt: skip
            return targets[0].offer(message)
        for subscription in targets:
            if subscription.full():
                return False
        if targets:
            message = message_from_publish(publish)
            for subscription in targets:
                subscription.offer(message)
        return True

    async def route(self, publish: Publish) -> None:
        """Hand one inbound message to every subscription it is for."""
        targets = self._targets(publish)
        if not publish.qos:
            message = message_from_publish(publish)
            for subscription in targets:
                await subscription.deliver(message)
            return
        while True:
            if self.unacked >= self._limit:
                log.debug(
                    "%d messages unacknowledged (receive_maximum): reading paused",
                    self.unacked,
                )
                await self._room.wait()
            elif self._eager and (full := _full(targets)) is not None:
                await full.senders.wait()  # an ack_on_arrival subscription's buffer
            else:
                break
            targets = self._targets(publish)  # the subscriptions may have changed
        self._route_acknowledged(publish, targets)

    def _route_acknowledged(self, publish: Publish, targets: tuple[Inbox, ...]) -> None:
        """QoS 1/2, once there is room (see Bounds): never waits."""
        link = self.link
        assert link is not None
        packet_id = publish.packet_id
        assert packet_id is not None
        held = self.held.get(packet_id)
        if held is not None:
            if publish.dup:
                # The resumed session's redelivery of a message the application already has.
                held.link = link
                self.unacked += 1
                if held.pending == 0:
                    self.acknowledge(held)
                return
            del self.held[packet_id]  # not a redelivery: the old one is moot
        delivery = _Delivery(self, link, packet_id, len(targets) or 1)
        self.unacked += 1
        if not targets:
            if any(topic_matches(f, publish.topic) for f in self.known):
                delivery.release()  # in flight when we unsubscribed: acknowledge it
            else:
                self._hold_orphan(publish, delivery)
            return
        self.held[packet_id] = delivery
        for subscription in targets:
            handle = _Share(delivery)
            message = message_from_publish(
                publish, handle if subscription.manual_ack else None
            )
            subscription.deliver_nowait(message, handle)

    def _hold_orphan(self, publish: Publish, delivery: _Delivery) -> None:
        self.held[delivery.packet_id] = delivery
        if self.orphans is None:
            log.info(
                "holding queued messages for a subscription not opened yet (first on %r)",
                publish.topic,
            )
            self.orphans = []
        self.orphans.append((publish, delivery))

    def keep(self, filters: list[str]) -> None:
        """The broker keeps subscriptions to ``filters`` that no live subscription has (a
        persistent session): their messages are held as orphans for a later subscription."""
        self.known = self.known.difference(filters)
        self._routes.clear()

    def forget(self, filters: list[str]) -> None:
        """The application unsubscribes from ``filters``: their messages still on the way
        are acknowledged and dropped (they are "known", see Orphans)."""
        self.known = self.known.union(filters)
        self._routes.clear()

    def add(self, subscription: Inbox) -> None:
        """Route to ``subscription`` from now on; first hand it the orphans it matches."""
        self.subscriptions = (*self.subscriptions, subscription)
        self._eager += subscription.ack_on_arrival
        self._routes.clear()
        self.known = self.known.union(subscription.filters)
        if not self.orphans:
            return
        kept: list[tuple[Publish, _Delivery]] = []
        for publish, delivery in self.orphans:
            if not subscription.matches(publish.topic):
                kept.append((publish, delivery))
                continue
            handle = _Share(delivery)
            message = message_from_publish(
                publish, handle if subscription.manual_ack else None
            )
            subscription.deliver_nowait(message, handle)
        self.orphans = kept or None


def _full(targets: tuple[Inbox, ...]) -> Inbox | None:
    """The first ``ack_on_arrival`` subscription among ``targets`` with a full buffer."""
    for subscription in targets:
        if subscription.ack_on_arrival and subscription.full(every_qos=True):
            return subscription
    return None
