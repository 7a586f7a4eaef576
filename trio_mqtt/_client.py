"""MQTTClient and open_client(): validation and delegation; the protocol lives in _sansio."""

from __future__ import annotations

import math
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, final

import attrs
import trio

from ._config import Endpoint
from ._enums import ProtocolVersion, QoS, RetainHandling
from ._exceptions import (
    ConnectError,
    ConnectionLostError,
    ConnectRefusedError,
    MQTTError,
    PublishError,
    SubscribeError,
    UnsubscribeError,
)
from ._link import Link
from ._message import Message, PublishResult
from ._sansio._codec import MAX_PACKET_SIZE
from ._sansio._connection import MQTTConnection, QuotaExceeded
from ._sansio._events import (
    Event,
    MessageReceived,
    PublishAcknowledged,
    SubscribeAcknowledged,
    UnsubscribeAcknowledged,
)
from ._sansio._packets import Connect, SubscriptionRequest, Will
from ._sansio._properties import EMPTY_PROPERTIES, Properties
from ._subscription import Subscription
from ._topics import topic_matches, validate_topic_filter, validate_topic_name

_AckEvent = PublishAcknowledged | SubscribeAcknowledged | UnsubscribeAcknowledged


class _Waiter:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: _AckEvent | None = None


@final
class MQTTClient:
    """A connected MQTT client. Get one from :func:`open_client`; it has no public constructor."""

    def __init__(
        self, link: Link, *, client_id: str, session_present: bool, buffer_size: int
    ) -> None:
        self._link = link
        self._conn = link.conn
        self._client_id = client_id
        self._session_present = session_present
        self._buffer_size = buffer_size
        self._waiters: dict[int, _Waiter] = {}
        self._subscriptions: list[Subscription] = []
        self._quota = trio.Event()
        self._closed = False
        # MQTT 5 subscription identifiers (section 3.8.2.1.2): each SUBSCRIBE gets a
        # fresh one, and the broker tags every message copy with the ids of the subscriptions it
        # matched, so overlapping subscriptions each get exactly their own copies.
        self._use_ids = (
            link.conn.version is ProtocolVersion.V5
            and link.conn.server.subscription_identifier_available
        )
        self._next_id = 0
        self._filter_ids: dict[str, int] = {}

    @property
    def client_id(self) -> str:
        """The client identifier in use (assigned by the broker if none was given, MQTT 5)."""
        return self._client_id

    @property
    def session_present(self) -> bool:
        """Whether the broker resumed an existing session at connect."""
        return self._session_present

    @property
    def protocol(self) -> ProtocolVersion:
        """The protocol version spoken."""
        return self._conn.version

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the client is closed")
        failure = self._link.failure
        if failure is not None:
            raise failure

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

        QoS 0 returns once the packet is handed to the network; QoS 1 waits for PUBACK; QoS 2 for
        PUBCOMP. When the broker's Receive Maximum is reached, QoS 1/2 publishes wait for a free
        slot first (flow control, never an error). The keyword properties are MQTT 5 only and
        are merged into ``properties``; MQTT 3.1.1 ignores them.

        Always a checkpoint. If cancelled before the PUBLISH is queued, nothing is sent. If
        cancelled after, the message may still be delivered; its packet identifier stays
        reserved until the broker completes the flow, so the session is never corrupted.

        Raises:
            PublishError: the broker answered with a failure reason code (0x80 or above).
            ConnectionLostError: the connection ended before the acknowledgement.
            LocalProtocolError: the server's limits forbid it (Maximum QoS, Retain Available,
                Maximum Packet Size).
            ValueError: an invalid topic name or QoS.
        """
        qos = QoS(qos)  # the topic is validated by the encoder, once
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        changes = _drop_none(
            content_type=content_type,
            payload_format_indicator=payload_format_indicator,
            message_expiry_interval=message_expiry_interval,
            response_topic=response_topic,
            correlation_data=correlation_data,
        )
        if user_properties:
            changes["user_properties"] = tuple(user_properties)
        if changes:
            properties = attrs.evolve(properties or EMPTY_PROPERTIES, **changes)
        if properties is None or self._conn.version is ProtocolVersion.V311:
            properties = EMPTY_PROPERTIES
        self._check_open()
        link = self._link
        conn = self._conn
        if not qos:
            conn.publish(topic, data, retain=retain, properties=properties)
            await link.wait_sent(link.mark())
            return PublishResult(packet_id=None)
        while True:
            try:
                packet_id = conn.publish(
                    topic, data, qos=qos, retain=retain, properties=properties
                )
                assert packet_id is not None
                break
            except QuotaExceeded:
                await self._quota.wait()
                self._check_open()
        ack = await self._await_ack(packet_id)
        assert isinstance(ack, PublishAcknowledged)
        if ack.reason_code.is_failure:
            props = ack.properties
            raise PublishError(
                ack.reason_code,
                reason_string=props.reason_string,
                user_properties=props.user_properties,
            )
        return PublishResult(
            packet_id=packet_id, reason_code=ack.reason_code, properties=ack.properties
        )

    async def _await_ack(self, packet_id: int) -> _AckEvent:
        """Wake the writer for the request just queued under ``packet_id`` and wait for its ack.

        Cancellation only stops the waiting: the packet id stays reserved in the session until
        the acknowledgement arrives, and the event is then dropped.
        """
        waiter = self._waiters[packet_id] = _Waiter()
        self._link.wake()
        try:
            await waiter.event.wait()
        finally:
            self._waiters.pop(packet_id, None)
        if waiter.result is None:
            self._check_open()
            raise ConnectionLostError("the connection ended before the acknowledgement")
        return waiter.result

    def subscribe(
        self,
        *topic_filters: str,
        qos: QoS | int = QoS.AT_MOST_ONCE,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: RetainHandling | int = RetainHandling.SEND_ON_SUBSCRIBE,
        buffer_size: int | None = None,
    ) -> Subscription:
        """Subscribe to one or more topic filters, as an async context manager and iterator.

        ``async with client.subscribe("a/+") as messages:`` sends SUBSCRIBE and waits for SUBACK;
        leaving the block sends UNSUBSCRIBE for the filters no other live subscription uses.
        Every live subscription whose filters match a message's topic receives that message.
        ``no_local``, ``retain_as_published`` and ``retain_handling`` are MQTT 5 options.

        Raises (on entering):
            SubscribeError: SUBACK refused at least one filter (``reason_codes`` says which).
            ValueError: an invalid topic filter or option.
        """
        if not topic_filters:
            raise ValueError("subscribe() needs at least one topic filter")
        qos = QoS(qos)
        retain_handling = RetainHandling(retain_handling)
        v311 = self._conn.version is ProtocolVersion.V311
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
        return Subscription(
            requests,
            buffer_size=size,
            enter=self._enter_subscription,
            leave=self._leave_subscription,
        )

    async def _enter_subscription(self, subscription: Subscription) -> None:
        self._check_open()
        # Routed from now on: retained messages may arrive right after SUBACK, in the same read.
        self._subscriptions.append(subscription)
        properties = EMPTY_PROPERTIES
        if self._use_ids:
            self._next_id = self._next_id % 268_435_455 + 1
            properties = Properties(subscription_identifiers=(self._next_id,))
        try:
            packet_id = self._conn.subscribe(subscription.requests, properties)
            if self._use_ids:
                for request in subscription.requests:
                    self._filter_ids[request.topic_filter] = self._next_id
            ack = await self._await_ack(packet_id)
            codes = ack.reason_codes if isinstance(ack, SubscribeAcknowledged) else ()
            if any(code.is_failure for code in codes) or len(codes) != len(
                subscription.requests
            ):
                props = ack.properties
                raise SubscribeError(
                    codes,
                    reason_string=props.reason_string,
                    user_properties=props.user_properties,
                )
        except BaseException:
            self._subscriptions.remove(subscription)
            subscription._finish(None)
            raise

    async def _leave_subscription(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        subscription._finish(None)
        still_used = {f for s in self._subscriptions for f in s.filters}
        filters = [
            f for f in dict.fromkeys(subscription.filters) if f not in still_used
        ]
        if not filters or self._closed or self._link.failure is not None:
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            packet_id = self._conn.unsubscribe(filters)
            ack = await self._await_ack(packet_id)
            failed = (
                [c for c in ack.reason_codes if c.is_failure]
                if isinstance(ack, UnsubscribeAcknowledged)
                else []
            )
            if failed:
                raise UnsubscribeError(
                    failed[0], reason_string=ack.properties.reason_string
                )

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            publish = event.publish
            message = Message._from_publish(publish)
            ids = publish.properties.subscription_identifiers
            for subscription in tuple(self._subscriptions):
                if self._routes_to(subscription, publish.topic, ids):
                    await subscription._deliver(message)
            return
        if isinstance(event, PublishAcknowledged):
            self._quota.set()
            self._quota = trio.Event()
        if isinstance(event, _AckEvent):
            waiter = self._waiters.get(event.packet_id)
            if waiter is not None:
                waiter.result = event
                waiter.event.set()

    def _routes_to(
        self, subscription: Subscription, topic: str, ids: tuple[int, ...]
    ) -> bool:
        if not ids:
            return subscription._matches(topic)
        owners = self._filter_ids
        return any(
            owners.get(f) in ids and topic_matches(f, topic)
            for f in subscription.filters
        )

    def _finish(self, error: MQTTError | None) -> None:
        """The link is over: wake every waiter and end every subscription."""
        self._closed = True
        for waiter in self._waiters.values():
            waiter.event.set()
        self._quota.set()
        for subscription in self._subscriptions:
            subscription._finish(error)


def _drop_none(**values: object) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves += _leaves(exc)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves


async def _open_stream(
    endpoint: Endpoint, tls: ssl.SSLContext | None
) -> trio.abc.Stream:
    try:
        if endpoint.tls or tls is not None:
            context = tls if tls is not None else ssl.create_default_context()
            stream = await trio.open_ssl_over_tcp_stream(
                endpoint.host, endpoint.port, ssl_context=context
            )
            try:
                await stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(
                    stream
                )  # never leak the socket of a failed handshake
                raise
            return stream
        return await trio.open_tcp_stream(endpoint.host, endpoint.port)
    except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
        cause = (
            exc.__cause__
            if isinstance(exc, trio.BrokenResourceError) and exc.__cause__
            else exc
        )
        raise ConnectError(
            f"could not connect to {endpoint.host}:{endpoint.port}: {cause}"
        ) from exc


@asynccontextmanager
async def open_client(
    broker: str | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    client_id: str | None = None,
    protocol: ProtocolVersion = ProtocolVersion.V5,
    username: str | None = None,
    password: str | bytes | None = None,
    keepalive: float = 60.0,
    clean_start: bool = True,
    session_expiry: float = 0.0,
    will: Will | None = None,
    tls: ssl.SSLContext | None = None,
    connect_timeout: float = 10.0,
    receive_maximum: int = 65535,
    max_packet_size: int | None = None,
    buffer_size: int = 1024,
    transport_factory: Callable[[], Awaitable[trio.abc.Stream]] | None = None,
) -> AsyncIterator[MQTTClient]:
    """Connect to a broker for the duration of an ``async with`` block.

    Args:
        broker: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...``; ``host``/``port``
            override its parts (``host`` alone is enough).
        client_id: the client identifier. ``None``: the broker assigns one (MQTT 5), or a random
            one is generated (MQTT 3.1.1).
        protocol: ``ProtocolVersion.V5`` (default) or ``ProtocolVersion.V311``.
        username: the user name (overrides the URL's).
        password: the password (overrides the URL's). Never logged or shown in errors.
        keepalive: seconds of silence before a PINGREQ; 0 disables keep alive. A broker that
            does not answer is detected within 1.5 times this. A Server Keep Alive wins.
        clean_start: start a new session instead of resuming one.
        session_expiry: seconds the broker keeps the session after disconnect (MQTT 5; in
            3.1.1 any session is kept while ``clean_start`` is false).
        will: the message the broker publishes if this client vanishes without DISCONNECT.
        tls: an SSL context; ``mqtts://`` without one uses ``ssl.create_default_context()``,
            which verifies the certificate and host name.
        connect_timeout: seconds to wait for the TCP/TLS connection and CONNACK.
        receive_maximum: how many unacknowledged QoS 1/2 messages the broker may send us.
        max_packet_size: the largest packet accepted from the broker (advertised, MQTT 5).
        buffer_size: default number of messages each subscription buffers before the client
            stops reading the network (backpressure).
        transport_factory: opens the byte stream instead of TCP/TLS (tests, custom
            transports); ``broker`` and ``host`` are then optional.

    Leaving the block sends DISCONNECT and closes the connection; no task is left behind.
    Exceptions leave the block bare, never wrapped in an :class:`ExceptionGroup`.

    Raises:
        ConnectError: no connection could be made (``__cause__`` holds the network error).
        ConnectRefusedError: the broker refused the CONNECT.
        ConnectionLostError: the connection ended while the block was running.
        ValueError: invalid arguments.
    """
    endpoint = Endpoint.from_url(broker) if broker is not None else None
    if endpoint is None and host is None and transport_factory is not None:
        endpoint = Endpoint(host="<transport_factory>", port=0)
    if endpoint is None:
        if host is None:
            raise ValueError("give a broker URL or host=")
        endpoint = Endpoint(
            host=host, port=port if port is not None else (8883 if tls else 1883)
        )
    elif host is not None or port is not None:
        endpoint = Endpoint(
            host=host or endpoint.host,
            port=port or endpoint.port,
            tls=endpoint.tls,
            username=endpoint.username,
            password=endpoint.password,
        )
    protocol = ProtocolVersion(protocol)
    v5 = protocol is ProtocolVersion.V5
    username = username if username is not None else endpoint.username
    raw_password = password if password is not None else endpoint.password
    password_bytes = (
        raw_password.encode("utf-8") if isinstance(raw_password, str) else raw_password
    )
    if not 0 <= keepalive <= 65535:
        raise ValueError("keepalive must be 0..65535 seconds")
    if client_id is None:
        client_id = "" if v5 else f"trio-mqtt-{secrets.token_hex(8)}"
    if will is not None:
        validate_topic_name(will.topic)
    if not 1 <= receive_maximum <= 65535:
        raise ValueError("receive_maximum must be 1..65535")
    properties = EMPTY_PROPERTIES
    if v5:
        properties = Properties(
            session_expiry_interval=min(math.ceil(session_expiry), 0xFFFFFFFF) or None,
            receive_maximum=receive_maximum if receive_maximum != 65535 else None,
            maximum_packet_size=max_packet_size,
        )
    connect = Connect(
        protocol_version=protocol, client_id=client_id, clean_start=clean_start, keep_alive=math.ceil(keepalive),
        username=username, password=password_bytes, will=will if v5 or will is None else Will(will.topic, will.payload, will.qos, will.retain),
        properties=properties,
    )  # fmt: skip
    conn = MQTTConnection(
        version=protocol,
        receive_maximum=receive_maximum,
        max_packet_size=max_packet_size or MAX_PACKET_SIZE,
    )
    try:
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(connect_timeout) as connect_scope:
                stream = await (
                    transport_factory()
                    if transport_factory
                    else _open_stream(endpoint, tls)
                )
                link = Link(stream, conn, lambda event: client._on_event(event))
                try:
                    connack = await link.handshake(connect)
                except BaseException:
                    with trio.CancelScope(shield=True):
                        await trio.aclose_forcefully(stream)
                    raise
            if connect_scope.cancelled_caught:
                raise ConnectError(
                    f"no connection to {endpoint.host}:{endpoint.port} within {connect_timeout:g}s"
                )
            if connack.reason_code.is_failure:
                await trio.aclose_forcefully(stream)
                props = connack.properties
                raise ConnectRefusedError(
                    connack.reason_code,
                    reason_string=props.reason_string,
                    server_reference=props.server_reference,
                )
            assigned = connack.properties.assigned_client_identifier
            client = MQTTClient(
                link,
                client_id=assigned or client_id,
                session_present=connack.session_present,
                buffer_size=buffer_size,
            )

            async def run_link(
                *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
            ) -> None:
                try:
                    await link.run(task_status=task_status)
                finally:
                    client._finish(link.failure)

            await nursery.start(run_link)
            try:
                yield client
            finally:
                client._closed = True
                await link.close()
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) != 1:
            raise
        leaf = leaves[0]
        raise leaf from leaf.__cause__
