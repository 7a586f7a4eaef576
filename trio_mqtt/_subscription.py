"""Subscription: one ``client.subscribe(...)`` as a bounded receive channel of messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import final

import trio

from ._construct import NoPublicConstructor
from ._engine._inbox import Inbox
from ._engine._metrics import subscription_statistics
from ._enums import QoS
from ._message import Message
from ._sansio._packets import SubscriptionRequest
from ._statistics import SubscriptionStatistics


@final
class Subscription(trio.abc.ReceiveChannel[Message], metaclass=NoPublicConstructor):
    """The messages matching one subscription's topic filters, in arrival order.

    Use it as an async context manager (SUBSCRIBE on entry, UNSUBSCRIBE on exit) and iterate it.
    When the session outlives the connection, a block left by an exception or a cancellation
    (the program is stopping) does not unsubscribe: the broker keeps the subscription and
    queues its messages for the session's next connection.

    Buffering. QoS 1 and 2 messages are acknowledged to the broker only when the application
    receives them (or, with ``manual_ack=True``, when it calls :meth:`Message.ack`), so the
    broker never has more of them outstanding than the client's Receive Maximum: they are always
    buffered, and the network reader never waits for a slow consumer on their account. QoS 0
    messages have no such flow control: at most ``buffer_size`` of them are buffered, then the
    client stops reading the network until the application catches up (backpressure; nothing is
    dropped). With ``ack_on_arrival=True``, QoS 1/2 messages are acknowledged as they are
    buffered, and ``buffer_size`` bounds them too. Don't create it directly: call
    :meth:`MQTTClient.subscribe`.
    """

    __slots__ = ("_enter", "_entered", "_inbox", "_leave")

    def __init__(
        self,
        inbox: Inbox,
        enter: Callable[[Inbox], Awaitable[None]],
        leave: Callable[[Inbox, BaseException | None], Awaitable[None]],
    ) -> None:
        self._inbox = inbox
        self._enter = enter  # SUBSCRIBE and wait for SUBACK
        self._leave = leave  # UNSUBSCRIBE (if nothing else uses the filters)
        self._entered = False

    @property
    def filters(self) -> tuple[str, ...]:
        """The topic filters of this subscription."""
        return self._inbox.filters

    @property
    def requests(self) -> tuple[SubscriptionRequest, ...]:
        """The filters with their options, as sent in SUBSCRIBE."""
        return self._inbox.requests

    @property
    def manual_ack(self) -> bool:
        """Whether the application acknowledges QoS 1/2 messages itself (:meth:`Message.ack`)."""
        return self._inbox.manual_ack

    @property
    def ack_on_arrival(self) -> bool:
        """Whether QoS 1/2 messages are acknowledged as soon as they are buffered."""
        return self._inbox.ack_on_arrival

    def __repr__(self) -> str:
        return f"<Subscription {list(self.filters)}>"

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a Subscription can be entered only once")
        self._entered = True
        await self._enter(self._inbox)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(exc)

    async def receive(self) -> Message:
        """Wait for the next message.

        A cancellation point. It yields to other tasks when it has to wait, and at least every
        64 messages otherwise: taking a buffered message costs no trip through the scheduler.

        Returns:
            The next :class:`Message`, in arrival order.

        Raises:
            ConnectionLostError: the client stopped for good (after the buffered messages were
                received).
            trio.ClosedResourceError: the subscription was closed.
            trio.EndOfChannel: the client was closed (ends ``async for``).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        inbox = self._inbox
        message = inbox.take_ready()
        if message is not None:
            return message
        return await inbox.take()

    async def __anext__(self) -> Message:
        # receive(), with EndOfChannel as StopAsyncIteration: ``async for`` is how messages
        # are mostly read, so not through a second coroutine
        await trio.lowlevel.checkpoint_if_cancelled()
        inbox = self._inbox
        message = inbox.take_ready()
        if message is not None:
            return message
        try:
            return await inbox.take()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def receive_nowait(self) -> Message:
        """Return a buffered message, or raise :class:`trio.WouldBlock` if there is none.

        Returns:
            The next buffered :class:`Message`.

        Raises:
            trio.WouldBlock: nothing is buffered.
            trio.ClosedResourceError, trio.EndOfChannel, ConnectionLostError: as
                :meth:`receive`.
        """
        return self._inbox.take_nowait()

    async def aclose(self) -> None:
        """Unsubscribe (filters no other live subscription uses) and close. Idempotent.

        Messages still buffered are dropped: acknowledged, or, with ``manual_ack``, left
        unacknowledged for the broker to redeliver to the session's next connection. The
        UNSUBSCRIBE exchange is shielded from cancellation for at most a few seconds.

        Raises:
            UnsubscribeError: the broker refused the UNSUBSCRIBE.
        """
        await self._close(None)

    async def _close(self, error: BaseException | None) -> None:
        """Close; ``error`` is what ends the ``async with`` block, if anything (then the
        UNSUBSCRIBE is not waited for, and a persistent session keeps the subscription)."""
        inbox = self._inbox
        if inbox.closed:
            await trio.lowlevel.checkpoint()
            return
        inbox.close()
        if self._entered:
            await self._leave(inbox, error)
        else:
            await trio.lowlevel.checkpoint()

    @property
    def granted_qos(self) -> tuple[QoS, ...]:
        """The QoS the broker granted each topic filter, in request order (SUBACK; renewed
        when the subscription is after a reconnect). Empty until SUBACK. A broker may grant
        less than asked (its Maximum QoS), and messages then come at most at that QoS."""
        return self._inbox.granted

    def statistics(self) -> SubscriptionStatistics:
        """Buffer occupancy, delivery count and topic filters.

        Returns:
            A :class:`SubscriptionStatistics` snapshot.

        Raises:
            Nothing: it works on a closed subscription too.
        """
        return subscription_statistics(self._inbox)
