"""The code of docs/transports.md, run by the suite against Mosquitto's TLS listener, ejabberd's
WebSocket listener and a SCRAM server (tests/integration/test_examples.py): each fragment
between ``# [name]`` and ``# [/name]`` is shown on the page by ``literalinclude``.

Here ``url`` is the broker's address (``"mqtts://broker.example"`` on the page), and the file
names are those of your CA, certificate and key (``"ca.pem"``, ``"client.pem"``...)."""

from __future__ import annotations

import ssl

from trio_mqtt import ScramAuthenticator, TLSConfig, open_client


async def connect_tls(
    url: str, ca_file: str, client_cert: str, client_key: str, my_context: ssl.SSLContext
) -> None:
    """Raises if a connection fails (each block connects, then leaves at once)."""
    # [tls]
    # your own CA, and a client certificate (mutual TLS); the key may be in the certificate file
    tls = TLSConfig(ca_file=ca_file, client_cert=client_cert, client_key=client_key)
    async with open_client(url, tls=tls) as client: ...

    # or an ssl.SSLContext you built yourself, used exactly as given
    async with open_client(url, tls=my_context) as client: ...
    # [/tls]


async def connect_websocket(url: str, token: str) -> None:
    """``url``: ``"wss://broker.example/mqtt"`` on the page."""
    # [websocket]
    async with open_client(
        url, websocket_headers={"Authorization": f"Bearer {token}"}
    ) as client: ...
    # [/websocket]


async def connect_scram(url: str) -> None:
    # [scram]
    auth = ScramAuthenticator(username="alice", password="wonderland")
    async with open_client(url, authenticator=auth) as client:
        ...
        await client.reauthenticate()
    # [/scram]
