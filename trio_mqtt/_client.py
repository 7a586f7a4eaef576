"""MQTTClient: the application's handle on one client. It checks the arguments and hands the
work to the engine (:class:`ClientCore` and its parts), which owns the client's state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

import trio

from ._config import Endpoint
from ._construct import NoPublicConstructor
from ._engine._core import ClientCore
from ._engine._inbox import Inbox
from ._engine._outbox import HIGH_WATER, QOS0_RESULT
from ._engine._responses import Responses
from ._engine._snapshot import statistics
from ._engine._supervisor import Supervisor
from ._enums import QOS_LEVELS, ProtocolVersion, QoS, ReasonCode, RetainHandling
from ._exceptions import LocalProtocolError, NotConnectedError
from ._message import Message, PublishResult
from ._options import build_disconnect, check_qos, publish_properties
from ._pipeline import Pipeline
from ._sansio._packets import SubscriptionRequest, payload_bytes
from ._sansio._properties import EMPTY_PROPERTIES, Properties
from ._service import Requests, request as service_request
from ._statistics import ClientStatistics
from ._status import ClientState, ServerInfo, StateWatcher, server_info
from ._subscription import Subscription
from ._topics import validate_topic_filter


@final
class MQTTClient(metaclass=NoPublicConstructor):
    """A connected MQTT client. Get one from :func:`open_client`; it has no public constructor."""

    __slots__ = ("__weakref__", "_buffer_size", "_core", "_responses", "_supervisor")

    def __init__(
        self, core: ClientCore, supervisor: Supervisor, *, buffer_size: int
    ) -> None:
        self._core = core
        self._supervisor = supervisor
        self._buffer_size = buffer_size
        self._responses: Responses | None = None  # made by the first request()

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
        accepted = self._core.accepted
        return accepted is not None and accepted[1].session_present

    @property
    def server(self) -> ServerInfo:
        """What the broker's CONNACK said at the latest connection (renewed at every
        reconnect): its limits, what it supports, the client id it assigned, its Response
        Information, Server Reference, Reason String and User Properties."""
        accepted = self._core.accepted
        assert accepted is not None  # a client exists only once connected
        return server_info(*accepted)

    @property
    def protocol(self) -> ProtocolVersion:
        """The protocol version spoken."""
        return self._supervisor.connect.protocol_version

    @property
    def state(self) -> ClientState:
        """Where the client is: connecting, connected, reconnecting or closed."""
        return self._core.status.state

    @property
    def reconnects(self) -> int:
        """How many times the client has connected again after losing the connection."""
        return self._supervisor.reconnects

    def statistics(self) -> ClientStatistics:
        """A snapshot of the client's counters since it was opened: messages and bytes in
        and out, publishes in flight, the offline queue, each subscription's buffer,
        connections and their losses by cause, the acknowledgement latency histogram, QoS 0
        messages dropped with a connection. See docs/operating.md.

        Cheap (no I/O, no waiting: it copies counters the client keeps anyway), not a
        checkpoint, and safe to call from another thread, e.g. a metrics exporter's.

        Returns:
            A :class:`ClientStatistics`.

        Raises:
            Nothing: it works on a closed client too.
        """
        return statistics(self._core, self._supervisor)

    def watch_state(self) -> StateWatcher:
        """The state changes, as an async iterator; use as a ``with`` block::

            with client.watch_state() as changes:
                async for change in changes:  # Connected, Disconnected, Reconnecting
                    print(change)

        The first change is the latest one before the call, so it tells where the client is
        now (for a client just opened, the :class:`Connected` of its first connection); then
        come the changes from now on, in order. Iteration ends when the client closes.

        Returns:
            A :class:`StateWatcher`, to be used as a ``with`` block.

        Raises:
            Nothing: a closed client gives a watcher whose iteration ends at once.
        """
        return self._core.status.watch()

    async def wait_connected(self) -> None:
        """Wait until the client is connected (returns at once if it is).

        Raises:
            ConnectionLostError: the client stopped reconnecting.
            trio.ClosedResourceError: the client is closed.
        """
        await self._core.wait_connected()

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
        core = self._core
        core.check_open()
        if core.link is None or not core.ready:
            raise NotConnectedError("re-authentication needs a live connection")
        await core.link.reauthenticate()

    async def disconnect(
        self,
        reason_code: ReasonCode = ReasonCode.NORMAL_DISCONNECTION,
        *,
        session_expiry: float | None = None,
        reason_string: str | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Close the client now with a DISCONNECT of your choosing (MQTT 5 section 3.14).

        Leaving the ``open_client`` block sends a normal DISCONNECT; this says more first.
        ``ReasonCode.DISCONNECT_WITH_WILL_MESSAGE`` (0x04) makes the broker publish the will
        all the same; ``session_expiry`` changes how long the broker keeps the session (0:
        discard it now). After it the client is closed: its methods raise
        ``trio.ClosedResourceError``, and the block ends normally. Shielded and bounded,
        like leaving the block.

        Args:
            reason_code: one a client may send: 0x00 (normal), 0x04 (publish the will),
                or an error code (0x80-0x83, 0x90, 0x93-0x99).
            session_expiry: the new Session Expiry Interval, in seconds.
            reason_string: a note for the broker's logs.
            user_properties: User Properties for the broker.

        Raises:
            ValueError: a reason code a client may not send; a non-zero ``session_expiry``
                when the client connected with none ([MQTT-3.14.2-2]); anything but a plain
                DISCONNECT over MQTT 3.1.1, whose DISCONNECT carries nothing.
        """
        farewell = build_disconnect(
            self._supervisor.connect, reason_code, session_expiry=session_expiry,
            reason_string=reason_string, user_properties=user_properties,
        )  # fmt: skip
        self._core.closing()
        await self._supervisor.close(farewell)

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

        Args:
            topic: the topic name (no wildcards).
            payload: ``bytes``, ``bytearray``, ``memoryview``, or ``str`` (sent as UTF-8).
            qos: 0, 1 or 2.
            retain: ask the broker to retain the message for future subscribers.
            properties: MQTT 5 PUBLISH properties (the keywords below are merged into them).
            content_type: the Content Type property.
            payload_format_indicator: 1 when the payload is UTF-8 text.
            message_expiry_interval: seconds the message stays valid (what is left of it goes
                with a resend after an outage).
            response_topic: where a responder should reply (see :meth:`request`).
            correlation_data: data the reply should carry back.
            user_properties: User Properties, in order, repeats allowed.

        Returns:
            A :class:`PublishResult`: the packet id and the broker's reason code and
            properties (``packet_id`` None for QoS 0).

        Raises:
            PublishError: the broker answered with a failure reason code (0x80 or above), or
                ended the connection each time this message was sent (a "poison" request:
                see docs/errors.md; ``__cause__`` is how the last connection ended).
            trio.ClosedResourceError: the client is closed.
            NotConnectedError: offline, and the offline queue is full or ``offline_timeout``
                passed.
            ConnectionLostError: the connection ended and the client is not reconnecting.
            LocalProtocolError: the server's limits forbid it (Maximum QoS, Retain Available,
                Maximum Packet Size).
            ValueError: an invalid topic name or QoS.
            TypeError: a payload that is not bytes, bytearray, memoryview or str.
        """
        if qos not in (
            0,
            1,
            2,
        ):  # the check inline, the message in one place: the hot path
            check_qos(qos)
        data = payload if type(payload) is bytes else payload_bytes(payload)
        if (
            properties is not None
            or content_type is not None
            or user_properties
            or (
                payload_format_indicator is not None
                or message_expiry_interval is not None
                or response_topic is not None
                or correlation_data is not None
            )
        ):
            properties = publish_properties(
                self.protocol, properties, content_type=content_type,
                payload_format_indicator=payload_format_indicator,
                message_expiry_interval=message_expiry_interval,
                response_topic=response_topic, correlation_data=correlation_data,
                user_properties=user_properties,
            )  # fmt: skip
        else:
            properties = EMPTY_PROPERTIES
        outbox = self._core.outbox
        if not qos and (link := outbox.fast) is not None:
            # The fast path (``fast`` is set only while the client is open and ready): queue
            # the packet and have it sent (see Link.flush), without a coroutine more per
            # message. Only unsent bytes beyond the high-water mark make the caller wait
            # (backpressure); otherwise this is a cancellation point only.
            await trio.lowlevel.checkpoint_if_cancelled()
            if link.publish_qos0(topic, data, retain, properties) < HIGH_WATER:
                return QOS0_RESULT
            reconnecting = self._supervisor.settings.reconnect is not None
            return await outbox.backpressure(link, qos0_loss_ok=reconnecting)
        self._core.check_open()
        return await outbox.publish(topic, data, QOS_LEVELS[qos], retain, properties)

    def pipeline(self, *, max_in_flight: int = 1000) -> Pipeline:
        """Publish fast: many QoS 1/2 messages in flight from one task, with backpressure.

        The way to publish a stream of messages quickly: no task and no waiting per message::

            async with client.pipeline(max_in_flight=1000) as pipe:
                for reading in readings:
                    await pipe.publish("sensors/temp", reading, qos=1)
            # here every message is acknowledged (or PipelineError said which were not)

        ``pipe.publish()`` takes :meth:`publish`'s arguments (``qos`` defaults to 1) and
        returns once the message is handed to the connection; it waits only while
        ``max_in_flight`` of the pipeline's messages are unacknowledged. Messages go out in
        call order, survive reconnects as ``publish()``'s do, and the broker's Receive
        Maximum still applies (the rest wait, queued, in order).

        Leaving the block normally waits for every acknowledgement and raises
        :class:`PipelineError`, listing each failed message, if any failed. The first failure
        also stops the pipeline: the next ``pipe.publish()`` raises it (leaving the block
        then still waits for the rest, so every failure is reported). Leaving by another
        exception or a cancellation does not wait: messages still queued are taken back
        (never sent), the others complete in the session, as a cancelled ``publish()``'s do.

        Args:
            max_in_flight: how many of the pipeline's messages may be unacknowledged (and so
                held in memory) at once.

        Returns:
            A :class:`Pipeline`, to be used as an ``async with`` block.

        Raises:
            ValueError: ``max_in_flight`` is not at least 1.
        """
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight!r}")
        core = self._core
        return Pipeline._create(
            core.outbox, self.protocol, core.check_open, self.publish, max_in_flight
        )

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

        Args:
            topic_filters: one or more topic filters (``+`` and ``#`` wildcards,
                ``$share/group/filter`` for a shared subscription).
            qos: the maximum QoS to receive at (the broker may grant less:
                :attr:`Subscription.granted_qos`).
            no_local: do not receive our own publishes (MQTT 5).
            retain_as_published: keep the RETAIN flag of live messages (MQTT 5).
            retain_handling: when retained messages are sent on subscribing (MQTT 5).
            buffer_size: how many QoS 0 messages to buffer (the client's default if None).
            manual_ack: acknowledge QoS 1/2 messages only through :meth:`Message.ack`.
            ack_on_arrival: acknowledge QoS 1/2 messages as they enter the buffer.

        Returns:
            A :class:`Subscription`, to be used as an ``async with`` block and iterated.

        Raises:
            ValueError: at the call: an invalid topic filter, QoS or option (``no_local`` on a
                shared subscription, [MQTT-3.8.3-4]).
            SubscribeError: on entering: SUBACK refused at least one filter
                (``reason_codes`` says which), the broker's CONNACK said it does not support
                one (0x9E shared, 0xA2 wildcards; nothing is sent), or the broker ended the
                connection each time the SUBSCRIBE was sent (poison). Also from the
                iteration, when the renewal after a reconnect without the session fails so.
            trio.ClosedResourceError: the client is closed.
        """
        if not topic_filters:
            raise ValueError("subscribe() needs at least one topic filter")
        check_qos(qos)
        qos = QoS(qos)
        retain_handling = RetainHandling(retain_handling)
        v311 = self.protocol is ProtocolVersion.V311
        if v311 and (no_local or retain_as_published or retain_handling):
            raise ValueError(
                "no_local, retain_as_published and retain_handling need MQTT 5"
            )
        if no_local and any(f.startswith("$share/") for f in topic_filters):
            raise ValueError(
                "no_local cannot be set on a shared subscription ($share/...)"
            )  # [MQTT-3.8.3-4]
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
        inbox = Inbox(
            requests,
            buffer_size=size,
            manual_ack=manual_ack,
            ack_on_arrival=ack_on_arrival,
        )
        subscribing = self._core.subscribing
        return Subscription._create(inbox, subscribing.enter, subscribing.leave)

    # -- request/response (MQTT 5 section 4.10) ----------------------------------------------------

    async def request(
        self,
        topic: str,
        payload: bytes | bytearray | memoryview | str = b"",
        *,
        qos: QoS | int = QoS.AT_LEAST_ONCE,
        content_type: str | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
        properties: Properties | None = None,
    ) -> Message:
        """Send a request and wait for its response (MQTT 5 request/response).

        The client publishes to ``topic`` with a Response Topic and fresh Correlation Data,
        and returns the message that comes back with the same Correlation Data. The response
        topic belongs to this client: the first request subscribes to it, built from the
        broker's Response Information if it gave one (``open_client(...,
        request_response_information=True)`` asks for it), else from
        ``trio-mqtt/responses/`` and a random token. Many requests may be in flight at once.
        It waits as long as it takes: bound it the Trio way, ``with trio.fail_after(5): await
        client.request(...)``. A response that comes after its request timed out or was
        cancelled is dropped (a debug log). Responses survive reconnects only when the broker keeps the session
        (``clean_start=False`` and a ``session_expiry``): the client renews the subscription
        after a reconnect, but what was published to it meanwhile is gone otherwise.

        Args:
            topic: where the responder listens.
            payload: the request (as for :meth:`publish`).
            qos: the request's QoS (1 by default).
            content_type: its Content Type.
            user_properties: its User Properties.
            properties: any other PUBLISH properties (not Response Topic or Correlation
                Data: the client sets them).

        Returns:
            The response message.

        Raises:
            LocalProtocolError: MQTT 3.1.1, which has no request/response.
            ValueError: ``properties`` carries a Response Topic or Correlation Data.
            trio.ClosedResourceError: the client is (or became) closed.
            PublishError, SubscribeError, ...: as :meth:`publish` and :meth:`subscribe`.
        """
        if self.protocol is ProtocolVersion.V311:
            raise LocalProtocolError("request/response needs MQTT 5")
        self._core.check_open()
        if self._responses is None:
            self._responses = Responses(self._core.subscribing)
        return await service_request(
            self.publish, self._responses, self.server.response_information, topic,
            payload, qos=qos,
            properties=properties, content_type=content_type,
            user_properties=user_properties,
        )  # fmt: skip

    def serve(
        self,
        *topic_filters: str,
        qos: QoS | int = QoS.AT_LEAST_ONCE,
        buffer_size: int | None = None,
    ) -> Requests:
        """Answer requests (MQTT 5 request/response): subscribe to ``topic_filters`` and
        iterate the requests that arrive, each with a :meth:`Request.reply` to its
        requester::

            async with client.serve("svc/add") as requests:
                async for request in requests:
                    a, b = json.loads(request.payload)
                    await request.reply(json.dumps(a + b))

        A shared subscription (``$share/group/svc/add``) spreads the requests over several
        responders. A request without a Response Topic is delivered too: its
        :meth:`Request.reply` raises LocalProtocolError (nothing to reply to).

        Args:
            topic_filters: what to serve, as for :meth:`subscribe`.
            qos: the subscription's QoS (1 by default).
            buffer_size: as for :meth:`subscribe`.

        Returns:
            A :class:`Requests`, to be used as an ``async with`` block.

        Raises:
            ValueError: as :meth:`subscribe`.
            SubscribeError: on entering, as :meth:`subscribe`.
        """
        subscription = self.subscribe(*topic_filters, qos=qos, buffer_size=buffer_size)
        return Requests._create(subscription, self.publish)

    async def unsubscribe(self, *topic_filters: str) -> None:
        """End the broker's subscriptions to ``topic_filters`` that no live subscription block
        uses: typically those a persistent session kept from an earlier run (a subscription
        block left by an exception or a cancellation keeps them, see :meth:`subscribe`).

        Waits until connected, then for the UNSUBACK. Messages of these filters still on
        their way are acknowledged and dropped.

        Args:
            topic_filters: the filters to unsubscribe from.

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
        live = self._core.subscribing.live_filters()
        used = [f for f in filters if f in live]
        if used:
            raise ValueError(
                f"{used[0]!r} is used by a live subscription block: leave that block instead"
            )
        await self._core.subscribing.unsubscribe(filters)
