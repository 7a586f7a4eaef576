"""Responses: the requester's side of MQTT 5 request/response (section 4.10).

One response subscription per client, made by the first request: its topic is built from the
broker's Response Information when the CONNACK gave one (asked for with Request Response
Information), else from a prefix and a random token of the client's own. Each request publishes
with that Response Topic and fresh Correlation Data, and waits for the message that carries the
same Correlation Data back.

The subscription's inbox is a :class:`ResponseInbox`: the router hands it each response, which
it passes straight to the waiting request (and acknowledges), in the reader's task: no task of
its own, and no buffer. A response nobody waits for (late: its request timed out or was
cancelled, which removed its entry) is dropped with a debug log. Like any subscription it is
renewed after a reconnect without the session.
"""

from __future__ import annotations

import logging
import secrets

import trio

from .._enums import QoS
from .._message import Acknowledgement, Message
from .._sansio._packets import SubscriptionRequest
from ._inbox import Inbox
from ._subscribing import Subscribing

log = logging.getLogger("trio_mqtt")

#: The response topic's prefix when the broker gives no Response Information.
RESPONSE_PREFIX = "trio-mqtt/responses"


class _Waiter:
    __slots__ = ("event", "message")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.message: Message | None = None


class ResponseInbox(Inbox):
    """The response subscription's inbox: each message goes to its request at once."""

    __slots__ = ("waiting",)

    def __init__(self, topic: str) -> None:
        super().__init__(
            (SubscriptionRequest(topic_filter=topic, qos=QoS.AT_LEAST_ONCE),),
            buffer_size=1,
        )
        #: correlation data -> the request waiting for it
        self.waiting: dict[bytes, _Waiter] = {}

    def _dispatch(self, message: Message) -> None:
        key = message.properties.correlation_data
        waiter = self.waiting.pop(key, None) if key is not None else None
        if waiter is None:
            log.debug("response on %r dropped: no request waits for it", message.topic)
            return
        waiter.message = message
        waiter.event.set()

    def deliver_nowait(self, message: Message, handle: Acknowledgement) -> None:
        handle.ack()
        self._dispatch(message)

    def offer(self, message: Message) -> bool:
        self._dispatch(message)
        return True

    def full(self, *, every_qos: bool = False) -> bool:
        return False

    def finish(self, error: BaseException | None) -> None:
        super().finish(error)
        for waiter in self.waiting.values():
            waiter.event.set()  # message None: the client ended
        self.waiting.clear()


class Responses:
    """The client's response subscription and the requests waiting on it."""

    __slots__ = ("_inbox", "_setup", "_subscribing")

    def __init__(self, subscribing: Subscribing) -> None:
        self._subscribing = subscribing
        self._inbox: ResponseInbox | None = None
        self._setup = trio.Lock()

    async def _ready(self, response_information: str | None) -> ResponseInbox:
        """The response subscription, made (SUBSCRIBE, SUBACK) by the first caller."""
        async with self._setup:
            inbox = self._inbox
            if inbox is None or inbox.ended:
                base = (response_information or RESPONSE_PREFIX).rstrip("/")
                inbox = ResponseInbox(f"{base}/{secrets.token_hex(8)}")
                await self._subscribing.enter(inbox)
                self._inbox = inbox
            return inbox

    async def open(
        self, response_information: str | None
    ) -> tuple[str, bytes, _Waiter]:
        """Make sure the response subscription exists; register a new request. Returns its
        response topic, correlation data and the waiter to pass to :meth:`wait`."""
        inbox = await self._ready(response_information)
        correlation = secrets.token_bytes(16)
        waiter = _Waiter()
        inbox.waiting[correlation] = waiter
        return inbox.filters[0], correlation, waiter

    def forget(self, correlation: bytes) -> None:
        """The request is over (answered, timed out, cancelled or failed)."""
        if self._inbox is not None:
            self._inbox.waiting.pop(correlation, None)

    @staticmethod
    async def wait(waiter: _Waiter) -> Message | None:
        """The response, or ``None`` if the client ended first."""
        await waiter.event.wait()
        return waiter.message
