"""The CONNECT/CONNACK handshake, and the enhanced-authentication steps (section 4.12).

:func:`handshake` runs on the link's machine before the link's tasks start: the link calls it
with the machine it owns, and nothing else does. :class:`AuthExchange` wraps the application's
:class:`Authenticator`: every step it takes either returns the data to send or raises
:class:`AuthenticationError` (the link then ends the connection with DISCONNECT 0x80).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from .._auth import Authenticator
from .._enums import ReasonCode
from .._exceptions import AuthenticationError, ConnectError, RemoteProtocolError
from .._sansio._connection import MQTTConnection
from .._sansio._events import (
    AuthChallenged,
    ConnectionAccepted,
    ConnectionRefused,
    DisconnectReceived,
    Event,
)
from .._sansio._packets import ConnAck, Connect
from ._stream import TRANSPORT_ERRORS, ByteStream

# (a tuple: isinstance() against ``A | B`` builds the union at every call, ~1 µs on 3.11)
_ANSWERED = (ConnectionAccepted, ConnectionRefused)


class AuthExchange:
    """The authenticator's steps, with its failures as :class:`AuthenticationError`."""

    __slots__ = ("_authenticator",)

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    @property
    def method(self) -> str:
        """The Authentication Method named in CONNECT."""
        return self._authenticator.method

    def start(self) -> bytes | None:
        """The first Authentication Data (CONNECT, or AUTH 0x19 to re-authenticate)."""
        return self._step(self._authenticator.start)

    def answer(self, challenge: bytes | None) -> bytes | None:
        """The response to the broker's AUTH 0x18 ``challenge``."""
        return self._step(self._authenticator.challenge, challenge)

    def finish(self, final: bytes | None) -> None:
        """Verify the broker's final data (CONNACK, or AUTH 0x00)."""
        self._step(self._authenticator.finish, final)

    @staticmethod
    def _step(step: Callable[..., bytes | None], *args: object) -> bytes | None:
        try:
            return step(*args)
        except AuthenticationError:
            raise
        except Exception as exc:
            raise AuthenticationError(
                f"the authenticator failed: {type(exc).__name__}"
            ) from exc


async def handshake(
    stream: ByteStream,
    conn: MQTTConnection,
    connect: Connect,
    auth: AuthExchange | None,
) -> tuple[ConnAck, list[Event]]:
    """Send CONNECT and wait for CONNACK, answering AUTH challenges on the way. The caller
    bounds the wait.

    Returns:
        The CONNACK, and the events that arrived in the same read after it.

    Raises:
        ConnectError: the connection closed or broke before CONNACK, or the broker sent
            DISCONNECT instead.
        RemoteProtocolError: the broker answered with something other than CONNACK.
        AuthenticationError: the authenticator refused the broker's challenge or proof.
    """
    try:
        if auth is not None:
            connect = attrs.evolve(
                connect,
                properties=attrs.evolve(
                    connect.properties,
                    authentication_method=auth.method,
                    authentication_data=auth.start(),
                ),
            )
        conn.connect(connect, now=trio.current_time())
        await stream.send_all(conn.data_to_send(now=trio.current_time()))
        while True:
            await stream.wait()
            data = stream.read()
            if data is None:
                continue
            if not data:
                raise ConnectError(
                    "the broker closed the connection before answering CONNECT"
                )
            try:
                events = conn.receive_data(data, now=trio.current_time())
            except RemoteProtocolError:
                await _flush_quietly(stream, conn)  # the DISCONNECT it queued
                raise
            for index, event in enumerate(events):
                if isinstance(event, AuthChallenged):
                    assert auth is not None  # the machine checked the method is ours
                    conn.auth(
                        ReasonCode.CONTINUE_AUTHENTICATION, auth.answer(event.data)
                    )
                    await stream.send_all(conn.data_to_send(now=trio.current_time()))
                if isinstance(event, ConnectionAccepted) and auth is not None:
                    auth.finish(event.connack.properties.authentication_data)
                if isinstance(event, _ANSWERED):
                    return event.connack, events[index + 1 :]
                if isinstance(event, DisconnectReceived):
                    raise ConnectError(
                        "the broker sent DISCONNECT instead of CONNACK "
                        f"({event.reason_code.describe()})"
                    )
    except AuthenticationError:
        conn.disconnect(ReasonCode.UNSPECIFIED_ERROR)
        await _flush_quietly(stream, conn)
        raise
    except TRANSPORT_ERRORS as exc:
        raise ConnectError(f"the connection failed before CONNACK: {exc}") from exc


async def _flush_quietly(stream: ByteStream, conn: MQTTConnection) -> None:
    """Best effort, e.g. the DISCONNECT a protocol error queued; never blocks for long."""
    with trio.move_on_after(1):
        try:
            data = conn.data_to_send(now=trio.current_time())
            if data:
                await stream.send_all(data)
        except (*TRANSPORT_ERRORS, trio.BusyResourceError):
            pass
