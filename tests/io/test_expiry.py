"""Message Expiry Interval across an outage (section 3.3.2.3.3), on Trio's virtual clock with
scripted brokers: a message not acknowledged before the connection was lost is resent with
what is left of its interval, or not at all once it has passed; one that waited in the offline
queue likewise."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from trio_mqtt import NotConnectedError
from trio_mqtt.lowlevel import Connect, Publish

OUTAGE = 15.0  # seconds between the first connection's end and the second's start


async def _run(
    interval: int, *, sent_before_outage: bool
) -> tuple[list[Publish], object]:
    """Publish one QoS 1 message with ``interval``: on the first connection (no PUBACK, then
    the connection ends) or while offline; the second connection comes after OUTAGE seconds.
    Returns what the second broker received, and the publish's result or error."""
    first, second = ScriptedBroker(), ScriptedBroker()
    lost = trio.Event()
    received: list[Publish] = []
    outcome: list[object] = []

    async def factory() -> trio.abc.Stream:
        if not lost.is_set():
            return first.client_stream
        await trio.sleep(OUTAGE)
        return second.client_stream

    async def play_first() -> None:
        await first.expect(Connect)
        await first.send(wire.connack())
        if sent_before_outage:
            await first.expect(Publish)  # not acknowledged
        lost.set()
        await first.stream.aclose()

    async def play_second() -> None:
        await second.expect(Connect)
        await second.send(wire.connack(session_present=True))
        while (packet := await second.receive()) is not None:
            if isinstance(packet, Publish):
                received.append(packet)
                await second.send(wire.puback(packet.packet_id))  # type: ignore[arg-type]

    async def publish(client: trio_mqtt.MQTTClient) -> None:
        if not sent_before_outage:
            # published once the client knows it is offline: queued, not sent on the
            # connection the broker closed (which the client may not have read yet)
            with client.watch_state() as changes:
                async for change in changes:
                    if isinstance(change, trio_mqtt.Disconnected):
                        break
        try:
            outcome.append(
                await client.publish("t", b"x", qos=1, message_expiry_interval=interval)
            )
        except NotConnectedError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(play_first)
        nursery.start_soon(play_second)
        async with trio_mqtt.open_client(
            transport_factory=factory, client_id="expiring", clean_start=False,
            session_expiry=600, reconnect=trio_mqtt.ReconnectPolicy(initial_delay=0.1),
            connect_timeout=OUTAGE * 2,
        ) as client:  # fmt: skip
            with trio.fail_after(60):
                await publish(client)
        nursery.cancel_scope.cancel()
    return received, outcome[0]


@pytest.mark.parametrize("sent_before_outage", [True, False], ids=["resend", "queued"])
async def test_what_is_left_of_the_interval_goes_with_the_message(
    autojump_clock: trio.testing.MockClock, sent_before_outage: bool
) -> None:
    received, outcome = await _run(60, sent_before_outage=sent_before_outage)
    assert isinstance(outcome, trio_mqtt.PublishResult)
    [message] = received
    assert message.dup is sent_before_outage
    left = message.properties.message_expiry_interval
    assert left is not None
    assert 60 - OUTAGE - 1 <= left <= 60 - OUTAGE + 1  # whole seconds, rounded up


@pytest.mark.parametrize("sent_before_outage", [True, False], ids=["resend", "queued"])
async def test_an_expired_message_is_not_sent_again(
    autojump_clock: trio.testing.MockClock, sent_before_outage: bool
) -> None:
    received, outcome = await _run(5, sent_before_outage=sent_before_outage)
    assert received == []
    assert isinstance(outcome, NotConnectedError)
    assert "expired" in str(outcome)
