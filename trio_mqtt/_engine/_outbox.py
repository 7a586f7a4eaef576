"""Outbox: every publish, SUBSCRIBE and UNSUBSCRIBE from the call until its outcome.

A publish goes straight to the link when the client is connected, nothing is queued before
it, and (QoS 1/2) the broker's Receive Maximum has room; otherwise it waits in the offline
queue, in call order, bounded by count and payload bytes. :meth:`Outbox.pump` hands the queue
to the link in order, as the quota allows and a chunk at a time: once 64 KiB wait to be
written, the rest goes after the link has written them (:meth:`Link.when_sent`), so a long
offline queue is not encoded into one buffer at reconnect.

Waiters are keyed by packet identifier. A QoS 1/2 publish keeps its waiter across reconnects
(the session resends it; its acknowledgement on a later connection resolves it); a
SUBSCRIBE/UNSUBSCRIBE waiter is told ``None`` when its connection is lost (such requests are
never resent: the caller asks again).

With a durable session store, the queued QoS 1/2 publishes are journaled (:class:`QueueJournal`)
before they are queued, and leave the journal when they are handed to a connection.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from time import monotonic

import attrs
import trio

from .._enums import QoS
from .._exceptions import (
    LocalProtocolError,
    MQTTError,
    NotConnectedError,
    PublishError,
)
from .._io._link import Link
from .._io._wakeups import Flag
from .._message import PublishResult
from .._sansio._events import Acknowledged, PublishAcknowledged, PublishExpired
from .._sansio._packets import Publish
from .._sansio._properties import Properties
from .._statistics import LATENCY_BOUNDS
from ._metrics import AckLatency, HookCaller
from ._queue_journal import QueueJournal, stored_form

# QoS 0 publishes wait for the network only beyond this many unsent bytes (backpressure);
# the pump stops there until the link has written them.
HIGH_WATER = 64 * 1024
QOS0_RESULT = PublishResult(packet_id=None)
_NO_QUEUE: deque[Request] = deque(maxlen=0)  # shared and always empty

# (a tuple: isinstance() against ``A | B`` builds the union at every call, ~1 µs on 3.11)
_ENDED = (PublishAcknowledged, PublishExpired)


class Request:
    """One publish (or SUBSCRIBE/UNSUBSCRIBE) from the call until its outcome."""

    __slots__ = (
        "deadline", "error", "event", "journal_key", "on_done", "payload", "properties",
        "qos", "restored", "result", "retain", "sent_at", "topic",
    )  # fmt: skip

    def __init__(
        self,
        topic: str = "",
        payload: bytes = b"",
        qos: QoS = QoS.AT_MOST_ONCE,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties  # None: a SUBSCRIBE/UNSUBSCRIBE, not a publish
        self.journal_key = 0  # in a durable store's queue (QueueJournal), when not 0
        self.restored = False  # queued by an earlier process: nobody awaits it
        #: when its Message Expiry Interval ends (trio's clock), if it has one
        self.deadline: float | None = None
        if properties is not None and properties.message_expiry_interval is not None:
            self.deadline = trio.current_time() + properties.message_expiry_interval
        self.event = Flag()  # one waiter: the caller
        self.result: Acknowledged | None = None
        self.error: BaseException | None = None
        #: when a QoS 1/2 publish was handed to a connection (time.monotonic(): a real
        #: latency, and a quarter of trio.current_time()'s cost)
        self.sent_at: float | None = None
        #: told when the outcome is known (a pipeline's bookkeeping), besides the caller
        self.on_done: Callable[[Request], None] | None = None

    @property
    def is_publish(self) -> bool:
        return self.properties is not None

    def finish(
        self, result: Acknowledged | None = None, error: BaseException | None = None
    ) -> None:
        self.result, self.error = result, error
        self.event.set()
        if self.on_done is not None:
            self.on_done(self)

    def outcome(self) -> PublishResult:
        """The publish's result, once finished; raise its error (PublishError for a failure
        reason code)."""
        if self.error is not None:
            raise self.error
        ack = self.result
        if ack is None:
            return PublishResult(packet_id=None)
        if isinstance(ack, PublishExpired):
            raise NotConnectedError(
                "the message expired (its Message Expiry Interval passed) while the "
                "connection was down; it was not sent again, though the broker may have "
                "received it before the connection was lost"
            )
        assert isinstance(ack, PublishAcknowledged)
        if ack.reason_code.is_failure:
            props = ack.properties
            raise PublishError(
                ack.reason_code,
                reason_string=props.reason_string,
                user_properties=props.user_properties,
            )
        return PublishResult(
            packet_id=ack.packet_id,
            reason_code=ack.reason_code,
            properties=ack.properties,
        )


class Outbox:
    """The client's outbound work; the current link, when ready, is where it goes."""

    __slots__ = (
        "_journal", "_offline_bytes", "_offline_limit", "_offline_timeout", "_queue",
        "_queued_bytes", "_waiters", "fast", "hooks", "latency", "link",
    )  # fmt: skip

    def __init__(
        self,
        *,
        offline_queue: int,
        offline_bytes: int,
        offline_timeout: float | None,
        journal: QueueJournal | None = None,
        restored: Sequence[tuple[int, Publish]] = (),
    ) -> None:
        self._offline_limit = offline_queue
        self._offline_bytes = offline_bytes
        self._offline_timeout = offline_timeout
        self._journal = journal  # keeps the queued QoS 1/2 publishes in a session store
        self._queued_bytes = 0  # payload bytes in _queue
        # publishes not yet handed to a connection (the shared empty one until the first:
        # an empty deque is 760 bytes, per idle client)
        self._queue: deque[Request] = _NO_QUEUE
        self._waiters: dict[int, Request] = {}
        #: the acknowledgement latencies (made at the first acknowledgement)
        self.latency: AckLatency | None = None
        self.hooks: HookCaller | None = None  # the application's, if it gave any
        #: The link new work goes to: set while the client is connected and restored.
        self.link: Link | None = None
        #: The link a QoS 0 publish may go straight to: ``link``, while nothing is queued.
        self.fast: Link | None = None
        self._restore(restored)

    @property
    def queued_messages(self) -> int:
        """Publishes waiting for a connection (or for the broker's Receive Maximum)."""
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Their payload bytes."""
        return self._queued_bytes

    def _refresh(self) -> None:
        self.fast = None if self._queue else self.link

    def open(self, link: Link) -> None:
        """The client is connected and restored: new work goes to ``link``; the queue too."""
        self.link = link
        self._refresh()
        self.pump()

    def hold(self) -> None:
        """The link takes no new work: queue it until :meth:`open`."""
        self.link = self.fast = None

    # -- publish ---------------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> PublishResult:
        """Publish, waiting for the outcome (see :meth:`MQTTClient.publish`). A QoS 0 publish
        while :attr:`fast` is set is the caller's own fast path (then :meth:`backpressure`);
        here it is queued, and resolves once the pump has handed it to a link."""
        return await self._outcome(self.submit(topic, payload, qos, retain, properties))

    def submit(
        self,
        topic: str,
        payload: bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Request:
        """Hand a publish to the link, or queue it; its outcome comes later (:meth:`publish`
        awaits it; a pipeline counts it).

        Raises:
            NotConnectedError: offline, and the offline queue is full.
            LocalProtocolError, ValueError: the broker's limits or the encoder refuse it.
        """
        link = self.fast
        request = Request(topic, payload, qos, retain, properties)
        if link is not None and qos and link.send_quota_available:
            self._issue(link, request)
            return request
        if link is None and (
            len(self._queue) >= self._offline_limit
            or self._queued_bytes + len(payload) > self._offline_bytes
        ):
            raise NotConnectedError(
                f"not connected, and the offline queue is full ({self._offline_limit} "
                f"messages or {self._offline_bytes} bytes of payload)"
            )
        if qos and self._journal is not None:
            # on disk first: a store that fails leaves nothing queued behind the error
            request.journal_key = self._journal.added(
                stored_form(topic, payload, qos, retain, properties)
            )
        if self._queue is _NO_QUEUE:
            self._queue = deque()
        self._queue.append(request)
        self.fast = None
        self._queued_bytes += len(payload)
        return request

    def withdraw(self, request: Request) -> bool:
        """Take ``request`` back if it is still queued (nothing of it was sent)."""
        if request in self._queue:
            self._unqueue(request)
            return True
        return False

    async def backpressure(self, link: Link, *, qos0_loss_ok: bool) -> PublishResult:
        """After a QoS 0 publish to ``link``: wait for the network only while more than
        :data:`HIGH_WATER` bytes are unsent (a cancellation point only, otherwise)."""
        if link.unsent_bytes >= HIGH_WATER:
            try:
                await link.drain()
            except MQTTError:
                if not qos0_loss_ok:
                    raise
                # At most once: lost with the connection; the client reconnects.
        return QOS0_RESULT

    def _restore(self, queued: Sequence[tuple[int, Publish]]) -> None:
        """Queue, first, the publishes an earlier process accepted but never sent (its
        session store kept them); nobody waits for their outcome."""
        if not queued:
            return
        if self._queue is _NO_QUEUE:
            self._queue = deque()
        for key, p in reversed(queued):
            request = Request(p.topic, p.payload, p.qos, p.retain, p.properties)
            request.journal_key = key
            request.restored = True
            self._queue.appendleft(request)
            self._queued_bytes += len(p.payload)

    def _unqueue(self, request: Request) -> None:
        """Take a publish out of the queue: its caller gave up (or the client closed). One
        an earlier process left stays in the store for the next (nobody gave it up)."""
        self._queue.remove(request)
        self._refresh()
        self._queued_bytes -= len(request.payload)
        if request.journal_key and not request.restored and self._journal is not None:
            self._journal.removed(request.journal_key)

    def _issue(self, link: Link, request: Request) -> None:
        """Hand a publish to ``link`` (queued and flushed, not yet acknowledged).

        Raises:
            NotConnectedError: its Message Expiry Interval passed while it was queued.
        """
        properties = request.properties
        assert properties is not None
        deadline = request.deadline
        if deadline is not None:
            # section 3.3.2.3.3: what is left of it; nothing, once it has passed
            left = deadline - trio.current_time()
            if left <= 0:
                raise NotConnectedError(
                    "the message expired (its Message Expiry Interval passed) before the "
                    "client could send it"
                )
            remaining = math.ceil(left)
            if remaining < (properties.message_expiry_interval or 0):
                properties = attrs.evolve(properties, message_expiry_interval=remaining)
        if request.journal_key and self._journal is not None:
            self._journal.removed(
                request.journal_key
            )  # outbound from here (one commit)
        packet_id = link.publish(
            request.topic,
            request.payload,
            request.qos,
            request.retain,
            properties,
            deadline,
        )
        if packet_id is None:
            request.finish()
        else:
            request.sent_at = monotonic()
            self._waiters[packet_id] = request

    def pump(self) -> None:
        """Hand queued publishes to the link, in order, while its quota allows, and a chunk
        at a time (see the module docstring)."""
        queue = self._queue
        link = self.link
        while queue and link is not None:
            if queue[0].qos and not link.send_quota_available:
                return
            if link.unsent_bytes >= HIGH_WATER:
                link.when_sent(self.pump)  # perhaps at once: last here
                return
            request = queue.popleft()
            if not queue:
                self.fast = link
            self._queued_bytes -= len(request.payload)
            try:
                self._issue(link, request)
            except (ValueError, LocalProtocolError, NotConnectedError) as exc:
                request.finish(error=exc)

    async def _outcome(self, request: Request) -> PublishResult:
        try:
            if self._offline_timeout is not None and request in self._queue:
                with trio.move_on_after(self._offline_timeout):
                    await request.event.wait()
                if request in self._queue:
                    self._unqueue(request)
                    raise NotConnectedError(
                        f"not sent within offline_timeout={self._offline_timeout:g}s"
                    )
            await request.event.wait()
        except BaseException:
            if request in self._queue:
                self._unqueue(request)  # cancelled before it was sent: nothing goes out
            raise
        return request.outcome()

    # -- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------------

    async def request(self, send: Callable[[], int]) -> Acknowledged | None:
        """Send a SUBSCRIBE/UNSUBSCRIBE with ``send()`` (a link command returning its packet
        id) and wait for its acknowledgement; ``None`` when the connection was lost first."""
        request = Request()
        packet_id = send()
        self._waiters[packet_id] = request
        try:
            await request.event.wait()
        finally:
            if self._waiters.get(packet_id) is request:
                del self._waiters[packet_id]
        if request.error is not None:
            raise request.error
        return request.result

    # -- the link's side ---------------------------------------------------------------------------

    def acknowledged(self, event: Acknowledged) -> None:
        """The broker acknowledged one of ours: resolve its waiter, and go on with the queue."""
        request = self._waiters.pop(event.packet_id, None)
        if request is not None:
            sent_at = request.sent_at
            if sent_at is not None and type(event) is PublishAcknowledged:
                # the latency histogram (AckLatency.record, inline: once per publish)
                latency = monotonic() - sent_at
                histogram = self.latency
                if histogram is None:
                    histogram = self.latency = AckLatency()
                histogram.counts[bisect_left(LATENCY_BOUNDS, latency)] += 1
                histogram.sum += latency
                if self.hooks is not None:
                    self._tell_acknowledged(self.hooks, request, event, latency)
            request.finish(event)
        if self._queue and isinstance(event, _ENDED):
            self.pump()

    @staticmethod
    def _tell_acknowledged(
        hooks: HookCaller, request: Request, ack: PublishAcknowledged, latency: float
    ) -> None:
        if hooks.publish_acknowledged is not None:
            hooks.call(
                hooks.publish_acknowledged,
                request.topic, request.qos, ack.reason_code, latency,
            )  # fmt: skip

    def link_down(self, poison: Mapping[int, BaseException]) -> None:
        """The connection is gone: SUBSCRIBE/UNSUBSCRIBE waiters learn it (their callers ask
        again); publishes wait on (the session resends them on the next connection). The
        requests in ``poison`` (by packet id) fail with its error instead."""
        self.hold()
        for packet_id, request in list(self._waiters.items()):
            error = poison.get(packet_id)
            if error is not None or not request.is_publish:
                del self._waiters[packet_id]
                request.finish(error=error)

    def finish(self, error: BaseException) -> None:
        """The client is done for good: fail every waiter and every queued publish (never
        sent later either; a crash, which reaches no such line, leaves them in a durable
        store for the next process)."""
        self.hold()
        for request in [*self._waiters.values(), *self._queue]:
            request.finish(error=error)
        self._waiters.clear()
        while self._queue:
            self._unqueue(self._queue[0])
