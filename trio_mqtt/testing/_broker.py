"""MQTTBroker: an in-process MQTT broker for tests, on the client's own sans-IO codec.

It is a test double, not a production broker: small and readable, with the behaviour of the
spec (and of Mosquitto where the spec leaves a choice), on Trio's clock (every timer is a
``trio.sleep``), so that keep alive, session expiry and will delays run under
``trio.testing.MockClock`` in no real time. Clients reach it over in-memory streams
(:meth:`MQTTBroker.connect_stream`, the client's ``transport_factory``) or a loopback TCP port
(:meth:`MQTTBroker.listen_tcp`).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from .._enums import ReasonCode
from .._sansio._packets import Packet, Publish
from ._client import ClientConnection
from ._routing import LoggedPacket, Routing
from ._state import BrokerOptions, SessionView, view

#: What the broker says in CONNACK, and the hooks tests use to refuse things.


class MQTTBroker:
    """An in-process MQTT 5.0 / 3.1.1 broker for tests; get one from :func:`open_broker`.

    It keeps its state in a routing object of its own; these methods are the test's handles
    on it: connecting, faults, introspection.
    """

    def __init__(self, nursery: trio.Nursery, options: BrokerOptions) -> None:
        self._routing = Routing(nursery, options)

    @property
    def options(self) -> BrokerOptions:
        """What it advertises and refuses; change them between connections."""
        return self._routing.options

    @property
    def retained(self) -> dict[str, Publish]:
        """Topic -> the retained message, as the PUBLISH that set it (a snapshot)."""
        return {
            topic: stored.publish for topic, stored in self._routing.retained.items()
        }

    @property
    def log(self) -> list[LoggedPacket]:
        """Every packet in and out, in order."""
        return self._routing.log

    # -- connecting ------------------------------------------------------------------------------

    async def connect_stream(self) -> trio.abc.Stream:
        """A new connection to the broker, as the client's ``transport_factory`` wants it::

            open_client(transport_factory=broker.connect_stream)

        Returns:
            The client's end of an in-memory stream; the broker serves the other end.

        Raises:
            Nothing: the connection's failures end that connection only.
        """
        client, server = trio.testing.memory_stream_pair()
        self._routing.nursery.start_soon(self._routing.serve, server)
        await trio.lowlevel.checkpoint()
        return client

    async def listen_tcp(self) -> str:
        """Also listen on a loopback TCP port (for code that only takes a URL).

        Returns:
            Its ``mqtt://127.0.0.1:PORT`` URL.

        Raises:
            OSError: no port could be bound.
        """
        listeners = await self._routing.nursery.start(
            functools.partial(trio.serve_tcp, self._routing.serve, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        return f"mqtt://127.0.0.1:{port}"

    # -- faults ----------------------------------------------------------------------------------

    def _connection(self, client_id: str) -> ClientConnection:
        for connection in self._routing.connections:
            if connection.client_id == client_id and connection.open:
                return connection
        raise LookupError(f"no connection of client {client_id!r}")

    def cut(self, client_id: str, *, fin: bool = True) -> None:
        """End ``client_id``'s connection, without a DISCONNECT (the will is published).

        Args:
            client_id: whose connection.
            fin: the client sees the end at once (EOF); without, its connection just goes
                silent, and its keep alive finds out.

        Raises:
            LookupError: ``client_id`` has no open connection.
        """
        self._connection(client_id).cut(fin=fin)

    def blackhole(self, client_id: str, on: bool = True) -> None:
        """Drop everything to and from ``client_id``; the connection stays open.

        Args:
            client_id: whose packets (now and on later connections).
            on: False lifts it.

        Raises:
            Nothing.
        """
        self._routing.faults(client_id).blackhole = on

    def delay(self, client_id: str, seconds: float) -> None:
        """Hold each packet sent to ``client_id`` this long first.

        Args:
            client_id: whose packets.
            seconds: the delay (0 lifts it).

        Raises:
            Nothing.
        """
        self._routing.faults(client_id).delay = seconds

    def drop_next(self, client_id: str, packet_type: type, count: int = 1) -> None:
        """Drop the next packets of a type, in either direction.

        Args:
            client_id: whose packets.
            packet_type: e.g. ``trio_mqtt.lowlevel.PubAck``.
            count: how many.

        Raises:
            Nothing.
        """
        drops = self._routing.faults(client_id).drops
        drops[packet_type] = drops.get(packet_type, 0) + count

    def refuse_connections(
        self, reason_code: ReasonCode | None = ReasonCode.SERVER_UNAVAILABLE
    ) -> None:
        """Refuse new connections.

        Args:
            reason_code: the CONNACK reason code (``None``: close them unanswered).

        Raises:
            Nothing.
        """
        self._routing.refusing, self._routing.refusal_code = True, reason_code

    def accept_connections(self) -> None:
        """Accept new connections again.

        Raises:
            Nothing.
        """
        self._routing.refusing, self._routing.refusal_code = False, None

    def restart(self, *, keep_sessions: bool = True) -> None:
        """As a broker restart: every connection is cut (without DISCONNECT; wills are not
        published).

        Args:
            keep_sessions: sessions and retained messages survive (as with persistence).

        Raises:
            Nothing.
        """
        routing = self._routing
        for connection in list(routing.connections):
            connection.cut(fin=True, will=False)
        if not keep_sessions:
            for session in routing.sessions.values():
                session.cancel_timers()
            routing.sessions.clear()
            routing.retained.clear()

    async def send_raw(self, client_id: str, data: bytes) -> None:
        """Send bytes as they are (anything a broken broker might send).

        Args:
            client_id: to whom.
            data: the bytes.

        Raises:
            LookupError: ``client_id`` has no open connection.
        """
        await self._connection(client_id).send_raw(data)

    # -- introspection ---------------------------------------------------------------------------

    @property
    def clients(self) -> list[str]:
        """The client ids connected now."""
        return sorted(
            c.client_id for c in self._routing.connections if c.open and c.client_id
        )

    def session(self, client_id: str) -> SessionView:
        """A snapshot of a session.

        Args:
            client_id: whose.

        Returns:
            A :class:`SessionView`.

        Raises:
            KeyError: there is no such session (never made, ended, or expired).
        """
        return view(self._routing.sessions[client_id])

    def packets(
        self, client_id: str | None = None, *, direction: str | None = None,
        kind: type | None = None,
    ) -> list[Packet]:  # fmt: skip
        """The logged packets, in order, filtered.

        Args:
            client_id: only this client's.
            direction: only ``"in"``, ``"out"``, ``"will"``, ``"dropped in"`` or
                ``"dropped out"``.
            kind: only packets of this type.

        Returns:
            The packets.

        Raises:
            Nothing.
        """
        return [
            entry.packet
            for entry in self._routing.log
            if (client_id is None or entry.client_id == client_id)
            and (direction is None or entry.direction == direction)
            and (kind is None or isinstance(entry.packet, kind))
        ]


@asynccontextmanager
async def open_broker(**options: object) -> AsyncIterator[MQTTBroker]:
    """Run an in-process broker for the duration of the block (:class:`BrokerOptions` are
    the keyword arguments); leaving it ends every connection and timer.

    Returns:
        An async context manager: its block gets the :class:`MQTTBroker`.

    Raises:
        TypeError: an unknown option.
    """
    settings = BrokerOptions(**options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        broker = MQTTBroker(nursery, settings)
        try:
            yield broker
        finally:
            nursery.cancel_scope.cancel()
