"""Link: one network connection, and the only owner of its protocol machine.

The *reader* (the task that calls :meth:`Link.run`) feeds received bytes to the machine and
hands the events to the :class:`LinkListener` (a message that fits its subscription's buffer
is taken without awaiting anything; otherwise the reader waits: backpressure). Commands
(:meth:`publish`, :meth:`subscribe`, ...) queue on the machine and have the bytes sent by the
:class:`Sender`: directly from the calling task over a plain socket, else by the *writer*
task, which sends everything queued in one write. Keep alive is one method,
:meth:`_keepalive`, run by whoever sleeps until the machine's next deadline: the reader when
its reads can be cut short (a plain socket: then an idle connection is one task, the writer
running only while it has work and a second after), the writer otherwise (TLS, WebSocket) and
while the reader waits to deliver. Any failure is recorded once, stops the link, and is raised
by :meth:`run` as a single :class:`MQTTError`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

import trio

from .._auth import Authenticator
from .._enums import ProtocolVersion, QoS, ReasonCode
from .._exceptions import (
    AuthenticationError,
    ConnectionLostError,
    LocalProtocolError,
    MQTTError,
    RemoteProtocolError,
)
from .._sansio._connection import ConnectionState, MQTTConnection, ServerLimits
from .._sansio._events import (
    Acknowledged,
    AuthChallenged,
    DisconnectReceived,
    Event,
    KeepAliveExpired,
    ReauthenticationCompleted,
)
from .._sansio._packets import (
    ConnAck,
    Connect,
    Disconnect,
    Publish,
    SubscriptionRequest,
)
from .._sansio._poison import Suspect, ended_by_broker
from .._sansio._properties import EMPTY_PROPERTIES, Properties
from .._sansio._session import SessionState
from .._sansio._traffic import Traffic
from ._contract import LinkListener, as_mqtt_error, lost
from ._handshake import AuthExchange, handshake
from ._sender import Sender
from ._stream import TRANSPORT_ERRORS, ByteStream, wrap_stream
from ._tasks import LinkTasks
from ._trace import traced

log = logging.getLogger("trio_mqtt")

#: Seconds :meth:`Link.close` spends at most on sending the DISCONNECT (and what precedes it).
CLOSE_GRACE = 1.0
_LINK_ERRORS = (MQTTError, *TRANSPORT_ERRORS)

# (a tuple: isinstance() against ``A | B`` builds the union at every call, ~1 µs on 3.11)
_AUTH_EVENTS = (AuthChallenged, ReauthenticationCompleted)
# (an enum member read once: on 3.11 each read from the class goes through a slow hook)
_CONNECTED = ConnectionState.CONNECTED


class Link:
    """Runs one connected stream and owns its protocol machine. Made by the supervisor once
    the stream is open; :meth:`handshake`, then :meth:`run`, then :meth:`close`."""

    __slots__ = (
        "_auth",
        "_closed",
        "_closing",
        "_conn",
        "_delivering",
        "_early",
        "_ended",
        "_failure",
        "_listener",
        "_reauthenticated",
        "_sender",
        "_stopped",
        "_stream",
        "_suspects",
        "_taking_work",
        "_tasks",
        "_timed_out",
        "_waiting",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        listener: LinkListener,
        *,
        version: ProtocolVersion,
        session: SessionState,
        receive_maximum: int,
        max_packet_size: int,
        topic_alias_maximum: int = 0,
        topic_aliases: bool = False,
        before_send: Callable[[], None] | None = None,
        authenticator: Authenticator | None = None,
        traffic: Traffic | None = None,
    ) -> None:
        # Over a plain socket (POSIX) the tasks that queue packets send them themselves when
        # the writer is idle (see flush()), and the reader reads the socket directly.
        self._stream: ByteStream = traced(wrap_stream(stream), version)
        self._listener = listener
        # the reader waits to deliver (outside its keep-alive scope)
        self._delivering = False
        self._auth = AuthExchange(authenticator) if authenticator is not None else None
        self._reauthenticated: trio.Event | None = None
        # The protocol machine: this link is the only object that calls into it.
        self._conn = MQTTConnection(
            version=version,
            session=session,
            receive_maximum=receive_maximum,
            max_packet_size=max_packet_size,
            topic_alias_maximum=topic_alias_maximum,
            topic_aliases=topic_aliases,
            traffic=traffic,
        )
        self._sender = Sender(self._stream, owner=self, before_send=before_send)
        self._early: Sequence[Event] = ()
        self._failure: MQTTError | None = None
        self._suspects: list[Suspect] | None = None  # see the suspects property
        self._timed_out = False  # the broker did not answer PINGREQ in time
        self._ended = False  # the tasks are stopping (failure or close)
        self._taking_work = True  # until the link fails or flushes a last DISCONNECT
        self._closing = False
        self._closed: trio.Event | None = None  # close() began; set when it is done
        self._tasks: LinkTasks | None = None  # the writer and start-up tasks, once run
        self._waiting: trio.CancelScope | None = None  # the reader's, see _scope()
        self._stopped = False  # stop() came, maybe before run()

    # -- the CONNECT handshake, before the tasks run ------------------------------------------

    async def handshake(self, connect: Connect) -> ConnAck:
        """Send CONNECT and wait for CONNACK (see :func:`handshake`). The caller bounds the
        wait, and closes the link if this raises."""
        connack, self._early = await handshake(
            self._stream, self._conn, connect, self._auth
        )
        return connack

    async def reauthenticate(self) -> None:
        """Run a re-authentication (AUTH 0x19, section 4.12.1) on this connection.

        Raises:
            LocalProtocolError: the client has no authenticator.
            AuthenticationError: the server's final data did not verify (the link ends).
            ConnectionLostError: the connection ended first (e.g. the broker refused).
        """
        auth = self._auth
        if auth is None:
            raise LocalProtocolError("re-authentication needs an authenticator")
        done = self._reauthenticated = trio.Event()
        self._conn.auth(ReasonCode.RE_AUTHENTICATE, auth.start())
        self._sender.flush()
        await done.wait()  # set by AUTH 0x00, or by the link's end
        if self._failure is not None:
            raise self._failure
        if self._ended:
            raise lost("the connection closed during re-authentication")

    # -- running --------------------------------------------------------------------------------

    async def run(
        self,
        nursery: trio.Nursery,
        started: Callable[[], Callable[[], Awaitable[None]] | None] | None = None,
    ) -> None:
        """Run the link until it ends; raise why it ended, if not by :meth:`close`.

        The calling task becomes the reader. ``started()`` is called once the writer can run,
        before the first read; what it returns, if anything, runs as a task. The writer and
        that task run in ``nursery`` (the client's: see :mod:`._tasks`), and have ended when
        this returns. Over a plain socket the writer runs only while there is something for it
        to send (and a while after), and the reader keeps the connection alive: an idle
        connection is one task. Over other streams the writer runs throughout and keeps the
        connection alive (their reads are not cut short by a deadline)."""
        tasks = self._tasks = LinkTasks(nursery, self._guard)
        self._sender.attach(tasks)
        try:
            if not self._stopped:
                if not self._stream.reads_cut_short or self._conn.has_data_to_send:
                    # what CONNACK queued (the resent session, [MQTT-4.4.0-1]) goes first
                    self._sender.start_writer()
                try:  # _guard(self._reader), inline: one coroutine frame fewer per link
                    if started is not None:
                        rest = started()
                        if rest is not None:
                            tasks.start(rest)
                        # (this frame lives as long as the link: it need not hold them)
                        del started, rest
                    await self._reader()
                except _LINK_ERRORS as exc:
                    self._fail(as_mqtt_error(exc))
        finally:
            self._sender.attach(None)  # the link is ending: no new writer
            tasks.cancel()
            await tasks.wait()
        if self._failure is not None and not self._closing:
            raise self._failure

    def _stop(self) -> None:
        """Stop the reader and writer; a write in progress finishes (see :meth:`_abort`)."""
        self._stopped = True
        if self._waiting is not None:
            self._waiting.cancel()
        if self._tasks is not None:
            self._tasks.cancel()

    def _abort(self) -> None:
        """Stop everything, a write in progress included."""
        self._stop()
        self._sender.abort()

    def _scope(
        self, deadline: float = math.inf, *, shield: bool = False
    ) -> trio.CancelScope:
        """The cancel scope of the reader's next wait, which :meth:`_stop` cancels. The
        reader has no scope of its own for its whole run: while it is idle, its keep-alive
        scope is the only one (memory per connection: see :mod:`._tasks`)."""
        scope = self._waiting = trio.CancelScope(deadline=deadline, shield=shield)
        if self._stopped:
            scope.cancel()
        return scope

    async def _guard(self, task: Callable[[], Awaitable[None]]) -> None:
        try:
            await task()
        except _LINK_ERRORS as exc:
            self._fail(as_mqtt_error(exc))

    def _ending(self) -> None:
        """Tell the listener, once, that this link takes no new work."""
        if self._taking_work:
            self._taking_work = False
            self._listener.link_ending()

    def _fail(self, error: MQTTError) -> None:
        self._ending()
        self._ended = True
        self._sender.detach()
        if self._failure is None and not self._closing:
            self._failure = error
            if ended_by_broker(error, timed_out=self._timed_out):
                self._suspects = self._conn.suspects()
            log.debug("link failed: %s", error)
        self._sender.wake_all()  # drain() callers see the failure
        if self._reauthenticated is not None:
            self._reauthenticated.set()
        self._abort()

    @property
    def failure(self) -> MQTTError | None:
        """Why the link ended, once it has."""
        return self._failure

    @property
    def suspects(self) -> list[Suspect] | None:
        """Once the link failed: the requests that may have made the broker end it (see
        :mod:`trio_mqtt._sansio._poison`); ``None`` if the broker did not end it, or not in a
        way a request can cause (a keep-alive timeout, a session taken over)."""
        return self._suspects

    async def _reader(self) -> None:
        conn = self._conn
        # (no bound methods kept in locals: this frame lives as long as the connection, and
        # each would hold 64 bytes of it; a lookup per read costs next to nothing)
        stream = self._stream
        cut_short = stream.reads_cut_short
        events, self._early = self._early, ()  # what came with CONNACK
        index = 0
        while True:
            # One cancel scope, until a keep-alive deadline passes: it is the one :meth:`_stop`
            # cancels, and its deadline is the keep-alive's while the reader reads (memory per
            # idle connection: one scope, see :mod:`._tasks`; and none made per delivery).
            with self._scope() as scope:
                while True:
                    # The events that have to wait (a full subscription buffer: backpressure),
                    # one by one, with no deadline: a delivery is never cut short. When the
                    # reader keeps the connection alive, the writer does meanwhile.
                    if index < len(events):
                        scope.deadline = math.inf
                        if scope.cancel_called:
                            break  # the deadline passed first: keep alive, then deliver
                        self._delivering = True
                        if cut_short:
                            self._sender.start_writer()
                        try:
                            while index < len(events):
                                await self._dispatch(events[index])
                                index = self._deliver_nowait(events, index + 1)
                        finally:
                            self._delivering = False
                    if conn.receive_maximum_exceeded:
                        await self._end(conn.end_overrun())
                    # When reads can be cut short (a plain socket), the reader keeps the
                    # connection alive: its reads end at the connection's next deadline (which
                    # only moves later as packets go out; an early wake-up costs nothing).
                    if cut_short:
                        deadline = conn.next_deadline()
                        scope.deadline = math.inf if deadline is None else deadline
                    while True:
                        await stream.wait()
                        data = stream.read()
                        if data is None:
                            continue  # woken, but nothing there (yet)
                        self._sender.read_happened()
                        if not data:
                            raise lost("the broker closed the connection")
                        try:
                            events = conn.receive_data(data, now=trio.current_time())
                        except RemoteProtocolError as exc:
                            await self._end(exc)
                        if conn.has_data_to_send:
                            self._sender.flush()
                        # the fast path: acknowledgements, and messages delivered without
                        # waiting; the rest is left to the loop above
                        index = self._deliver_nowait(events, 0)
                        if index < len(events) or conn.receive_maximum_exceeded:
                            break
            if self._stopped:
                return
            # the keep-alive deadline passed
            self.keepalive()
            if conn.has_data_to_send:
                self._sender.flush()

    def _deliver_nowait(self, events: Sequence[Event], start: int) -> int:
        """Hand ``events[start:]`` to the listener while that needs no waiting (messages that
        fit their subscriptions' buffers, acknowledgements); return the index of the first
        that needs :meth:`_dispatch`, or ``len(events)``. One call per read."""
        message_nowait = self._listener.message_nowait
        acknowledged = self._listener.acknowledged
        for index in range(start, len(events)):
            event = events[index]
            if type(event) is Publish:
                if not message_nowait(event):
                    return index
            elif isinstance(event, Acknowledged):
                acknowledged(event)
            else:
                return index
        return len(events)

    async def _end(self, error: RemoteProtocolError) -> NoReturn:
        """The broker broke the protocol: flush the DISCONNECT the machine queued (at most a
        second), then raise."""
        self._ending()  # no new work while the DISCONNECT is flushed
        self._sender.flush()
        # shielded from the keep-alive deadline of the scope around it; _stop() cancels it
        with self._scope(trio.current_time() + 1, shield=True):
            await self.drain()
        raise error

    async def _dispatch(self, event: Event) -> None:
        """One event the listener did not take without waiting: the link's own (AUTH,
        DISCONNECT), or one to wait for."""
        if isinstance(event, _AUTH_EVENTS):
            self._authenticate(event)
            return
        if isinstance(
            event, Acknowledged
        ):  # e.g. what CONNACK ended (the first early event)
            self._listener.acknowledged(event)
            return
        if isinstance(event, DisconnectReceived):
            props = event.properties
            error = ConnectionLostError(
                "the broker sent DISCONNECT",
                reason_code=event.reason_code,
                reason_string=props.reason_string,
                server_reference=props.server_reference,
                user_properties=props.user_properties,
            )
            raise error
        await self._listener.deliver(event)

    def _authenticate(self, event: AuthChallenged | ReauthenticationCompleted) -> None:
        """Answer the broker's AUTH 0x18, or verify its AUTH 0x00; a failure ends the
        connection with DISCONNECT 0x80."""
        auth = self._auth
        assert auth is not None  # the machine checked the method is ours
        try:
            if isinstance(event, AuthChallenged):
                self._conn.auth(
                    ReasonCode.CONTINUE_AUTHENTICATION, auth.answer(event.data)
                )
                self._sender.flush()
                return
            auth.finish(event.data)
        except AuthenticationError:
            self._conn.disconnect(ReasonCode.UNSPECIFIED_ERROR)
            raise
        if self._reauthenticated is not None:
            self._reauthenticated.set()

    # -- SenderOwner: the sender's view of the machine and of the reader ----------------------

    def take_outbound(self) -> bytes:
        return self._conn.data_to_send(now=trio.current_time())

    def more_outbound(self) -> bool:
        return self._conn.has_data_to_send

    def outbound_written(self) -> None:
        self._conn.data_written()

    def next_deadline(self) -> float | None:
        return self._conn.next_deadline()

    def reader_keeps_alive(self) -> bool:
        """When its reads can be cut short and it is not waiting to deliver (see _reader)."""
        return self._stream.reads_cut_short and not self._delivering

    def keepalive(self) -> None:
        """A deadline passed: let the machine queue PINGREQ, or give up on the broker (not
        while the reader waits to deliver: an answer may be waiting unread)."""
        conn = self._conn
        for event in conn.handle_timeout(
            now=trio.current_time(), reading=not self._delivering
        ):
            if isinstance(event, KeepAliveExpired):
                self._timed_out = True
                raise lost(
                    f"the broker did not answer PINGREQ within {conn.keep_alive / 2:g}s (keep alive {conn.keep_alive:g}s)"
                )

    # -- commands: the only way into the protocol machine -------------------------------------
    #
    # Each queues its packet on the machine and has it sent (see flush()): the caller never
    # has to remember a second step. They raise what the machine raises (LocalProtocolError
    # when the connection or the broker's limits forbid the packet, ValueError for bad input).

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: QoS = QoS.AT_MOST_ONCE,
        retain: bool = False,
        properties: Properties = EMPTY_PROPERTIES,
        expires_at: float | None = None,
    ) -> int | None:
        """Queue a PUBLISH and have it sent; its packet identifier (``None`` for QoS 0).
        ``expires_at``: when its Message Expiry Interval ends (trio's clock)."""
        packet_id = self._conn.publish(
            topic, payload, qos=qos, retain=retain, properties=properties,
            expires_at=expires_at,
        )  # fmt: skip
        self._sender.flush()
        return packet_id

    def publish_qos0(
        self, topic: str, payload: bytes, retain: bool, properties: Properties
    ) -> int:
        """Queue a QoS 0 PUBLISH and have it sent; return how many bytes are still unsent
        (:attr:`unsent_bytes`, for the caller's backpressure) in the same call: the hot path
        of publishing."""
        conn = self._conn
        conn.publish(topic, payload, retain=retain, properties=properties)
        self._sender.flush()
        return conn.buffered_size + len(self._sender.pending)

    def subscribe(
        self, requests: Sequence[SubscriptionRequest], properties: Properties
    ) -> int:
        """Queue a SUBSCRIBE and have it sent; its packet identifier."""
        packet_id = self._conn.subscribe(requests, properties)
        self._sender.flush()
        return packet_id

    def unsubscribe(self, filters: Sequence[str]) -> int:
        """Queue an UNSUBSCRIBE and have it sent; its packet identifier."""
        packet_id = self._conn.unsubscribe(filters)
        self._sender.flush()
        return packet_id

    def acknowledge(self, packet_id: int) -> None:
        """The application has taken inbound message ``packet_id``: queue its PUBACK/PUBREC
        (in arrival order, [MQTT-4.6.0-2]) and have it sent. Ignored once the link is down:
        the resumed session's redelivery is answered on the next link."""
        if self._conn.state is _CONNECTED:
            self._conn.acknowledge(packet_id)
            self._sender.flush()

    # -- what the machine knows, for the link's users ---------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the machine is connected (CONNACK accepted, no DISCONNECT yet)."""
        return self._conn.state is _CONNECTED

    @property
    def version(self) -> ProtocolVersion:
        """The protocol version spoken."""
        return self._conn.version

    @property
    def server(self) -> ServerLimits:
        """The broker's limits and capabilities, from its CONNACK."""
        return self._conn.server

    @property
    def receive_maximum(self) -> int:
        """How many unacknowledged QoS 1/2 messages we allow the broker (our CONNECT)."""
        return self._conn.receive_maximum

    @property
    def send_quota_available(self) -> bool:
        """Whether another QoS 1/2 PUBLISH may go out now (the broker's Receive Maximum)."""
        return self._conn.send_quota_available

    @property
    def unsent_bytes(self) -> int:
        """Bytes queued and not yet handed to the stream (for backpressure): on the machine,
        and what a direct send left over for the writer."""
        return self._conn.buffered_size + len(self._sender.pending)

    def flush(self) -> None:
        """Have what the machine queued sent (see :class:`Sender`): at once from the calling
        task when it may, else by the writer."""
        self._sender.flush()

    def when_sent(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the next write has handed what is queued to the
        stream, and have it written: e.g. to queue more then."""
        self._sender.when_sent(callback)

    async def drain(self) -> None:
        """Wait until everything queued so far has been handed to the stream.

        Raises:
            MQTTError: the link failed or closed first (why it ended).
        """
        await self._sender.drain(self._check_running)

    def _check_running(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._ended:
            raise lost("the connection closed")

    async def discard(self) -> None:
        """Close the stream at once, without DISCONNECT (a refused or failed handshake)."""
        self._sender.detach()
        self._conn.connection_lost()
        await self._stream.discard()

    async def close(self, farewell: Disconnect | None = None) -> None:
        """Send DISCONNECT (``farewell``, else a normal one; if still connected), close the
        stream, stop the tasks.

        Shielded from cancellation and bounded in time (:data:`CLOSE_GRACE` for the
        DISCONNECT, a second for the stream), like every ``aclose``. It works the same however
        the application leaves: the calling task stops the reader and writer (they may already
        be cancelled, when the application's cancel scope covers the client), lets a write in
        progress finish, and sends what is queued and the DISCONNECT itself, so that the
        broker ends the session normally and discards the will ([MQTT-3.1.2-8]).
        """
        with trio.CancelScope(shield=True):
            if self._closed is not None:  # closing already (the supervisor, the client)
                await self._closed.wait()
                return
            self._closed = trio.Event()
            farewell_sent = False
            try:
                if self._failure is None and not self._closing:
                    # From here the broker's answer to DISCONNECT (closing its end) is the
                    # expected end, not a failure.
                    self._closing = True
                    if farewell is None:
                        self._conn.disconnect()
                    else:
                        self._conn.disconnect(farewell.reason_code, farewell.properties)
                    with trio.move_on_after(CLOSE_GRACE):
                        self._stop()  # this task sends the last bytes itself
                        farewell_sent = await self._sender.send_last(
                            lambda: self._failure is not None
                        )
            finally:
                self._closing = True
                self._conn.connection_lost()
                # closed below: no direct send may reach a reused descriptor
                self._sender.detach()
                self._abort()
                try:
                    await self._stream.aclose(grace=1, linger=farewell_sent)
                finally:
                    self._closed.set()
