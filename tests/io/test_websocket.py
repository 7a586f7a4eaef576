"""MQTT over WebSocket (section 6) against a scripted server built on trio-websocket, an
independent WebSocket implementation: framing corner cases a real broker does not produce on
demand (packets split across messages, several packets in one message, text frames, refusals)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
)

import trio_mqtt
from tests import wire
from trio_mqtt import ConnectError, ConnectionLostError, ProtocolVersion
from trio_mqtt.lowlevel import (
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    Publish,
    Subscribe,
    Unsubscribe,
)

Script = Callable[[WebSocketConnection, "Reader"], Awaitable[None]]


class Reader:
    """MQTT packets out of the client's WebSocket messages."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.reader = PacketReader(version=ProtocolVersion.V5)
        self.pending: list[Packet] = []
        self.messages = 0

    async def expect(self, cls: type) -> Packet:
        while not self.pending:
            message = await self.ws.get_message()
            assert isinstance(message, bytes), "MQTT must travel in binary frames"
            self.messages += 1
            self.pending += self.reader.feed(message)
        packet = self.pending.pop(0)
        assert isinstance(packet, cls), f"expected {cls.__name__}, got {packet!r}"
        return packet


@asynccontextmanager
async def ws_server(
    script: Script, *, reject: int | None = None
) -> AsyncIterator[tuple[str, list[WebSocketRequest]]]:
    """A WebSocket server on a free loopback port running ``script`` for each connection."""
    requests: list[WebSocketRequest] = []

    async def handler(request: WebSocketRequest) -> None:
        requests.append(request)
        if reject is not None:
            await request.reject(reject)
            return
        ws = await request.accept(subprotocol="mqtt")
        await script(ws, Reader(ws))

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                serve_websocket, handler, "127.0.0.1", 0, ssl_context=None
            )
        )
        yield f"ws://127.0.0.1:{server.port}/custom/path", requests
        nursery.cancel_scope.cancel()


async def test_packets_split_across_messages_and_merged_in_one() -> None:
    async def script(ws: WebSocketConnection, reader: Reader) -> None:
        await reader.expect(Connect)
        connack = wire.connack()
        await ws.send_message(connack[:1])  # one packet in two messages
        await ws.send_message(connack[1:])
        subscribe = await reader.expect(Subscribe)
        publish = wire.publish("t", b"x" * 70_000, qos=0)
        # SUBACK, the first half of a large PUBLISH: one message; its rest: another
        await ws.send_message(wire.suback(subscribe.packet_id, 0) + publish[:35_000])
        await ws.send_message(publish[35_000:] + wire.publish("t", b"second", qos=0))
        unsubscribe = await reader.expect(Unsubscribe)
        await ws.send_message(wire.unsuback(unsubscribe.packet_id, 0))
        await reader.expect(Disconnect)

    with trio.fail_after(10):
        async with (
            ws_server(script) as (url, requests),
            trio_mqtt.open_client(
                url, reconnect=None, websocket_headers={"Authorization": "Bearer tok"}
            ) as client,
            client.subscribe("t") as messages,
        ):
            assert (await messages.receive()).payload == b"x" * 70_000
            assert (await messages.receive()).payload == b"second"
    request = requests[0]
    assert request.path == "/custom/path"
    assert "mqtt" in request.proposed_subprotocols  # [MQTT-6.0.0-3]
    assert (b"authorization", b"Bearer tok") in [
        (k.lower(), v) for k, v in request.headers
    ]


async def test_a_text_frame_ends_the_connection() -> None:
    codes: list[int] = []

    async def script(ws: WebSocketConnection, reader: Reader) -> None:
        await reader.expect(Connect)
        await ws.send_message(wire.connack())
        await ws.send_message("not binary")  # [MQTT-6.0.0-1]
        with pytest.raises(ConnectionClosed) as info:
            await ws.get_message()
        codes.append(info.value.reason.code)

    with trio.fail_after(10):
        async with ws_server(script) as (url, _):
            with pytest.raises(ConnectionLostError) as info:
                async with trio_mqtt.open_client(url, reconnect=None):
                    await trio.sleep_forever()
    assert "text frame" in str(info.value)
    assert codes == [1003]  # unsupported data


async def test_refused_upgrade_is_a_connect_error_with_the_status() -> None:
    async def script(ws: WebSocketConnection, reader: Reader) -> None:
        raise AssertionError("never accepted")

    with trio.fail_after(10):
        async with ws_server(script, reject=403) as (url, _):
            with pytest.raises(ConnectError, match="HTTP 403"):
                async with trio_mqtt.open_client(url, reconnect=None):
                    pytest.fail("connected through a refused upgrade")


async def test_publishes_travel_in_binary_messages_and_close_is_clean() -> None:
    closed = trio.Event()
    seen: list[int] = []

    async def script(ws: WebSocketConnection, reader: Reader) -> None:
        await reader.expect(Connect)
        await ws.send_message(wire.connack())
        for _ in range(3):
            packet = await reader.expect(Publish)
            assert isinstance(packet, Publish)
            seen.append(reader.messages)
        await reader.expect(Disconnect)
        with pytest.raises(ConnectionClosed) as info:  # then the closing handshake
            await ws.get_message()
        assert info.value.reason.code == 1000
        closed.set()

    with trio.fail_after(10):
        async with ws_server(script) as (url, _):
            async with trio_mqtt.open_client(url, reconnect=None) as client:
                for n in range(3):
                    await client.publish("t", str(n).encode())
            await closed.wait()
    # CONNECT was message 1; the writer may put several QoS 0 PUBLISHes in one message
    assert len(seen) == 3
    assert 2 <= seen[0] <= seen[-1] <= 4


async def test_server_pings_are_answered() -> None:
    pongs: list[bool] = []

    async def script(ws: WebSocketConnection, reader: Reader) -> None:
        await reader.expect(Connect)
        await ws.send_message(wire.connack())
        subscribe = await reader.expect(Subscribe)
        await ws.send_message(wire.suback(subscribe.packet_id, 0))
        with trio.fail_after(5):
            await ws.ping(b"are you there")  # returns when the matching pong arrives
        pongs.append(True)
        await ws.send_message(wire.publish("t", b"after the ping"))
        unsubscribe = await reader.expect(Unsubscribe)
        await ws.send_message(wire.unsuback(unsubscribe.packet_id, 0))
        await reader.expect(Disconnect)

    with trio.fail_after(10):
        async with (
            ws_server(script) as (url, _),
            trio_mqtt.open_client(url, reconnect=None) as client,
            client.subscribe("t", qos=0) as messages,
        ):
            assert (await messages.receive()).payload == b"after the ping"
    assert pongs == [True]
