"""Byte streams to a broker: TCP and TLS. Network errors become :class:`ConnectError`."""

from __future__ import annotations

import ssl

import trio

from ._config import Endpoint
from ._exceptions import ConnectError


async def open_transport(
    endpoint: Endpoint, tls: ssl.SSLContext | None = None
) -> trio.abc.Stream:
    """Open a TCP (or, for a TLS endpoint or with ``tls``, a verified TLS) stream.

    Raises:
        ConnectError: DNS, TCP or TLS failed; ``__cause__`` holds the original error.
    """
    try:
        if endpoint.tls or tls is not None:
            context = tls if tls is not None else ssl.create_default_context()
            stream = await trio.open_ssl_over_tcp_stream(
                endpoint.host, endpoint.port, ssl_context=context
            )
            try:
                await stream.do_handshake()
            except BaseException:
                # never leak the socket of a failed handshake
                await trio.aclose_forcefully(stream)
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
