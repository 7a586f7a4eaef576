"""A failed connection says why in its message, not two ``__cause__`` levels down (#14)."""

from __future__ import annotations

import contextlib
import functools
import socket

import pytest
import trio

import trio_mqtt


async def test_a_refused_connection_says_connection_refused() -> None:
    # a bound socket that does not listen: the kernel refuses connections to its port, and
    # holding it keeps the port from being taken meanwhile
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with trio.fail_after(5), pytest.raises(trio_mqtt.ConnectError) as info:
            async with trio_mqtt.open_client(
                f"mqtt://127.0.0.1:{port}", reconnect=None
            ):
                pass
    assert "connection refused" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)  # the original stays attached


@pytest.mark.parametrize("answer", [b" \x02\x00\x00", b""], ids=["mqtt-bytes", "close"])
async def test_tls_to_a_plain_port_says_so(answer: bytes) -> None:
    """A plain MQTT listener answers the TLS ClientHello with MQTT bytes, or closes."""

    async def plain_broker(stream: trio.SocketStream) -> None:
        # (the client may already have given up: nothing here may fail the test's nursery)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.receive_some(4096)  # the ClientHello
            if answer:
                await stream.send_all(answer)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, plain_broker, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(5), pytest.raises(trio_mqtt.ConnectError) as info:
            async with trio_mqtt.open_client(
                f"mqtts://127.0.0.1:{port}", reconnect=None
            ):
                pass
        nursery.cancel_scope.cancel()
    message = str(info.value)
    assert "TLS handshake failed" in message
    assert f"is port {port} a plain MQTT port" in message
