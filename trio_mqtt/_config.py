"""Connection options as validated values: broker URLs and endpoints. Secrets stay out of reprs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal
from urllib.parse import unquote, urlsplit

import attrs

from ._enums import ReasonCode
from ._exceptions import (
    AuthenticationError,
    ConnectionLostError,
    ConnectRefusedError,
    MQTTError,
)

Transport = Literal["tcp", "websocket", "unix"]

# scheme -> (transport, TLS, default port)
_SCHEMES: Final[dict[str, tuple[Transport, bool, int]]] = {
    "mqtt": ("tcp", False, 1883),
    "tcp": ("tcp", False, 1883),
    "mqtts": ("tcp", True, 8883),
    "ssl": ("tcp", True, 8883),
    "tls": ("tcp", True, 8883),
    "ws": ("websocket", False, 80),
    "wss": ("websocket", True, 443),
    "unix": ("unix", False, 0),
}
DEFAULT_WEBSOCKET_PATH: Final = "/mqtt"


def _check_transport(endpoint: Endpoint, attribute: object, value: str) -> None:
    if value not in ("tcp", "websocket", "unix"):
        raise ValueError(f"unknown transport {value!r}: use tcp, websocket or unix")
    if value == "unix":
        if not endpoint.path:
            raise ValueError("a unix endpoint needs the socket's path")
    elif not endpoint.host:
        raise ValueError("the broker address has no host")
    elif not 0 <= endpoint.port < 65536:
        raise ValueError(f"invalid port {endpoint.port}")


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where a broker listens, and how to reach it.

    Usually made by :meth:`from_url`; ``str(endpoint)`` is its URL without credentials.

    Args:
        host: the host name or address (unused for ``unix``).
        port: the TCP port (unused for ``unix``).
        tls: whether to speak TLS (``mqtts://``, ``wss://``).
        transport: ``"tcp"``, ``"websocket"`` or ``"unix"``.
        path: the WebSocket resource (default ``/mqtt``), or the Unix socket's file name.
        username: a user name taken from the URL, if any.
        password: a password taken from the URL, if any (never shown in reprs).
    """

    host: str = ""
    port: int = 0
    tls: bool = False
    transport: Transport = attrs.field(default="tcp", validator=_check_transport)
    path: str = ""
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """Parse a broker URL.

        ``mqtt://[user[:password]@]host[:port]`` (1883), ``mqtts://`` (TLS, 8883),
        ``ws://host[:port][/path]`` (80, path ``/mqtt``), ``wss://`` (TLS, 443) and
        ``unix:///path/to/socket``. User name and password are percent-decoded.

        Raises:
            ValueError: an unsupported scheme, a missing host or an invalid port. The message
                never repeats the password.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError("the broker URL has an invalid port or address") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(
                f"unsupported broker URL scheme {scheme!r}: use mqtt://, mqtts://, ws://, wss:// or unix://"
            )
        transport, tls, default_port = _SCHEMES[scheme]
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if transport == "unix":
            return cls(
                transport="unix", path=unquote(parts.path), username=username,
                password=password,
            )  # fmt: skip
        if not parts.hostname:
            raise ValueError("the broker URL has no host")
        path = ""
        if transport == "websocket":
            path = parts.path or DEFAULT_WEBSOCKET_PATH
            if parts.query:
                path += "?" + parts.query
        elif parts.path not in ("", "/") or parts.query:
            raise ValueError(
                f"a {scheme}:// URL has no path; did you mean ws:// or wss://?"
            )
        return cls(
            host=parts.hostname,
            port=port if port is not None else default_port,
            tls=tls,
            transport=transport,
            path=path,
            username=username,
            password=password,
        )

    def __str__(self) -> str:
        if self.transport == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.transport == "websocket":
            return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}{self.path}"
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


@attrs.frozen(kw_only=True)
class ReconnectPolicy:
    """How the client reconnects after an established connection is lost.

    Delays grow exponentially with *full jitter* (a random delay between 0 and
    ``min(max_delay, initial_delay * multiplier ** attempt)``), so a fleet of clients cut off by
    one broker restart does not come back in lock step.

    Args:
        initial_delay: the upper bound of the first delay, in seconds.
        max_delay: the largest delay, in seconds.
        multiplier: how fast the bound grows per attempt.
        max_attempts: give up after this many failed attempts in a row (``None``: never).
        give_up_after: give up when the connection has been down this many seconds (``None``:
            never).
        retry_first_connect: also retry the very first connection (wait for the broker to come
            up) instead of raising :class:`ConnectError` at once.
        stable_after: a connection lost less than this many seconds after its CONNACK counts
            as a failed attempt: the delays keep growing, and none is shorter than
            ``initial_delay`` (a broker that accepts and then drops every connection is not
            hammered).
        poison_after: a request the broker answers by closing the connection, on 3
            connections in a row, fails to its caller (a *poison request*, docs/errors.md)
            only once that has gone on for this many seconds: a clustered broker electing
            leaders closes connections for a while, and must not fail good publishes. A
            request the broker's reply names (a PUBACK to a QoS 2 PUBLISH) fails after 2
            connections, at once.
    """

    initial_delay: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max_attempts: int | None = None
    give_up_after: float | None = None
    retry_first_connect: bool = False
    stable_after: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    poison_after: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))

    def delay(
        self, attempt: int, random: Callable[[], float], *, floor: bool = False
    ) -> float:
        """The delay before a reconnect attempt (full jitter under an exponential bound).

        Args:
            attempt: 1 for the first attempt after a loss, then 2, 3, ...
            random: uniform on [0, 1) (``random.random``, or a seeded one in tests).
            floor: at least ``initial_delay`` (after a connection that did not last).

        Returns:
            Seconds to wait.

        Raises:
            Nothing.
        """
        bound = min(
            self.max_delay, self.initial_delay * self.multiplier ** min(attempt - 1, 64)
        )
        delay = bound * random()
        return max(delay, min(self.initial_delay, self.max_delay)) if floor else delay


# -- what an error means for reconnecting (pure: the supervisor acts on it) -----------------------

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


def retry_cannot_help(error: MQTTError) -> bool:
    """Whether connecting again cannot fix ``error``: a refusal for credentials, identity or
    protocol (section 3.2.2.2), an authenticator that refused the server, or a session taken
    over by another connection (0x8E)."""
    code = getattr(error, "reason_code", None)
    if isinstance(error, ConnectRefusedError):
        return code in _FATAL_REFUSALS
    if isinstance(error, ConnectionLostError):
        return code in _FATAL_DISCONNECTS
    return isinstance(error, AuthenticationError)


def is_overrun(error: MQTTError) -> bool:
    """Whether we ended the connection because the broker exceeded our Receive Maximum (a
    broker bug, not a broker down)."""
    return getattr(error, "reason_code", None) is ReasonCode.RECEIVE_MAXIMUM_EXCEEDED


def redirect_of(error: MQTTError) -> str | None:
    """The Server Reference of a redirection (CONNACK or DISCONNECT 0x9C/0x9D, section
    4.11), or ``None``."""
    if getattr(error, "reason_code", None) in _REDIRECTS:
        return getattr(error, "server_reference", None) or None
    return None


def parse_server_reference(reference: str, current: Endpoint) -> Endpoint | None:
    """The first server of an MQTT 5 Server Reference (``host``, ``host:port``, ``[v6]:port``,
    or a URL such as ``tcp://host:port``; several are separated by spaces, section 4.11),
    keeping the current transport. ``None`` if it names no usable server."""
    servers = reference.split()
    if not servers:
        return None
    first = servers[0]
    if "://" in first:
        # URL form (``tcp://host:port``, as the Eclipse Paho test broker sends): its host
        # and port; the transport stays the current one
        try:
            url = Endpoint.from_url(first)
        except ValueError:
            return None
        return attrs.evolve(current, host=url.host, port=url.port)
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
