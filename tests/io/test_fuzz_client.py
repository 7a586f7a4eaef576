"""Hypothesis feeds random and mutated byte streams to a connected client: whatever arrives, the
client ends in one typed :class:`MQTTError` (never a crash, a hang or an ExceptionGroup), within
a bounded (virtual) time, and leaves no task behind."""

from __future__ import annotations

import contextlib

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings, strategies as st

import trio_mqtt
from tests import wire
from tests.io.scripted import ScriptedBroker
from trio_mqtt import MQTTError, ProtocolVersion

# Valid server -> client packets to mutate (MQTT 5 unless marked)
VALID = [
    wire.publish("a/b", b"payload", qos=0),
    wire.publish("a/b", b"payload", qos=1, packet_id=7),
    wire.publish("a/b", b"p", qos=2, packet_id=8),
    wire.pubrel(8),
    wire.publish(
        "t", b"x" * 300, qos=0, properties=wire.props(b"\x02\x00\x00\x00\x05")
    ),
    wire.puback(1),
    wire.suback(1, 0),
    wire.PINGRESP,
    wire.frame(0xE0, b"\x8b" + wire.props(wire.reason_string("bye"))),
]

mutations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=4096), st.integers(0, 255)),
    max_size=6,
)


def mutate(data: bytes, changes: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, value in changes:
        if out:
            out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


def run_client(
    stream: bytes, *, before_connack: bool = False, chunk: int = 1 << 16
) -> BaseException | None:
    """Connect a client to a broker that sends ``stream`` (in ``chunk``-byte pieces) and then
    ends the connection; return what the client raised (None: it did not raise)."""
    outcome: list[BaseException | None] = [None]

    async def main() -> None:
        broker = ScriptedBroker(ProtocolVersion.V5)

        async def script() -> None:
            # the client may hang up at any point: that ends the script too
            with contextlib.suppress(
                trio.BrokenResourceError, trio.ClosedResourceError
            ):
                await broker.receive()  # CONNECT
                if not before_connack:
                    await broker.send(wire.connack())
                for start in range(0, len(stream), chunk):
                    await broker.send(stream[start : start + chunk])
            await broker.stream.aclose()

        with trio.fail_after(120):  # virtual seconds: bounded, however the bytes go
            async with trio.open_nursery() as nursery:
                nursery.start_soon(script)
                try:
                    async with (
                        trio_mqtt.open_client(
                            transport_factory=broker.factory,
                            reconnect=None,
                            max_packet_size=4096,
                            connect_timeout=10,
                        ) as client,
                        client.subscribe("#", qos=2)
                        if not before_connack
                        else contextlib.nullcontext(),
                    ):
                        await trio.sleep_forever()
                except BaseException as exc:
                    outcome[0] = exc

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return outcome[0]


def check(outcome: BaseException | None) -> None:
    assert outcome is not None, "the client went on after the broker closed"
    assert isinstance(outcome, MQTTError), repr(outcome)
    assert not isinstance(outcome, BaseExceptionGroup)


FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(st.binary(max_size=600), st.integers(1, 64))
def test_random_bytes_after_connack(data: bytes, chunk: int) -> None:
    check(run_client(data, chunk=chunk))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_instead_of_connack(data: bytes) -> None:
    check(run_client(data, before_connack=True))


@FUZZ
@given(
    st.lists(st.sampled_from(VALID), min_size=1, max_size=8),
    mutations,
    st.none() | st.integers(0, 4096),
    st.integers(1, 512),
)
def test_mutated_valid_streams(
    packets: list[bytes], changes: list[tuple[int, int]], cut: int | None, chunk: int
) -> None:
    check(run_client(mutate(b"".join(packets), changes, cut), chunk=chunk))


@FUZZ
@given(mutations, st.none() | st.integers(0, 16))
def test_mutated_connack(changes: list[tuple[int, int]], cut: int | None) -> None:
    connack = wire.connack(properties=wire.props(b"\x21\x00\x0a", b"\x22\x00\x05"))
    check(run_client(mutate(connack, changes, cut), before_connack=True))
