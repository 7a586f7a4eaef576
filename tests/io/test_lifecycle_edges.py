"""Lifecycle edges a real broker cannot be made to show on demand (scripted broker)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from tests.io.test_scripted_broker import _accept
from trio_mqtt import QoS, RemoteProtocolError


async def test_new_work_waits_while_a_protocol_error_is_flushed() -> None:
    """After a protocol violation the client flushes a DISCONNECT (up to a second, here to a
    broker that reads nothing) before the link ends; a publish made meanwhile waits for the
    next connection like any publish while offline, instead of raising LocalProtocolError
    ("the connection is closed, not connected")."""
    broker = ScriptedBroker(socket=True, send_buffer=4096)
    violate = trio.Event()
    outcomes: list[object] = []

    async def script() -> None:
        await _accept(broker)
        await violate.wait()
        await broker.send(wire.suback(77, 0))  # a SUBACK for nothing asked: a violation
        await trio.sleep_forever()  # reads nothing more: the DISCONNECT cannot leave

    async def publish(payload: bytes, qos: QoS) -> None:
        try:
            await client.publish("t", payload, qos=qos)
            outcomes.append("published")
        except Exception as exc:
            outcomes.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            with pytest.raises(RemoteProtocolError):
                async with trio_mqtt.open_client(
                    transport_factory=broker.factory, keepalive=0, reconnect=None
                ) as client:
                    nursery.start_soon(publish, b"x" * 1_000_000, QoS.AT_MOST_ONCE)
                    await trio.testing.wait_all_tasks_blocked()  # the socket is full
                    violate.set()
                    await trio.testing.wait_all_tasks_blocked()  # the DISCONNECT waits
                    nursery.start_soon(publish, b"during the flush", QoS.AT_LEAST_ONCE)
                    await trio.testing.wait_all_tasks_blocked()
                    assert outcomes == []  # waiting, not failed
                    await trio.sleep_forever()
            nursery.cancel_scope.cancel()  # the script
    await broker.stream.aclose()
    # without reconnecting, both then fail with the connection's error
    assert [type(o) for o in outcomes] == [RemoteProtocolError, RemoteProtocolError], (
        outcomes
    )
