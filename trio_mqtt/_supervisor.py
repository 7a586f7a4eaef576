"""Supervisor: makes connections, runs one :class:`Link` at a time, and reconnects.

Theory of operation. :meth:`Supervisor.run` is started with ``nursery.start()``: it makes the
first connection (raising at once if that fails, unless the policy says to wait for the broker),
reports ``started``, then loops: run the link until it ends; if the application closed the
client, stop; otherwise, with a :class:`ReconnectPolicy`, sleep a jittered backoff and connect
again (rotating through the endpoints, or following a Server Reference), and without one, raise
why the link ended. The session (``SessionState``) is shared by every connection, so each CONNACK
resumes where the last connection stopped: :class:`MQTTConnection` resends the unacknowledged
packets, and the client (the :class:`LinkOwner`) restores subscriptions and releases publishes
queued while offline. Waiters live in the client, keyed by packet id, so they outlive links.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import attrs
import trio

from ._auth import Authenticator
from ._config import Endpoint, ReconnectPolicy
from ._enums import ProtocolVersion, ReasonCode
from ._exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    ConnectRefusedError,
    MQTTError,
)
from ._link import Link
from ._sansio._codec import MAX_PACKET_SIZE
from ._sansio._events import Event
from ._sansio._packets import ConnAck, Connect
from ._sansio._session import SessionState
from ._status import ClientState, Connected, Disconnected, Reconnecting, StateChange

log = logging.getLogger("trio_mqtt")

# Refusals that another attempt cannot fix: wrong credentials, a banned or invalid client, an
# unsupported protocol. Reconnecting would only hammer the broker, so the client stops.
_FATAL_REFUSALS = frozenset(
    {
        ReasonCode.MALFORMED_PACKET,
        ReasonCode.PROTOCOL_ERROR,
        ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
        ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
        ReasonCode.BAD_USER_NAME_OR_PASSWORD,
        ReasonCode.NOT_AUTHORIZED,
        ReasonCode.BANNED,
        ReasonCode.BAD_AUTHENTICATION_METHOD,
    }
)
# Another connection took our client id over: fighting back would flap both forever.
_FATAL_DISCONNECTS = frozenset({ReasonCode.SESSION_TAKEN_OVER})
_REDIRECTS = frozenset({ReasonCode.USE_ANOTHER_SERVER, ReasonCode.SERVER_MOVED})
_OVERRUN = ReasonCode.RECEIVE_MAXIMUM_EXCEEDED

StreamOpener = Callable[[Endpoint], Awaitable[trio.abc.Stream]]


class LinkOwner(Protocol):
    """What the supervisor needs from the client."""

    async def _on_event(self, event: Event) -> None: ...

    def _on_events_nowait(self, events: list[Event], start: int) -> int: ...

    def _link_new(self, link: Link, connack: ConnAck) -> None: ...

    async def _link_up(self, link: Link, connack: ConnAck) -> None: ...

    def _link_ending(self) -> None: ...

    def _link_sent(self) -> None: ...

    def _link_down(self, error: MQTTError | None) -> None: ...

    def _state_changed(
        self, state: ClientState, change: StateChange | None
    ) -> None: ...


@attrs.define(kw_only=True)
class ConnectionSettings:
    """What every connection attempt is made from."""

    endpoints: Sequence[Endpoint]
    connect: Connect
    open_stream: StreamOpener
    connect_timeout: float
    receive_maximum: int
    max_packet_size: int | None
    reconnect: ReconnectPolicy | None
    authenticator: Authenticator | None = None


def parse_server_reference(reference: str, current: Endpoint) -> Endpoint | None:
    """The first server of an MQTT 5 Server Reference (``host``, ``host:port``, ``[v6]:port``;
    several are separated by spaces, section 4.11), keeping the current transport."""
    servers = reference.split()
    if not servers:
        return None
    first = servers[0]
    host, port = first, current.port
    if first.startswith("["):
        host, _, rest = first[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif first.count(":") == 1:
        host, _, text = first.partition(":")
        if not text.isdigit():
            return None
        port = int(text)
    if not host or not 0 < port < 65536:
        return None
    return attrs.evolve(current, host=host, port=port)


class Supervisor:
    """Owns the connection attempts and the reconnect loop for one client."""

    __slots__ = (
        "_before_send",
        "_closing",
        "_index",
        "_random",
        "_redirects",
        "connect",
        "endpoint",
        "link",
        "owner",
        "reconnects",
        "session",
        "settings",
        "started",
    )

    def __init__(
        self,
        settings: ConnectionSettings,
        session: SessionState,
        owner: LinkOwner,
        *,
        before_send: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.owner = owner
        self._before_send = before_send  # a durable store's flush
        self.link: Link | None = None
        self.connect = settings.connect
        self.endpoint = settings.endpoints[0]
        self.reconnects = 0
        self.started = False  # the first connection is up and restored
        self._index = 0
        self._redirects = 0
        self._random = rng.random if rng is not None else random.random
        self._closing = False

    # -- one attempt -------------------------------------------------------------------------------

    async def _attempt(self, endpoint: Endpoint) -> tuple[Link, ConnAck]:
        """Open a stream, send CONNECT, wait for CONNACK; raise ConnectError/ConnectRefusedError."""
        settings = self.settings
        with trio.move_on_after(settings.connect_timeout) as scope:
            stream = await settings.open_stream(endpoint)
            link = Link(
                stream,
                version=self.connect.protocol_version,
                session=self.session,
                receive_maximum=settings.receive_maximum,
                max_packet_size=settings.max_packet_size or MAX_PACKET_SIZE,
                on_event=self.owner._on_event,
                before_send=self._before_send,
                authenticator=settings.authenticator,
                on_events_nowait=self.owner._on_events_nowait,
                on_ending=self.owner._link_ending,
                on_sent=self.owner._link_sent,
            )
            try:
                connack = await link.handshake(self.connect)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await link.discard()
                raise
        if scope.cancelled_caught:
            raise ConnectError(
                f"no connection to {endpoint} within {settings.connect_timeout:g}s"
            )
        if connack.reason_code.is_failure:
            await link.discard()
            props = connack.properties
            raise ConnectRefusedError(
                connack.reason_code,
                reason_string=props.reason_string,
                server_reference=props.server_reference,
            )
        return link, connack

    def _next_endpoint(self, error: MQTTError | None) -> Endpoint:
        reference = getattr(error, "server_reference", None)
        code = getattr(error, "reason_code", None)
        if reference and code in _REDIRECTS:
            target = parse_server_reference(reference, self.endpoint)
            if target is not None:
                log.info("following the server reference to %s", target)
                return target
        endpoints = self.settings.endpoints
        if error is not None and len(endpoints) > 1:
            self._index = (self._index + 1) % len(endpoints)
        return endpoints[self._index]

    def _after_connack(self, connack: ConnAck) -> None:
        assigned = connack.properties.assigned_client_identifier
        connect = self.connect
        # MQTT 5 sessions expire on their own (Session Expiry Interval), so later connections
        # ask to resume whatever the first one created. A 3.1.1 clean session stays clean:
        # asking to keep it would leave a session on the broker forever.
        v5 = connect.protocol_version is ProtocolVersion.V5
        self.connect = attrs.evolve(
            connect,
            client_id=assigned
            or connect.client_id,  # resume under the id we were given
            clean_start=connect.clean_start and not v5,
        )

    # -- the loop --------------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, report started, and keep a link running until closed or given up.

        Raises:
            ConnectError, ConnectRefusedError: the first connection failed (no retry asked).
            ConnectionLostError, RemoteProtocolError, ...: the connection ended and the policy
                does not (or no longer) reconnect.
        """
        policy = self.settings.reconnect
        error: MQTTError | None = None
        attempt = 0  # failed attempts since the last success
        immediate = False  # the next attempt needs no backoff
        floor = (
            False  # the last connection did not last: no delay under the initial one
        )
        down_since = trio.current_time()
        while True:
            endpoint = self._next_endpoint(error) if error else self.endpoint
            if error is not None and not immediate:
                assert policy is not None
                delay = policy.delay(attempt + 1, self._random, floor=floor)
                self.owner._state_changed(
                    ClientState.RECONNECTING
                    if self.started
                    else ClientState.CONNECTING,
                    Reconnecting(
                        attempt=attempt + 1, delay=delay, endpoint=endpoint,
                        cause=error,
                    ),
                )  # fmt: skip
                log.info(
                    "reconnecting to %s in %.2fs (attempt %d): %s",
                    endpoint, delay, attempt + 1, error,
                )  # fmt: skip
                await trio.sleep(delay)
            self.endpoint = endpoint
            try:
                link, connack = await self._attempt(endpoint)
            except MQTTError as exc:
                if self._closing:
                    return  # the application is leaving: a failed attempt is moot
                error = exc
                if getattr(exc, "reason_code", None) is _OVERRUN and attempt:
                    floor = True  # the broker is up, only buggy: do not escalate
                else:
                    attempt += 1
                immediate = self._immediate(exc, attempt)
                if not immediate and not self._may_retry(exc, attempt, down_since):
                    raise
                continue
            self._redirects = 0
            connected_at = trio.current_time()
            self._after_connack(connack)
            if self.started:
                self.reconnects += 1
            log.info(
                "connected to %s (session present: %s)",
                endpoint, connack.session_present,
            )  # fmt: skip
            error = await self._run_link(link, connack, task_status)
            if error is None:
                return  # closed by the application
            if self._closing:
                # Lost while the application was closing the client: it wanted the
                # connection gone, so leaving the block does not raise for it.
                log.debug("connection lost while closing: %s", error)
                return
            self.owner._state_changed(
                ClientState.RECONNECTING, Disconnected(cause=error)
            )
            log.warning("connection lost: %s", error)
            now = trio.current_time()
            floor = policy is not None and now - connected_at < policy.stable_after
            if floor and getattr(error, "reason_code", None) is not _OVERRUN:
                # Lost right after CONNACK (a broker that accepts, then closes or breaks
                # the protocol): a failed attempt, so the backoff goes on growing instead
                # of starting over (which made a reconnect every few milliseconds).
                attempt += 1
            else:
                # A connection that lasted, or one we ended because the broker sent more
                # than our Receive Maximum (a broker bug, not a broker down: BROKERS.md):
                # start over, still never sooner than the initial delay after a short one.
                down_since = now
                attempt = 0
            immediate = self._immediate(error, attempt)
            if not immediate and not self._may_retry(error, attempt, down_since):
                raise error

    def _immediate(self, error: MQTTError, attempt: int) -> bool:
        """Whether to try again at once: to follow a Server Reference (at most 5 in a row), or
        to try the next endpoint of the list on the very first connection."""
        if self._closing:
            return False
        code = getattr(error, "reason_code", None)
        if code in _REDIRECTS and getattr(error, "server_reference", None):
            self._redirects += 1
            return self._redirects <= 5
        return not self.started and attempt < len(self.settings.endpoints)

    def _may_retry(self, error: MQTTError, attempt: int, down_since: float) -> bool:
        policy = self.settings.reconnect
        if self._closing or policy is None:
            return False
        if not self.started and not policy.retry_first_connect:
            return False
        code = getattr(error, "reason_code", None)
        if isinstance(error, ConnectRefusedError) and code in _FATAL_REFUSALS:
            return False
        if isinstance(error, AuthenticationError):
            return False  # wrong credentials or the wrong server: retrying cannot help
        if isinstance(error, ConnectionLostError) and code in _FATAL_DISCONNECTS:
            return False
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            return False
        return not (
            policy.give_up_after is not None
            and trio.current_time() - down_since >= policy.give_up_after
        )

    async def _run_link(
        self,
        link: Link,
        connack: ConnAck,
        task_status: trio.TaskStatus[None],
    ) -> MQTTError | None:
        """Run one link to its end; return why it ended (``None``: closed by the application)."""
        failure: MQTTError | None = None
        self.link = link
        self.owner._link_new(link, connack)

        async def up() -> None:  # runs in this task once the link's tasks are running
            await self.owner._link_up(link, connack)
            self.owner._state_changed(
                ClientState.CONNECTED,
                Connected(
                    endpoint=self.endpoint, session_present=connack.session_present
                ),
            )
            if not self.started:
                self.started = True
                task_status.started()

        try:
            await link.run(started=up)
        except MQTTError as exc:
            failure = exc
        error = failure or link.failure
        await link.close()  # the socket of a failed link too
        self.owner._link_down(error)
        if error is None and not self._closing:
            error = ConnectionLostError("the connection ended")
        return error

    async def close(self) -> None:
        """Disconnect cleanly (if connected) and stop reconnecting. Shielded and bounded.

        The caller then cancels the task running :meth:`run` (it may be waiting to reconnect):
        the supervisor has no cancel scope of its own, the nursery's serves (memory per idle
        client)."""
        self._closing = True
        link = self.link
        if link is not None:
            await link.close()
