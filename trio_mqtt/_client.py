"""MQTTClient: validation and delegation; the protocol lives in _sansio, the
connection's life in _supervisor, inbound routing in _router."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, final

import attrs
import trio

from ._config import Endpoint
from ._enums import QOS_LEVELS, ProtocolVersion, QoS, RetainHandling
from ._exceptions import (
    LocalProtocolError,
    MQTTError,
    NotConnectedError,
    PublishError,
    SubscribeError,
    UnsubscribeError,
)
from ._link import Link
from ._message import PublishResult
from ._queue_journal import QueueJournal, stored_form
from ._router import NO_FILTERS, Router
from ._sansio._events import (
    Event,
    PublishAcknowledged,
    SubscribeAcknowledged,
    UnsubscribeAcknowledged,
)
from ._sansio._packets import ConnAck, Publish, SubscriptionRequest
from ._sansio._properties import EMPTY_PROPERTIES, Properties
from ._status import ClientState, StateChange, StateWatcher
from ._subscription import Subscription
from ._supervisor import Supervisor
from ._sync import Flag
from ._topics import validate_topic_filter

_AckEvent = PublishAcknowledged | SubscribeAcknowledged | UnsubscribeAcknowledged
# QoS 0 publishes wait for the network only beyond this many queued bytes (backpressure).
_HIGH_WATER = 64 * 1024
_QOS0_RESULT = PublishResult(packet_id=None)
_NO_QUEUE: deque[_Request] = deque(maxlen=0)  # shared and always empty


class _Request:
    """One publish (or SUBSCRIBE/UNSUBSCRIBE) from the call until its outcome."""

    __slots__ = ("args", "error", "event", "key", "qos", "restored", "result")

    def __init__(self, qos: QoS = QoS.AT_MOST_ONCE, args: tuple[Any, ...] = ()) -> None:
        self.qos = qos
        self.args = args
        self.key = 0  # in a durable store's queue (QueueJournal), when not 0
        self.restored = False  # queued by an earlier process: nobody awaits it
        self.event = Flag()  # one waiter: the caller
        self.result: _AckEvent | None = None
        self.error: BaseException | None = None

    def finish(
        self, result: _AckEvent | None = None, error: BaseException | None = None
    ) -> None:
        self.result, self.error = result, error
        self.event.set()


@final
class MQTTClient:
    """A connected MQTT client. Get one from :func:`open_client`; it has no public constructor."""

    __slots__ = (
        "__weakref__",
        "_buffer_size",
        "_closed",
        "_failure",
        "_journal",
        "_link",
        "_next_id",
        "_offline_bytes",
        "_offline_limit",
        "_offline_timeout",
        "_persistent",
        "_pump_stalled",
        "_queue",
        "_queued_bytes",
        "_ready",
        "_ready_event",
        "_router",
        "_session_present",
        "_stale_filters",
        "_state",
        "_supervisor",
        "_use_ids",
        "_waiters",
        "_watchers",
    )

    def __init__(
        self,
        *,
        buffer_size: int,
        offline_queue: int,
        offline_timeout: float | None,
        offline_bytes: int = 2**62,
        journal: QueueJournal | None = None,
        restored: Sequence[tuple[int, Publish]] = (),
    ) -> None:
        self._buffer_size = buffer_size
        self._offline_limit = offline_queue
        self._offline_bytes = offline_bytes
        self._queued_bytes = 0  # payload bytes in _queue
        self._offline_timeout = offline_timeout
        self._supervisor: Supervisor  # set by open_client
        self._link: Link | None = None
        self._waiters: dict[int, _Request] = {}
        # publishes not yet handed to a connection (the shared empty one until the first:
        # an empty deque is 760 bytes, per idle client)
        self._queue: deque[_Request] = _NO_QUEUE
        self._journal = journal  # keeps the queued QoS 1/2 publishes in a session store
        self._pump_stalled = False  # _pump() waits for the link to write
        self._router = Router()
        self._ready = False  # connected and restored: new work may go out
        self._ready_event = trio.Event()
        self._state = ClientState.CONNECTING
        self._watchers: list[StateWatcher] = []
        self._closed = False
        self._failure: MQTTError | None = None
        self._use_ids = False
        self._next_id = 0
        # (frozensets, replaced when they change: an idle client holds the shared empty one)
        self._stale_filters = NO_FILTERS
        self._session_present = False
        self._persistent = False  # the session outlives the connection
        self._restore_queue(restored)

    # -- properties ---------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The client identifier in use (assigned by the broker if none was given, MQTT 5)."""
        return self._supervisor.connect.client_id

    @property
    def endpoint(self) -> Endpoint:
        """The broker of the current connection (or of the latest attempt, while
        reconnecting): the URL's, or the one a Server Reference sent the client to."""
        return self._supervisor.endpoint

    @property
    def session_present(self) -> bool:
        """Whether the broker resumed an existing session at the latest connect."""
        return self._session_present

    @property
    def protocol(self) -> ProtocolVersion:
        """The protocol version spoken."""
        return self._supervisor.connect.protocol_version

    @property
    def state(self) -> ClientState:
        """Where the client is: connecting, connected, reconnecting or closed."""
        return self._state

    @property
    def reconnects(self) -> int:
        """How many times the client has connected again after losing the connection."""
        return self._supervisor.reconnects

    def watch_state(self) -> StateWatcher:
        """The state changes from now on, as an async iterator; use as a ``with`` block::

        with client.watch_state() as changes:
            async for change in changes:  # Connected, Disconnected, Reconnecting
                print(change)
        """
        watcher = StateWatcher(self._watchers.remove)
        if self._closed:
            watcher._end()
        else:
            self._watchers.append(watcher)
        return watcher

    async def wait_connected(self) -> None:
        """Wait until the client is connected (returns at once if it is).

        Raises:
            ConnectionLostError: the client stopped reconnecting.
            trio.ClosedResourceError: the client is closed.
        """
        while not self._ready:
            self._check_open()
            await self._ready_event.wait()
        await trio.lowlevel.checkpoint()

    async def reauthenticate(self) -> None:
        """Authenticate again on the live connection (MQTT 5 AUTH 0x19, section 4.12.1) with
        the ``authenticator`` the client was opened with, e.g. before a token expires.

        Raises:
            NotConnectedError: not connected right now.
            AuthenticationError: the broker's final data did not verify; the connection ends.
            ConnectionLostError: the connection ended first (a broker that refuses the new
                credentials disconnects, with the reason code).
            LocalProtocolError: the client has no authenticator.
        """
        self._check_open()
        if self._link is None or not self._ready:
            raise NotConnectedError("re-authentication needs a live connection")
        await self._link.reauthenticate()

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise trio.ClosedResourceError("the client is closed")

    # -- publish --------------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes | bytearray | memoryview | str = b"",
        *,
        qos: QoS | int = QoS.AT_MOST_ONCE,
        retain: bool = False,
        properties: Properties | None = None,
        content_type: str | None = None,
        payload_format_indicator: int | None = None,
        message_expiry_interval: int | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
    ) -> PublishResult:
        """Publish a message and wait until the broker has taken responsibility for it.

        QoS 0 returns once the packet is queued for the connection's writer, which sends
        everything queued in one write as soon as the caller next yields (and the caller waits
        for the network only while more than 64 KiB are queued: backpressure); QoS 1 waits for
        PUBACK; QoS 2 for PUBCOMP. When the broker's Receive Maximum is reached, QoS 1/2 publishes wait for a free
        slot first (flow control, never an error). While the connection is down, publishes wait
        in the offline queue and go out, in call order, after the unacknowledged messages of the
        session once the client has reconnected; a QoS 1/2 publish interrupted by a connection
        loss resolves when its resent message is acknowledged. The keyword properties are MQTT 5
        only and are merged into ``properties``; MQTT 3.1.1 ignores them.

        A cancellation point, and a checkpoint whenever it waits (always for QoS 1/2). If
        cancelled before the PUBLISH is handed to a connection, nothing is sent. If cancelled
        after, the message may still be delivered; its packet identifier stays
        reserved until the broker completes the flow, so the session is never corrupted.

        Raises:
            PublishError: the broker answered with a failure reason code (0x80 or above).
            NotConnectedError: offline, and the offline queue is full or ``offline_timeout``
                passed.
            ConnectionLostError: the connection ended and the client is not reconnecting.
            LocalProtocolError: the server's limits forbid it (Maximum QoS, Retain Available,
                Maximum Packet Size).
            ValueError: an invalid topic name or QoS.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        if (
            content_type is not None
            or payload_format_indicator is not None
            or message_expiry_interval is not None
            or response_topic is not None
            or correlation_data is not None
            or user_properties
        ):
            changes = _drop_none(
                content_type=content_type,
                payload_format_indicator=payload_format_indicator,
                message_expiry_interval=message_expiry_interval,
                response_topic=response_topic,
                correlation_data=correlation_data,
            )
            if user_properties:
                changes["user_properties"] = tuple(user_properties)
            properties = attrs.evolve(properties or EMPTY_PROPERTIES, **changes)
        if properties is None or self.protocol is ProtocolVersion.V311:
            properties = EMPTY_PROPERTIES
        self._check_open()
        link = self._link
        if self._ready and not self._queue and link is not None:
            if not qos:
                # The fast path: queue the packet and wake the writer, which sends whatever
                # has accumulated in one write. Only a full buffer makes the caller wait for
                # the network (backpressure); otherwise this is a cancellation point only.
                await trio.lowlevel.checkpoint_if_cancelled()
                link.publish(topic, data, retain=retain, properties=properties)
                if link.unsent_bytes < _HIGH_WATER:
                    return _QOS0_RESULT
                try:
                    await link.drain()
                except MQTTError:
                    if self._supervisor.settings.reconnect is None:
                        raise
                    # At most once: lost with the connection; the client reconnects.
                return _QOS0_RESULT
            if link.send_quota_available:
                qos = QOS_LEVELS[qos]
                request = _Request(qos, (topic, data, qos, retain, properties))
                self._issue(request)
                return await self._outcome(request)
        qos = QOS_LEVELS[qos]
        request = _Request(qos, (topic, data, qos, retain, properties))
        if not self._ready and (
            len(self._queue) >= self._offline_limit
            or self._queued_bytes + len(data) > self._offline_bytes
        ):
            raise NotConnectedError(
                f"not connected, and the offline queue is full ({self._offline_limit} "
                f"messages or {self._offline_bytes} bytes of payload)"
            )
        if qos and self._journal is not None:
            # on disk first: a store that fails leaves nothing queued behind the error
            request.key = self._journal.added(stored_form(*request.args))
        if self._queue is _NO_QUEUE:
            self._queue = deque()
        self._queue.append(request)
        self._queued_bytes += len(data)
        return await self._outcome(request)

    def _restore_queue(self, queued: Sequence[tuple[int, Publish]]) -> None:
        """Queue, first, the publishes an earlier process accepted but never sent (its
        session store kept them); nobody waits for their outcome."""
        if not queued:
            return
        if self._queue is _NO_QUEUE:
            self._queue = deque()
        for key, p in reversed(queued):
            request = _Request(
                p.qos, (p.topic, p.payload, p.qos, p.retain, p.properties)
            )
            request.key = key
            request.restored = True
            self._queue.appendleft(request)
            self._queued_bytes += len(p.payload)

    def _unqueue(self, request: _Request) -> None:
        """Take a publish out of the queue: its caller gave up (or the client closed). One
        an earlier process left stays in the store for the next (nobody gave it up)."""
        self._queue.remove(request)
        self._queued_bytes -= len(request.args[1])
        if request.key and not request.restored and self._journal is not None:
            self._journal.removed(request.key)

    def _issue(self, request: _Request) -> None:
        """Hand a publish to the current connection (queued, not yet sent)."""
        assert self._link is not None
        topic, data, qos, retain, properties = request.args
        if request.key and self._journal is not None:
            self._journal.removed(request.key)  # outbound from here (one commit)
        packet_id = self._link.publish(
            topic, data, qos=qos, retain=retain, properties=properties
        )
        if packet_id is None:
            request.finish()
        else:
            self._waiters[packet_id] = request

    def _pump(self) -> None:
        """Hand queued publishes to the connection, in order, while its quota allows, and a
        chunk at a time: once 64 KiB wait to be written, the rest after the link has written
        them (:meth:`_link_sent`), so a long offline queue is not encoded into one buffer at
        reconnect."""
        queue = self._queue
        link = self._link
        while queue and self._ready and link is not None:
            if queue[0].qos and not link.send_quota_available:
                return
            if link.unsent_bytes >= _HIGH_WATER:
                self._pump_stalled = True
                link.flush()  # its write calls _link_sent (perhaps at once: last here)
                return
            request = queue.popleft()
            self._queued_bytes -= len(request.args[1])
            try:
                self._issue(request)
            except (ValueError, LocalProtocolError) as exc:
                request.finish(error=exc)

    async def _outcome(self, request: _Request) -> PublishResult:
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
        if request.error is not None:
            raise request.error
        ack = request.result
        if ack is None:
            return PublishResult(packet_id=None)
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

    async def _request(self, queue: Callable[[], int]) -> _AckEvent | None:
        """Queue a SUBSCRIBE/UNSUBSCRIBE with ``queue()`` and wait for its ack; ``None`` when the
        connection was lost first (such requests are never resent: the caller asks again)."""
        request = _Request()
        packet_id = queue()  # queued and sent (a link command)
        self._waiters[packet_id] = request
        try:
            await request.event.wait()
        finally:
            if self._waiters.get(packet_id) is request:
                del self._waiters[packet_id]
        if request.error is not None:
            raise request.error
        return request.result

    # -- subscribe -------------------------------------------------------------------------------

    def subscribe(
        self,
        *topic_filters: str,
        qos: QoS | int = QoS.AT_MOST_ONCE,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: RetainHandling | int = RetainHandling.SEND_ON_SUBSCRIBE,
        buffer_size: int | None = None,
        manual_ack: bool = False,
        ack_on_arrival: bool = False,
    ) -> Subscription:
        """Subscribe to one or more topic filters, as an async context manager and iterator.

        ``async with client.subscribe("a/+") as messages:`` sends SUBSCRIBE and waits for SUBACK;
        leaving the block sends UNSUBSCRIBE for the filters no other live subscription uses.
        Every live subscription whose filters match a message's topic receives that message.
        The subscription survives reconnects: the client subscribes again when the broker did not
        keep the session. ``no_local``, ``retain_as_published`` and ``retain_handling`` are MQTT 5
        options. With ``manual_ack=True``, QoS 1/2 messages are acknowledged to the broker only
        when the application calls :meth:`Message.ack`, so a crash before that means the broker
        delivers them again.

        By default a QoS 1/2 message is acknowledged when the application takes it, so a crash
        never loses one; but a broker that keeps few messages in flight (ejabberd keeps one)
        then sends nothing more, to any subscription of the client, until this one is read
        (head-of-line blocking). With ``ack_on_arrival=True`` a message is acknowledged as
        soon as it is in this subscription's buffer, which then holds at most ``buffer_size``
        messages of any QoS before the client stops reading the network: the other
        subscriptions flow on, and what is buffered when the process dies is lost.

        Raises (on entering):
            SubscribeError: SUBACK refused at least one filter (``reason_codes`` says which).
            ValueError: an invalid topic filter or option.
        """
        if not topic_filters:
            raise ValueError("subscribe() needs at least one topic filter")
        qos = QoS(qos)
        retain_handling = RetainHandling(retain_handling)
        v311 = self.protocol is ProtocolVersion.V311
        if v311 and (no_local or retain_as_published or retain_handling):
            raise ValueError(
                "no_local, retain_as_published and retain_handling need MQTT 5"
            )
        requests = tuple(
            SubscriptionRequest(
                topic_filter=validate_topic_filter(f), qos=qos, no_local=no_local,
                retain_as_published=retain_as_published, retain_handling=retain_handling,
            )
            for f in topic_filters
        )  # fmt: skip
        size = self._buffer_size if buffer_size is None else buffer_size
        if size < 1:
            raise ValueError("buffer_size must be at least 1")
        if manual_ack and ack_on_arrival:
            raise ValueError("manual_ack and ack_on_arrival exclude each other")
        return Subscription(
            requests,
            buffer_size=size,
            manual_ack=manual_ack,
            ack_on_arrival=ack_on_arrival,
            enter=self._enter_subscription,
            leave=self._leave_subscription,
        )

    async def unsubscribe(self, *topic_filters: str) -> None:
        """End the broker's subscriptions to ``topic_filters`` that no live subscription block
        uses: typically those a persistent session kept from an earlier run (a subscription
        block left by an exception or a cancellation keeps them, see :meth:`subscribe`).

        Waits until connected, then for the UNSUBACK. Messages of these filters still on
        their way are acknowledged and dropped.

        Raises:
            UnsubscribeError: the broker refused (``reason_code`` says why; MQTT 5). "No
                subscription existed" (0x11) is not an error.
            ValueError: an invalid topic filter, none given, or one a live subscription block
                uses (leave that block instead).
            ConnectionLostError: the client stopped reconnecting.
            trio.ClosedResourceError: the client is closed.
        """
        if not topic_filters:
            raise ValueError("unsubscribe() needs at least one topic filter")
        filters = [validate_topic_filter(f) for f in dict.fromkeys(topic_filters)]
        live = {f for s in self._router.subscriptions for f in s.filters}
        used = [f for f in filters if f in live]
        if used:
            raise ValueError(
                f"{used[0]!r} is used by a live subscription block: leave that block instead"
            )
        self._router.forget(filters)
        while True:
            await self.wait_connected()
            link = self._link
            assert link is not None
            ack = await self._request(functools.partial(link.unsubscribe, filters))
            if ack is not None:
                _check_unsuback(ack)
                return
            # lost before UNSUBACK: ask the next connection

    def _queue_subscribe(self, subscription: Subscription) -> int:
        assert self._link is not None
        properties = EMPTY_PROPERTIES
        if self._use_ids:
            sub_id = subscription._subscription_id
            properties = Properties(subscription_identifiers=(sub_id,))
            for request in subscription.requests:
                self._router.set_filter_id(request.topic_filter, sub_id)
        return self._link.subscribe(subscription.requests, properties)

    async def _subscribe_once(self, subscription: Subscription) -> bool:
        """SUBSCRIBE and wait for SUBACK; False if the connection was lost first."""
        ack = await self._request(lambda: self._queue_subscribe(subscription))
        if ack is None:
            return False
        codes = ack.reason_codes if isinstance(ack, SubscribeAcknowledged) else ()
        if any(c.is_failure for c in codes) or len(codes) != len(subscription.requests):
            raise SubscribeError(
                codes,
                reason_string=ack.properties.reason_string,
                user_properties=ack.properties.user_properties,
            )
        subscription._subscribed = True
        return True

    async def _enter_subscription(self, subscription: Subscription) -> None:
        self._check_open()
        self._next_id = self._next_id % 268_435_455 + 1
        subscription._subscription_id = self._next_id
        # Routed from now on: retained messages may arrive right after SUBACK, in the same read.
        self._router.add(subscription)
        try:
            while True:
                await self.wait_connected()
                if await self._subscribe_once(subscription):
                    return
        except BaseException:
            self._router.remove(subscription)
            subscription._finish(None)
            raise

    async def _leave_subscription(
        self, subscription: Subscription, error: BaseException | None
    ) -> None:
        """Unsubscribe the filters of ``subscription`` that no other live one uses.

        Left by an exception or a cancellation (``error``), the client does not wait for the
        UNSUBACK, and when the session outlives the connection it does not unsubscribe at all:
        the program is stopping, and its next run resumes the session's subscriptions."""
        self._router.remove(subscription)
        subscriptions = self._router.subscriptions
        subscription._finish(None)
        still_used = {f for s in subscriptions for f in s.filters}
        filters = [
            f for f in dict.fromkeys(subscription.filters) if f not in still_used
        ]
        link = self._link
        if not filters or self._closed or self._failure is not None:
            pass
        elif error is not None and self._persistent:
            # kept in the session: its messages are held for a later subscribe() ("orphans")
            self._router.keep(filters)
        elif not self._ready or link is None:
            # Offline: unsubscribe when the session is resumed (a new session has none of them).
            self._stale_filters = self._stale_filters.union(filters)
        elif error is not None:
            link.unsubscribe(filters)  # its UNSUBACK needs no waiter
        else:
            await self._unsubscribe_filters(link, filters)
            return
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _unsubscribe_filters(self, link: Link, filters: list[str]) -> None:
        """UNSUBSCRIBE and wait (shielded, at most 5 s) for UNSUBACK; a connection or client that
        goes away first makes it moot."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                ack = await self._request(lambda: link.unsubscribe(filters))
            except (trio.ClosedResourceError, MQTTError):
                return  # the client closed or failed meanwhile: the UNSUBSCRIBE is moot
            if ack is not None:
                _check_unsuback(ack)

    # -- the supervisor's side (LinkOwner) ------------------------------------------------------

    def _link_new(self, link: Link, connack: ConnAck) -> None:
        self._link = link
        self._session_present = connack.session_present
        connect = self._supervisor.connect
        if link.version is ProtocolVersion.V5:
            expiry = connack.properties.session_expiry_interval
            if expiry is None:  # the broker did not override ours (section 3.2.2.3.2)
                expiry = connect.properties.session_expiry_interval
            self._persistent = bool(expiry)
        else:
            self._persistent = not connect.clean_start
        self._router.new_connection(link, connack.session_present)
        self._use_ids = (
            link.version is ProtocolVersion.V5
            and link.server.subscription_identifier_available
        )

    async def _link_up(self, link: Link, connack: ConnAck) -> None:
        """The link runs: restore the subscriptions a lost session forgot, then open the gate."""
        if connack.session_present:
            stale = self._stale_filters - {
                f for s in self._router.subscriptions for f in s.filters
            }
            if stale:
                link.unsubscribe(sorted(stale))  # its UNSUBACK needs no waiter
        else:
            for subscription in list(self._router.subscriptions):
                if not subscription._subscribed:
                    continue  # its own subscribe() is still waiting and will ask
                try:
                    if not await self._subscribe_once(subscription):
                        return  # lost again; the supervisor reconnects
                except SubscribeError as exc:
                    self._router.remove(subscription)
                    subscription._finish(exc)
        self._stale_filters = NO_FILTERS
        self._ready = True
        self._ready_event.set()
        self._pump()

    def _link_ending(self) -> None:
        """The link takes no new work (it fails, or flushes a DISCONNECT after a protocol
        error): new publishes and subscriptions wait for the next connection."""
        self._ready = False
        if self._ready_event.is_set():
            self._ready_event = trio.Event()

    def _link_sent(self) -> None:
        """The link wrote what was queued: go on with the queue if the pump waited for that."""
        if self._pump_stalled and not self._closed:
            self._pump_stalled = False
            self._pump()

    def _link_down(self, error: MQTTError | None) -> None:
        self._link_ending()
        for packet_id, request in list(self._waiters.items()):
            if not request.args:
                del self._waiters[packet_id]
                request.finish()  # a SUBSCRIBE/UNSUBSCRIBE: asked again after reconnecting
        # (a publish waits on: the session resends it on the next connection)

    def _state_changed(self, state: ClientState, change: StateChange | None) -> None:
        self._state = state
        if change is not None:
            for watcher in self._watchers:
                watcher._push(change)

    def _on_events_nowait(self, events: list[Event], start: int) -> int:
        """Handle ``events[start:]`` while that needs no waiting (acknowledgements, and messages
        that fit their subscriptions' buffers); return the index of the first that does (to
        :meth:`_on_event`), or ``len(events)``. One call per network read, not per event."""
        route = self._router.route_nowait
        for index in range(start, len(events)):
            event = events[index]
            if type(event) is Publish:
                if not route(event):
                    return index
            elif isinstance(event, _AckEvent):
                request = self._waiters.pop(event.packet_id, None)
                if request is not None:
                    request.finish(event)
                if self._queue and isinstance(event, PublishAcknowledged):
                    self._pump()
            else:
                return index
        return len(events)

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, Publish):
            await self._router.route(event)
        else:
            self._on_events_nowait([event], 0)

    def _finish(self, error: MQTTError | None) -> None:
        """The client is done for good: fail every waiter and end every subscription."""
        self._closed = True
        self._ready = False
        if error is not None and self._failure is None:
            self._failure = error
        final = error or trio.ClosedResourceError("the client is closed")
        for request in [*self._waiters.values(), *self._queue]:
            request.finish(error=final)
        self._waiters.clear()
        # Failed to their callers, so never sent later either (a crash, which reaches no
        # such line, leaves them in a durable store for the next process).
        while self._queue:
            self._unqueue(self._queue[0])
        self._ready_event.set()
        for subscription in self._router.subscriptions:
            subscription._finish(error)
        self._state_changed(ClientState.CLOSED, None)
        for watcher in self._watchers:
            watcher._end()


def _check_unsuback(ack: _AckEvent) -> None:
    """Raise UnsubscribeError for the first failure reason code of an UNSUBACK."""
    if isinstance(ack, UnsubscribeAcknowledged):
        for code in ack.reason_codes:
            if code.is_failure:
                raise UnsubscribeError(code, reason_string=ack.properties.reason_string)


def _drop_none(**values: object) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
