"""Subscription: one ``client.subscribe(...)`` as a bounded receive channel of messages."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, final

import attrs
import trio

from ._message import Message
from ._sansio._packets import SubscriptionRequest
from ._sync import Waiters
from ._topics import topic_matches

# receive() yields to the scheduler at least this often while messages are waiting.
_YIELD_EVERY = 64


@final
@attrs.frozen
class SubscriptionStatistics:
    """A snapshot of a subscription's buffer.

    Attributes:
        buffered: messages waiting to be received.
        buffer_size: the most it holds before the client stops reading the network.
        delivered: messages handed to this subscription so far.
    """

    buffered: int
    buffer_size: int
    delivered: int


class _Handle(Protocol):
    def ack(self) -> None: ...

    def abandon(self) -> None: ...


@final
class Subscription(trio.abc.ReceiveChannel[Message]):
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

    def __init__(
        self,
        requests: tuple[SubscriptionRequest, ...],
        *,
        buffer_size: int,
        manual_ack: bool = False,
        ack_on_arrival: bool = False,
        enter: Callable[[Subscription], Awaitable[None]],
        leave: Callable[[Subscription, BaseException | None], Awaitable[None]],
    ) -> None:
        self.requests = requests
        self._filters = tuple(r.topic_filter for r in requests)
        self.manual_ack = manual_ack
        self.ack_on_arrival = ack_on_arrival
        self._buffer_size = buffer_size
        self._buffer: deque[Message] = deque()
        # the acknowledgement handles of the QoS 1/2 messages in _buffer, in the same order
        self._handles: deque[_Handle] = deque()
        self._qos0 = 0  # QoS 0 messages in the buffer
        self._receivers = Waiters()  # receive() waiting for a message
        self._senders = Waiters()  # the reader waiting for room for a QoS 0 message
        self._enter = enter
        self._leave = leave
        self._error: BaseException | None = None
        self._entered = False
        self._closed = False
        self._ended = False
        self._subscribed = False  # SUBACK arrived: restore it after a session loss
        self._subscription_id = 0  # its MQTT 5 subscription identifier
        self._delivered = 0
        self._unyielded = 0  # messages taken since receive() last yielded

    @property
    def filters(self) -> tuple[str, ...]:
        """The topic filters of this subscription."""
        return self._filters

    def __repr__(self) -> str:
        return f"<Subscription {list(self.filters)}>"

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a Subscription can be entered only once")
        self._entered = True
        await self._enter(self)
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

        Raises:
            ConnectionLostError: the client stopped for good (after the buffered messages were
                received).
            trio.ClosedResourceError: the subscription was closed.
            trio.EndOfChannel: the client was closed (ends ``async for``).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._buffer:
            # A message is waiting: take it without a trip through the scheduler, but yield
            # at least every _YIELD_EVERY messages so that a busy consumer cannot starve the
            # other tasks (the reader included).
            self._unyielded += 1
            if self._unyielded < _YIELD_EVERY:
                return self._take()
        return await self._wait()

    async def __anext__(self) -> Message:
        # receive() inlined: ``async for`` is how messages are mostly read.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._buffer:
            self._unyielded += 1
            if self._unyielded < _YIELD_EVERY:
                return self._take()
        try:
            return await self._wait()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def _wait(self) -> Message:
        """Yield to the scheduler, then wait for a message (the slow half of receive())."""
        if self._buffer:
            await trio.lowlevel.cancel_shielded_checkpoint()
        self._unyielded = 0
        while not self._buffer:
            self._check_readable()
            await self._receivers.wait()
        return self._take()

    def receive_nowait(self) -> Message:
        """Return a buffered message, or raise :class:`trio.WouldBlock` if there is none."""
        if not self._buffer:
            self._check_readable()
            raise trio.WouldBlock
        return self._take()

    def _check_readable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the subscription is closed")
        if self._ended:
            if self._error is not None:
                raise self._error
            raise trio.EndOfChannel

    def _take(self) -> Message:
        message = self._buffer.popleft()
        if message.qos == 0:
            self._qos0 -= 1
            if self._senders.count:
                self._senders.wake_one()
        else:
            handle = self._handles.popleft()
            if not self.manual_ack:
                handle.ack()  # handed over: now the broker may count it as delivered
            if self._senders.count:  # the reader, waiting for room (ack_on_arrival)
                self._senders.wake_one()
        return message

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
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._drop_buffered()
        self._receivers.wake_all()
        self._senders.wake_all()
        if self._entered:
            await self._leave(self, error)
        else:
            await trio.lowlevel.checkpoint()

    def _drop_buffered(self) -> None:
        # The application will never see these. With manual_ack it promised to acknowledge only
        # what it processed: leave them to the broker, which redelivers them to the session's
        # next connection (a restarted worker). Otherwise acknowledge them, or they would hold
        # the broker's send quota (its view of our Receive Maximum) for the whole connection.
        self._buffer.clear()
        while self._handles:
            handle = self._handles.popleft()
            if self.manual_ack:
                handle.abandon()
            else:
                handle.ack()
        self._qos0 = 0

    def statistics(self) -> SubscriptionStatistics:
        """Buffer occupancy and delivery count."""
        return SubscriptionStatistics(
            buffered=len(self._buffer),
            buffer_size=self._buffer_size,
            delivered=self._delivered,
        )

    # -- used by the client --------------------------------------------------------------------

    def _matches(self, topic: str) -> bool:
        for topic_filter in self._filters:  # noqa: SIM110 - no generator on the hot path
            if topic_matches(topic_filter, topic):
                return True
        return False

    def _deliver_nowait(self, message: Message, handle: _Handle) -> None:
        """Buffer a QoS 1/2 message (bounded by the Receive Maximum, never waits)."""
        if self._closed or self._ended:
            handle.ack()
            return
        self._buffer.append(message)
        self._handles.append(handle)
        if self.ack_on_arrival:
            handle.ack()  # the broker may send the next one: bounded by _full(every_qos)
        self._delivered += 1
        if self._receivers.count:
            self._receivers.wake_one()

    def _full(self, *, every_qos: bool = False) -> bool:
        """Whether a QoS 0 message (``every_qos``: any message, for ``ack_on_arrival``)
        would have to wait for room."""
        count = len(self._buffer) if every_qos else self._qos0
        return count >= self._buffer_size and not (self._closed or self._ended)

    def _offer(self, message: Message) -> bool:
        """Buffer a QoS 0 message if there is room (or drop it if the subscription is closed);
        False if it would have to wait."""
        if self._closed or self._ended:
            return True  # closed by the application: the message is not for it any more
        if self._qos0 >= self._buffer_size:
            return False
        self._buffer.append(message)
        self._qos0 += 1
        self._delivered += 1
        if self._receivers.count:
            self._receivers.wake_one()
        return True

    async def _deliver(self, message: Message) -> None:
        """Buffer a QoS 0 message, waiting while ``buffer_size`` of them are buffered."""
        while not self._offer(message):
            await self._senders.wait()

    def _finish(self, error: BaseException | None) -> None:
        """The client is done: end iteration after the buffered messages."""
        if self._error is None:
            self._error = error
        self._ended = True
        self._receivers.wake_all()
        self._senders.wake_all()
