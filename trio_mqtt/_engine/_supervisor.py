"""Supervisor: makes connections, runs one :class:`Link` at a time, and reconnects.

Theory of operation. :meth:`Supervisor.run` is started in the client's nursery while the
opener waits in :meth:`Supervisor.wait_started`: it makes the first connection (raising at once
if that fails, unless the policy says to wait for the broker), reports started, then loops: run
the link until it ends; if the application closed the client, stop; otherwise, with a
:class:`ReconnectPolicy`, sleep a jittered backoff and connect again (rotating through the
endpoints, or following a Server Reference), and without one, raise why the link ended. The session (``SessionState``) is shared by every connection, so each CONNACK
resumes where the last connection stopped: :class:`MQTTConnection` resends the unacknowledged
packets, and the client (the :class:`LinkOwner`) restores subscriptions and releases publishes
queued while offline. Waiters live in the client, keyed by packet id, so they outlive links.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import attrs
import trio

from .._auth import Authenticator
from .._config import (
    Endpoint,
    ReconnectPolicy,
    is_overrun,
    parse_server_reference,
    redirect_of,
    retry_cannot_help,
)
from .._enums import ProtocolVersion, ReasonCode
from .._exceptions import (
    ConnectError,
    ConnectionLostError,
    ConnectRefusedError,
    MQTTError,
)
from .._io._contract import LinkListener
from .._io._link import Link
from .._sansio._codec import MAX_PACKET_SIZE
from .._sansio._packets import ConnAck, Connect, Disconnect
from .._sansio._poison import Poison, Strikes, poison_error
from .._sansio._session import SessionState
from .._sansio._traffic import Traffic
from .._status import ClientState, Connected, Disconnected, Reconnecting, StateChange
from ._metrics import cause_label

log = logging.getLogger("trio_mqtt")

StreamOpener = Callable[[Endpoint], Awaitable[trio.abc.Stream]]


class SupervisorListener(LinkListener, Protocol):
    """Who hears what the supervisor does (the client's engine); it also listens to every
    link the supervisor runs."""

    def link_new(
        self, link: Link, connack: ConnAck, *, persistent: bool, endpoint: Endpoint
    ) -> None:
        """``link`` to ``endpoint`` is connected (``persistent``: the session outlives it);
        its tasks are about to run."""

    def link_up_nowait(self, link: Link, connack: ConnAck) -> bool:
        """``link``'s tasks run: get ready now, if that needs no waiting (nothing to restore
        that waits for the broker); False if it does (then :meth:`link_up`)."""

    async def link_up(self, link: Link, connack: ConnAck) -> None:
        """Get ready, waiting for the broker (after :meth:`link_up_nowait` returned False;
        called in a task of the link's)."""

    def link_down(self, error: MQTTError | None, poison: Sequence[Poison]) -> None:
        """The link ended (``error``: why, ``None`` when the application closed it).
        ``poison``: the requests given up on, each with the error it fails with (a publish
        flow has left the session already)."""

    def state_changed(self, state: ClientState, change: StateChange | None) -> None:
        """The client's state changed."""

    def finish(self, error: MQTTError | None) -> None:
        """The supervisor has stopped for good (``error``: why; ``None``: closed)."""


@attrs.define(kw_only=True)
class ConnectionSettings:
    """What every connection attempt is made from."""

    endpoints: Sequence[Endpoint]
    open_stream: StreamOpener
    connect_timeout: float
    receive_maximum: int
    max_packet_size: int | None
    reconnect: ReconnectPolicy | None
    authenticator: Authenticator | None = None
    topic_alias_maximum: int = 0
    topic_aliases: bool = False
    #: the MQTT 3.1.1 CONNECT to fall back to (``protocol="auto"``), until the first CONNACK
    fallback: Connect | None = None


def session_outlives(connect: Connect, connack: ConnAck) -> bool:
    """Whether the session outlives the connection that ``connack`` accepted: MQTT 5 by its
    Session Expiry Interval (the broker's, else ours: section 3.2.2.3.2), MQTT 3.1.1 unless
    it is a clean session."""
    if connect.protocol_version is ProtocolVersion.V5:
        expiry = connack.properties.session_expiry_interval
        if expiry is None:
            expiry = connect.properties.session_expiry_interval
        return bool(expiry)
    return not connect.clean_start


class Supervisor:
    """Owns the connection attempts and the reconnect loop for one client."""

    __slots__ = (
        "_before_send",
        "_closing",
        "_index",
        "_random",
        "_redirects",
        "_up_event",
        "connect",
        "connections",
        "endpoint",
        "failed_attempts",
        "last_loss",
        "link",
        "listener",
        "losses",
        "reconnects",
        "session",
        "settings",
        "started",
        "strikes",
        "traffic",
    )

    def __init__(
        self,
        settings: ConnectionSettings,
        connect: Connect,
        session: SessionState,
        listener: SupervisorListener,
        *,
        before_send: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.listener = listener
        self._before_send = before_send  # a durable store's flush
        self.link: Link | None = None
        # the CONNECT to send: the first one, then the one that resumes its session (this
        # object is its only owner: the first is let go once replaced)
        self.connect = connect
        self.endpoint = settings.endpoints[0]
        self.traffic = Traffic()  # counted by each link's machine
        self.connections = 0
        self.reconnects = 0
        self.failed_attempts = 0
        #: connections lost, by cause (:func:`cause_label`); made at the first loss
        self.losses: dict[str, int] | None = None
        self.last_loss: MQTTError | None = None
        self.started = False  # the first connection is up and restored
        self.strikes = Strikes()  # poison requests: see _sansio._poison
        self._index = 0
        self._redirects = 0
        self._random = rng.random if rng is not None else random.random
        self._closing = False
        # set once started, or once run() ends without (then dropped: memory per client)
        self._up_event: trio.Event | None = trio.Event()

    # -- one attempt -------------------------------------------------------------------------------

    async def _attempt(self, endpoint: Endpoint) -> tuple[Link, ConnAck]:
        """Open a stream, send CONNECT, wait for CONNACK; raise ConnectError/ConnectRefusedError."""
        settings = self.settings
        with trio.move_on_after(settings.connect_timeout) as scope:
            stream = await settings.open_stream(endpoint)
            link = Link(
                stream,
                self.listener,
                version=self.connect.protocol_version,
                session=self.session,
                receive_maximum=settings.receive_maximum,
                max_packet_size=settings.max_packet_size or MAX_PACKET_SIZE,
                topic_alias_maximum=settings.topic_alias_maximum,
                topic_aliases=settings.topic_aliases,
                before_send=self._before_send,
                authenticator=settings.authenticator,
                traffic=self.traffic,
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
        reference = redirect_of(error) if error is not None else None
        if reference:
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
        client_id = assigned or connect.client_id  # resume under the id we were given
        clean_start = connect.clean_start and not v5
        if client_id != connect.client_id or clean_start != connect.clean_start:
            self.connect = attrs.evolve(
                connect, client_id=client_id, clean_start=clean_start
            )

    # -- the loop --------------------------------------------------------------------------------

    async def wait_started(self) -> None:
        """Wait until the first connection is up and restored (:attr:`started`), or
        :meth:`run` has ended without (it raised: the error is the nursery's)."""
        event = self._up_event
        if event is not None:
            await event.wait()

    def _release_opener(self) -> None:
        event, self._up_event = self._up_event, None
        if event is not None:
            event.set()

    async def run(self, nursery: trio.Nursery) -> None:
        """Connect, report started (see :meth:`wait_started`), and keep a link running until
        closed or given up; then tell the listener it is finished
        (:meth:`SupervisorListener.finish`). Each link's helper tasks run in ``nursery``, the
        one this runs in (see :mod:`.._io._tasks`). Started with ``start_soon``, not
        ``start()``: its temporary nursery and the move to the real one were 14 % of the
        instructions of connecting (docs/performance.md).

        Raises:
            ConnectError, ConnectRefusedError: the first connection failed (no retry asked).
            ConnectionLostError, RemoteProtocolError, ...: the connection ended and the policy
                does not (or no longer) reconnect.
        """
        failure: MQTTError | None = None
        try:
            policy = self.settings.reconnect
            error: MQTTError | None = None
            attempt = 0  # failed attempts since the last success
            immediate = False  # the next attempt needs no backoff
            floor = False  # the last connection did not last: no delay under the initial one
            down_since = trio.current_time()
            while True:
                endpoint = self._next_endpoint(error) if error else self.endpoint
                if error is not None and not immediate:
                    assert policy is not None
                    delay = policy.delay(attempt + 1, self._random, floor=floor)
                    self.listener.state_changed(
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
                    self.failed_attempts += 1
                    if self._fall_back(exc):
                        continue  # the same endpoint at once, in MQTT 3.1.1
                    error = exc
                    if is_overrun(exc) and attempt:
                        floor = True  # the broker is up, only buggy: do not escalate
                    else:
                        attempt += 1
                    immediate = self._immediate(exc, attempt)
                    if not immediate and not self._may_retry(exc, attempt, down_since):
                        raise
                    continue
                self._redirects = 0
                self.settings.fallback = None  # the first CONNACK settles the version
                connected_at = trio.current_time()
                self._after_connack(connack)
                self.connections += 1
                if self.started:
                    self.reconnects += 1
                log.info(
                    "connected to %s (session present: %s%s)",
                    endpoint, connack.session_present,
                    f"; resending {len(self.session.outbound)} unacknowledged"
                    if self.session.outbound else "",
                )  # fmt: skip
                error = await self._run_link(nursery, link, connack)
                if error is None:
                    return  # closed by the application
                if self._closing:
                    # Lost while the application was closing the client: it wanted the
                    # connection gone, so leaving the block does not raise for it.
                    log.debug("connection lost while closing: %s", error)
                    return
                self._count_loss(error)
                self.listener.state_changed(
                    ClientState.RECONNECTING, Disconnected(cause=error)
                )
                log.warning("connection lost: %s", error)
                now = trio.current_time()
                floor = policy is not None and now - connected_at < policy.stable_after
                if floor and not is_overrun(error):
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
        except MQTTError as exc:
            failure = exc
            raise
        finally:
            self._release_opener()  # (it finds the error in the nursery)
            # the client is done for good: its waiters fail, its subscriptions end
            self.listener.finish(failure)

    def _count_loss(self, error: MQTTError) -> None:
        if self.losses is None:
            self.losses = {}
        label = cause_label(error)
        self.losses[label] = self.losses.get(label, 0) + 1
        self.last_loss = error

    def _fall_back(self, error: MQTTError) -> bool:
        """``protocol="auto"``: the broker refused MQTT 5 (0x84): from now on, MQTT 3.1.1."""
        fallback = self.settings.fallback
        if (
            fallback is None
            or not isinstance(error, ConnectRefusedError)
            or error.reason_code is not ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
        ):
            return False
        log.info("%s does not speak MQTT 5: falling back to MQTT 3.1.1", self.endpoint)
        self.connect, self.settings.fallback = fallback, None
        return True

    def _immediate(self, error: MQTTError, attempt: int) -> bool:
        """Whether to try again at once: to follow a Server Reference (at most 5 in a row), or
        to try the next endpoint of the list on the very first connection."""
        if self._closing:
            return False
        if redirect_of(error):
            self._redirects += 1
            return self._redirects <= 5
        return not self.started and attempt < len(self.settings.endpoints)

    def _may_retry(self, error: MQTTError, attempt: int, down_since: float) -> bool:
        policy = self.settings.reconnect
        if self._closing or policy is None:
            return False
        if not self.started and not policy.retry_first_connect:
            return False
        if retry_cannot_help(error):
            return False
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            return False
        return not (
            policy.give_up_after is not None
            and trio.current_time() - down_since >= policy.give_up_after
        )

    async def _run_link(
        self,
        nursery: trio.Nursery,
        link: Link,
        connack: ConnAck,
    ) -> MQTTError | None:
        """Run one link to its end; return why it ended (``None``: closed by the application)."""
        failure: MQTTError | None = None
        self.link = link
        self.listener.link_new(
            link, connack, persistent=session_outlives(self.connect, connack),
            endpoint=self.endpoint,
        )  # fmt: skip

        try:
            # (a partial made in the call, not a closure held by this frame: once _up has
            # run, nothing of it stays for the life of the connection)
            await link.run(nursery, started=functools.partial(self._up, link, connack))
        except MQTTError as exc:
            failure = exc
        error = failure or link.failure
        await link.close()  # the socket of a failed link too
        self.listener.link_down(error, self._poison(link, error))
        if error is None and not self._closing:
            error = ConnectionLostError("the connection ended")
        return error

    def _up(self, link: Link, connack: ConnAck) -> Callable[[], Awaitable[None]] | None:
        """Runs once the link's tasks run, before its reader reads: restore, then report
        connected (and, the first time, started). When the restore waits for the broker
        (subscriptions a lost session forgot), return that part, for a task of the link's:
        most connections have nothing to wait for, and a task less is 8 % fewer instructions
        to connect (docs/performance.md)."""
        if not self.listener.link_up_nowait(link, connack):
            return functools.partial(self._up_later, link, connack)
        self._connected(connack)
        return None

    async def _up_later(self, link: Link, connack: ConnAck) -> None:
        await self.listener.link_up(link, connack)
        self._connected(connack)

    def _connected(self, connack: ConnAck) -> None:
        self.listener.state_changed(
            ClientState.CONNECTED,
            Connected(endpoint=self.endpoint, session_present=connack.session_present),
        )
        if not self.started:
            self.started = True
            self._release_opener()

    def _poison(self, link: Link, error: MQTTError | None) -> list[Poison]:
        """Count the link's end against its suspects; give up on the poison ones (a publish
        flow leaves the session: it is not resent), each with the error it fails with."""
        suspects = link.suspects
        if suspects is None or error is None:
            self.strikes.clear()
            return []
        poison = []
        policy = self.settings.reconnect
        window = policy.poison_after if policy is not None else 0.0
        for suspect in self.strikes.ended(
            suspects, now=trio.current_time(), window=window
        ):
            log.warning(
                "giving up on %s (packet id %d): the broker ended the connection each time "
                "it was sent",
                suspect.kind, suspect.packet_id,
            )  # fmt: skip
            if suspect.kind == "PUBLISH" and suspect.packet_id in self.session.outbound:
                self.session.finish_outbound(suspect.packet_id)
            poison.append(Poison(suspect, poison_error(suspect, error)))
        return poison

    async def close(self, farewell: Disconnect | None = None) -> None:
        """Disconnect cleanly (if connected; with ``farewell``, else a normal DISCONNECT)
        and stop reconnecting. Shielded and bounded.

        The caller then cancels the task running :meth:`run` (it may be waiting to reconnect):
        the supervisor has no cancel scope of its own, the nursery's serves (memory per idle
        client)."""
        self._closing = True
        link = self.link
        if link is not None:
            await link.close(farewell)
