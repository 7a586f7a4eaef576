"""Request/response (MQTT 5 section 4.10): the responder's :class:`Request` and
:class:`Requests`, and the requester's side of :meth:`MQTTClient.request`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import final

import trio

from ._construct import NoPublicConstructor
from ._engine._responses import Responses
from ._enums import QoS
from ._exceptions import LocalProtocolError
from ._message import Message, PublishResult
from ._sansio._properties import Properties
from ._subscription import Subscription


async def request(
    publish: Callable[..., Awaitable[PublishResult]],
    responses: Responses,
    response_information: str | None,
    topic: str,
    payload: bytes | bytearray | memoryview | str,
    *,
    qos: QoS | int,
    properties: Properties | None,
    content_type: str | None,
    user_properties: Sequence[tuple[str, str]],
) -> Message:
    """:meth:`MQTTClient.request` (see there)."""
    if properties is not None and (
        properties.response_topic is not None or properties.correlation_data is not None
    ):
        raise ValueError(
            "request() sets the Response Topic and Correlation Data itself: leave them out"
        )
    response_topic, correlation, waiter = await responses.open(response_information)
    try:
        await publish(
            topic, payload, qos=qos, properties=properties,
            content_type=content_type, user_properties=user_properties,
            response_topic=response_topic, correlation_data=correlation,
        )  # fmt: skip
        message = await responses.wait(waiter)
    finally:
        responses.forget(correlation)  # answered, failed, cancelled or timed out
    if message is None:
        raise trio.ClosedResourceError("the client closed before the response came")
    return message


@final
class Request(metaclass=NoPublicConstructor):
    """A request a responder received (see :meth:`MQTTClient.serve`).

    Attributes:
        message: the request message as received: topic, payload, properties.
    """

    __slots__ = ("_publish", "message")

    def __init__(
        self, message: Message, publish: Callable[..., Awaitable[PublishResult]]
    ) -> None:
        self.message = message
        self._publish = publish

    def __repr__(self) -> str:
        return f"<Request on {self.message.topic!r}, reply to {self.response_topic!r}>"

    @property
    def payload(self) -> bytes:
        """The request's payload."""
        return self.message.payload

    @property
    def response_topic(self) -> str | None:
        """Where the requester waits for the response (``None``: it gave none)."""
        return self.message.properties.response_topic

    async def reply(
        self,
        payload: bytes | bytearray | memoryview | str = b"",
        *,
        qos: QoS | int = QoS.AT_LEAST_ONCE,
        content_type: str | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
        properties: Properties | None = None,
    ) -> PublishResult:
        """Publish the response to the request's Response Topic, with its Correlation Data.

        Args:
            payload: the response (as for :meth:`MQTTClient.publish`).
            qos: its QoS (1 by default).
            content_type: its Content Type.
            user_properties: its User Properties.
            properties: any other PUBLISH properties (not Response Topic or Correlation
                Data, which come from the request).

        Returns:
            What :meth:`MQTTClient.publish` returns.

        Raises:
            LocalProtocolError: the request has no Response Topic: there is nowhere to reply
                (nothing is sent).
            PublishError, ...: as :meth:`MQTTClient.publish`.
        """
        topic = self.response_topic
        if topic is None:
            raise LocalProtocolError(
                f"the request on {self.message.topic!r} has no Response Topic: there is "
                "nowhere to reply"
            )
        return await self._publish(
            topic, payload, qos=qos, properties=properties, content_type=content_type,
            user_properties=user_properties,
            correlation_data=self.message.properties.correlation_data,
        )  # fmt: skip


@final
class Requests(metaclass=NoPublicConstructor):
    """The requests arriving on a service's topic filters, as an async iterator of
    :class:`Request`; get one from :meth:`MQTTClient.serve` (an ``async with`` block that
    subscribes on entry and unsubscribes on exit)."""

    __slots__ = ("_publish", "_subscription")

    def __init__(
        self,
        subscription: Subscription,
        publish: Callable[..., Awaitable[PublishResult]],
    ) -> None:
        self._subscription = subscription
        self._publish = publish

    async def receive(self) -> Request:
        """The next request.

        Returns:
            A :class:`Request`, with :meth:`Request.reply`.

        Raises:
            Whatever :meth:`Subscription.receive` raises.
        """
        message = await self._subscription.receive()
        return Request._create(message, self._publish)

    def __aiter__(self) -> Requests:
        return self

    async def __anext__(self) -> Request:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Requests:
        await self._subscription.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._subscription.__aexit__(exc_type, exc, tb)
