"""Pipeline: many QoS 1/2 publishes in flight from one task, with backpressure.

``await pipe.publish(...)`` hands the message to the connection (or the offline queue) and
returns; it waits only while ``max_in_flight`` of the pipeline's messages are unacknowledged.
Each message's outcome comes back through its :class:`Request`'s ``on_done`` callback (called
by the reader as the acknowledgement arrives): no task, and no awaiting, per message. Memory is
bounded by ``max_in_flight`` requests; order is the client's (one outbox, call order).

Leaving the block normally waits until every message is acknowledged and raises
:class:`PipelineError` if any failed. A failure stops the pipeline early: the next
``publish()`` raises it (as a nursery stops at its first error), and leaving the block then
still waits for the rest, so that every failure is reported, each with its message. Leaving by
another exception or a cancellation does not wait: messages not yet handed to a connection are
taken back (nothing of them is sent), the others stay in the session until the broker
completes them, as a cancelled ``publish()`` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import final

import attrs
import trio

from ._construct import NoPublicConstructor
from ._engine._outbox import Outbox, Request
from ._enums import QOS_LEVELS, ProtocolVersion, QoS
from ._exceptions import MQTTError
from ._message import PublishResult
from ._options import check_qos, publish_properties
from ._sansio._packets import payload_bytes
from ._sansio._properties import Properties


@final
@attrs.frozen(kw_only=True)
class PublishFailure:
    """One message of a pipeline that failed.

    Attributes:
        index: its place in the pipeline: 0 for the first ``publish()`` call, 1 for the next...
        topic: its topic.
        payload: its payload.
        qos: its QoS.
        error: why: a :class:`PublishError` (the broker's reason code), or another
            :class:`MQTTError` (e.g. the client stopped reconnecting).
    """

    index: int
    topic: str
    payload: bytes = attrs.field(repr=lambda p: f"<{len(p)} bytes>")
    qos: QoS
    error: BaseException = attrs.field(eq=False)  # exceptions compare by identity


class PipelineError(MQTTError):
    """Raised by a :meth:`MQTTClient.pipeline` block (and by its next ``publish()``) when
    messages of the pipeline failed.

    Attributes:
        failures: every message that failed, in the order their outcomes came.
    """

    def __init__(self, failures: Sequence[PublishFailure]) -> None:
        first = failures[0]
        more = f" and {len(failures) - 1} more" if len(failures) > 1 else ""
        super().__init__(
            f"{len(failures)} publish(es) of the pipeline failed: #{first.index} to "
            f"{first.topic!r}: {first.error}{more}"
        )
        self.failures = tuple(failures)


@final
class Pipeline(metaclass=NoPublicConstructor):
    """Publishes in flight together; get one from :meth:`MQTTClient.pipeline`. See there."""

    __slots__ = (
        "_check_open", "_count", "_done", "_failures", "_lot", "_max", "_outbox", "_pending",
        "_protocol", "_publish0", "_raised", "_sent",
    )  # fmt: skip

    def __init__(
        self,
        outbox: Outbox,
        protocol: ProtocolVersion,
        check_open: Callable[[], None],
        publish0: Callable[..., Awaitable[PublishResult]],
        max_in_flight: int,
    ) -> None:
        self._outbox = outbox
        self._publish0 = publish0  # the client's publish(), for QoS 0
        self._protocol = protocol
        self._check_open = check_open
        self._max = max_in_flight
        self._pending: dict[Request, int] = {}  # in flight or queued -> its index
        self._failures: list[PublishFailure] = []
        self._count = 0  # publish() calls that handed a message over
        self._sent = 0  # of those, acknowledged with success
        self._lot = trio.lowlevel.ParkingLot()
        self._raised: PipelineError | None = None
        self._done = self._finished  # one bound method, shared by every request

    @property
    def in_flight(self) -> int:
        """Messages handed over whose outcome is not known yet."""
        return len(self._pending)

    @property
    def published(self) -> int:
        """Messages the broker acknowledged with success so far."""
        return self._sent

    @property
    def failures(self) -> tuple[PublishFailure, ...]:
        """The messages that failed so far."""
        return tuple(self._failures)

    def _finished(self, request: Request) -> None:
        """A message's outcome is known (called from the link's reader, or by the outbox)."""
        index = self._pending.pop(request)
        try:
            request.outcome()
            self._sent += 1
        except BaseException as exc:
            self._failures.append(
                PublishFailure(
                    index=index, topic=request.topic, payload=request.payload,
                    qos=request.qos, error=exc,
                )
            )  # fmt: skip
        if self._lot:
            self._lot.unpark_all()

    async def publish(
        self,
        topic: str,
        payload: bytes | bytearray | memoryview | str = b"",
        *,
        qos: QoS | int = QoS.AT_LEAST_ONCE,
        retain: bool = False,
        properties: Properties | None = None,
        content_type: str | None = None,
        payload_format_indicator: int | None = None,
        message_expiry_interval: int | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Hand a message to the connection and return; wait first only while
        ``max_in_flight`` messages of the pipeline are unacknowledged.

        The arguments are :meth:`MQTTClient.publish`'s; ``qos`` defaults to 1. A QoS 0
        message goes out as with ``publish()`` (nothing to wait for). A cancellation point;
        it yields to other tasks only when it waits (the window is full, or QoS 0
        backpressure), so a loop of them sends a window's worth in one go.

        Args:
            topic: as for :meth:`MQTTClient.publish`, like every other argument but ``qos``.
            payload: the payload.
            qos: 1 by default; 0 and 2 work too.
            retain: ask the broker to retain it.
            properties: MQTT 5 PUBLISH properties.
            content_type: the Content Type property.
            payload_format_indicator: 1 when the payload is UTF-8 text.
            message_expiry_interval: seconds the message stays valid.
            response_topic: where a responder should reply.
            correlation_data: data the reply should carry back.
            user_properties: User Properties, in order.

        Raises:
            PipelineError: an earlier message of the pipeline failed (the pipeline stops).
            NotConnectedError: offline, and the offline queue is full.
            LocalProtocolError: the broker's limits forbid it (Maximum QoS, Retain
                Available, Maximum Packet Size); nothing is sent.
            ValueError, TypeError: as ``publish()``.
            trio.ClosedResourceError: the client or the pipeline is closed.
        """
        if qos not in (
            0,
            1,
            2,
        ):  # the check inline, the message in one place: the hot path
            check_qos(qos)
        data = payload if type(payload) is bytes else payload_bytes(payload)
        props = publish_properties(
            self._protocol, properties, content_type=content_type,
            payload_format_indicator=payload_format_indicator,
            message_expiry_interval=message_expiry_interval,
            response_topic=response_topic, correlation_data=correlation_data,
            user_properties=user_properties,
        )  # fmt: skip
        if self._max < 0:
            raise trio.ClosedResourceError("the pipeline's block has ended")
        pending = self._pending
        if len(pending) >= self._max:
            while len(pending) >= self._max and not self._failures:
                await self._lot.park()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        if self._failures:
            self._raised = PipelineError(self._failures)
            raise self._raised
        if not qos:
            await self._publish0(topic, data, retain=retain, properties=props)
            self._count += 1
            return
        self._check_open()
        request = self._outbox.submit(topic, data, QOS_LEVELS[qos], retain, props)
        pending[request] = self._count
        self._count += 1
        if request.event.is_set():  # finished already (QoS 0 handed over, or refused)
            self._finished(request)
        else:
            request.on_done = self._done

    async def _drain(self) -> None:
        """Wait until every message's outcome is known."""
        while self._pending:
            await self._lot.park()

    async def __aenter__(self) -> Pipeline:
        await trio.lowlevel.checkpoint_if_cancelled()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or exc is self._raised:
            await self._drain()
            self._max = -1
            if self._failures:
                raise PipelineError(self._failures) from None
            return
        # Another error, or a cancellation: no waiting. What was not handed to a
        # connection is taken back; the rest completes in the session (no packet id leaks).
        self._max = -1
        for request in list(self._pending):
            request.on_done = None
            if self._outbox.withdraw(request):
                del self._pending[request]
        self._pending.clear()
