"""Subscribing: the life of every subscription, across connections.

Entering a subscription block routes its inbox at once (retained messages may arrive right
after SUBACK, in the same read), then sends SUBSCRIBE and waits for SUBACK, on the next
connection if the current one is lost first. Leaving it unsubscribes the filters no other live
subscription uses: waiting for UNSUBACK (shielded, bounded) when the block ends normally; not
waiting when it ends by an exception or a cancellation; and not at all when the session
outlives the connection and the block ends that way (the program is stopping: its next run
resumes the session's subscriptions, and their messages are held until it subscribes).

After a reconnect without the session, every subscription that had its SUBACK is asked for
again; after one with the session, the filters left while offline are unsubscribed then.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import trio

from .._enums import ProtocolVersion, QoS, ReasonCode
from .._exceptions import MQTTError, SubscribeError, UnsubscribeError
from .._io._link import Link
from .._sansio._events import (
    Acknowledged,
    SubscribeAcknowledged,
    UnsubscribeAcknowledged,
)
from .._sansio._limits import ServerLimits
from .._sansio._packets import SubscriptionRequest
from .._sansio._poison import Poison
from .._sansio._properties import EMPTY_PROPERTIES, Properties
from ._inbox import Inbox
from ._outbox import Outbox
from ._router import NO_FILTERS, Router

_MAX_SUBSCRIPTION_ID = 268_435_455  # a Variable Byte Integer's largest
#: Seconds leaving a subscription block waits (shielded) for the UNSUBACK.
UNSUBACK_WAIT = 5.0

log = logging.getLogger("trio_mqtt")


class Subscribing:
    """Sends SUBSCRIBE/UNSUBSCRIBE for the client's subscriptions, on whichever link is up."""

    __slots__ = (
        "_allow_ids", "_next_id", "_outbox", "_persistent", "_ready", "_router", "_stale",
        "_use_ids",
    )  # fmt: skip

    def __init__(
        self,
        router: Router,
        outbox: Outbox,
        ready: Callable[[], trio.Event | None],
        *,
        identifiers: bool = True,
    ) -> None:
        self._router = router
        self._outbox = outbox
        # the event to wait on until the client is ready (None: ready now); raises if the
        # client is closed or failed
        self._ready = ready
        self._allow_ids = identifiers  # the application allows subscription identifiers
        self._use_ids = False  # ... and the broker takes them
        self._next_id = 0
        self._persistent = False  # the session outlives the connection
        # filters left while offline, to unsubscribe once the session is resumed (a frozenset,
        # replaced when it changes: an idle client holds the shared empty one)
        self._stale = NO_FILTERS

    def live_filters(self) -> set[str]:
        """The filters of every live subscription."""
        return {f for inbox in self._router.subscriptions for f in inbox.filters}

    async def _link(self) -> Link:
        """The link, once the client is connected (and restored)."""
        while (event := self._ready()) is not None:
            await event.wait()
        link = self._outbox.link
        assert link is not None
        return link

    # -- entering and leaving ---------------------------------------------------------------------

    async def enter(self, inbox: Inbox) -> None:
        """SUBSCRIBE and wait for SUBACK (on a later connection if this one is lost first).

        Raises:
            SubscribeError: SUBACK refused a filter.
        """
        self._ready()  # raises if the client is closed
        self._next_id = self._next_id % _MAX_SUBSCRIPTION_ID + 1
        inbox.subscription_id = self._next_id
        # Routed from now on: retained messages may arrive right after SUBACK, in the same read.
        self._router.add(inbox)
        try:
            while True:
                link = await self._link()
                if await self._subscribe_once(link, inbox):
                    return
        except BaseException:
            self._router.remove(inbox)
            inbox.finish(None)
            raise

    async def _subscribe_once(self, link: Link, inbox: Inbox) -> bool:
        """SUBSCRIBE and wait for SUBACK; False if the connection was lost first.

        Raises:
            SubscribeError: SUBACK refused a filter, or the broker's CONNACK said it does not
                support one (then nothing is sent: a broker answers such a SUBSCRIBE by
                disconnecting, and resubscribing after each reconnect would loop forever).
        """
        _check_supported(link.server, inbox.requests)
        properties = EMPTY_PROPERTIES
        if self._use_ids:
            properties = Properties(subscription_identifiers=(inbox.subscription_id,))
            for request in inbox.requests:
                self._router.set_filter_id(request.topic_filter, inbox.subscription_id)
        ack = await self._outbox.request(
            functools.partial(link.subscribe, inbox.requests, properties)
        )
        if ack is None:
            return False
        codes = ack.reason_codes if isinstance(ack, SubscribeAcknowledged) else ()
        if any(c.is_failure for c in codes) or len(codes) != len(inbox.requests):
            raise SubscribeError(
                codes,
                reason_string=ack.properties.reason_string,
                user_properties=ack.properties.user_properties,
            )
        inbox.subscribed = True
        inbox.granted = (
            tuple(QoS(code.value) for code in codes) if codes else inbox.granted
        )
        return True

    async def leave(self, inbox: Inbox, error: BaseException | None) -> None:
        """Unsubscribe the filters of ``inbox`` that no other live subscription uses (see
        the module docstring for when it waits, and when it does not unsubscribe)."""
        self._router.remove(inbox)
        inbox.finish(None)
        still_used = self.live_filters()
        filters = [f for f in dict.fromkeys(inbox.filters) if f not in still_used]
        link = self._outbox.link
        if not filters or self._closed():
            pass
        elif error is not None and self._persistent:
            # kept in the session: its messages are held for a later subscribe() ("orphans")
            self._router.keep(filters)
        elif link is None:
            # Offline: unsubscribe when the session is resumed (a new session has none of them).
            self._stale = self._stale.union(filters)
        elif error is not None:
            link.unsubscribe(filters)  # its UNSUBACK needs no waiter
        else:
            await self._unsubscribe_filters(link, filters)
            return
        await trio.lowlevel.cancel_shielded_checkpoint()

    def _closed(self) -> bool:
        try:
            self._ready()
        except (trio.ClosedResourceError, MQTTError):
            return True
        return False

    async def _unsubscribe_filters(self, link: Link, filters: list[str]) -> None:
        """UNSUBSCRIBE and wait (shielded, at most 5 s) for UNSUBACK; a connection or client that
        goes away first makes it moot."""
        with trio.CancelScope(shield=True):
            with trio.move_on_after(UNSUBACK_WAIT) as waited:
                try:
                    ack = await self._outbox.request(
                        functools.partial(link.unsubscribe, filters)
                    )
                except (trio.ClosedResourceError, MQTTError):
                    return  # the client closed or failed meanwhile: the UNSUBSCRIBE is moot
                if ack is not None:
                    check_unsuback(ack)
            if waited.cancelled_caught:
                # Not silent: the broker may still be sending these filters' messages (they
                # are acknowledged and dropped), and a broker that never answers is broken.
                log.warning(
                    "no UNSUBACK for %s within %gs: the broker may still send their messages",
                    filters, UNSUBACK_WAIT,
                )  # fmt: skip

    async def unsubscribe(self, filters: list[str]) -> None:
        """End the broker's subscriptions to ``filters`` (no live block uses them); waits
        until connected, then for the UNSUBACK."""
        self._router.forget(filters)
        while True:
            link = await self._link()
            ack = await self._outbox.request(
                functools.partial(link.unsubscribe, filters)
            )
            if ack is not None:
                check_unsuback(ack)
                return
            # lost before UNSUBACK: ask the next connection

    # -- connections ---------------------------------------------------------------------------------

    def link_new(self, link: Link, session_present: bool, persistent: bool) -> None:
        """A new connection, before its tasks run."""
        self._persistent = persistent
        self._router.new_connection(link, session_present)
        self._use_ids = (
            self._allow_ids
            and link.version is ProtocolVersion.V5
            and link.server.subscription_identifier_available
        )

    def restore_nowait(self, link: Link, session_present: bool) -> bool:
        """The link runs: restore what the broker forgot, when that needs no waiting. The
        broker kept the session (what was left while offline is unsubscribed, without a
        waiter), or there is nothing to renew. False if there is: then :meth:`renew`."""
        if not session_present:
            if any(inbox.subscribed for inbox in self._router.subscriptions):
                return False
        else:
            stale = self._stale - self.live_filters()
            if stale:
                link.unsubscribe(sorted(stale))  # its UNSUBACK needs no waiter
        self._stale = NO_FILTERS
        return True

    async def renew(self, link: Link) -> bool:
        """Subscribe again, one by one, to what a lost session forgot (after
        :meth:`restore_nowait` said there is some); False if the connection was lost
        meanwhile."""
        for inbox in list(self._router.subscriptions):
            if not inbox.subscribed:
                continue  # its own subscribe() is still waiting and will ask
            try:
                if not await self._subscribe_once(link, inbox):
                    return False  # lost again; the supervisor reconnects
            except SubscribeError as exc:
                self._router.remove(inbox)
                inbox.finish(exc)
        self._stale = NO_FILTERS
        return True

    def link_down(self, poison: Sequence[Poison]) -> None:
        """The connection is gone. A subscription whose renewal (after a lost session) is
        poison ends with its error: nobody awaits that SUBSCRIBE (a first one's caller hears
        it from its own request)."""
        for item in poison:
            if item.suspect.kind != "SUBSCRIBE":
                continue
            for inbox in list(self._router.subscriptions):
                filters = tuple(request.topic_filter for request in inbox.requests)
                if inbox.subscribed and filters == item.suspect.filters:
                    self._router.remove(inbox)
                    inbox.finish(item.error)

    def finish(self, error: MQTTError | None) -> None:
        """The client is done for good: end every subscription."""
        for inbox in self._router.subscriptions:
            inbox.finish(error)


