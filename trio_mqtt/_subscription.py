"""Subscription: one ``client.subscribe(...)`` as a bounded receive channel of messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import final

import attrs
import trio

from ._message import Message
from ._sansio._packets import SubscriptionRequest
from ._topics import topic_matches


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


@final
class Subscription(trio.abc.ReceiveChannel[Message]):
    """The messages matching one subscription's topic filters, in arrival order.

    Use it as an async context manager (SUBSCRIBE on entry, UNSUBSCRIBE on exit) and iterate it.
    Its buffer is bounded: when it is full the client stops reading from the network until the
    application catches up (backpressure; nothing is dropped). Don't create it directly: call
    :meth:`MQTTClient.subscribe`.
    """

    def __init__(
        self,
        requests: tuple[SubscriptionRequest, ...],
        *,
        buffer_size: int,
        enter: Callable[[Subscription], Awaitable[None]],
        leave: Callable[[Subscription], Awaitable[None]],
    ) -> None:
        self.requests = requests
        self._buffer_size = buffer_size
        self._send, self._receive = trio.open_memory_channel[Message](buffer_size)
        self._enter = enter
        self._leave = leave
        self._error: BaseException | None = None
        self._entered = False
        self._closed = False
        self._delivered = 0

    @property
    def filters(self) -> tuple[str, ...]:
        """The topic filters of this subscription."""
        return tuple(r.topic_filter for r in self.requests)

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
        await self.aclose()

    async def receive(self) -> Message:
        """Wait for the next message. A checkpoint.

        Raises:
            ConnectionLostError: the connection ended (after the buffered messages were received).
            trio.ClosedResourceError: the subscription was closed.
            trio.EndOfChannel: the client was closed (ends ``async for``).
        """
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise

    def receive_nowait(self) -> Message:
        """Return a buffered message, or raise :class:`trio.WouldBlock` if there is none."""
        try:
            return self._receive.receive_nowait()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise

    async def aclose(self) -> None:
        """Unsubscribe (filters no other live subscription uses) and close. Idempotent.

        The UNSUBSCRIBE exchange is shielded from cancellation for at most a few seconds.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._receive.close()
        if self._entered:
            await self._leave(self)

    def statistics(self) -> SubscriptionStatistics:
        """Buffer occupancy and delivery count."""
        stats = self._receive.statistics()
        return SubscriptionStatistics(
            buffered=stats.current_buffer_used,
            buffer_size=self._buffer_size,
            delivered=self._delivered,
        )

    # -- used by the client --------------------------------------------------------------------

    def _matches(self, topic: str) -> bool:
        return any(topic_matches(r.topic_filter, topic) for r in self.requests)

    async def _deliver(self, message: Message) -> None:
        try:
            await self._send.send(message)
            self._delivered += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # closed by the application meanwhile: the message is not for it any more

    def _finish(self, error: BaseException | None) -> None:
        if self._error is None:
            self._error = error
        self._send.close()
