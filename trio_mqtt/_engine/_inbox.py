"""Inbox: the buffer behind one subscription, between the router (which fills it) and the
application's :class:`Subscription` (which empties it).

QoS 1/2 messages come with an acknowledgement handle; the inbox acknowledges each one when the
application takes the message (``manual_ack``: never, :meth:`Message.ack` does;
``ack_on_arrival``: when it is buffered). QoS 0 messages have no flow control, so at most
``buffer_size`` of them are buffered, then the router waits (backpressure).
"""

from __future__ import annotations

from collections import deque

import trio

from .._enums import QoS
from .._io._wakeups import Waiters
from .._message import Acknowledgement, Message
from .._sansio._packets import SubscriptionRequest
from .._topics import topic_matches

# take_ready() makes the taker yield to the scheduler at least this often.
YIELD_EVERY = 64


class Inbox:
    """The messages routed to one subscription, in arrival order."""

    __slots__ = (
        "_buffer",
        "_error",
        "_handles",
        "_qos0",
        "_unyielded",
        "ack_on_arrival",
        "buffer_size",
        "closed",
        "delivered",
        "ended",
        "filters",
        "granted",
        "manual_ack",
        "receivers",
        "requests",
        "senders",
        "subscribed",
        "subscription_id",
    )

    def __init__(
        self,
        requests: tuple[SubscriptionRequest, ...],
        *,
        buffer_size: int,
        manual_ack: bool = False,
        ack_on_arrival: bool = False,
    ) -> None:
        self.requests = requests
        self.filters = tuple(r.topic_filter for r in requests)
        self.manual_ack = manual_ack
        self.ack_on_arrival = ack_on_arrival
        self.buffer_size = buffer_size
        self._buffer: deque[Message] = deque()
        # the acknowledgement handles of the QoS 1/2 messages in _buffer, in the same order
        self._handles: deque[Acknowledgement] = deque()
        self._qos0 = 0  # QoS 0 messages in the buffer
        self.receivers = Waiters()  # the application, waiting for a message
        self.senders = Waiters()  # the router, waiting for room
        self._error: BaseException | None = None
        self.closed = False  # by the application
        self.ended = False  # by the client (closed or failed)
        self.subscribed = False  # SUBACK arrived: restore it after a session loss
        self.subscription_id = 0  # its MQTT 5 subscription identifier
        self.granted: tuple[QoS, ...] = ()  # the QoS SUBACK granted each filter
        self.delivered = 0
        self._unyielded = 0  # messages taken since the taker last yielded

    def __len__(self) -> int:
        return len(self._buffer)

    def matches(self, topic: str) -> bool:
        """Whether one of the filters matches ``topic``."""
        for topic_filter in self.filters:  # noqa: SIM110 - no generator on the hot path
            if topic_matches(topic_filter, topic):
                return True
        return False

    # -- the router's side -------------------------------------------------------------------

    def deliver_nowait(self, message: Message, handle: Acknowledgement) -> None:
        """Buffer a QoS 1/2 message (bounded by the Receive Maximum, never waits)."""
        if self.closed or self.ended:
            handle.ack()
            return
        self._buffer.append(message)
        self._handles.append(handle)
        if self.ack_on_arrival:
            handle.ack()  # the broker may send the next one: bounded by full(every_qos)
        self.delivered += 1
        if self.receivers.count:
            self.receivers.wake_one()

    def full(self, *, every_qos: bool = False) -> bool:
        """Whether a QoS 0 message (``every_qos``: any message, for ``ack_on_arrival``)
        would have to wait for room."""
        count = len(self._buffer) if every_qos else self._qos0
        return count >= self.buffer_size and not (self.closed or self.ended)

    def offer(self, message: Message) -> bool:
        """Buffer a QoS 0 message if there is room (or drop it if the subscription is closed);
        False if it would have to wait."""
        if self.closed or self.ended:
            return True  # closed by the application: the message is not for it any more
        if self._qos0 >= self.buffer_size:
            return False
        self._buffer.append(message)
        self._qos0 += 1
        self.delivered += 1
        if self.receivers.count:
            self.receivers.wake_one()
        return True

    async def deliver(self, message: Message) -> None:
        """Buffer a QoS 0 message, waiting while ``buffer_size`` of them are buffered."""
        while not self.offer(message):
            await self.senders.wait()

    def finish(self, error: BaseException | None) -> None:
        """The client is done: end iteration after the buffered messages."""
        if self._error is None:
            self._error = error
        self.ended = True
        self.receivers.wake_all()
        self.senders.wake_all()

    # -- the application's side ----------------------------------------------------------------

    def take_ready(self) -> Message | None:
        """A buffered message if one is waiting and the taker need not yield first (it must
        at least every :data:`YIELD_EVERY` messages, so that a busy consumer cannot starve the
        other tasks); else ``None``: then :meth:`take` after a checkpoint."""
        buffer = self._buffer
        if buffer:
            self._unyielded += 1
            if self._unyielded < YIELD_EVERY:
                message = buffer[0]
                if message.qos:
                    return self._take()
                # _take() for QoS 0, inline: the hot path of ``async for``
                buffer.popleft()
                self._qos0 -= 1
                if self.senders.count:
                    self.senders.wake_one()
                return message
        return None

    async def take(self) -> Message:
        """Yield to the scheduler, then wait for a message.

        Raises:
            trio.ClosedResourceError, trio.EndOfChannel, the client's failure: see
                :meth:`check_readable`.
        """
        if self._buffer:
            await trio.lowlevel.cancel_shielded_checkpoint()
        self._unyielded = 0
        while not self._buffer:
            self.check_readable()
            await self.receivers.wait()
        return self._take()

    def take_nowait(self) -> Message:
        """A buffered message, or :class:`trio.WouldBlock`."""
        if not self._buffer:
            self.check_readable()
            raise trio.WouldBlock
        return self._take()

    def check_readable(self) -> None:
        """Raise why nothing more will come, if nothing will."""
        if self.closed:
            raise trio.ClosedResourceError("the subscription is closed")
        if self.ended:
            if self._error is not None:
                raise self._error
            raise trio.EndOfChannel

    def _take(self) -> Message:
        message = self._buffer.popleft()
        if message.qos == 0:
            self._qos0 -= 1
            if self.senders.count:
                self.senders.wake_one()
        else:
            handle = self._handles.popleft()
            if not self.manual_ack:
                handle.ack()  # handed over: now the broker may count it as delivered
            if self.senders.count:  # the router, waiting for room (ack_on_arrival)
                self.senders.wake_one()
        return message

    def close(self) -> None:
        """The application closed the subscription: drop what is buffered and wake everyone.

        The application will never see those messages. With ``manual_ack`` it promised to
        acknowledge only what it processed: they are left to the broker, which redelivers them
        to the session's next connection (a restarted worker). Otherwise they are acknowledged,
        or they would hold the broker's send quota (its view of our Receive Maximum) for the
        whole connection."""
        self.closed = True
        self._buffer.clear()
        while self._handles:
            handle = self._handles.popleft()
            if self.manual_ack:
                handle.abandon()
            else:
                handle.ack()
        self._qos0 = 0
        self.receivers.wake_all()
        self.senders.wake_all()
