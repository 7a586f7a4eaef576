"""open_client(): arguments checked and resolved, then a client and its supervisor run in a
nursery for the duration of the ``async with`` block."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal, NoReturn

import trio

from ._auth import Authenticator
from ._client import MQTTClient
from ._config import Endpoint, ReconnectPolicy
from ._engine._core import ClientCore
from ._engine._metrics import HookCaller
from ._engine._outbox import Outbox
from ._engine._queue_journal import QueueJournal
from ._engine._stores import SessionStore, open_session
from ._engine._supervisor import ConnectionSettings, Supervisor
from ._enums import ProtocolVersion
from ._hooks import ClientHooks, overridden
from ._io._transports import open_transport
from ._options import (
    DEFAULT_MAX_PACKET_SIZE,
    build_connect,
    resolve_endpoints,
)
from ._sansio._packets import Will
from ._sansio._session import SessionState
from ._tls import TLSConfig, resolve_tls

_DEFAULT_RECONNECT = ReconnectPolicy()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves += _leaves(exc)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves


def open_client(
    broker: str | Endpoint | Sequence[str | Endpoint] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    client_id: str | None = None,
    protocol: ProtocolVersion | Literal["auto"] = ProtocolVersion.V5,
    username: str | None = None,
    password: str | bytes | None = None,
    authenticator: Authenticator | None = None,
    keepalive: float = 60.0,
    clean_start: bool = True,
    session_expiry: float = 0.0,
    will: Will | None = None,
    tls: ssl.SSLContext | TLSConfig | None = None,
    websocket_headers: Mapping[str, str] | None = None,
    connect_timeout: float = 10.0,
    receive_maximum: int = 65535,
    max_packet_size: int | None = DEFAULT_MAX_PACKET_SIZE,
    buffer_size: int = 1024,
    reconnect: ReconnectPolicy | None = _DEFAULT_RECONNECT,
    offline_queue: int = 10_000,
    offline_queue_bytes: int = 64 * 1024 * 1024,
    offline_timeout: float | None = None,
    session_store: SessionStore | None = None,
    transport_factory: Callable[[], Awaitable[trio.abc.Stream]] | None = None,
    topic_alias_maximum: int = 16,
    topic_aliases: bool = False,
    user_properties: Sequence[tuple[str, str]] = (),
    request_response_information: bool = False,
    request_problem_information: bool = True,
    subscription_identifiers: bool = True,
    hooks: ClientHooks | None = None,
) -> AbstractAsyncContextManager[MQTTClient]:
    """Connect to a broker for the duration of an ``async with`` block.

    Args:
        broker: a URL (``mqtt://[user[:password]@]host[:port]``, ``mqtts://`` for TLS,
            ``ws://host[:port][/path]`` and ``wss://`` for WebSocket, ``unix:///path``), an
            :class:`Endpoint`, or a list of them tried in turn; ``host``/``port`` override the
            first one's parts (``host`` alone is enough).
        client_id: the client identifier. ``None``: the broker assigns one (MQTT 5), or a random
            one is generated (MQTT 3.1.1). Required with a ``session_store``.
        protocol: ``ProtocolVersion.V5`` (default) or ``ProtocolVersion.V311``; or
            ``"auto"``: MQTT 5, and MQTT 3.1.1 if the broker answers the first connection with
            UNSUPPORTED_PROTOCOL_VERSION (0x84), as NATS and aedes do. The version the first
            connection settles on is the client's for good (:attr:`MQTTClient.protocol`);
            MQTT 5 only features are then refused as they are for 3.1.1. Not with a
            ``session_store`` (its packets are stored in one version) or an ``authenticator``.
        username: the user name (overrides the URL's).
        password: the password (overrides the URL's). Never logged or shown in errors.
        authenticator: MQTT 5 enhanced authentication (section 4.12), e.g.
            :class:`ScramAuthenticator`; it answers the broker's AUTH challenges on every
            connection and :meth:`MQTTClient.reauthenticate` uses it again.
        keepalive: seconds of silence before a PINGREQ; 0 disables keep alive. A broker that
            does not answer is detected within 1.5 times this. A Server Keep Alive wins.
        clean_start: start a new session instead of resuming one (first connection only).
        session_expiry: seconds the broker keeps the session after a disconnect (MQTT 5; in
            3.1.1 any session is kept while ``clean_start`` is false).
        will: the message the broker publishes if this client vanishes without DISCONNECT.
        tls: a :class:`TLSConfig` (CA, client certificate, ALPN, SNI) or an ``ssl.SSLContext``
            used as given; it turns TLS on for any URL. ``mqtts://`` and ``wss://`` without it
            use ``ssl.create_default_context()``, which verifies the certificate and host name.
        websocket_headers: extra HTTP headers for the WebSocket upgrade (``ws://``, ``wss://``),
            e.g. an ``Authorization`` header.
        connect_timeout: seconds to wait for each connection attempt, up to CONNACK.
        receive_maximum: how many unacknowledged QoS 1/2 messages the broker may send us; it
            also bounds how many of them the subscriptions buffer.
        max_packet_size: the largest packet accepted from the broker, in bytes (16 MiB by
            default; ``None``: the protocol's 256 MiB). MQTT 5 advertises it, so the broker
            does not send larger messages to this client; anything larger that arrives ends
            the connection with DISCONNECT 0x95 before a byte of it is buffered.
        buffer_size: default number of QoS 0 messages each subscription buffers before the
            client stops reading the network (backpressure).
        reconnect: how to reconnect after losing an established connection (backoff with
            jitter); ``None`` disables reconnecting: a lost connection then raises.
        offline_queue: how many publishes may wait while disconnected before ``publish()``
            raises :class:`NotConnectedError`.
        offline_queue_bytes: how many payload bytes may wait while disconnected (64 MiB by
            default): the offline queue is full at either limit.
        offline_timeout: seconds a publish may wait to be sent before it raises
            :class:`NotConnectedError` (``None``: no limit; the caller's cancel scope still
            applies).
        session_store: where the session's in-flight state is kept; a
            :class:`SQLiteSessionStore` lets a new process finish what a crashed one left.
        transport_factory: opens the byte stream instead of TCP/TLS (tests, custom
            transports); ``broker`` and ``host`` are then optional.
        topic_alias_maximum: how many topic aliases the broker may set on the messages it
            sends us (MQTT 5, 0..65535; 0: none). Each saves the topic's bytes on every
            message after the first; the client keeps at most this many topics per connection.
        topic_aliases: set topic aliases on the messages we publish (MQTT 5): each topic
            is sent in full once per connection, then as a 2-byte alias, for up to the
            broker's Topic Alias Maximum topics (the most recently used ones). Resent
            messages always carry their full topic.
        user_properties: User Properties sent in CONNECT (MQTT 5).
        request_response_information: ask the broker for Response Information (MQTT 5),
            the basis of :meth:`MQTTClient.request`'s response topic (see
            :attr:`MQTTClient.server`).
        request_problem_information: ``False`` asks the broker to leave Reason Strings and
            User Properties out of everything but PUBLISH, CONNACK and DISCONNECT (MQTT 5).
        subscription_identifiers: tag each subscription with an MQTT 5 Subscription
            Identifier, so the broker tells which subscription a message is for (``False``:
            the client matches topics itself, as it does for brokers without them; some
            brokers mishandle them).
        hooks: a :class:`ClientHooks` told of the client's events as they happen
            (connections, losses, acknowledgements with their latency, messages), to feed a
            metrics system, e.g. :class:`trio_mqtt.otel.OpenTelemetryHooks`. See
            docs/operating.md.

    Leaving the block sends DISCONNECT and closes the connection; no task is left behind.
    Exceptions leave the block bare, never wrapped in an :class:`ExceptionGroup`.

    Returns:
        An async context manager: its block gets the connected :class:`MQTTClient`.

    Raises:
        ConnectError: no connection could be made (``__cause__`` holds the network error).
        ConnectRefusedError: the broker refused the CONNECT.
        AuthenticationError: the authenticator refused the broker's challenge or proof.
        ConnectionLostError: the connection ended while the block was running and the client
            is not reconnecting (or gave up, or the refusal cannot be fixed by retrying).
        ValueError: invalid arguments.
        OSError, ssl.SSLError: a TLS file named in ``tls`` cannot be read or is invalid
            (raised before any connection attempt).
    """
    tls_config = resolve_tls(tls)
    headers = tuple((websocket_headers or {}).items())
    endpoints = resolve_endpoints(
        broker,
        host=host,
        port=port,
        tls=tls,
        have_transport=transport_factory is not None,
    )
    # one SSL context per client, not per connection attempt (loading the CAs takes ms)
    ssl_context = (
        (tls_config or TLSConfig()).build_context()
        if tls_config is not None or any(e.tls for e in endpoints)
        else None
    )
    auto = isinstance(protocol, str)
    if auto and protocol != "auto":
        raise ValueError(
            f'protocol must be a ProtocolVersion or "auto", not {protocol!r}'
        )
    if auto and (session_store is not None or authenticator is not None):
        raise ValueError(
            'protocol="auto" cannot be used with a session_store or an authenticator: '
            "choose the version"
        )
    protocol = (
        ProtocolVersion.V5 if isinstance(protocol, str) else ProtocolVersion(protocol)
    )
    connect_for = functools.partial(
        build_connect,
        endpoints[0], client_id=client_id, username=username,
        password=password, keepalive=keepalive, clean_start=clean_start,
        session_expiry=session_expiry, will=will, receive_maximum=receive_maximum,
        max_packet_size=max_packet_size, topic_alias_maximum=topic_alias_maximum,
        user_properties=user_properties,
        request_response_information=request_response_information,
        request_problem_information=request_problem_information,
    )  # fmt: skip
    connect = connect_for(protocol=protocol)
    fallback = connect_for(protocol=ProtocolVersion.V311) if auto else None
    del connect_for  # a local of this generator lives as long as the client: 0.6 KiB
    if authenticator is not None and protocol is not ProtocolVersion.V5:
        raise ValueError("enhanced authentication (authenticator=) needs MQTT 5")
    if session_store is not None and not client_id:
        raise ValueError("a session_store needs a fixed client_id")
    if offline_queue < 0:
        raise ValueError("offline_queue must be 0 or more")
    if offline_queue_bytes < 0:
        raise ValueError("offline_queue_bytes must be 0 or more")
    if hooks is not None and not isinstance(hooks, ClientHooks):
        raise TypeError(
            f"hooks must be a ClientHooks (subclass it), not {type(hooks).__name__}"
        )

    open_stream = _StreamOpener(transport_factory, tls_config, ssl_context, headers)
    settings = ConnectionSettings(
        endpoints=endpoints, open_stream=open_stream,
        connect_timeout=connect_timeout, receive_maximum=receive_maximum,
        max_packet_size=max_packet_size, reconnect=reconnect, authenticator=authenticator,
        topic_alias_maximum=topic_alias_maximum if protocol is ProtocolVersion.V5 else 0,
        topic_aliases=topic_aliases, fallback=fallback,
    )  # fmt: skip

    def build() -> tuple[MQTTClient, ClientCore, Supervisor]:
        session = (
            open_session(session_store, connect.client_id, protocol)
            if session_store is not None
            else SessionState()
        )
        core = ClientCore(
            subscription_identifiers=subscription_identifiers,
            hooks=HookCaller(overridden(hooks)) if hooks is not None else None,
            outbox=Outbox(
                offline_queue=offline_queue,
                offline_bytes=offline_queue_bytes,
                offline_timeout=None
                if offline_timeout is None
                else max(0.0, offline_timeout),
                journal=QueueJournal(session_store, session.queued)
                if session_store is not None
                else None,
                restored=session.queued,
            ),
        )
        supervisor = Supervisor(
            settings,
            connect,
            session,
            core,
            before_send=session_store.flush if session_store is not None else None,
        )
        client = MQTTClient._create(core, supervisor, buffer_size=buffer_size)
        return client, core, supervisor

    return _ClientBlock(build, session_store)


class _StreamOpener:
    """Opens a connection's byte stream (``ConnectionSettings.open_stream``): an object of
    four slots, where a closure over the same took 160 bytes more per client."""

    __slots__ = ("_context", "_factory", "_headers", "_tls")

    def __init__(
        self,
        factory: Callable[[], Awaitable[trio.abc.Stream]] | None,
        tls: TLSConfig | None,
        context: ssl.SSLContext | None,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        self._factory, self._tls, self._context, self._headers = (
            factory, tls, context, headers,
        )  # fmt: skip

    async def __call__(self, endpoint: Endpoint) -> trio.abc.Stream:
        if self._factory is not None:
            return await self._factory()
        return await open_transport(
            endpoint, self._tls, context=self._context, websocket_headers=self._headers
        )


class _ClientBlock:
    """The ``async with`` block of :func:`open_client`.

    A class rather than an ``asynccontextmanager`` generator: the generator's frame held every
    local of ``open_client`` for as long as the client lived, and its context manager the
    arguments (1.5 KiB per connection, a tenth of an idle client). The session (and its store)
    is opened on entering the block; ``build`` and what it holds are dropped then.
    """

    __slots__ = (
        "_build", "_client", "_core", "_manager", "_nursery", "_store", "_supervisor",
    )  # fmt: skip

    def __init__(
        self,
        build: Callable[[], tuple[MQTTClient, ClientCore, Supervisor]],
        store: SessionStore | None,
    ) -> None:
        self._build: Callable[[], tuple[MQTTClient, ClientCore, Supervisor]] | None = (
            build
        )
        self._store = store
        self._client: MQTTClient | None = None
        self._core: ClientCore | None = None
        self._supervisor: Supervisor | None = None
        self._manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> MQTTClient:
        build, self._build = self._build, None
        if build is None:
            raise RuntimeError("an open_client() block can be entered once")
        try:
            client, core, supervisor = build()
            self._core, self._supervisor = core, supervisor
            manager = self._manager = trio.open_nursery()
            nursery = self._nursery = await manager.__aenter__()
            try:
                # (named: else Trio makes a string per task of the function's name, 93 bytes)
                nursery.start_soon(supervisor.run, nursery, name="trio_mqtt supervisor")
                await supervisor.wait_started()
            except BaseException as exc:
                self._manager = self._nursery = None
                await manager.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            if not supervisor.started:
                # run() ended without connecting: its error is the nursery's, raised here
                self._manager = self._nursery = None
                await manager.__aexit__(None, None, None)
                raise RuntimeError("the client ended before its first connection")
        except BaseExceptionGroup as group:
            self._close_store()
            _raise_one(group)
        except BaseException:
            self._close_store()
            raise
        hooks = core.hooks
        if hooks is not None:
            self._client = client  # for on_client_closed
            if hooks.client_opened is not None:
                hooks.call(hooks.client_opened, client)
        return client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: object,
    ) -> bool:
        manager, nursery = self._manager, self._nursery
        core, supervisor = self._core, self._supervisor
        if manager is None or nursery is None or core is None or supervisor is None:
            raise RuntimeError(
                "an open_client() block must be entered before it is left"
            )
        self._manager = self._nursery = None
        replaced = False
        try:
            try:
                core.closing()
                await supervisor.close()
                nursery.cancel_scope.cancel()  # the supervisor, if it waits to reconnect
            except BaseException as error:
                exc, replaced = error, True  # it replaces the block's, as in a finally
            if exc is None:
                await manager.__aexit__(None, None, None)
                return False
            if await manager.__aexit__(type(exc), exc, exc.__traceback__):
                return True  # our own nursery's cancellation, absorbed
            if replaced:
                raise exc
            return False
        except BaseExceptionGroup as group:
            _raise_one(group)
        finally:
            self._close_store()
            hooks, client, self._client = core.hooks, self._client, None
            if (
                hooks is not None
                and hooks.client_closed is not None
                and client is not None
            ):
                hooks.call(hooks.client_closed, client)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()


def _raise_one(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """The client's failure may arrive twice, from the supervisor and from the block, which
    re-raises it when an operation finds the client failed: one error, once."""
    leaves = list({id(leaf): leaf for leaf in _leaves(group)}.values())
    if len(leaves) != 1:
        raise group
    leaf = leaves[0]
    raise leaf from leaf.__cause__
