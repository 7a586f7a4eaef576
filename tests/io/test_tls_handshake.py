"""What the client says in its TLS handshake (SNI, ALPN), seen by a scripted TLS server: Mosquitto
does not report either, and cloud brokers (AWS IoT on 443) route on them."""

from __future__ import annotations

import functools
import ssl

import trio
import trustme

import trio_mqtt
from tests import wire
from trio_mqtt import TLSConfig


async def test_sni_and_alpn_reach_the_server() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("iot.example").configure_cert(server_context)
    server_context.set_alpn_protocols(["x-amzn-mqtt-ca"])
    seen: dict[str, object] = {}

    def on_sni(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        seen["sni"] = name

    server_context.sni_callback = on_sni  # type: ignore[assignment]

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await stream.do_handshake()
        seen["alpn"] = stream.selected_alpn_protocol()
        await stream.receive_some()  # CONNECT
        await stream.send_all(wire.connack())
        await stream.receive_some()  # DISCONNECT, then the close

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(
                    trio.serve_ssl_over_tcp,
                    handler,
                    0,
                    server_context,
                    host="127.0.0.1",
                )
            )
            port = listeners[0].transport_listener.socket.getsockname()[1]
            tls = TLSConfig(
                ca_data=ca.cert_pem.bytes().decode(),
                alpn_protocols=["x-amzn-mqtt-ca"],
                server_hostname="iot.example",  # the address is 127.0.0.1; verify this name
            )
            async with trio_mqtt.open_client(
                f"mqtts://127.0.0.1:{port}", tls=tls, reconnect=None
            ):
                pass
            nursery.cancel_scope.cancel()
    assert seen == {"sni": "iot.example", "alpn": "x-amzn-mqtt-ca"}
