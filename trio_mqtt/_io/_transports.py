"""Byte streams to a broker: TCP, TLS, Unix sockets and WebSocket (over TCP or TLS).

:func:`open_transport` is the one place that opens sockets; every failure to do so becomes a
:class:`ConnectError` carrying the original error in ``__cause__``. Whatever it returns is a
:class:`trio.abc.Stream` of MQTT bytes, so everything above (link, reconnects, session
resumption) is the same for every transport.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence

import trio

from .._config import Endpoint
from .._exceptions import ConnectError
from .._tls import TLSConfig
from ._ws import WebSocketHandshakeError, WebSocketStream

log = logging.getLogger("trio_mqtt")

_DEFAULT_TLS = TLSConfig()


async def open_transport(
    endpoint: Endpoint,
    tls: TLSConfig | None = None,
    *,
    context: ssl.SSLContext | None = None,
    websocket_headers: Sequence[tuple[str, str]] = (),
) -> trio.abc.Stream:
    """Open the stream ``endpoint`` describes: TLS when the endpoint says so or ``tls`` is given.

    Args:
        endpoint: where to connect.
        tls: TLS options (``None``: defaults, used only for TLS endpoints).
        context: the SSL context built from ``tls`` (built here when not given).
        websocket_headers: extra HTTP headers for the WebSocket upgrade request.

    Raises:
        ConnectError: DNS, TCP, TLS or the WebSocket upgrade failed.
    """
    stream: trio.abc.Stream | None = None
    stage = "connect"  # what failed says which words name the cause
    try:
        if endpoint.transport == "unix":
            stream = await trio.open_unix_socket(endpoint.path)
        else:
            stream = await _open_tcp(endpoint.host, endpoint.port)
        if endpoint.tls or tls is not None:
            options = tls or _DEFAULT_TLS
            if options.insecure_skip_verify:
                log.warning(
                    "TLS certificate verification is OFF for %s (insecure_skip_verify=True)",
                    endpoint,
                )
            stage = "tls"
            stream = trio.SSLStream(
                stream,
                context or options.build_context(),
                server_hostname=options.server_hostname or endpoint.host or None,
                https_compatible=endpoint.transport == "websocket",
            )
            await stream.do_handshake()
        if endpoint.transport == "websocket":
            stage = "websocket"
            websocket = WebSocketStream(stream)
            await websocket.handshake(
                _host_header(endpoint), endpoint.path, websocket_headers
            )
            stream = websocket
        return stream
    except BaseException as exc:
        if stream is not None:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
        if isinstance(
            exc,
            OSError | trio.BrokenResourceError | ssl.SSLError | WebSocketHandshakeError,
        ):
            cause = (
                exc.__cause__
                if isinstance(exc, trio.BrokenResourceError) and exc.__cause__
                else exc
            )
            raise ConnectError(
                f"could not connect to {endpoint}: {_describe(cause, stage, endpoint)}"
            ) from cause
        raise


def _describe(cause: BaseException, stage: str, endpoint: Endpoint) -> str:
    """The root cause in words, in the message itself (not two ``__cause__`` levels down)."""
    if stage == "tls" and not isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"the TLS handshake failed ({cause or type(cause).__name__}): is port "
            f"{endpoint.port} a plain MQTT port rather than a TLS one?"
        )
    # trio.open_tcp_stream: "all attempts to connect ... failed", the reasons in a group
    group = cause.__cause__
    if stage == "connect" and isinstance(group, BaseExceptionGroup):
        reasons = [
            leaf.strerror.lower()
            if isinstance(leaf, OSError) and leaf.strerror
            else str(leaf)
            for leaf in group.exceptions
        ]
        return ", ".join(dict.fromkeys(reasons))
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno).lower()
    return str(cause) or type(cause).__name__


@functools.lru_cache(maxsize=64)
def _address_family(host: str) -> int | None:
    """The address family of an IP address; ``None`` for a host name. (Remembered: a fleet
    connects to a few hosts, many times, and parsing the address was 1 % of connecting.)"""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return None
    return trio.socket.AF_INET6 if version == 6 else trio.socket.AF_INET


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """A TCP connection. To an IP address, one socket and its ``connect``: Happy Eyeballs
    (RFC 8305), which :func:`trio.open_tcp_stream` runs in a nursery with a task per
    attempt, has nothing to race for one literal address, and that machinery was an eighth of
    the instructions a connection costs (open to close, callgrind; docs/performance.md)."""
    family = _address_family(host)
    if family is None:  # a host name: resolve it, and race its addresses
        return await trio.open_tcp_stream(host, port)
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


def _host_header(endpoint: Endpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    default = 443 if endpoint.tls else 80
    return host if endpoint.port == default else f"{host}:{endpoint.port}"