def _check_supported(
    server: ServerLimits, requests: tuple[SubscriptionRequest, ...]
) -> None:
    """Raise SubscribeError, with the reason code the broker would have used, for filters its
    CONNACK said it does not support (section 3.2.2.3: Shared Subscription Available,
    Wildcard Subscription Available)."""
    codes = []
    for request in requests:
        topic_filter = request.topic_filter
        if (
            topic_filter.startswith("$share/")
            and not server.shared_subscription_available
        ):
            codes.append(ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)  # 0x9E
        elif (
            "+" in topic_filter or "#" in topic_filter
        ) and not server.wildcard_subscription_available:
            codes.append(ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED)  # 0xA2
        else:
            codes.append(ReasonCode.UNSPECIFIED_ERROR)
    if any(c is not ReasonCode.UNSPECIFIED_ERROR for c in codes):
        raise SubscribeError(
            codes,
            reason_string="not sent: the broker's CONNACK said it does not support "
            "this kind of subscription",
        )


def check_unsuback(ack: Acknowledged) -> None:
    """Raise UnsubscribeError for the first failure reason code of an UNSUBACK."""
    if isinstance(ack, UnsubscribeAcknowledged):
        for code in ack.reason_codes:
            if code.is_failure:
                raise UnsubscribeError(code, reason_string=ack.properties.reason_string)
